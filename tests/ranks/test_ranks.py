#!/usr/bin/python3
"""End-to-end proof of rank sets (issue 20) on a real multi-process DDP training (gloo, CPU).

For 2 and 4 ranks, ddp_train.py is started by launch.py under `fpscope record -o run-%r.fpst`:
  - healthy: the rank set has no cross-rank finding, its verdict is healthy, and every rank's
    entry in `summary DIR --json` equals `summary run-<r>.fpst --json` of that trace alone; the
    ranks come from the metadata (rank, world_size, local_rank as the launcher set them);
  - a scaled-up input batch on one rank from step S: rank_first_fault (FP16 overflow) names that
    rank and step S, the rank_skew findings name that rank only, from step S;
  - a weight perturbed on one replica at step S: rank_desync names that rank and step S, and
    nothing else is out of sync.
A directory, a glob and the explicit paths give the same JSON. On each run, the SQL of
docs/ranks.md on the rank-set exports returns what the findings report (test_rank_exports.py).
Exit 77 without torch.

  test_ranks.py --fpscope build/bin/fpscope [--keep DIR]
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
sys.path.insert(0, HERE)
from test_rank_exports import Checker, check_exported_queries  # noqa: E402  (one checker; docs/ranks.md's SQL)


def have_torch():
    return subprocess.run([PY, "-c", "import torch.distributed as d; assert d.is_available()"],
                          capture_output=True).returncode == 0


def record(fpscope, out, ranks, *args):
    cmd = [PY, os.path.join(HERE, "launch.py"), "--ranks", str(ranks), "--out", out,
           "--fpscope", fpscope, "--record-arg=--every=1", "--timeout", "240", "--",
           os.path.join(HERE, "ddp_train.py"), "--steps", "6"] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"launch failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    paths = sorted(glob.glob(os.path.join(out, "run-*.fpst")))
    if len(paths) != ranks:
        sys.exit(f"{out}: {len(paths)} traces, want {ranks}")
    return paths


def summary(fpscope, *args):
    r = subprocess.run([fpscope, "summary", *args, "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"fpscope summary {args} failed ({r.returncode}): {r.stderr}")
    return json.loads(r.stdout)


def of_kind(s, kind):
    return [f for f in s["findings"] if f["kind"] == kind]


def check_run(c, fpscope, root, world, fault_step, fault_rank):
    tag = f"[{world} ranks]"
    # --- healthy
    out = os.path.join(root, f"healthy{world}")
    paths = record(fpscope, out, world)
    s = summary(fpscope, out)
    c.eq(f"{tag} healthy: ranks", [r["rank"] for r in s["ranks"]], list(range(world)))
    c.eq(f"{tag} healthy: rank sources", {r["rank_source"] for r in s["ranks"]}, {"metadata"})
    c.eq(f"{tag} healthy: world sizes", {r["world_size"] for r in s["ranks"]}, {world})
    c.eq(f"{tag} healthy: local ranks", [r["local_rank"] for r in s["ranks"]], list(range(world)))
    c.eq(f"{tag} healthy: cross-rank findings", s["findings"], [])
    c.eq(f"{tag} healthy: verdict", s["verdict"]["state"], "healthy")
    for r, p in zip(s["ranks"], paths):
        c.eq(f"{tag} healthy: rank {r['rank']} summary == summary of {os.path.basename(p)}",
             r["summary"] == summary(fpscope, p), True)
    c.eq(f"{tag} glob == directory", summary(fpscope, os.path.join(out, "run-*.fpst")), s)
    c.eq(f"{tag} paths == directory", summary(fpscope, *reversed(paths)), s)
    check_exported_queries(c, fpscope, f"{tag} healthy", out, s, root)

    # --- planted scale on one rank
    out = os.path.join(root, f"scale{world}")
    record(fpscope, out, world, "--plant-scale-rank", str(fault_rank), "--fault-step",
           str(fault_step))
    s = summary(fpscope, out)
    first = [f for f in of_kind(s, "rank_first_fault") if f["format"] == "fp16"]
    c.eq(f"{tag} scale: one fp16 rank_first_fault", len(first), 1)
    if first:
        c.eq(f"{tag} scale: first rank", first[0]["ranks"], [fault_rank])
        c.eq(f"{tag} scale: first step", first[0]["first_step"], fault_step)
    skew = of_kind(s, "rank_skew")
    c.eq(f"{tag} scale: rank_skew found", len(skew) > 0, True)
    c.eq(f"{tag} scale: rank_skew ranks", {tuple(f["ranks"]) for f in skew}, {(fault_rank,)})
    c.eq(f"{tag} scale: rank_skew first step", min(f["first_step"] for f in skew), fault_step)
    c.eq(f"{tag} scale: no desync", of_kind(s, "rank_desync"), [])
    check_exported_queries(c, fpscope, f"{tag} scale", out, s, root)
    md = os.path.join(root, f"scale{world}.md")
    r = subprocess.run([fpscope, "report", out, "-o", md], capture_output=True, text=True)
    c.eq(f"{tag} scale: report exit", r.returncode, 0)
    text = open(md).read() if r.returncode == 0 else ""
    c.eq(f"{tag} scale: report details the first rank",
         f"## fpscope report: {world} ranks (rank {fault_rank} in detail)" in text, True)
    c.eq(f"{tag} scale: report ranks section", f"## Ranks: {world} traces of one run" in text, True)
    heat = os.path.join(root, f"scale{world}_files", "ranks_heatmap1.svg")
    c.eq(f"{tag} scale: report has a ranks x steps heatmap",
         os.path.exists(heat) and f"rank {world - 1}</text>" in open(heat).read(), True)
    c.eq(f"{tag} scale: report names the fault",
         f"fp16 overflow appears first on rank {fault_rank} at step {fault_step}" in text, True)

    # --- one replica's weight perturbed
    out = os.path.join(root, f"perturb{world}")
    record(fpscope, out, world, "--perturb-rank", str(fault_rank), "--fault-step", str(fault_step))
    s = summary(fpscope, out)
    de = of_kind(s, "rank_desync")
    c.eq(f"{tag} perturb: desynced tensors", [f["tensor"] for f in de], ["module.0.A"])
    if de:
        c.eq(f"{tag} perturb: desync ranks", de[0]["ranks"], [fault_rank])
        c.eq(f"{tag} perturb: desync step", de[0]["first_step"], fault_step)
        c.eq(f"{tag} perturb: severity", de[0]["severity"], "critical")
    c.eq(f"{tag} perturb: verdict", s["verdict"]["state"], "broken")
    check_exported_queries(c, fpscope, f"{tag} perturb", out, s, root)


def check_errors(c, fpscope, root):
    """One-line errors, exit 2: two traces of one rank; a pattern that matches nothing."""
    import shutil
    healthy = os.path.join(root, "healthy2")
    dup = os.path.join(root, "dup")
    os.makedirs(dup, exist_ok=True)
    for name in ("run-0.fpst", "run-1.fpst"):
        shutil.copy(os.path.join(healthy, name), dup)
    shutil.copy(os.path.join(healthy, "run-0.fpst"), os.path.join(dup, "again-0.fpst"))
    r = subprocess.run([fpscope, "summary", dup], capture_output=True, text=True)
    c.eq("duplicate rank: exit", r.returncode, 2)
    c.eq("duplicate rank: message", "both traces are rank 0 (from the metadata)" in r.stderr, True)
    r = subprocess.run([fpscope, "summary", os.path.join(dup, "none-*.fpst")], capture_output=True,
                       text=True)
    c.eq("empty glob: exit", r.returncode, 2)
    c.eq("empty glob: message", "no file matches this pattern" in r.stderr, True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fpscope", required=True)
    ap.add_argument("--keep", default="", help="keep the traces in this directory")
    args = ap.parse_args()
    if not have_torch():
        print("skipped: /usr/bin/python3 has no torch.distributed")
        return 77
    c = Checker()
    with tempfile.TemporaryDirectory(prefix="fpscope_ranks.") as tmp:
        root = args.keep or tmp
        check_run(c, args.fpscope, root, 2, fault_step=3, fault_rank=1)
        check_run(c, args.fpscope, root, 4, fault_step=2, fault_rank=2)
        check_errors(c, args.fpscope, root)
    print(f"{c.failures} failures")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
