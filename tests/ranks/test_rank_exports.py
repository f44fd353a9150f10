#!/usr/bin/python3
"""Rank sets through `fpscope export` and `fpscope diff`, and the SQL of docs/ranks.md (issue 20).

On a generated run of 4 ranks with every cross-rank finding planted at a known rank and step
(gen_fault_ranks.cpp) and on its healthy twin:
  - `summary --json` reports the planted findings (the reference for the queries);
  - every query of docs/ranks.md (extracted from the page, so page and test cannot drift) returns
    the ranks and steps of its finding, through each loading path the page gives: the rank-set
    SQLite export, per-rank SQLite exports merged with the page's recipe (in Python's sqlite3,
    and with the sqlite3 shell loop when the shell is installed), and the JSONL export read in
    SQLite; on the healthy run each returns no row;
  - the rank-set CSV/JSONL/SQLite/Perfetto exports hold each rank's single-trace rows with its
    rank in front;
  - `diff` of the two runs compares rank by rank: the planted ranks regress with the expected
    rules, rank 0 does not, exit 1; a run against itself exits 0; rank sets of different sizes
    are refused (exit 2) naming the files.

  test_rank_exports.py --fpscope build/bin/fpscope --gen build/bin/fpscope_gen_fault_ranks
"""
import argparse
import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join(HERE, "..", "..", "docs", "ranks.md")

# What gen_fault_ranks.cpp plants with its defaults (4 ranks, 8 steps).
PLANTED = {
    "rank_first_fault": {"ranks": [2], "first_step": 5, "tensor": "gemm#1.D"},
    "rank_skew": {"ranks": [1], "first_step": 3, "tensor": "gemm#0.D"},
    "rank_desync": {"ranks": [3], "first_step": 4, "tensor": "gemm#1.A"},
    "rank_loss_scale": {"ranks": [1], "first_step": 6, "tensor": None},
}


class Checker:
    def __init__(self):
        self.failures = 0

    def eq(self, what, got, want):
        if got != want:
            self.failures += 1
            print(f"FAIL {what}: got {got!r}, want {want!r}")
        else:
            print(f"ok   {what}")

    def true(self, what, cond, detail=""):
        self.eq(what + (f" ({detail})" if detail and not cond else ""), bool(cond), True)


def run(*cmd, ok=(0,)):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if r.returncode not in ok:
        sys.exit(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def doc_blocks(path):
    """{name: sql} of the blocks marked <!-- query: NAME -->, <!-- view: NAME -->,
    <!-- recipe: NAME --> (the comment line right before the opening fence)."""
    lines = open(path, encoding="utf-8").read().splitlines()
    blocks = {}
    for i, line in enumerate(lines):
        m = re.fullmatch(r"<!-- (query|view|recipe): ([\w-]+) -->", line.strip())
        if not m or i + 1 >= len(lines) or not lines[i + 1].startswith("```"):
            continue
        end = i + 2
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        blocks[f"{m.group(1)}:{m.group(2)}"] = "\n".join(lines[i + 2:end])
    return blocks


def statements(sql):
    """The statements of a script without string literals holding ';' (the page's recipes)."""
    return [s.strip() for s in sql.split(";") if s.strip() and not s.strip().startswith("--")]


def query(db, sql):
    return [tuple(r) for r in db.execute(sql).fetchall()]


def check_queries(c, tag, db, blocks, findings):
    """Runs the page's four queries on `db` (which has the view obs) and compares them with the
    `fpscope summary --json` findings of the same run."""
    by_kind = {}
    for f in findings:
        by_kind.setdefault(f["kind"], []).append(f)
    # rank_first_fault (NaN/Inf: format null)
    rows = query(db, blocks["query:rank_first_fault"])
    nonfinite = [f for f in by_kind.get("rank_first_fault", []) if f["format"] is None]
    if not nonfinite:
        c.eq(f"{tag} rank_first_fault: no rows", rows, [])
    else:
        f = nonfinite[0]
        first = min(r[1] for r in rows) if rows else None
        c.eq(f"{tag} rank_first_fault: first step", first, f["first_step"])
        c.eq(f"{tag} rank_first_fault: ranks", sorted(r[0] for r in rows if r[1] == first), f["ranks"])
        c.eq(f"{tag} rank_first_fault: op", rows[0][2] if rows else None, f["tensor"])
    # The page's variant for the first overflow: the same query on the format's overflow count.
    # (No finding when every rank starts at the same step: then nothing to compare.)
    for f in by_kind.get("rank_first_fault", []):
        if f["format"] not in ("fp16", "bf16"):
            continue
        sql = blocks["query:rank_first_fault"].replace("nan + pos_inf + neg_inf",
                                                       f"{f['format']}_overflow")
        rows = query(db, sql)
        first = min(r[1] for r in rows) if rows else None
        c.eq(f"{tag} rank_first_fault ({f['format']} overflow): first step, ranks, op",
             (first, sorted(r[0] for r in rows if r[1] == first), rows[0][2] if rows else None),
             (f["first_step"], f["ranks"], f["tensor"]))
    # rank_skew: one finding per tensor
    rows = query(db, blocks["query:rank_skew"])
    want = {f["tensor"]: (f["ranks"], f["first_step"]) for f in by_kind.get("rank_skew", [])}
    got = {}
    for rank, tensor, step, *_ in rows:
        ranks, first = got.get(tensor, (set(), step))
        ranks.add(rank)
        got[tensor] = (ranks, min(first, step))
    c.eq(f"{tag} rank_skew: tensors, ranks, first steps",
         {t: (sorted(r), s) for t, (r, s) in got.items()}, want)
    # rank_desync: one finding per tensor, at one step
    rows = query(db, blocks["query:rank_desync"])
    want = {f["tensor"]: (f["ranks"], f["first_step"]) for f in by_kind.get("rank_desync", [])}
    got = {}
    for rank, tensor, step in rows:
        got.setdefault(tensor, (set(), step))[0].add(rank)
    c.eq(f"{tag} rank_desync: tensors, ranks, steps",
         {t: (sorted(r), s) for t, (r, s) in got.items()}, want)
    # rank_loss_scale: one finding for the run (SQLite exports only: JSONL has no loss scales)
    if db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'loss_scales'").fetchone()[0]:
        rows = query(db, blocks["query:rank_loss_scale"])
        want = [(f["ranks"], f["first_step"]) for f in by_kind.get("rank_loss_scale", [])]
        got = [(sorted({r[0] for r in rows}), min(r[1] for r in rows))] if rows else []
        c.eq(f"{tag} rank_loss_scale: ranks, first step", got, want)


def check_exported_queries(c, fpscope, tag, folder, summary, work):
    """The page's queries on the rank-set SQLite and JSONL exports of `folder` (for
    test_ranks.py's real DDP runs) against `summary` (its summary --json)."""
    blocks = doc_blocks(DOC)
    out = os.path.join(work, os.path.basename(folder) + ".sqlite")
    run(fpscope, "export", folder, "--format", "sqlite", "-o", out)
    db = sqlite3.connect(out)
    db.executescript(blocks["view:sqlite"])
    check_queries(c, f"{tag} [sql: rank-set sqlite]", db, blocks, summary["findings"])
    jdir = os.path.join(work, os.path.basename(folder) + "-jsonl")
    os.makedirs(jdir, exist_ok=True)
    run(fpscope, "export", folder, "--format", "jsonl", "-o", os.path.join(jdir, "run.jsonl"))
    check_queries(c, f"{tag} [sql: jsonl in sqlite]", load_jsonl_db(blocks, jdir), blocks,
                  summary["findings"])


def load_jsonl_db(blocks, folder):
    """An in-memory SQLite with the page's JSONL view over folder/run.jsonl (readfile() is the
    sqlite3 shell's; here a Python function)."""
    db = sqlite3.connect(":memory:")
    db.create_function("readfile", 1, lambda p: open(os.path.join(folder, p), "rb").read().decode())
    db.executescript(blocks["view:jsonl-sqlite"])
    return db


def merge_python(blocks, files, out):
    db = sqlite3.connect(out, isolation_level=None)  # autocommit, as the sqlite3 shell
    for rank, path in files:
        for st in statements(blocks["recipe:merge"]):
            db.execute(st, {"file": path, "rank": rank})
    return db


def check_run(c, fpscope, blocks, work, name, summary):
    """Every loading path of the page on the run in work/name, against its summary."""
    findings = summary["findings"]
    folder = name  # relative to work, the current directory: paths as the summary prints them
    ranks = [r["rank"] for r in summary["ranks"]]
    paths = [r["path"] for r in summary["ranks"]]
    # 1. The rank-set SQLite export.
    out = os.path.join(work, f"{name}.sqlite")
    run(fpscope, "export", folder, "--format", "sqlite", "-o", out)
    db = sqlite3.connect(out)
    db.executescript(blocks["view:sqlite"])
    check_queries(c, f"[{name}: rank-set sqlite]", db, blocks, findings)
    c.eq(f"[{name}] ranks table", query(db, "SELECT rank, path, rank_source FROM ranks ORDER BY rank"),
         [(r, p, "metadata") for r, p in zip(ranks, paths)])
    # 2. Per-rank single-trace exports merged by the page's recipe.
    singles = []
    for r, p in zip(ranks, paths):
        single = os.path.join(work, f"{name}-single-{r}.sqlite")
        run(fpscope, "export", p, "--format", "sqlite", "-o", single)
        singles.append((r, single))
        # The rank-set database holds the single export's rows with the rank in front.
        one = sqlite3.connect(single)
        for table in ("observations", "tensors", "strings", "loss_scales", "histograms", "steps"):
            c.eq(f"[{name}] rank {r}: rank-set {table} = single export's",
                 query(db, f"SELECT * FROM {table} WHERE rank = {r} ORDER BY rowid"),
                 [(r,) + row for row in query(one, f"SELECT * FROM {table} ORDER BY rowid")])
    merged = merge_python(blocks, singles, os.path.join(work, f"{name}-merged.sqlite"))
    merged.executescript(blocks["view:sqlite"])
    check_queries(c, f"[{name}: merged per-rank sqlite]", merged, blocks, findings)
    # 2b. The page's shell loop, as written, when the sqlite3 shell is installed.
    if shutil.which("sqlite3"):
        sh_dir = os.path.join(work, f"{name}-sh")
        os.makedirs(sh_dir)
        for r, single in singles:
            shutil.copy(single, os.path.join(sh_dir, f"run-{r}.sqlite"))
        with open(os.path.join(sh_dir, "merge.sql"), "w") as f:
            f.write(blocks["recipe:merge"] + "\n")
        run("bash", "-euo", "pipefail", "-c", f"cd '{sh_dir}'\n" + blocks["recipe:merge-sh"])
        db_sh = sqlite3.connect(os.path.join(sh_dir, "all.sqlite"))
        db_sh.executescript(blocks["view:sqlite"])
        check_queries(c, f"[{name}: sqlite3 shell loop]", db_sh, blocks, findings)
    else:
        print(f"skip [{name}] the sqlite3 shell loop: no sqlite3 shell")
    # 3. The JSONL export read in SQLite.
    jdir = os.path.join(work, f"{name}-jsonl")
    os.makedirs(jdir)
    run(fpscope, "export", folder, "--format", "jsonl", "-o", os.path.join(jdir, "run.jsonl"))
    check_queries(c, f"[{name}: jsonl in sqlite]", load_jsonl_db(blocks, jdir), blocks, findings)


def check_text_exports(c, fpscope, work, name, ranks, paths):
    folder = name
    # CSV: one header with `rank` first, then each rank's single-trace rows with its rank.
    whole = run(fpscope, "export", folder, "--format", "csv", "-o", "-").stdout.splitlines()
    want = []
    for r, p in zip(ranks, paths):
        single = run(fpscope, "export", p, "--format", "csv", "-o", "-").stdout.splitlines()
        if not want:
            want.append("rank," + single[0])
        want += [f"{r}," + line for line in single[1:]]
    c.eq(f"[{name}] csv = the singles' rows with the rank", whole, want)
    c.eq(f"[{name}] csv parses with a rank column",
         sorted({int(row["rank"]) for row in csv.DictReader(io.StringIO("\n".join(whole)))}), ranks)
    # JSONL: "rank" first in each object.
    whole = run(fpscope, "export", folder, "--format", "jsonl", "-o", "-").stdout.splitlines()
    want = []
    for r, p in zip(ranks, paths):
        single = run(fpscope, "export", p, "--format", "jsonl", "-o", "-").stdout.splitlines()
        want += [f'{{"rank":{r},' + line[1:] for line in single]
    c.eq(f"[{name}] jsonl = the singles' objects with the rank", whole, want)
    c.eq(f"[{name}] jsonl: rank is the first key",
         {next(iter(json.loads(line))) for line in whole}, {"rank"})
    # Perfetto: one process per rank.
    doc = json.loads(run(fpscope, "export", folder, "--format", "perfetto", "-o", "-").stdout)
    names = {e["pid"]: e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"}
    c.eq(f"[{name}] perfetto: one process per rank",
         names, {r + 1: f"rank {r} {p}" for r, p in zip(ranks, paths)})
    singles = sum(len(json.loads(run(fpscope, "export", p, "--format", "perfetto", "-o", "-")
                                 .stdout)["traceEvents"]) for p in paths)
    c.eq(f"[{name}] perfetto: every rank's events", len(doc["traceEvents"]), singles)


def check_diff(c, fpscope, work):
    os.chdir(work)
    r = run(fpscope, "diff", "healthy", "faulty", "--json", ok=(1,))
    d = json.loads(r.stdout)
    c.eq("diff: ranks compared", d["rank_set"]["ranks"], [0, 1, 2, 3])
    rules = {e["rank"]: sorted({x["rule"] for x in e["regressions"]}) for e in d["ranks"]}
    c.eq("diff: rank 0 (nothing planted) has no regression", rules[0], [])
    c.true("diff: rank 1 (skew, skipped step) regresses on amax and skipped",
           {"amax", "skipped"} <= set(rules[1]), rules[1])
    c.true("diff: ranks 2 and 3 (NaN) regress on overflow",
           "overflow" in rules[2] and "overflow" in rules[3], rules)
    c.eq("diff: the flat regressions are the ranks'",
         sorted((x["rank"], x["rule"], x["message"]) for x in d["regressions"]),
         sorted((e["rank"], x["rule"], x["message"]) for e in d["ranks"] for x in e["regressions"]))
    c.eq("diff: each rank names its two files",
         [(e["base"]["path"], e["new"]["path"]) for e in d["ranks"]],
         [(f"healthy/run-{k}.fpst", f"faulty/run-{k}.fpst") for k in range(4)])
    text = run(fpscope, "diff", "healthy/run-*.fpst", "faulty", ok=(1,)).stdout
    c.true("diff text: a section per rank", all(f"\nrank {k}\n  base healthy/run-{k}.fpst" in text
                                                 for k in range(4)), text[:400])
    c.true("diff text: the headline", "3 ranks of 4 regressed (ranks 1, 2, 3)" in text, text[:400])
    r = run(fpscope, "diff", "healthy", "healthy", ok=(0,))
    c.true("diff of a run with itself: clean", "no regressions on any rank" in r.stdout, r.stdout)
    # Sets that do not match.
    r = run(fpscope, "diff", "healthy", "small", ok=(2,))
    c.eq("diff 4 ranks vs 2: refused, naming the files", r.stderr.strip(),
         "fpscope: the rank sets differ: BASE has 4 traces, NEW 2; a rank-set diff compares the "
         "same ranks of two runs; only in BASE: rank 2 (healthy/run-2.fpst), 3 (healthy/run-3.fpst)")
    r = run(fpscope, "diff", "healthy/run-0.fpst", "faulty", ok=(2,))
    c.true("diff one trace vs a rank set: refused", "only in NEW: rank 1 (faulty/run-1.fpst)"
           in r.stderr, r.stderr)
    r = run(fpscope, "diff", "healthy", "nowhere/*.fpst", ok=(2,))
    c.eq("diff: a glob matching nothing", r.stderr.strip(),
         "fpscope: nowhere/*.fpst: no file matches this pattern")
    r = run(fpscope, "export", "faulty", "--format", "csv", "-o", "x.csv", "--tensor", "nope", ok=(2,))
    c.true("export --tensor absent on every rank: refused", "no tensor 'nope' in any of the 4 traces"
           in r.stderr and not os.path.exists("x.csv"), r.stderr)
    r = run(fpscope, "export", "faulty", "--format", "csv", "-o", "-", "--tensor", "gemm#1.A")
    c.eq("export --tensor: that tensor's rows of every rank",
         sorted({(line.split(",")[0], line.split(",")[6]) for line in r.stdout.splitlines()[1:]}),
         [(str(k), "gemm#1.A") for k in range(4)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fpscope", required=True)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--keep", help="work in this directory and keep it")
    a = ap.parse_args()
    fpscope, gen = os.path.abspath(a.fpscope), os.path.abspath(a.gen)
    blocks = doc_blocks(DOC)
    for key in ("view:sqlite", "view:jsonl-sqlite", "recipe:merge", "recipe:merge-sh",
                "query:rank_first_fault", "query:rank_skew", "query:rank_desync",
                "query:rank_loss_scale"):
        if key not in blocks:
            sys.exit(f"{DOC}: no block marked <!-- {key.replace(':', ': ')} -->")
    work = a.keep or tempfile.mkdtemp(prefix="fpscope_rank_exports_")
    os.makedirs(work, exist_ok=True)
    c = Checker()
    try:
        os.chdir(work)
        for name, args in (("healthy", ["healthy"]), ("faulty", ["faulty"]), ("small", ["faulty", "2"])):
            os.makedirs(name, exist_ok=True)
            run(gen, name, *args)
        for name in ("faulty", "healthy"):
            s = json.loads(run(fpscope, "summary", name, "--json").stdout)
            if name == "faulty":
                got = {f["kind"]: {"ranks": f["ranks"], "first_step": f["first_step"],
                                   "tensor": f["tensor"]} for f in s["findings"]}
                c.eq("faulty: fpscope reports the planted findings", got, PLANTED)
            else:
                c.eq("healthy: no cross-rank finding", s["findings"], [])
            ranks = [r["rank"] for r in s["ranks"]]
            paths = [r["path"] for r in s["ranks"]]
            check_run(c, fpscope, blocks, work, name, s)
            os.chdir(work)
            check_text_exports(c, fpscope, work, name, ranks, paths)
        check_diff(c, fpscope, work)
    finally:
        os.chdir("/")
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{c.failures} failure(s)")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
