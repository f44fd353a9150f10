"""A tiny one-block transformer trained with torch on the CPU, unmodified (no fpscope): every
iteration begins with three GEMMs of the same shape (separate q, k, v projections), then the
attention products, the output projection, an MLP and the classifier head, then backward.
Prints "step S loss L" per iteration. Usage: torch_qkv.py STEPS"""
import math
import sys

import torch
import torch.nn as nn

B, T, D, H, CLASSES = 4, 12, 24, 48, 5


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(D, D)
        self.k = nn.Linear(D, D)
        self.v = nn.Linear(D, D)
        self.o = nn.Linear(D, D)
        self.ff1 = nn.Linear(D, H)
        self.ff2 = nn.Linear(H, D)
        self.head = nn.Linear(D, CLASSES)

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(D), dim=-1)
        x = x + self.o(att @ v)
        x = x + self.ff2(torch.relu(self.ff1(x)))
        return self.head(x.mean(dim=1))


def main():
    steps = int(sys.argv[1])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Block()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(3)
    for s in range(steps):
        x = torch.randn(B, T, D, generator=gen)
        y = torch.randint(0, CLASSES, (B,), generator=gen)
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        print("step %d loss %r" % (s, loss.item()), flush=True)


if __name__ == "__main__":
    main()
