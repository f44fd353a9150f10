// The reduction steps of the CUDA statistics kernel (kernels/cuda/stats_kernels.cu), written
// once for the device and for a CPU model of the kernel (kernels/src/stats_sim.cpp) that tests
// run: element addressing, slot initialisation/finalisation, and the merge of a block's partial
// into the result slot through an "atomics" policy (device: atomicAdd/atomicMax/atomicCAS; CPU
// model: plain sequential operations). Per-element math: numerics.h.
//
// Slot protocol (one launch_tensor_stats call):
//  1. init_slot: all zero, fmt[i].scale = scales[i], min = +Inf, max = -Inf (identities of the
//     CAS min/max below);
//  2. every block merges its partial (counts and sums added, amax by integer max on the
//     non-negative float bits, min/max by compare-and-swap) and its shared-memory histogram;
//  3. finalize_slot: min = max = 0 when no finite element was seen (as the host pass leaves
//     them), so device and host results are the same bytes up to the order of the double sums.
#pragma once

#include <cstdint>

#include "fpscope/numerics.h"
#include "fpscope/stats.h"

namespace fpscope {

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

FPSCOPE_HD inline void init_slot_scalars(StatsScalars& s, const float* scales) {
  for (int i = 0; i < kNumTargets; ++i) s.fmt[i].scale = scales[i];
  s.min = detail::u2f(0x7f800000u);
  s.max = detail::u2f(0xff800000u);
}

FPSCOPE_HD inline void finalize_slot_scalars(StatsScalars& s) {
  if (s.finite_count() == 0) {
    s.min = 0.0f;
    s.max = 0.0f;
  }
}

// Merges one block's partial p into the slot through atomics policy A, which provides
//   add(uint64_t*, uint64_t), add(double*, double), max_nonneg(float*, float),
//   min(float*, float), max(float*, float).
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

// Launch geometry shared by the kernel and its CPU model.
inline constexpr unsigned kStatsThreads = 256;
inline constexpr unsigned kStatsMaxBlocks = 1024;
FPSCOPE_HD inline unsigned stats_blocks(uint64_t n) {
  const uint64_t b = (n + kStatsThreads - 1) / kStatsThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > kStatsMaxBlocks ? kStatsMaxBlocks : b));
}

}  // namespace fpscope
