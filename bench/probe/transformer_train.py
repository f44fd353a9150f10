#!/usr/bin/python3
"""A small causal language model built from torch.nn's own modules (Embedding,
TransformerEncoder with a causal mask, batch_first, Linear head) trained with AdamW: the workload
of the probe's real-program overhead benchmark (bench_probe.py --model transformer). Ordinary
torch code, no fpscope import. --quiet prints only `train seconds S` (the training loop's wall
time, the first step excluded as warm-up) and `train cpu seconds S` (the process's CPU time over
the same loop, every thread: less sensitive than wall time to other processes on a shared
machine); with 20+ steps also `steady seconds S` and `steady cpu seconds S` over steps 10.. (the
first steps' one-time costs behind, every 10th step once per 10)."""
import argparse
import time

import torch
import torch.nn as nn

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=30)
ap.add_argument("--d-model", type=int, default=256)
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--heads", type=int, default=4)
ap.add_argument("--seq", type=int, default=128)
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--vocab", type=int, default=1000)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--quiet", action="store_true")
args = ap.parse_args()
torch.manual_seed(0)
torch.set_num_threads(args.threads)


class CausalLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(args.vocab, args.d_model)
        layer = nn.TransformerEncoderLayer(args.d_model, args.heads, 4 * args.d_model, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, args.layers)
        self.out = nn.Linear(args.d_model, args.vocab)

    def forward(self, tokens):
        n = tokens.shape[1]
        mask = torch.triu(torch.full((n, n), float("-inf")), diagonal=1)
        return self.out(self.encoder(self.embed(tokens), mask=mask))


model = CausalLM()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
data = torch.randint(0, args.vocab, (args.batch, args.seq + 1))
t0 = c0 = tw = cw = None
for step in range(args.steps):
    if step == 1:
        t0, c0 = time.perf_counter(), time.process_time()
    if step == 10:  # steps 10..: the steady state (one-time costs behind; every 10th step once per 10)
        tw, cw = time.perf_counter(), time.process_time()
    logits = model(data[:, :-1])
    loss = loss_fn(logits.reshape(-1, args.vocab), data[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if not args.quiet:
        print("loss", step, repr(loss.item()))
t1, c1 = time.perf_counter(), time.process_time()
print("train seconds %.6f" % (t1 - t0))
print("train cpu seconds %.6f" % (c1 - c0))
if tw is not None and args.steps >= 20:
    print("steady seconds %.6f steps 10..%d" % (t1 - tw, args.steps))
    print("steady cpu seconds %.6f" % (c1 - cw))
