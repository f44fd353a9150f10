"""8 Python threads call np.matmul on float32 matrices at the same time (numpy releases the GIL
around cblas_sgemm), each CALLS times with its own shape: thread t multiplies (M0+t x K0+t) by
(K0+t x N0+t). After its loop, each thread computes (numpy) the amax of every product; the
program writes {t: {"m", "n", "k", "amax": [...]}} to OUT.json and prints how many calls
overlapped (in time) a call of another thread.
Usage: np_threads.py OUT.json THREADS CALLS"""
import json
import sys
import threading
import time

import numpy as np

M0, K0, N0 = 176, 144, 112  # large enough that calls of different threads overlap


def main():
    out, threads, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    barrier = threading.Barrier(threads)
    results = {}
    spans = []  # (start, end, thread) of every call

    def work(t):
        rng = np.random.default_rng(100 + t)
        m, k, n = M0 + t, K0 + t, N0 + t
        a = [(rng.standard_normal((m, k)) * (t + 1)).astype(np.float32) for _ in range(calls)]
        b = [rng.standard_normal((k, n)).astype(np.float32) for _ in range(calls)]
        d = [None] * calls
        barrier.wait()  # all threads multiply at once, nothing else in the loop
        for i in range(calls):
            t0 = time.perf_counter()
            d[i] = np.matmul(a[i], b[i])
            spans.append((t0, time.perf_counter(), t))
        results[t] = {"m": m, "n": n, "k": k, "amax": [float(np.abs(x).max()) for x in d]}

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    with open(out, "w") as f:
        json.dump(results, f)
    spans.sort()
    overlaps = 0
    for i, (_, end, t) in enumerate(spans):
        overlaps += any(t2 != t for s2, _, t2 in spans[i + 1:] if s2 < end)
    print("threads %d calls %d overlaps %d" % (threads, calls, overlaps))


if __name__ == "__main__":
    main()
