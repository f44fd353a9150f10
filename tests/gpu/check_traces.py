"""Checks `fpscope summary --json` output against what the programs computed (tests/gpu/run.sh).

  check_traces.py mlp SUMMARY.json STEPS PLANT PLAIN_OUTPUT.txt
  check_traces.py amp SUMMARY.json EXPECT.json
Exit 0 when every check passes, 1 with a "FAIL: ..." line otherwise.
"""
import json
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def by_id(summary):
    return {t["id"]: t for t in summary["tensors"]}


MLP_GEMMS = ["fc1.fwd", "fc2.fwd", "fc2.dW", "fc2.dX", "fc1.dW"]


def check_mlp(summary_path, steps, plant, plain_path):
    s = load(summary_path)
    ids = by_id(s)
    if s["trace"]["step_source"] != "nvtx":
        fail(f"cuda_mlp: steps from {s['trace']['step_source']!r}, expected NVTX ranges 'step'")
    # Every GEMM named by its NVTX range and observed once per step (--every 1). Steps: the first
    # range "step" starts step 0 when no GEMM came before it (probe/cuda/nvtx_inject.h), so
    # iteration i is trace step i.
    for name in MLP_GEMMS:
        t = ids.get(name + ".D")
        if t is None:
            fail(f"cuda_mlp: no tensor {name}.D (NVTX names missing?); ids: {sorted(ids)[:12]}")
        if t["op"] != "cublasGemmEx" or t["dtype"] != "fp16":
            fail(f"cuda_mlp: {name}.D is {t['op']} {t['dtype']}, expected cublasGemmEx fp16")
        if t["observations"] != steps or t["first_step"] != 0 or t["last_step"] != steps - 1:
            fail(f"cuda_mlp: {name}.D observed {t['observations']} times in steps "
                 f"{t['first_step']}..{t['last_step']}, expected {steps} in 0..{steps - 1}")
    others = [t["id"] for t in s["tensors"] if t["role"] == "D" and t["id"] not in
              {n + ".D" for n in MLP_GEMMS}]
    if others:
        fail(f"cuda_mlp: unexpected GEMM outputs {others}")
    # The planted overflow: the program itself reports found_inf only at iteration `plant`, and the
    # trace's first non-finite data is in that step (the FP16 dY overflowed; dW2/dH inherit it).
    found = [int(line.split()[1]) for line in open(plain_path)
             if line.startswith("step ") and line.split()[-1] == "1"]
    if found != [plant]:
        fail(f"cuda_mlp: the program found Inf/NaN at iterations {found}, expected [{plant}]")
    first = [t["first_nonfinite_step"] for t in s["tensors"]
             if t["first_nonfinite_step"] is not None]
    if not first or min(first) != plant:
        fail(f"cuda_mlp: first non-finite step in the trace {min(first) if first else None}, "
             f"expected {plant} (iteration {plant})")
    for name in ("fc2.dW", "fc2.dX"):
        t = ids[name + ".D"]
        if t["pos_inf"] + t["neg_inf"] + t["nan"] == 0:
            fail(f"cuda_mlp: {name}.D shows no Inf/NaN although its dY operand overflowed")
    print(f"ok: cuda_mlp {len(MLP_GEMMS)} named GEMMs x {steps} steps from NVTX, planted overflow "
          f"first seen in step {plant}")


def check_amp(summary_path, expect_path):
    s = load(summary_path)
    e = load(expect_path)
    ids = by_id(s)
    # Loss scale: the series from the real kernel equals scaler.get_scale(), step by step.
    got = [(r["step"], r["scale"], bool(r["found_inf"])) for r in s["loss_scale"]]
    want = [(w["step"], w["scale"], bool(w["found_inf"])) for w in e["steps"]]
    if got != want:
        diff = [(g, w) for g, w in zip(got, want) if g != w][:5]
        fail(f"amp: loss-scale series differs from scaler.get_scale(): {len(got)} records vs "
             f"{len(want)} steps; first differences (trace, torch): {diff}")
    for r, w in zip(s["loss_scale"], e["steps"]):
        if r.get("next_scale") is not None and r["next_scale"] != w["next_scale"]:
            fail(f"amp: step {w['step']}: next scale {r['next_scale']} vs torch {w['next_scale']}")
    if s["trace"]["step_source"] != "loss_scale_kernel":
        fail(f"amp: steps from {s['trace']['step_source']!r}, expected the loss-scale kernel")
    print(f"ok: amp loss-scale series equals scaler.get_scale() for {len(want)} steps")
    # GEMM count: every step has exactly the GEMMs of 2 Linear layers (forward + backward).
    n = len(e["steps"])
    d_obs = sum(t["observations"] for t in s["tensors"] if t["role"] == "D")
    if d_obs != e["gemms_per_step"] * n:
        per = sorted((t["id"], t["op"], t["observations"]) for t in s["tensors"] if t["role"] == "D")
        fail(f"amp: {d_obs} GEMM outputs observed, expected {e['gemms_per_step']} x {n}: {per}")
    print(f"ok: amp {d_obs} GEMM outputs = {e['gemms_per_step']} per step x {n} steps")
    # amax of each named forward GEMM output against torch (exact: max is exact in any format).
    for name, want_t in e["named"].items():
        t = ids.get(name + ".D")
        if t is None:
            fail(f"amp: no tensor {name}.D (named by {'NVTX' if name == 'fc1' else 'fpscope.scope'})"
                 f"; ids: {sorted(ids)[:12]}")
        if t["shape"] != want_t["shape"]:
            fail(f"amp: {name}.D has shape {t['shape']}, expected {want_t['shape']}")
        want_amax = max(want_t["amax"])
        if t["amax"] != want_amax:
            fail(f"amp: {name}.D amax {t['amax']} vs torch {want_amax}")
        if t["observations"] != n:
            fail(f"amp: {name}.D observed {t['observations']} times, expected {n}")
        print(f"ok: amp {name}.D amax {t['amax']} == torch {want_amax} ({t['op']})")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "mlp":
        check_mlp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) == 4 and sys.argv[1] == "amp":
        check_amp(sys.argv[2], sys.argv[3])
    else:
        print(__doc__)
        sys.exit(2)
