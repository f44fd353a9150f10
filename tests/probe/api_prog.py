"""Uses fpscope.py (scopes, steps, loss scale, watch, event) in a small torch loop.
Usage: api_prog.py PROBE_PYTHON_DIR OUT.json
Writes what it expects the trace to hold, computed here with torch's casts."""
import json
import sys

sys.path.insert(0, sys.argv[1])
import fpscope  # noqa: E402
import torch  # noqa: E402


def applied(w_prev, delta, dtype):
    # docs/design.md: applied_F = cast_F(cast_F(w_prev) + delta) - cast_F(w_prev)
    base = w_prev.to(dtype).to(torch.float64)
    return (base + delta.to(torch.float64)).to(dtype).to(torch.float64) - base


def main():
    out = sys.argv[2]
    torch.set_num_threads(1)
    steps = 4
    n = 300
    w = torch.ones(n, dtype=torch.float32)
    # Per step: 100 elements get +1e-4 (lost in BF16 and FP16 at 1.0), 100 get +1e-3 (lost in
    # BF16 only), 100 get +1e-2 (kept by both).
    delta = torch.cat([torch.full((100,), 1e-4), torch.full((100,), 1e-3), torch.full((100,), 1e-2)])
    fpscope.watch("w", w)
    x = torch.randn(32, 16)
    lin = torch.randn(8, 16)
    expected_updates = []
    for s in range(steps):
        with fpscope.scope("layer.fwd"):
            torch.nn.functional.linear(x, lin)
            torch.nn.functional.linear(x, lin)
        w_prev = w.clone()
        w.add_(delta)  # in place: the watched memory
        d = (w - w_prev).to(torch.float64)
        changed = d != 0
        expected_updates.append({
            "changed": int(changed.sum()),
            "bf16_stagnant": int(((applied(w_prev, w - w_prev, torch.bfloat16) == 0) & changed).sum()),
            "fp16_stagnant": int(((applied(w_prev, w - w_prev, torch.float16) == 0) & changed).sum()),
        })
        fpscope.loss_scale(2.0 ** (10 + s), found_inf=(s == 2))
        fpscope.event("step %d done" % s)
        fpscope.step()
    with open(out, "w") as f:
        json.dump({"active": fpscope.active(), "steps": steps, "updates": expected_updates}, f)


if __name__ == "__main__":
    main()
