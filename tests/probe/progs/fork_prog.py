"""A program that forks (or starts another Python) between GEMMs, for the probe's fork tests.
  fork_prog.py fork OUT.json [torch]        parent: P1 GEMMs, os.fork(); the child does C GEMMs of
                                            another shape, checks them, os._exit(0) (as a forked
                                            worker does); the parent waits, then P2 GEMMs
  fork_prog.py subprocess OUT.json [torch]  the same, but the child is subprocess.run() of
                                            "fork_prog.py child ..." (normal exit)
GEMMs are float32 np.matmul (cblas_sgemm) or, with "torch", torch.mm (sgemm_). Every product is
checked against an exact int64 product (small integer entries: float32 is exact). Writes to OUT.json
{"parent_pid", "child_pid", "child_status", "parent": {"shape", "calls", "amax"},
 "child": {...}} (the child writes its part to OUT.json.child first)."""
import json
import os
import subprocess
import sys

import numpy as np

P1, P2, C = 6, 5, 7
PARENT_SHAPE = (30, 20, 10)  # m, k, n
CHILD_SHAPE = (14, 11, 7)


def gemms(lib, shape, calls, seed):
    m, k, n = shape
    rng = np.random.default_rng(seed)
    amax = []
    for _ in range(calls):
        a = rng.integers(-8, 9, (m, k)).astype(np.float32)
        b = rng.integers(-8, 9, (k, n)).astype(np.float32)
        if lib == "torch":
            import torch
            d = torch.mm(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        else:
            d = np.matmul(a, b)
        exact = a.astype(np.int64) @ b.astype(np.int64)
        if not (d.astype(np.int64) == exact).all():
            raise SystemExit("wrong GEMM result in process %d" % os.getpid())
        amax.append(float(np.abs(d).max()))
    return {"shape": list(shape), "calls": calls, "amax": amax}


def child_part(lib, out):
    part = gemms(lib, CHILD_SHAPE, C, 2)
    part["pid"] = os.getpid()
    with open(out + ".child", "w") as f:
        json.dump(part, f)


def main():
    mode, out = sys.argv[1], sys.argv[2]
    lib = sys.argv[3] if len(sys.argv) > 3 else "numpy"
    if lib == "torch":
        import torch
        torch.set_num_threads(1)
    if mode == "child":
        child_part(lib, out)
        return 0
    first = gemms(lib, PARENT_SHAPE, P1, 1)
    sys.stdout.flush()
    if mode == "fork":
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                child_part(lib, out)
            except BaseException as e:  # noqa: BLE001 - report anything, never return
                sys.stderr.write("child failed: %r\n" % (e,))
                code = 5
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        status = os.waitstatus_to_exitcode(status)
    else:
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "child", out, lib])
        status = r.returncode
    second = gemms(lib, PARENT_SHAPE, P2, 3)
    with open(out + ".child") as f:
        child = json.load(f)
    with open(out, "w") as f:
        json.dump({"parent_pid": os.getpid(), "child_pid": child["pid"], "child_status": status,
                   "parent": {"shape": list(PARENT_SHAPE), "calls": P1 + P2,
                              "amax": first["amax"] + second["amax"]},
                   "child": child}, f)
    print("parent done, child status %d" % status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
