#!/usr/bin/python3
"""Where the probe's overhead falls within the steps: the bundled sample's model (MLP
64-512-512-512-10, batch 256, SGD, one thread) trained for --steps steps, each step's forward,
backward and optimizer step timed; prints the medians per step number mod --every (the sampled
step is 0 mod --every when steps come from the optimizer, as under the PyTorch integration).

Run it plain and under the probe, e.g.:
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/probe/step_times.py
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 LD_PRELOAD=build/lib/libfpscope_probe.so \\
    PYTHONPATH=build/lib/python/fpscope_hooks FPSCOPE_OUTPUT=/tmp/t-%p.fpst \\
    /usr/bin/python3 bench/probe/step_times.py
Step 0 (and the first step after it) carry one-time costs and are left out. Each row also gives
the mean step time (outliers included: a step the allocator makes page-fault its memory in again)
and the mean minor page faults of the whole process (resource.getrusage) during the step. Under
the probe the last line compares the sampled step and the one after it with the other steps of
the same run (the same machine state; this VM's speed changes between runs by more than the
probe costs): their extra time over every --every steps."""
import argparse
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "samples", "pytorch_cpu"))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import train  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--every", type=int, default=10, help="the probe's FPSCOPE_EVERY")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    x_all, y_all = train.make_data(args.steps * 256, 64, 10, gen)
    model = train.build_model(64, 512, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    phases = []
    faults = []  # minor page faults of the whole process during each step
    for step in range(args.steps):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        xb = x_all[step * 256:(step + 1) * 256]
        yb = y_all[step * 256:(step + 1) * 256]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        phases.append(((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3))
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    print("step mod %d: forward / backward / optimizer ms (medians over steps >= 2); mean step ms, "
          "mean page faults" % args.every)
    step_med = {}  # residue -> median whole-step time
    for r in range(args.every):
        rows = [phases[i] for i in range(2, args.steps) if i % args.every == r]
        if not rows:
            continue
        step_med[r] = statistics.median(sum(p) for p in rows)
        med = [statistics.median(p[k] for p in rows) for k in range(3)]
        mean = statistics.fmean(sum(p) for p in rows)
        flt = statistics.fmean(faults[i] for i in range(2, args.steps) if i % args.every == r)
        print("  %2d: %6.2f %6.2f %6.2f  total %6.2f  mean %6.2f  faults %7.1f"
              % (r, *med, sum(med), mean, flt))
    print("steps 0, 1, 2 (one-time costs): %s ms; all %d steps: %.1f ms"
          % (", ".join("%.2f" % sum(p) for p in phases[:3]), args.steps,
             sum(sum(p) for p in phases)))
    if args.steps >= 3 * args.every and args.every >= 3:
        total = [step_med[r] for r in range(args.every)]
        rest = statistics.median(total[2:])
        extra = total[0] - rest + total[1] - rest
        print("within this run: steps 0 and 1 mod %d take %+.2f and %+.2f ms over the other steps' "
              "%.2f ms: %+.1f %% of every %d steps" % (args.every, total[0] - rest, total[1] - rest,
                                                       rest, 100 * extra / (args.every * rest),
                                                       args.every))


if __name__ == "__main__":
    main()
