#!/usr/bin/python3
"""Matrix multiplies the probe cannot see must not read as a clean run. PyTorch runs its CPU
convolutions and its bfloat16 CPU matmuls (torch.autocast("cpu"), BF16 weights) in oneDNN, where
the probe has no hook (it hooks the BLAS). For ordinary torch.nn programs recorded by
`fpscope record`, each output bit-identical to the plain run:
  - autocast_cpu.py (a TransformerEncoder LM under CPU autocast to bfloat16): one stderr warning,
    the integration's; in the trace, that warning and one naming the unseen matmul modules (at
    step 0, the named step); no observation; `fpscope summary` says "nothing measured"
    (summary --json: "unmeasured"), never "healthy", with the autocast warning as the reason;
  - the same with --fp32-head (the output layer outside autocast, in FP32): only that layer's
    GEMMs are observed, forward and backward, and it is not among the unseen modules; the
    verdict is a real one and ends with the autocast sentence;
  - conv.py (nn.Conv2d in FP32: oneDNN convolutions): the two Conv2d modules named, the Linear
    ones measured;
  - bf16_weights.py (BF16 weights, no autocast): its two Linear modules named;
  - no_matmul.py (an EmbeddingBag model, no matmul module): the probe's exit warning that no
    matrix multiply reached it, and "nothing measured".
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

W = "[fpscope] warning: "
AUTOCAST = ("CPU autocast to bfloat16 was on (torch.autocast(\"cpu\")): the matmuls it casts run "
            "in oneDNN (mkldnn), where the probe has no hook; only the GEMMs it leaves in FP32 "
            "are measured")
MATMULS = ("PyTorch runs CPU convolutions and bfloat16 CPU matmuls in oneDNN, and GPU convolutions "
           "in cuDNN, where the probe has no hook; their tensors are not in the trace")
ENCODER = ", ".join("encoder.layers.%d.%s" % (k, m)
                    for k in (0, 1) for m in ("self_attn (MultiheadAttention)",
                                              "linear1 (Linear)", "linear2 (Linear)"))


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
        self.assertEqual(warned, [W + AUTOCAST])  # the modules' warning goes to the trace only
        self.assertEqual(t["observations"], [])
        self.assertEqual([m["step"] for m in t["steps"]], list(range(n)))
        self.assertEqual(self.warning_events(t), [
            (0, "not measured: " + AUTOCAST),
            (0, "not measured: Modules %s and 1 more ran no matrix multiply the probe sees: %s"
             % (ENCODER, MATMULS))])
        v = self.verdict(trace)
        self.assertEqual((v["state"], v["headline"]), ("unmeasured", "nothing measured"))
        self.assertEqual(v["why"][1], AUTOCAST + ".")
        self.assertIn("sgemm", v["next_action"])
        text = tm.summary(trace)
        self.assertTrue(text.startswith("verdict    nothing measured\n"), text)

    def test_fp32_head_outside_autocast_is_measured_alone(self):
        trace, t, warned, n = self.record("autocast_cpu.py", ["--fp32-head"])
        self.assertEqual(warned, [W + AUTOCAST])
        ids = {x["id"] for x in t["tensors"] if x["op"] != "watch"}
        self.assertEqual({tm.scope_of(i) for i in ids}, {("head", False), ("head", True)},
                         sorted(ids))
        self.assertEqual(self.warning_events(t), [
            (0, "not measured: " + AUTOCAST),
            (0, "not measured: Modules %s ran no matrix multiply the probe sees: %s"
             % (ENCODER.replace(", encoder.layers.1.linear2", " and encoder.layers.1.linear2"),
                MATMULS))])
        v = self.verdict(trace)
        self.assertNotEqual(v["state"], "unmeasured")
        self.assertEqual(v["why"][-1], AUTOCAST + ".")

    def test_cpu_convolutions_are_named(self):
        trace, t, warned, n = self.record("conv.py")
        text = ("Modules 0 (Conv2d) and 3 (Conv2d) ran no matrix multiply the probe sees: PyTorch "
                "runs convolutions in oneDNN on the CPU and in cuDNN on the GPU, where the probe "
                "has no hook; their tensors are not in the trace")
        self.assertEqual(warned, [W + text])
        self.assertEqual(self.warning_events(t), [(0, "not measured: " + text)])
        ids = {x["id"] for x in t["tensors"] if x["op"] != "watch"}
        self.assertEqual({tm.scope_of(i)[0] for i in ids}, {"7", "9"})  # the Linear layers
        v = self.verdict(trace)
        self.assertNotEqual(v["state"], "unmeasured")
        self.assertEqual(v["why"][-1], text + ".")

    def test_bf16_weights_name_their_linear_modules(self):
        trace, t, warned, n = self.record("bf16_weights.py")
        text = "Modules 0 (Linear) and 2 (Linear) ran no matrix multiply the probe sees: " + MATMULS
        self.assertEqual(warned, [W + text])  # not the exit warning too: this one says where
        self.assertEqual(t["observations"], [])
        v = self.verdict(trace)
        self.assertEqual(v["state"], "broken")  # the BF16 master weights (test_models.py)
        self.assertEqual(v["why"][-1], text + ".")

    def test_no_matmul_at_all_warns_at_exit(self):
        trace, t, warned, n = self.record("no_matmul.py")
        text = ("no matrix multiply reached the probe in steps 0..%d, so no tensor was measured: "
                "the program does none, or runs them where the probe has no hook" % (n - 1))
        self.assertEqual(len(warned), 1, warned)
        self.assertTrue(warned[0].startswith(W + text), warned)
        events = self.warning_events(t)
        self.assertEqual(len(events), 1, events)
        self.assertEqual(events[0][0], n - 1)
        self.assertTrue(events[0][1].startswith(text), events)
        v = self.verdict(trace)
        self.assertEqual(v["state"], "unmeasured")
        self.assertTrue(v["why"][1].startswith("Either the program does no matrix multiply"))


if __name__ == "__main__":
    tm.script_main()
