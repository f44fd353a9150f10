#!/usr/bin/python3
"""The same model and data as train.py, trained the way an FP16 mixed-precision run would be, on
the CPU: every activation and every activation gradient is stored in FP16 (rounded through
torch.float16), the loss is scaled by a dynamic loss scaler (GradScaler's rules: start 2^24 (GradScaler: 2^16),
halve and skip the step on Inf/NaN gradients, double after 10 clean steps (GradScaler: 2000; shortened so that a 60-step run shows growth and backoff)), and the master
weights stay FP32. The GEMMs themselves run in FP32 BLAS (sgemm_), so the probe sees them.

It uses fpscope.py (a no-op without the probe): the loss scale of every step (no kernel shows a
Python scaler), the master weights of layer 1 to watch, step marks, and layer names.
    fpscope record -o fp16_amp.fpst -- /usr/bin/python3 samples/pytorch_cpu/train_fp16_amp.py

What it shows: the raw-amount inputs exceed FP16's max (65504) already: with FP16 storage they
and layer 1's output become Inf, every gradient NaN, and the scaler backs off at every step
until the scale collapses (the FP32 run, sample.fpst, predicts exactly this: "fp16 would
overflow gemm#0.D"). With --normalize (the amounts divided by 1e4) the same FP16 run trains: the
scaler grows and backs off as GradScaler does, and the master-weight check of fc1.weight shows
how much of each update a BF16 or FP16 copy of the weights would drop.
Prints one line per step: loss, loss scale, skipped or applied.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "probe", "python"))
import fpscope  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import build_model, make_data  # noqa: E402


class Fp16Storage(torch.autograd.Function):
    """Rounds a tensor, and its gradient, through FP16 (what FP16 storage does to them)."""

    @staticmethod
    def forward(ctx, x):
        return x.half().float()

    @staticmethod
    def backward(ctx, g):
        return g.half().float()


class LossScaler:
    """torch.cuda.amp.GradScaler's update rule, on the CPU."""

    def __init__(self, init=2.0 ** 24, growth=2.0, backoff=0.5, interval=10):
        self.scale, self.growth, self.backoff, self.interval = init, growth, backoff, interval
        self.good = 0

    def update(self, found_inf):
        if found_inf:
            self.scale *= self.backoff
            self.good = 0
        else:
            self.good += 1
            if self.good == self.interval:
                self.scale *= self.growth
                self.good = 0


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--normalize", action="store_true",
                    help="scale the raw amount columns down by 1e4 (the fix)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    features, classes = 64, 10
    x_all, y_all = make_data(args.steps * args.batch, features, classes, gen)
    if args.normalize:
        x_all[:, :8] /= 1.0e4

    model = build_model(features, args.width, classes)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    scaler = LossScaler()
    fpscope.watch("fc1.weight", linears[0].weight.data)

    def forward(x):
        h = x
        for i, layer in enumerate(model):
            if isinstance(layer, nn.Linear):
                with fpscope.scope("fc%d" % (linears.index(layer) + 1)):
                    h = layer(h)
            else:
                h = layer(h)
            h = Fp16Storage.apply(h)
        return h

    t0 = time.perf_counter()
    for step in range(args.steps):
        xb = x_all[step * args.batch:(step + 1) * args.batch]
        yb = y_all[step * args.batch:(step + 1) * args.batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(forward(Fp16Storage.apply(xb)), yb)
        (loss * scaler.scale).backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        found_inf = any(not torch.isfinite(g).all() for g in grads)
        fpscope.loss_scale(scaler.scale, found_inf)
        if not found_inf:
            for g in grads:
                g.div_(scaler.scale)
            opt.step()
        print(f"step {step} loss {loss.item()!r} scale {scaler.scale:g} "
              f"{'skipped' if found_inf else 'applied'}", flush=True)
        scaler.update(found_inf)
        fpscope.step()
    print(f"train seconds {time.perf_counter() - t0:.4f}")


if __name__ == "__main__":
    main()
