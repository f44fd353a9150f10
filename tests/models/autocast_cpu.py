"""A tiny language model trained under CPU autocast to bfloat16 (torch.autocast("cpu")), as a
user would write it: nn.TransformerEncoder and AdamW. With --fp32-head the output layer runs
outside autocast, in FP32 (a common way to keep the logits precise). Ordinary torch.nn code: no
fpscope import. Prints its module paths, its parameters and the loss of each step.
PyTorch runs the matmuls autocast casts to bfloat16 in oneDNN (mkldnn), not in the BLAS."""
import sys

import torch
import torch.nn as nn

torch.manual_seed(0)
torch.set_num_threads(1)
VOCAB, D, HEADS, LAYERS, SEQ, BATCH, STEPS = 32, 16, 2, 2, 8, 4, 6
FP32_HEAD = "--fp32-head" in sys.argv[1:]


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        layer = nn.TransformerEncoderLayer(D, HEADS, dim_feedforward=32, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS)
        self.head = nn.Linear(D, VOCAB)

    def forward(self, tokens):
        h = self.encoder(self.embed(tokens))
        if FP32_HEAD:
            with torch.autocast("cpu", enabled=False):
                return self.head(h.float())
        return self.head(h)


model = TinyLM()
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
for name, p in model.named_parameters():
    print("param", name, p.numel(), str(p.dtype).replace("torch.", ""))
opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
loss_fn = nn.CrossEntropyLoss()
data = torch.randint(0, VOCAB, (BATCH, SEQ + 1))
for step in range(STEPS):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(data[:, :-1])
        loss = loss_fn(logits.float().reshape(-1, VOCAB), data[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
