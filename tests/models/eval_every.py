"""Training with an evaluation pass (model.eval(), torch.no_grad()) after every 3rd optimizer
step, the last one after the last step. Ordinary torch.nn code: no fpscope import."""
import torch
import torch.nn as nn

torch.manual_seed(7)
torch.set_num_threads(1)
STEPS, EVERY = 9, 3

model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.1), nn.ReLU(), nn.Linear(16, 1))
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
x, y = torch.randn(16, 8), torch.randn(16, 1)
xv, yv = torch.randn(6, 8), torch.randn(6, 1)
for step in range(STEPS):
    loss = nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
    if (step + 1) % EVERY == 0:
        model.eval()
        with torch.no_grad():
            print("eval", step, repr(nn.functional.mse_loss(model(xv), yv).item()))
        model.train()
print("optimizer_steps", STEPS)
