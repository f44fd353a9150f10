// The CUDA statistics kernel's steps (kernels/cuda/stats_kernels.cu), written once for the
// device and for the CPU model of the kernel (kernels/src/stats_sim.cpp) that tests run: element
// addressing, a thread's grid-stride pass, the warp tree reduction, the merge of a block's warps,
// the block's shared histogram and the merge of a block into the result slot. The device and
// the model differ only in two small policies:
//  - atomics A: add(uint32_t*, uint32_t) (shared histogram), add(uint64_t*, uint64_t),
//    add(double*, double), max_nonneg(float*, float), min(float*, float), max(float*, float)
//    (device: atomicAdd/atomicMax/atomicCAS; model: plain sequential operations);
//  - lane exchange W, one warp in SIMT style (see warp_reduce): device: each thread is one lane,
//    values move by __shfl_down_sync; model: an array of kWarpSize lanes (HostWarpLanes).
// Per-element math: numerics.h.
//
// Slot protocol (one launch_tensor_stats call):
//  1. init_slot_scalars: all zero, fmt[i].scale = scales[i], min = +Inf, max = -Inf (identities
//     of the CAS min/max below);
//  2. every block merges its partial (counts and sums added, amax by integer max on the
//     non-negative float bits, min/max by compare-and-swap) and its shared-memory histogram;
//  3. finalize_slot_scalars: min = max = 0 when no finite element was seen (as the host pass
//     leaves them), so device and host results are the same bytes up to the order of the double
//     sums.
#pragma once

#include <cstdint>

#include "fpscope/formats.h"
#include "fpscope/numerics.h"
#include "fpscope/stats.h"

namespace fpscope {

// ---- launch geometry -----------------------------------------------------------------------
inline constexpr unsigned kWarpSize = 32;
inline constexpr unsigned kStatsThreads = 256;
inline constexpr unsigned kStatsWarps = kStatsThreads / kWarpSize;
inline constexpr unsigned kStatsMaxBlocks = 1024;
static_assert(kStatsThreads % kWarpSize == 0, "whole warps per block");
FPSCOPE_HD inline unsigned stats_blocks(uint64_t n) {
  const uint64_t b = (n + kStatsThreads - 1) / kStatsThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > kStatsMaxBlocks ? kStatsMaxBlocks : b));
}

// ---- element addressing --------------------------------------------------------------------
// Address of the k-th element (column-major order) of a rows x cols view with leading
// dimension ld, in batch matrices batch_stride elements apart. Contiguous views skip the
// division.
struct ViewIndex {
  uint64_t rows, cols, ld, batch_stride, per_matrix;
  bool contiguous;  // ld == rows and batch_stride == rows * cols
  FPSCOPE_HD uint64_t offset(uint64_t k) const {
    if (contiguous) return k;
    const uint64_t m = k / per_matrix, r = k - m * per_matrix;
    const uint64_t j = r / rows, i = r - j * rows;
    return m * batch_stride + j * ld + i;
  }
};
FPSCOPE_HD inline ViewIndex make_view_index(uint64_t rows, uint64_t cols, uint64_t ld,
                                            uint64_t batch, uint64_t batch_stride) {
  ViewIndex v;
  v.rows = rows;
  v.cols = cols;
  v.ld = cols <= 1 ? rows : ld;
  v.per_matrix = rows * cols;
  v.batch_stride = batch <= 1 ? v.per_matrix : batch_stride;
  v.contiguous = v.ld == rows && v.batch_stride == v.per_matrix;
  return v;
}

// What one launch_tensor_stats_batched call reads: n elements (batch < 1 counts as 1).
struct StatsProblem {
  ViewIndex view;
  uint64_t n;
};
FPSCOPE_HD inline StatsProblem make_stats_problem(uint64_t rows, uint64_t cols, uint64_t ld,
                                                  uint64_t batch, uint64_t batch_stride) {
  const uint64_t nb = batch < 1 ? 1 : batch;
  return StatsProblem{make_view_index(rows, cols, ld, nb, batch_stride), rows * cols * nb};
}

// ---- slot protocol ---------------------------------------------------------------------------
FPSCOPE_HD inline void init_slot_scalars(StatsScalars& s, const float* scales) {
  for (int i = 0; i < kNumTargets; ++i) s.fmt[i].scale = scales[i];
  s.min = detail::u2f(kFp32InfBits);
  s.max = detail::u2f(kFp32NegInfBits);
}

FPSCOPE_HD inline void finalize_slot_scalars(StatsScalars& s) {
  if (s.finite_count() == 0) {
    s.min = 0.0f;
    s.max = 0.0f;
  }
}

// ---- one thread ------------------------------------------------------------------------------
// Thread `first` of the grid (stride = all threads of the grid) folds elements first,
// first + stride, ... of the problem into s and counts their bins in the block's histogram.
template <Format F, class T, class A>
FPSCOPE_HD void accumulate_thread(const T* data, const StatsProblem& p, uint64_t first,
                                  uint64_t stride, const ScaleSet& sc, StatsScalars& s,
                                  uint32_t* block_hist, A& at) {
  for (uint64_t k = first; k < p.n; k += stride) {
    const float x = decode_storage_t<F>(static_cast<uint32_t>(data[p.view.offset(k)]));
    const int bin = accumulate_scalars(s, x, sc);
    if (bin >= 0) at.add(&block_hist[bin], 1u);
  }
}

// ---- one warp --------------------------------------------------------------------------------
// Tree reduction of a warp's kWarpSize partials into lane 0's. Lane exchange policy W:
//   w.shuffle_down(off): every lane l receives the value that lane l + off holds (its own value
//                        when l + off >= kWarpSize, as __shfl_down_sync does);
//   w.for_each_lane(f):  calls f(lane, own, received) for the lanes that this executor runs
//                        (device: the calling thread's; host model: every lane, in order).
// Round `off` (16, 8, 4, 2, 1): lane l < kWarpSize - off merges what lane l + off held before
// the round, so lane 0 ends with all kWarpSize partials.
template <class W>
FPSCOPE_HD void warp_reduce(W& w) {
  for (unsigned off = kWarpSize / 2; off > 0; off >>= 1) {
    w.shuffle_down(off);
    w.for_each_lane([off](unsigned lane, StatsScalars& own, const StatsScalars& received) {
      if (lane + off < kWarpSize) own.merge_scalars(received);
    });
  }
}

// The host model's lane exchange: the kWarpSize lanes of one warp as an array.
struct HostWarpLanes {
  StatsScalars lane[kWarpSize];
  StatsScalars received[kWarpSize];
  void shuffle_down(unsigned off) {
    for (unsigned l = 0; l < kWarpSize; ++l) received[l] = lane[l + off < kWarpSize ? l + off : l];
  }
  template <class Fn>
  void for_each_lane(Fn f) {
    for (unsigned l = 0; l < kWarpSize; ++l) f(l, lane[l], received[l]);
  }
};

// ---- one block -------------------------------------------------------------------------------
// Thread t of a block of `threads` zeroes / flushes its share of the block's histogram.
FPSCOPE_HD inline void clear_block_hist(uint32_t* block_hist, unsigned t, unsigned threads) {
  for (unsigned b = t; b < static_cast<unsigned>(kHistBins); b += threads) block_hist[b] = 0;
}
template <class A>
FPSCOPE_HD void flush_block_hist(TensorStats* slot, const uint32_t* block_hist, unsigned t,
                                 unsigned threads, A& at) {
  for (unsigned b = t; b < static_cast<unsigned>(kHistBins); b += threads)
    if (block_hist[b]) at.add(&slot->hist[b], uint64_t{block_hist[b]});
}

// The block's partial: its warps' lane-0 partials merged in warp order.
FPSCOPE_HD inline StatsScalars merge_warp_partials(const StatsScalars* warp_part, unsigned warps) {
  StatsScalars block = warp_part[0];
  for (unsigned w = 1; w < warps; ++w) block.merge_scalars(warp_part[w]);
  return block;
}

// Merges one block's partial p into the slot through atomics policy A.
template <class A>
FPSCOPE_HD void merge_partial_into_slot(StatsScalars* slot, const StatsScalars& p, A& at) {
  if (p.count == 0) return;
  at.add(&slot->count, p.count);
  at.add(&slot->nan, p.nan);
  at.add(&slot->pos_inf, p.pos_inf);
  at.add(&slot->neg_inf, p.neg_inf);
  at.add(&slot->zero, p.zero);
  if (p.finite_count() == 0) return;
  at.max_nonneg(&slot->amax, p.amax);
  at.min(&slot->min, p.min);
  at.max(&slot->max, p.max);
  at.add(&slot->sum, p.sum);
  at.add(&slot->sum_sq, p.sum_sq);
  for (int i = 0; i < kNumTargets; ++i) {
    at.add(&slot->fmt[i].overflow, p.fmt[i].overflow);
    at.add(&slot->fmt[i].underflow, p.fmt[i].underflow);
    at.add(&slot->fmt[i].subnormal, p.fmt[i].subnormal);
    at.add(&slot->fmt[i].sum_err2, p.fmt[i].sum_err2);
  }
}

}  // namespace fpscope
