"""Training that takes its gradients with torch.autograd.grad instead of backward() (as
meta-learning and custom training loops do), then steps an optimizer. Ordinary torch.nn code: no
fpscope import. Prints the loss of each step (never passed to backward())."""
import torch
import torch.nn as nn

torch.manual_seed(11)
torch.set_num_threads(1)
STEPS = 9

model = nn.Sequential(nn.Linear(12, 24), nn.Tanh(), nn.Linear(24, 3))
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
x, y = torch.randn(STEPS, 8, 12), torch.randn(STEPS, 8, 3)
for step in range(STEPS):
    loss = nn.functional.mse_loss(model(x[step]), y[step])
    grads = torch.autograd.grad(loss, list(model.parameters()))
    for p, g in zip(model.parameters(), grads):
        p.grad = g
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
