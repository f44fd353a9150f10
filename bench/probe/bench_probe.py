#!/usr/bin/python3
"""Probe overhead on the PyTorch CPU sample (4-layer 512-wide MLP, batch 256, one thread), and,
in the same run, the overhead of computing the same statistics with PyTorch hooks in Python, and
of the probe with its PyTorch integration, with and without the auto-watch of every parameter.
With --model transformer: the overhead of the probe with and without its PyTorch integration
(as `fpscope record` loads it: probe/python/fpscope_hooks on PYTHONPATH) on a causal
TransformerEncoder LM built from torch.nn (bench/probe/transformer_train.py), default sampling;
"no watch" is the integration without its auto-watch of the optimizer's parameters
(FPSCOPE_WATCH=none), the default watches every parameter.

Usage: bench_probe.py --probe build/lib/libfpscope_probe.so [--steps 60] [--repeats 5]
                      [--baseline-probe OLD/libfpscope_probe.so] [--skip-hooks]
                      [--steady-malloc] [--target-only] [--plain-twice] [--shuffle]
       bench_probe.py --probe build/lib/libfpscope_probe.so --model transformer [--steps 30]
                      [--every-step] [--baseline-probe OLD/libfpscope_probe.so] [--target-only]
                      [--plain-twice] [--shuffle]
Prints the median training-loop time of each configuration and the ratios; the configurations
are interleaved (plain, probe default, probe every step, hooks, plain, ...) so that drift on a
shared machine hits all of them alike. With --steps 20 or more also the steady state, steps 10..
(the programs print it): the per-step cost, without the first steps' one-time costs (the probe's
and the integration's set-up, the first sampled step's fresh buffers), which a 60-step run
would otherwise spread over few steps."""
import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def run(cmd, env):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stderr))
    def value(prefix):  # "<prefix> S[ ...]"
        v = [float(line[len(prefix):].split()[0]) for line in r.stdout.splitlines()
             if line.startswith(prefix + " ")]
        return v[0] if v else None
    return Times(value("train seconds"), wall, value("train cpu seconds"),
                 value("steady seconds"), value("steady cpu seconds"))


class Times:
    """One run: the training loop (wall, CPU), the whole process (wall), and the steady state:
    steps 10.. only, after the first steps' one-time costs (None when the run is too short)."""

    def __init__(self, train, wall, cpu, steady, steady_cpu):
        self.train, self.wall, self.cpu = train, wall, cpu
        self.steady, self.steady_cpu = steady, steady_cpu


def malloc_env(args):
    """--steady-malloc: glibc's dynamic mmap threshold and heap trimming off (fixed thresholds,
    mallopt(3) environment variables), for every configuration alike."""
    if not args.steady_malloc:
        return {}
    return {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def shuffled(configs, shuffle, rng):
    """One repeat's order: as listed, or (--shuffle) a fresh random order from a fixed seed, so that
    a configuration's place in the repeat (right after the plain run, say) cannot bias it."""
    if not shuffle:
        return configs
    out = list(configs)
    rng.shuffle(out)
    return out


def paired(runs, name, field):
    """The median over repeats of (this configuration / plain) - 1 within the same repeat: the
    configurations of one repeat run back to back, so slow drift of the machine cancels."""
    return statistics.median(getattr(a, field) / getattr(b, field) - 1.0
                             for a, b in zip(runs[name], runs["plain"]))


def interval(runs, name, field):
    """The mean over repeats of the paired ratio - 1 (as `paired`) and its 95 % bootstrap interval
    (2000 resamples of the repeats, fixed seed): how far the run's noise leaves the answer open."""
    r = [getattr(a, field) / getattr(b, field) - 1.0 for a, b in zip(runs[name], runs["plain"])]
    rng = random.Random(1)
    means = sorted(statistics.fmean(rng.choices(r, k=len(r))) for _ in range(2000))
    return statistics.fmean(r), means[49], means[1949]


def baseline_hooks(baseline_probe, default):
    """The Python integration built with the baseline probe (its python/fpscope_hooks), else
    `default`."""
    own = os.path.join(os.path.dirname(os.path.abspath(baseline_probe)), "python", "fpscope_hooks")
    return own if os.path.isfile(os.path.join(own, "sitecustomize.py")) else default


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", choices=["mlp", "transformer"], default="mlp")
    ap.add_argument("--baseline-probe", default="",
                    help="also this other build of the probe with the integration, auto-watch "
                         "on (before / after)")
    ap.add_argument("--steady-malloc", action="store_true",
                    help="every configuration, plain included, with glibc's heap held steady "
                         "(fixed mmap and trim thresholds: the heap is not trimmed and regrown, "
                         "whose page faults per step vary several-fold from run to run)")
    ap.add_argument("--skip-hooks", action="store_true",
                    help="mlp: leave out the Python-hooks configuration (and its ratio)")
    ap.add_argument("--target-only", action="store_true",
                    help="only the plain run and the probe + integration (the <= 5 %% "
                         "target), for many repeats; prints the paired per-step ratio's 95 %% "
                         "interval")
    ap.add_argument("--plain-twice", action="store_true",
                    help="also the plain run a second time in each repeat, measured as if it "
                         "were a configuration: its 'overhead' is this machine's noise floor "
                         "for the same comparison")
    ap.add_argument("--shuffle", action="store_true",
                    help="run each repeat's configurations in a random order (fixed seed) instead "
                         "of as listed: no configuration always follows the same one")
    ap.add_argument("--every-step", action="store_true",
                    help="transformer: also the probe + integration with FPSCOPE_EVERY=1")
    args = ap.parse_args()
    if args.model == "transformer":
        return bench_transformer(args)
    sample = [PY, os.path.join(ROOT, "samples/pytorch_cpu/train.py"), "--quiet",
              "--steps", str(args.steps), "--batch", "256", "--width", "512", "--threads", "1"]
    hooks = [PY, os.path.join(HERE, "hooks_train.py")] + sample[2:]
    base_env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", **malloc_env(args))
    base_env.pop("LD_PRELOAD", None)
    tmp = tempfile.mkdtemp(prefix="fpscope_bench_")

    def probe_env(every):
        e = dict(base_env, LD_PRELOAD=os.path.abspath(args.probe),
                 FPSCOPE_OUTPUT=os.path.join(tmp, "b-%p.fpst"))
        if every is not None:
            e["FPSCOPE_EVERY"] = str(every)
        return e

    hooks_dir = os.path.join(os.path.dirname(os.path.abspath(args.probe)), "python",
                             "fpscope_hooks")
    integration = dict(probe_env(None), PYTHONPATH=hooks_dir)  # as `fpscope record` runs it
    configs = [("plain", sample, base_env), ("probe, default sampling", sample, probe_env(None)),
               ("probe, every step", sample, probe_env(1)), ("python hooks, every step", hooks, base_env),
               ("probe + integration", sample, integration),
               ("probe + integration, no watch", sample, dict(integration, FPSCOPE_WATCH="none"))]
    if args.skip_hooks or args.target_only:  # the slowest configuration (about 8x a plain run)
        configs = [c for c in configs if c[0] != "python hooks, every step"]
    if args.target_only:
        configs = [c for c in configs if c[0] in ("plain", "probe + integration")]
    if args.plain_twice:  # an A/A comparison: what the method reads where nothing differs
        configs.append(("plain again", sample, base_env))
    if args.baseline_probe:  # before / after a change of the probe, in one interleaved run
        configs.append(("baseline probe + integration", sample,
                        dict(integration, LD_PRELOAD=os.path.abspath(args.baseline_probe),
                             PYTHONPATH=baseline_hooks(args.baseline_probe, hooks_dir))))
    runs = {name: [] for name, _, _ in configs}
    run(sample, base_env)  # warm the page cache
    order = random.Random(7)
    for _ in range(args.repeats):
        for name, cmd, env in shuffled(configs, args.shuffle, order):
            runs[name].append(run(cmd, env))
    med = {k: statistics.median(r.train for r in v) for k, v in runs.items()}
    medw = {k: statistics.median(r.wall for r in v) for k, v in runs.items()}
    steady = args.steps >= 20
    meds = {k: statistics.median(r.steady for r in v) for k, v in runs.items()} if steady else {}
    print("steps=%d batch=256 width=512 threads=1 repeats=%d (median seconds; training loop, "
          "whole process%s)" % (args.steps, args.repeats, ", steps 10.." if steady else ""))
    for name, _, _ in configs:
        print("  %-30s %8.3f s  %8.3f s%s" % (name, med[name], medw[name],
                                              "  %8.3f s" % meds[name] if steady else ""))
    base = med["plain"]
    ov = {k: med[k] / base - 1.0 for k in med}
    ovs = {k: meds[k] / meds["plain"] - 1.0 for k in meds}
    print("overhead vs plain (ratio of medians; median of the repeats' own ratios)%s:"
          % (" training loop | steps 10.., the per-step cost" if steady else ""))
    for name, _, _ in configs[1:]:
        print("  %-30s %+7.1f%% %+7.1f%%%s"
              % (name, 100 * ov[name], 100 * paired(runs, name, "train"),
                 "  | %+7.1f%% %+7.1f%%" % (100 * ovs[name], 100 * paired(runs, name, "steady"))
                 if steady else ""))
    for name in ("probe + integration", "baseline probe + integration", "plain again"):
        if steady and name in runs:
            m, lo, hi = interval(runs, name, "steady")
            print("%s, per step (steps 10..): mean of the paired ratios %+.1f%%, 95%% interval "
                  "%+.1f%% .. %+.1f%%  (target <= 5%%)" % (name, 100 * m, 100 * lo, 100 * hi))
    if not args.target_only:
        summary(args, ov, ovs, runs, steady)
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)


def summary(args, ov, ovs, runs, steady):
    """The target lines of the full MLP comparison."""
    if not args.skip_hooks:
        print("probe every step / python hooks overhead ratio: %.3f  (target <= 0.1)"
              % (ov["probe, every step"] / ov["python hooks, every step"]))
    print("probe default sampling overhead: %+.1f%%  (target <= 5%%)"
          % (100 * ov["probe, default sampling"]))
    print("probe + integration (auto-watch of every parameter) overhead: %+.1f%%, without the "
          "watch %+.1f%%  (target <= 5%%)"
          % (100 * ov["probe + integration"], 100 * ov["probe + integration, no watch"]))
    if steady:
        print("  per step (steps 10..): %+.1f%%, without the watch %+.1f%%; paired: %+.1f%%, %+.1f%%"
              % (100 * ovs["probe + integration"], 100 * ovs["probe + integration, no watch"],
                 100 * paired(runs, "probe + integration", "steady"),
                 100 * paired(runs, "probe + integration, no watch", "steady")))
    if args.baseline_probe:
        print("baseline probe + integration (auto-watch) overhead: %+.1f%%%s"
              % (100 * ov["baseline probe + integration"],
                 "; per step (steps 10..) %+.1f%%, paired %+.1f%%"
                 % (100 * ovs["baseline probe + integration"],
                    100 * paired(runs, "baseline probe + integration", "steady"))
                 if steady else ""))


def bench_transformer(args):
    prog = [PY, os.path.join(HERE, "transformer_train.py"), "--quiet", "--steps", str(args.steps)]
    base_env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", **malloc_env(args))
    base_env.pop("LD_PRELOAD", None)
    base_env.pop("PYTHONPATH", None)
    probe = os.path.abspath(args.probe)
    hooks_dir = os.path.join(os.path.dirname(probe), "python", "fpscope_hooks")
    if not os.path.isfile(os.path.join(hooks_dir, "sitecustomize.py")):
        sys.exit("no Python integration at %s (build fpscope_probe)" % hooks_dir)
    tmp = tempfile.mkdtemp(prefix="fpscope_bench_")
    probed = dict(base_env, LD_PRELOAD=probe, FPSCOPE_OUTPUT=os.path.join(tmp, "t-%p.fpst"))
    configs = [("plain", base_env),
               ("probe + integration", dict(probed, PYTHONPATH=hooks_dir)),
               ("probe + integration, no watch", dict(probed, PYTHONPATH=hooks_dir,
                                                      FPSCOPE_WATCH="none")),
               ("probe, no integration", probed)]
    if args.plain_twice:  # an A/A comparison: what the method reads where nothing differs
        configs.append(("plain again", base_env))
    if args.baseline_probe:  # before / after a change of the probe, in one interleaved run
        configs.append(("baseline probe + integration",
                        dict(probed, PYTHONPATH=baseline_hooks(args.baseline_probe, hooks_dir),
                             LD_PRELOAD=os.path.abspath(args.baseline_probe))))
    if args.target_only:
        configs = [c for c in configs if c[0] in ("plain", "probe + integration", "plain again")]
    if args.every_step:  # what one sampled step costs
        configs.append(("probe + integration, every step",
                        dict(probed, PYTHONPATH=hooks_dir, FPSCOPE_EVERY="1")))
    runs = {name: [] for name, _ in configs}
    run(prog, base_env)  # warm the page cache
    order = random.Random(7)
    for _ in range(args.repeats):
        for name, env in shuffled(configs, args.shuffle, order):
            runs[name].append(run(prog, env))
    steady = args.steps >= 20

    def medians(field):
        return {k: statistics.median(getattr(r, field) for r in v) for k, v in runs.items()}

    print("transformer (d_model 256, 4 layers, seq 128, batch 8, AdamW), steps=%d repeats=%d, "
          "default sampling (median seconds: wall, and CPU of every thread)"
          % (args.steps, args.repeats))
    sections = [("training loop (steps 1..)", "train", "cpu")]
    if steady:
        sections.append(("steps 10.. (the per-step cost)", "steady", "steady_cpu"))
    for title, wf, cf in sections:
        med, medc = medians(wf), medians(cf)
        print(" %s:" % title)
        for name, _ in configs:
            print("  %-32s wall %8.3f s  %+6.1f%%   cpu %8.3f s  %+6.1f%%"
                  % (name, med[name], 100 * (med[name] / med["plain"] - 1), medc[name],
                     100 * (medc[name] / medc["plain"] - 1)))
        print("  probe + integration overhead: wall %+.1f%%, cpu %+.1f%% (paired: %+.1f%%, %+.1f%%)"
              "  (target <= 5%%)"
              % (100 * (med["probe + integration"] / med["plain"] - 1),
                 100 * (medc["probe + integration"] / medc["plain"] - 1),
                 100 * paired(runs, "probe + integration", wf),
                 100 * paired(runs, "probe + integration", cf)))
        m, lo, hi = interval(runs, "probe + integration", wf)
        print("  probe + integration, wall: mean of the paired ratios %+.1f%%, 95%% interval "
              "%+.1f%% .. %+.1f%%" % (100 * m, 100 * lo, 100 * hi))
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
