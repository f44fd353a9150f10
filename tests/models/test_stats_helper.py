#!/usr/bin/python3
"""The statistics helper (probe/src/stats_helper.h, FPSCOPE_STATS_HELPER) changes where and when
the host GEMM operands and the watched weights' updates are measured, never what is recorded.

For ordinary torch.nn programs (tests/models/*.py) recorded at `--every 1` (every GEMM of every
step goes through the helper) with FPSCOPE_STATS_HELPER=1 and with =0 (measured on the calling
thread, as before the helper existed):
  - the output is bit-identical to the plain run, in both;
  - the helper really ran jobs in the =1 run and none in the =0 run (the probe's info line
    "statistics helper: N jobs" at exit);
  - the step marks and losses are the same;
  - every observation's statistics (all of `fpscope export --format jsonl`'s fields but its
    time, sequence number and tensor index, and its histogram, block-format section and value
    sketch) are equal, as a multiset per step and module path: the copies the helper measures
    hold the operands' values (strided views packed), and the runs merge in call order;
  - the weight updates of the auto-watch (count, stagnant and lost-mass fields, ratio histogram)
    are equal, per step and tensor name.
Names are compared by module path (test_models.scope_of): which forward GEMM an attention bmm
slice's backward GEMM is named after can depend on where the allocator put a temporary, which
differs between any two runs (test_sampled_naming.py says more).
Exit code 77 (CTest: skipped) when torch cannot be imported by /usr/bin/python3."""
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
import test_models as tm  # noqa: E402
import test_python_e2e as e2e  # noqa: E402

JOBS = re.compile(r"statistics helper: (\d+) jobs")


def observations(trace, dumped):
    """Counter of (step, module path, backward?, role, every statistic as JSON): the export's
    fields with the dump's histogram, block-format section and sketch (in file order, as the
    export's rows)."""
    r = subprocess.run([tm.ARGS.fpscope, "export", trace, "--format", "jsonl", "-o", "-"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == len(dumped["details"]), (len(rows), len(dumped["details"]))
    out = collections.Counter()
    for row, details in zip(rows, dumped["details"]):
        scope = tm.scope_of(row["id"])
        for key in ("time_ns", "seq", "tensor", "id", "name"):
            row.pop(key, None)
        row["details"] = details
        out[(row["step"], *scope, row["role"], json.dumps(row, sort_keys=True))] += 1
    return out


def weight_updates(t):
    ids = [x["id"] for x in t["tensors"]]  # records refer to tensors by position
    return sorted(json.dumps(dict(w, tensor=ids[w["tensor"]]), sort_keys=True)
                  for w in t["weight_updates"])


class StatsHelper(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def record(self, name, helper, extra_env):
        trace = os.path.join(self.tmp.name, "%s.%d.fpst" % (name, helper))
        env = dict(e2e.QUIET, FPSCOPE_STATS_HELPER=str(helper), FPSCOPE_LOG="info", **extra_env)
        rec = e2e.record(trace, [e2e.PY, os.path.join(HERE, name)], ["--every", "1"], env,
                         hooks=True)
        self.assertEqual(rec.returncode, 0, rec.stderr)
        tm.check_warnings(self, name, rec.stderr)
        jobs = [int(m.group(1)) for m in JOBS.finditer(rec.stderr)]
        return rec.stdout, trace, sum(jobs)

    def check(self, name, watched=False, gemms=True, env=None):
        plain = e2e.plain_run([e2e.PY, os.path.join(HERE, name)])
        self.assertEqual(plain.returncode, 0, plain.stderr)
        out0, trace0, jobs0 = self.record(name, 0, env or {})
        out1, trace1, jobs1 = self.record(name, 1, env or {})
        self.assertEqual(out0, plain.stdout)  # bit-identical
        self.assertEqual(out1, plain.stdout)
        self.assertEqual(jobs0, 0)
        self.assertGreater(jobs1, 0)
        t0, t1 = tm.dump(trace0), tm.dump(trace1)
        self.assertEqual(t1["steps"], t0["steps"])
        self.assertEqual(t1["losses"], t0["losses"])
        obs0, obs1 = observations(trace0, t0), observations(trace1, t1)
        if gemms:
            self.assertTrue(obs0)
        self.assertEqual(obs1, obs0)
        w0, w1 = weight_updates(t0), weight_updates(t1)
        if watched:
            self.assertTrue(w0)
        self.assertEqual(w1, w0)

    def test_transformer_encoder(self):
        self.check("transformer.py", watched=True)

    def test_transformer_encoder_block_formats_and_sketches(self):
        # The copies hold strided views packed (attention heads): the block-format statistics run
        # along the same blocks, the value sketches see the same values.
        self.check("transformer.py", watched=True,
                   env={"FPSCOPE_FORMATS": "all", "FPSCOPE_SKETCH": "1"})

    def test_lstm_and_gru(self):
        self.check("rnn.py")

    def test_bf16_weights_watched(self):
        # PyTorch's CPU BF16 matmul does not call the BLAS: only the watch's jobs run on the helper.
        self.check("bf16_weights.py", watched=True, gemms=False)

    def test_dataloader_two_workers(self):
        self.check("dataloader.py")

    def test_two_threads(self):
        self.check("threads.py")

    def test_gradient_accumulation(self):
        self.check("grad_accum.py")


if __name__ == "__main__":
    tm.script_main()
