"""Block-scaled emulated precision under the probe (issue 18 item 1), against an independent model.

  emulate_blocks_check.py plain              prints the bits of x @ w, addmm(c, x, w) (beta = 1)
                                             and linear(xt.t(), W) (A stored transposed, B = W^T)
  emulate_blocks_check.py expected SPEC      the same three computed here without the probe, on
                                             operands quantized per block by the model below

Under `fpscope record --emulate SPEC` (mxfp8, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4, nvfp4),
`plain` must print exactly what `expected SPEC` prints: the same PyTorch ops (the same BLAS calls,
single-threaded) on A and B quantized per block along the reduction dimension k and dequantized to
FP32, the output (and C, which addmm's D overwrites) rounded to BF16 by PyTorch's cast.

The model, written from the specifications (not from the probe's code):
  - OCP Microscaling Formats (MX) v1.0, section 5.3 (element formats: E4M3 max 448 emax 8, E5M2
    max 57344 emax 15, E3M2 max 28 emax 4, E2M3 max 7.5 emax 2, E2M1 max 6 emax 2, each with
    subnormals) and section 6.3 (conversion of a vector of 32 FP32 values): shared_exp =
    floor(log2(max |V_i|)) - emax_elem, X = 2^shared_exp clamped to E8M0's range [2^-127, 2^127];
    P_i = V_i / X cast to the element format with round to nearest, ties to even, values beyond
    the largest normal saturating to +-max (the "saturating" conversion the spec permits and
    CUDA's __nv_cvt_*_satfinite implements); the decoded value is P_i * X.
  - NVFP4 (NVIDIA's two-level scaling, as kernels/include/fpscope/block_numerics.h documents it):
    blocks of 16 E2M1 elements; per-tensor FP32 scale s_enc = fl(6 * 448 / amax(tensor)); per
    block an E4M3 scale sf = E4M3_rne_saturating(fl(fl(amax_block / 6) * s_enc)); elements
    q = E2M1_rne_saturating(fl(x * fl(s_enc / sf))); decoded fl(fl(q * sf) / s_enc); sf = 0
    decodes every element to (signed) 0. All in FP32 (numpy float32), the casts exact in float64.
Blocks run along k, a row of k elements' last block shorter (k = 70 here: 32 + 32 + 6 for MX,
4 x 16 + 6 for NVFP4).
"""
import sys

import numpy as np
import torch

torch.set_num_threads(1)

# name: (mantissa bits, emax = exponent of the largest normal, emin = of the smallest normal, max)
ELEM = {
    "e4m3": (3, 8, -6, 448.0),
    "e5m2": (2, 15, -14, 57344.0),
    "e3m2": (2, 4, -2, 28.0),
    "e2m3": (3, 2, 0, 7.5),
    "e2m1": (1, 2, 0, 6.0),
}
MX = {"mxfp8": "e4m3", "mxfp8_e4m3": "e4m3", "mxfp8_e5m2": "e5m2", "mxfp6_e3m2": "e3m2",
      "mxfp6_e2m3": "e2m3", "mxfp4": "e2m1"}


def bits(t):
    return " ".join(float(v).hex() for v in t.detach().flatten().tolist())


def elem_round(v, fmt):
    """Float64 array v to the element format: RNE on the format's grid, saturating at +-max."""
    man, _, emin, mx = ELEM[fmt]
    v = np.asarray(v, dtype=np.float64)
    a = np.abs(v)
    _, ex = np.frexp(np.where(a > 0, a, 1.0))  # a = m * 2^ex, m in [0.5, 1): floor(log2 a) = ex-1
    e = np.maximum(ex - 1, emin)
    quantum = np.ldexp(1.0, e - man)
    r = np.minimum(np.round(a / quantum) * quantum, mx)  # np.round: half to even
    return np.copysign(r, v)


def mx_block(x, fmt):
    """One block (float32 array) of an MX format, decoded to float32."""
    _, emax, _, _ = ELEM[fmt]
    amax = float(np.max(np.abs(x.astype(np.float64))))
    shared = -127 if amax == 0 else max(int(np.floor(np.log2(amax))) - emax, -127)
    X = 2.0 ** shared
    return (elem_round(x.astype(np.float64) / X, fmt) * X).astype(np.float32)


def nvfp4_block(x, s_enc):
    f32 = np.float32
    amax = np.max(np.abs(x))
    sf = f32(elem_round(f32(f32(amax / f32(6.0)) * s_enc), "e4m3"))
    if sf == 0:
        return np.copysign(np.zeros_like(x), x)
    y = (x * f32(s_enc / sf)).astype(np.float32)
    q = elem_round(y, "e2m1").astype(np.float32)
    return ((q * sf).astype(np.float32) / s_enc).astype(np.float32)


def quantize(t, axis, spec):
    """t (2-D tensor) quantized per block along `axis` (its k), dequantized; same layout."""
    x = t.detach().numpy().astype(np.float32)
    if axis == 0:
        return quantize(t.t(), 1, spec).t()
    out = np.empty_like(x)
    if spec == "nvfp4":
        s_enc = np.float32(2688.0) / np.float32(np.max(np.abs(x)))
        size = 16
    else:
        size = 32
    for i in range(x.shape[0]):
        for s in range(0, x.shape[1], size):
            b = x[i, s:s + size]
            out[i, s:s + size] = nvfp4_block(b, s_enc) if spec == "nvfp4" else mx_block(b, MX[spec])
    return torch.from_numpy(out)


def contiguous_like(q, t):
    """q with t's strides (so that PyTorch makes the same BLAS call)."""
    if t.is_contiguous():
        return q.contiguous()
    return q.t().contiguous().t()


def bf16(t):
    return t.to(torch.bfloat16).float()


def main():
    mode = sys.argv[1]
    g = torch.Generator().manual_seed(18)
    m, k, n = 9, 70, 11
    x = torch.randn(m, k, generator=g) * 3.1
    x[:, :32] *= torch.logspace(-3, 2, m).unsqueeze(1)  # rows of different magnitudes
    x[2, 32:64] = 0.0  # a zero block (MX; two for NVFP4)
    x[5, 40] = 250.0  # an outlier: its block's other elements lose precision
    w = torch.randn(k, n, generator=g) * 0.7
    w[64:, :] *= 1e-3  # the short last block of each column, small
    c = torch.randn(m, n, generator=g) * 30.0
    xt = (torch.randn(k, m, generator=g) * 0.3)  # stored k x m: x2 = xt.t() is transposed
    W = torch.randn(n, k, generator=g) * torch.logspace(-1, 1, n).unsqueeze(1)
    if mode == "plain":
        r = (x @ w, torch.addmm(c, x, w), torch.nn.functional.linear(xt.t(), W))
    else:
        spec = sys.argv[2].lower()
        qx, qw = quantize(x, 1, spec), contiguous_like(quantize(w, 0, spec), w)
        qx2 = contiguous_like(quantize(xt.t(), 1, spec), xt.t())
        qW = quantize(W, 1, spec)
        r = (bf16(qx @ qw), bf16(torch.addmm(bf16(c), qx, qw)),
             bf16(torch.nn.functional.linear(qx2, qW)))
    for name, t in zip(("mm", "addmm", "linear"), r):
        print(name, bits(t))


if __name__ == "__main__":
    main()
