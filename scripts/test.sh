#!/usr/bin/env bash
# The README's test command: install what is missing, build from scratch in build-test/, run every
# test through CTest. Subsets: scripts/test.sh -L unit   (labels: unit, e2e, gui, slow, fuzz, tsan)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
build="${FPSCOPE_TEST_BUILD_DIR:-$root/build-test}"
# From scratch every time (what CI does); FPSCOPE_TEST_INCREMENTAL=1 keeps the folder for quick
# re-runs while developing.
if [ "${FPSCOPE_TEST_INCREMENTAL:-0}" != "1" ] || [ "${CI:-}" = "true" ]; then rm -rf "$build"; fi
# build.sh configures a development build: warnings are errors here as in CI.
FPSCOPE_BUILD_DIR="$build" "$root/scripts/build.sh"
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 900 "$@"
