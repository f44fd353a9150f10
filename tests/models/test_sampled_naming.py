#!/usr/bin/python3
"""The PyTorch integration names modules only around the steps the probe samples (issue 15's
overhead: its global module hooks take every module call off PyTorch's fast path).

For ordinary torch.nn programs (tests/models/*.py) recorded at `--every K`, against the same
program recorded at `--every 1` (every step named, as tests/models/test_models.py checks):
  - the output is bit-identical to the plain run;
  - the step marks are 0..N-1 and the losses are the printed ones, in both traces (none for a
    program without backward(): autograd_grad.py);
  - every sampled step (s % K == 0) has exactly the observations the every-1 trace has for that
    step: the same module paths (forward and backward), element counts and amax (so its boundary
    sits where it did, and nothing went unnamed);
  - the module hooks were registered while step s ran exactly when s is sampled
    (tests/models/hook_state.py looks at torch's global hook dict at each backward()), so the
    saving is real.
Exit code 77 (CTest: skipped) when torch cannot be imported by /usr/bin/python3."""
import collections
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "probe"))
import test_models as tm  # noqa: E402
import test_python_e2e as e2e  # noqa: E402


def sampled_obs(t, step):
    """(module path, backward?, operand role, element count, amax) of each observation of `step`.
    Which forward GEMM a backward GEMM is named after (".dgrad"/".wgrad", grad_names.h) is left
    out: for attention's square bmm slices it can depend on where the allocator put a temporary
    copy, which differs between any two runs (seen in about 1 step of 50 on transformer.py)."""
    ids = [x["id"] for x in t["tensors"]]  # observations refer to tensors by position
    return collections.Counter((*tm.scope_of(ids[o[0]]), ids[o[0]].rsplit(".", 1)[1], o[2], o[3])
                               for o in t["observations"] if o[1] == step)


class SampledNaming(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def record(self, name, every, env=None):
        trace = os.path.join(self.dir, "%s.%d.fpst" % (name, every))
        state = trace + ".hooks"
        cmd = [e2e.PY, os.path.join(HERE, "hook_state.py"), os.path.join(HERE, name)]
        rec = e2e.record(trace, cmd, ["--every", str(every)],
                         dict(e2e.QUIET, HOOK_STATE_OUT=state, **(env or {})), hooks=True)
        self.assertEqual(rec.returncode, 0, rec.stderr)
        self.assertEqual(e2e.warnings_of(rec.stderr), [], rec.stderr)
        with open(state) as f:
            hooks = [int(c) for c in f.read().split(",") if c]
        return rec.stdout, tm.dump(trace), hooks

    def check(self, name, every, losses_recorded=True):
        plain = e2e.plain_run([e2e.PY, os.path.join(HERE, name)])
        self.assertEqual(plain.returncode, 0, plain.stderr)
        _, losses, n = tm.printed(plain.stdout)
        out1, t1, hooks1 = self.record(name, 1)
        outk, tk, hooksk = self.record(name, every)
        for out in (out1, outk):
            self.assertEqual(out, plain.stdout)  # bit-identical
        for t in (t1, tk):
            self.assertEqual([m["step"] for m in t["steps"]], list(range(n)))
            got = collections.defaultdict(list)
            for rec_loss in t["losses"]:
                got[rec_loss["step"]].append(rec_loss["value"])
            self.assertEqual(dict(got), dict(losses) if losses_recorded else {})
        # Hooks on in every step at --every 1; at --every K only in the sampled ones. One
        # "loss <step>" line per backward() call gives each state its step.
        steps = [int(line.split()[1]) for line in plain.stdout.splitlines()
                 if line.startswith("loss ")]
        self.assertEqual(hooks1, [1] * len(steps))
        self.assertEqual(hooksk, [1 if s % every == 0 else 0 for s in steps])
        sampled = sorted({o[1] for o in tk["observations"]})
        self.assertEqual(sampled, list(range(0, n, every)))
        for s in sampled:
            want, got = sampled_obs(t1, s), sampled_obs(tk, s)
            self.assertTrue(want, (name, s))
            self.assertEqual(got, want, (name, s))
            named = [k for k in got if not k[0].startswith("gemm#")]
            self.assertGreaterEqual(len(named), 0.8 * len(got), (name, s, sorted(got)))

    def test_transformer_encoder(self):
        self.check("transformer.py", 3)

    def test_gradient_accumulation(self):
        self.check("grad_accum.py", 2)

    def test_eval_pass_every_third_step(self):
        self.check("eval_every.py", 4)

    def test_lstm_and_gru(self):
        self.check("rnn.py", 3)

    def test_dataloader_two_workers(self):
        self.check("dataloader.py", 2)

    def test_steps_not_from_the_framework_keep_every_step_named(self):
        """FPSCOPE_STEPS=period refuses the integration's steps: the scope is part of every call's
        signature for the period search, so the hooks must stay on in every iteration (the probe
        says so: fpscope_scopes_wanted)."""
        plain = e2e.plain_run([e2e.PY, os.path.join(HERE, "mlp_sgd.py")])
        out, t, hooks = self.record("mlp_sgd.py", 3, env={"FPSCOPE_STEPS": "period"})
        self.assertEqual(out, plain.stdout)
        self.assertNotEqual(t["step_source"], "framework")
        self.assertTrue(hooks)
        self.assertEqual(hooks, [1] * len(hooks))

    def test_gradients_from_autograd_grad(self):
        """No backward() at all: with the module hooks off, torch.autograd.grad marks the due
        boundary (else every step after the first unnamed one would be one step). Its losses are
        not recorded (only backward()'s are)."""
        self.check("autograd_grad.py", 3, losses_recorded=False)


if __name__ == "__main__":
    tm.script_main()
