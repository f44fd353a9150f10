"""nn.MultiheadAttention as cross-attention (queries from one sequence, keys/values from another)
under a small classifier, trained with SGD. Ordinary torch.nn code: no fpscope import."""
import torch
import torch.nn as nn

torch.manual_seed(1)
torch.set_num_threads(1)
D, HEADS, STEPS = 16, 4, 8


class CrossAttend(nn.Module):
    def __init__(self):
        super().__init__()
        self.query = nn.Linear(8, D)
        self.attn = nn.MultiheadAttention(D, HEADS, batch_first=True)
        self.norm = nn.LayerNorm(D)
        self.head = nn.Linear(D, 3)

    def forward(self, q, memory):
        x = self.query(q)
        a, _ = self.attn(x, memory, memory)
        return self.head(self.norm(x + a)).mean(dim=1)


model = CrossAttend()
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
q, memory = torch.randn(4, 5, 8), torch.randn(4, 7, D)
target = torch.randint(0, 3, (4,))
for step in range(STEPS):
    loss = nn.functional.cross_entropy(model(q, memory), target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
