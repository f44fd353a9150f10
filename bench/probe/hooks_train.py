"""The PyTorch CPU sample with the same statistics computed the way users do it today: Python
forward/backward hooks on every nn.Linear (input, weight, output; grad_output, grad_input), each
tensor: amax, NaN/Inf, FP16 and BF16 overflow/underflow/subnormal counts (torch casts), exponent
histogram. (They still miss the weight-gradient GEMMs, which the probe sees.)
Usage: hooks_train.py [train.py options]"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "samples", "pytorch_cpu"))
import train  # noqa: E402

RESULTS = []


def stats(t):
    t = t.detach()
    fin = torch.isfinite(t)
    out = {"amax": float(t.abs().max()), "nan": int(torch.isnan(t).sum()),
           "inf": int(torch.isinf(t).sum())}
    for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        c = t.to(dtype)
        tiny = torch.finfo(dtype).tiny
        out[name] = (int((torch.isinf(c) & fin).sum()), int(((t != 0) & (c == 0)).sum()),
                     int(((c != 0) & (c.abs() < tiny)).sum()))
    nz = t[(t != 0) & fin]
    _, e = torch.frexp(nz)
    out["hist"] = torch.bincount((e + 160).clamp(min=0)).tolist()
    RESULTS.append(out)


def forward_hook(mod, inp, out):
    stats(inp[0])
    stats(mod.weight)
    stats(out)  # returns None: the output is left alone


def backward_hook(mod, grad_input, grad_output):
    for g in (*grad_output, *grad_input):
        if g is not None:
            stats(g)


def setup(model):
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.register_forward_hook(forward_hook)
            m.register_full_backward_hook(backward_hook)


if __name__ == "__main__":
    train.main(sys.argv[1:], setup=setup)
