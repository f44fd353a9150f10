#!/usr/bin/env python3
"""CPU test of check_blocks.py (run by CTest, label unit): a right synthetic summary passes; a
block count along the wrong axis, a D along its columns under --column-major-d, and a role without
block sections each fail with their message.
Usage: test_check_blocks.py TESTS_GPU_DIR
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

HERE = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "check_blocks.py")


def section(rows, cols, axis, n):
    # Hand-counted: along "rows" each stored column of `rows` elements, along "cols" each row.
    lines, length = (cols, rows) if axis == "rows" else (rows, cols)
    return {"observations": n, "axis": axis,
            "mxfp8_e4m3": {"blocks": n * lines * -(-length // 32)},
            "nvfp4": {"blocks": n * lines * -(-length // 16)}}


def tensor(tid, role, rows, cols, axis, n=5):
    return {"id": tid, "role": role, "shape": [rows, cols],
            "block_formats": section(rows, cols, axis, n)}


GOOD = {"tensors": [
    tensor("fc1.A", "A", 64, 40, "cols"),   # 64 x 40: 64 rows of 2 MX / 3 NVFP4 blocks
    tensor("fc1.B", "B", 40, 128, "rows"),  # 128 columns of 40: 2 MX / 3 NVFP4 blocks each
    tensor("fc1.D", "D", 64, 128, "cols"),
    {"id": "loss", "role": "D", "shape": [1, 1]},  # no block section: not checked
]}
assert GOOD["tensors"][0]["block_formats"]["mxfp8_e4m3"]["blocks"] == 5 * 64 * 2
assert GOOD["tensors"][1]["block_formats"]["nvfp4"]["blocks"] == 5 * 128 * 3


def run(summary, *flags):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(summary, f)
    try:
        r = subprocess.run([sys.executable, CHECK, f.name, *flags], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    return r.returncode, r.stdout + r.stderr


problems = []
rc, out = run(GOOD, "--column-major-d")
if rc != 0:
    problems.append(f"right summary failed: {out}")

wrong_axis = copy.deepcopy(GOOD)
wrong_axis["tensors"][0]["block_formats"]["axis"] = "rows"  # counts are those of "cols"
rc, out = run(wrong_axis)
if rc == 0 or "fc1.A" not in out:
    problems.append(f"counts of the other axis passed: {out}")

d_rows = copy.deepcopy(GOOD)
d_rows["tensors"][2] = tensor("fc1.D", "D", 64, 128, "rows")
rc, out = run(d_rows, "--column-major-d")
if rc == 0 or "not cols" not in out:
    problems.append(f"a cuBLAS D along its columns passed: {out}")
rc, out = run(d_rows)
if rc != 0:
    problems.append(f"a row-major D (host BLAS) failed without --column-major-d: {out}")

no_b = copy.deepcopy(GOOD)
del no_b["tensors"][1]["block_formats"]
rc, out = run(no_b)
if rc == 0 or "no B operand" not in out:
    problems.append(f"a summary without B block sections passed: {out}")

for p in problems:
    print("FAIL:", p)
print("ok" if not problems else f"{len(problems)} problem(s)")
sys.exit(1 if problems else 0)
