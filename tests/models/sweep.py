"""A small sweep: three models trained one after the other in one process, each with its own
optimizer, each deleted before the next. Ordinary torch.nn code: no fpscope import. Prints each
model's parameters, the loss of each step and whether the deleted model's weights were freed."""
import gc
import weakref

import torch
import torch.nn as nn

torch.manual_seed(3)
torch.set_num_threads(1)
STEPS = 4

step = 0
for trial, lr in enumerate((0.1, 0.03, 0.01)):
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    for name, p in model.named_parameters():
        print("param", name, p.numel(), str(p.dtype).replace("torch.", ""))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    x, y = torch.randn(16, 8), torch.randint(0, 2, (16,))
    for _ in range(STEPS):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print("loss", step, repr(loss.item()))
        step += 1
    ref = weakref.ref(model[0].weight)
    del model, opt, loss
    gc.collect()
    print("freed", trial, ref() is None)
print("optimizer_steps", step)
