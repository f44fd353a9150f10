"""Imports numpy and works with arrays without ever multiplying matrices (no BLAS call): element-
wise arithmetic, reductions, sorting, an FFT. Prints its results (repr: every digit) and, on
stderr, its own wall time. Usage: np_no_blas.py"""
import sys
import time

t0 = time.perf_counter()
import numpy as np  # noqa: E402

rng = np.random.default_rng(0)
x = rng.standard_normal(200000).astype(np.float32)
y = np.tanh(x) * 3.0 + np.sqrt(np.abs(x))
print("sum %r" % float(y.sum(dtype=np.float64)))
print("sorted %r" % [float(v) for v in np.sort(y)[[0, 1000, -1]]])
print("fft %r" % float(np.abs(np.fft.rfft(y[:4096])).max()))
print("cumsum %r" % float(np.cumsum(x[:1000])[-1]))
sys.stderr.write("np_no_blas wall %.3f s\n" % (time.perf_counter() - t0))
