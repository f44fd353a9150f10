"""Mixed-precision training on a CUDA device: autocast (FP16), GradScaler, a Transformer encoder
layer and AdamW. Ordinary torch code: no fpscope import, no synchronization beyond the program's
own (loss.item() for the print). Exits 77 without a CUDA device."""
import sys

import torch
import torch.nn as nn

if not torch.cuda.is_available():
    print("no CUDA device")
    sys.exit(77)
torch.manual_seed(0)
dev = torch.device("cuda")
STEPS = 12


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(16, 64)
        self.layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, batch_first=True)
        self.out = nn.Linear(64, 4)

    def forward(self, x):
        return self.out(self.layer(self.inp(x))).mean(dim=1)


model = Model().to(dev)
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
scaler = torch.cuda.amp.GradScaler(init_scale=2.0 ** 10)
x = torch.randn(8, 12, 16, device=dev)
y = torch.randint(0, 4, (8,), device=dev)
losses = []
for step in range(STEPS):
    with torch.autocast("cuda", dtype=torch.float16):
        loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    losses.append(loss.detach())
for step, v in enumerate(losses):  # read after training: no synchronization inside the loop
    print("loss", step, repr(v.item()))
print("optimizer_steps", STEPS)
