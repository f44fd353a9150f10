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
Step 0 (and the first step after it) carry one-time costs and are left out."""
import argparse
import os
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
    for step in range(args.steps):
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
    print("step mod %d: forward / backward / optimizer ms (medians over steps >= 2)" % args.every)
    for r in range(args.every):
        rows = [phases[i] for i in range(2, args.steps) if i % args.every == r]
        if not rows:
            continue
        med = [statistics.median(p[k] for p in rows) for k in range(3)]
        print("  %2d: %6.2f %6.2f %6.2f  total %6.2f" % (r, *med, sum(med)))
    print("steps 0, 1, 2 (one-time costs): %s ms; all %d steps: %.1f ms"
          % (", ".join("%.2f" % sum(p) for p in phases[:3]), args.steps,
             sum(sum(p) for p in phases)))


if __name__ == "__main__":
    main()
