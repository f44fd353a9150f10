#!/usr/bin/python3
"""End-to-end check of the block-scaled formats (issue 19 items 3 and 6): the bundled numpy
sample (samples/numpy/train.py) recorded with `fpscope record`, and `fpscope summary --json`'s
block_formats numbers and block_loss finding for one tensor recomputed here in numpy.

The tensor: the first GEMM's A operand, np.dot(x, w1) with x the sample's 512 x 32 float32 input
(rng seed 7, column 0 scaled by 3e3: one outlier per block). x never changes during training, so
every observation of that operand holds the same numbers and the summary's totals are the
observation count times one tensor's. numpy passes the row-major x as cblas_sgemm(RowMajor,
NoTrans) with K = 32: the reduction dimension is a row of x, so each row is one MX block (two
NVFP4 blocks), contiguous in memory (the summary's axis "rows" of the column-major stored view).
The reference below is written from the OCP MX v1.0 / NVFP4 definitions (docs/metrics.md), in
float64 (exact for these casts) and numpy float32 where NVFP4 computes in FP32.
Exit code 77 (CTest: skipped) when numpy cannot be imported.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:  # pragma: no cover
    print("numpy not importable: skipped")
    sys.exit(77)

# name: (mantissa bits, exponent bias, emax, max finite, max has an odd mantissa)
ELEMENT = {
    "e4m3": (3, 7, 8, 448.0, False),
    "e5m2": (2, 15, 15, 57344.0, True),
    "e3m2": (2, 3, 4, 28.0, True),
    "e2m3": (3, 1, 2, 7.5, True),
    "e2m1": (1, 1, 2, 6.0, True),
}
MX = {"mxfp8_e4m3": "e4m3", "mxfp8_e5m2": "e5m2", "mxfp6_e3m2": "e3m2", "mxfp6_e2m3": "e2m3",
      "mxfp4": "e2m1"}


def cast(y, elem):
    """Round-to-nearest-even, saturating cast of float64 y to an element format: (value as
    float64 with the sign of y, saturated mask)."""
    mbits, bias, emax, vmax, max_odd = ELEMENT[elem]
    a = np.abs(y)
    _, ex = np.frexp(np.where(a > 0, a, 1.0))
    e = np.maximum(ex - 1, 1 - bias)  # the binade, subnormals in the lowest one
    quantum = np.ldexp(1.0, e - mbits)
    r = np.round(a / quantum) * quantum  # np.round: ties to even; a / quantum is exact
    tie = vmax + np.ldexp(1.0, emax - mbits) / 2
    saturated = (a > tie) | ((a == tie) & max_odd)
    return np.sign(y) * np.minimum(r, vmax), saturated


def mx_stats(x, elem):
    mbits, bias, emax, vmax, _ = ELEMENT[elem]
    blocks = x.reshape(-1, 32).astype(np.float64)
    amax = np.abs(blocks).max(axis=1)
    _, ex = np.frexp(np.where(amax > 0, amax, 1.0))
    shared = np.where(amax > 0, ex - 1 - emax, -127 - emax)
    underflow = (amax > 0) & (shared < -127)
    shared = np.maximum(shared, -127)
    X = np.ldexp(1.0, shared)[:, None]
    q, sat = cast(blocks / X, elem)
    err = blocks - q * X
    hist = {}
    for s in shared:
        hist[str(int(s))] = hist.get(str(int(s)), 0) + 1
    return dict(blocks=len(blocks), elements=blocks.size,
                flushed=int(((blocks != 0) & (q == 0)).sum()), saturated=int(sat.sum()),
                zero_blocks=int((amax == 0).sum()), scale_underflow=int(underflow.sum()),
                scale_overflow=0, nan_scale=0, sum_err2=float((err * err).sum()),
                sum_x2=float((blocks * blocks).sum()), scale_exponents=hist)


def nvfp4_stats(x):
    f32 = np.float32
    s_enc = f32(2688.0) / f32(np.abs(x).max())  # 6 * 448 / tensor amax, in FP32
    blocks = x.reshape(-1, 16)
    amax = np.abs(blocks).max(axis=1).astype(f32)
    want = ((amax / f32(6.0)).astype(f32) * s_enc).astype(f32)
    sf, sf_sat = cast(want.astype(np.float64), "e4m3")  # the E4M3 block scale
    out = dict(blocks=len(blocks), elements=blocks.size, flushed=0, saturated=0, zero_blocks=0,
               scale_underflow=0, scale_overflow=int(sf_sat.sum()), nan_scale=0, sum_err2=0.0,
               sum_x2=0.0, scale_exponents={})
    for b, s in zip(blocks, sf):
        xb = b.astype(np.float64)
        if s == 0:
            q = np.zeros_like(xb)
            sat = np.zeros(len(xb), bool)
            out["zero_blocks"] += int(not xb.any())
            out["scale_underflow"] += int(xb.any())
            key = "-127"
        else:
            inv = f32(s_enc / f32(s))
            y = (b * inv).astype(f32).astype(np.float64)
            q, sat = cast(y, "e2m1")
            key = str(int(np.frexp(s)[1] - 1))
        out["scale_exponents"][key] = out["scale_exponents"].get(key, 0) + 1
        out["flushed"] += int(((xb != 0) & (q == 0)).sum())
        out["saturated"] += int(sat.sum())
        err = (xb * float(s_enc) - q * s) / float(s_enc)
        out["sum_err2"] += float((err * err).sum())
        out["sum_x2"] += float((xb * xb).sum())
    return out


def fmt_pct(frac):
    """analysis/src/common.cpp fmt_pct: "0%", 2 significant digits under 0.01%, else 3."""
    if frac == 0:
        return "0%"
    p = frac * 100.0
    return f"{p:.2g}%" if p < 0.01 else f"{p:.3g}%"


# Element bits and mantissa bits of each block format's elements (docs/metrics.md table).
BITS = {"mxfp8_e4m3": (8, 3), "mxfp8_e5m2": (8, 2), "mxfp6_e3m2": (6, 2),
        "mxfp6_e2m3": (6, 3), "mxfp4": (4, 1), "nvfp4": (4, 1)}
ORDER = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "nvfp4"]


def check_block_finding(summary, tensor, want, x, e4m3_measured=True):
    """The block_loss finding of `tensor` (docs/metrics.md "Block-scaled formats", findings) from
    the numpy statistics `want` of one observation (the totals are multiples of it): the format
    it names (the most element bits among those losing >= 1% to flushing + saturation, ties: the
    larger loss), its title's percentages, its severity (warning at >= 10%), the per-tensor E4M3
    comparison (unscaled: the probe's default; or "not measured") and the cheapest format that
    holds the tensor (loss < 1% and SQNR >= 6.02 (mantissa bits + 1) + 5 - 10 dB; fewest bits,
    then higher SQNR), among the formats in `want` (the measured ones). Returns failure
    messages."""
    loss = {k: (w["flushed"] + w["saturated"]) / w["elements"] for k, w in want.items()}
    sqnr = {k: 10 * np.log10(w["sum_x2"] / w["sum_err2"]) for k, w in want.items()}
    losing = [k for k in ORDER if k in want and loss[k] >= 0.01]
    assert losing, loss
    named = max(losing, key=lambda k: (BITS[k][0], loss[k]))
    holding = [k for k in ORDER if k in want
               and loss[k] < 0.01 and sqnr[k] >= 6.02 * (BITS[k][1] + 1) + 5 - 10]
    cheapest = min(holding, key=lambda k: (BITS[k][0], -sqnr[k])) if holding else None
    w = want[named]
    disp = named.upper().replace("_", " ")
    ff, sf = fmt_pct(w["flushed"] / w["elements"]), fmt_pct(w["saturated"] / w["elements"])
    if w["saturated"] == 0:
        title = f"{disp} would flush {ff} of {tensor} to zero inside its blocks"
    elif w["flushed"] == 0:
        title = f"{disp} would saturate {sf} of {tensor} inside its blocks"
    else:
        title = f"{disp} would flush {ff} of {tensor} to zero and saturate {sf} inside its blocks"
    # Per-tensor E4M3, unscaled, non-saturating round-to-nearest-even: 464 (halfway from 448 to
    # the NaN code 480) ties to 448; 2^-10 (half the smallest subnormal) ties to 0.
    a = np.abs(x.astype(np.float64))
    e4m3 = (f"Per-tensor E4M3 on the same observations (unscaled): flushes "
            f"{fmt_pct(((a > 0) & (a <= 2.0 ** -10)).sum() / a.size)}, overflows "
            f"{fmt_pct((a > 464).sum() / a.size)}" if e4m3_measured
            else "Per-tensor E4M3: not measured (FPSCOPE_FORMATS)")
    found = [f for f in summary["findings"] if f["kind"] == "block_loss" and f["tensor"] == tensor]
    if len(found) != 1:
        return [f"block_loss findings of {tensor}: {found}"]
    f = found[0]
    out = []
    if f["title"] != title:
        out.append(f"block_loss title: {f['title']!r}, numpy {title!r}")
    sev = "warning" if loss[named] >= 0.1 else "info"
    if f["severity"] != sev:
        out.append(f"block_loss severity: {f['severity']}, numpy {sev}")
    if e4m3 not in f["evidence"]:
        out.append(f"block_loss evidence lacks {e4m3!r}: {f['evidence']!r}")
    rec = (f"use {cheapest.upper().replace('_', ' ')}: the cheapest measured block format"
           if cheapest else "No measured block format holds this tensor")
    if rec not in f["recommendation"]:
        out.append(f"block_loss recommendation lacks {rec!r}: {f['recommendation']!r}")
    print(f"block_loss of {tensor}: {f['title']} ({f['severity']}); {rec}")
    return out


def sample_input():
    # samples/numpy/train.py's x, drawn the same way (the same generator calls in order).
    rng = np.random.default_rng(7)
    x = rng.standard_normal((512, 32)).astype(np.float32)
    x[:, 0] *= np.float32(3.0e3)
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fpscope", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--root", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        trace = os.path.join(d, "numpy.fpst")
        env = dict(os.environ, FPSCOPE_PROBE=args.probe, FPSCOPE_EVERY="1")
        env.pop("LD_PRELOAD", None)
        env["FPSCOPE_FORMATS"] = "all"  # every per-tensor and block format (blocks: opt-in)
        r = subprocess.run([args.fpscope, "record", "-o", trace, "--",
                            "/usr/bin/python3", os.path.join(args.root, "samples/numpy/train.py"),
                            "--steps", "4"], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        s = subprocess.run([args.fpscope, "summary", "--json", trace], capture_output=True,
                           text=True, timeout=300)
        assert s.returncode in (0, 1), s.stderr
        summary = json.loads(s.stdout)
        # The default (FPSCOPE_FORMATS unset) and a list without block formats: no block
        # numbers at all.
        for k, formats in enumerate((None, "bf16,fp16,e4m3,e5m2")):
            off = os.path.join(d, f"off{k}.fpst")
            off_env = dict(env)
            off_env.pop("FPSCOPE_FORMATS")
            if formats is not None:
                off_env["FPSCOPE_FORMATS"] = formats
            r = subprocess.run([args.fpscope, "record", "-o", off, "--", "/usr/bin/python3",
                                os.path.join(args.root, "samples/numpy/train.py"), "--steps", "2"],
                               capture_output=True, text=True, env=off_env, timeout=300)
            assert r.returncode == 0, r.stdout + r.stderr
            s = subprocess.run([args.fpscope, "summary", "--json", off], capture_output=True,
                               text=True, timeout=300)
            off_tensors = json.loads(s.stdout)["tensors"]
            assert off_tensors and all("block_formats" not in t for t in off_tensors), formats
        # Two block formats named, no per-tensor target: the finding picks among those two.
        sub = os.path.join(d, "subset.fpst")
        sub_env = dict(env, FPSCOPE_FORMATS="mxfp6_e3m2,mxfp4")
        r = subprocess.run([args.fpscope, "record", "-o", sub, "--", "/usr/bin/python3",
                            os.path.join(args.root, "samples/numpy/train.py"), "--steps", "2"],
                           capture_output=True, text=True, env=sub_env, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        s = subprocess.run([args.fpscope, "summary", "--json", sub], capture_output=True,
                           text=True, timeout=300)
        assert s.returncode in (0, 1), s.stderr
        subset_summary = json.loads(s.stdout)
    xs = [t for t in summary["tensors"]
          if t["role"] == "A" and t["shape"] == [32, 512] and "block_formats" in t
          and t["block_formats"]["axis"] == "rows"]
    assert len(xs) == 1, [(t["id"], t["shape"], t.get("block_formats", {}).get("axis"))
                          for t in summary["tensors"]]
    got = xs[0]["block_formats"]
    n = got["observations"]
    assert n >= 3, got
    x = sample_input()
    want = {name: mx_stats(x, elem) for name, elem in MX.items()}
    want["nvfp4"] = nvfp4_stats(x)
    failures = []
    for name, w in want.items():
        g = got[name]
        for k in ("blocks", "elements", "flushed", "saturated", "zero_blocks", "scale_underflow",
                  "scale_overflow", "nan_scale"):
            if g[k] != n * w[k]:
                failures.append(f"{name}.{k}: summary {g[k]}, numpy {n} x {w[k]}")
        if {k: v for k, v in g["scale_exponents"].items()} != \
                {k: n * v for k, v in w["scale_exponents"].items()}:
            failures.append(f"{name}.scale_exponents: {g['scale_exponents']} vs "
                            f"{n} x {w['scale_exponents']}")
        for k, tol in (("sum_x2", 1e-9), ("sum_err2", 1e-4)):
            if abs(g[k] - n * w[k]) > tol * abs(n * w[k]):
                failures.append(f"{name}.{k}: summary {g[k]!r}, numpy {n * w[k]!r}")
        print(f"{name}: flushed {g['flushed_frac']:.4%} saturated {g['saturated_frac']:.4%} "
              f"sqnr {g['sqnr_db']} dB (numpy: flushed {w['flushed'] / w['elements']:.4%})")
    # The outlier column makes the narrow formats flush: a check that the data is the intended.
    assert want["mxfp4"]["flushed"] > want["mxfp8_e4m3"]["flushed"] > 0, want
    failures += check_block_finding(summary, xs[0]["id"], want, x)
    failures += check_block_finding(subset_summary, xs[0]["id"],
                                    {k: want[k] for k in ("mxfp6_e3m2", "mxfp4")}, x,
                                    e4m3_measured=False)
    if failures:
        print("\n".join(failures))
        return 1
    print("block formats of", xs[0]["id"], "match numpy over", n, "observations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
