"""A small torch CPU training loop (autograd MLP, SGD) for the probe's end-to-end tests.
Unmodified unless --api is given. Prints, on stdout:
  "gemms_per_step G"      GEMMs of one iteration: L forward addmm + L weight-gradient mm +
                          (L-1) input-gradient mm (the input needs no gradient)
  "step S batch B loss L" after each iteration (repr of the loss: every digit), flushed
Options:
  --steps N        iterations (0: until killed)
  --layers L, --width W, --batch B
  --dynamic        a different batch size every iteration (seeded, never twice in a row)
  --api DIR        import fpscope from DIR and call fpscope.step() after each iteration
  --pid            print "pid P" first (for the kill test)
  --pause S        sleep S seconds after each iteration (a slow data loader)
  --exit CODE      sys.exit(CODE) at the end"""
import argparse
import os
import random
import sys
import time

import torch
import torch.nn as nn

FEATURES, CLASSES = 12, 6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--dynamic", action="store_true")
    ap.add_argument("--api", default=None)
    ap.add_argument("--pid", action="store_true")
    ap.add_argument("--exit", type=int, default=0)
    ap.add_argument("--pause", type=float, default=0.0)
    a = ap.parse_args()
    fp = None
    if a.api:
        sys.path.insert(0, a.api)
        import fpscope as fp
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if a.pid:
        print("pid %d" % os.getpid(), flush=True)
    dims = [FEATURES] + [a.width] * (a.layers - 1) + [CLASSES]
    mods = []
    for i in range(a.layers):
        mods.append(nn.Linear(dims[i], dims[i + 1]))
        if i + 1 < a.layers:
            mods.append(nn.Tanh())
    model = nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(7)
    rnd = random.Random(11)
    print("gemms_per_step %d" % (3 * a.layers - 1), flush=True)
    step, batch = 0, a.batch
    while a.steps == 0 or step < a.steps:
        if a.dynamic:
            nb = batch
            while nb == batch:
                nb = rnd.randint(17, 29)
            batch = nb
        x = torch.randn(batch, FEATURES, generator=gen)
        y = torch.randint(0, CLASSES, (batch,), generator=gen)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if fp is not None:
            fp.step()
        print("step %d batch %d loss %r" % (step, batch, loss.item()), flush=True)
        step += 1
        if a.pause:
            time.sleep(a.pause)
    sys.exit(a.exit)


if __name__ == "__main__":
    main()
