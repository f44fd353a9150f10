#!/usr/bin/python3
"""(Size: ~850 lines: one record-and-check harness shared by one test per model program, and the
main() of the scripts beside it (script_main); the next family of programs goes into its own
file beside it, as test_sampled_naming.py and test_stats_helper.py did.)

Ordinary torch.nn training programs (tests/models/*.py: no fpscope import, no change for the
probe) recorded by `fpscope record`, whose PyTorch integration (probe/python/fpscope_hooks) must
give, for each program:
  - the program's output bit-identical with and without the probe (every digit of every loss);
  - one step per optimizer step: step marks 0..N-1 from the "framework" source, GEMMs in each;
  - at least 80% of the GEMM tensors named by a module path the program printed (and every name
    that is not gemm#k is one), with the expected paths present, forward and backward;
  - the loss recorded for each step equal, bit for bit, to the values the program printed;
  - no critical (or error) finding in `fpscope summary` of that healthy run;
  - the input-gradient and weight-gradient GEMMs of one layer, chosen by hand per program,
    named "<layer>.dgrad" / "<layer>.wgrad" with the shapes only the right one can have.
Each program prints "module <path>" for its named_modules() (the root as its class name),
"loss <optimizer step> <repr(value backward() was called on)>", and "optimizer_steps N".
Reuses the helpers of tests/probe/test_python_e2e.py (probe environment, plain runs).
Exit code 77 (CTest: skipped) when torch cannot be imported by /usr/bin/python3."""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "probe"))
import test_python_e2e as e2e  # noqa: E402

ARGS = None
PY = e2e.PY
QUIET = e2e.QUIET
MEASURED = []  # (program, summary lines) printed at the end
# Programs whose matmul modules run where the probe has no hook (oneDNN): the integration's one
# warning naming them (test_not_measured.py checks its whole text, trace event and verdict).
UNHOOKED = {
    "conv.py": "[fpscope] warning: Modules 0 (Conv2d) and 3 (Conv2d) ran no matrix multiply",
    "bf16_weights.py":
        "[fpscope] warning: Modules 0 (Linear) and 2 (Linear) ran no matrix multiply",
}


def check_warnings(test, name, stderr):
    """No warning on stderr, but UNHOOKED's for the programs listed there."""
    warned = e2e.warnings_of(stderr)
    if name in UNHOOKED:
        test.assertEqual([w.startswith(UNHOOKED[name]) for w in warned], [True], stderr)
    else:
        test.assertEqual(warned, [], stderr)


def record(trace, cmd, extra=(), env_extra=None):
    return e2e.record(trace, cmd, ["--every", "1", *extra], dict(QUIET, **(env_extra or {})),
                      hooks=True)


def dump(trace):
    r = subprocess.run([ARGS.dump, trace], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def summary(trace):
    if not ARGS.fpscope:
        return ""
    r = subprocess.run([ARGS.fpscope, "summary", trace, "--rows", "4"], capture_output=True,
                       text=True)
    assert r.returncode in (0, 1), r.stderr  # 1: findings (not this test's business)
    return r.stdout


def printed(stdout):
    modules, losses, steps = set(), collections.defaultdict(list), None
    for line in stdout.splitlines():
        w = line.split()
        if w and w[0] == "module":
            modules.add(w[1])
        elif w and w[0] == "loss":
            losses[int(w[1])].append(float(w[2]))
        elif w and w[0] == "optimizer_steps":
            steps = int(w[1])
    assert steps is not None, stdout
    return modules, losses, steps


def scope_of(tensor_id):
    """'encoder.layers.0.linear1.bwd#2.D' -> ('encoder.layers.0.linear1', True); the same for
    '<path>.dgrad.D' and '<path>#1.wgrad#1.D' (backward GEMMs named after their forward GEMM)."""
    base = tensor_id.rsplit(".", 1)[0]
    base = re.sub(r"#\d+$", "", base)
    for suffix in (".bwd", ".dgrad", ".wgrad"):
        if base.endswith(suffix):
            return re.sub(r"#\d+$", "", base[:-len(suffix)]), True
    return base, False


def findings(trace):
    r = subprocess.run([ARGS.fpscope, "summary", trace, "--json"], capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)["findings"]


def check_grads(test, t, layer):
    """The backward GEMMs of nn.Linear `layer` (y = x W^T + b: forward A = W (op T), B = x), by
    the shapes only the right one can have: dgrad dX (in x tokens) = W^T dY sums over the
    forward's outputs (k = the forward's m) and has x's shape; wgrad dW (stored in x out) = X dY^T
    sums over the tokens (k = the forward's n) and has W's shape. Both ran in "<layer>.bwd".
    Several definitions of one id (a sequence length that changes between steps) are checked
    against the forward definition of the same token count."""
    by_id = collections.defaultdict(list)
    for x in t["tensors"]:
        by_id[x["id"]].append(x)
    for key in (".A", ".B", ".D", ".dgrad.D", ".wgrad.D"):
        test.assertIn(layer + key, by_id, sorted(by_id))
    (fwd_a,) = by_id[layer + ".A"]  # the weight: one shape
    test.assertEqual(fwd_a["transa"], "T")
    fwd = {b["cols"]: (b, d) for b, d in zip(by_id[layer + ".B"], by_id[layer + ".D"])}
    for b, d in fwd.values():
        test.assertEqual((b["n"], d["n"]), (b["cols"], b["cols"]))
    for g in by_id[layer + ".dgrad.D"]:
        b, d = fwd[g["cols"]]
        test.assertEqual((g["rows"], g["cols"], g["k"]), (b["rows"], b["cols"], d["m"]), g)
        test.assertEqual(g["name"], layer + ".bwd")
    for g in by_id[layer + ".wgrad.D"]:
        test.assertEqual((g["rows"], g["cols"]), (fwd_a["rows"], fwd_a["cols"]), g)
        test.assertIn(g["k"], fwd, g)  # summed over one step's tokens
        test.assertEqual(g["name"], layer + ".bwd")
    # Not interchangeable: dgrad and wgrad differ in shape (else this check could not fail).
    test.assertNotIn((fwd_a["rows"], fwd_a["cols"]),
                     [(g["rows"], g["cols"]) for g in by_id[layer + ".dgrad.D"]])


class Models(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def run_program(self, name, grads_of, expect_fwd=(), expect_bwd=(), env_extra=None):
        """grads_of: a Linear layer (not the first: it has an input gradient) whose backward GEMMs
        are checked by check_grads()."""
        cmd = [PY, os.path.join(HERE, name)]
        plain = e2e.plain_run(cmd)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        trace = os.path.join(self.dir, name + ".fpst")
        rec = record(trace, cmd, env_extra=env_extra)
        self.assertEqual(rec.returncode, 0, rec.stderr)
        self.assertEqual(rec.stdout, plain.stdout)  # bit-identical: every digit of every loss
        check_warnings(self, name, rec.stderr)
        modules, losses, n = printed(plain.stdout)
        t = dump(trace)
        self.assertTrue(t["clean_close"])
        self.assertEqual(t["version"], "1.4")  # the current trace format (traces/FORMAT.md)

        # Steps: one per optimizer step, from the framework, each with GEMMs.
        self.assertEqual(t["step_source"], "framework")
        self.assertEqual([m["step"] for m in t["steps"]], list(range(n)))
        self.assertTrue(all(m["source"] == "framework" for m in t["steps"]), t["steps"])
        self.assertEqual(sorted({o[1] for o in t["observations"]}), list(range(n)))

        # Names: module paths (forward), "<path>.bwd" (backward).
        ids = {x["id"] for x in t["tensors"] if x["op"] != "watch"}
        named = [i for i in ids if not i.startswith("gemm#")]
        for i in named:
            self.assertIn(scope_of(i)[0], modules, "%s is not a module path" % i)
        self.assertGreaterEqual(len(named), 0.8 * len(ids),
                                sorted(i for i in ids if i.startswith("gemm#")))
        scopes = {scope_of(i) for i in named}
        for path in expect_fwd:
            self.assertIn((path, False), scopes, sorted(scopes))
        for path in expect_bwd:
            self.assertIn((path, True), scopes, sorted(scopes))

        # Losses: per step, exactly the values printed (the scalars backward() started from).
        got = collections.defaultdict(list)
        for rec_loss in t["losses"]:
            got[rec_loss["step"]].append(rec_loss["value"])
        self.assertEqual(dict(got), dict(losses))

        check_grads(self, t, grads_of)
        if ARGS.fpscope:  # a healthy FP32 run: nothing critical, whatever the program
            found = findings(trace)
            self.assertEqual([(f["severity"], f["kind"], f["title"]) for f in found
                              if f["severity"] in ("critical", "error")], [], name)
        text = summary(trace)
        if ARGS.fpscope:
            self.assertIn("source framework", text)
            loss_line = [line for line in text.splitlines() if line.startswith("loss       ")]
            self.assertEqual(len(loss_line), 1, text)
            self.assertTrue(loss_line[0].startswith("loss       %d steps (%d values)"
                                                    % (n, sum(map(len, losses.values())))),
                            loss_line)
        MEASURED.append((name, [line for line in text.splitlines()
                                if line.startswith(("steps ", "gemms ", "loss "))],
                         len(named), len(ids), sorted(ids)[:6]))
        return t, plain.stdout

    def test_transformer_encoder_causal_adamw(self):
        self.run_program("transformer.py", "encoder.layers.0.linear2",
                         expect_fwd=["encoder.layers.0.linear1", "encoder.layers.1.linear2",
                                     "encoder.layers.0.self_attn", "out"],
                         expect_bwd=["encoder.layers.0.linear1", "encoder.layers.1.self_attn",
                                     "out"])

    def test_dgrad_and_wgrad_named_after_their_forward_gemm(self):
        """Backward GEMMs named by the buffers they read: '<path>.dgrad' reads the forward's
        weight and writes the input's shape, '<path>.wgrad' reads the saved input and writes the
        weight's shape. Checked by hand on linear2 (in 32, out 16, 32 tokens) and on stacked.py's
        blocks (16 x 16 weight, batch 5: the two gradients differ in shape)."""
        for name, layers in (("transformer.py", ["encoder.layers.%d.linear2" % i for i in (0, 1)]),
                             ("stacked.py", ["blocks.%d.fc" % i for i in range(4)])):
            trace = os.path.join(self.dir, name + ".fpst")
            rec = record(trace, [PY, os.path.join(HERE, name)])
            self.assertEqual(rec.returncode, 0, rec.stderr)
            t = dump(trace)
            by_id = {x["id"]: x for x in t["tensors"]}
            for layer in layers:
                fwd_a, fwd_b = by_id[layer + ".A"], by_id[layer + ".B"]  # weight (op T), input
                self.assertEqual(fwd_a["transa"], "T")
                dgrad, wgrad = by_id[layer + ".dgrad.D"], by_id[layer + ".wgrad.D"]
                # dgrad: dX (in x tokens) = W^T dY, summed over the forward's outputs (m)
                self.assertEqual((dgrad["rows"], dgrad["cols"]), (fwd_b["rows"], fwd_b["cols"]))
                self.assertEqual(dgrad["k"], by_id[layer + ".D"]["m"])
                # wgrad: dW (stored in x out) = X dY^T, summed over the tokens (n)
                self.assertEqual((wgrad["rows"], wgrad["cols"]), (fwd_a["rows"], fwd_a["cols"]))
                self.assertEqual(wgrad["k"], by_id[layer + ".D"]["n"])
                for g in (dgrad, wgrad):
                    self.assertEqual(g["name"], layer + ".bwd")  # the scope it ran in
            if name == "stacked.py":  # different shapes: the names cannot be swapped
                self.assertEqual((by_id["blocks.0.fc.dgrad.D"]["rows"],
                                  by_id["blocks.0.fc.dgrad.D"]["cols"]), (16, 5))
                self.assertEqual((by_id["blocks.0.fc.wgrad.D"]["rows"],
                                  by_id["blocks.0.fc.wgrad.D"]["cols"]), (16, 16))

    def test_batched_matmul_is_one_op(self):
        """PyTorch's CPU bmm runs one sgemm per batch-and-head (4 x 2 here): one tensor, one
        observation per step over all of them, its GEMM signature's batch the number of calls, as
        a strided-batched GEMM on the GPU."""
        t, _ = self.run_program("transformer.py", "encoder.layers.1.linear2")
        ids = [x["id"] for x in t["tensors"]]  # observations refer to tensors by position
        for layer in (0, 1):
            path = "encoder.layers.%d.self_attn" % layer
            # Forward: in_proj, Q K^T (8 calls), attention x V (8 calls), out_proj: 4 ops.
            fwd = sorted({ids[o[0]].rsplit(".", 1)[0] for o in t["observations"]
                          if o[1] == 1 and re.fullmatch(re.escape(path) + r"(#\d+)?\.D",
                                                        ids[o[0]])})
            self.assertEqual(fwd, [path, path + "#1", path + "#2", path + "#3"])
            for name in (path + "#1.D", path + "#2.D"):  # 8 matrices of 8 x 8 each
                counts = [o[2] for o in t["observations"] if ids[o[0]] == name and o[1] == 1]
                self.assertEqual(counts, [4 * 2 * 8 * 8], name)
            by_id = {x["id"]: x for x in t["tensors"]}
            for role in ("A", "B", "D"):  # 8 calls merged; the projections are single calls
                self.assertEqual(by_id["%s#1.%s" % (path, role)]["batch"], 4 * 2)
                self.assertEqual(by_id["%s#2.%s" % (path, role)]["batch"], 4 * 2)
                self.assertEqual(by_id["%s.%s" % (path, role)]["batch"], 1)
                self.assertEqual(by_id["%s#3.%s" % (path, role)]["batch"], 1)

    def test_multihead_attention(self):
        self.run_program("mha.py", "head", expect_fwd=["query", "attn", "head"],
                         expect_bwd=["attn", "head"])

    def test_lstm_and_gru(self):
        # (torch 2.x runs nn.LSTM through oneDNN on the CPU, without BLAS: no "lstm" GEMM there)
        self.run_program("rnn.py", "head", expect_fwd=["gru", "head"], expect_bwd=["head"])

    def test_conv_and_pooling(self):
        self.run_program("conv.py", "9", expect_fwd=["7", "9"], expect_bwd=["7", "9"])

    def test_embedding_model(self):
        self.run_program("embedding.py", "classify", expect_fwd=["hidden", "classify"],
                         expect_bwd=["hidden", "classify"])

    def test_identical_stacked_layers_named_apart(self):
        t, _ = self.run_program("stacked.py", "blocks.0.fc",
                                expect_fwd=["blocks.%d.fc" % i for i in range(4)] + ["out"],
                                expect_bwd=["blocks.%d.fc" % i for i in range(4)])
        d = [x["id"] for x in t["tensors"] if x["role"] == "D"]
        for i in range(4):  # same shapes, four distinct names, forward and backward
            self.assertIn("blocks.%d.fc.D" % i, d)

    def test_gradient_accumulation_is_one_step(self):
        t, out = self.run_program("grad_accum.py", "2", expect_fwd=["0", "2"],
                                expect_bwd=["0", "2"])
        _, losses, n = printed(out)
        self.assertTrue(all(len(losses[s]) == 3 for s in range(n)), losses)

    def test_eval_pass_belongs_to_its_step(self):
        t, out = self.run_program("eval_every.py", "3", expect_fwd=["0", "3"],
                                expect_bwd=["0", "3"])
        # Evaluation after optimizer steps 2, 5, 8 (the last): forward GEMMs only, in that step.
        per_step = collections.Counter(o[1] for o in t["observations"])
        counts = [per_step[s] for s in range(9)]
        base = counts[0]
        for s in range(9):
            self.assertEqual(counts[s] > base, s % 3 == 2, counts)

    def test_sequence_length_changes_between_steps(self):
        self.run_program("varlen.py", "tag", expect_fwd=["proj", "rnn", "tag"],
                         expect_bwd=["proj", "tag"])

    def test_set_num_threads_2(self):
        self.run_program("threads.py", "4", expect_fwd=["0", "2", "4"], expect_bwd=["0", "2", "4"],
                         env_extra={"OMP_NUM_THREADS": "2"})

    def test_dataloader_two_workers(self):
        self.run_program("dataloader.py", "2", expect_fwd=["0", "2"], expect_bwd=["0", "2"])

    def test_cuda_amp_losses_read_without_synchronizing(self):
        """On a GPU: steps, names (cuBLAS GEMMs) and the losses, copied to pinned memory and read
        only once their copy completed; GradScaler's scale from the probe's kernel hook."""
        ok = subprocess.run([PY, "-c", "import torch; assert torch.cuda.is_available()"],
                            capture_output=True)
        if ok.returncode != 0:
            self.skipTest("no CUDA device for this torch")
        t, out = self.run_program("cuda_amp.py", "out", expect_fwd=["inp", "out"],
                                expect_bwd=["out"])
        self.assertEqual(len(t["loss_scales"]), printed(out)[2], t["loss_scales"])


def params_printed(stdout):
    """{name: (numel, dtype)} of the program's "param" lines."""
    out = {}
    for line in stdout.splitlines():
        w = line.split()
        if w and w[0] == "param":
            out[w[1]] = (int(w[2]), w[3])
    return out


def summary_json(trace):
    r = subprocess.run([ARGS.fpscope, "summary", trace, "--json"], capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


class AutoWatch(unittest.TestCase):
    """Issue 21: every optimizer parameter watched with no code change, named by module path,
    within the watch budget; the precision allocation trap found on BF16 weights."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def record(self, name, extra=(), env_extra=None):
        cmd = [PY, os.path.join(HERE, name)]
        trace = os.path.join(self.dir, "%s.%d.fpst" % (name, len(os.listdir(self.dir))))
        rec = record(trace, cmd, extra, env_extra)
        self.assertEqual(rec.returncode, 0, rec.stderr)
        check_warnings(self, name, rec.stderr)
        return trace, dump(trace), rec.stdout

    def watched(self, t):
        """{name: [weight-update records]} of the watch tensors."""
        out = {x["id"]: [] for x in t["tensors"] if x["op"] == "watch"}
        ids = [x["id"] for x in t["tensors"]]
        for w in t["weight_updates"]:
            out[ids[w["tensor"]]].append(w)
        return out

    def check_every_parameter_watched(self, name):
        plain = e2e.plain_run([PY, os.path.join(HERE, name)])
        self.assertEqual(plain.returncode, 0, plain.stderr)
        trace, t, out = self.record(name)
        self.assertEqual(out, plain.stdout)  # bit-identical with and without the probe
        params = params_printed(plain.stdout)
        _, _, n = printed(plain.stdout)
        w = self.watched(t)
        self.assertEqual(sorted(w), sorted(params))  # module-path names, every one
        for pname, recs in w.items():
            # Snapshot when the first step began: every step's update but the last (no boundary
            # after it), whole tensors (the default budget holds them), FP32 masters.
            self.assertEqual([r["step"] for r in recs], list(range(n - 1)), pname)
            for r in recs:
                self.assertEqual((r["elements"], r["watched"], r["dtype"]),
                                 (params[pname][0], params[pname][0], "fp32"), pname)
                self.assertGreater(r["changed"], 0, pname)
        kinds = {f["kind"] for f in findings(trace)}
        self.assertNotIn("master_not_fp32", kinds)
        # FP32 weights and FP32 optimizer state (AdamW's moments, SGD's momentum): neither trap.
        self.assertNotIn("optimizer_state_low_precision", kinds)
        self.assertNotIn("fp16_master_stagnant", kinds)
        return trace, t

    def test_transformer_encoder_adamw_every_parameter(self):
        self.check_every_parameter_watched("transformer.py")

    def test_mlp_sgd_every_parameter(self):
        self.check_every_parameter_watched("mlp_sgd.py")

    def test_bf16_weights_are_the_trap(self):
        plain = e2e.plain_run([PY, os.path.join(HERE, "bf16_weights.py")])
        trace, t, out = self.record("bf16_weights.py")
        self.assertEqual(out, plain.stdout)
        params = params_printed(plain.stdout)
        self.assertEqual(sorted(self.watched(t)), sorted(params))
        self.assertTrue(all(r["dtype"] == "bf16" for r in t["weight_updates"]))
        fs = findings(trace)
        trap = [f for f in fs if f["kind"] == "master_not_fp32"]
        self.assertEqual(sorted(f["tensor"] for f in trap), sorted(params))
        self.assertTrue(all(f["severity"] == "error" for f in trap), trap)
        # AdamW makes its moments like the parameters: BF16 state, one finding per parameter.
        state = [f for f in fs if f["kind"] == "optimizer_state_low_precision"]
        self.assertEqual(sorted(f["tensor"] for f in state), sorted(params))
        for f in state:
            self.assertEqual((f["severity"], f["format"]), ("warning", "bf16"), f)
            self.assertIn("AdamW state after step 0: exp_avg bfloat16, exp_avg_sq bfloat16",
                          f["evidence"])
            self.assertIn("Kahan", f["recommendation"])
        self.assertNotIn("fp16_master_stagnant", {f["kind"] for f in fs})  # BF16, not FP16
        # Ranked with the others: after the errors (master_not_fp32), before nothing worse.
        kinds = [f["kind"] for f in fs]
        self.assertLess(max(i for i, k in enumerate(kinds) if k == "master_not_fp32"),
                        min(i for i, k in enumerate(kinds) if k == "optimizer_state_low_precision"))

    def test_fp16_master_copy_drops_updates(self):
        """FP16-stored weights updated by plain SGD: each step leaves many elements unchanged
        (updates below half an FP16 ulp). The watch's per-step `changed` equals the program's own
        count, and every parameter with >= 1% unchanged gets fp16_master_stagnant."""
        plain = e2e.plain_run([PY, os.path.join(HERE, "fp16_master.py")])
        self.assertEqual(plain.returncode, 0, plain.stderr)
        trace, t, out = self.record("fp16_master.py")
        self.assertEqual(out, plain.stdout)  # bit-identical with and without the probe
        params = params_printed(plain.stdout)
        self.assertTrue(all(d == "float16" for _, d in params.values()), params)
        unchanged = {}  # (step, name) -> elements the step left unchanged, counted by torch
        for line in plain.stdout.splitlines():
            w = line.split()
            if w and w[0] == "unchanged":
                unchanged[(int(w[1]), w[2])] = int(w[3])
        watched = self.watched(t)
        self.assertEqual(sorted(watched), sorted(params))
        fraction = {}
        for name, recs in watched.items():
            self.assertTrue(recs, name)
            for r in recs:
                self.assertEqual(r["dtype"], "fp16", name)
                self.assertEqual(r["changed"], params[name][0] - unchanged[(r["step"], name)],
                                 (name, r["step"]))
            fraction[name] = 1 - sum(r["changed"] for r in recs) / (len(recs) * params[name][0])
        fs = findings(trace)
        stagnant = {f["tensor"]: f for f in fs if f["kind"] == "fp16_master_stagnant"}
        self.assertEqual(sorted(stagnant), sorted(n for n, v in fraction.items() if v >= 0.01))
        self.assertGreaterEqual(len(stagnant), 3, fraction)
        for name, f in stagnant.items():
            self.assertEqual((f["severity"], f["format"]), ("error", "fp16"), f)
            # fmt_pct's three significant digits
            self.assertIn("%.3g%% of element updates" % (100 * fraction[name]), f["title"])
            self.assertIn("FP32 master weights", f["recommendation"])
        kinds = {f["kind"] for f in fs}
        self.assertIn("master_not_fp32", kinds)
        self.assertNotIn("optimizer_state_low_precision", kinds)  # plain SGD keeps no state

    def test_watch_none_and_a_pattern(self):
        _, t, _ = self.record("mlp_sgd.py", ["--watch", "none"])
        self.assertEqual(self.watched(t), {})
        _, t, out = self.record("mlp_sgd.py", ["--watch", "*.weight"])
        want = sorted(p for p in params_printed(out) if p.endswith(".weight"))
        self.assertEqual(sorted(self.watched(t)), want)
        _, t, _ = self.record("mlp_sgd.py", env_extra={"FPSCOPE_WATCH": "2.*,4.bias"})
        self.assertEqual(sorted(self.watched(t)), ["2.bias", "2.weight", "4.bias"])

    def test_sampled_estimates_agree_with_a_full_watch(self):
        """A tiny budget (16 KiB: 2048 positions shared by 27 parameters) samples the large
        parameters; the same deterministic run watched whole gives the values the samples
        estimate. The whole value lies inside the stated 95% interval for at least 80% of the
        sampled parameters and inside twice its width for all."""
        full_trace, _, _ = self.record("transformer.py")
        small_trace, t, _ = self.record("transformer.py",
                                        env_extra={"FPSCOPE_WATCH_BUDGET": "16k"})
        full = {w["name"]: w for w in summary_json(full_trace)["weights"]}
        small = {w["name"]: w for w in summary_json(small_trace)["weights"]}
        self.assertEqual(sorted(full), sorted(small))
        self.assertLessEqual(sum(w["watched"] for w in small.values()), 16384 // 8)
        sampled = [n for n, w in small.items() if w["sampled"]]
        self.assertGreaterEqual(len(sampled), 5, sorted(small))
        inside = 0
        for n in sampled:
            s, f = small[n], full[n]
            self.assertFalse(f["sampled"])
            self.assertLess(s["watched"], s["elements"])
            for fmt_ in ("bf16", "fp16"):
                lo, hi, p = s[fmt_]["stagnant_lo"], s[fmt_]["stagnant_hi"], s[fmt_]["stagnant"]
                self.assertLessEqual(lo, p)
                self.assertLessEqual(p, hi)
                truth = f[fmt_]["stagnant"]
                inside += lo <= truth <= hi
                self.assertLessEqual(abs(truth - p), 2 * max(hi - p, p - lo) + 1e-12,
                                     (n, fmt_, truth, p, lo, hi))
        self.assertGreaterEqual(inside, 0.8 * 2 * len(sampled))
        for n, w in small.items():  # small tensors whole, with an exact interval
            if not w["sampled"]:
                self.assertEqual(w["bf16"]["stagnant"], full[n]["bf16"]["stagnant"], n)
        # The report's per-layer table: every parameter, its dtype, what was watched, the
        # stagnant fractions with their interval when sampled (the sampling error), lost mass.
        md = os.path.join(self.dir, "report.md")
        r = subprocess.run([ARGS.fpscope, "report", small_trace, "-o", md], capture_output=True,
                           text=True)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        with open(md) as f:
            text = f.read()
        rows = {}
        for line in text.splitlines():
            cells = [c.strip().replace("\\_", "_") for c in line.strip("|").split("|")]
            if len(cells) == 10 and cells[0] in small:  # (Markdown escapes the names' "_")
                rows[cells[0]] = cells
        self.assertEqual(sorted(rows), sorted(small))
        for n, w in small.items():
            cells = rows[n]
            self.assertEqual(cells[1], "fp32", n)
            self.assertEqual(cells[3], "%d of %d" % (w["watched"], w["elements"])
                             if w["sampled"] else "all", n)
            self.assertEqual(cells[4].endswith("%)"), w["sampled"], cells)  # "12.3% (10.1-14.6%)"
            self.assertTrue(cells[5].endswith("%"), cells)  # bf16 lost mass
        self.assertIn("each stagnant fraction is an estimate with its 95% interval", text)

    def test_sweep_frees_each_model_and_watches_the_next(self):
        """A released optimizer ends its parameters' watches and lets them go: each deleted model
        is freed as without fpscope, and the next model's parameters (new objects, perhaps at
        reused ids) are watched under names of their own."""
        plain = e2e.plain_run([PY, os.path.join(HERE, "sweep.py")])
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertEqual([line for line in plain.stdout.splitlines() if line.startswith("freed")],
                         ["freed 0 True", "freed 1 True", "freed 2 True"])
        _, t, out = self.record("sweep.py")
        self.assertEqual(out, plain.stdout)  # freed too, under the probe
        base = ["0.bias", "0.weight", "2.bias", "2.weight"]
        self.assertEqual(sorted(self.watched(t)),
                         sorted(base + [n + "#1" for n in base] + [n + "#2" for n in base]))
        for name, recs in self.watched(t).items():
            # Each model's updates while its optimizer lives, none after: the watch ended when the
            # optimizer was collected (else stale records, changed 0, would follow every step).
            trial = int(name.split("#")[1]) if "#" in name else 0
            self.assertEqual([r["step"] for r in recs], [4 * trial + k for k in range(3)], name)
            self.assertTrue(all(r["changed"] > 0 for r in recs), name)

    def test_water_filling_and_settings(self):
        sys.path.insert(0, os.path.join(ARGS.root, "probe", "python", "fpscope_hooks"))
        import fpscope_autowatch as aw
        self.assertEqual(aw.water_fill([5, 100, 30], 1000), [5, 100, 30])  # all fit: whole
        self.assertEqual(aw.water_fill([5, 100, 30], 65), [5, 30, 30])  # c = 30: 5 + 30 + 30
        self.assertEqual(aw.water_fill([5, 100, 30], 50), [5, 22, 22])  # c = floor(45 / 2)
        self.assertEqual(aw.water_fill([5, 100, 30], 2), [0, 0, 0])  # c = 0: nothing fits
        self.assertEqual(aw.water_fill([], 10), [])
        self.assertEqual(aw.parse_setting(None)[:2], ("all", []))
        self.assertEqual(aw.parse_setting(" none ")[:2], ("none", []))
        self.assertEqual(aw.parse_setting("a.*, b")[:2], ("pattern", ["a.*", "b"]))
        mode, _, warning = aw.parse_setting(" , ")
        self.assertEqual(mode, "all")
        self.assertIn("FPSCOPE_WATCH", warning)

    def test_bad_watch_setting_warns_once_and_watches_all(self):
        cmd = [PY, os.path.join(HERE, "mlp_sgd.py")]
        trace = os.path.join(self.dir, "bad.fpst")
        rec = record(trace, cmd, ["--watch", ","])
        self.assertEqual(rec.returncode, 0, rec.stderr)
        self.assertEqual(len(e2e.warnings_of(rec.stderr)), 1, rec.stderr)
        self.assertIn("FPSCOPE_WATCH", rec.stderr)
        self.assertEqual(sorted(self.watched(dump(trace))), sorted(params_printed(rec.stdout)))

    def test_budget_exhausted_parameters_are_listed(self):
        trace, t, _ = self.record("mlp_sgd.py", env_extra={"FPSCOPE_WATCH_BUDGET": "0"})
        self.assertEqual(self.watched(t), {})
        left = summary_json(trace)["weights_left_out"]
        self.assertEqual(sorted(x["name"] for x in left),
                         ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"])
        self.assertTrue(all(x["reason"] == "no FPSCOPE_WATCH_BUDGET left" for x in left), left)


class StepsWithoutFramework(unittest.TestCase):
    """The same programs under --no-python-hooks: steps from the GEMM period alone (no optimizer
    signal), one per iteration although PyTorch's CPU bmm issues one sgemm per batch and head,
    layers repeat and RNN time steps repeat a GEMM inside the iteration."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def steps(self, name):
        trace = os.path.join(self.dir, name + ".fpst")
        cmd = [PY, os.path.join(HERE, name)]
        rec = e2e.record(trace, cmd, ["--every", "1"], QUIET)  # hooks=False: --no-python-hooks
        self.assertEqual(rec.returncode, 0, rec.stderr)
        t = dump(trace)
        self.assertTrue(t["clean_close"])
        _, _, n = printed(rec.stdout)
        per_step = collections.Counter(o[1] for o in t["observations"])
        return t, n, [per_step[s] for s in sorted(per_step)]

    def check_one_step_per_iteration(self, name):
        t, n, counts = self.steps(name)
        self.assertEqual(t["step_source"], "gemm_period")
        self.assertEqual([m["step"] for m in t["steps"]], list(range(n)))
        self.assertEqual(len(counts), n)
        return counts

    def test_transformer_bmm_runs(self):
        counts = self.check_one_step_per_iteration("transformer.py")
        self.assertEqual(len(set(counts)), 1, counts)  # every iteration the same GEMMs

    def test_identical_stacked_layers(self):
        counts = self.check_one_step_per_iteration("stacked.py")
        self.assertEqual(len(set(counts)), 1, counts)

    def test_rnn_time_steps(self):
        counts = self.check_one_step_per_iteration("rnn.py")
        self.assertEqual(len(set(counts)), 1, counts)

    def test_eval_pass_every_third_step(self):
        counts = self.check_one_step_per_iteration("eval_every.py")
        base = counts[0]  # the eval pass: extra calls in the step after which it ran
        self.assertEqual([c > base for c in counts], [s % 3 == 2 for s in range(len(counts))])

    def test_sequence_length_changes_undecidable(self):
        """Undecidable without a framework signal: the number of RNN time steps (GEMMs) changes
        every iteration, so neither the sizes nor the op sequence repeat. The best achievable is
        no wrong step: no period (everything in step 0) or at most one step per iteration."""
        t, n, counts = self.steps("varlen.py")
        self.assertIn(t["step_source"], ("none", "gemm_period"))
        self.assertLessEqual(len(counts), n)

    def test_gradient_accumulation_undecidable(self):
        """Undecidable without a framework signal: the optimizer step issues no GEMM, so the three
        identical micro-batches of an optimizer step are three repetitions of the period. Best
        achievable: one step per micro-batch, each the same GEMMs."""
        t, n, counts = self.steps("grad_accum.py")
        self.assertEqual(t["step_source"], "gemm_period")
        self.assertEqual(len(counts), 3 * n)
        self.assertEqual(len(set(counts)), 1, counts)


class Integration(unittest.TestCase):
    """The integration's edges: off by flag, a non-torch program, a chained sitecustomize, an
    internal error, a program with its own fpscope.step()."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_no_python_hooks_gives_the_probe_alone(self):
        trace = os.path.join(self.dir, "t.fpst")
        cmd = [PY, os.path.join(HERE, "transformer.py")]
        rec = e2e.record(trace, cmd, ["--every", "1"], QUIET)  # hooks=False: --no-python-hooks
        self.assertEqual(rec.returncode, 0, rec.stderr)
        t = dump(trace)
        self.assertNotEqual(t["step_source"], "framework")
        self.assertEqual(t["losses"], [])
        self.assertTrue(all(x["id"].startswith("gemm#") for x in t["tensors"]))
        steps = len({o[1] for o in t["observations"]})
        MEASURED.append(("transformer.py --no-python-hooks", summary(trace).splitlines()[3:5],
                         0, len({x["id"] for x in t["tensors"]}), [steps]))

    def test_program_without_torch_and_chained_sitecustomize(self):
        site = os.path.join(self.dir, "site")
        os.makedirs(site)
        marker = os.path.join(self.dir, "chained")
        with open(os.path.join(site, "sitecustomize.py"), "w") as f:
            f.write("import os\nopen(%r, 'w').write(__name__)\nSITE_VALUE = 42\n" % marker)
        prog = ("import sys, sitecustomize\n"
                "print(sitecustomize.SITE_VALUE, sitecustomize.__file__)\n"
                "print(sorted(m for m in ('torch', 'fpscope', 'fpscope_torch') "
                "if m in sys.modules))\n")
        trace = os.path.join(self.dir, "t.fpst")
        rec = record(trace, [PY, "-c", prog], env_extra={"PYTHONPATH": site})
        self.assertEqual(rec.returncode, 0, rec.stderr)
        self.assertEqual(rec.stdout.split("\n")[0],
                         "42 " + os.path.join(site, "sitecustomize.py"))
        self.assertEqual(rec.stdout.split("\n")[1], "[]")  # nothing imported for a non-torch run
        with open(marker) as f:
            self.assertEqual(f.read(), "sitecustomize")

    def test_internal_error_one_warning_output_unchanged(self):
        prog = os.path.join(self.dir, "sabotage.py")
        with open(os.path.join(HERE, "stacked.py")) as f:
            src = f.read()
        # The program breaks the integration's scope calls after step 2 (the integration must
        # catch it, warn once, and step aside).
        src = src.replace("    opt.step()\n", "    opt.step()\n"
                          "    if step == 2:\n"
                          "        try:\n"
                          "            import fpscope\n"
                          "            fpscope.scope_push = None\n"
                          "        except ImportError:\n"
                          "            pass\n")
        with open(prog, "w") as f:
            f.write(src)
        plain = e2e.plain_run([PY, prog])
        self.assertEqual(plain.returncode, 0, plain.stderr)
        trace = os.path.join(self.dir, "t.fpst")
        rec = record(trace, [PY, prog])
        self.assertEqual(rec.returncode, 0, rec.stderr)
        self.assertEqual(rec.stdout, plain.stdout)
        w = e2e.warnings_of(rec.stderr)
        self.assertEqual(len(w), 1, rec.stderr)
        self.assertIn("PyTorch integration is off", w[0])
        t = dump(trace)
        self.assertEqual(t["steps"][:3], [{"step": s, "source": "framework"} for s in range(3)])

    def test_program_with_its_own_steps_keeps_them(self):
        trace = os.path.join(self.dir, "t.fpst")
        out = os.path.join(self.dir, "expected.json")
        pydir = os.path.join(ARGS.root, "probe/python")
        rec = record(trace, [PY, os.path.join(ARGS.root, "tests/probe/api_prog.py"), pydir, out])
        self.assertEqual(rec.returncode, 0, rec.stderr)
        t = dump(trace)
        self.assertEqual(t["step_source"], "api")
        with open(out) as f:
            steps = json.load(f)["steps"]
        self.assertEqual([m["step"] for m in t["steps"]], list(range(steps + 1)))

    def test_cpu_grad_scaler_records_scale_and_found_inf(self):
        import_ok = subprocess.run(
            [PY, "-c", "import torch; torch.amp.GradScaler('cpu')"], capture_output=True)
        if import_ok.returncode != 0:
            self.skipTest("this torch has no CPU GradScaler (torch >= 2.3)")
        prog = os.path.join(self.dir, "scaler.py")
        with open(prog, "w") as f:
            f.write(
                "import torch, torch.nn as nn\n"
                "torch.manual_seed(0)\n"
                "m = nn.Linear(4, 2)\n"
                "opt = torch.optim.SGD(m.parameters(), lr=0.1)\n"
                "s = torch.amp.GradScaler('cpu', init_scale=2.0**16, growth_interval=1)\n"
                "x = torch.randn(3, 4)\n"
                "for step in range(4):\n"
                "    loss = m(x).pow(2).mean()\n"
                "    if step == 2:\n"
                "        loss = loss * float('inf')\n"
                "    print('scale', step, s.get_scale())\n"
                "    s.scale(loss).backward()\n"
                "    s.step(opt)\n"
                "    s.update()\n"
                "    opt.zero_grad()\n")
        trace = os.path.join(self.dir, "t.fpst")
        rec = record(trace, [PY, prog])
        self.assertEqual(rec.returncode, 0, rec.stderr)
        scales = [float(line.split()[2]) for line in rec.stdout.splitlines()]
        t = dump(trace)
        self.assertEqual([(x["step"], x["scale"], x["found_inf"]) for x in t["loss_scales"]],
                         [(s, scales[s], s == 2) for s in range(4)])



class HonestSeverities(unittest.TestCase):
    """Healthy FP32 runs of ordinary models, recorded with the default settings (Python hooks on):
    no critical or error finding. The causal mask of transformer.py (-Inf added to the attention
    scores, beta 1, and the same -Inf in the GEMM's output) is one info additive_mask finding per
    attention layer, not NaN/Inf gone wrong."""

    def setUp(self):
        if not ARGS.fpscope:
            self.skipTest("needs --fpscope")
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def findings(self, name):
        trace = os.path.join(self.dir, name + ".fpst")
        rec = e2e.record(trace, [PY, os.path.join(HERE, name)], [], QUIET, hooks=True)
        self.assertEqual(rec.returncode, 0, rec.stderr)
        r = subprocess.run([ARGS.fpscope, "summary", trace, "--json"], capture_output=True,
                           text=True)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        found = json.loads(r.stdout)["findings"]
        bad = [(f["severity"], f["kind"], f["title"]) for f in found
               if f["severity"] in ("critical", "error")]
        self.assertEqual(bad, [])
        return found

    def test_transformer_causal_mask_is_an_additive_mask(self):
        masks = [f for f in self.findings("transformer.py") if f["kind"] == "additive_mask"]
        # One per encoder layer (LAYERS = 2): the scores GEMM of its self-attention.
        self.assertEqual(sorted(scope_of(f["tensor"])[0] for f in masks),
                         ["encoder.layers.0.self_attn", "encoder.layers.1.self_attn"], masks)
        # 8x8 causal mask: 28 -Inf per head and sequence, 2 heads x batch 4.
        for f in masks:
            self.assertEqual(f["severity"], "info")
            self.assertTrue(f["title"].startswith(
                "additive mask: %d elements at -Inf in every step" % (28 * 2 * 4)), f)

    def test_multihead_attention_without_mask(self):
        found = self.findings("mha.py")
        self.assertEqual([f for f in found if f["kind"] in ("additive_mask", "nonfinite")], [])


def script_main():
    """main() of the test scripts beside this one that record tests/models programs through
    `fpscope record` (test_sampled_naming.py, test_stats_helper.py): their four arguments, the
    skip (exit code 77) without torch, unittest on the calling script's tests. Returns nothing:
    exits with the result."""
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--fpscope", required=True, help="the fpscope CLI (record, export)")
    ap.add_argument("--probe", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--root", required=True)
    args, rest = ap.parse_known_args()
    if not e2e.have("torch"):
        print("SKIPPED: %s cannot import torch (install python3-torch)" % e2e.PY)
        sys.exit(77)
    e2e.ARGS = argparse.Namespace(record=args.fpscope, probe=args.probe, dump=args.dump,
                                  root=args.root)
    ARGS = argparse.Namespace(dump=args.dump, fpscope=args.fpscope)
    prog = unittest.main(module="__main__", argv=[sys.argv[0], "-v", *rest], exit=False)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


def main():
    global ARGS, PY
    ap = argparse.ArgumentParser()
    ap.add_argument("--fpscope", default="", help="the fpscope CLI (summary checks; optional)")
    ap.add_argument("--record", default="", help="the record command (default: --fpscope)")
    ap.add_argument("--python", default=PY, help="the interpreter with torch")
    ap.add_argument("--probe", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--root", required=True)
    ARGS, rest = ap.parse_known_args()
    PY = e2e.PY = ARGS.python
    if not e2e.have("torch"):
        print("SKIPPED: %s cannot import torch (install python3-torch)" % PY)
        sys.exit(77)
    e2e.ARGS = argparse.Namespace(record=ARGS.record or ARGS.fpscope, probe=ARGS.probe,
                                  dump=ARGS.dump,
                                  root=ARGS.root)
    prog = unittest.main(argv=[sys.argv[0], "-v", *rest], exit=False)
    for name, lines, named, total, sample in MEASURED:
        sys.stderr.write("\n  [%s] %d of %d tensor ids named; e.g. %s\n" % (name, named, total,
                                                                            sample))
        for line in lines:
            sys.stderr.write("    %s\n" % line)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
