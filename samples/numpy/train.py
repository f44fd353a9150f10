#!/usr/bin/python3
"""A small numpy program for fpscope to record: softmax regression trained by gradient descent in
float32, every matrix product through numpy.dot (numpy calls cblas_sgemm for float32).
Does not import fpscope. Prints the loss of each step (repr: every digit).

    fpscope record -o numpy.fpst -- /usr/bin/python3 samples/numpy/train.py
"""
import argparse

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    n, d, hidden, classes = 512, 32, 64, 5
    x = rng.standard_normal((n, d)).astype(np.float32)
    x[:, 0] *= np.float32(3.0e3)  # one unnormalized feature: large activations in layer 1
    y = rng.integers(0, classes, n)
    w1 = (rng.standard_normal((d, hidden)) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((hidden, classes)) * 0.1).astype(np.float32)
    onehot = np.eye(classes, dtype=np.float32)[y]
    lr = np.float32(1e-3)
    for step in range(args.steps):
        h = np.maximum(np.dot(x, w1), np.float32(0))
        logits = np.dot(h, w2)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(n), y] + np.float32(1e-12)).mean()
        g = (p - onehot) / np.float32(n)
        gw2 = np.dot(h.T, g)
        gh = np.dot(g, w2.T) * (h > 0)
        gw1 = np.dot(x.T, gh)
        w1 -= lr * gw1
        w2 -= lr * gw2
        print(f"step {step} loss {float(loss)!r}", flush=True)


if __name__ == "__main__":
    main()
