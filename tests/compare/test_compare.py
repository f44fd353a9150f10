"""`fpscope compare --emulate fp32,bf16,fp16 -- CMD` end to end on a torch.nn program (issue 18
items 2, 3 and 5).

compare_program.py saves the output of its layer fc1 at every step (the forward GEMM's D) and its
losses, per run. From those full tensors this test computes, with numpy, the exact relative
difference ||run - fp32|| / ||fp32|| of fc1's output per step, and holds the report's estimate
(from the value sketches in the traces) against it: every step within 20 %, at least 80 % of them
within 10 % (the sketch's norm has ~4.4 % relative standard deviation; the program and the hashes
are deterministic, so this run gives the same numbers every time). It also checks:
  - the reference run (probe, sketches on, no emulation) prints bit for bit what the program
    prints without the probe, and its losses are the report's reference loss curve;
  - the emulated runs really differ from FP32 (else the comparison could not fail), and the
    report's loss differences are the programs' own, (run - fp32) / |fp32|;
  - BF16 and FP16 stay within 1 % of FP32's loss on this healthy run (issue 18 item 5);
  - the runs, traces and report files are where the command says, and a bad setting is refused.

  test_compare.py --fpscope BIN --root SRC
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

PY = "/usr/bin/python3"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fpscope", required=True)
    ap.add_argument("--root", required=True)
    a = ap.parse_args()
    if subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode != 0:
        print("SKIP: no torch in /usr/bin/python3 (Debian's python3-torch)")
        return 77
    prog = os.path.join(a.root, "tests", "compare", "compare_program.py")
    fails = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env.pop("FPSCOPE_EMULATE", None)
        plain = subprocess.run([PY, prog, os.path.join(tmp, "plain")], capture_output=True,
                               text=True, env=env)
        assert plain.returncode == 0, plain.stderr
        out = os.path.join(tmp, "cmp")
        r = subprocess.run([a.fpscope, "compare", "--emulate", "fp32,bf16,fp16", "--every", "1",
                            "-o", out, "--", PY, prog, os.path.join(tmp, "run")],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(r.stdout, r.stderr)
            return 1
        runs = r.stdout.split("step 0 ")
        if len(runs) != 4 or "step 0 " + runs[1] != plain.stdout:
            fails.append("the reference run's output is not the program's own output bit for bit")
        for f in ("fp32.fpst", "bf16.fpst", "fp16.fpst", "report.md", "report.json"):
            if not os.path.isfile(os.path.join(out, f)):
                fails.append(f"{f} missing in {out}")
        rep = json.load(open(os.path.join(out, "report.json")))
        ref = np.load(os.path.join(tmp, "run-off.npz"))
        base = np.load(os.path.join(tmp, "plain-off.npz"))
        if not np.array_equal(ref["loss"], base["loss"]) or not np.array_equal(ref["fc1"],
                                                                                base["fc1"]):
            fails.append("the probe changed the reference run's values")
        rows = rep["loss"]["rows"]
        got_ref = [row["loss"][0] for row in rows]
        if not np.array_equal(np.array(got_ref), ref["loss"]):
            fails.append(f"reference loss curve {got_ref} != the program's {ref['loss'].tolist()}")
        labels = [x["label"] for x in rep["runs"]]
        if labels != ["fp32", "bf16", "fp16"]:
            fails.append(f"run labels {labels}")
        within10 = total = 0
        for k, (label, tag) in enumerate((("bf16", "bf16"), ("fp16", "fp16")), start=1):
            run = np.load(os.path.join(tmp, f"run-{tag}.npz"))
            if np.array_equal(run["fc1"], ref["fc1"]):
                fails.append(f"{label}: fc1's output equals FP32's: the test cannot fail")
            want_loss = (run["loss"] - ref["loss"]) / np.abs(ref["loss"])
            got_loss = np.array([row["rel_diff"][k - 1] for row in rows])
            if not np.allclose(got_loss, want_loss, rtol=1e-9, atol=1e-15):
                fails.append(f"{label}: loss differences {got_loss} != {want_loss}")
            if np.max(np.abs(want_loss)) > 0.01:
                fails.append(f"{label}: loss moved by {np.max(np.abs(want_loss)):.3%} from FP32")
            cmp = next(c for c in rep["comparisons"] if c["run"] == label)
            fc1 = [t for t in cmp["tensors"] if t["tensor"] == "fc1.D"]
            if len(fc1) != 1:
                fails.append(f"{label}: fc1.D not among the compared tensors")
                continue
            steps, est = fc1[0]["steps"], fc1[0]["rel_diff"]
            if steps != list(range(len(ref["loss"]))):
                fails.append(f"{label}: fc1.D compared at steps {steps}")
            for s, e in zip(steps, est):
                exact = (np.linalg.norm((run["fc1"][s] - ref["fc1"][s]).astype(np.float64)) /
                         np.linalg.norm(ref["fc1"][s].astype(np.float64)))
                rel = abs(e / exact - 1.0)
                print(f"{label} step {s}: exact {exact:.6g}, sketch {e:.6g} ({rel:.1%} off)")
                total += 1
                within10 += rel <= 0.10
                if rel > 0.20:
                    fails.append(f"{label} step {s}: estimate {e:.6g} vs exact {exact:.6g}")
        if within10 < 0.8 * total:
            fails.append(f"only {within10} of {total} estimates within 10 %")
        bad = subprocess.run([a.fpscope, "compare", "--emulate", "fp32,bf17", "-o",
                              os.path.join(tmp, "bad"), "--", PY, prog, "x"],
                             capture_output=True, text=True)
        if bad.returncode != 2 or "bf17" not in bad.stderr:
            fails.append(f"a bad setting: exit {bad.returncode}, {bad.stderr.strip()[:200]}")
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
