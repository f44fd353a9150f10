"""An MLP trained with torch.set_num_threads(2) (intra-op parallelism).
Ordinary torch.nn code: no fpscope import."""
import torch
import torch.nn as nn

torch.manual_seed(9)
torch.set_num_threads(2)
STEPS = 8

model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                      nn.Linear(64, 4))
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
x, y = torch.randn(64, 32), torch.randint(0, 4, (64,))
for step in range(STEPS):
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
