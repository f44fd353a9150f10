"""`fpscope record --emulate FMT` (issue 18 item 1) end to end, against PyTorch's own casts.

For BF16 and FP16: emulate_check.py's products (mm, addmm with beta = 1, a bmm that PyTorch runs
as one sgemm per batch) recorded under --emulate must print exactly the bits that the same
products computed on PyTorch's casts print without the probe; the same program recorded without
--emulate must print the FP32 bits (so the comparison can fail); the trace says it was emulated
(summary --json trace.emulate, the summary's first line); an unknown SPEC is refused.

The hybrid recipe on a TransformerEncoder gives the same losses in three runs (hybrid_repeats).

--emulate-skip and FP8 (emulate_recipes_check.py, whose expected values are computed without the
probe: PyTorch's BF16 cast, an FP8 rounding over the enumerated codes in numpy, the scales from the
amaxes): a 2-layer model with layer 0 skipped (its forward and weight gradient FP32 bits, layer
2's the BF16 bits), E4M3 with current and with delayed scaling over three steps, and the hybrid
recipe's forward output and weight gradient (E5M2 output gradient). Each must also differ from the
program's own FP32 bits, so that the comparison can fail.

Block-scaled formats (emulate_blocks_check.py, expected values from an independent model of OCP MX
v1.0 and NVFP4's block quantization in numpy): mm, addmm and a linear with a transposed input under
every block SPEC (mxfp8 .. nvfp4, one in upper case) print exactly the model's bits, differ from
FP32, and stamp the format table's name; a bad block SPEC is refused by record and, set directly
as FPSCOPE_EMULATE, by the probe (one warning, the program's own FP32 results).

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


def recipes(a, env, tmp, fails):
    prog = os.path.join(a.root, "tests", "probe", "emulate_recipes_check.py")
    cases = (("skip", "bf16", ["--emulate-skip", "0"], "bf16", "0"),
             ("mm", "e4m3", [], "e4m3:current", None),
             ("mm", "e4m3:delayed", [], "e4m3:delayed:1024:0:max", None),
             ("hybrid", "hybrid", [], "hybrid:current", None))
    for case, spec, extra, stamped, skip in cases:
        what = f"{case} --emulate {spec} {' '.join(extra)}".strip()
        rc, plain, err = run([PY, prog, "plain", case], env)
        assert rc == 0, err
        rc, expected, err = run([PY, prog, "expected", case, spec], env)
        assert rc == 0, err
        if expected == plain:
            fails.append(f"{what}: the emulation changes nothing: the test cannot fail")
        trace = os.path.join(tmp, f"{case}-{spec.replace(':', '_')}.fpst")
        rc, got, err = run([a.fpscope, "record", "-o", trace, "--emulate", spec, *extra, "--",
                            PY, prog, "plain", case], env)
        if rc != 0:
            fails.append(f"{what}: record exited {rc}: {err}")
            continue
        for line_g, line_e, line_p in zip(got.splitlines(), expected.splitlines(),
                                          plain.splitlines()):
            if line_g != line_e:
                same = " (the FP32 bits)" if line_g == line_p else ""
                fails.append(f"{what}: {line_g.split()[0]} differs from the expected bits{same}")
        if case == "skip":  # layer 0 is FP32: its output gradient is emulated, so w0.grad is not
            y_g, y_p = got.splitlines()[0], plain.splitlines()[0]
            if y_g == y_p:
                fails.append(f"{what}: y is the FP32 bits: layer 2 was not emulated")
        rc, js, err = run([a.fpscope, "summary", trace, "--json"])
        tr = json.loads(js)["trace"]
        if tr.get("emulate") != stamped or tr.get("emulate_skip") != skip:
            fails.append(f"{what}: summary --json trace.emulate = {tr.get('emulate')}, "
                         f"emulate_skip = {tr.get('emulate_skip')}")
        rc, txt, err = run([a.fpscope, "summary", trace, "--wide"])
        first = txt.splitlines()[0] if txt else ""
        if not first.startswith(f"emulated   {stamped}: ") or (skip and f"except ops named {skip}"
                                                                 not in first):
            fails.append(f"{what}: summary's first line: {first[:160]!r}")


def blocks(a, env, tmp, fails):
    prog = os.path.join(a.root, "tests", "probe", "emulate_blocks_check.py")
    rc, plain, err = run([PY, prog, "plain"], env)
    assert rc == 0, err
    for spec, stamped in (("mxfp8", "mxfp8_e4m3"), ("mxfp8_e5m2", "mxfp8_e5m2"),
                          ("mxfp6_e3m2", "mxfp6_e3m2"), ("mxfp6_e2m3", "mxfp6_e2m3"),
                          ("MXFP4", "mxfp4"), ("nvfp4", "nvfp4")):
        rc, expected, err = run([PY, prog, "expected", spec], env)
        assert rc == 0, err
        if expected == plain:
            fails.append(f"{spec}: the block quantization changes nothing: the test cannot fail")
        trace = os.path.join(tmp, f"block-{spec}.fpst")
        rc, got, err = run([a.fpscope, "record", "-o", trace, "--emulate", spec, "--",
                            PY, prog, "plain"], env)
        if rc != 0:
            fails.append(f"{spec}: record exited {rc}: {err}")
            continue
        if len(got.splitlines()) != 3:
            fails.append(f"{spec}: the program printed {got!r}")
        for line_g, line_e, line_p in zip(got.splitlines(), expected.splitlines(),
                                          plain.splitlines()):
            if line_g != line_e:
                same = " (the FP32 bits)" if line_g == line_p else ""
                fails.append(f"{spec}: {line_g.split()[0]} differs from the model's bits{same}")
        rc, js, err = run([a.fpscope, "summary", trace, "--json"])
        if json.loads(js)["trace"].get("emulate") != stamped:
            fails.append(f"{spec}: summary --json trace.emulate = "
                         f"{json.loads(js)['trace'].get('emulate')}")
    for bad in ("mxfp8:current", "nvfp4:delayed", "mxfp5", "nvfp8"):
        rc, _, err = run([a.fpscope, "record", "--emulate", bad, "--", "true"], env)
        if rc != 2 or "--emulate" not in err:
            fails.append(f"--emulate {bad}: exit {rc}, {err!r}")
    # The probe's own check (FPSCOPE_EMULATE set directly): one warning, no emulation.
    trace = os.path.join(tmp, "block-bad.fpst")
    rc, got, err = run([a.fpscope, "record", "-o", trace, "--", PY, prog, "plain"],
                       dict(env, FPSCOPE_EMULATE="nvfp4:current"))
    warning = "warning: FPSCOPE_EMULATE='nvfp4:current'"
    if rc != 0 or err.count(warning) != 1 or got != plain:
        fails.append(f"FPSCOPE_EMULATE=nvfp4:current: exit {rc}, {err.count(warning)} warnings, "
                     f"results {'FP32' if got == plain else 'changed'}: {err[-300:]!r}")


def hybrid_repeats(a, env, tmp, fails):
    """The hybrid recipe gives the same results in every run: it used to match backward operands
    to the step's forward reads by address alone, and a gradient the allocator placed where a
    freed activation was took E4M3 instead of E5M2, differently from run to run (three runs of
    tests/models/transformer.py printed three different losses)."""
    prog = os.path.join(a.root, "tests", "models", "transformer.py")
    outs = []
    for r in range(3):
        rc, out, err = run([a.fpscope, "record", "-o", os.path.join(tmp, f"hybrid{r}.fpst"),
                            "--emulate", "hybrid", "--", PY, prog], env)
        if rc != 0:
            fails.append(f"hybrid repeat {r}: record exited {rc}: {err[-300:]}")
            return
        outs.append([l for l in out.splitlines() if l.startswith("loss")])
    if not outs[0] or any(o != outs[0] for o in outs[1:]):
        fails.append(f"hybrid: runs differ: {[o[-1:] for o in outs]}")


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
        recipes(a, env, tmp, fails)
        blocks(a, env, tmp, fails)
        hybrid_repeats(a, env, tmp, fails)
        for bad in ("bf17", "bf16:delayed", "e4m3:sometimes", "e4m3:delayed:0"):
            rc, _, err = run([a.fpscope, "record", "--emulate", bad, "--", "true"], env)
            if rc != 2 or "--emulate" not in err:
                fails.append(f"--emulate {bad}: exit {rc}, {err!r}")
    for f in fails:
        print("FAIL:", f)
    print("PASS" if not fails else f"{len(fails)} failures")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
