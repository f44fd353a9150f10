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
# Relinked every time: gtest_discover_tests lists the tests (and their labels) after a link, and
# a list written by an older configure would otherwise stay.
rm -f "$build/tests/probe/test_probe_e2e"
cmake --build "$build" -j"$(nproc)" --target test_probe_e2e
# halt_on_error: a reported race fails the test program (and so the test), not just a log line.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
# --no-tests=error: no test labelled tsan is a failure, not a pass.
# Not the ForkChild tests (the regular build runs both): a child of a multi-threaded fork is not
# something TSan's runtime supports.
#  - ForkChildGetsItsOwnTraceWithPid: its child records on, starting threads in the child, which
#    TSan refuses ("starting new threads after multi-threaded fork is not supported"; with
#    die_after_fork=0 its own registry fails: "dup thread with used id").
#  - ForkChildWithoutPidDoesNotTouchTheParentsTrace: its child hung at exit (stop 21, a fresh
#    clone's CI run, 14 minutes) inside TSan's own allocator. The stack was thread-local
#    destructors -> operator delete -> SizeClassAllocator64::ReturnToAllocator ->
#    Mutex::Lock -> FutexWait: a lock of the runtime's allocator, held at the fork by the
#    parent's other thread (the statistics helper). Timing-dependent: earlier runs passed.
ctest --test-dir "$build" -L tsan -E ForkChild --no-tests=error --output-on-failure
