"""PyTorch AMP (FP16, GradScaler) training run for the GPU acceptance test (tests/gpu/run.sh).

Writes what the trace must show to --expect JSON: per step the scale in effect (scaler.get_scale()
before update()), whether the step found Inf/NaN, and the amax of the first Linear's output computed
by torch. Step --plant makes the loss huge so that the FP16 gradients overflow there.
"""
import argparse
import json
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=40)
p.add_argument("--plant", type=int, default=20)
p.add_argument("--expect", required=True)
a = p.parse_args()

torch.manual_seed(0)
dev = "cuda"
model = torch.nn.Sequential(torch.nn.Linear(512, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 256)).to(dev)
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
scaler = torch.cuda.amp.GradScaler(init_scale=2.0**16, growth_interval=5)
x = torch.randn(128, 512, device=dev)
y = torch.randn(128, 256, device=dev)
amax_first = []
steps = []
t0 = time.time()
for s in range(a.steps):
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.float16):
        h = model[0](x)
        out = model[2](model[1](h))
        loss = torch.nn.functional.mse_loss(out.float(), y)
        if s == a.plant:
            loss = loss * 1e30
    amax_first.append(float(h.detach().float().abs().max()))
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
    json.dump({"steps": steps, "amax_first_linear": amax_first,
               "first_linear_shape": [1024, 128]}, f)
