#!/usr/bin/env bash
# Writes the golden outputs of the `fpscope` CLI on a rank set (issue 20): a generated run of 4
# ranks with every cross-rank finding planted (tests/ranks/gen_fault_ranks.cpp, deterministic)
# and its healthy twin. `diff` of the two runs (text, Markdown, JSON), `export` of the faulty
# run (CSV; JSONL of one tensor), `summary` of it (text). Rebuilds nothing.
#   tests/golden/update-golden-ranks.sh FPSCOPE GEN [OUT_DIR]
#     FPSCOPE  the fpscope binary (e.g. build/bin/fpscope)
#     GEN      fpscope_gen_fault_ranks (e.g. build/bin/fpscope_gen_fault_ranks)
#     OUT_DIR  where to write (default tests/golden/ranks_expected: accept today's output)
# tests/golden/check_golden_ranks.sh runs this into a temporary folder and diffs it with the
# expected files. Deterministic: the traces are generated, commands run in their folder with
# relative paths, the summary at a fixed width.
set -euo pipefail
[ $# -ge 2 ] && [ $# -le 3 ] || {
  echo "usage: $0 FPSCOPE GEN [OUT_DIR]" >&2
  exit 2
}
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
fpscope="$(abs "$1")"
gen="$(abs "$2")"
for b in "$fpscope" "$gen"; do
  [ -x "$b" ] || {
    echo "update-golden-ranks: $b is not an executable (build it first)" >&2
    exit 2
  }
done
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${3:-$root/tests/golden/ranks_expected}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/fpscope_golden_ranks.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir healthy faulty
"$gen" healthy healthy
"$gen" faulty faulty

# run DEST WANT_RC CMD...: CMD's stdout into DEST; another exit code names the command.
run() {
  local dest="$1" want="$2" rc=0
  shift 2
  "$@" >"$dest" 2>"$work/stderr" || rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "update-golden-ranks: exit $rc (want $want): $*" >&2
    cat "$work/stderr" >&2
    exit 1
  fi
}

run "$out/diff.txt" 1 "$fpscope" diff healthy faulty
run "$work/diff.stdout" 1 "$fpscope" diff 'healthy/run-*.fpst' faulty -o "$out/diff.md"
run "$out/diff.json" 1 "$fpscope" diff healthy faulty --json
run "$out/export.csv" 0 "$fpscope" export faulty --format csv -o -
run "$out/export_gemm1D.jsonl" 0 "$fpscope" export faulty --format jsonl -o - --tensor gemm#1.D
run "$out/summary.txt" 0 "$fpscope" summary faulty --width 80
echo "update-golden-ranks: wrote $out"
