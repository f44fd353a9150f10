"""The precision allocation trap: an MLP whose weights are cast to BF16 before training, so the
optimizer updates BF16 weights directly (no FP32 master copy). Ordinary torch.nn code: no fpscope
import. Prints its module paths, its parameters and the loss of each step."""
import torch
import torch.nn as nn

torch.manual_seed(2)
torch.set_num_threads(1)
STEPS = 10

model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).to(torch.bfloat16)
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
for name, p in model.named_parameters():
    print("param", name, p.numel(), str(p.dtype).replace("torch.", ""))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = torch.randn(64, 16, dtype=torch.bfloat16)
y = torch.randint(0, 4, (64,))
loss_fn = nn.CrossEntropyLoss()
for step in range(STEPS):
    loss = loss_fn(model(x).float(), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
