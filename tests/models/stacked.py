"""N identical residual blocks in an nn.ModuleList (same shapes everywhere: names must tell them
apart, not shapes); RMSprop. Ordinary torch.nn code: no fpscope import."""
import torch
import torch.nn as nn

torch.manual_seed(5)
torch.set_num_threads(1)
N, D, STEPS = 4, 16, 8


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(D)
        self.fc = nn.Linear(D, D)

    def forward(self, x):
        return x + torch.tanh(self.fc(self.norm(x)))


class Deep(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(Block() for _ in range(N))
        self.out = nn.Linear(D, 1)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.out(x)


model = Deep()
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
x, y = torch.randn(5, D), torch.randn(5, 1)
for step in range(STEPS):
    loss = nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
