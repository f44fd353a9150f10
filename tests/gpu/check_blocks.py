#!/usr/bin/env python3
"""Block sections of a trace recorded with FPSCOPE_FORMATS=all (issue 19 item 2, device path):
`fpscope summary --json` of it must give every GEMM operand role a block section, and each
tensor's block counts must be those of its stored shape along its axis (blocks restart at each
line: a stored column for axis "rows", a stored row for "cols"), for every observation. With
--column-major-d (cuBLAS, cuBLASLt): D's blocks run along its rows, i.e. axis "cols" of the
column-major stored view.

    check_blocks.py SUMMARY.json [--column-major-d]      exit 0 pass, 1 fail
"""
import json
import sys

SIZES = {"mxfp8_e4m3": 32, "mxfp8_e5m2": 32, "mxfp6_e3m2": 32, "mxfp6_e2m3": 32, "mxfp4": 32,
         "nvfp4": 16}


def blocks_of(rows, cols, axis, size):
    lines, length = (cols, rows) if axis == "rows" else (rows, cols)
    return lines * ((length + size - 1) // size)


def check(summary, column_major_d):
    failures = []
    roles = set()
    for t in summary["tensors"]:
        b = t.get("block_formats")
        if b is None:
            continue
        roles.add(t["role"])
        rows, cols = t["shape"]
        n = b["observations"]
        if column_major_d and t["role"] == "D" and b["axis"] != "cols":
            failures.append(f"tensor {t['id']} (D, {rows} x {cols}): axis {b['axis']}, not cols")
        if b["axis"] not in ("rows", "cols"):
            continue  # read along both axes by different GEMMs: no single count to check
        for name, size in SIZES.items():
            want = n * blocks_of(rows, cols, b["axis"], size)
            if name in b and b[name]["blocks"] != want:
                failures.append(f"tensor {t['id']} ({t['role']}, {rows} x {cols}, axis "
                                f"{b['axis']}): {name} blocks {b[name]['blocks']}, want {n} x "
                                f"{want // max(n, 1)}")
    for role in ("A", "B", "D"):
        if role not in roles:
            failures.append(f"no {role} operand has a block section")
    return failures, roles


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    with open(sys.argv[1]) as f:
        summary = json.load(f)
    failures, roles = check(summary, "--column-major-d" in sys.argv[2:])
    for msg in failures:
        print("FAIL: blocks:", msg)
    if failures:
        return 1
    print(f"ok: block sections for roles {sorted(roles)}, counts match each stored shape and axis")
    return 0


if __name__ == "__main__":
    sys.exit(main())
