// The block-scaled formats' statistics pass of the CUDA kernels (the fpscope_block_stats_* entries
// of kernels/cuda/stats_kernels.cu), step by step, __host__ __device__: the kernel runs these
// steps with device atomics and warp shuffles, its CPU model (kernels/src/stats_kernel_host.cpp)
// with sequential stand-ins, so there is one source of the per-group work.
//
// Work decomposition: one thread per group of 32 consecutive elements of a line (MX: one block,
// NVFP4: two), grid-stride over every line of every matrix of the batch; each block's statistics
// are block_numerics.h's block_stats_of, exactly as the host pass's scalar path computes them.
// Runs after the tensor statistics on the same slot: NVFP4's tensor scale comes from its amax.
// Counts are summed per thread (BlockLane), then per warp (shuffle tree), then one atomic per warp
// and field (flush_block_lane).
#pragma once

#include <cstdint>

#include "fpscope/block_numerics.h"
#include "fpscope/numerics.h"
#include "fpscope/stats.h"

namespace fpscope {

// One thread's (then one warp's) block counts: [f][0..7] blocks, elements, flushed, saturated,
// zero blocks, scale underflow, scale overflow, NaN scale; [f][0..1] sum_err2, sum_x2.
struct BlockLane {
  uint64_t v[kNumBlockFormats][8];
  double d[kNumBlockFormats][2];
};

FPSCOPE_HD inline void add_block(BlockLane& l, int f, const BlockStats& b, int n) {
  l.v[f][0] += 1;
  l.v[f][1] += b.nan_scale ? 0u : static_cast<uint32_t>(n);
  l.v[f][2] += b.flushed;
  l.v[f][3] += b.saturated;
  l.v[f][4] += b.zero_block;
  l.v[f][5] += b.scale_underflow;
  l.v[f][6] += b.scale_overflow;
  l.v[f][7] += b.nan_scale;
  l.d[f][0] += b.sum_err2;
  l.d[f][1] += b.sum_x2;
}

// a += b (one step of the warp's shuffle tree).
FPSCOPE_HD inline void merge_block_lane(BlockLane& a, const BlockLane& b) {
  for (int f = 0; f < kNumBlockFormats; ++f) {
    for (int k = 0; k < 8; ++k) a.v[f][k] += b.v[f][k];
    a.d[f][0] += b.d[f][0];
    a.d[f][1] += b.d[f][1];
  }
}

// The pass over a (batched) rows x cols view, blocks along `axis`.
struct BlockPassGeometry {
  bool rows_axis;
  uint64_t lines, len, groups, total;  // total: groups over all lines of all matrices
};
FPSCOPE_HD inline BlockPassGeometry make_block_pass_geometry(uint64_t rows, uint64_t cols,
                                                             uint64_t batch, BlockAxis axis) {
  BlockPassGeometry g;
  g.rows_axis = axis == BlockAxis::Rows;
  g.lines = g.rows_axis ? cols : rows;
  g.len = g.rows_axis ? rows : cols;
  g.groups = (g.len + 31) / 32;
  g.total = batch * g.lines * g.groups;
  return g;
}

// Grid of the pass: one thread per group, at most 4096 blocks (threads_per_block: the launch's
// kStatsThreads).
FPSCOPE_HD inline unsigned block_pass_blocks(uint64_t total_groups, unsigned threads_per_block) {
  const uint64_t want = (total_groups + threads_per_block - 1) / threads_per_block;
  return static_cast<unsigned>(want < 4096 ? want : 4096);
}

// What thread 0 of block 0 writes into the slot's header (mask, axis, NVFP4's tensor scale).
FPSCOPE_HD inline void write_block_header(TensorStats* slot, uint32_t mask, BlockAxis axis,
                                          float s_enc) {
  slot->blocks.mask = mask;
  slot->blocks.axis = axis;
  slot->blocks.nvfp4_tensor_scale = (mask >> (kNumBlockFormats - 1) & 1u) ? s_enc : 1.0f;
}

// Group g of the pass: its elements decoded, then every format of `mask` block by block into
// acc, and one scale_hist count per block through at.add(uint64_t*, 1).
template <Format F, class T, class Atomics>
FPSCOPE_HD inline void block_group_stats(const T* data, const BlockPassGeometry& geo, uint64_t ld,
                                         uint64_t batch_stride, uint32_t mask, float s_enc,
                                         uint64_t g, BlockLane& acc, TensorStats* slot,
                                         Atomics& at) {
  const uint64_t b = g / (geo.lines * geo.groups), r = g % (geo.lines * geo.groups);
  const uint64_t line = r / geo.groups, k0 = (r % geo.groups) * 32;
  const int n = static_cast<int>(geo.len - k0 < 32 ? geo.len - k0 : 32);
  float x[32];
  const T* base = data + b * batch_stride;
  for (int k = 0; k < n; ++k) {
    const uint64_t i = geo.rows_axis ? k0 + k : line, j = geo.rows_axis ? line : k0 + k;
    x[k] = decode_storage_t<F>(base[i + j * ld]);
  }
  for (int f = 0; f < kNumBlockFormats; ++f) {
    if (!(mask >> f & 1u)) continue;
    const int bs = block_size_of(f);
    for (int k = 0; k < n; k += bs) {
      const int m = n - k < bs ? n - k : bs;
      const BlockStats st = block_stats_of(f, x + k, m, s_enc);
      add_block(acc, f, st, m);
      at.add(&slot->blocks.scale_hist[f][block_scale_bin(st.scale)], uint64_t{1});
    }
  }
}

// A warp's merged counts (lane 0's after the shuffle tree) into the slot.
template <class Atomics>
FPSCOPE_HD inline void flush_block_lane(TensorStats* slot, uint32_t mask, const BlockLane& acc,
                                        Atomics& at) {
  for (int f = 0; f < kNumBlockFormats; ++f) {
    if (!(mask >> f & 1u)) continue;
    BlockFormatCounts& c = slot->blocks.fmt[f];
    uint64_t* dst[8] = {&c.blocks,      &c.elements,        &c.flushed,        &c.saturated,
                        &c.zero_blocks, &c.scale_underflow, &c.scale_overflow, &c.nan_scale};
    for (int k = 0; k < 8; ++k) at.add(dst[k], acc.v[f][k]);
    at.add(&c.sum_err2, acc.d[f][0]);
    at.add(&c.sum_x2, acc.d[f][1]);
  }
}

}  // namespace fpscope
