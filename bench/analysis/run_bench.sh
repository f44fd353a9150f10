#!/usr/bin/env bash
# Analysis benchmark: `fpscope summary` and `fpscope report` on a 1M-record synthetic trace written
# with TraceWriter (fpscope_gen_trace). Prints wall time, CPU time (user + system: what the
# command cost when the machine is shared) and max RSS of each command, measured in this one run
# (GNU time), and the load average before and after.
# Target (docs/design.md): summary and report <= 3 s each on 1M records.
#   bench/analysis/run_bench.sh [BUILD_DIR] [RECORDS] [BINS_PER_RECORD (35)]
set -euo pipefail
build="${1:-$(cd "$(dirname "$0")/../.." && pwd)/build}"
records="${2:-1000000}"
bins="${3:-35}"
build="$(cd "$build" && pwd)"
bin="$build/bin"
for exe in fpscope fpscope_gen_trace; do
  [ -x "$bin/$exe" ] || { echo "missing $bin/$exe: cmake --build $build --target $exe"; exit 2; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
measure() {  # label, command...: wall time, CPU time (user + system), max RSS
  local label="$1"; shift
  /usr/bin/time -f "%e %U %S %M" -o time.txt "$@" >/dev/null
  read -r wall user sys rss < time.txt
  printf '%-34s %7.2f s wall %7.2f s CPU  %7.1f MiB max RSS\n' "$label" "$wall" \
    "$(echo "$user + $sys" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
}
# The machine may be shared: say how loaded it was (1-minute load average before and after).
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) cores, $(uname -m))"
measure "generate ($records records, $bins bins)" "$bin/fpscope_gen_trace" run.fpst "$records" 64 "$bins"
echo "trace: $(du -h run.fpst | cut -f1)"
measure "summary (text)" "$bin/fpscope" summary run.fpst
measure "summary --json" "$bin/fpscope" summary run.fpst --json
measure "summary --json --fp8-history 16" "$bin/fpscope" summary run.fpst --json --fp8-history 16
measure "summary --json --no-whatif" "$bin/fpscope" summary run.fpst --json --no-whatif
measure "report -o report.html" "$bin/fpscope" report run.fpst -o report.html
measure "report -o report.md" "$bin/fpscope" report run.fpst -o report.md
measure "export --format csv" "$bin/fpscope" export run.fpst --format csv -o run.csv
measure "export --format sqlite" "$bin/fpscope" export run.fpst --format sqlite -o run.sqlite
echo "report.html: $(du -h report.html | cut -f1)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
