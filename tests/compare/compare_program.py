"""A small torch.nn training run for the cross-run comparison test (test_compare.py).

  compare_program.py [PREFIX] [--steps N] [--batch B] [--loss-weight W]

Trains a 3-layer MLP (nn.Linear, nn.Tanh, SGD, fixed seed, one thread) and prints each step's
loss. With PREFIX, it also saves the output of layer `fc1` at every step (its forward GEMM's D:
addmm's result) and the losses to PREFIX-<FPSCOPE_EMULATE or off>.npz, so that the test can
compute the exact relative difference between two runs' tensors and hold the probe's sketch
estimate against it (`fpscope compare` runs the program once per setting with the same
arguments).

--loss-weight W backpropagates W * loss, with SGD's learning rate divided by W so that FP32
learns the same way: at W = 1e-5 (an auxiliary loss term, or a mean over a huge batch, does the
same) the output gradients sit around 1e-8..1e-6, below FP16's smallest normal (6.1e-5), many
below its smallest subnormal (6e-8): FP16 without loss scaling underflows.
"""
import argparse
import os
from collections import OrderedDict

import numpy as np
import torch
from torch import nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix", nargs="?")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--loss-weight", type=float, default=1.0)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(OrderedDict(fc1=nn.Linear(64, 256), act=nn.Tanh(),
                                      fc2=nn.Linear(256, 256), act2=nn.Tanh(),
                                      out=nn.Linear(256, 10)))
    opt = torch.optim.SGD(model.parameters(), lr=0.5 / a.loss_weight)
    x = torch.randn(a.batch, 64)
    y = torch.randint(0, 10, (a.batch,))
    outs, losses = [], []
    if a.prefix:
        model.fc1.register_forward_hook(lambda m, i, o: outs.append(o.detach().clone().numpy()))
    for step in range(a.steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        (loss * a.loss_weight if a.loss_weight != 1.0 else loss).backward()
        opt.step()
        losses.append(loss.item())
        print(f"step {step} loss {loss.item():.9g}", flush=True)
    if a.prefix:
        tag = os.environ.get("FPSCOPE_EMULATE", "off").replace(":", "_")
        np.savez(f"{a.prefix}-{tag}.npz", fc1=np.stack(outs), loss=np.array(losses))


if __name__ == "__main__":
    main()
