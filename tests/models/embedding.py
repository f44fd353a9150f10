"""A bag-of-embeddings text classifier: nn.Embedding, mean over tokens, two linear layers;
Adagrad. Ordinary torch.nn code: no fpscope import."""
import torch
import torch.nn as nn

torch.manual_seed(4)
torch.set_num_threads(1)
STEPS = 8


class BagClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(50, 12)
        self.hidden = nn.Linear(12, 24)
        self.classify = nn.Linear(24, 4)

    def forward(self, ids):
        return self.classify(torch.relu(self.hidden(self.tokens(ids).mean(dim=1))))


model = BagClassifier()
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
opt = torch.optim.Adagrad(model.parameters(), lr=0.1)
ids, y = torch.randint(0, 50, (8, 6)), torch.randint(0, 4, (8,))
for step in range(STEPS):
    loss = nn.functional.cross_entropy(model(ids), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
