"""fpscope.watch() on the master weights of a torch training loop (SGD with momentum), with
fpscope.step() after each optimizer step. For every iteration it computes HERE, with torch (not
the probe's code), the master-weight update rounding loss of docs/design.md for the watched tensor:
  delta = w_t - w_{t-1} (FP32), over elements with delta != 0 (both finite);
  applied_F = cast_F(cast_F(w_{t-1}) + delta) - cast_F(w_{t-1})  (the sum in FP32; 0 if a cast
              overflows), F in {bf16, fp16};
  stagnant_F = #(applied_F == 0); lost_F = sum|delta - applied_F|; delta_abs = sum|delta|;
  ratio histogram: floor(log2(|delta|/|w_{t-1}|)) clamped to [-40, 8], w_{t-1} != 0
                   (exact, from torch.frexp mantissas and exponents).
Also tries to watch two tensors the probe cannot take (non-contiguous, int64): each must return
False (with one warning), never raise.
Usage: torch_watch.py PROBE_PYTHON_DIR OUT.json STEPS
Prints the losses and "watch ok=... noncontig=... int=..." on stdout."""
import json
import sys

sys.path.insert(0, sys.argv[1])
import fpscope  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

RATIO_MIN, RATIO_MAX = -40, 8


def expected_update(prev, cur):
    delta = cur - prev  # FP32, as the optimizer's update is seen
    changed = (delta != 0) & torch.isfinite(prev) & torch.isfinite(cur)
    d = delta[changed]
    p = prev[changed]
    out = {"changed": int(changed.sum()), "elements": prev.numel()}
    for name, dt in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        base = p.to(dt).to(torch.float32)
        nxt = (base + d).to(dt).to(torch.float32)
        ok = torch.isfinite(base) & torch.isfinite(nxt)
        applied = torch.where(ok, nxt.double() - base.double(), torch.zeros_like(base.double()))
        lost = (d.double() - applied).abs().sum().item()
        dabs = d.double().abs().sum().item()
        out[name] = {"stagnant": int((applied == 0).sum()), "lost_abs": lost, "delta_abs": dabs,
                     "lost_mass": lost / dabs if dabs else 0.0}
    nz = p != 0
    md, ed = torch.frexp(d[nz].double().abs())
    mw, ew = torch.frexp(p[nz].double().abs())
    bins = (ed - ew - (md < mw).to(ed.dtype)).clamp(RATIO_MIN, RATIO_MAX)
    u, c = torch.unique(bins, return_counts=True)
    out["ratio_hist"] = {str(int(b)): int(n) for b, n in zip(u, c)}
    return out


def main():
    out_path, steps = sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 4))
    w = model[0].weight
    ok = fpscope.watch("fc1.weight", w)
    nc = fpscope.watch("noncontig", torch.randn(6, 5).t())
    it = fpscope.watch("int", torch.arange(12))
    print("watch ok=%s noncontig=%s int=%s" % (ok, nc, it), flush=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    gen = torch.Generator().manual_seed(9)
    updates = []
    for s in range(steps):
        x = torch.randn(32, 16, generator=gen)
        y = torch.randint(0, 4, (32,), generator=gen)
        prev = w.detach().clone()
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        updates.append(expected_update(prev, w.detach().clone()))
        fpscope.step()
        print("step %d loss %r" % (s, loss.item()), flush=True)
    with open(out_path, "w") as f:
        json.dump({"active": fpscope.active(), "watched": ok, "updates": updates}, f)


if __name__ == "__main__":
    main()
