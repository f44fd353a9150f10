"""A GPT-2-small-shaped decoder (12 layers, d=768, 12 heads, FFN 3072, vocab 50257, tied LM head)
trained with BF16 autocast and AdamW on random tokens, for the probe's overhead on a GPU
(tests/gpu/run.sh, docs/benchmarks/gpu.md). Built from torch.nn's own modules only.

  python3 gpt_small.py [--steps N] [--warmup W] [--batch B] [--seq S] [--per-step FILE]
                       [--profile N]

--per-step FILE writes each timed step's GPU time (CUDA events around the step) and host time
(until the step's last launch returned), to see what a sampled step costs against an unsampled
one. --profile N runs torch.profiler over N timed steps and prints its table of CUDA time by
kernel (run it under FPSCOPE_CUPTI=0: CUPTI has one subscriber).

Prints one line `gpt_small: steps N ms_per_step X loss_last Y` (the timed steps only, between
two device synchronizations) and the loss of every step for bit-identity checks.
"""
import argparse
import time

import torch
import torch.nn as nn


class Gpt(nn.Module):
    def __init__(self, vocab=50257, d=768, heads=12, layers=12, ff=3072, seq=1024):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(seq, d)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight
        for e in (self.tok, self.pos):  # GPT-2's initialization: logits start near uniform
            nn.init.normal_(e.weight, std=0.02)

    def forward(self, x):
        s = x.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(s, device=x.device)
        h = self.tok(x) + self.pos(torch.arange(s, device=x.device))
        h = self.blocks(h, mask=mask, is_causal=True)
        return self.head(self.norm(h))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--per-step", default=None)
    p.add_argument("--profile", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(0)
    dev = "cuda"
    model = Gpt(seq=a.seq).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    g = torch.Generator(device=dev).manual_seed(1)
    data = torch.randint(0, 50257, (4, a.batch, a.seq + 1), device=dev, generator=g)
    losses = []

    def step(i):
        batch = data[i % data.shape[0]]
        x, y = batch[:, :-1], batch[:, 1:]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x)
            loss = nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]),
                                               y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for i in range(a.warmup):
        losses.append(step(i))
    torch.cuda.synchronize()
    events = [torch.cuda.Event(enable_timing=True) for _ in range(a.steps + 1)]
    host_ms = []
    t0 = time.perf_counter()
    events[0].record()
    for i in range(a.warmup, a.warmup + a.steps):
        h0 = time.perf_counter()
        losses.append(step(i))
        host_ms.append((time.perf_counter() - h0) * 1000.0)
        events[i - a.warmup + 1].record()
    torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) * 1000.0 / a.steps
    if a.per_step:
        with open(a.per_step, "w") as f:
            for k in range(a.steps):
                f.write(f"{a.warmup + k} {events[k].elapsed_time(events[k + 1]):.3f} "
                        f"{host_ms[k]:.3f}\n")
    if a.profile > 0:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for i in range(a.profile):
                step(a.warmup + a.steps + i)
            torch.cuda.synchronize()
        for key in ("device_time_total", "cuda_time_total"):  # the name changed in torch 2.4
            try:
                print(prof.key_averages().table(sort_by=key, row_limit=30,
                                                max_name_column_width=70))
                break
            except Exception:  # noqa: BLE001 - an unknown sort key in this torch
                continue
    vals = [float(l.detach()) for l in losses]
    print(f"gpt_small: steps {a.steps} ms_per_step {ms:.3f} loss_last {vals[-1]:.6f}")
    for i, v in enumerate(vals):
        print(f"loss {i} {v.hex()}")


if __name__ == "__main__":
    main()
