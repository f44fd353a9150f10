"""A 2-layer nn.LSTM followed by an nn.GRU and a linear head (sequence regression), Adam.
Ordinary torch.nn code: no fpscope import."""
import torch
import torch.nn as nn

torch.manual_seed(2)
torch.set_num_threads(1)
STEPS = 10


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 12, num_layers=2, batch_first=True)
        self.gru = nn.GRU(12, 8, batch_first=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        h, _ = self.lstm(x)
        h, _ = self.gru(h)
        return self.head(h[:, -1])


model = Recurrent()
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
x, y = torch.randn(3, 9, 6), torch.randn(3, 1)
for step in range(STEPS):
    loss = nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
