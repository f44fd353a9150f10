"""An FP16 master copy: an MLP whose weights are stored in FP16 (cast with .half()) and computed
in FP32 (each layer casts its weight up), trained by plain SGD: the optimizer updates the FP16
weights directly, so every update below half an FP16 ulp rounds away. Ordinary torch.nn code (no
fpscope import; CPU matmuls in FP32: torch 1.13 has no FP16 addmm on CPU). Prints its module
paths, its parameters, the loss of each step and how many elements of each parameter the step
left unchanged."""
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(4)
torch.set_num_threads(1)
STEPS = 8


class HalfStoredLinear(nn.Linear):
    """nn.Linear whose parameters may be stored in FP16: the product runs in FP32."""

    def forward(self, x):
        return F.linear(x, self.weight.float(), self.bias.float())


model = nn.Sequential(HalfStoredLinear(16, 64), nn.ReLU(), HalfStoredLinear(64, 4)).half()
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
for name, p in model.named_parameters():
    print("param", name, p.numel(), str(p.dtype).replace("torch.", ""))
opt = torch.optim.SGD(model.parameters(), lr=2e-3)  # no momentum: no optimizer state
x = torch.randn(64, 16)
y = torch.randint(0, 4, (64,))
loss_fn = nn.CrossEntropyLoss()
for step in range(STEPS):
    loss = loss_fn(model(x), y)
    opt.zero_grad()
    loss.backward()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    opt.step()
    print("loss", step, repr(loss.item()))
    for name, p in model.named_parameters():  # elements this step left unchanged, counted here
        print("unchanged", step, name, int((p.detach() == before[name]).sum()))
print("optimizer_steps", STEPS)
