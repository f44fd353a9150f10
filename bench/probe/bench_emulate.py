"""Cost of emulated precision (issue 18): transformer_train.py plain vs under the probe with
FPSCOPE_EMULATE=SPEC (and the PyTorch integration, as `fpscope record` runs it), interleaved,
single-threaded, CPU time (user + system of the child) per run and the ratio to the plain run.

  bench_emulate.py --probe build/lib/libfpscope_probe.so [--steps 30] [--repeats 3]
                   [--specs bf16,e4m3,e4m3:delayed,hybrid] [--every 10] [--no-sketch-too]
                   [--baseline-probe OTHER.so]

--baseline-probe adds each SPEC run under another build of the probe ("SPEC-base", its
python/fpscope_hooks beside it), interleaved with the others: before/after in one run.

Emulated runs carry value sketches by default (FPSCOPE_SKETCH, what `fpscope compare` reads);
--no-sketch-too adds each SPEC with FPSCOPE_SKETCH=0 beside it ("SPEC-nosketch"), so the cost of
the sketches is measured in the same interleaved run.
"""
import argparse
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_seconds(cmd, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--specs", default="bf16,e4m3,e4m3:delayed,hybrid")
    ap.add_argument("--every", default="10")
    ap.add_argument("--out", default=os.devnull, help="trace path (default: /dev/null)")
    ap.add_argument("--no-sketch-too", action="store_true",
                    help="also run each SPEC with FPSCOPE_SKETCH=0")
    ap.add_argument("--baseline-probe", default=None,
                    help="also run each SPEC under this probe build (SPEC-base)")
    a = ap.parse_args()
    probe = os.path.abspath(a.probe)
    baseline = os.path.abspath(a.baseline_probe) if a.baseline_probe else None

    def hooks_of(so):
        return os.path.join(os.path.dirname(so), "python", "fpscope_hooks")
    cmd = [sys.executable, os.path.join(HERE, "transformer_train.py"), "--quiet", "--steps",
           str(a.steps)]
    base = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for k in ("LD_PRELOAD", "FPSCOPE_EMULATE", "FPSCOPE_EMULATE_SKIP", "FPSCOPE_SKETCH"):
        base.pop(k, None)
    settings = [("plain", None)]
    for s in a.specs.split(","):
        if s:
            settings.append((s, s))
            if baseline is not None:
                settings.append((s + "-base", s))
            if a.no_sketch_too:
                settings.append((s + "-nosketch", s))
                if baseline is not None:
                    settings.append((s + "-nosketch-base", s))
    times = {name: [] for name, _ in settings}
    for r in range(a.repeats):
        for name, spec in settings:
            env = dict(base)
            if spec is not None:
                so = baseline if name.endswith("-base") else probe
                env.update(LD_PRELOAD=so, PYTHONPATH=hooks_of(so), FPSCOPE_EMULATE=spec,
                           FPSCOPE_EVERY=a.every, FPSCOPE_OUTPUT=a.out)
                if "-nosketch" in name:
                    env["FPSCOPE_SKETCH"] = "0"
            cpu, wall = cpu_seconds(cmd, env)
            times[name].append(cpu)
            print(f"run {r} {name:14s} cpu {cpu:7.2f} s  wall {wall:7.2f} s", flush=True)
    plain = sorted(times["plain"])
    print(f"\nloadavg {os.getloadavg()[0]:.1f}; CPU seconds min..max over {a.repeats} runs")
    for name, _ in settings:
        t = sorted(times[name])
        print(f"{name:14s} {t[0]:7.2f}..{t[-1]:7.2f} s  ratio to plain (min/min) "
              f"{t[0] / plain[0]:.2f}x, (max/max) {t[-1] / plain[-1]:.2f}x")


if __name__ == "__main__":
    main()
