"""--emulate-skip and FP8 emulation under the probe (issue 18), checked against an independent model.

  emulate_recipes_check.py plain CASE          the program, as recorded (prints result bits)
  emulate_recipes_check.py expected CASE SPEC  what `plain CASE` must print under --emulate SPEC,
                                               computed here without the probe

Cases:
  skip    a 2-layer torch model (Linear 0, ReLU, Linear 2, no bias), forward and backward; under
          `--emulate bf16 --emulate-skip 0` layer 0 (forward and its backward) stays FP32, layer 2
          runs on BF16-rounded operands with a BF16 output.
  mm      three steps (fpscope_step() before each) of one unscoped x_t @ w_t with different
          magnitudes; SPEC e4m3 (current scaling: s = 448 / amax of the operand itself) or
          e4m3:delayed (s = 448 / max of the earlier steps' amaxes of that operand, 1 at first).
  hybrid  one Linear (a root module: scope "Linear", its backward "Linear.bwd"), forward and
          weight gradient under `--emulate hybrid`: x and W in E4M3, the output gradient in E5M2,
          each with its own current scale; outputs rounded to BF16.

The expected values use the same PyTorch ops (so the same BLAS calls) on operands rounded here:
BF16 by PyTorch's cast; FP8 by a round-to-nearest-even over the 256 codes of the format enumerated
below (saturating at the largest finite value), in numpy, independent of the probe's cast. Run
single-threaded so that the BLAS partitions the same way.
"""
import ctypes
import sys

import numpy as np
import torch

torch.set_num_threads(1)


def bits(t):
    return " ".join(float(v).hex() for v in t.detach().flatten().tolist())


# ---- the FP8 formats, from their definitions (OCP FP8: E4M3 "FN" and E5M2) ----


def fp8_values(exp_bits, man_bits, bias, finite_codes):
    """The non-negative finite values of codes 0..finite_codes-1, in code order (increasing)."""
    out = []
    for c in range(finite_codes):
        e, m = c >> man_bits, c & ((1 << man_bits) - 1)
        if e == 0:
            out.append(m / (1 << man_bits) * 2.0 ** (1 - bias))
        else:
            out.append((1 + m / (1 << man_bits)) * 2.0 ** (e - bias))
    return np.array(out, dtype=np.float64)


FP8 = {
    "e4m3": fp8_values(4, 3, 7, 0x7F),  # 0x7F is NaN; max 448
    "e5m2": fp8_values(5, 2, 15, 0x7C),  # 0x7C is Inf; max 57344
}


def fp8_round(y, fmt):
    """Saturating round to nearest, ties to the even code, of float32 array y."""
    vals = FP8[fmt]
    a = np.abs(y.astype(np.float64))
    idx = np.clip(np.searchsorted(vals, a, side="right") - 1, 0, len(vals) - 2)
    lo, hi = vals[idx], vals[idx + 1]
    up = (a - lo > hi - a) | ((a - lo == hi - a) & (idx % 2 == 1))
    r = np.where(up, hi, lo)
    r = np.where(a >= vals[-1], vals[-1], r)
    return (np.sign(y) * r).astype(np.float32)


def amax(t):
    return np.float32(np.max(np.abs(t.detach().numpy())))


def qdq(t, fmt, scale):
    """Quantize with `scale` and dequantize with fl(1/scale), in float32 (TE's scale_inv)."""
    s = np.float32(scale)
    inv = np.float32(1.0) / s
    y = t.detach().numpy().astype(np.float32) * s
    return torch.from_numpy((fp8_round(y, fmt) * inv).astype(np.float32))


def current(t, fmt):
    mx = np.float32(448.0 if fmt == "e4m3" else 57344.0)
    a = amax(t)
    return qdq(t, fmt, mx / a if a > 0 else np.float32(1.0))


def bf16(t):
    return t.to(torch.bfloat16).float()


class Q(torch.autograd.Function):
    """fwd(x) forward, bwd(grad) backward: an emulated GEMM's operand or output, both ways."""

    @staticmethod
    def forward(ctx, x, fwd, bwd):
        ctx.bwd = bwd
        return fwd(x)

    @staticmethod
    def backward(ctx, g):
        return ctx.bwd(g), None, None


def ident(t):
    return t


# ---- the cases ----


def skip_case(expected):
    g = torch.Generator().manual_seed(11)
    model = torch.nn.Sequential(torch.nn.Linear(13, 16, bias=False), torch.nn.ReLU(),
                                torch.nn.Linear(16, 11, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(16, 13, generator=g) * 0.6)
        model[2].weight.copy_(torch.randn(11, 16, generator=g) * 0.4)
    x = torch.randn(9, 13, generator=g) * 2.3
    gy = torch.randn(9, 11, generator=g) * 0.9
    if not expected:
        y = model(x)
    else:  # layer 0 as is; layer 2's operands and outputs rounded, in both directions
        w0, w2 = model[0].weight, model[2].weight
        r = torch.relu(torch.mm(x, w0.t()))
        a = Q.apply(r, bf16, bf16)
        b = Q.apply(w2, bf16, bf16)
        y = Q.apply(torch.mm(a, b.t()), bf16, bf16)
    (y * gy).sum().backward()
    return [("y", y), ("w0.grad", model[0].weight.grad), ("w2.grad", model[2].weight.grad)]


def mm_case(expected, spec):
    g = torch.Generator().manual_seed(5)
    try:
        step = ctypes.CDLL(None).fpscope_step
    except AttributeError:  # no probe
        step = None
    out = []
    hist = {"x": [], "w": []}
    for t, (mx, mw) in enumerate(((1.0, 1.0), (40.0, 0.02), (0.5, 3.0))):
        x = torch.randn(9, 13, generator=g) * mx
        w = torch.randn(13, 11, generator=g) * mw
        if step is not None:
            step()
        if not expected:
            y = x @ w
        else:
            ops = []
            for name, v in (("x", x), ("w", w)):
                if spec == "e4m3":
                    ops.append(current(v, "e4m3"))
                else:  # delayed: from the earlier steps' amaxes (window of 1024), 1 at first
                    prev = max(hist[name], default=np.float32(0.0))
                    s = np.float32(448.0) / prev if prev > 0 else np.float32(1.0)
                    ops.append(qdq(v, "e4m3", s))
                    hist[name].append(amax(v))
            y = bf16(ops[0] @ ops[1])
        out.append((f"step{t}", y))
    return out


def hybrid_case(expected):
    g = torch.Generator().manual_seed(3)
    lin = torch.nn.Linear(12, 10, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(10, 12, generator=g) * 0.3)
    x = torch.randn(7, 12, generator=g) * 5.0
    gy = torch.randn(7, 10, generator=g) * 1e-3
    if not expected:
        y = lin(x)
    else:
        a = Q.apply(x, lambda t: current(t, "e4m3"), bf16)
        b = Q.apply(lin.weight, lambda t: current(t, "e4m3"), bf16)
        y = Q.apply(torch.mm(a, b.t()), bf16, lambda t: current(t, "e5m2"))
    (y * gy).sum().backward()
    return [("y", y), ("w.grad", lin.weight.grad)]


def main():
    mode, case = sys.argv[1], sys.argv[2]
    expected = mode == "expected"
    spec = sys.argv[3] if expected else None
    if case == "skip":
        r = skip_case(expected)
    elif case == "mm":
        r = mm_case(expected, spec)
    else:
        r = hybrid_case(expected)
    for name, t in r:
        print(name, bits(t))


if __name__ == "__main__":
    main()
