#!/usr/bin/python3
"""Matrix multiplies the probe cannot see must not read as a clean run. PyTorch runs its
bfloat16 CPU matmuls (torch.autocast("cpu"), BF16 weights) in oneDNN, where the probe has no hook
(it hooks the BLAS). For ordinary torch.nn programs recorded by `fpscope record`:
  - autocast_cpu.py (a TransformerEncoder LM under CPU autocast to bfloat16): the output is
    bit-identical; the integration warns once, on stderr and in the trace (a warning event at step
    0, "not measured: CPU autocast to bfloat16 was on ..."); the probe warns at exit that no matrix
    multiply reached it; `fpscope summary` says "nothing measured" (summary --json: "unmeasured"),
    never "healthy", and gives the autocast warning as the reason;
  - the same with --fp32-head (the output layer outside autocast, in FP32): only that layer's
    GEMMs are observed, named by its module path, forward and backward; no exit warning; the
    verdict is a real one and carries the autocast sentence;
  - bf16_weights.py (weights cast to BF16, no autocast): the exit warning only.
Exit code 77 (CTest: skipped) when torch cannot be imported by /usr/bin/python3."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "probe"))
import test_models as tm  # noqa: E402
import test_python_e2e as e2e  # noqa: E402

AUTOCAST = ("[fpscope] warning: CPU autocast to bfloat16 was on (torch.autocast(\"cpu\")): the "
            "matmuls it casts run in oneDNN (mkldnn), where the probe has no hook; only the GEMMs "
            "it leaves in FP32 are measured")
NO_GEMM = "[fpscope] warning: no matrix multiply reached the probe in steps 0..%d, so no tensor"


class NotMeasured(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def record(self, name, args=()):
        cmd = [e2e.PY, os.path.join(HERE, name), *args]
        plain = e2e.plain_run(cmd)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        trace = os.path.join(self.tmp.name, "%s.%d.fpst" % (name, len(args)))
        rec = tm.record(trace, cmd)
        self.assertEqual(rec.returncode, 0, rec.stderr)
        self.assertEqual(rec.stdout, plain.stdout)  # bit-identical: every digit of every loss
        _, _, steps = tm.printed(plain.stdout)
        return trace, tm.dump(trace), e2e.warnings_of(rec.stderr), steps

    def verdict(self, trace):
        r = subprocess.run([tm.ARGS.fpscope, "summary", trace, "--json"], capture_output=True,
                           text=True)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        return json.loads(r.stdout)["verdict"]

    def warning_events(self, t):
        return [(e["step"], e["text"]) for e in t["events"] if e["level"] == "warning"]

    def test_autocast_bf16_is_nothing_measured(self):
        trace, t, warned, n = self.record("autocast_cpu.py")
        self.assertEqual(len(warned), 2, warned)
        self.assertEqual(warned[0], AUTOCAST)
        self.assertTrue(warned[1].startswith(NO_GEMM % (n - 1)), warned[1])
        self.assertEqual(t["observations"], [])
        self.assertEqual([m["step"] for m in t["steps"]], list(range(n)))
        events = self.warning_events(t)
        self.assertEqual(events[0], (0, "not measured: " + AUTOCAST[len("[fpscope] warning: "):]))
        self.assertEqual(events[1][0], n - 1)
        self.assertTrue(events[1][1].startswith(NO_GEMM[len("[fpscope] warning: "):] % (n - 1)))
        v = self.verdict(trace)
        self.assertEqual((v["state"], v["headline"]), ("unmeasured", "nothing measured"))
        self.assertTrue(v["why"][1].startswith("CPU autocast to bfloat16 was on"), v["why"])
        self.assertIn("sgemm", v["next_action"])
        text = tm.summary(trace)
        self.assertTrue(text.startswith("verdict    nothing measured\n"), text)

    def test_fp32_head_outside_autocast_is_measured_alone(self):
        trace, t, warned, n = self.record("autocast_cpu.py", ["--fp32-head"])
        self.assertEqual(warned, [AUTOCAST])  # GEMMs reached the probe: no exit warning
        ids = {x["id"] for x in t["tensors"] if x["op"] != "watch"}
        self.assertTrue(ids)
        self.assertEqual({tm.scope_of(i)[0] for i in ids}, {"head"}, sorted(ids))
        self.assertEqual({tm.scope_of(i)[1] for i in ids}, {False, True}, sorted(ids))
        self.assertEqual(len(self.warning_events(t)), 1)
        v = self.verdict(trace)
        self.assertNotEqual(v["state"], "unmeasured")
        self.assertTrue(v["why"][-1].startswith("CPU autocast to bfloat16 was on"), v["why"])

    def test_bf16_weights_warn_at_exit(self):
        trace, t, warned, n = self.record("bf16_weights.py")
        self.assertEqual(len(warned), 1, warned)
        self.assertTrue(warned[0].startswith(NO_GEMM % (n - 1)), warned)
        self.assertEqual(t["observations"], [])
        v = self.verdict(trace)
        self.assertEqual(v["state"], "broken")  # the BF16 master weights (test_models.py)
        self.assertEqual(v["why"][-1],
                         "No matrix multiply reached the probe: no GEMM operand was measured.")


if __name__ == "__main__":
    tm.script_main()
