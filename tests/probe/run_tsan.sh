#!/usr/bin/env bash
# ThreadSanitizer run of the probe's end-to-end tests (8 threads calling sgemm concurrently, fork,
# SIGKILL, ...): configures a TSan build of the probe and its test programs in $2 (a sub-folder of
# the main build) and runs the tests labelled tsan there. Exit code: CTest's.
# Usage: run_tsan.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src="$1"
build="$2"
cmake -S "$src" -B "$build" -DFPSCOPE_TSAN=ON -DFPSCOPE_ENABLE_CUDA=OFF -DFPSCOPE_BUILD_GUI=OFF \
  -DFPSCOPE_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j"$(nproc)" --target test_probe_e2e
# halt_on_error: a reported race fails the test program (and so the test), not just a log line.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
ctest --test-dir "$build" -L tsan --output-on-failure
