#!/usr/bin/env bash
# The README's first command, the main job: install what is missing, build (incrementally), record
# the bundled PyTorch CPU training sample under the probe, write an HTML and a Markdown report, and
# open the viewer on the trace (with a display) or write its screenshot (without one).
# Output goes to ${FPSCOPE_OUT:-out/}.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
build="${FPSCOPE_BUILD_DIR:-$root/build}"
FPSCOPE_BUILD_DIR="$build" "$root/scripts/build.sh"
out="${FPSCOPE_OUT:-$root/out}"
mkdir -p "$out"

cli="$build/bin/fpscope"
gui="$build/bin/fpscope-gui"
if [ ! -x "$cli" ] || [ ! -f "$build/lib/libfpscope_probe.so" ]; then
  echo "[quickstart] built: $(find "$build" -maxdepth 3 -type f -executable -name 'test_*' | wc -l) test programs."
  echo "[quickstart] the recorder (probe + fpscope CLI) is not part of this build yet."
  exit 0
fi

# Debian's python3 carries python3-torch; the first python3 on PATH may be another one.
py=/usr/bin/python3
trace="$out/sample.fpst"
echo "[quickstart] recording samples/pytorch_cpu/train.py -> $trace"
"$cli" record -o "$trace" -- "$py" "$root/samples/pytorch_cpu/train.py"
"$cli" report "$trace" -o "$out/report.html"
"$cli" report "$trace" -o "$out/report.md"
echo "[quickstart] reports: $out/report.html $out/report.md"
echo "[quickstart] the three most important findings:"
"$cli" summary "$trace" --rows 0 | awk '/^top findings/{f=1; next} f && n<3 && /^ *[0-9]+\./{print; n++}'

if [ -x "$gui" ]; then
  if [ -n "${DISPLAY:-}" ] && [ "${CI:-}" != "true" ]; then
    echo "[quickstart] opening the viewer on $trace"
    "$gui" "$trace"
  else
    shot="$out/viewer.png"
    if command -v xvfb-run >/dev/null; then
      xvfb-run -a -s "-screen 0 1600x1000x24" "$gui" "$trace" --screenshot "$shot" --frames 5
    else
      "$gui" "$trace" --screenshot "$shot" --frames 5
    fi
    echo "[quickstart] no display: viewer screenshot written to $shot"
  fi
fi
