"""Sequences whose length changes from step to step (a GRU encoder and a linear head), so that
no two consecutive steps issue the same GEMM shapes. Ordinary torch.nn code: no fpscope import."""
import torch
import torch.nn as nn

torch.manual_seed(8)
torch.set_num_threads(1)
STEPS = 8


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(5, 10)
        self.rnn = nn.GRU(10, 10, batch_first=True)
        self.tag = nn.Linear(10, 3)

    def forward(self, x):
        h, _ = self.rnn(torch.relu(self.proj(x)))
        return self.tag(h)


model = Tagger()
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for step in range(STEPS):
    length = 3 + (step * 5) % 7  # 3, 8, 6, 4, 9, 7, 5, 3
    x, y = torch.randn(2, length, 5), torch.randint(0, 3, (2, length))
    loss = nn.functional.cross_entropy(model(x).reshape(-1, 3), y.reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
