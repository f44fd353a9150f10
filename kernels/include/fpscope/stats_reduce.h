// (Size: ~660 lines, kept whole on purpose: the device kernel and its CPU model must read the same
// steps in one place; splitting by step would split that one source of truth.)
// The CUDA statistics kernel's steps (kernels/cuda/stats_kernels.cu), written once for the
// device and for the CPU model of the kernel (kernels/src/stats_sim.cpp) that tests run: element
// addressing, the per-launch x-space thresholds, a warp's pass over one chunk, the warp tree
// reduction, the merge of a block's warps and histograms and the merge of a block into the
// result slot. The device and the model differ only in small policies:
//  - atomics A: add(uint32_t*, uint32_t) (shared histograms), add(uint64_t*, uint64_t),
//    add(double*, double), max_bits(float*, uint32_t) (amax by its bits), min_key(float*, int32_t),
//    max_key(float*, int32_t) (min/max by order key) (device: atomicAdd/atomicMax/atomicCAS;
//    model: plain sequential operations);
//  - a warp W, SIMT style: for_each_lane(f) calls f(lane, LaneState&) for the lanes this executor
//    runs (device: the calling thread's; model: all kWarpSize, in order); reduce_max(v) /
//    reduce_min(v) of one uint32_t per lane, given as a member pointer (device: __reduce_*_sync);
//    shuffle_down for the final tree (see warp_reduce).
// Per-element math: numerics.h. (Over 600 lines: the kernel's whole per-chunk logic is kept in one
// place so that the device and its model cannot drift apart.)
//
// Work split. The problem's n elements are cut into chunks of kChunkElems = kWarpSize x
// kLaneElems consecutive elements; warp g of the grid (G warps) takes chunks g, g + G, ...; lane l
// of a chunk takes its elements l*kLaneElems .. +kLaneElems-1 (16-byte vector loads when the
// view is contiguous and the base 16-byte aligned). A full chunk without NaN/Inf runs the fast
// path, specialized per chunk and target on the chunk's range (warp-uniform: the lanes' largest
// |x| and smallest nonzero |x| reduced over the warp), as the host pass does per block:
//  - counts compare |x|'s pattern with per-launch thresholds in x-space (TargetBounds: |x| ->
//    |fl(x*s)| is monotone, so every outcome is an interval of |x| patterns), overflow only where
//    the chunk reaches the overflow threshold, underflow/subnormal only where its smallest nonzero
//    |y| is below the target's smallest normal;
//  - the cast error d = |y| - cast(|y|) by integer rounding (2 integer ops, ties away from zero:
//    only d^2 is summed, which the tie rule leaves unchanged) where every nonzero |y| is a normal
//    of the target, else by numerics.h's round_abs_bits (magic number, target subnormals);
//  - d^2 is summed per lane in FP32, prescaled by a power of two P chosen from the chunk's range so
//    that no term is subnormal and no sum overflows (err_plan), and folded into double once per
//    chunk (kLaneElems terms: relative error < 1e-6); ranges too wide for one P sum in double.
// Everything else (partial last chunk, chunks holding NaN/Inf) runs the generic path: numerics.h's
// element_target per element and target, double sums. The results are the same either way up to
// the order and precision of the floating-point sums (stats.h bounds).
//
// Slot protocol (one launch_tensor_stats call):
//  1. init_slot_scalars: all zero, fmt[i].scale = scales[i], min = +Inf, max = -Inf (identities
//     of the min/max below);
//  2. every block merges its partial (counts and sums added, amax by integer max on the
//     non-negative float bits, min/max by compare-and-swap on order keys, so -0 < +0 as in the
//     host pass) and its histograms;
//  3. finalize_slot_scalars: min = max = 0 when no finite element was seen (as the host pass
//     leaves them), so device and host results are the same bytes up to the floating-point sums.
#pragma once

#include <cmath>
#include <cstdint>

#include "fpscope/formats.h"
#include "fpscope/numerics.h"
#include "fpscope/stats.h"
#include "fpscope/value_scale.h"

namespace fpscope {

// ---- launch geometry -----------------------------------------------------------------------
inline constexpr unsigned kWarpSize = 32;
inline constexpr unsigned kStatsThreads = 256;
inline constexpr unsigned kStatsWarps = kStatsThreads / kWarpSize;
inline constexpr unsigned kStatsMaxBlocks = 1024;
inline constexpr unsigned kLaneElems = 16;  // elements per lane per chunk (1..4 16-byte loads)
inline constexpr unsigned kChunkElems = kWarpSize * kLaneElems;
static_assert(kStatsThreads % kWarpSize == 0, "whole warps per block");
// Grid of the update-loss and widening kernels: one thread per element, at most kStatsMaxBlocks.
FPSCOPE_HD inline unsigned stats_blocks(uint64_t n) {
  const uint64_t b = (n + kStatsThreads - 1) / kStatsThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > kStatsMaxBlocks ? kStatsMaxBlocks : b));
}
// Grid of the statistics kernel: enough blocks for one chunk per warp, at most max_blocks (the
// launcher passes what the device holds resident at once).
FPSCOPE_HD inline unsigned stats_chunk_blocks(uint64_t n, unsigned max_blocks) {
  const uint64_t per_block = uint64_t{kChunkElems} * kStatsWarps;
  const uint64_t b = (n + per_block - 1) / per_block;
  return static_cast<unsigned>(b < 1 ? 1 : (b > max_blocks ? max_blocks : b));
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

// What one launch_tensor_stats_batched call reads: n elements (batch < 1 counts as 1), each
// measured as apply_value_scale(decoded element, vscale) (value_scale.h; the kernel and its model
// fill vscale from the launch's ValueScale at the start of the pass: none by default).
struct StatsProblem {
  ViewIndex view;
  uint64_t n;
  ResolvedValueScale vscale;
};
FPSCOPE_HD inline StatsProblem make_stats_problem(uint64_t rows, uint64_t cols, uint64_t ld,
                                                  uint64_t batch, uint64_t batch_stride) {
  const uint64_t nb = batch < 1 ? 1 : batch;
  return StatsProblem{make_view_index(rows, cols, ld, nb, batch_stride), rows * cols * nb, {}};
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

// Float bits -> int32 key with the same order as the floats (-0 just below +0); an involution.
FPSCOPE_HD inline int32_t order_key(uint32_t u) {
  const auto s = static_cast<int32_t>(u);
  return s ^ static_cast<int32_t>(static_cast<uint32_t>(s >> kFp32SignBit) & kFp32AbsMask);
}

// ---- per-launch thresholds in x-space ---------------------------------------------------------
// For target T at scale s, element_target's outcomes as intervals of |x|'s pattern a (finite,
// nonzero; y = fl(x*s), |y| is nondecreasing in a for every s, NaN and Inf included, so each
// outcome predicate is monotone in a and a binary search finds its edge):
//   overflow           <=> a >= ov
//   underflow          <=> a <= uf
//   underflow|subnormal<=> a <  below (below >= 1)
//   |y| >= T's smallest normal          <=> a >= normal (integer rounding valid for d)
//   |y| >= 2^-100 (own-subnormal targets)<=> a >= tiny   (prescale 2^40 valid, see err_plan)
// kFp32InfBits stands for "no finite a" (never reached), 0 for "none" in uf.
struct TargetBounds {
  uint32_t ov, uf, below, normal, tiny;
};
struct LaunchBounds {
  TargetBounds t[kNumTargets];
};

namespace detail {
// Smallest a in [1, kFp32InfBits) with pred(a) (pred nondecreasing), kFp32InfBits if none.
template <class Pred>
FPSCOPE_HD uint32_t first_true(Pred pred) {
  uint32_t lo = 1, hi = kFp32InfBits;
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (pred(mid))
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}
// Fused multiply-add, rounded once (device FFMA; the host model's std::fma gives the same bits).
FPSCOPE_HD inline float fma_rn(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
FPSCOPE_HD inline uint32_t scaled_abs_bits(uint32_t a, float scale) {
  return f2u(mul_rn(u2f(a), scale)) & kFp32AbsMask;
}
}  // namespace detail

template <Format F>
FPSCOPE_HD TargetBounds make_target_bounds(float scale) {
  using detail::first_true;
  auto et = [scale](uint32_t a) { return element_target<F>(detail::u2f(a), scale); };
  TargetBounds b;
  b.ov = first_true([&](uint32_t a) { return et(a).overflow != 0; });
  b.uf = first_true([&](uint32_t a) { return et(a).underflow == 0; }) - 1u;
  b.below = first_true([&](uint32_t a) {
    const ElementTarget t = et(a);
    return (t.underflow | t.subnormal) == 0;
  });
  b.normal = first_true([&](uint32_t a) {
    return detail::scaled_abs_bits(a, scale) >=
           static_cast<uint32_t>(detail::CastParams<F>::kMinNormalBits);
  });
  b.tiny = first_true(
      [&](uint32_t a) { return detail::scaled_abs_bits(a, scale) >= fp32_pow2_bits(-100); });
  return b;
}
// Target i's bounds (i < kNumTargets): one target per call, so device threads share the work.
FPSCOPE_HD inline TargetBounds make_target_bounds(int i, const ScaleSet& sc) {
  static_assert(kNumTargets == 4, "make_target_bounds lists the four targets of kTargets");
  switch (i) {
    case 0:
      return make_target_bounds<kTargets[0]>(sc.scale[0]);
    case 1:
      return make_target_bounds<kTargets[1]>(sc.scale[1]);
    case 2:
      return make_target_bounds<kTargets[2]>(sc.scale[2]);
    default:
      return make_target_bounds<kTargets[3]>(sc.scale[3]);
  }
}

// ---- accumulators ------------------------------------------------------------------------------
// One thread's running statistics: 32-bit counts (a thread sees under 2^32 elements: n < 2^32 x
// the grid's threads), order keys for min/max, d^2 sums in the scaled domain (times 1/s^2 when
// merged into the slot). lo[i] counts underflows, below[i] underflows + subnormals.
struct ThreadAcc {
  uint32_t count = 0, nan = 0, pos_inf = 0, neg_inf = 0, zero = 0;
  uint32_t amax = 0;  // largest finite |x| pattern
  int32_t min_key = INT32_MAX, max_key = INT32_MIN;
  double sum = 0.0, sum_sq = 0.0;
  uint32_t ov[kNumTargets] = {}, lo[kNumTargets] = {}, below[kNumTargets] = {};
  double err2[kNumTargets] = {};
};

// The reduction type: a thread's, a warp's or a block's statistics (64-bit counts).
struct StatsPartial {
  uint64_t count = 0, nan = 0, pos_inf = 0, neg_inf = 0, zero = 0;
  uint64_t ov[kNumTargets] = {}, lo[kNumTargets] = {}, below[kNumTargets] = {};
  double sum = 0.0, sum_sq = 0.0;
  double err2[kNumTargets] = {};
  uint32_t amax = 0;
  int32_t min_key = INT32_MAX, max_key = INT32_MIN;
  uint32_t pad = 0;  // whole 8-byte words (shuffled word by word)

  FPSCOPE_HD void merge(const StatsPartial& o) {
    count += o.count;
    nan += o.nan;
    pos_inf += o.pos_inf;
    neg_inf += o.neg_inf;
    zero += o.zero;
    sum += o.sum;
    sum_sq += o.sum_sq;
    for (int i = 0; i < kNumTargets; ++i) {
      ov[i] += o.ov[i];
      lo[i] += o.lo[i];
      below[i] += o.below[i];
      err2[i] += o.err2[i];
    }
    amax = o.amax > amax ? o.amax : amax;
    min_key = o.min_key < min_key ? o.min_key : min_key;
    max_key = o.max_key > max_key ? o.max_key : max_key;
  }
};
FPSCOPE_HD inline StatsPartial to_partial(const ThreadAcc& a) {
  StatsPartial p;
  p.count = a.count;
  p.nan = a.nan;
  p.pos_inf = a.pos_inf;
  p.neg_inf = a.neg_inf;
  p.zero = a.zero;
  p.sum = a.sum;
  p.sum_sq = a.sum_sq;
  for (int i = 0; i < kNumTargets; ++i) {
    p.ov[i] = a.ov[i];
    p.lo[i] = a.lo[i];
    p.below[i] = a.below[i];
    p.err2[i] = a.err2[i];
  }
  p.amax = a.amax;
  p.min_key = a.min_key;
  p.max_key = a.max_key;
  return p;
}

// ---- one element, generic path
// ------------------------------------------------------------------- Element x into acc and its
// bin into the warp's histogram (zeros into bin 0: the thread takes its zeros out again at the end,
// see finish_thread_hist). numerics.h's element_target for every target, d^2 in double.
template <class A>
FPSCOPE_HD void accumulate_generic(ThreadAcc& acc, float x, const ScaleSet& sc, uint32_t* hist,
                                   A& at) {
  const uint32_t u = detail::f2u(x);
  const uint32_t a = u & kFp32AbsMask;
  ++acc.count;
  if (a >= kFp32InfBits) {
    if (a > kFp32InfBits)
      ++acc.nan;
    else if (u >> kFp32SignBit)
      ++acc.neg_inf;
    else
      ++acc.pos_inf;
    return;
  }
  at.add(&hist[a >> kHistBinShift], 1u);
  acc.amax = a > acc.amax ? a : acc.amax;
  const int32_t key = order_key(u);
  acc.min_key = key < acc.min_key ? key : acc.min_key;
  acc.max_key = key > acc.max_key ? key : acc.max_key;
  const double xd = static_cast<double>(x);
  acc.sum += xd;
  acc.sum_sq += xd * xd;
  if (a == 0) {
    ++acc.zero;
    return;
  }
  const ElementTarget t[kNumTargets] = {
      element_target<kTargets[0]>(x, sc.scale[0]), element_target<kTargets[1]>(x, sc.scale[1]),
      element_target<kTargets[2]>(x, sc.scale[2]), element_target<kTargets[3]>(x, sc.scale[3])};
  for (int i = 0; i < kNumTargets; ++i) {
    acc.ov[i] += t[i].overflow;
    acc.lo[i] += t[i].underflow;
    acc.below[i] += t[i].underflow + t[i].subnormal;
    const auto d = static_cast<double>(t[i].d);
    acc.err2[i] += d * d;
  }
}

// ---- one chunk, fast path
// ------------------------------------------------------------------------ What one lane holds
// during a chunk: its accumulator, its elements' FP32 patterns and their range (largest |x|
// pattern, smallest nonzero |x| pattern minus 1, unsigned: zeros never win).
struct LaneState {
  ThreadAcc acc;
  uint32_t u[kLaneElems];
  uint32_t amax, nz_m1;
};

// Squared-error plan of one target for one chunk whose |y| patterns lie in [y_lo, y_hi] (nonzero
// ones; y_hi includes elements that overflow, whose d is 0). float_err: sum (d * pre)^2 in FP32;
// unscale = 1 / pre^2. Same rules as the host pass (host_stats.cpp err_prescale), for at most
// kLaneElems terms per FP32 sum:
//  - own-subnormal targets: a non-overflowing cast errs by at most 2^12, pre = 2^40 keeps terms
//    below 2^104; every nonzero |d| >= 2^-103 when every nonzero |y| >= 2^-100 (d = y when y
//    flushes, else a multiple of y's FP32 ulp >= 2^-47), so every (d * pre)^2 is normal;
//  - BF16: |d| <= 2^-8 |y|; pre = 2^(190 - e_hi) makes |d * pre| <= 2^56, and nonzero |d| >=
//    2^(max(e_lo, 1) - 150) makes |d * pre| >= 2^-62 when e_lo >= e_hi - 102.
struct ErrPlan {
  bool float_err;
  float pre;
  double unscale;
};
template <Format F>
FPSCOPE_HD ErrPlan err_plan(uint32_t y_lo, uint32_t y_hi, bool tiny_ok) {
  if constexpr (detail::CastParams<F>::kOwnSubnormals) {
    (void)y_lo;
    (void)y_hi;
    return ErrPlan{tiny_ok, 1099511627776.0f /* 2^40 */, 1.0 / 1208925819614629174706176.0};
  } else {
    (void)tiny_ok;
    const int e_hi = static_cast<int>(y_hi >> kFp32ManBits);
    const int e_lo = static_cast<int>(y_lo >> kFp32ManBits);
    const int k = 190 - e_hi;  // pre = 2^k must be a normal float
    if (k < kFp32MinNormalExp || k > kFp32MaxExp || (e_lo < 1 ? 1 : e_lo) < e_hi - 102)
      return ErrPlan{false, 1.0f, 1.0};
    const float pre = detail::u2f(fp32_pow2_bits(k));
    const double inv = 1.0 / static_cast<double>(pre);
    return ErrPlan{true, pre, inv * inv};
  }
}

// Target T over one lane's kLaneElems finite elements (patterns u): counts against the bounds,
// d^2 in FP32 times pre^2. kOv: some element of the chunk may overflow; kLow: some nonzero
// element's |y| may be below T's smallest normal.
template <int T, bool kOv, bool kLow>
FPSCOPE_HD void lane_target_fast(ThreadAcc& acc, const uint32_t* u, const TargetBounds& b,
                                 float scale_abs, const ErrPlan& ep) {
  constexpr Format F = kTargets[T];
  using P = detail::CastParams<F>;
  uint32_t c_ov = 0, c_lo = 0, c_below = 0;
  float ef = 0.0f;
  for (unsigned e = 0; e < kLaneElems; ++e) {
    const uint32_t a = u[e] & kFp32AbsMask;
    const float y = detail::mul_rn(detail::u2f(a), scale_abs);
    const uint32_t ay = detail::f2u(y);
    uint32_t r;
    if constexpr (kLow) {
      const uint32_t am1 = a - 1u;  // zeros wrap: never below a bound
      c_lo += am1 < b.uf ? 1u : 0u;
      c_below += am1 < b.below - 1u ? 1u : 0u;
      r = static_cast<uint32_t>(detail::round_abs_bits<F>(static_cast<int32_t>(ay)));
    } else {
      r = (ay + static_cast<uint32_t>(P::kHalf)) & static_cast<uint32_t>(P::kKeep);
    }
    float d = detail::sub_rn(y, detail::u2f(r));
    if constexpr (kOv) {
      const bool o = a >= b.ov;
      c_ov += o ? 1u : 0u;
      d = o ? 0.0f : d;
    }
    const float ds = detail::mul_rn(d, ep.pre);  // exact: a power of two, no under/overflow
    ef = detail::fma_rn(ds, ds, ef);
  }
  if constexpr (kOv) acc.ov[T] += c_ov;
  if constexpr (kLow) {
    acc.lo[T] += c_lo;
    acc.below[T] += c_below;
  }
  acc.err2[T] += static_cast<double>(ef) * ep.unscale;
}

// Target T over one lane's finite elements, every check, d^2 in double (ranges too wide for one
// prescale, scales that are not finite and positive).
template <int T>
FPSCOPE_HD void lane_target_generic(ThreadAcc& acc, const uint32_t* u, float scale) {
  for (unsigned e = 0; e < kLaneElems; ++e) {
    const float x = detail::u2f(u[e]);
    if ((u[e] & kFp32AbsMask) == 0) continue;  // zeros take no part in the target statistics
    const ElementTarget t = element_target<kTargets[T]>(x, scale);
    acc.ov[T] += t.overflow;
    acc.lo[T] += t.underflow;
    acc.below[T] += t.underflow + t.subnormal;
    const auto d = static_cast<double>(t.d);
    acc.err2[T] += d * d;
  }
}

// Target T for one lane of a clean full chunk whose nonzero |x| patterns lie in [x_lo, x_hi]
// (x_lo = kFp32InfBits: no nonzero element): the chunk-uniform choice of loop.
template <int T>
FPSCOPE_HD void lane_target(ThreadAcc& acc, const uint32_t* u, uint32_t x_lo, uint32_t x_hi,
                            const TargetBounds& b, const ScaleSet& sc) {
  const float s = sc.scale[T];
  const float s_abs = detail::u2f(detail::f2u(s) & kFp32AbsMask);
  const bool any = x_lo < kFp32InfBits;
  const uint32_t y_hi = detail::scaled_abs_bits(x_hi, s_abs);
  const uint32_t y_lo = any ? detail::scaled_abs_bits(x_lo, s_abs) : y_hi;
  const ErrPlan ep = err_plan<kTargets[T]>(y_lo, y_hi, !any || x_lo >= b.tiny);
  if (!(s_abs > 0.0f && s_abs <= detail::u2f(kFp32MaxFiniteBits)) || !ep.float_err) {
    lane_target_generic<T>(acc, u, s);
    return;
  }
  const bool ov = x_hi >= b.ov;
  const bool low = any && x_lo < b.normal;
  if (ov) {
    if (low)
      lane_target_fast<T, true, true>(acc, u, b, s_abs, ep);
    else
      lane_target_fast<T, true, false>(acc, u, b, s_abs, ep);
  } else {
    if (low)
      lane_target_fast<T, false, true>(acc, u, b, s_abs, ep);
    else
      lane_target_fast<T, false, false>(acc, u, b, s_abs, ep);
  }
}

// One lane's own statistics over a clean full chunk (finite elements): counts, min/max keys,
// double sums, histogram bins (zeros into bin 0, see accumulate_generic).
template <class A>
FPSCOPE_HD void lane_own_fast(ThreadAcc& acc, const uint32_t* u, uint32_t* hist, A& at) {
  uint32_t zeros = 0;
  int32_t kmin = acc.min_key, kmax = acc.max_key;
  double sum = acc.sum, sum_sq = acc.sum_sq;
  for (unsigned e = 0; e < kLaneElems; ++e) {
    const uint32_t a = u[e] & kFp32AbsMask;
    zeros += (a - 1u) >> kFp32SignBit;  // a == 0 exactly when a - 1 wraps (a < 2^31)
    const int32_t key = order_key(u[e]);
    kmin = key < kmin ? key : kmin;
    kmax = key > kmax ? key : kmax;
    const auto xd = static_cast<double>(detail::u2f(u[e]));
    sum += xd;
    sum_sq += xd * xd;
    at.add(&hist[a >> kHistBinShift], 1u);
  }
  acc.count += kLaneElems;
  acc.zero += zeros;
  acc.min_key = kmin;
  acc.max_key = kmax;
  acc.sum = sum;
  acc.sum_sq = sum_sq;
}

// Lane `lane`'s elements of chunk c into ls.u (absent elements beyond n: none are read, valid
// says how many are there). Contiguous views read kLaneElems consecutive elements (vec: 16-byte
// loads, the caller checked the alignment); others step through rows, columns and matrices.
// Each element is decoded, then scaled by p.vscale (the codes' meaning, value_scale.h).
template <Format F, class T>
FPSCOPE_HD unsigned load_lane(const T* data, const StatsProblem& p, bool vec, uint64_t k0,
                              uint32_t* u) {
  const unsigned valid =
      k0 >= p.n ? 0u : (p.n - k0 >= kLaneElems ? kLaneElems : static_cast<unsigned>(p.n - k0));
  if (valid == 0) return 0;
  if (p.view.contiguous) {
#if defined(__CUDA_ARCH__)
    if (vec && valid == kLaneElems) {
      constexpr unsigned kPer = 16 / sizeof(T);
      static_assert(kLaneElems % kPer == 0, "whole vectors per lane");
      T v[kLaneElems];
      const auto* src = reinterpret_cast<const uint4*>(data + k0);
#pragma unroll
      for (unsigned q = 0; q < kLaneElems / kPer; ++q)
        reinterpret_cast<uint4*>(v)[q] = __ldg(src + q);
#pragma unroll
      for (unsigned e = 0; e < kLaneElems; ++e)
        u[e] = detail::f2u(
            apply_value_scale(decode_storage_t<F>(static_cast<uint32_t>(v[e])), p.vscale));
      return valid;
    }
#else
    (void)vec;
#endif
    for (unsigned e = 0; e < valid; ++e)
      u[e] = detail::f2u(
          apply_value_scale(decode_storage_t<F>(static_cast<uint32_t>(data[k0 + e])), p.vscale));
    return valid;
  }
  const ViewIndex& v = p.view;
  uint64_t m = k0 / v.per_matrix;
  const uint64_t r = k0 - m * v.per_matrix;
  uint64_t j = r / v.rows, i = r - j * v.rows;
  for (unsigned e = 0; e < valid; ++e) {
    u[e] = detail::f2u(apply_value_scale(
        decode_storage_t<F>(static_cast<uint32_t>(data[m * v.batch_stride + j * v.ld + i])),
        p.vscale));
    if (++i == v.rows) {
      i = 0;
      if (++j == v.cols) {
        j = 0;
        ++m;
      }
    }
  }
  return valid;
}

// One chunk c of the problem through warp w (every lane: its kLaneElems elements).
template <Format F, class T, class W, class A>
FPSCOPE_HD void process_chunk(W& w, const T* data, const StatsProblem& p, bool vec, uint64_t c,
                              const ScaleSet& sc, const LaunchBounds& lb, uint32_t* hist, A& at) {
  const uint64_t k0 = c * kChunkElems;
  const bool full = p.n - k0 >= kChunkElems;  // warp-uniform
  if (!full) {
    w.for_each_lane([&](unsigned lane, LaneState& ls) {
      const unsigned valid = load_lane<F>(data, p, vec, k0 + lane * kLaneElems, ls.u);
      for (unsigned e = 0; e < valid; ++e)
        accumulate_generic(ls.acc, detail::u2f(ls.u[e]), sc, hist, at);
    });
    return;
  }
  w.for_each_lane([&](unsigned lane, LaneState& ls) {
    load_lane<F>(data, p, vec, k0 + lane * kLaneElems, ls.u);
    uint32_t amax = 0, nz_m1 = ~0u;
    for (unsigned e = 0; e < kLaneElems; ++e) {
      const uint32_t a = ls.u[e] & kFp32AbsMask;
      amax = a > amax ? a : amax;
      nz_m1 = a - 1u < nz_m1 ? a - 1u : nz_m1;
    }
    ls.amax = amax;
    ls.nz_m1 = nz_m1;
  });
  const uint32_t x_hi = w.reduce_max(&LaneState::amax);
  const uint32_t x_lo = w.reduce_min(&LaneState::nz_m1) + 1u;  // 0 (wrapped): no nonzero
  if (x_hi >= kFp32InfBits) {                                  // NaN or Inf somewhere in the chunk
    w.for_each_lane([&](unsigned, LaneState& ls) {
      for (unsigned e = 0; e < kLaneElems; ++e)
        accumulate_generic(ls.acc, detail::u2f(ls.u[e]), sc, hist, at);
    });
    return;
  }
  const uint32_t lo = x_lo == 0 ? kFp32InfBits : x_lo;
  w.for_each_lane([&](unsigned, LaneState& ls) {
    ls.acc.amax = x_hi > ls.acc.amax ? x_hi : ls.acc.amax;
    lane_own_fast(ls.acc, ls.u, hist, at);
    lane_target<0>(ls.acc, ls.u, lo, x_hi, lb.t[0], sc);
    lane_target<1>(ls.acc, ls.u, lo, x_hi, lb.t[1], sc);
    lane_target<2>(ls.acc, ls.u, lo, x_hi, lb.t[2], sc);
    lane_target<3>(ls.acc, ls.u, lo, x_hi, lb.t[3], sc);
  });
}
static_assert(kNumTargets == 4, "process_chunk runs the four targets of kTargets");

// Warp g of a grid of `warps` warps: its chunks g, g + warps, ... (each lane's accumulator in W).
template <Format F, class T, class W, class A>
FPSCOPE_HD void process_warp(W& w, const T* data, const StatsProblem& p, bool vec, uint64_t g,
                             uint64_t warps, const ScaleSet& sc, const LaunchBounds& lb,
                             uint32_t* hist, A& at) {
  const uint64_t chunks = (p.n + kChunkElems - 1) / kChunkElems;
  for (uint64_t c = g; c < chunks; c += warps)
    process_chunk<F>(w, data, p, vec, c, sc, lb, hist, at);
}

// ---- one warp --------------------------------------------------------------------------------
// Tree reduction of a warp's kWarpSize partials into lane 0's. Lane exchange policy W:
//   w.shuffle_down(off): every lane l receives the value that lane l + off holds (its own value
//                        when l + off >= kWarpSize, as __shfl_down_sync does);
//   w.for_each_partial(f): calls f(lane, own, received) for the lanes that this executor runs
//                        (device: the calling thread's; host model: every lane, in order).
// Round `off` (16, 8, 4, 2, 1): lane l < kWarpSize - off merges what lane l + off held before
// the round, so lane 0 ends with all kWarpSize partials.
template <class W>
FPSCOPE_HD void warp_reduce(W& w) {
  for (unsigned off = kWarpSize / 2; off > 0; off >>= 1) {
    w.shuffle_down(off);
    w.for_each_partial([off](unsigned lane, StatsPartial& own, const StatsPartial& received) {
      if (lane + off < kWarpSize) own.merge(received);
    });
  }
}

// The host model's lane exchange: the kWarpSize lanes of one warp as an array.
struct HostWarpLanes {
  StatsPartial lane[kWarpSize];
  StatsPartial received[kWarpSize];
  void shuffle_down(unsigned off) {
    for (unsigned l = 0; l < kWarpSize; ++l) received[l] = lane[l + off < kWarpSize ? l + off : l];
  }
  template <class Fn>
  void for_each_partial(Fn f) {
    for (unsigned l = 0; l < kWarpSize; ++l) f(l, lane[l], received[l]);
  }
};

// ---- one block -------------------------------------------------------------------------------
// The block's histograms: `copies` of kHistBins 32-bit counters (one per warp, or one shared).
// Thread t of a block of `threads` zeroes / flushes its share.
FPSCOPE_HD inline void clear_block_hist(uint32_t* block_hist, unsigned copies, unsigned t,
                                        unsigned threads) {
  for (unsigned b = t; b < copies * static_cast<unsigned>(kHistBins); b += threads)
    block_hist[b] = 0;
}
// A thread's zeros went into bin 0 of its histogram: taken out again (before the barrier).
template <class A>
FPSCOPE_HD void finish_thread_hist(uint32_t* hist, const ThreadAcc& acc, A& at) {
  if (acc.zero) at.add(&hist[0], 0u - acc.zero);
}
template <class A>
FPSCOPE_HD void flush_block_hist(TensorStats* slot, const uint32_t* block_hist, unsigned copies,
                                 unsigned t, unsigned threads, A& at) {
  for (unsigned b = t; b < static_cast<unsigned>(kHistBins); b += threads) {
    uint64_t sum = 0;
    for (unsigned c = 0; c < copies; ++c) sum += block_hist[c * kHistBins + b];
    if (sum) at.add(&slot->hist[b], sum);
  }
}

// The block's partial: its warps' lane-0 partials merged in warp order.
FPSCOPE_HD inline StatsPartial merge_warp_partials(const StatsPartial* warp_part, unsigned warps) {
  StatsPartial block = warp_part[0];
  for (unsigned w = 1; w < warps; ++w) block.merge(warp_part[w]);
  return block;
}

// Merges one block's partial p into the slot through atomics policy A.
template <class A>
FPSCOPE_HD void merge_partial_into_slot(TensorStats* slot, const StatsPartial& p,
                                        const ScaleSet& sc, A& at) {
  if (p.count == 0) return;
  at.add(&slot->count, p.count);
  at.add(&slot->nan, p.nan);
  at.add(&slot->pos_inf, p.pos_inf);
  at.add(&slot->neg_inf, p.neg_inf);
  at.add(&slot->zero, p.zero);
  if (p.count - p.nan - p.pos_inf - p.neg_inf == 0) return;
  at.max_bits(&slot->amax, p.amax);
  at.min_key(&slot->min, p.min_key);
  at.max_key(&slot->max, p.max_key);
  at.add(&slot->sum, p.sum);
  at.add(&slot->sum_sq, p.sum_sq);
  for (int i = 0; i < kNumTargets; ++i) {
    at.add(&slot->fmt[i].overflow, p.ov[i]);
    at.add(&slot->fmt[i].underflow, p.lo[i]);
    at.add(&slot->fmt[i].subnormal, p.below[i] - p.lo[i]);
    at.add(&slot->fmt[i].sum_err2, p.err2[i] * sc.inv2[i]);
  }
}

}  // namespace fpscope
