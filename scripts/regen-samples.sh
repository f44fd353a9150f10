#!/usr/bin/env bash
# Re-records the traces kept in samples/ (the viewer and the docs use them) with the probe built
# in ${FPSCOPE_BUILD_DIR:-build}/ (scripts/build.sh first). Deterministic programs: the same
# statistics every time; timestamps and host differ.
#   samples/pytorch_cpu/sample.fpst          FP32 training, raw-amount inputs: what FP16/BF16/FP8
#                                            would do to every GEMM operand (the prediction)
#   samples/pytorch_cpu/fp16_amp.fpst        the same model in FP16 storage with a loss scaler:
#                                            Inf/NaN every step, the scale collapses (confirmed)
#   samples/pytorch_cpu/fp16_amp_fixed.fpst  FP16 again with the inputs normalized: trains; the
#                                            scaler's growth/backoff sawtooth, master-weight loss
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FPSCOPE_BUILD_DIR:-$root/build}"
cli="$build/bin/fpscope"
[ -x "$cli" ] || { echo "regen-samples: $cli not built (run scripts/build.sh)"; exit 2; }
py=/usr/bin/python3  # Debian's python3 carries python3-torch
s="$root/samples/pytorch_cpu"
"$cli" record -o "$s/sample.fpst" -- "$py" "$s/train.py" --steps 100 --quiet
"$cli" record -o "$s/fp16_amp.fpst" --every 5 -- "$py" "$s/train_fp16_amp.py" --steps 40 >/dev/null
"$cli" record -o "$s/fp16_amp_fixed.fpst" --every 5 -- "$py" "$s/train_fp16_amp.py" --steps 60 \
  --normalize >/dev/null
ls -l "$s"/*.fpst
