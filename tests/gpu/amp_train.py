"""PyTorch AMP (FP16, GradScaler) training run for the GPU acceptance test (tests/gpu/run.sh).

Writes what the trace must show to --expect JSON: per step the scale in effect (scaler.get_scale()
before update()) and the scale after it, whether the step found Inf/NaN, and the amax of each
Linear's forward output computed by torch. Step --plant makes the loss huge so that the FP16
gradients overflow there.

The forward GEMMs are named so that the check never has to guess by shape (the backward GEMM of
dL/dh has the forward fc1 output's shape): fc1 by an NVTX range (torch.cuda.nvtx, which the probe
sees through NVTX_INJECTION64_PATH), fc2 by fpscope.scope (probe/python/fpscope.py). No NVTX
range here is named like a step: the steps come from the loss-scale kernel, so trace step s is
iteration s.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "probe",
                                "python"))
import fpscope  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=40)
p.add_argument("--plant", type=int, default=20)
p.add_argument("--expect", required=True)
a = p.parse_args()

torch.manual_seed(0)
dev = "cuda"
model = torch.nn.Sequential(torch.nn.Linear(512, 1024), torch.nn.ReLU(),
                            torch.nn.Linear(1024, 256)).to(dev)
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
scaler = torch.cuda.amp.GradScaler(init_scale=2.0**16, growth_interval=5)
x = torch.randn(128, 512, device=dev)
y = torch.randn(128, 256, device=dev)
amax_fc1, amax_fc2 = [], []
steps = []
t0 = time.time()
for s in range(a.steps):
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.float16):
        torch.cuda.nvtx.range_push("fc1")
        h = model[0](x)
        torch.cuda.nvtx.range_pop()
        with fpscope.scope("fc2"):
            out = model[2](model[1](h))
        loss = torch.nn.functional.mse_loss(out.float(), y)
        if s == a.plant:
            loss = loss * 1e30
    amax_fc1.append(float(h.detach().float().abs().max()))
    amax_fc2.append(float(out.detach().float().abs().max()))
    scale_before = scaler.get_scale()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    scale_after = scaler.get_scale()
    steps.append({"step": s, "scale": scale_before, "next_scale": scale_after,
                  "found_inf": scale_after < scale_before})
torch.cuda.synchronize()
print(f"amp_train: {a.steps} steps in {time.time() - t0:.3f} s")
with open(a.expect, "w") as f:
    # Column-major views as the probe stores them: h is [128, 1024] row-major -> 1024 x 128.
    json.dump({"steps": steps,
               "gemms_per_step": 5,  # fc1, fc2 forward; fc2 dX and dW; fc1 dW (x needs no grad)
               "named": {"fc1": {"amax": amax_fc1, "shape": [1024, 128]},
                         "fc2": {"amax": amax_fc2, "shape": [256, 128]}}}, f)
