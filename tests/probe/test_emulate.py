"""`fpscope record --emulate FMT` (issue 18 item 1) end to end, against PyTorch's own casts.

For BF16 and FP16: emulate_check.py's products (mm, addmm with beta = 1, a bmm that PyTorch runs
as one sgemm per batch) recorded under --emulate must print exactly the bits that the same
products computed on PyTorch's casts print without the probe; the same program recorded without
--emulate must print the FP32 bits (so the comparison can fail); the trace says it was emulated
(summary --json trace.emulate, the summary's first line); an FP8 or unknown format is refused.

  test_emulate.py --fpscope BIN --probe LIB --root SRC
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

PY = "/usr/bin/python3"


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return r.returncode, r.stdout, r.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fpscope", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--root", required=True)
    a = ap.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        print("SKIP: no torch for", PY)
        return 77
    prog = os.path.join(a.root, "tests", "probe", "emulate_check.py")
    env = dict(os.environ, FPSCOPE_PROBE=a.probe, OMP_NUM_THREADS="1")
    env.pop("FPSCOPE_EMULATE", None)
    fails = []
    with tempfile.TemporaryDirectory() as tmp:
        rc, plain, err = run([PY, prog, "plain"], env)
        assert rc == 0, err
        for fmt in ("bf16", "fp16"):
            rc, expected, err = run([PY, prog, "expected", fmt], env)
            assert rc == 0, err
            if expected == plain:
                fails.append(f"{fmt}: the casts change nothing: the test cannot fail")
            trace = os.path.join(tmp, f"{fmt}.fpst")
            rc, got, err = run([a.fpscope, "record", "-o", trace, "--emulate", fmt, "--",
                                PY, prog, "plain"], env)
            if rc != 0:
                fails.append(f"{fmt}: record exited {rc}: {err}")
                continue
            if got != expected:
                for line_g, line_e in zip(got.splitlines(), expected.splitlines()):
                    if line_g != line_e:
                        fails.append(f"{fmt}: {line_g.split()[0]} differs from PyTorch's casts")
            if f"emulating {fmt}" not in err:
                fails.append(f"{fmt}: record did not say it emulates: {err}")
            rc, js, err = run([a.fpscope, "summary", trace, "--json"])
            j = json.loads(js)
            if j["trace"].get("emulate") != fmt:
                fails.append(f"{fmt}: summary --json trace.emulate = {j['trace'].get('emulate')}")
            rc, txt, err = run([a.fpscope, "summary", trace])
            if not txt.startswith(f"emulated   {fmt}: "):
                fails.append(f"{fmt}: summary does not start with the emulation: {txt[:80]!r}")
        trace = os.path.join(tmp, "off.fpst")
        rc, got, err = run([a.fpscope, "record", "-o", trace, "--", PY, prog, "plain"], env)
        if got != plain:
            fails.append("without --emulate the probe changed the program's results")
        rc, js, _ = run([a.fpscope, "summary", trace, "--json"])
        if json.loads(js)["trace"].get("emulate") is not None:
            fails.append("a plain recording says it was emulated")
        for bad in ("e4m3", "bf17"):
            rc, _, err = run([a.fpscope, "record", "--emulate", bad, "--", "true"], env)
            if rc != 2 or "--emulate" not in err:
                fails.append(f"--emulate {bad}: exit {rc}, {err!r}")
    for f in fails:
        print("FAIL:", f)
    print("PASS" if not fails else f"{len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
