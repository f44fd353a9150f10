"""A plain MLP (nn.Sequential) trained with SGD and momentum. Ordinary torch.nn code: no fpscope
import. Prints its module paths, its parameters ("param <name> <numel> <dtype>") and the loss of
each step."""
import torch
import torch.nn as nn

torch.manual_seed(1)
torch.set_num_threads(1)
STEPS = 12

model = nn.Sequential(nn.Linear(24, 64), nn.ReLU(), nn.Linear(64, 48), nn.Tanh(), nn.Linear(48, 4))
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
for name, p in model.named_parameters():
    print("param", name, p.numel(), str(p.dtype).replace("torch.", ""))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
x = torch.randn(32, 24)
y = torch.randint(0, 4, (32,))
loss_fn = nn.CrossEntropyLoss()
for step in range(STEPS):
    loss = loss_fn(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
