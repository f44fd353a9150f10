"""A small torch.nn training run for the cross-run comparison test (test_compare.py).

  compare_program.py PREFIX [--steps N]

Trains a 3-layer MLP (nn.Linear, nn.Tanh, SGD, fixed seed, one thread) and saves the output of
layer `fc1` at every step (its forward GEMM's D: addmm's result) and the losses to
PREFIX-<FPSCOPE_EMULATE or off>.npz, so that the test can compute the exact relative difference
between two runs' tensors and hold the probe's sketch estimate against it (`fpscope compare`
runs the program once per setting with the same arguments). Prints each step's loss.
"""
import argparse
import os
from collections import OrderedDict

import numpy as np
import torch
from torch import nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix")
    ap.add_argument("--steps", type=int, default=6)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(OrderedDict(fc1=nn.Linear(64, 256), act=nn.Tanh(),
                                      fc2=nn.Linear(256, 256), act2=nn.Tanh(),
                                      out=nn.Linear(256, 10)))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x = torch.randn(128, 64)
    y = torch.randint(0, 10, (128,))
    outs, losses = [], []
    model.fc1.register_forward_hook(lambda m, i, o: outs.append(o.detach().clone().numpy()))
    for step in range(a.steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        print(f"step {step} loss {loss.item():.9g}", flush=True)
    tag = os.environ.get("FPSCOPE_EMULATE", "off").replace(":", "_")
    np.savez(f"{a.prefix}-{tag}.npz", fc1=np.stack(outs), loss=np.array(losses))


if __name__ == "__main__":
    main()
