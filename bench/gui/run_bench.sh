#!/usr/bin/env bash
# GUI benchmark (not a test): fpscope-gui frame times with a 1M-record trace under Xvfb and Mesa's
# software OpenGL (llvmpipe), the setting of docs/design.md's target "GUI median frame <= 16 ms with 1M
# records". Results and the exact command: docs/benchmarks/gui.md.
#
#   bench/gui/run_bench.sh [BUILD_DIR] [STEPS] [FRAMES]
#
# The trace comes from fpscope_gui_gen_trace (tests/gui/gen_trace.cpp: TraceWriter plus the host
# statistics pass on real FP32 tensors): STEPS steps x (3 x 16 layers + 2) observations = 1,000,000
# records for the default 20000 steps, 256 elements per tensor, plus loss-scale and weight-update
# records. Set FPSCOPE_BENCH_TRACE=path to reuse a trace (it is written there if missing).
#
# Two runs of the real binary at 1600x1000, each measuring FRAMES frames (default 300) once the
# trace is loaded and analysed:
#   static    nothing moves (what a user looking at the window gets each frame)
#   interact  --bench-interact: every frame replays 3 steps and zooms or pans the step axis, so
#             every step-indexed panel changes and a new heat raster is computed (off the UI
#             thread) as fast as the last one lands
#   ranks     only with FPSCOPE_BENCH_RANKS=N (N >= 2): a rank set of N generated rank traces
#             (gen_trace --rank r --world-size N --fault-rank 1, FPSCOPE_BENCH_RANK_STEPS steps
#             each, default 2000, 3 layers) opened as a directory, with --bench-interact: the
#             ranks x steps raster is recomputed every frame on top of the interact work
# Each prints the median, p90 and max frame time (frame start to frame start, the rendering
# finished with glFinish), the medians of its parts (ui: building the ImGui frame on the UI
# thread; draw: llvmpipe rasterising it; swap: presenting to Xvfb) and the process CPU time per
# frame (all threads), which unlike wall time does not grow when other processes load the machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"  # absolute: the trace is generated from $work
steps="${2:-20000}"
frames="${3:-300}"
gui="$build/bin/fpscope-gui"
gen="$(find "$build" -name fpscope_gui_gen_trace -type f -perm -u+x 2>/dev/null | head -n1)"
[ -x "$gui" ] || { echo "missing $gui: cmake --build $build --target fpscope-gui"; exit 2; }
[ -n "$gen" ] || { echo "missing fpscope_gui_gen_trace: cmake --build $build --target fpscope_gui_gen_trace"; exit 2; }
command -v xvfb-run >/dev/null || { echo "xvfb-run not found (apt-get install xvfb xauth libgl1-mesa-dri)"; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
trace="${FPSCOPE_BENCH_TRACE:-$work/gui1m.fpst}"
if [ ! -s "$trace" ]; then
  echo "generating $trace ($steps steps x 50 tensors) ..."
  (cd "$work" && "$gen" "$trace" --steps "$steps" --layers 16 --elements 256)
fi
echo "trace: $trace, $(du -h "$trace" | cut -f1)"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "mesa: $(dpkg-query -W -f='${Version}' libgl1-mesa-dri 2>/dev/null || echo unknown)," \
     "LP_NUM_THREADS=${LP_NUM_THREADS:-default}"
for mode in static interact; do
  extra=()
  [ "$mode" = interact ] && extra=(--bench-interact)
  echo "load average before $mode: $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-9s ' "$mode"
  xvfb-run -a -s "-screen 0 1600x1000x24" "$gui" "$trace" --size 1600x1000 --frames "$frames" \
    --timeout 300 --screenshot "$work/$mode.png" --frame-times "$work/$mode.json" "${extra[@]}"
done
ranks="${FPSCOPE_BENCH_RANKS:-0}"
if [ "$ranks" -ge 2 ]; then
  rank_steps="${FPSCOPE_BENCH_RANK_STEPS:-2000}"
  mkdir -p "$work/ranks"
  echo "generating $ranks rank traces of $rank_steps steps ..."
  for ((r = 0; r < ranks; r++)); do
    "$gen" "$work/ranks/run-$r.fpst" --steps "$rank_steps" --rank "$r" --world-size "$ranks" \
      --fault-rank 1 --watch-extra 1 > /dev/null
  done
  echo "load average before ranks: $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-9s ' ranks
  xvfb-run -a -s "-screen 0 1600x1000x24" "$gui" "$work/ranks" --size 1600x1000 \
    --frames "$frames" --timeout 300 --screenshot "$work/ranks.png" \
    --frame-times "$work/ranks.json" --bench-interact
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
