"""Gradient accumulation: 3 micro-batches (3 backward passes) per optimizer step, each loss
divided by 3 before backward(). Ordinary torch.nn code: no fpscope import. Prints the value each
backward() started from, under the optimizer step it belongs to."""
import torch
import torch.nn as nn

torch.manual_seed(6)
torch.set_num_threads(1)
ACCUM, STEPS = 3, 5

model = nn.Sequential(nn.Linear(10, 20), nn.GELU(), nn.Linear(20, 2))
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(ACCUM * STEPS, 4, 10), torch.randint(0, 2, (ACCUM * STEPS, 4))
for step in range(STEPS):
    for micro in range(ACCUM):
        i = step * ACCUM + micro
        loss = nn.functional.cross_entropy(model(x[i]), y[i]) / ACCUM
        loss.backward()
        print("loss", step, repr(loss.item()))
    opt.step()
    opt.zero_grad()
print("optimizer_steps", STEPS)
