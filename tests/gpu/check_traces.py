"""Checks `fpscope summary --json` output against what the programs computed (tests/gpu/run.sh)."""
import json
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def check_mlp(summary_path, steps):
    s = load(summary_path)
    gemms = [t for t in s["tensors"] if t["role"] == "D" and t["op"].startswith("cublas")]
    obs = sum(t["observations"] for t in gemms)
    # cuda_mlp issues 5 cublasGemmEx per step; with --every 1 each D is observed every step.
    if obs != 5 * steps:
        fail(f"cuda_mlp: {obs} GEMM D observations, expected {5 * steps}")
    over = sum(t["formats"]["fp16"]["overflow"] + t["pos_inf"] + t["neg_inf"] for t in s["tensors"])
    if over == 0:
        fail("cuda_mlp: the planted FP16 overflow is not visible in any tensor")
    print(f"ok: cuda_mlp {obs} GEMM D observations, planted overflow seen ({over} elements)")


def check_amp(summary_path, expect_path):
    s = load(summary_path)
    e = load(expect_path)
    got = {r["step"]: r for r in s["loss_scale"]}
    for want in e["steps"]:
        r = got.get(want["step"])
        if r is None:
            fail(f"amp: no loss-scale record for step {want['step']}")
        if r["scale"] != want["scale"] or bool(r["found_inf"]) != bool(want["found_inf"]):
            fail(f"amp: step {want['step']}: trace {r}, torch {want}")
    print(f"ok: amp loss-scale series equals scaler.get_scale() for {len(e['steps'])} steps")
    rows, cols = e["first_linear_shape"]
    want_amax = max(e["amax_first_linear"])
    cands = [t for t in s["tensors"] if t["role"] == "D" and t["shape"] == [rows, cols]]
    if not cands:
        fail(f"amp: no GEMM output of shape {rows}x{cols}")
    best = min(cands, key=lambda t: abs(t["amax"] - want_amax))
    if abs(best["amax"] - want_amax) > 1e-3 * want_amax:
        fail(f"amp: amax {best['amax']} ({best['id']}) vs torch {want_amax}")
    print(f"ok: amp first Linear amax {best['amax']} == torch {want_amax} ({best['id']})")


if __name__ == "__main__":
    if sys.argv[1] == "mlp":
        check_mlp(sys.argv[2], int(sys.argv[3]))
    else:
        check_amp(sys.argv[2], sys.argv[3])
