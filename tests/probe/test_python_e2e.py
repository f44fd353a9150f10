#!/usr/bin/python3
"""End-to-end tests of the probe on Python programs (Debian's python3-torch and numpy), run under
`fpscope record`. Traces are read through probe_trace_dump (read_trace -> JSON).
Exit code 77 (CTest: skipped) when torch or numpy cannot be imported by this interpreter.
Size: ~830 lines of independent test classes sharing the record/dump helpers at the top.
"""
import argparse
import collections
import re
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ARGS = None
PY = "/usr/bin/python3"


def have(module):
    return subprocess.run([PY, "-c", "import " + module], capture_output=True).returncode == 0


def probe_env(env_extra=None):
    env = dict(os.environ)
    env["FPSCOPE_PROBE"] = ARGS.probe
    env.pop("LD_PRELOAD", None)
    env.update(env_extra or {})
    return env


# These tests check the probe's own steps and names (GEMM period, gemm#k, fpscope.py): without
# the PyTorch integration (tests/models/ tests it), unless hooks=True.
NO_HOOKS = ["--no-python-hooks"]


def record(trace, cmd, extra=(), env_extra=None, hooks=False, **kw):
    flags = [] if hooks else NO_HOOKS
    return subprocess.run([ARGS.record, "record", "-o", trace, *flags, *extra, "--", *cmd],
                          capture_output=True, text=True, env=probe_env(env_extra), timeout=300,
                          **kw)


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
        # Backward GEMMs are named by the forward GEMM whose buffers they read (grad_names.h):
        # layer k's weight gradient reads its input (gemm#k.wgrad); the input gradient of layers
        # 1..3 reads their weights (gemm#k.dgrad); layer 0's input needs no gradient.
        want = (["gemm#%d.D" % k for k in range(4)] + ["gemm#%d.wgrad.D" % k for k in range(4)]
                + ["gemm#%d.dgrad.D" % k for k in range(1, 4)])
        self.assertEqual(sorted(x["id"] for x in ds), sorted(want))
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


class FrameworkBoundary(unittest.TestCase):
    """fpscope_framework_boundary / _state through fpscope.py: the losses of the ending step, more
    than one call's 16 slots included, and the step and naming state it returns."""

    def run_prog(self, every, probe=True):
        with tempfile.TemporaryDirectory() as d:
            trace, out = os.path.join(d, "t.fpst"), os.path.join(d, "out.json")
            prog = [PY, os.path.join(ARGS.root, "tests/probe/boundary_prog.py"),
                    os.path.join(ARGS.root, "probe/python"), out]
            r = record(trace, prog, ["--every", str(every)]) if probe else \
                subprocess.run(prog, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            return load_json(out), dump(trace) if probe else None

    def test_losses_go_to_the_ending_step_and_the_state_follows_every(self):
        e, t = self.run_prog(every=2)
        self.assertTrue(e["active"])
        self.assertEqual(t["step_source"], "framework")
        # (before, after, named(after), named(after + 1)) as step s ends; --every 2: even steps.
        self.assertEqual(e["calls"], [[s, s + 1, (s + 1) % 2 == 0, s % 2 == 0] for s in range(4)])
        self.assertEqual(e["state0"], [0, True, True])  # no source in force yet: always named
        self.assertEqual(e["state"], [4, True, False])
        got = collections.defaultdict(list)
        for rec_loss in t["losses"]:
            got[rec_loss["step"]].append(rec_loss["value"])
        want = {s: [s + k / 64.0 for k in range(3 + 7 * s)] for s in range(4)}
        self.assertEqual({s: sorted(v) for s, v in got.items()}, want)

    def test_without_the_probe_every_call_is_a_no_op(self):
        e, _ = self.run_prog(every=1, probe=False)
        self.assertFalse(e["active"])
        self.assertEqual(e["calls"], [[0, 0, True, True]] * 4)


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


# ---------------------------------------------------------------------------------------------
# Invariants (3)-(7), fpscope.watch() and step detection, on real torch and numpy programs
# (tests/probe/progs/). Every program computes what it expects itself (torch/numpy), or prints
# what it did (GEMMs per step, steps, pids), and the test compares that with the trace.

# One BLAS/OpenMP thread everywhere (2 shared cores), the same for plain and recorded runs.
QUIET = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def prog(name):
    return os.path.join(ARGS.root, "tests/probe/progs", name)


def plain_run(cmd, **kw):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.update(QUIET)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, **kw)


def warnings_of(stderr):
    return [line for line in stderr.splitlines() if line.startswith("[fpscope] warning:")]


def tensor_map(t):
    return {x["index"]: x for x in t["tensors"]}


def role_obs(t, role):
    """[(observation, tensor)] of one role."""
    tm = tensor_map(t)
    return [(o, tm[o["tensor"]]) for o in t["observations"] if tm[o["tensor"]]["role"] == role]


def loss_lines(stdout):
    return [line for line in stdout.splitlines() if line.startswith("step ")]


def gemms_per_step(stdout):
    for line in stdout.splitlines():
        if line.startswith("gemms_per_step "):
            return int(line.split()[1])
    raise AssertionError("the program did not print gemms_per_step:\n" + stdout)


def check_step_marks(tc, t):
    """Step marks 0, 1, 2, ... with increasing first_seq; every observation lies between its
    step's first_seq and the next step's."""
    steps = [m["step"] for m in t["steps"]]
    tc.assertEqual(steps, list(range(len(steps))))
    first = [m["first_seq"] for m in t["steps"]]
    tc.assertTrue(all(a < b for a, b in zip(first, first[1:])), first)
    for o in t["observations"]:
        s = o["step"]
        tc.assertLess(s, len(first), o)
        tc.assertGreaterEqual(o["seq"], first[s], o)
        if s + 1 < len(first):
            tc.assertLess(o["seq"], first[s + 1], o)


def d_ids_per_step(t):
    per = collections.defaultdict(list)
    for o, x in role_obs(t, "D"):
        per[o["step"]].append(x["id"])
    return per


GEMM_ID = re.compile(r"^gemm#(\d+)(\.(dgrad|wgrad))?(#\d+)?\.D$")


def assert_step_ids(tc, ids, g, step):
    """The D ids of one step without framework names: g distinct GEMMs named gemm#<k> (k: the
    position in the period) or, for a backward GEMM, after the forward GEMM whose weight (dgrad) or
    input (wgrad) buffer it reads, gemm#<k>.dgrad / gemm#<k>.wgrad (probe/src/grad_names.h), with
    gemm#<k> a GEMM of the same step; #j numbers repeats of one name within the step."""
    tc.assertEqual(len(ids), g, (step, ids))
    tc.assertEqual(len(set(ids)), g, (step, ids))
    m = [GEMM_ID.match(i) for i in ids]
    tc.assertTrue(all(m), (step, ids))
    plain = {int(x.group(1)) for x in m if not x.group(2)}
    for x in m:
        if x.group(2):
            tc.assertIn(int(x.group(1)), plain, (step, ids))


class Kill(unittest.TestCase):
    """(3) SIGKILL mid-run: everything up to the last (timed) flush is in the trace."""
    N = 6  # steps the program has printed before the test waits and kills it
    FLUSH_MS = 50

    def run_and_kill(self, trace, extra_args):
        cmd = [ARGS.record, "record", "-o", trace, *NO_HOOKS, "--every", "1", "--", PY,
               prog("torch_mlp.py"), "--steps", "0", "--pause", "0.01", "--pid",
               *extra_args]  # trains until killed
        env = probe_env(dict(QUIET, FPSCOPE_FLUSH_MS=str(self.FLUSH_MS)))
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
        watchdog = threading.Timer(120, p.kill)
        watchdog.start()
        try:
            head = []
            while len(loss_lines("".join(head))) < self.N:
                line = p.stdout.readline()
                if not line:
                    break
                head.append(line)
            self.assertEqual(len(loss_lines("".join(head))), self.N, "".join(head))
            self.assertTrue(head[0].startswith("pid "), head[0])
            time.sleep(10 * self.FLUSH_MS / 1000.0)  # no explicit flush: the writer's timer only
            os.kill(int(head[0].split()[1]), signal.SIGKILL)  # the program, record's child
            rest, err = p.communicate(timeout=60)
        finally:
            watchdog.cancel()
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 128 + signal.SIGKILL, err)
        return "".join(head) + rest, err

    def check(self, source, extra_args):
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "k.fpst")
            out, err = self.run_and_kill(trace, extra_args)
            g = gemms_per_step(out)
            printed = len(loss_lines(out))  # iterations completed when it died
            t = dump(trace)  # readable (a truncated last chunk is allowed)
        self.assertFalse(t["clean_close"])
        self.assertEqual(t["step_source"], source)
        check_step_marks(self, t)
        per = d_ids_per_step(t)
        # Every GEMM of the steps printed before the wait (and so before the last flush).
        for s in range(self.N):
            self.assertEqual(len(per[s]), g, (s, per[s]))
            assert_step_ids(self, per[s], g, s)
            for role in ("A", "B"):
                self.assertEqual(len([o for o, _ in role_obs(t, role) if o["step"] == s]), g)
        # Nothing from steps the program never reached; steps complete except the last one.
        last = max(o["step"] for o in t["observations"])
        self.assertLessEqual(last, printed, (last, printed))
        self.assertLessEqual(len(t["steps"]), printed + 2)
        for s in range(last):
            self.assertEqual(len(per[s]), g, s)
        sys.stderr.write("\n  [kill/%s] printed %d steps, trace holds steps 0..%d (%d D), "
                         "truncated=%s\n" % (source, printed, last, sum(map(len, per.values())),
                                             t["truncated"]))

    def test_sigkill_api_steps_trace_holds_all_gemms_before_last_flush(self):
        self.check("api", ["--api", os.path.join(ARGS.root, "probe/python")])

    def test_sigkill_period_steps_trace_holds_all_gemms_before_last_flush(self):
        self.check("gemm_period", [])


def _fsize_limit(limit):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


class FullOutput(unittest.TestCase):
    """(4) An unwritable/full output disables recording with one warning; output and exit code
    unchanged."""

    def test_dev_full_one_warning_same_stdout_and_exit_code(self):
        cmd = [PY, prog("torch_mlp.py"), "--steps", "6"]
        plain = plain_run(cmd + ["--exit", "3"])
        self.assertEqual(plain.returncode, 3, plain.stderr)
        self.assertEqual(len(loss_lines(plain.stdout)), 6)
        for code in (0, 3):
            rec = record("/dev/full", cmd + ["--exit", str(code)], ["--every", "1"], QUIET)
            self.assertEqual(rec.returncode, code, rec.stderr)
            self.assertEqual(rec.stdout, plain.stdout)  # every digit of every loss
            w = warnings_of(rec.stderr)
            self.assertEqual(len(w), 1, rec.stderr)
            self.assertEqual([line for line in rec.stderr.splitlines()
                              if "warning" in line and not line.startswith("[fpscope]")], [],
                             rec.stderr)
        self.assertTrue(os.path.exists("/dev/full"))
        self.assertFalse(os.path.isfile("/dev/full"))

    def test_write_failure_mid_run_rlimit_fsize(self):
        limit = 16384  # the trace reaches it after a few of the 40 steps
        steps = 40
        cmd = [PY, prog("torch_mlp.py"), "--steps", str(steps), "--exit", "3"]
        plain = plain_run(cmd)
        self.assertEqual(plain.returncode, 3, plain.stderr)
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "f.fpst")
            # Small chunks, so that the writer writes during the run and hits the limit there.
            rec = record(trace, cmd, ["--every", "1"], dict(QUIET, FPSCOPE_FLUSH_BYTES="4096"),
                         preexec_fn=_fsize_limit(limit))
            self.assertEqual(rec.returncode, 3, rec.stderr)
            self.assertEqual(rec.stdout, plain.stdout)
            w = warnings_of(rec.stderr)
            self.assertEqual(len(w), 1, rec.stderr)
            size = os.path.getsize(trace)
            self.assertLessEqual(size, limit)
            self.assertGreater(size, limit // 2)
            t = dump(trace)  # readable up to the failure
        g = gemms_per_step(plain.stdout)
        self.assertFalse(t["clean_close"])
        self.assertGreater(len(t["observations"]), 0)
        check_step_marks(self, t)
        per = d_ids_per_step(t)
        last = max(per)
        self.assertLess(last, steps // 2, "the failure came late, not mid-run")
        for s in range(last):  # complete steps up to the failure
            assert_step_ids(self, per[s], g, s)
        sys.stderr.write("\n  [fsize] %d bytes, steps 0..%d of %d readable, truncated=%s: %s\n"
                         % (size, last, steps, t["truncated"], w[0]))


class Threads(unittest.TestCase):
    """(5) 8 Python threads in np.matmul (cblas_sgemm) at once lose no record."""

    def test_eight_numpy_threads_lose_no_record(self):
        threads, calls = 8, 32
        with tempfile.TemporaryDirectory() as d:
            trace, out = os.path.join(d, "t.fpst"), os.path.join(d, "e.json")
            rec = record(trace, [PY, prog("np_threads.py"), out, str(threads), str(calls)],
                         ["--every", "1"], QUIET)
            self.assertEqual(rec.returncode, 0, rec.stderr)
            expected = load_json(out)
            t = dump(trace)
        self.assertTrue(t["clean_close"])
        self.assertFalse(t["truncated"])
        self.assertEqual(len(expected), threads)
        got = collections.defaultdict(list)
        for o, x in sorted(role_obs(t, "D"), key=lambda p: p[0]["seq"]):
            self.assertEqual(x["op"], "cblas_sgemm")
            got[frozenset((x["rows"], x["cols"]))].append(o["amax"])
        self.assertEqual(len(got), threads, sorted(map(sorted, got)))
        for th, e in expected.items():
            # A thread's calls are sequential: in sequence-number order, call i is its i-th.
            amax = got[frozenset((e["m"], e["n"]))]
            self.assertEqual(len(amax), calls, "thread %s" % th)
            self.assertEqual(amax, e["amax"], "thread %s" % th)
        for role in ("A", "B"):
            self.assertEqual(len(role_obs(t, role)), threads * calls, role)
        seqs = [o["seq"] for o, _ in role_obs(t, "D")]
        self.assertEqual(len(set(seqs)), threads * calls)  # one sequence number per call
        order = [x["cols"] for _, x in sorted(role_obs(t, "D"), key=lambda p: p[0]["seq"])]
        overlaps = int(rec.stdout.split("overlaps ")[1].split()[0])
        sys.stderr.write("\n  [threads] %d calls overlapped another thread's, %d thread switches "
                         "in the call order\n"
                         % (overlaps, sum(1 for a, b in zip(order, order[1:]) if a != b)))
        # The test's own premise (not the probe's): the calls did run concurrently.
        self.assertGreater(overlaps, 0, "no two threads were ever in np.matmul at once")


class Fork(unittest.TestCase):
    """(6) A program that forks (or starts another recorded Python) keeps working, and the child
    does not corrupt the parent's trace."""

    def run_prog(self, d, output, mode, lib):
        out = os.path.join(d, "e.json")
        rec = record(output, [PY, prog("fork_prog.py"), mode, out, lib], ["--every", "1"], QUIET)
        self.assertEqual(rec.returncode, 0, rec.stderr)
        e = load_json(out)
        self.assertEqual(e["child_status"], 0, rec.stderr)  # the child's GEMMs were right
        return rec, e

    def check_has_exactly(self, t, part, other=None):
        """t holds exactly part's GEMMs (count, amax of each D), none of other's shape."""
        m, k, n = part["shape"]
        ds = [(o, x) for o, x in role_obs(t, "D")]
        mine = [o["amax"] for o, x in ds if {x["rows"], x["cols"]} == {m, n}]
        self.assertEqual(sorted(mine), sorted(part["amax"]))
        self.assertEqual(len(ds), part["calls"], [(x["rows"], x["cols"]) for _, x in ds])
        self.assertEqual(len(role_obs(t, "A")), part["calls"])

    def test_fork_with_pid_parent_trace_intact(self):
        for lib in ("numpy", "torch"):
            with tempfile.TemporaryDirectory() as d:
                rec, e = self.run_prog(d, os.path.join(d, "t-%p.fpst"), "fork", lib)
                files = {f for f in os.listdir(d) if f.endswith(".fpst")}
                self.assertIn("t-%d.fpst" % e["parent_pid"], files)
                self.assertLessEqual(files, {"t-%d.fpst" % e[k] for k in ("parent_pid",
                                                                          "child_pid")})
                t = dump(os.path.join(d, "t-%d.fpst" % e["parent_pid"]))
            self.assertTrue(t["clean_close"], lib)
            self.assertFalse(t["truncated"], lib)
            self.check_has_exactly(t, e["parent"])
            self.assertEqual(t["metadata"]["pid"], e["parent_pid"])

    # A forked child that leaves with os._exit() (as forked workers do) runs no atexit handler:
    # the probe's _exit hook closes its trace, with the GEMMs still held by the period detection
    # or waiting for the writer's timer.
    def test_fork_with_pid_child_exiting_with_os_exit_has_complete_trace(self):
        with tempfile.TemporaryDirectory() as d:
            rec, e = self.run_prog(d, os.path.join(d, "t-%p.fpst"), "fork", "numpy")
            path = os.path.join(d, "t-%d.fpst" % e["child_pid"])
            self.assertTrue(os.path.exists(path), os.listdir(d))
            t = dump(path)
        self.assertEqual(t["metadata"]["pid"], e["child_pid"])
        self.check_has_exactly(t, e["child"])
        self.assertFalse(t["truncated"])

    def test_fork_without_pid_parent_trace_intact_child_silent(self):
        for lib in ("numpy", "torch"):
            with tempfile.TemporaryDirectory() as d:
                trace = os.path.join(d, "t.fpst")
                rec, e = self.run_prog(d, trace, "fork", lib)
                self.assertEqual(sorted(f for f in os.listdir(d) if f.endswith(".fpst")),
                                 ["t.fpst"], lib)
                self.assertNotIn("also", rec.stderr)
                t = dump(trace)
            self.assertTrue(t["clean_close"], lib)
            self.assertFalse(t["truncated"], lib)
            self.check_has_exactly(t, e["parent"])
            check_step_marks(self, t)

    def test_subprocess_records_beside_the_parents_trace(self):
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "t.fpst")
            rec, e = self.run_prog(d, trace, "subprocess", "numpy")
            sibling = os.path.join(d, "t.%d.fpst" % e["child_pid"])
            self.assertEqual(sorted(f for f in os.listdir(d) if f.endswith(".fpst")),
                             sorted(["t.fpst", os.path.basename(sibling)]))
            also = [line for line in rec.stderr.splitlines() if line.startswith("[fpscope] also ")]
            self.assertEqual(len(also), 1, rec.stderr)
            self.assertIn(sibling, also[0])
            t = dump(trace)
            c = dump(sibling)
        for x, part, pid in ((t, e["parent"], e["parent_pid"]), (c, e["child"], e["child_pid"])):
            self.assertTrue(x["clean_close"])
            self.assertFalse(x["truncated"])
            self.assertEqual(x["metadata"]["pid"], pid)
            self.check_has_exactly(x, part)


class NoBlas(unittest.TestCase):
    """(7) numpy without a single matrix product: a valid, empty trace; nothing else changes."""

    def test_numpy_without_blas_valid_empty_trace(self):
        cmd = [PY, prog("np_no_blas.py")]
        t0 = time.perf_counter()
        plain = plain_run(cmd)
        t_plain = time.perf_counter() - t0
        self.assertEqual(plain.returncode, 0, plain.stderr)
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "n.fpst")
            t0 = time.perf_counter()
            rec = record(trace, cmd, [], QUIET)
            t_rec = time.perf_counter() - t0
            self.assertEqual(rec.returncode, 0, rec.stderr)
            self.assertEqual(rec.stdout, plain.stdout)
            self.assertEqual(warnings_of(rec.stderr), [])
            t = dump(trace)
        self.assertTrue(t["clean_close"])
        self.assertFalse(t["truncated"])
        self.assertEqual(t["observations"], [])
        self.assertEqual(t["tensors"], [])
        self.assertEqual(t["steps"], [])
        self.assertEqual(t["dropped_bytes"], 0)
        self.assertIn("command_line", t["metadata"])
        # Not asserted (timing on shared cores): printed for the record.
        own = [line for line in rec.stderr.splitlines() if line.startswith("np_no_blas wall")]
        sys.stderr.write("\n  [no-blas] wall: plain %.3f s, recorded %.3f s (incl. fpscope "
                         "record); program's own: %s | %s\n"
                         % (t_plain, t_rec, plain.stderr.strip(), own))


class Watch(unittest.TestCase):
    """fpscope.watch() in a torch loop: the trace's weight_update records equal the update loss
    the program computes with torch (DESIGN "Master-weight update loss")."""
    STEPS = 5

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.out = os.path.join(d, "e.json")
        cmd = [PY, prog("torch_watch.py"), os.path.join(ARGS.root, "probe/python"), cls.out,
               str(cls.STEPS)]
        cls.plain = plain_run(cmd)
        cls.plain_expected = load_json(cls.out) if cls.plain.returncode == 0 else None
        trace = os.path.join(d, "w.fpst")
        cls.rec = record(trace, cmd, ["--every", "1"], QUIET)
        cls.expected = load_json(cls.out) if cls.rec.returncode == 0 else None
        cls.trace = dump(trace) if cls.rec.returncode == 0 else None

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_watch_update_loss_equals_torch(self):
        self.assertEqual(self.rec.returncode, 0, self.rec.stderr)
        e, t = self.expected, self.trace
        self.assertTrue(e["active"])
        self.assertTrue(e["watched"])
        self.assertEqual(t["step_source"], "api")
        self.assertEqual(loss_lines(self.rec.stdout), loss_lines(self.plain.stdout))
        tm = tensor_map(t)
        ups = sorted(t["weight_updates"], key=lambda u: u["step"])
        # Step k = the update made by the k-th iteration.
        self.assertEqual([u["step"] for u in ups], list(range(self.STEPS)))
        self.assertEqual(len(e["updates"]), self.STEPS)
        for u, x in zip(ups, e["updates"]):
            s = u["step"]
            self.assertEqual(tm[u["tensor"]]["id"], "fc1.weight")
            self.assertEqual(u["master_dtype"], "fp32")
            self.assertEqual(u["elements"], x["elements"], s)
            self.assertEqual(u["changed"], x["changed"], s)
            for f in ("bf16", "fp16"):
                self.assertEqual(u[f]["stagnant"], x[f]["stagnant"], (s, f))
                self.assertAlmostEqual(u[f]["delta_abs"], x[f]["delta_abs"],
                                       delta=1e-12 * x[f]["delta_abs"], msg=(s, f))
                lost_mass = u[f]["lost_abs"] / u[f]["delta_abs"]
                self.assertAlmostEqual(lost_mass, x[f]["lost_mass"],
                                       delta=1e-9 * x[f]["lost_mass"] + 1e-15, msg=(s, f))
            self.assertEqual({str(b): c for b, c in u["ratio_hist"]}, x["ratio_hist"], s)
        # The case is not trivial: BF16 loses more than FP16, both lose some, the ratios spread.
        x0 = e["updates"][0]
        self.assertGreater(x0["bf16"]["stagnant"], x0["fp16"]["stagnant"])
        self.assertGreater(x0["fp16"]["stagnant"], 0)
        self.assertLess(x0["bf16"]["stagnant"], x0["changed"])
        self.assertGreater(len(x0["ratio_hist"]), 5)

    def test_watch_of_unsupported_tensor_returns_false_with_one_warning(self):
        self.assertEqual(self.rec.returncode, 0, self.rec.stderr)
        self.assertIn("watch ok=True noncontig=False int=False", self.rec.stdout)
        w = warnings_of(self.rec.stderr)
        self.assertEqual(len(w), 2, self.rec.stderr)  # one per refused tensor
        self.assertEqual(len([x for x in w if "'noncontig'" in x and "contiguous" in x]), 1, w)
        self.assertEqual(len([x for x in w if "'int'" in x and "int64" in x]), 1, w)
        tm = tensor_map(self.trace)
        self.assertEqual({tm[u["tensor"]]["id"] for u in self.trace["weight_updates"]},
                         {"fc1.weight"})
        # Without the probe: every call a silent no-op, the run the same.
        self.assertEqual(self.plain.returncode, 0, self.plain.stderr)
        self.assertIn("watch ok=False noncontig=False int=False", self.plain.stdout)
        self.assertNotIn("[fpscope]", self.plain.stderr)
        self.assertFalse(self.plain_expected["active"])


class CudaWatchWithoutGpu(unittest.TestCase):
    """fpscope.watch() of a CUDA tensor reaches the probe's device entry (fpscope_watch_device);
    on this machine (no GPU: no device statistics) it returns False with one warning per call,
    and is a silent no-op without the probe."""

    def test_cuda_tensor_goes_to_the_device_entry_and_is_refused_with_one_warning(self):
        cmd = [PY, prog("cuda_watch_nogpu.py"), os.path.join(ARGS.root, "probe/python")]
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "c.fpst")
            rec = record(trace, cmd, ["--every", "1"], QUIET)
            self.assertEqual(rec.returncode, 0, rec.stderr)
            t = dump(trace)
        self.assertIn("device_entry=True watch=False again=False active=True", rec.stdout)
        w = [x for x in warnings_of(rec.stderr) if "watch(" in x]
        self.assertEqual(len(w), 2, rec.stderr)  # one per refused call
        for x in w:
            self.assertIn("no device statistics", x)
        self.assertEqual(t["weight_updates"], [])
        self.assertEqual([x for x in t["tensors"] if x.get("op") == "watch"], [])
        plain = plain_run(cmd)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertIn("device_entry=False watch=False again=False active=False", plain.stdout)
        self.assertNotIn("[fpscope]", plain.stderr)


HOSTILE_NAMES = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import fpscope
out = []
for name in ("ok", "bad\udcff", "lone\ud800"):
    try:
        with fpscope.scope(name):
            pass
        fpscope.event(name)
        fpscope.unwatch(name)
        out.append("fine")
    except Exception as e:  # noqa: BLE001
        out.append(type(e).__name__)
print(json.dumps({"active": fpscope.active(), "results": out}))
"""


class FpscopePyHostileNames(unittest.TestCase):
    """Issue 17: a surrogate-escaped name (bytes from os.fsdecode or sys.argv) raised
    UnicodeEncodeError with the probe loaded, and was a silent no-op without it. Both now behave
    the same and never raise; the original bytes reach the probe (U+FFFD when shown)."""

    def test_surrogates_never_raise_with_or_without_the_probe(self):
        cmd = [PY, "-c", HOSTILE_NAMES, os.path.join(ARGS.root, "probe/python")]
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "h.fpst")
            rec = record(trace, cmd, ["--every", "1"], QUIET)
            self.assertEqual(rec.returncode, 0, rec.stderr)
            t = dump(trace)
        with_probe = json.loads(rec.stdout)
        self.assertTrue(with_probe["active"])
        self.assertEqual(with_probe["results"], ["fine", "fine", "fine"])
        texts = [e["text"] for e in t["events"]]
        self.assertEqual(texts, ["ok", "bad\ufffd", "lone?"])
        plain = plain_run(cmd)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        without = json.loads(plain.stdout)
        self.assertFalse(without["active"])
        self.assertEqual(without["results"], with_probe["results"])


POOL_TERMINATE = r"""
import json, multiprocessing as mp, os, time
import numpy as np

def work(i):
    a = np.full((8, 8), float(i + 1), dtype=np.float32)
    (a @ a).sum()
    time.sleep(0.2)  # both workers take tasks
    return os.getpid()

if __name__ == "__main__":
    pool = mp.get_context("fork").Pool(2)
    pids = sorted(set(pool.map(work, range(4), chunksize=1)))
    time.sleep(0.5)  # the workers wait for tasks: ended by SIGTERM
    pool.terminate()
    pool.join()
    print(json.dumps({"workers": pids}))
"""


class PoolTerminate(unittest.TestCase):
    """Issue 17: pool workers ended by SIGTERM (Pool.terminate()) left traces without a footer.
    SIGTERM now closes the trace as on a normal exit, then ends the worker as before."""

    def test_workers_ended_by_sigterm_have_closed_traces(self):
        with tempfile.TemporaryDirectory() as d:
            rec = record(os.path.join(d, "t-%p.fpst"), [PY, "-c", POOL_TERMINATE],
                         ["--every", "1"], QUIET)
            self.assertEqual(rec.returncode, 0, rec.stderr)
            workers = json.loads(rec.stdout)["workers"]
            self.assertGreaterEqual(len(workers), 1)
            for pid in workers:
                t = dump(os.path.join(d, "t-%d.fpst" % pid))
                self.assertTrue(t["clean_close"], pid)  # was False: no footer
                self.assertFalse(t["truncated"], pid)
                self.assertEqual(t["metadata"]["pid"], pid)
                self.assertGreater(len(t["observations"]), 0, pid)


class StepDetection(unittest.TestCase):
    """Steps of unmodified torch programs from the GEMM period: one step per iteration."""

    def test_qkv_step_start_three_same_shape_gemms_steps_equal_iterations(self):
        iters = 10
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "q.fpst")
            rec = record(trace, [PY, prog("torch_qkv.py"), str(iters)], ["--every", "1"], QUIET)
            self.assertEqual(rec.returncode, 0, rec.stderr)
            self.assertEqual(len(loss_lines(rec.stdout)), iters)
            t = dump(trace)
        self.assertEqual(t["step_source"], "gemm_period")
        self.assertEqual([s["step"] for s in t["steps"]], list(range(iters)))
        check_step_marks(self, t)
        per = d_ids_per_step(t)
        g = len(per[0])
        self.assertGreater(g, 6)
        for s in range(iters):
            assert_step_ids(self, per[s], g, s)
        # The premise: each step begins with three GEMMs of one shape (q, k, v).
        shape = {x["id"]: (x["rows"], x["cols"], x["k"]) for _, x in role_obs(t, "D")}
        self.assertEqual(shape["gemm#0.D"], shape["gemm#1.D"])
        self.assertEqual(shape["gemm#1.D"], shape["gemm#2.D"])
        self.assertNotEqual(shape["gemm#2.D"], shape["gemm#3.D"])

    def test_dynamic_batch_steps_equal_iterations(self):
        iters = 16
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "b.fpst")
            # 8 GEMMs per iteration: 128 calls, fewer than the default window of 4096.
            rec = record(trace, [PY, prog("torch_mlp.py"), "--steps", str(iters), "--dynamic"],
                         ["--every", "1"], dict(QUIET, FPSCOPE_PERIOD_WINDOW="64"))
            self.assertEqual(rec.returncode, 0, rec.stderr)
            t = dump(trace)
        batches = [int(line.split()[3]) for line in loss_lines(rec.stdout)]
        self.assertEqual(len(batches), iters)
        self.assertTrue(all(a != b for a, b in zip(batches, batches[1:])), batches)
        g = gemms_per_step(rec.stdout)
        self.assertEqual(t["step_source"], "gemm_period")
        self.assertEqual([s["step"] for s in t["steps"]], list(range(iters)))
        check_step_marks(self, t)
        per = d_ids_per_step(t)
        for s in range(iters):
            assert_step_ids(self, per[s], g, s)
        # Each step holds its own iteration's GEMMs: the first layer's output has its batch size.
        for o, x in role_obs(t, "D"):
            if x["id"] == "gemm#0.D":
                self.assertIn(batches[o["step"]], (x["rows"], x["cols"]), o["step"])


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
