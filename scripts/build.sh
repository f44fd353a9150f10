#!/usr/bin/env bash
# Configures (once) and builds fpscope into ${FPSCOPE_BUILD_DIR:-build}. Incremental: a re-run with
# nothing changed does no work. Extra arguments go to the CMake configure step (after ours, so they
# win). A development build: RelWithDebInfo with warnings as errors (FPSCOPE_WERROR=ON), whatever
# the build type's default (a user's plain Release configure only warns; see CMakeLists.txt).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FPSCOPE_BUILD_DIR:-$root/build}"
if [ ! -f "$build/CMakeCache.txt" ] || [ $# -gt 0 ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFPSCOPE_WERROR=ON "$@" \
    >"$build.configure.log" 2>&1 \
    || { cat "$build.configure.log"; echo "[build] configure failed (log: $build.configure.log)"; exit 2; }
fi
cmake --build "$build" -j"$(nproc)"
