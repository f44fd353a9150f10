#!/usr/bin/python3
"""A small PyTorch CPU training run with a real mixed-precision hazard, for fpscope to record.

Unmodified-looking on purpose: it does not import fpscope. Record it with
    fpscope record -o sample.fpst -- /usr/bin/python3 samples/pytorch_cpu/train.py

The model: a 4-layer, 512-wide MLP classifier on synthetic tabular data whose first 8 features are
raw, unnormalized amounts (up to ~6e4, "forgot to normalize"). A LayerNorm right after the first
Linear keeps FP32 training perfectly stable, so nothing looks wrong in FP32, but:
  - the first Linear's output (forward GEMM D) reaches ~1e5 > FP16's max finite: FP16/E4M3/E5M2
    would overflow there (BF16 is safe);
  - the gradient flowing back into that layer is divided by the LayerNorm's huge standard
    deviation, so the backward GEMMs of layer 1 carry values below FP16's smallest subnormal:
    they would flush to zero in FP16 without loss scaling.
Prints one line per step with the loss (repr: every digit, so runs can be compared bit for bit).
sample.fpst beside it: this sample recorded with `--steps 100` at the default sampling.
"""
import argparse
import time

import torch
import torch.nn as nn


# --quiet also times the steps after the first WARM_STEPS ("steady seconds", for bench/probe): the
# per-step cost without the first steps' one-time costs (allocations, first-use page faults, a
# tool's set-up). Steps WARM_STEPS.. hold every 10th step exactly once per 10.
WARM_STEPS = 10


def make_data(n, features, classes, gen):
    x = torch.randn(n, features, generator=gen)
    # 8 raw amount columns: log-normal, median ~8e3, up to 4e5.
    x[:, :8] = torch.exp(torch.randn(n, 8, generator=gen) * 1.5 + 9.0).clamp(max=4.0e5)
    w_true = torch.randn(features, classes, generator=gen)
    logits = (x[:, :8] / 1.0e5) @ w_true[:8] + 0.2 * (x[:, 8:] @ w_true[8:])
    y = logits.argmax(dim=1)
    return x, y


def parse_args(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: never)")
    ap.add_argument("--quiet", action="store_true", help="print only the final loss and times")
    return ap.parse_args(argv)


def build_model(features, width, classes):
    return nn.Sequential(
        nn.Linear(features, width), nn.LayerNorm(width), nn.ReLU(),
        nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, classes),
    )


def main(argv=None, setup=None):
    """setup(model), when given, runs before training (bench/probe uses it to add hooks)."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    features, classes = 64, 10
    x_all, y_all = make_data(args.steps * args.batch, features, classes, gen)
    x_val, y_val = make_data(args.batch, features, classes, gen)

    model = build_model(features, args.width, classes)
    if setup is not None:
        setup(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    t0 = time.perf_counter()
    t_warm = None  # the end of the first WARM_STEPS steps: one-time costs are behind it
    loss = None
    for step in range(args.steps):
        xb = x_all[step * args.batch:(step + 1) * args.batch]
        yb = y_all[step * args.batch:(step + 1) * args.batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        if step + 1 == WARM_STEPS:
            t_warm = time.perf_counter()
        if not args.quiet:
            print(f"step {step} loss {loss.item()!r}", flush=True)
        if args.eval_every and (step + 1) % args.eval_every == 0:
            with torch.no_grad():
                acc = (model(x_val).argmax(dim=1) == y_val).float().mean().item()
            if not args.quiet:
                print(f"eval step {step} accuracy {acc!r}", flush=True)
    t1 = time.perf_counter()
    print(f"final loss {loss.item()!r}")
    if args.quiet:
        print(f"train seconds {t1 - t0:.4f}")
        if args.steps >= 2 * WARM_STEPS:
            print(f"steady seconds {t1 - t_warm:.4f} steps {WARM_STEPS}..{args.steps}")


if __name__ == "__main__":
    main()
