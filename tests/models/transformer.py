"""A tiny causal language model: nn.TransformerEncoder (batch_first, causal mask) and AdamW.
Ordinary torch.nn code: no fpscope import. Prints its module paths, its parameters and the loss of
each step."""
import torch
import torch.nn as nn

torch.manual_seed(0)
torch.set_num_threads(1)
VOCAB, D, HEADS, LAYERS, SEQ, BATCH, STEPS = 32, 16, 2, 2, 8, 4, 20


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        layer = nn.TransformerEncoderLayer(D, HEADS, dim_feedforward=32, dropout=0.1,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS)
        self.out = nn.Linear(D, VOCAB)

    def forward(self, tokens):
        n = tokens.shape[1]
        mask = torch.triu(torch.full((n, n), float("-inf")), diagonal=1)
        return self.out(self.encoder(self.embed(tokens), mask=mask))


model = TinyLM()
for name, _ in model.named_modules():
    print("module", name or type(model).__name__)
for name, p in model.named_parameters():
    print("param", name, p.numel(), str(p.dtype).replace("torch.", ""))
opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
loss_fn = nn.CrossEntropyLoss()
data = torch.randint(0, VOCAB, (BATCH, SEQ + 1))
for step in range(STEPS):
    logits = model(data[:, :-1])
    loss = loss_fn(logits.reshape(-1, VOCAB), data[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    print("loss", step, repr(loss.item()))
print("optimizer_steps", STEPS)
