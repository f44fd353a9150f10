// fpscope host (CPU) statistics pass: one pass over a tensor that fills the one accumulator
// (stats.h) with exactly what FP16, BF16, FP8 E4M3 and FP8 E5M2 would do to it. The per-element
// math is numerics.h, shared with the CUDA kernels.
#pragma once

#include <cstdint>

#include "fpscope/formats.h"
#include "fpscope/stats.h"

namespace fpscope {

struct StatsOptions {
  // Per-target scales s (kTargets order: BF16, FP16, E4M3, E5M2): each element is classified as
  // the cast of y = x * s. Must be finite and > 0.
  float scale[kNumTargets] = {1, 1, 1, 1};
  // Threads the pass may use (1: the calling thread only). Extra threads are only started for
  // tensors large enough to gain from them.
  unsigned threads = 1;
  // Block-scaled formats (stats.h BlockStatsSet, docs/metrics.md "Block-scaled formats"): bit f
  // measures kBlockFormats[f] (kAllBlockFormats: all six); 0 (the default) measures none and
  // leaves the pass as it was. Blocks run along block_axis, restarting at each line (a stored
  // column for Rows, a stored row for Cols); a line's last block may be partial.
  uint32_t block_formats = 0;
  BlockAxis block_axis = BlockAxis::Rows;
  // NVFP4's per-tensor scale is 6 * 448 / (the tensor's finite amax). < 0: unknown, and
  // compute_stats finds it first (compute_amax: one extra read-only pass) when NVFP4 is on.
  float tensor_amax = -1.0f;
};

// Statistics of the column-major 2-D view of `data`: element (i, j) at index i + j * ld, for
// i < rows, j < cols, ld >= rows (ld is ignored when cols <= 1). dtype: the storage format of
// the elements (FP32, BF16, FP16, E4M3, E5M2). *out is reset (fmt[i].scale = opt.scale[i]) and
// then filled; an empty view gives all-zero statistics. Thread-safe for distinct `out`. Each
// calling thread keeps one accumulator (~55 KiB, thread_local) that every call resets: a fresh
// one per call often came back from the allocator as new pages.
void compute_stats(const void* data, Format dtype, uint64_t rows, uint64_t cols, uint64_t ld,
                   const StatsOptions& opt, TensorStats* out);

// Largest finite |x| of the view (0 when there is none): what "current" FP8 scaling needs before
// the statistics pass (scaling.h). Same view contract as compute_stats.
float compute_amax(const void* data, Format dtype, uint64_t rows, uint64_t cols, uint64_t ld);

// A 64-bit fingerprint of the view's elements (their bytes, column by column; padding between
// columns is not read). Equal contents give equal fingerprints; different contents collide with
// probability ~2^-64. About a tenth of the statistics pass's cost: lets a caller that sees the
// same buffer again (the probe: a weight or an activation that the next GEMM reads too) reuse
// statistics it computed instead of recomputing them.
uint64_t content_fingerprint(const void* data, Format dtype, uint64_t rows, uint64_t cols,
                             uint64_t ld);

// The same statistics computed element by element with numerics.h's accumulate_element (no
// vectorization, no threads), and the block formats block by block with block_numerics.h's
// block_stats_of: the reference the fast pass is tested against.
void compute_stats_reference(const void* data, Format dtype, uint64_t rows, uint64_t cols,
                             uint64_t ld, const StatsOptions& opt, TensorStats* out);

// Which instruction set the fast pass selected on this CPU ("avx512", "avx2" or "baseline"),
// for benchmarks and logs.
const char* host_stats_isa();

}  // namespace fpscope
