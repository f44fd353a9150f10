#!/usr/bin/env python3
"""Block-format columns end to end (issue 19 item 3): the numpy sample (samples/numpy/train.py)
recorded as tests/probe/test_block_e2e.py does, with every block format (FPSCOPE_FORMATS=all),
with two of them (mxfp6_e3m2,mxfp4) and with none. Checks, against `fpscope summary --json`'s
tensors[].block_formats counts recomputed here:
  - summary text: one row per tensor with block statistics, each measured format's loss
    (flushed + saturated) / elements and SQNR dB, formatted here from the JSON's counts;
  - report Markdown: the "Block-scaled formats" table, the same numbers;
  - diff (two formats vs all six): JSON block_formats has exactly the pairs both runs measured,
    with the losses of each run's JSON;
  - without block statistics: no table, no "Block-scaled" section, no diff key.
Exit code 77 (CTest: skipped) when numpy cannot be imported.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

try:
    import numpy  # noqa: F401  (the sample needs it)
except ImportError:
    print("numpy not importable: skipped")
    sys.exit(77)

FORMATS = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "nvfp4"]


def display(name):  # "MXFP8 E4M3"
    return name.replace("_", " ").upper()


def pct5(f):  # the summary text's loss cell (analysis/src/summary.cpp pct5)
    p = f * 100.0
    if f == 0.0:
        return "0"
    if p < 0.01:
        return "<.01%"
    if p < 1.0:
        return "%.2f%%" % p
    if p < 9.95:
        return "%.1f%%" % p
    return "%.0f%%" % p


def pct_md(f):  # the report's fmt_pct: 3 significant digits
    if f == 0.0:
        return "0%"
    p = f * 100.0
    return ("%.2g%%" if p < 0.01 else "%.3g%%") % p


def loss_sqnr(c):
    loss = (c["flushed"] + c["saturated"]) / c["elements"]
    if not c["sum_x2"] > 0:
        sq = math.nan
    elif not c["sum_err2"] > 0:
        sq = math.inf
    else:
        sq = 10 * math.log10(c["sum_x2"] / c["sum_err2"])
    return loss, sq


def sq_text(sq, unit):
    if math.isnan(sq):
        return "n/a"
    if math.isinf(sq):
        return "exact"
    return "%.1f%s" % (sq, " dB" if unit else "")


def run(cmd, ok=(0, 1)):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode in ok, "%s: exit %d\n%s%s" % (cmd, r.returncode, r.stdout, r.stderr)
    return r.stdout


def record(args, out, formats):
    env = dict(os.environ, FPSCOPE_PROBE=args.probe, FPSCOPE_EVERY="1")
    env.pop("LD_PRELOAD", None)
    env.pop("FPSCOPE_FORMATS", None)
    if formats:
        env["FPSCOPE_FORMATS"] = formats
    r = subprocess.run([args.fpscope, "record", "-o", out, "--", "/usr/bin/python3",
                        os.path.join(args.root, "samples/numpy/train.py"), "--steps", "4"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def measured(t):
    b = t.get("block_formats")
    return {f: b[f] for f in FORMATS if b and f in b and b[f]["elements"] > 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fpscope", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--root", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        paths = {k: os.path.join(d, k + ".fpst") for k in ("all", "sub", "off")}
        record(args, paths["all"], "all")
        record(args, paths["sub"], "mxfp6_e3m2,mxfp4")
        record(args, paths["off"], None)
        js = {k: json.loads(run([args.fpscope, "summary", "--json", p])) for k, p in paths.items()}

        # Summary text, unlimited width: all six formats in one table, tensors in JSON order
        # (worst first, as the tensor table).
        text = run([args.fpscope, "summary", paths["all"], "--width", "0", "--rows", "1000"])
        lines = text.splitlines()
        head = "TENSOR                 | " + " | ".join("%-11s" % display(f) for f in FORMATS)
        assert head.rstrip() in lines, "no header %r in\n%s" % (head, text)
        start = lines.index(head.rstrip()) + 2
        rows = 0
        for t in js["all"]["tensors"]:
            m = measured(t)
            if not m:
                continue
            cells = []
            for f in FORMATS:
                if f in m:
                    loss, sq = loss_sqnr(m[f])
                    cells.append("%5s %5s" % (pct5(loss), sq_text(sq, False)))
                else:
                    cells.append("%5s %5s" % ("-", "-"))
            want = "%-22s | %s" % (t["id"][:22], " | ".join(cells))
            assert lines[start + rows] == want, "row %d: %r != %r" % (rows, lines[start + rows],
                                                                       want)
            rows += 1
        assert rows >= 10, rows

        # Report Markdown: the same numbers, fmt_pct and "x.y dB".
        md = run([args.fpscope, "report", paths["all"], "-o", "-", "--format", "md"])
        assert "### Block-scaled formats" in md
        for t in js["all"]["tensors"]:
            m = measured(t)
            if not m:
                continue
            cells = []
            for f in FORMATS:
                loss, sq = loss_sqnr(m[f]) if f in m else (None, None)
                cells += ["-", "-"] if f not in m else [pct_md(loss), sq_text(sq, True)]
            row = "| %s | %s |" % (t["id"].replace("#", "\\#"), " | ".join(cells))
            assert row in md, "no report row %r" % row

        # Diff: only the two formats both runs measured, per matched tensor.
        dj = json.loads(run([args.fpscope, "diff", paths["sub"], paths["all"], "--json"]))
        pairs = {(x["tensor"], x["format"]): x for x in dj["block_formats"]}
        by_id = {k: {t["id"]: measured(t) for t in js[k]["tensors"]} for k in ("sub", "all")}
        want = {(i, f) for i, m in by_id["sub"].items() for f in m if f in by_id["all"].get(i, {})}
        assert set(pairs) == want and want, (sorted(pairs), sorted(want))
        for (i, f), x in pairs.items():
            assert abs(x["base_loss"] - loss_sqnr(by_id["sub"][i][f])[0]) < 1e-12
            assert abs(x["new_loss"] - loss_sqnr(by_id["all"][i][f])[0]) < 1e-12
        assert {f for _, f in pairs} == {"mxfp6_e3m2", "mxfp4"}

        # Without block statistics: nothing of this.
        off_text = run([args.fpscope, "summary", paths["off"], "--width", "0"])
        assert "block formats" not in off_text and "MXFP" not in off_text
        off_md = run([args.fpscope, "report", paths["off"], "-o", "-", "--format", "md"])
        assert "Block-scaled" not in off_md
        off_diff = json.loads(run([args.fpscope, "diff", paths["off"], paths["all"], "--json"]))
        assert "block_formats" not in off_diff
    print("block columns e2e: %d tensors, %d diff pairs checked" % (rows, len(pairs)))


if __name__ == "__main__":
    main()
