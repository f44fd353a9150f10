"""Runs known GEMMs through torch (sgemm_) or numpy (cblas_sgemm) and writes, to the JSON file
given, the statistics of each output computed HERE with the library's own casts
(tensor.to(torch.float16/bfloat16), numpy float16), independently of the probe.
Usage: stats_prog.py torch|numpy OUT.json"""
import json
import sys


def torch_case():
    import torch
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(5)
    # Output 1: 40x24 with values beyond FP16's max; output 2: 16x8 with values below FP16's
    # smallest subnormal (and some in the subnormal range).
    x1 = torch.randn(40, 16, generator=g) * 300.0
    w1 = torch.randn(24, 16, generator=g) * 60.0
    x2 = torch.randn(16, 12, generator=g) * 1e-4
    w2 = torch.randn(8, 12, generator=g) * 2e-4
    outs = []
    for _ in range(3):
        outs = [torch.nn.functional.linear(x1, w1), torch.nn.functional.linear(x2, w2)]
    result = []
    for y in outs:
        fin = torch.isfinite(y)
        h = y.to(torch.float16)
        b = y.to(torch.bfloat16)
        tiny16 = torch.finfo(torch.float16).tiny
        tinyb = torch.finfo(torch.bfloat16).tiny
        result.append({
            "numel": y.numel(),
            "amax": float(y.abs().max()),
            "fp16": {"overflow": int((torch.isinf(h) & fin).sum()),
                     "underflow": int(((y != 0) & (h == 0)).sum()),
                     "subnormal": int(((h != 0) & (h.abs() < tiny16) & fin).sum())},
            "bf16": {"overflow": int((torch.isinf(b) & fin).sum()),
                     "underflow": int(((y != 0) & (b == 0)).sum()),
                     "subnormal": int(((b != 0) & (b.abs() < tinyb) & fin).sum())},
        })
    return result


def numpy_case():
    import numpy as np
    rng = np.random.default_rng(3)
    a1 = (rng.standard_normal((30, 20)) * 400).astype(np.float32)
    b1 = (rng.standard_normal((20, 10)) * 50).astype(np.float32)
    a2 = (rng.standard_normal((9, 14)) * 1e-4).astype(np.float32)
    b2 = (rng.standard_normal((14, 6)) * 1e-4).astype(np.float32)
    outs = []
    for _ in range(3):
        outs = [np.dot(a1, b1), np.dot(a2, b2)]
    result = []
    with np.errstate(over="ignore"):
        for y in outs:
            h = y.astype(np.float16)
            tiny16 = np.finfo(np.float16).tiny
            result.append({
                "numel": int(y.size),
                "amax": float(np.abs(y).max()),
                "fp16": {"overflow": int((np.isinf(h) & np.isfinite(y)).sum()),
                         "underflow": int(((y != 0) & (h == 0)).sum()),
                         "subnormal": int(((h != 0) & (np.abs(h) < tiny16)).sum())},
            })
    return result


def main():
    kind, out = sys.argv[1], sys.argv[2]
    result = torch_case() if kind == "torch" else numpy_case()
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
