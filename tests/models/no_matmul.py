"""A bag-of-embeddings classifier with no matrix multiply at all: nn.EmbeddingBag (sum) feeds the
loss directly; SGD. Ordinary torch.nn code: no fpscope import. Prints its module paths and the
loss of each step."""
import torch
import torch.nn as nn

torch.manual_seed(4)
torch.set_num_threads(1)
STEPS = 5

model = nn.EmbeddingBag(50, 3, mode="sum")
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
tokens, offsets = torch.randint(0, 50, (24,)), torch.arange(0, 24, 4)
y = torch.randint(0, 3, (6,))
for step in range(STEPS):
    loss = nn.functional.cross_entropy(model(tokens, offsets), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
