#!/usr/bin/env bash
# Builds the libFuzzer target for read_trace with clang (ASan + UBSan) and runs it for a bounded
# time over a copy of the seed corpus plus the extreme corpus that GEN_EXTREME writes (its files up
# to 128 KiB: larger ones slow every mutation; run_extreme_corpus.sh reads them all). Exit 77
# (CTest: skipped) when clang's libFuzzer is missing.
# Usage: run_fuzz_reader.sh SOURCE_DIR WORK_DIR [SECONDS [GEN_EXTREME]]
set -euo pipefail
src=$1
work=$2
secs=${3:-20}
gen=${4:-}
cxx=${FPSCOPE_FUZZ_CXX:-clang++}
mkdir -p "$work"
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz: $cxx not found: skipped"
  exit 77
fi
probe_src="$work/probe.cpp"
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$probe_src"
if ! "$cxx" -fsanitize=fuzzer "$probe_src" -o "$work/probe" >/dev/null 2>&1; then
  echo "fuzz: $cxx -fsanitize=fuzzer does not link here: skipped"
  exit 77
fi
bin="$work/fuzz_read_trace"
# Rebuild only when a source is newer than the binary.
srcs=("$src/tests/fuzz/fuzz_read_trace.cpp" "$src"/traces/src/*.cpp "$src"/traces/src/*.h
      "$src"/traces/include/fpscope/*.h "$src"/kernels/include/fpscope/*.h)
need=0
[ -x "$bin" ] || need=1
for f in "${srcs[@]}"; do [ "$f" -nt "$bin" ] && need=1; done
if [ $need = 1 ]; then
  echo "fuzz: building $bin"
  "$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$src/traces/include" -I"$src/kernels/include" -I"$src/traces/src" \
    "$src/tests/fuzz/fuzz_read_trace.cpp" "$src"/traces/src/*.cpp -lzstd -lpthread -o "$bin"
fi
corpus="$work/corpus"
rm -rf "$corpus"
mkdir -p "$corpus"
cp "$src"/tests/fuzz/corpus/* "$corpus/"
if [ -n "$gen" ]; then
  extreme="$work/extreme"
  rm -rf "$extreme"
  mkdir -p "$extreme"
  "$gen" "$extreme"
  find "$extreme" -name '*.fpst' -size -129k -exec cp {} "$corpus/" \;
fi
# A decompression floor of 4 MiB (default 16) keeps every allocation under -malloc_limit_mb.
export FPSCOPE_FUZZ_FLOOR_BYTES=$((4 << 20))
# -rss_limit_mb: a hostile length that allocated without bound would trip it (a failure).
"$bin" -max_total_time="$secs" -rss_limit_mb=1024 -malloc_limit_mb=256 -timeout=10 \
  -print_final_stats=1 "$corpus"
