"""A profiler next to the probe (issue 16 item 7): torch.profiler (Kineto, CUPTI) records CUDA
kernels of a small AMP training loop while fpscope records the same run.

  python3 profiler_check.py [--profile-first]

Default: the probe subscribes to CUPTI at the first cuBLAS call and the profiler starts later.
--profile-first: the profiler starts before any cuBLAS call, so it holds CUPTI first.
Prints `profiler_kernels N gemm_kernels M fpscope_kernels K` (CUDA events the profiler saw: the
program's, its GEMMs, the probe's own) and every step's
loss bits. tests/gpu/run.sh compares both with a run without the probe: the profiler must see the
same kernels, the program must print the same bits.
"""
import argparse

import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--profile-first", action="store_true")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--names", action="store_true", help="print each kernel name and count")
    a = p.parse_args()
    torch.manual_seed(0)
    dev = "cuda"
    model = nn.Sequential(nn.Linear(256, 512), nn.GELU(), nn.Linear(512, 256)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    scaler = torch.cuda.amp.GradScaler()
    x = torch.randn(64, 256, device=dev)
    losses = []

    def step():
        with torch.autocast("cuda", dtype=torch.float16):
            loss = model(x).float().square().mean()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.detach())

    acts = [ProfilerActivity.CPU, ProfilerActivity.CUDA]
    if a.profile_first:
        with profile(activities=acts) as prof:
            for _ in range(a.steps):
                step()
            torch.cuda.synchronize()
    else:
        step()  # the first cuBLAS call: the probe takes CUPTI here
        torch.cuda.synchronize()
        with profile(activities=acts) as prof:
            for _ in range(a.steps - 1):
                step()
            torch.cuda.synchronize()
    # Kernels only: copies and memsets are not told apart by owner (the probe makes its own).
    on_device = [e for e in prof.events() if str(e.device_type).endswith("CUDA")
                 and not e.name.startswith(("Memcpy", "Memset"))]
    ours = [e for e in on_device if "fpscope" in e.name]  # the probe's own statistics kernels
    kernels = [e for e in on_device if "fpscope" not in e.name]
    gemm = [e for e in kernels if "gemm" in e.name.lower() or "sm90" in e.name.lower()
            or "cutlass" in e.name.lower()]
    print(f"profiler_kernels {len(kernels)} gemm_kernels {len(gemm)} fpscope_kernels {len(ours)}")
    if a.names:
        from collections import Counter
        for name, n in sorted(Counter(e.name for e in kernels).items()):
            print(f"kernel {n} {name[:150]}")
    for i, l in enumerate(losses):
        print(f"loss {i} {float(l).hex()}")


if __name__ == "__main__":
    main()
