"""CPU test of the GPU acceptance scripts (run by CTest, label unit; no GPU, no torch needed).

1. Syntax: `bash -n tests/gpu/run.sh`, and every tests/gpu/*.py compiles (without writing
   bytecode into the source tree).
2. check_traces.py's logic on synthetic `fpscope summary --json` documents: a summary that is
   right passes; each planted mistake (a GEMM named by shape only, the dL/dh GEMM of the same shape
   taken for fc1, a loss-scale series off by one step, a wrong amax, a missing NVTX name, a
   planted overflow in the wrong step, a wrong GEMM count) fails with its message.
Usage: test_check_traces.py TESTS_GPU_DIR
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

HERE = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "check_traces.py")
problems = []


def syntax():
    r = subprocess.run(["bash", "-n", os.path.join(HERE, "run.sh")], capture_output=True,
                       text=True)
    if r.returncode != 0:
        problems.append(f"bash -n run.sh: {r.stderr.strip()}")
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".py"):
            path = os.path.join(HERE, name)
            try:
                compile(open(path).read(), path, "exec")
            except SyntaxError as e:
                problems.append(f"{name}: {e}")


def tensor(tid, role="D", op="cublasGemmEx", dtype="fp16", shape=(8, 8), obs=3, first=1, last=3,
           amax=1.0, nonfinite=None, inf=0):
    name = tid.rsplit(".", 1)[0] if not tid.startswith("gemm#") else ""
    return {"id": tid, "name": name, "op": op, "role": role, "dtype": dtype, "shape": list(shape),
            "observations": obs, "first_step": first, "last_step": last, "amax": amax,
            "nan": 0, "pos_inf": inf, "neg_inf": 0, "first_nonfinite_step": nonfinite}


def mlp_case(steps=3, plant=1):
    names = ["fc1.fwd", "fc2.fwd", "fc2.dW", "fc2.dX", "fc1.dW"]
    ts = []
    for n in names:
        bad = n in ("fc2.dW", "fc2.dX")
        ts.append(tensor(n + ".D", obs=steps, first=0, last=steps - 1, inf=5 if bad else 0,
                         nonfinite=plant if bad else None))
        ts.append(tensor(n + ".A", role="A", obs=steps, first=0, last=steps - 1))
    plain = "".join(f"step {s} loss 0.5 scale 65536 found_inf {1 if s == plant else 0}\n"
                    for s in range(steps))
    return {"trace": {"step_source": "nvtx"}, "tensors": ts, "loss_scale": []}, plain


def amp_case(n=4):
    steps = [{"step": s, "scale": 65536.0 / (2 if s >= 2 else 1), "next_scale": 0,
              "found_inf": s == 1} for s in range(n)]
    for s in steps:
        s["next_scale"] = s["scale"] / 2 if s["found_inf"] else s["scale"]
    expect = {"steps": steps, "gemms_per_step": 5,
              "named": {"fc1": {"amax": [3.5, 4.25, 4.0, 3.0], "shape": [1024, 128]},
                        "fc2": {"amax": [1.5, 1.25, 1.0, 1.0], "shape": [256, 128]}}}
    ts = [tensor("fc1.D", op="cublasLtMatmul", shape=(1024, 128), obs=n, amax=4.25),
          tensor("fc2.D", op="cublasLtMatmul", shape=(256, 128), obs=n, amax=1.5),
          # dL/dh: the same shape as fc1's output, a larger amax (the shape-only check took it).
          tensor("gemm#3.D", shape=(1024, 128), obs=n, amax=4.3),
          tensor("gemm#2.D", shape=(256, 1024), obs=n, amax=0.1),
          tensor("gemm#4.D", shape=(1024, 512), obs=n, amax=0.2)]
    summary = {"trace": {"step_source": "loss_scale_kernel"}, "tensors": ts,
               "loss_scale": [{"step": s["step"], "scale": s["scale"], "found_inf": s["found_inf"],
                               "next_scale": s["next_scale"]} for s in steps]}
    return summary, expect


def run(args, files):
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, content in enumerate(files):
            p = os.path.join(d, f"f{i}")
            with open(p, "w") as f:
                f.write(content if isinstance(content, str) else json.dumps(content))
            paths.append(p)
        argv = [sys.executable, CHECK] + [a if not isinstance(a, int) or a >= 0 else paths[-a - 1]
                                          for a in args]
        # Placeholders -1, -2, ... name the files.
        r = subprocess.run(argv, capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr


def expect(label, code_out, ok, needle=None):
    code, out = code_out
    if ok and code != 0:
        problems.append(f"{label}: expected to pass, got {code}: {out.strip()}")
    if not ok and (code != 1 or (needle and needle not in out)):
        problems.append(f"{label}: expected FAIL with {needle!r}, got {code}: {out.strip()}")


def mlp(summary, plain, steps=3, plant=1):
    return run(["mlp", -1, str(steps), str(plant), -2], [summary, plain])


def amp(summary, exp):
    return run(["amp", -1, -2], [summary, exp])


def checks():
    s, plain = mlp_case()
    expect("mlp good", mlp(s, plain), True)
    bad = copy.deepcopy(s)
    bad["trace"]["step_source"] = "gemm_period"
    expect("mlp no nvtx steps", mlp(bad, plain), False, "expected NVTX")
    bad = copy.deepcopy(s)
    bad["tensors"][0]["id"] = "gemm#0.D"
    expect("mlp missing name", mlp(bad, plain), False, "no tensor fc1.fwd.D")
    bad = copy.deepcopy(s)
    bad["tensors"][2]["observations"] = 2
    expect("mlp observations", mlp(bad, plain), False, "observed 2 times")
    expect("mlp overflow step", mlp(s, plain.replace("found_inf 1", "found_inf 0"), 3, 1), False,
           "found Inf/NaN at iterations []")
    bad = copy.deepcopy(s)
    for t in bad["tensors"]:
        if t["first_nonfinite_step"] is not None:
            t["first_nonfinite_step"] = 3
    expect("mlp nonfinite step", mlp(bad, plain), False, "expected 1 (iteration 1)")

    s, e = amp_case()
    expect("amp good", amp(s, e), True)
    bad = copy.deepcopy(s)
    bad["tensors"][0]["id"] = "gemm#0.D"  # fc1 unnamed: must not fall back to the shape
    expect("amp fc1 unnamed", amp(bad, e), False, "no tensor fc1.D")
    bad = copy.deepcopy(s)
    bad["tensors"][0]["amax"] = 4.3  # the dL/dh value
    expect("amp wrong amax", amp(bad, e), False, "fc1.D amax 4.3")
    bad = copy.deepcopy(s)
    for r in bad["loss_scale"]:
        r["step"] += 1  # off by one step
    expect("amp loss-scale steps", amp(bad, e), False, "loss-scale series differs")
    bad = copy.deepcopy(s)
    bad["loss_scale"][2]["scale"] = 65536.0
    expect("amp loss-scale value", amp(bad, e), False, "loss-scale series differs")
    bad = copy.deepcopy(s)
    bad["loss_scale"].pop()
    expect("amp loss-scale missing step", amp(bad, e), False, "3 records vs 4 steps")
    bad = copy.deepcopy(s)
    bad["tensors"][2]["observations"] = 3
    expect("amp gemm count", amp(bad, e), False, "19 GEMM outputs observed, expected 5 x 4")


syntax()
checks()
for p in problems:
    print(p)
print(f"{len(problems)} problems")
sys.exit(1 if problems else 0)
