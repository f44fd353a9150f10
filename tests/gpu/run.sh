#!/usr/bin/env bash
# GPU acceptance test of the probe's CUDA path. Runs as is on a machine with an NVIDIA GPU, the
# CUDA toolkit and the project's build dependencies; needs no network:
#   tests/gpu/run.sh [build-dir]     (default: build-gpu-accept/ in the repository)
# FPSCOPE_GPU_BUILD=DIR uses an existing build instead (it must have fpscope, libfpscope_probe.so
# and cuda_mlp built: cmake --build DIR --target fpscope_probe fpscope cuda_mlp); nothing is
# configured or built then. PYTHON=... picks the interpreter with a CUDA-enabled PyTorch;
# FPSCOPE_CUDA_ARCHS=... the GPU architectures to build for (default: native, this machine's).
#
# Records samples/cuda_mlp (FP16, planted overflow, NVTX-named GEMMs and steps), a PyTorch AMP
# run (GradScaler, FP16), a torch.cuda.graph capture (capture_check.py) and torch.profiler next to
# the probe, started after it and before it (profiler_check.py) under `fpscope record`,
# checks the traces against values the programs computed (GEMM count and names, planted overflow
# step, loss-scale series == scaler.get_scale() per step, amax == torch), checks that cuda_mlp and
# the capture print the same bits with and without the probe, and prints the probe's overhead
# (cuda_mlp; a GPT-2-small-shaped BF16 run, gpt_small.py). Exit 0 pass, 1 fail, 77 no GPU (skipped).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PY=${PYTHON:-python3}

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "tests/gpu/run.sh: no NVIDIA GPU on this machine (nvidia-smi -L failed): skipped" >&2
  exit 77
fi
nvidia-smi -L

if [ -n "${FPSCOPE_GPU_BUILD:-}" ]; then
  build=$(cd "$FPSCOPE_GPU_BUILD" && pwd)
  echo "using the existing build $build"
else
  build=${1:-$repo/build-gpu-accept}
  mkdir -p "$build"
  # Configure errors are shown, never hidden: the log is printed when cmake fails.
  # Kernels for this machine's GPU(s) ("native"); FPSCOPE_CUDA_ARCHS=90 etc. overrides.
  if ! cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFPSCOPE_BUILD_TESTS=OFF \
      -DFPSCOPE_BUILD_BENCH=OFF -DFPSCOPE_BUILD_GUI=OFF \
      -DCMAKE_CUDA_ARCHITECTURES="${FPSCOPE_CUDA_ARCHS:-native}" >"$build/configure.log" 2>&1; then
    cat "$build/configure.log"
    echo "FAIL: cmake configure failed (log above: $build/configure.log)"
    exit 1
  fi
  grep -q "fpscope: CUDA parts ON" "$build/configure.log" || {
    cat "$build/configure.log"; echo "FAIL: CUDA parts are OFF in this configuration"; exit 1; }
  cmake --build "$build" -j"$(nproc)" --target fpscope_probe fpscope cuda_mlp stats_kernel_check
fi
fpscope=$build/bin/fpscope
probe=$build/lib/libfpscope_probe.so
mlp=$build/samples/cuda_mlp/cuda_mlp
for f in "$fpscope" "$probe" "$mlp"; do
  [ -e "$f" ] || { echo "FAIL: $f is missing in the build"; exit 1; }
done
out=$build/gpu-accept
mkdir -p "$out"
# The preloaded probe is also the NVTX injection (NVTX ranges name tensors and mark steps).
export FPSCOPE_PROBE=$probe NVTX_INJECTION64_PATH=$probe

# Wall seconds of a command (stdout discarded), without bc.
secs() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

# 0. The statistics kernel against the host pass on the same data, and its bandwidth.
if [ -x "$build/bin/stats_kernel_check" ]; then
  "$build/bin/stats_kernel_check" || { echo "FAIL: stats_kernel_check"; exit 1; }
else
  echo "note: $build/bin/stats_kernel_check not built: kernel check skipped"
fi

# 1. cuda_mlp, FP16 with a planted overflow, every step recorded; output bit-identical.
steps=60
plant=30
"$mlp" --dtype fp16 --steps $steps --plant-overflow $plant >"$out/mlp.plain.txt"
"$mlp" --dtype fp16 --steps $steps --plant-overflow $plant >"$out/mlp.plain2.txt"
cmp "$out/mlp.plain.txt" "$out/mlp.plain2.txt" ||
  { echo "FAIL: cuda_mlp is not deterministic by itself (two plain runs differ)"; exit 1; }
"$fpscope" record -o "$out/mlp.fpst" --every 1 -- "$mlp" --dtype fp16 --steps $steps \
  --plant-overflow $plant >"$out/mlp.probed.txt"
cmp "$out/mlp.plain.txt" "$out/mlp.probed.txt" ||
  { echo "FAIL: the probe changed cuda_mlp's output (diff $out/mlp.plain.txt $out/mlp.probed.txt)"; exit 1; }
echo "ok: cuda_mlp output bit-identical with and without the probe ($steps steps, %.9g)"
"$fpscope" summary "$out/mlp.fpst" --json >"$out/mlp.json"
"$PY" "$here/check_traces.py" mlp "$out/mlp.json" $steps $plant "$out/mlp.plain.txt"

# 1b. Block-scaled formats on the device path (issue 19 item 2): with FPSCOPE_FORMATS=all every
# cuBLAS operand gets a block section from launch_block_stats, counted along the host hooks' axis.
FPSCOPE_FORMATS=all "$fpscope" record -o "$out/mlp.blocks.fpst" --every 1 -- "$mlp" --dtype fp16 \
  --steps 5 >/dev/null
"$fpscope" summary "$out/mlp.blocks.fpst" --json >"$out/mlp.blocks.json"
"$PY" "$here/check_blocks.py" "$out/mlp.blocks.json" --column-major-d

# 2. PyTorch AMP (GradScaler, FP16).
if ! "$PY" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "FAIL: no CUDA-enabled PyTorch for $PY (set PYTHON=...)"
  exit 1
fi
"$fpscope" record -o "$out/amp.fpst" --every 1 --no-python-hooks -- "$PY" "$here/amp_train.py" \
  --expect "$out/amp.expect.json"
"$fpscope" summary "$out/amp.fpst" --json >"$out/amp.json"
"$PY" "$here/check_traces.py" amp "$out/amp.json" "$out/amp.expect.json"

# 2b. Stream capture while recording: torch.cuda.graph (global capture mode) of a forward and
# backward, replayed, at every step sampled; the capture must stay valid and the output equal.
"$PY" "$here/capture_check.py" >"$out/cap.plain.txt" 2>/dev/null ||
  { echo "FAIL: capture_check.py fails without the probe"; exit 1; }
"$fpscope" record -o "$out/cap.fpst" --every 1 -- "$PY" "$here/capture_check.py" \
  >"$out/cap.probed.txt" 2>"$out/cap.err" ||
  { cat "$out/cap.err"; echo "FAIL: the probe broke a CUDA graph capture (log above)"; exit 1; }
cmp "$out/cap.plain.txt" "$out/cap.probed.txt" ||
  { echo "FAIL: the probe changed capture_check.py's output"; exit 1; }
echo "ok: torch.cuda.graph capture and replays unaffected by the probe (output bit-identical)"

# 2c. A profiler next to the probe (issue 16 item 7): torch.profiler started after the probe took
# CUPTI (the probe must hand it over) and before (the probe must leave it). The profiler must see
# the program's kernels as it does without the probe, and the output must stay the same.
for mode in late first; do
  flag=""
  [ "$mode" = first ] && flag="--profile-first"
  "$PY" "$here/profiler_check.py" $flag >"$out/prof.$mode.plain.txt" 2>/dev/null ||
    { echo "FAIL: profiler_check.py $flag fails without the probe"; exit 1; }
  "$fpscope" record -o "$out/prof.$mode.fpst" --every 1 -- "$PY" "$here/profiler_check.py" $flag \
    >"$out/prof.$mode.probed.txt" 2>"$out/prof.$mode.err" ||
    { cat "$out/prof.$mode.err"; echo "FAIL: profiler_check.py $flag fails under the probe"; exit 1; }
  cmp <(grep ^loss "$out/prof.$mode.plain.txt") <(grep ^loss "$out/prof.$mode.probed.txt") ||
    { echo "FAIL: the probe changed profiler_check.py $flag's losses"; exit 1; }
  want=$(awk '/^profiler_kernels/ { print $2, $4 }' "$out/prof.$mode.plain.txt")
  got=$(awk '/^profiler_kernels/ { print $2, $4 }' "$out/prof.$mode.probed.txt")
  [ "$want" = "$got" ] ||
    { echo "FAIL: torch.profiler ($mode) saw kernels/GEMMs '$got' under the probe, '$want' without"; exit 1; }
  echo "ok: torch.profiler started $mode: the same $want kernels/GEMMs with and without the probe"
done

# 3. Overhead at FPSCOPE_EVERY=10 and 1 (one run each, after a warm-up).
"$mlp" --dtype bf16 --steps 200 >/dev/null
base=$(secs "$mlp" --dtype bf16 --steps 200 --batch 4096)
ev10=$(secs "$fpscope" record -o "$out/ovh.fpst" --every 10 -- "$mlp" --dtype bf16 --steps 200 --batch 4096)
ev1=$(secs "$fpscope" record -o "$out/ovh1.fpst" --every 1 -- "$mlp" --dtype bf16 --steps 200 --batch 4096)
echo "overhead cuda_mlp bf16 200 steps batch 4096: plain ${base}s, every=10 ${ev10}s" \
  "($(ratio "$ev10" "$base")x), every=1 ${ev1}s ($(ratio "$ev1" "$base")x)"
# 4. A GPT-2-small-shaped BF16 run (torch.nn modules, 50 timed steps): ms per step plain and
# recorded at the default sampling (every 10) with the Python integration.
plain_ms=$("$PY" "$here/gpt_small.py" 2>/dev/null | awk '/^gpt_small:/ { print $5 }')
probe_ms=$("$fpscope" record -o "$out/gpt.fpst" --every 10 -- "$PY" "$here/gpt_small.py" \
  2>/dev/null | awk '/^gpt_small:/ { print $5 }')
echo "overhead gpt_small bf16 (12x768, batch 8x1024): plain ${plain_ms} ms/step," \
  "every=10 ${probe_ms} ms/step ($(ratio "$probe_ms" "$plain_ms")x)"
echo "PASS"
