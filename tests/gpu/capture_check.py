"""Stream capture while the probe records: a small MLP's forward and backward captured with
torch.cuda.graph (global capture mode, torch's default) and replayed; then ordinary eager steps.
A probe that queries events or allocates from another thread during the capture invalidates it
(cudaErrorStreamCaptureInvalidated), which fails this program. Prints the results' bits so that
runs with and without the probe can be compared (tests/gpu/run.sh).
"""
import torch
import torch.nn as nn


def main():
    torch.manual_seed(0)
    dev = "cuda"
    model = nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256)).to(dev)
    x = torch.randn(64, 256, device=dev)
    y = torch.randn(64, 256, device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    # Warm up on a side stream, as torch.cuda.graph's documentation requires.
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            nn.functional.mse_loss(model(x), y).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(g):
        out = model(x)
        loss = nn.functional.mse_loss(out, y)
        loss.backward()
    for i in range(20):
        g.replay()
        opt.step()
        torch.cuda.synchronize()
        print(f"replay {i} loss {float(loss).hex()}")
    for i in range(5):
        opt.zero_grad(set_to_none=True)
        l2 = nn.functional.mse_loss(model(x), y)
        l2.backward()
        opt.step()
        print(f"eager {i} loss {float(l2).hex()}")
    print("capture_check: ok")


if __name__ == "__main__":
    main()
