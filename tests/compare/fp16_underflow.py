"""A torch.nn run whose gradients are small enough to underflow FP16 without loss scaling
(test_compare.py: the FP16 comparison must name a gradient as the first divergence, with FP16
underflow as its evidence; issue 18 item 5).

  fp16_underflow.py [--steps N]

The loss is down-weighted by 1e-5 (an auxiliary loss term, or a mean over a huge batch, does the
same), and SGD's learning rate scaled up to match, so FP32 learns normally while the output
gradients sit around 1e-8..1e-6: below FP16's smallest normal (6.1e-5), many below its smallest
subnormal (6e-8). Prints each step's loss.
"""
import argparse
from collections import OrderedDict

import torch
from torch import nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(OrderedDict(fc1=nn.Linear(64, 256), act=nn.Tanh(),
                                      fc2=nn.Linear(256, 256), act2=nn.Tanh(),
                                      out=nn.Linear(256, 10)))
    opt = torch.optim.SGD(model.parameters(), lr=0.5e5)
    x = torch.randn(256, 64)
    y = torch.randint(0, 10, (256,))
    for step in range(a.steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        (loss * 1e-5).backward()
        opt.step()
        print(f"step {step} loss {loss.item():.9g}", flush=True)


if __name__ == "__main__":
    main()
