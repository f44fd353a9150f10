"""Drives fpscope.py's one-call framework boundary (fpscope_framework_boundary) as the PyTorch
integration does, without torch. Usage: boundary_prog.py PROBE_PYTHON_DIR OUT.json
Step s ends with 3 + 7 * s loss values (step 2: 17, more than the 16 slots of one call), value
k of step s being s + k / 64 (exact in binary). Writes what each call returned."""
import json
import sys

sys.path.insert(0, sys.argv[1])
import fpscope  # noqa: E402


def main():
    out = {"active": fpscope.active(), "state0": list(fpscope._framework_state()), "calls": []}
    fpscope._framework_claim_steps()
    for s in range(4):
        losses = [s + k / 64.0 for k in range(3 + 7 * s)]
        out["calls"].append(list(fpscope._framework_boundary(losses)))
    out["state"] = list(fpscope._framework_state())
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
