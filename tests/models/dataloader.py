"""Training from a torch.utils.data.DataLoader with 2 worker processes (forked), one epoch of
batches. Ordinary torch.nn code: no fpscope import."""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

torch.manual_seed(10)
torch.set_num_threads(1)


class Pairs(Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(11)
        self.x = torch.randn(48, 6, generator=g)
        self.y = (self.x.sum(dim=1, keepdim=True) > 0).float()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def main():
    model = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 1))
    for name, _ in model.named_modules():
        print("module", name or type(model).__name__)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    loader = DataLoader(Pairs(), batch_size=8, shuffle=False, num_workers=2)
    steps = 0
    for xb, yb in loader:
        loss = nn.functional.binary_cross_entropy_with_logits(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print("loss", steps, repr(loss.item()))
        steps += 1
    print("optimizer_steps", steps)


if __name__ == "__main__":
    main()
