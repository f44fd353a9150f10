#!/usr/bin/python3
"""A tiny DistributedDataParallel training on the CPU (gloo), the proof program of issue 20.

Each rank trains a small MLP on its own shard of synthetic data; DDP all-reduces the gradients,
so every replica holds identical weights after every optimizer step. Started by launch.py (which
sets MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK), usually under
`fpscope record -o 'DIR/run-%r.fpst'`. No fpscope import: the PyTorch integration names the GEMMs
by module path and marks one step per optimizer step.

Planted faults, both applied at the start of step --fault-step (before its forward), so that the
first step a trace shows them in is exactly --fault-step:
  --plant-scale-rank R  rank R multiplies its input batch by --scale (default 1e6) from then on:
                        its first layer's input and output leave FP16's range on that rank only
                        (until the all-reduced gradients spread the damage to every replica);
  --perturb-rank R      rank R adds a small perturbation to its first layer's weight once: the
                        replicas are out of sync from then on (DDP never re-broadcasts weights).
Prints one line per step: rank, step, loss (repr).
"""
import argparse
import os

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP


def parse_args(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--fault-step", type=int, default=3)
    ap.add_argument("--plant-scale-rank", type=int, default=-1)
    ap.add_argument("--scale", type=float, default=1.0e6)
    ap.add_argument("--perturb-rank", type=int, default=-1)
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)  # the same initial weights everywhere (DDP broadcasts rank 0's anyway)
    model = nn.Sequential(nn.Linear(args.features, args.width), nn.ReLU(),
                          nn.Linear(args.width, args.width), nn.ReLU(), nn.Linear(args.width, 4))
    ddp = DDP(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1000 + rank)  # this rank's shard
    loss_fn = nn.CrossEntropyLoss()
    for step in range(args.steps):
        x = torch.randn(args.batch, args.features, generator=gen)
        y = torch.randint(0, 4, (args.batch,), generator=gen)
        if step >= args.fault_step and rank == args.plant_scale_rank:
            x = x * args.scale
        if step == args.fault_step and rank == args.perturb_rank:
            with torch.no_grad():
                model[0].weight.add_(1.0e-2 * torch.randn(model[0].weight.shape, generator=gen))
        opt.zero_grad()
        loss = loss_fn(ddp(x), y)
        loss.backward()
        opt.step()
        print(f"rank {rank} step {step} loss {loss.item()!r}", flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
