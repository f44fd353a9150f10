"""Emulated precision under the probe (issue 18 item 1), checked against PyTorch's own casts.

  emulate_check.py plain     prints the bits of x @ w, addmm(c, x, w) (beta = 1) and a bmm
  emulate_check.py expected FMT
                             prints the same three computed on PyTorch's casts to FMT:
                             (x.to(FMT).float() @ w.to(FMT).float()).to(FMT).float(), etc.

Under `FPSCOPE_EMULATE=FMT` (or `fpscope record --emulate FMT`), `plain` must print exactly what
`expected FMT` prints without the probe: the same BLAS on operands rounded as PyTorch rounds them,
the output rounded once more. Run single-threaded so that the BLAS partitions the same way.
"""
import sys

import torch

torch.set_num_threads(1)


def bits(t):
    return " ".join(float(v).hex() for v in t.flatten().tolist())


def main():
    mode = sys.argv[1]
    g = torch.Generator().manual_seed(7)
    x = torch.randn(9, 13, generator=g) * 3.1
    w = torch.randn(13, 11, generator=g) * 0.7
    c = torch.randn(9, 11, generator=g) * 1e3
    a3 = torch.randn(4, 40, 48, generator=g)
    b3 = torch.randn(4, 48, 36, generator=g)
    if mode == "plain":
        r = (x @ w, torch.addmm(c, x, w), torch.bmm(a3, b3))
    else:
        dt = {"bf16": torch.bfloat16, "fp16": torch.float16}[sys.argv[2]]

        def q(t):
            return t.to(dt).float()

        r = (q(q(x) @ q(w)), q(torch.addmm(q(c), q(x), q(w))), q(torch.bmm(q(a3), q(b3))))
    for name, t in zip(("mm", "addmm", "bmm"), r):
        print(name, bits(t))


if __name__ == "__main__":
    main()
