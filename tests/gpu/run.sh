#!/usr/bin/env bash
# GPU acceptance test of the probe's CUDA path. Runs as is on a machine with an NVIDIA GPU:
#   tests/gpu/run.sh [build-dir]        (default build-gpu-accept/ in the repository)
# Builds fpscope, records samples/cuda_mlp (FP16, planted overflow) and a PyTorch AMP run
# (GradScaler, FP16) under `fpscope record`, checks the traces against values the programs computed
# (GEMM count, planted overflow, loss-scale series == scaler.get_scale(), amax == torch) and prints
# the probe's overhead. Exit 0 pass, 1 fail, 77 no GPU (skipped).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-$repo/build-gpu-accept}
out=$build/gpu-accept
PY=${PYTHON:-python3}

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "tests/gpu/run.sh: no NVIDIA GPU on this machine (nvidia-smi -L failed): skipped" >&2
  exit 77
fi
nvidia-smi -L

cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target fpscope_probe fpscope cuda_mlp
fpscope=$build/analysis/cli/fpscope
[ -x "$fpscope" ] || fpscope=$(find "$build" -name fpscope -type f -perm -u+x | head -1)
mlp=$build/samples/cuda_mlp/cuda_mlp
mkdir -p "$out"

secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }

# 1. cuda_mlp, FP16 with a planted overflow, every step recorded.
steps=60
"$mlp" --dtype fp16 --steps $steps --plant-overflow 30 >"$out/mlp.plain.txt"
"$fpscope" record -o "$out/mlp.fpst" --every 1 -- "$mlp" --dtype fp16 --steps $steps \
  --plant-overflow 30 >"$out/mlp.probed.txt"
cmp "$out/mlp.plain.txt" "$out/mlp.probed.txt" || { echo "FAIL: probe changed cuda_mlp's output"; exit 1; }
echo "ok: cuda_mlp output bit-identical with and without the probe"
"$fpscope" summary "$out/mlp.fpst" --json >"$out/mlp.json"
$PY "$here/check_traces.py" mlp "$out/mlp.json" $steps

# 2. PyTorch AMP (GradScaler, FP16).
if $PY -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  "$fpscope" record -o "$out/amp.fpst" --every 1 -- $PY "$here/amp_train.py" --expect "$out/amp.expect.json"
  "$fpscope" summary "$out/amp.fpst" --json >"$out/amp.json"
  $PY "$here/check_traces.py" amp "$out/amp.json" "$out/amp.expect.json"
else
  echo "FAIL: no CUDA-enabled PyTorch for $PY (set PYTHON=...)"; exit 1
fi

# 3. Overhead at the default sampling and at FPSCOPE_EVERY=10 (one run each, after a warm-up).
"$mlp" --dtype bf16 --steps 200 >/dev/null
base=$(secs "$mlp" --dtype bf16 --steps 200 --batch 4096)
ev10=$(secs "$fpscope" record -o "$out/ovh.fpst" --every 10 -- "$mlp" --dtype bf16 --steps 200 --batch 4096)
ev1=$(secs "$fpscope" record -o "$out/ovh1.fpst" --every 1 -- "$mlp" --dtype bf16 --steps 200 --batch 4096)
echo "overhead cuda_mlp bf16 200 steps batch 4096: plain ${base}s, every=10 ${ev10}s" \
     "($(echo "scale=3; $ev10 / $base" | bc)x), every=1 ${ev1}s ($(echo "scale=3; $ev1 / $base" | bc)x)"
echo "PASS"
