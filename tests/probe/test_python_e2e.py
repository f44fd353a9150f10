#!/usr/bin/python3
"""End-to-end tests of the probe on Python programs (Debian's python3-torch and numpy), run under
`fpscope record`. Traces are read through probe_trace_dump (read_trace -> JSON).
Exit code 77 (CTest: skipped) when torch or numpy cannot be imported by this interpreter."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest

ARGS = None
PY = "/usr/bin/python3"


def have(module):
    return subprocess.run([PY, "-c", "import " + module], capture_output=True).returncode == 0


def record(trace, cmd, extra=(), env_extra=None):
    env = dict(os.environ)
    env["FPSCOPE_PROBE"] = ARGS.probe
    env.pop("LD_PRELOAD", None)
    env.update(env_extra or {})
    return subprocess.run([ARGS.record, "record", "-o", trace, *extra, "--", *cmd],
                          capture_output=True, text=True, env=env, timeout=300)


def dump(trace):
    r = subprocess.run([ARGS.dump, trace], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def obs_of(t, pred):
    idx = {x["index"] for x in t["tensors"] if pred(x)}
    return [o for o in t["observations"] if o["tensor"] in idx]


class Torch(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_losses_bit_identical_and_steps_from_period(self):
        cmd = [PY, os.path.join(ARGS.root, "samples/pytorch_cpu/train.py"), "--steps", "12"]
        plain = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        trace = os.path.join(self.dir, "t.fpst")
        rec = record(trace, cmd, ["--every", "1"])
        self.assertEqual(rec.returncode, 0, rec.stderr)
        self.assertEqual(rec.stdout, plain.stdout)  # every digit of every loss
        self.assertIn("step 11 loss", rec.stdout)
        t = dump(trace)
        self.assertTrue(t["clean_close"])
        self.assertEqual(t["step_source"], "gemm_period")
        # A 4-layer MLP step: 4 forward GEMMs + 3 input-gradient + 4 weight-gradient GEMMs.
        # The sample's data preparation (4 GEMMs) comes first: warm-up calls "gemm#w<k>", step 0.
        ds = [x for x in t["tensors"] if x["role"] == "D" and not x["id"].startswith("gemm#w")]
        self.assertEqual(sorted(x["id"] for x in ds), sorted("gemm#%d.D" % k for k in range(11)))
        warm = [x for x in t["tensors"] if x["id"].startswith("gemm#w") and x["role"] == "D"]
        self.assertEqual(len(warm), 4)
        for x in ds:
            self.assertEqual(x["op"], "sgemm")
            n = len([o for o in t["observations"] if o["tensor"] == x["index"]])
            self.assertEqual(n, 12, x["id"])
        self.assertEqual([s["step"] for s in t["steps"]], list(range(12)))  # iteration k = step k
        self.assertTrue(all(s["source"] == "gemm_period" for s in t["steps"]))
        # The sample's hazard is in the trace: layer 1's forward output overflows FP16, not BF16.
        d0 = obs_of(t, lambda x: x["id"] == "gemm#0.D")
        self.assertTrue(all(o["formats"]["fp16"]["overflow"] > 0 for o in d0))
        self.assertTrue(all(o["formats"]["bf16"]["overflow"] == 0 for o in d0))
        self.assertTrue(any(o["formats"]["fp16"]["underflow"] > 0 for o in t["observations"]))

    def test_stats_equal_torch_casts(self):
        trace = os.path.join(self.dir, "t.fpst")
        out = os.path.join(self.dir, "expected.json")
        rec = record(trace, [PY, os.path.join(ARGS.root, "tests/probe/stats_prog.py"), "torch", out],
                     ["--every", "1"])
        self.assertEqual(rec.returncode, 0, rec.stderr)
        expected = load_json(out)
        t = dump(trace)
        for e in expected:
            d = obs_of(t, lambda x: x["role"] == "D" and x["rows"] * x["cols"] == e["numel"])
            self.assertEqual(len(d), 3, e)
            for o in d:
                self.assertEqual(o["count"], e["numel"])
                self.assertEqual(o["amax"], e["amax"])
                for f in ("fp16", "bf16"):
                    for k in ("overflow", "underflow", "subnormal"):
                        self.assertEqual(o["formats"][f][k], e[f][k], (f, k, e))
        self.assertGreater(expected[0]["fp16"]["overflow"], 0)
        self.assertGreater(expected[1]["fp16"]["underflow"], 0)

    def test_fpscope_py_api(self):
        trace = os.path.join(self.dir, "t.fpst")
        out = os.path.join(self.dir, "expected.json")
        pydir = os.path.join(ARGS.root, "probe/python")
        prog = [PY, os.path.join(ARGS.root, "tests/probe/api_prog.py"), pydir, out]
        rec = record(trace, prog, ["--every", "1"])
        self.assertEqual(rec.returncode, 0, rec.stderr)
        e = load_json(out)
        self.assertTrue(e["active"])
        t = dump(trace)
        self.assertEqual(t["step_source"], "api")
        ids = {x["id"] for x in t["tensors"]}
        self.assertIn("layer.fwd.D", ids)
        self.assertIn("layer.fwd#1.D", ids)
        self.assertFalse(any(i.startswith("gemm#") for i in ids), ids)
        self.assertEqual([(l["step"], l["scale"], l["found_inf"]) for l in t["loss_scales"]],
                         [(s, 2.0 ** (10 + s), s == 2) for s in range(e["steps"])])
        ups = sorted(t["weight_updates"], key=lambda u: u["step"])
        self.assertEqual([u["step"] for u in ups], [0, 1, 2, 3])  # the step that made it
        for u, x in zip(ups, e["updates"]):
            self.assertEqual(u["elements"], 300)
            self.assertEqual(u["changed"], x["changed"])
            self.assertEqual(u["bf16"]["stagnant"], x["bf16_stagnant"])
            self.assertEqual(u["fp16"]["stagnant"], x["fp16_stagnant"])
        self.assertEqual(e["updates"][0]["bf16_stagnant"], 200)
        self.assertEqual(e["updates"][0]["fp16_stagnant"], 100)
        self.assertIn("step 0 done", [ev["text"] for ev in t["events"]])
        # Without the probe, every call is a no-op and the program runs the same.
        plain = subprocess.run(prog, capture_output=True, text=True)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertFalse(load_json(out)["active"])


class Numpy(unittest.TestCase):
    def test_sample_and_stats_equal_numpy_casts(self):
        with tempfile.TemporaryDirectory() as d:
            cmd = [PY, os.path.join(ARGS.root, "samples/numpy/train.py"), "--steps", "6"]
            plain = subprocess.run(cmd, capture_output=True, text=True)
            trace = os.path.join(d, "s.fpst")
            rec = record(trace, cmd, ["--every", "1"])
            self.assertEqual(rec.returncode, 0, rec.stderr)
            self.assertEqual(rec.stdout, plain.stdout)
            t = dump(trace)
            self.assertTrue(t["observations"])
            self.assertTrue(all(x["op"] == "cblas_sgemm" for x in t["tensors"]))

            trace = os.path.join(d, "t.fpst")
            out = os.path.join(d, "expected.json")
            rec = record(trace, [PY, os.path.join(ARGS.root, "tests/probe/stats_prog.py"), "numpy", out],
                         ["--every", "1"])
            self.assertEqual(rec.returncode, 0, rec.stderr)
            t = dump(trace)
            for e in load_json(out):
                dd = obs_of(t, lambda x: x["role"] == "D" and x["rows"] * x["cols"] == e["numel"])
                self.assertEqual(len(dd), 3, e)
                for o in dd:
                    self.assertEqual(o["amax"], e["amax"])
                    for k in ("overflow", "underflow", "subnormal"):
                        self.assertEqual(o["formats"]["fp16"][k], e["fp16"][k], (k, e))


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--root", required=True)
    ARGS, rest = ap.parse_known_args()
    missing = [m for m in ("torch", "numpy") if not have(m)]
    if missing:
        print("SKIPPED: %s cannot import %s (install python3-torch python3-numpy)"
              % (PY, ", ".join(missing)))
        sys.exit(77)
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
