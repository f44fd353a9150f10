#!/usr/bin/env bash
# Rank-set benchmark: `fpscope summary DIR` on N synthetic rank traces of R records each
# (fpscope_gen_rank_traces), for each N given: wall time, CPU time (user + system) and max RSS
# (GNU time), the load average before and after. Target (issue 20): 64 ranks x 100k records
# summarized in <= 10 s and <= 2 GiB.
#   bench/ranks/run_bench.sh [BUILD_DIR] [RECORDS_PER_RANK (100000)] [RANKS... (16 32 64)]
set -euo pipefail
build="${1:-$(cd "$(dirname "$0")/../.." && pwd)/build}"
records="${2:-100000}"
shift $(($# > 2 ? 2 : $#))
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(16 32 64)
build="$(cd "$build" && pwd)"
bin="$build/bin"
for exe in fpscope fpscope_gen_rank_traces; do
  [ -x "$bin/$exe" ] || { echo "missing $bin/$exe: cmake --build $build --target $exe"; exit 2; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
measure() {  # label, command...
  local label="$1"; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" "$@" >/dev/null
  read -r wall user sys rss < "$work/time.txt"
  printf '%-40s %7.2f s wall %7.2f s CPU  %7.1f MiB max RSS\n' "$label" "$wall" \
    "$(echo "$user + $sys" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) cores, $(uname -m))"
for n in "${counts[@]}"; do
  rm -rf "$work/run" && mkdir "$work/run"
  measure "generate $n ranks x $records records" "$bin/fpscope_gen_rank_traces" "$work/run" "$n" "$records"
  echo "traces: $(du -sh "$work/run" | cut -f1)"
  measure "summary ($n ranks)" "$bin/fpscope" summary "$work/run"
  measure "summary --json ($n ranks)" "$bin/fpscope" summary "$work/run" --json
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
