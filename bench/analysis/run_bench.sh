#!/usr/bin/env bash
# Analysis benchmark: `fpscope summary` and `fpscope report` on a 1M-record synthetic trace written
# with TraceWriter (fpscope_gen_trace). Prints wall time and max RSS of each command, measured in
# this one run (GNU time). Target (DESIGN.md): summary and report <= 3 s each on 1M records.
#   bench/analysis/run_bench.sh [BUILD_DIR] [RECORDS]
set -euo pipefail
build="${1:-$(cd "$(dirname "$0")/../.." && pwd)/build}"
records="${2:-1000000}"
bin="$build/bin"
for exe in fpscope fpscope_gen_trace; do
  [ -x "$bin/$exe" ] || { echo "missing $bin/$exe: cmake --build $build --target $exe"; exit 2; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
measure() {  # label, command...
  local label="$1"; shift
  /usr/bin/time -f "%e %M" -o time.txt "$@" >/dev/null
  read -r wall rss < time.txt
  printf '%-34s %8.2f s  %9.1f MiB max RSS\n' "$label" "$wall" "$(echo "$rss / 1024" | bc -l)"
}
measure "generate ($records records)" "$bin/fpscope_gen_trace" run.fpst "$records" 64
echo "trace: $(du -h run.fpst | cut -f1)  ($(nproc) cores, $(uname -m))"
measure "summary (text)" "$bin/fpscope" summary run.fpst
measure "summary --json" "$bin/fpscope" summary run.fpst --json
measure "summary --json --fp8-history 16" "$bin/fpscope" summary run.fpst --json --fp8-history 16
measure "summary --json --no-whatif" "$bin/fpscope" summary run.fpst --json --no-whatif
measure "report -o report.html" "$bin/fpscope" report run.fpst -o report.html
measure "report -o report.md" "$bin/fpscope" report run.fpst -o report.md
measure "export --format csv" "$bin/fpscope" export run.fpst --format csv -o run.csv
measure "export --format sqlite" "$bin/fpscope" export run.fpst --format sqlite -o run.sqlite
echo "report.html: $(du -h report.html | cut -f1)"
