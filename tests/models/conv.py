"""A small CNN: nn.Conv2d, max and average pooling, a linear classifier; SGD.
Ordinary torch.nn code: no fpscope import."""
import torch
import torch.nn as nn

torch.manual_seed(3)
torch.set_num_threads(1)
STEPS = 8

model = nn.Sequential(
    nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
    nn.Flatten(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
x, y = torch.randn(6, 1, 12, 12), torch.randint(0, 10, (6,))
for step in range(STEPS):
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
