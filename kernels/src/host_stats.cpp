// Host statistics pass. Structure:
//  - the tensor view is cut into blocks of at most kBlock floats (FP32 input is read in place;
//    other storage formats are decoded into a small buffer with numerics.h's decode_storage_t);
//  - each block of at most kScalarBlock elements goes through vectorizable loops (OpenMP SIMD
//    reductions, compiled with -fopenmp-simd; per-ISA clones picked at load time) that apply
//    numerics.h's per-element steps to every element: one for the input's own statistics (which
//    also finds out whether the block holds NaN/Inf) and one per target format, specialized per
//    block on what its range makes impossible; plus one scalar loop for the exponent histogram;
//  - large 8/16-bit tensors count codes instead and run the same loops once per distinct code,
//    weighted by its count;
//  - large tensors are split across threads, each filling its own accumulator, merged at the end.
//  - with block-scaled formats on (StatsOptions::block_formats), each piece of the view goes
//    through the plain loops and then, still in L1, through the block-format loops (one read);
//    the histogram is then counted inside the fused MX loop (hist_add16), where it costs least.
// Size: ~1600 lines, kept whole on purpose: the per-block specializations, their ISA clones, the
// fold of 8/16-bit codes and the block-format pieces are one hot loop nest whose pieces only make
// sense together (the block pass reads the pieces the plain pass has just read).
#include "fpscope/host_stats.h"

#if defined(__x86_64__) || defined(__i386__)
// GCC 12's AVX-512 intrinsics start some results from a self-initialized "undefined" vector,
// which -Wuninitialized reports where they are inlined (half_amax_x16); the header, not our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <thread>
#include <type_traits>
#include <vector>

#include "fpscope/block_numerics.h"
#include "fpscope/numerics.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(FPSCOPE_NO_TARGET_CLONES)
#define FPSCOPE_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define FPSCOPE_CLONES
#endif

namespace fpscope {
namespace {

// The statistics must not depend on the program's floating-point modes: a training run may have
// set flush-to-zero / denormals-are-zero (torch.set_flush_denormal(True), -ffast-math startup
// code), which would read FP32-subnormal inputs as 0 and flush subnormal sums and errors. The
// pass clears both for its duration and restores the caller's modes (x86 MXCSR; AArch64 FPCR.FZ).
class FpEnvironment {
 public:
  FpEnvironment() {
#if defined(__x86_64__) || defined(__i386__)
    saved_ = _mm_getcsr();
    const unsigned clean = saved_ & ~(kFtz | kDaz);
    if (clean != saved_) _mm_setcsr(clean);
#elif defined(__aarch64__)
    saved_ = __builtin_aarch64_get_fpcr64();
    const uint64_t clean = saved_ & ~kFz;
    if (clean != saved_) __builtin_aarch64_set_fpcr64(clean);
#endif
  }
  ~FpEnvironment() {
#if defined(__x86_64__) || defined(__i386__)
    if (_mm_getcsr() != saved_) _mm_setcsr(saved_);
#elif defined(__aarch64__)
    if (__builtin_aarch64_get_fpcr64() != saved_) __builtin_aarch64_set_fpcr64(saved_);
#endif
  }
  FpEnvironment(const FpEnvironment&) = delete;
  FpEnvironment& operator=(const FpEnvironment&) = delete;

 private:
#if defined(__x86_64__) || defined(__i386__)
  static constexpr unsigned kFtz = 1u << 15, kDaz = 1u << 6;
  unsigned saved_;
#elif defined(__aarch64__)
  static constexpr uint64_t kFz = uint64_t{1} << 24;
  uint64_t saved_;
#endif
};

// Floats per piece (16 KiB). The histogram's used bins are a few cache lines, so a piece stays in
// L1 between its ~9 reads. 4096 rather than 2048: the per-piece work (lane reductions, block
// bookkeeping) is paid half as often (with every block format on, 0.38 -> 0.40x of a plain sum).
constexpr size_t kBlock = 4096;
constexpr uint64_t kMinPerThread = uint64_t{1} << 20;  // elements: below this, threads cost more

// Running accumulator of one thread (fixed-width integer counts, order-preserving min/max keys).
struct Acc {
  uint64_t nan = 0, pos_inf = 0, neg_inf = 0, zero = 0, count = 0;
  int32_t amax_bits = 0;
  int32_t min_key = INT32_MAX;
  int32_t max_key = INT32_MIN;
  double sum = 0, sum_sq = 0;
  uint64_t ov[kNumTargets] = {}, uf[kNumTargets] = {}, sn[kNumTargets] = {};
  double err2[kNumTargets] = {};
  // Four interleaved sub-histograms: neighbouring elements usually share a bin, and one
  // counter would make every increment wait for the previous one's store. Indexed by the top 11
  // bits of the pattern, sign included (kSignedBins: one shift per element, no mask); the two
  // signs' counts are added when flushed to hist64, before they can wrap.
  static constexpr int kSignedBins = 2 * kHistBins;
  uint32_t hist[4][kSignedBins] = {};
  bool hist_signed = false;  // the sign half written since the last flush (hist_add16)
  uint64_t hist64[kHistBins] = {};
  uint64_t since_flush = 0;
  BlockStatsSet blocks;  // block-scaled formats (BlockCfg), when measured
  // MX full blocks of clean pieces: histogram of their amax's biased exponent and how many are
  // all zero (block_formats_piece; folded into `blocks` by fold_mx_blocks).
  uint64_t mx_ehist[kBlockScaleBins] = {};
  uint64_t mx_zero_blocks = 0;
};

// Float bits -> int32 key with the same order as the floats (-0 just below +0); an involution.
inline int32_t order_key(uint32_t u) {
  const auto s = static_cast<int32_t>(u);
  return s ^ ((s >> kFp32SignBit) & kFp32AbsMaskI32);
}

// Elements per vectorized block: four to a piece (1008 left a 32-element fifth block that paid
// the whole per-block cost); at most 64 FP32 additions per lane of 16 for the error sums.
constexpr size_t kScalarBlock = 1024;

// The vectorized per-element loops over n <= kScalarBlock floats: everything but the histogram.
// One loop for the input's own statistics and one per target format: each loop keeps its
// constants and accumulators in vector registers (one fused loop ran out of them and spent a
// quarter of its instructions re-materializing constants); the block stays in L1 between loops.
// kClean: the block holds no NaN/Inf (checked by the caller), so no element needs masking.

// What the target loops need to know about a block.
struct BlockInfo {
  uint32_t zeros;       // elements the target loops see as 0: zeros, and NaN/Inf (continue as 0)
  int32_t min_nonzero;  // smallest nonzero |x| pattern (INT32_MAX: none)
  int32_t amax;         // largest finite |x| pattern (0: none)
};

// A block's own statistics, committed to the accumulator only once the block is known to be
// clean (or was recomputed with NaN/Inf masking).
struct OwnBlock {
  uint32_t nan, pos_inf, neg_inf, zero;
  int32_t amax;         // kClean: the largest |x| pattern, NaN/Inf included (the caller checks)
  int32_t min_nonzero;  // smallest nonzero |x| pattern (INT32_MAX: none)
  int32_t min_key, max_key;
  double sum, sum_sq;
};

// kWeighted: element i stands for w[i] elements of that value (the folded codes of 8/16-bit
// tensors, all finite, see process_view_codes); counts and sums are weighted.
template <bool kClean, bool kWeighted = false>
__attribute__((always_inline)) inline OwnBlock block_own_stats(
    const float* __restrict x, size_t n, const uint32_t* __restrict w = nullptr) {
  uint32_t c_nan = 0, c_pinf = 0, c_ninf = 0, c_zero = 0;
  int32_t amax = 0, kmin = INT32_MAX, kmax = INT32_MIN;
  uint32_t nzmin_m1 = UINT32_MAX;  // min of |x| pattern - 1, unsigned: a zero (-1) never wins
  double sum = 0, sum_sq = 0;
#pragma omp simd reduction(+ : c_nan, c_pinf, c_ninf, c_zero, sum, sum_sq) \
    reduction(max : amax, kmax) reduction(min : kmin, nzmin_m1)
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = detail::f2u(x[i]);
    const auto a = static_cast<int32_t>(u & kFp32AbsMask);
    const bool fin = kClean || a < kFp32InfBitsI32;
    if constexpr (!kClean) {
      c_nan += a > kFp32InfBitsI32;
      c_pinf += u == kFp32InfBits;
      c_ninf += u == kFp32NegInfBits;
    }
    const uint32_t nz = static_cast<uint32_t>(a) - 1u;  // NaN/Inf patterns are never the minimum
    if constexpr (kWeighted) {
      c_zero += a == 0 ? w[i] : 0u;
    } else {
      c_zero += nz >> 31;  // a == 0 exactly when a - 1 wraps
    }
    const int32_t am = fin ? a : 0;
    amax = am > amax ? am : amax;
    nzmin_m1 = nz < nzmin_m1 ? nz : nzmin_m1;
    const int32_t key = order_key(u);
    const int32_t kl = fin ? key : INT32_MAX, kh = fin ? key : INT32_MIN;
    kmin = kl < kmin ? kl : kmin;
    kmax = kh > kmax ? kh : kmax;
    const auto xd = static_cast<double>(detail::u2f(fin ? u : 0u));
    if constexpr (kWeighted) {
      const auto wd = static_cast<double>(w[i]);
      sum += xd * wd;
      sum_sq += xd * xd * wd;
    } else {
      sum += xd;
      sum_sq += xd * xd;
    }
  }
  const int32_t nzmin = nzmin_m1 == UINT32_MAX ? INT32_MAX : static_cast<int32_t>(nzmin_m1 + 1u);
  return OwnBlock{c_nan, c_pinf, c_ninf, c_zero, amax, nzmin, kmin, kmax, sum, sum_sq};
}

// `count`: the elements the block stands for (the caller counts weighted blocks itself: 0).
inline BlockInfo commit_own_stats(const OwnBlock& o, uint64_t count, Acc& acc) {
  acc.count += count;
  acc.nan += o.nan;
  acc.pos_inf += o.pos_inf;
  acc.neg_inf += o.neg_inf;
  acc.zero += o.zero;
  acc.amax_bits = std::max(acc.amax_bits, o.amax);
  acc.min_key = std::min(acc.min_key, o.min_key);
  acc.max_key = std::max(acc.max_key, o.max_key);
  acc.sum += o.sum;
  acc.sum_sq += o.sum_sq;
  return BlockInfo{o.zero + o.nan + o.pos_inf + o.neg_inf, o.min_nonzero, o.amax};
}

// Target kTargets[T] over finite x (n <= kScalarBlock), `zeros` of which are 0. The outcomes
// are intervals of |y|'s pattern (numerics.h thresholds), so the loop counts three comparisons
// and derives them: underflow = #(|y| <= max flushed) - zeros, subnormal = #(|y| < smallest
// normal's rounding start) - #(|y| <= max flushed).
// Range specializations, chosen per block from its smallest nonzero and largest |x| (the cast
// pipeline x -> |x * s| is monotone for s > 0, so the block's extremes bound every element):
//   kOv = false: even the largest |y| does not overflow: no overflow count, no masking of d;
//   kLow = false: even the smallest nonzero |y| is a normal of the target: no underflow and no
//                 subnormal counts (both 0);
//   kUnitScale: s == 1, y = x (the default scale of every target).
// Squared cast errors: kFloatErr sums (d * pre)^2 in FP32 lanes within the block (one FP32
// multiply and add instead of two conversions and four double operations per 16 lanes) and
// unscales in double; else the block sums d^2 in double. block_target_auto picks pre so that no
// partial sum can overflow and no nonzero term is subnormal (ErrPrescale below); the relative
// error of a block's sum is then < 1e-5 (at most 64 rounded additions per lane of AVX-512's 16,
// 128 of AVX2's 8).
// Calls fn with std::true_type or std::false_type: a runtime choice between loop instantiations.
template <class Fn>
__attribute__((always_inline)) inline void with_bool(bool b, Fn&& fn) {
  if (b)
    fn(std::true_type{});
  else
    fn(std::false_type{});
}

struct ErrPrescale {
  bool use_float;
  float pre;       // power of two
  double unscale;  // 1 / pre^2
};

template <int T, bool kFloatErr, bool kOv, bool kLow, bool kUnitScale, bool kWeighted>
__attribute__((always_inline)) inline void block_target(const float* __restrict x,
                                                        const uint32_t* __restrict w, size_t n,
                                                        uint32_t zeros, const ScaleSet& sc,
                                                        const ErrPrescale& ep, Acc& acc) {
  constexpr Format F = kTargets[T];
  static_assert(!(kWeighted && kFloatErr), "weighted squared errors sum in double");
  using P = detail::CastParams<F>;
  uint32_t c_low = 0, c_below_normal = 0, c_ov = 0;
  double e = 0;  // sum d^2 (d: cast error in the scaled domain)
  float ef = 0;  // the same, times pre^2, when kFloatErr
  const float scale = sc.scale[T];
  const float pre = ep.pre;
#pragma omp simd reduction(+ : c_low, c_below_normal, c_ov, e, ef)
  for (size_t i = 0; i < n; ++i) {
    const float y = kUnitScale ? x[i] : detail::mul_rn(x[i], scale);  // x * 1 is exact
    const auto a = static_cast<int32_t>(detail::f2u(y) & kFp32AbsMask);
    uint32_t ov = 0;
    const uint32_t wi = kWeighted ? w[i] : 1u;
    if constexpr (kOv) {
      ov = detail::classify_overflow<F>(a);
      c_ov += ov ? wi : 0u;
    }
    if constexpr (kLow) {
      if constexpr (kWeighted) {
        c_low += a <= P::kUnderflowMaxBits ? wi : 0u;
        c_below_normal += a < P::kNormalStartBits ? wi : 0u;
      } else {
        // The sign bit of a - (threshold + 1): plain vector shifts and adds, which run faster
        // here than compare-into-mask-register and a masked add (no overflow: 0 <= a <= Inf).
        c_low += static_cast<uint32_t>(a - (P::kUnderflowMaxBits + 1)) >> 31;
        c_below_normal += static_cast<uint32_t>(a - P::kNormalStartBits) >> 31;
      }
    }
    const float r = detail::u2f(static_cast<uint32_t>(detail::round_abs_bits<F>(a)));
    const float diff = detail::sub_rn(detail::u2f(static_cast<uint32_t>(a)), r);
    const float d = kOv && ov ? 0.0f : diff;
    if constexpr (kFloatErr) {
      const float ds = d * pre;
      ef += ds * ds;
    } else if constexpr (kWeighted) {
      const auto dd = static_cast<double>(d);
      e += dd * dd * static_cast<double>(wi);
    } else {
      const auto dd = static_cast<double>(d);
      e += dd * dd;
    }
  }
  if constexpr (kOv) acc.ov[T] += c_ov;
  if constexpr (kLow) {
    acc.uf[T] += c_low - zeros;
    acc.sn[T] += c_below_normal - c_low;
  }
  acc.err2[T] += kFloatErr ? static_cast<double>(ef) * ep.unscale : e;
}

// The squared-error prescale of a block whose nonzero |y| patterns lie in [a_min, a_max].
// Narrow targets (FP16, FP8; own subnormal range): a non-overflowing cast errs by at most half an
// ulp of their max (<= 2^12), so pre = 2^40 keeps a block's sum of (d * pre)^2 below 2^114, and
// every nonzero |d| >= 2^-103 (so (d * pre)^2 >= 2^-126 is normal) when every nonzero
// |y| >= 2^-100. BF16 (FP32's range): |d| <= 2^-8 |y|; with pre = 2^(190 - e_max) (e_max: the
// biased exponent of a_max) every |d * pre| <= 2^56 (sum < 2^122), and every nonzero
// |d| >= ulp(y) >= 2^(max(e_min, 1) - 150), so |d * pre| >= 2^-63 when e_min >= e_max - 102.
// Outside these conditions the block sums in double.
template <int T>
inline ErrPrescale err_prescale(int32_t a_min, int32_t a_max) {
  if constexpr (detail::CastParams<kTargets[T]>::kOwnSubnormals) {
    constexpr auto kMinAbsBits = static_cast<int32_t>(fp32_pow2_bits(-100));  // 2^-100
    return ErrPrescale{a_min >= kMinAbsBits, 1099511627776.0f /* 2^40 */,
                       1.0 / (1099511627776.0 * 1099511627776.0)};
  } else {
    const int32_t e_max = a_max >> kFp32ManBits, e_min = a_min >> kFp32ManBits;
    const int k = 190 - e_max;  // pre = 2^k must be a normal float: -126 <= k <= 127
    if (k < kFp32MinNormalExp || k > kFp32MaxExp || e_min < e_max - 102)
      return ErrPrescale{false, 1.0f, 1.0};
    const double pre = std::ldexp(1.0, k);
    return ErrPrescale{true, static_cast<float>(pre), 1.0 / (pre * pre)};
  }
}

template <int T, bool kWeighted>
__attribute__((always_inline)) inline void block_target_auto(const float* __restrict x,
                                                             const uint32_t* __restrict w, size_t n,
                                                             const BlockInfo& info,
                                                             const ScaleSet& sc, Acc& acc) {
  using P = detail::CastParams<kTargets[T]>;
  const float scale = sc.scale[T];
  if (!(scale > 0.0f && scale <= FLT_MAX)) {  // no monotone bounds: every check, double sums
    block_target<T, false, true, true, false, kWeighted>(x, w, n, info.zeros, sc,
                                                         ErrPrescale{false, 1.0f, 1.0}, acc);
    return;
  }
  auto scaled = [scale](int32_t a) {
    return static_cast<int32_t>(
        detail::f2u(detail::mul_rn(detail::u2f(static_cast<uint32_t>(a)), scale)) & kFp32AbsMask);
  };
  const bool any_nonzero = info.min_nonzero != INT32_MAX;
  const int32_t a_max = scaled(info.amax);
  const int32_t a_min = any_nonzero ? scaled(info.min_nonzero) : a_max;
  const bool ov = detail::classify_overflow<kTargets[T]>(a_max) != 0;
  const bool low = any_nonzero && a_min < P::kNormalStartBits;
  const ErrPrescale ep = kWeighted ? ErrPrescale{false, 1.0f, 1.0} : err_prescale<T>(a_min, a_max);
  // Each combination of (ov, low, float errors, unit scale) is its own loop; weighted blocks (a
  // few thousand folded codes at most) take only the overflow/underflow specializations.
  const bool use_float = ep.use_float && !kWeighted;
  const bool unit = scale == 1.0f && !kWeighted;
  with_bool(
      ov, [&](auto kO) __attribute__((always_inline)) {
        with_bool(
            low, [&](auto kL) __attribute__((always_inline)) {
              with_bool(
                  use_float, [&](auto kF) __attribute__((always_inline)) {
                    with_bool(
                        unit, [&](auto kU) __attribute__((always_inline)) {
                          if constexpr (!(kWeighted && (kF() || kU())))
                            block_target<T, kF(), kO(), kL(), kU(), kWeighted>(x, w, n, info.zeros,
                                                                               sc, ep, acc);
                        });
                  });
            });
      });
}

static_assert(kNumTargets == 4, "block_targets runs the four targets of kTargets");

template <bool kWeighted = false>
__attribute__((always_inline)) inline void block_targets(const float* __restrict x,
                                                         const uint32_t* __restrict w, size_t n,
                                                         const BlockInfo& info, const ScaleSet& sc,
                                                         Acc& acc) {
  block_target_auto<0, kWeighted>(x, w, n, info, sc, acc);
  block_target_auto<1, kWeighted>(x, w, n, info, sc, acc);
  block_target_auto<2, kWeighted>(x, w, n, info, sc, acc);
  block_target_auto<3, kWeighted>(x, w, n, info, sc, acc);
}

// Sum of x^2 and zeros of the elements a call saw (block_formats_piece reuses them).
struct OwnSums {
  double x2 = 0;
  uint64_t zeros = 0;
};

FPSCOPE_CLONES OwnSums block_scalars(const float* __restrict x, size_t n, const ScaleSet& sc,
                                     Acc& acc) {
  OwnSums own;
  while (n > 0) {
    const size_t m = std::min(n, kScalarBlock);
    // The block a piece ahead into L1: the hardware prefetcher alone fell behind on tensors larger
    // than the caches (64 MiB FP32: 0.61-0.64x of a plain sum -> 0.67-0.68x). A prefetch never
    // faults, past the end of the data either; the address is an integer, not a pointer past it.
    const uintptr_t ahead = reinterpret_cast<uintptr_t>(x + m) + (kBlock - m) * sizeof(float);
    for (size_t k = 0; k < m; k += 64 / sizeof(float))
      __builtin_prefetch(reinterpret_cast<const void*>(ahead + k * sizeof(float)), 0, 3);
    // Optimistically clean: the unmasked loop's amax shows whether the block held NaN/Inf.
    const OwnBlock clean_stats = block_own_stats<true>(x, m);
    if (clean_stats.amax < kFp32InfBitsI32) {
      own.x2 += clean_stats.sum_sq;
      own.zeros += clean_stats.zero;
      const BlockInfo info = commit_own_stats(clean_stats, m, acc);
      block_targets(x, nullptr, m, info, sc, acc);
    } else {
      // NaN/Inf take no part in the format statistics: they continue as 0 (never under- or
      // overflows, no error).
      const BlockInfo info = commit_own_stats(block_own_stats<false>(x, m), m, acc);
      alignas(64) float clean[kScalarBlock];
      for (size_t i = 0; i < m; ++i) {
        const uint32_t u = detail::f2u(x[i]);
        clean[i] = (u & kFp32AbsMask) < kFp32InfBits ? x[i] : 0.0f;
      }
      block_targets(clean, nullptr, m, info, sc, acc);
    }
    x += m;
    n -= m;
  }
  return own;  // sums of the clean blocks only (a piece with NaN/Inf does not use them)
}

// Finite values x[i] standing for w[i] elements each (n <= kScalarBlock; the counts of the
// block sum to less than 2^32): the vectorized loops, weighted. The caller counts the elements.
FPSCOPE_CLONES void block_scalars_weighted(const float* __restrict x, const uint32_t* __restrict w,
                                           size_t n, const ScaleSet& sc, Acc& acc) {
  const BlockInfo info = commit_own_stats(block_own_stats<true, true>(x, n, w), 0, acc);
  block_targets<true>(x, w, n, info, sc, acc);
}

// Histogram of a block: every element lands in a bin of its top 11 |x| bits; zeros (bin 0) and
// NaN/Inf (bins 1020..1023, exponent 255) are taken out again by finish(). The sign is masked off
// here: the positive half of Acc::hist only (as many cache lines as before it had two halves;
// with the sign kept, the pass without block formats ran 2-3 % slower).
void block_hist(const float* __restrict x, size_t n, Acc& acc) {
  uint32_t* h0 = acc.hist[0];
  uint32_t* h1 = acc.hist[1];
  uint32_t* h2 = acc.hist[2];
  uint32_t* h3 = acc.hist[3];
  auto bin = [x](size_t i) { return (detail::f2u(x[i]) & kFp32AbsMask) >> kHistBinShift; };
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    ++h0[bin(i)];
    ++h1[bin(i + 1)];
    ++h2[bin(i + 2)];
    ++h3[bin(i + 3)];
  }
  for (; i < n; ++i) ++h0[bin(i)];
}

// Only the half of each sub-histogram that was written: every call flushes, and small tensors
// (most of a model's) paid for the unused sign half (64x64 FP32: 4.3 -> 5.1 us a call).
void flush_hist(Acc& acc) {
  const int bins = acc.hist_signed ? Acc::kSignedBins : kHistBins;
  for (int b = 0; b < bins; ++b)
    acc.hist64[b % kHistBins] +=
        uint64_t{acc.hist[0][b]} + acc.hist[1][b] + acc.hist[2][b] + acc.hist[3][b];
  for (auto& h : acc.hist) std::memset(h, 0, static_cast<size_t>(bins) * sizeof h[0]);
  acc.hist_signed = false;
  acc.since_flush = 0;
}

// After a piece's histogram: flush the 32-bit counters long before they can wrap.
inline void hist_counted(size_t n, Acc& acc) {
  acc.since_flush += n;
  if (acc.since_flush > (uint64_t{1} << 31)) flush_hist(acc);
}

// The histogram of 16 consecutive elements from inside a vector loop (mx_fused): its 16 scalar
// increments use the integer units and the store port, which the vector loop leaves idle, so
// the core runs both at once (as a loop of its own, the histogram cost ~15% of the pass with
// every block format on: one store per element). Each element's bin is its top 11 bits, sign
// included (Acc::hist's signed half too): a load, a shift and an increment. On x86-64 the
// increments are inline assembly that names exactly the memory it reads and writes: as C++, GCC
// packed them into vector registers and back and spilled the loop's accumulators.
static_assert(kHistBinShift == 21 && Acc::kSignedBins == 2048, "hist_add16's shift: 11 bits");
__attribute__((always_inline)) inline void hist_add16(const float* __restrict x,
                                                      uint32_t (&hist)[4][Acc::kSignedBins]) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(FPSCOPE_NO_INLINE_ASM)
  static_assert(sizeof hist[0] == 8192, "sub-histograms 8192 bytes apart");
  // Element `i` into sub-histogram `sub` (its byte offset) through registers r32/r64.
#define FPSCOPE_HIST_INC(i, r32, r64, sub) \
  "movl " i "(%[x]), %%" r32               \
  "\n\t"                                   \
  "shrl $21, %%" r32                       \
  "\n\t"                                   \
  "addl $1, " sub "(%[h],%%" r64 ",4)\n\t"
#define FPSCOPE_HIST_INC4(o)                          \
  FPSCOPE_HIST_INC(#o "*16+0", "eax", "rax", "0")     \
  FPSCOPE_HIST_INC(#o "*16+4", "ecx", "rcx", "8192")  \
  FPSCOPE_HIST_INC(#o "*16+8", "edx", "rdx", "16384") \
  FPSCOPE_HIST_INC(#o "*16+12", "esi", "rsi", "24576")
  asm volatile(FPSCOPE_HIST_INC4(0) FPSCOPE_HIST_INC4(1) FPSCOPE_HIST_INC4(2) FPSCOPE_HIST_INC4(3)
               : "+m"(hist)
               : [x] "r"(x), [h] "r"(&hist[0][0]), "m"(*reinterpret_cast<const float(*)[16]>(x))
               : "rax", "rcx", "rdx", "rsi");
#undef FPSCOPE_HIST_INC4
#undef FPSCOPE_HIST_INC
#else
  for (int i = 0; i < 16; i += 4)
    for (int k = 0; k < 4; ++k) ++hist[k][detail::f2u(x[i + k]) >> kHistBinShift];
#endif
}

// ---- block-scaled formats (kBlockFormats) -----------------------------------------------------
// A "line" is a run of consecutive elements that blocks tile from its start (a stored column, or
// a row gathered from a panel of stored columns). Each piece of at most kBlock elements of a
// line is handled here right after the plain statistics saw it (still in L1; a piece of whole
// MX blocks takes its sum x^2 and zeros from the plain loop's): one loop for the amax of each
// 16-element half, then
//  - MX: the per-block counts (blocks, zero blocks, scale underflow, scale histogram) depend
//    only on the biased exponent E of the block's amax: one histogram of E per part, folded into
//    the five formats at the end (fold_mx_blocks). With all five on, the blocks whose scales
//    cannot clamp go through one fused loop for the five (mx_fused: one multiply into the
//    common domain x * 2^(127 - E), each format's cast_sat thresholds shifted by its emax; a
//    variant without the saturation count and clamp for blocks whose amax is below every
//    format's saturation threshold); the others, and every block when only some MX formats are
//    on, through one loop per format (blocks_fast with the multiplier 2^-shared_exp, exact);
//  - NVFP4: one loop over its blocks with the multiplier s_enc / sf.
// Counts are exact (cast_sat's thresholds on |y|'s pattern) and kept in per-lane arrays. A piece
// holding NaN/Inf, a line's partial last block and NVFP4 blocks whose scale is 0 or saturates go
// block by block through block_numerics.h's block_stats_of (the same math, scalar). Squared
// errors are summed in FP32 lanes within the piece, relative to its largest block's error unit,
// then in double: each block's sum_err2 is within ~1e-5 (relative) of block_stats_of's, and a
// block more than 2^126 below the piece's largest one adds 0 there (less than 2^-250 of that
// block's sum x^2).
struct BlockCfg {
  uint32_t mask = 0;
  BlockAxis axis = BlockAxis::Rows;
  float nvfp4_scale = 1.0f;
};
constexpr int kMxBlock = 32, kNvBlock = 16;
constexpr uint32_t kMxMask = kAllBlockFormats >> 1;  // the five MX formats (NVFP4 is last)
constexpr size_t kMaxHalves = kBlock / kNvBlock;
static_assert(kBlock % kMxBlock == 0, "pieces of a line start at block boundaries");

// nb full blocks of B elements of element format E: block b's elements are cast as
// cast_sat<E>(x * p[b]) (cast_sat's thresholds on |y|'s pattern, as numerics.h's targets do), its
// error (y - cast) * u[b] squared and summed in FP32 lanes. Adds #(cast is 0) (zeros included),
// #saturated and the error sum.
template <const FormatSpec& E, int B>
FPSCOPE_CLONES void blocks_fast(const float* __restrict x, const float* __restrict p,
                                const float* __restrict u, size_t nb, uint64_t* low, uint64_t* sat,
                                double* err) {
  using P = detail::SatCastParams<E>;
  uint32_t c_low[B] = {}, c_sat[B] = {};
  float ef[B] = {};
  for (size_t b = 0; b < nb; ++b) {
    const float pb = p[b], ub = u[b];
    const float* xb = x + b * B;
#pragma omp simd
    for (int l = 0; l < B; ++l) {
      const float y = detail::mul_rn(xb[l], pb);
      const auto a = static_cast<int32_t>(detail::f2u(y) & kFp32AbsMask);
      c_low[l] += static_cast<uint32_t>(a - (P::kUnderflowMaxBits + 1)) >> 31;
      const detail::SatAbs r = detail::sat_abs_bits<E>(a);
      c_sat[l] += r.saturated;
      const float d = detail::sub_rn(detail::u2f(static_cast<uint32_t>(a)),
                                     detail::u2f(static_cast<uint32_t>(r.bits))) *
                      ub;
      ef[l] += d * d;
    }
  }
  uint64_t tl = 0, ts = 0;
  double te = 0;
  for (int l = 0; l < B; ++l) {
    tl += c_low[l];
    ts += c_sat[l];
    te += static_cast<double>(ef[l]);
  }
  *low += tl;
  *sat += ts;
  *err += te;
}

// Scalar path: block by block with block_stats_of.
inline void blocks_slow(int f, const float* x, size_t n, float nvfp4_scale, BlockStatsSet& bs) {
  const auto bsz = static_cast<size_t>(block_size_of(f));
  for (size_t i = 0; i < n; i += bsz) {
    const int m = static_cast<int>(std::min(bsz, n - i));
    accumulate_block(bs, f, block_stats_of(f, x + i, m, nvfp4_scale), m);
  }
}

// Per 16-element half of a piece: largest |x| pattern (NaN/Inf patterns included). Over the
// piece: zeros and sum of x^2 (double) of the MX full blocks' elements and of a trailing half
// (the NVFP4 block past the last full MX block, when the piece holds an odd number of halves).
struct PieceInfo {
  size_t nh;  // full halves
  size_t nb;  // full MX blocks (nh / 2)
  int32_t amax[kMaxHalves];
  int32_t all;  // the largest of amax (at or above kFp32InfBitsI32: the piece holds NaN/Inf)
  // Per full MX block: its largest |x| pattern and that pattern's biased exponent; the largest
  // exponent and how many blocks are all zero.
  int32_t block_amax[kBlock / kMxBlock];
  int32_t ebias[kBlock / kMxBlock];
  int32_t etop;
  uint32_t zero_blocks;
  uint64_t zeros_mx, zeros_odd;
  double x2_mx, x2_odd;
};

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(FPSCOPE_NO_TARGET_CLONES)
#define FPSCOPE_HALF_AMAX_AVX512 1
// The largest |x| pattern of each of 16 consecutive halves (256 floats) with AVX-512: the 16
// vectors are reduced together by a transposing tree (each step: two shuffles and one max per
// pair, halving the vectors and the values per half), ~65 instructions where 16 horizontal
// reductions took ~200. Patterns are non-negative, so the signed max orders them.
__attribute__((target("avx512f"))) void half_amax_x16(const float* __restrict x,
                                                      int32_t* __restrict out) {
  const __m512i abs_mask = _mm512_set1_epi32(kFp32AbsMaskI32);
  __m512i v[16];
  for (int h = 0; h < 16; ++h) v[h] = _mm512_and_si512(_mm512_loadu_si512(x + 16 * h), abs_mask);
  // 128-bit chunks c0..c3. Step 1: halves 2k, 2k+1 -> [2k: c0|c2, c1|c3; 2k+1: c0|c2, c1|c3].
  __m512i w[8];
  for (int k = 0; k < 8; ++k)
    w[k] = _mm512_max_epi32(_mm512_shuffle_i32x4(v[2 * k], v[2 * k + 1], 0x44),
                            _mm512_shuffle_i32x4(v[2 * k], v[2 * k + 1], 0xEE));
  // Step 2: chunk j of y[k] holds half 4k + j, 4 values.
  __m512i y[4];
  for (int k = 0; k < 4; ++k)
    y[k] = _mm512_max_epi32(_mm512_shuffle_i32x4(w[2 * k], w[2 * k + 1], 0x88),
                            _mm512_shuffle_i32x4(w[2 * k], w[2 * k + 1], 0xDD));
  // Step 3: chunk j of z[k]: half 8k + j (2 values), then half 8k + 4 + j (2 values).
  __m512i z[2];
  for (int k = 0; k < 2; ++k)
    z[k] = _mm512_max_epi32(_mm512_unpacklo_epi64(y[2 * k], y[2 * k + 1]),
                            _mm512_unpackhi_epi64(y[2 * k], y[2 * k + 1]));
  // Step 4: each pair of values of a half, maxed with its neighbour; even lanes from z[0], odd
  // from z[1]: chunk j holds halves j, 8 + j, 4 + j, 12 + j; the permutation puts half h at h.
  const __m512i z0 = _mm512_max_epi32(z[0], _mm512_shuffle_epi32(z[0], _MM_PERM_CDAB));
  const __m512i z1 = _mm512_max_epi32(z[1], _mm512_shuffle_epi32(z[1], _MM_PERM_CDAB));
  const __m512i r = _mm512_mask_blend_epi32(0xAAAA, z0, z1);
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 1, 5, 9, 13, 3, 7, 11, 15);
  _mm512_storeu_si512(out, _mm512_permutexvar_epi32(order, r));
}

bool has_avx512f() {
  static const bool yes = __builtin_cpu_supports("avx512f") != 0;
  return yes;
}
#endif

// own: the plain pass's sums over the same n elements, or null.
FPSCOPE_CLONES void piece_info(const float* __restrict x, size_t n, const OwnSums* own,
                               PieceInfo& pi) {
  int32_t* __restrict amax = pi.amax;
  size_t h0 = 0;
#ifdef FPSCOPE_HALF_AMAX_AVX512
  if (has_avx512f())
    for (; h0 + 16 <= pi.nh; h0 += 16) half_amax_x16(x + h0 * kNvBlock, amax + h0);
#endif
  for (size_t h = h0; h < pi.nh; ++h) {
    const float* xh = x + h * kNvBlock;
    int32_t m = 0;
#pragma omp simd reduction(max : m)
    for (int l = 0; l < kNvBlock; ++l) {
      const auto a = static_cast<int32_t>(detail::f2u(xh[l]) & kFp32AbsMask);
      m = a > m ? a : m;
    }
    amax[h] = m;
  }
  int32_t all = 0;
#pragma omp simd reduction(max : all)
  for (size_t h = 0; h < pi.nh; ++h) all = amax[h] > all ? amax[h] : all;
  pi.all = all;
  int32_t* __restrict bmax = pi.block_amax;
  int32_t* __restrict ebias = pi.ebias;
  int32_t etop = 0;
  uint32_t zb = 0;
#pragma omp simd reduction(max : etop) reduction(+ : zb)
  for (size_t b = 0; b < pi.nb; ++b) {
    const int32_t m = amax[2 * b] > amax[2 * b + 1] ? amax[2 * b] : amax[2 * b + 1];
    bmax[b] = m;
    ebias[b] = m >> kFp32ManBits;
    etop = ebias[b] > etop ? ebias[b] : etop;
    zb += static_cast<uint32_t>(m == 0);
  }
  pi.etop = etop;
  pi.zero_blocks = zb;
  auto sums = [x](size_t i0, size_t i1, uint64_t* zeros, double* x2) {
    uint32_t z = 0;  // i1 - i0 <= kBlock: cannot wrap
    double s = 0;
#pragma omp simd reduction(+ : z, s)
    for (size_t i = i0; i < i1; ++i) {
      const auto a = static_cast<int32_t>(detail::f2u(x[i]) & kFp32AbsMask);
      z += static_cast<uint32_t>(a - 1) >> 31;
      const auto xd = static_cast<double>(x[i]);
      s += xd * xd;
    }
    *zeros = z;
    *x2 = s;
  };
  if (own != nullptr && n == pi.nb * kMxBlock) {  // whole MX blocks: the plain pass's sums
    pi.x2_mx = own->x2;
    pi.zeros_mx = own->zeros;
    pi.x2_odd = 0;
    pi.zeros_odd = 0;
    return;
  }
  sums(0, pi.nb * kMxBlock, &pi.zeros_mx, &pi.x2_mx);
  sums(pi.nb * kMxBlock, pi.nh * kNvBlock, &pi.zeros_odd, &pi.x2_odd);
}

// MX format F (kBlockFormats[F], element spec B) over nb full blocks of a clean piece, block
// b's amax of biased exponent ebias[b] (at most etop): adds #(cast is 0) (zeros included: the
// caller takes them out), #saturated and the error sum. mx_scale's exponent of a block depends
// only on that exponent E (max(E - 127 - emax, -127)): the per-block counts (blocks, zero blocks,
// scale underflow, scale histogram) come from the histogram of E that block_formats_piece keeps
// for all MX formats at once (fold_mx_blocks).
template <int F, const FormatSpec& B>
void mx_piece(const float* x, size_t nb, const int32_t* ebias, int32_t etop, BlockStatsSet& bs) {
  if (nb == 0) return;
  alignas(64) float p[kBlock / kMxBlock], u[kBlock / kMxBlock];
  constexpr int kEmax = max_exp(B);
  const int top = std::max(etop - kFp32Bias - kEmax, kE8M0MinExp);
  for (size_t b = 0; b < nb; ++b) {
    const int e = std::max(ebias[b] - kFp32Bias - kEmax, kE8M0MinExp);         // mx_scale's exp
    p[b] = detail::u2f(static_cast<uint32_t>(kFp32Bias - e) << kFp32ManBits);  // 2^-e, normal
    const int k = e - top;  // error unit relative to the piece's largest: 2^k
    u[b] = k < kFp32MinNormalExp
               ? 0.0f
               : detail::u2f(static_cast<uint32_t>(k + kFp32Bias) << kFp32ManBits);
  }
  BlockFormatCounts& c = bs.fmt[F];
  double err = 0;
  blocks_fast<B, kMxBlock>(x, p, u, nb, &c.flushed, &c.saturated, &err);
  c.sum_err2 += err * std::ldexp(1.0, 2 * top);
}

// All five MX formats at once over the blocks idx[0..nf) of a clean piece whose amax has biased
// exponent E in [kFusedMinE, kFusedMaxE] (kSat = false: and is below 1.75 * 2^(E - 127)). In the
// domain z = x * 2^(127 - E) (exact: z is 0 or normal where it matters, below), format f's scaled
// value is y = z * 2^emax_f, so its cast's thresholds are cast_sat's shifted down by emax_f
// exponents (ZCast): one multiply for the five. No scale clamps (E >= 15 = the largest emax);
// without kSat no element saturates either (|z| < 1.75 is below every MX format's saturation
// threshold, the lowest being MXFP4's 1.75), so that loop has no clamp. A z that FP32 rounds to a
// subnormal or to 0 lies below 2^-126, far under every format's flush threshold (MXFP8 E5M2's:
// 2^-32): it flushes as it should, and its squared error is below FP32's range there as in
// blocks_fast. Squared errors are summed relative to the largest block's unit 2^(etop - 127) as in
// mx_piece: per block, its 32 squared errors in the z domain (two per lane) times u^2 = 2^(2 (E -
// etop)), one multiply per block and format; a block more than 2^63 below the piece's largest adds
// 0 (u^2 below FP32's normal range: its errors are below 2^-126 of that block's unit). kHist: the
// blocks' elements also go into the histogram (hist_add16), for the caller.
constexpr int32_t kFusedMinE = 15, kFusedMaxE = 253;  // 2^(127 - E) must be a normal float
constexpr int32_t kFusedMaxMantissa = 0x600000;       // 1.75: mantissa field of amax below this

template <const FormatSpec& B>
struct ZCast {
  using P = detail::SatCastParams<B>;
  static constexpr int32_t kDown = max_exp(B) << kFp32ManBits;
  static constexpr int32_t kLowLimit = P::kUnderflowMaxBits + 1 - kDown;
  static constexpr int32_t kMinNormal = P::kMinNormalBits - kDown;
  static constexpr int32_t kMax = P::kMaxBits - kDown;
  static constexpr int32_t kOverflow = P::kOverflowBits - kDown;
  static_assert(P::kUnderflowMaxBits - kDown > (int32_t{1} << kFp32ManBits),
                "the shifted flush threshold is a normal FP32 value");
};

// mx_fused's lanes: fixed-width vectors (GCC/Clang vector extensions; each ISA clone splits them
// into its own registers). Its accumulators are values, not arrays: hist_add16's stores cannot
// alias them, so they stay in registers next to the histogram's increments.
typedef int32_t I32x16 __attribute__((vector_size(64)));
typedef uint32_t U32x16 __attribute__((vector_size(64)));
typedef float F32x16 __attribute__((vector_size(64)));

// v in every lane, as one broadcast (GCC 12 built a brace list of 16 copies, or v - 0, from 16
// masked broadcasts).
// (Vectors by reference: 64-byte vectors by value change the ABI between ISA clones.)
__attribute__((always_inline)) inline void splat(float v, F32x16& out) {
  F32x16 t{};
  t[0] = v;
  out = __builtin_shufflevector(t, t, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

// One format's step over 16 lanes (a: the |z| patterns, ea: their exponent fields): counts into
// low and sat, returns the squared errors in the z domain. kSat: the block's amax may reach format
// B's saturation threshold: count and clamp as cast_sat does (in the z domain: its max and
// threshold shifted down likewise).
template <const FormatSpec& B, bool kSat>
__attribute__((always_inline)) inline void z_step(const I32x16& a, const U32x16& ea, U32x16& low,
                                                  U32x16& sat, F32x16& d2) {
  using Z = ZCast<B>;
  low += reinterpret_cast<U32x16>(a - Z::kLowLimit) >> 31;
  // max(ea, min normal) + offset as max(ea + offset, min normal + offset): ea + offset is the
  // same for the formats with as many mantissa bits (computed once). |z| < 2: no overflow.
  const U32x16 eo = ea + Z::P::kMagicExpOffset;
  constexpr uint32_t kMo = static_cast<uint32_t>(Z::kMinNormal) + Z::P::kMagicExpOffset;
  const U32x16 mo = U32x16{} + kMo;
  const F32x16 m = reinterpret_cast<F32x16>(eo > mo ? eo : mo);
  const F32x16 az = reinterpret_cast<F32x16>(a);
  F32x16 r = (az + m) - m;  // numerics.h's add_rn, sub_rn: -ffp-contract=off, no reassociation
  if constexpr (kSat) {
    sat -= reinterpret_cast<U32x16>(Z::P::kMaxOdd ? a >= Z::kOverflow : a > Z::kOverflow);
    F32x16 top;
    splat(detail::u2f(static_cast<uint32_t>(Z::kMax)), top);
    r = a > Z::kMax ? top : r;
  }
  const F32x16 d = az - r;
  d2 = d * d;
}

// One format over a block's two rows: both rows' squared errors (z domain), then one multiply by
// the block's u^2 (a power of two: exact where it does not underflow).
template <const FormatSpec& B, bool kSat>
__attribute__((always_inline)) inline void z_block(const I32x16& a0, const U32x16& ea0,
                                                   const I32x16& a1, const U32x16& ea1,
                                                   const F32x16& u2, U32x16& low, U32x16& sat,
                                                   F32x16& e) {
  F32x16 p, q;
  z_step<B, kSat>(a0, ea0, low, sat, p);
  z_step<B, kSat>(a1, ea1, low, sat, q);
  e += (p + q) * u2;
}

static_assert(kBlockFormats[0] == &kMxfp8E4M3 && kBlockFormats[1] == &kMxfp8E5M2 &&
                  kBlockFormats[2] == &kMxfp6E3M2 && kBlockFormats[3] == &kMxfp6E2M3 &&
                  kBlockFormats[4] == &kMxfp4,
              "mx_fused's formats in kBlockFormats' order");
static_assert(kMxBlock == 2 * kNvBlock && kNvBlock == 16, "an MX block is two rows of 16 lanes");

template <bool kSat, bool kHist>
FPSCOPE_CLONES void mx_fused(const float* __restrict x, const uint32_t* __restrict idx, size_t nf,
                             const int32_t* __restrict ebias, int32_t etop, uint64_t* low,
                             uint64_t* sat, double* err, uint32_t (*hist)[4][Acc::kSignedBins]) {
  U32x16 l0{}, l1{}, l2{}, l3{}, l4{};
  U32x16 s0{}, s1{}, s2{}, s3{}, s4{};
  F32x16 e0{}, e1{}, e2{}, e3{}, e4{};
  for (size_t k = 0; k < nf; ++k) {
    const size_t b = idx[k];
    const float pz = detail::u2f(static_cast<uint32_t>(2 * kFp32Bias - ebias[b]) << kFp32ManBits);
    const int32_t ku = ebias[b] - etop;
    // The block's squared errors in units of the largest block's: u^2 = 2^(2 ku), 0 where that
    // is below FP32's normal range (the block's errors are then below 2^-126 of that unit).
    const float u2 = 2 * ku < kFp32MinNormalExp
                         ? 0.0f
                         : detail::u2f(static_cast<uint32_t>(2 * ku + kFp32Bias) << kFp32ManBits);
    F32x16 pzv, u2v;
    splat(pz, pzv);
    splat(u2, u2v);
    const float* xb = x + b * kMxBlock;
    F32x16 x0, x1;  // the block's two rows of 16 lanes
    __builtin_memcpy(&x0, xb, sizeof x0);
    __builtin_memcpy(&x1, xb + kNvBlock, sizeof x1);
    const F32x16 z0 = x0 * pzv, z1 = x1 * pzv;  // mul_rn
    const I32x16 a0 = reinterpret_cast<I32x16>(reinterpret_cast<U32x16>(z0) & kFp32AbsMask);
    const I32x16 a1 = reinterpret_cast<I32x16>(reinterpret_cast<U32x16>(z1) & kFp32AbsMask);
    constexpr auto kExp = static_cast<uint32_t>(kFp32ExpMaskI32);
    const U32x16 ea0 = reinterpret_cast<U32x16>(a0) & kExp;
    const U32x16 ea1 = reinterpret_cast<U32x16>(a1) & kExp;
    // The histogram's two rows between the formats: close to vector work the core can overlap
    // them with (a core shared with another thread has half the window to do it in).
    z_block<kMxfp8E4M3, kSat>(a0, ea0, a1, ea1, u2v, l0, s0, e0);
    z_block<kMxfp8E5M2, kSat>(a0, ea0, a1, ea1, u2v, l1, s1, e1);
    if constexpr (kHist) hist_add16(xb, *hist);
    z_block<kMxfp6E3M2, kSat>(a0, ea0, a1, ea1, u2v, l2, s2, e2);
    z_block<kMxfp6E2M3, kSat>(a0, ea0, a1, ea1, u2v, l3, s3, e3);
    if constexpr (kHist) hist_add16(xb + kNvBlock, *hist);
    z_block<kMxfp4, kSat>(a0, ea0, a1, ea1, u2v, l4, s4, e4);
  }
  uint64_t t[5] = {}, ts[5] = {};
  double te[5] = {};
  for (int l = 0; l < kNvBlock; ++l) {
    t[0] += l0[l], t[1] += l1[l], t[2] += l2[l], t[3] += l3[l], t[4] += l4[l];
    ts[0] += s0[l], ts[1] += s1[l], ts[2] += s2[l], ts[3] += s3[l], ts[4] += s4[l];
    te[0] += static_cast<double>(e0[l]), te[1] += static_cast<double>(e1[l]);
    te[2] += static_cast<double>(e2[l]), te[3] += static_cast<double>(e3[l]);
    te[4] += static_cast<double>(e4[l]);
  }
  const double unit2 = std::ldexp(1.0, 2 * (etop - kFp32Bias));
  for (int f = 0; f < 5; ++f) {
    low[f] += t[f];
    sat[f] += ts[f];
    err[f] += te[f] * unit2;
  }
}

// The MX block counts of a histogram of block amax biased exponents (E: 0..254, finite blocks)
// and the number of all-zero blocks among them, for every MX format of mask: what mx_scale and
// accumulate_block give each block (scale code max(E - emax, 0), its histogram bin; underflow
// when 0 < amax and E < emax).
void fold_mx_blocks(const uint64_t* ehist, uint64_t zero_blocks, uint32_t mask, BlockStatsSet& bs) {
  if ((mask & kMxMask) == 0) return;
  uint64_t blocks = 0, under[kNumBlockFormats - 1] = {};
  int emax[kNumBlockFormats - 1];
  for (int f = 0; f + 1 < kNumBlockFormats; ++f) emax[f] = max_exp(*kBlockFormats[f]);
  for (int e = 0; e < kBlockScaleBins; ++e) {  // one scan: the histogram is mostly empty
    const uint64_t n = ehist[e];
    if (n == 0) continue;
    blocks += n;
    for (int f = 0; f + 1 < kNumBlockFormats; ++f) {
      under[f] += e < emax[f] ? n : 0;
      bs.scale_hist[f][std::max(e - emax[f], 0)] += (mask >> f & 1u) ? n : 0;
    }
  }
  for (int f = 0; f + 1 < kNumBlockFormats; ++f) {
    if (!(mask >> f & 1u)) continue;
    BlockFormatCounts& c = bs.fmt[f];
    c.blocks += blocks;
    c.elements += blocks * kMxBlock;
    c.zero_blocks += zero_blocks;
    c.scale_underflow += under[f] - zero_blocks;  // zero blocks have E = 0 < emax: no underflow
  }
}

// The NVFP4 block scales of nb blocks of finite amax patterns (nvfp4_block_stats' steps, as
// cast_sat<E4M3> of a finite, non-negative value: every block at once, vectorized): p[b] the
// multiplier s_enc / sf (0 in slow blocks), sf[b] the scale (0 in slow blocks), slow[b] whether
// block b takes the scalar path (a zero or saturated scale, or a multiplier that is not finite:
// |x * p| would be unbounded and its error overflow the FP32 lanes); *top the largest sf.
FPSCOPE_CLONES void nvfp4_scales(const int32_t* __restrict amax, size_t nb, float s_enc,
                                 float* __restrict p, float* __restrict sf,
                                 uint32_t* __restrict slow, float* top) {
  using P = detail::SatCastParams<kE4M3>;
  const float e2m1_max = max_finite(kE2M1);
  const uint32_t one_bits = detail::f2u(1.0f);
#pragma omp simd
  for (size_t b = 0; b < nb; ++b) {
    const float want = detail::mul_rn(
        detail::div_rn(detail::u2f(static_cast<uint32_t>(amax[b])), e2m1_max), s_enc);
    const auto a = static_cast<int32_t>(detail::f2u(want));  // >= 0, finite or +Inf
    // The zero test on a, not on the cast: a test on the cast made GCC 12 branch and not
    // vectorize the loop.
    const detail::SatAbs c = detail::sat_abs_bits<kE4M3>(a);
    const int32_t r = c.bits;
    const uint32_t sat = c.saturated;
    const float v = detail::u2f(static_cast<uint32_t>(r));
    const uint32_t zero = static_cast<uint32_t>(a <= P::kUnderflowMaxBits);  // v is 0
    // Never a division by zero (a program may trap FE_DIVBYZERO): 1 stands in for a zero scale
    // (r is 0 then; bits, not a float select, which GCC 12 turns into a branch).
    const float inv =
        detail::div_rn(s_enc, detail::u2f(static_cast<uint32_t>(r) | ((0u - zero) & one_bits)));
    const uint32_t s = zero | sat | static_cast<uint32_t>(detail::f2u(inv) >= kFp32InfBits);
    slow[b] = s;
    const uint32_t keep = s - 1u;  // all ones in fast blocks
    sf[b] = detail::u2f(detail::f2u(v) & keep);
    p[b] = detail::u2f(detail::f2u(inv) & keep);  // slow blocks: 0, taken out of the fast counts
  }
  float t = 0;
#pragma omp simd reduction(max : t)
  for (size_t b = 0; b < nb; ++b) t = t > sf[b] ? t : sf[b];
  *top = t;
}

// NVFP4 over the full blocks of a clean piece; blocks with a zero or saturated scale (or a
// multiplier that is not finite) go through the scalar path.
void nvfp4_piece(const float* x, const PieceInfo& pi, float s_enc, BlockStatsSet& bs) {
  constexpr int F = kNumBlockFormats - 1;
  const size_t nb = pi.nh;
  if (nb == 0) return;
  alignas(64) float p[kMaxHalves], u[kMaxHalves], sf[kMaxHalves];
  alignas(64) uint32_t slow[kMaxHalves];
  float top = 0;
  nvfp4_scales(pi.amax, nb, s_enc, p, sf, slow, &top);
  BlockFormatCounts& c = bs.fmt[F];
  uint64_t slow_zeros = 0, slow_blocks = 0;
  double slow_x2 = 0;
  for (size_t b = 0; b < nb; ++b) {
    if (slow[b]) {
      const BlockStats r = nvfp4_block_stats(x + b * kNvBlock, kNvBlock, s_enc);
      accumulate_block(bs, F, r, kNvBlock);
      for (int l = 0; l < kNvBlock; ++l)
        slow_zeros += (detail::f2u(x[b * kNvBlock + static_cast<size_t>(l)]) & kFp32AbsMask) == 0;
      slow_x2 += r.sum_x2;
      ++slow_blocks;
    } else {
      ++bs.scale_hist[F][block_scale_bin(sf[b])];
    }
  }
  // Error unit of block b relative to the largest one: sf_b / sf_top (E4M3 values: their ratio
  // is a short binary fraction, exact in FP32 up to a rounding of the quotient).
  const float inv_top = top > 0 ? 1.0f / top : 0.0f;
  for (size_t b = 0; b < nb; ++b) u[b] = sf[b] * inv_top;
  uint64_t low = 0;
  double err = 0;
  blocks_fast<kE2M1, kNvBlock>(x, p, u, nb, &low, &c.saturated, &err);
  const uint64_t fast = nb - slow_blocks;
  c.blocks += fast;
  c.elements += fast * kNvBlock;
  c.flushed += low - (pi.zeros_mx + pi.zeros_odd - slow_zeros) - slow_blocks * kNvBlock;
  // Slow blocks' x^2 was added by accumulate_block; the rest is the piece's minus theirs (each
  // a sum of squares: the difference loses at most the slow blocks' share of accuracy).
  c.sum_x2 += slow_blocks == 0 ? pi.x2_mx + pi.x2_odd : pi.x2_mx + pi.x2_odd - slow_x2;
  const double unit = static_cast<double>(top) / static_cast<double>(s_enc);
  c.sum_err2 += err * unit * unit;
}

// One piece (n <= kBlock elements of a line, starting at a block boundary of the line).
// hist: the piece's elements are added to the histogram here (process_floats left them out):
// the blocks mx_fused takes inside its loop, the others with block_hist.
void block_formats_piece(const float* x, size_t n, const BlockCfg& bc, const OwnSums* own, Acc& acc,
                         bool hist) {
  BlockStatsSet& bs = acc.blocks;
  PieceInfo pi;
  pi.nh = n / kNvBlock;
  pi.nb = n / kMxBlock;
  piece_info(x, n, own, pi);
  const bool clean = pi.all < kFp32InfBitsI32;
  const bool fused = clean && pi.nb > 0 && (bc.mask & kMxMask) == kMxMask;
  if (hist && !fused) {
    block_hist(x, n, acc);
    hist_counted(n, acc);
  }
  if (clean && pi.nb > 0 && (bc.mask & kMxMask) != 0) {
    const int32_t* ebias = pi.ebias;
    const int32_t etop = pi.etop;
    for (size_t b = 0; b < pi.nb; ++b) ++acc.mx_ehist[ebias[b]];
    acc.mx_zero_blocks += pi.zero_blocks;
    const float* xs = x;  // the blocks the per-format loops take, their amax exponents
    const int32_t* es = ebias;
    size_t ns = pi.nb;
    int32_t stop = etop;
    alignas(64) float rest[kBlock];
    int32_t rest_e[kBlock / kMxBlock];
    if (fused) {
      // Every MX format on: blocks whose scales cannot clamp go through mx_fused (those whose
      // amax may saturate a format in its clamping variant), the rest, gathered, through the
      // per-format loops.
      // The fused blocks without (idx0) and with (idx1) saturation. Both lists are written and
      // one count advances: the counts stay in registers (a count picked by index went through
      // memory, and each block waited for the previous one's store).
      uint32_t idx0[kBlock / kMxBlock], idx1[kBlock / kMxBlock];
      size_t nf0 = 0, nf1 = 0;
      int32_t ftop = 0;
      ns = 0;
      stop = 0;
      for (size_t b = 0; b < pi.nb; ++b) {
        const int32_t amax = pi.block_amax[b];
        const int32_t e = ebias[b];
        if (e >= kFusedMinE && e <= kFusedMaxE) {
          const size_t may_sat =
              (amax & static_cast<int32_t>(kFp32ManMask)) >= kFusedMaxMantissa ? 1 : 0;
          idx0[nf0] = static_cast<uint32_t>(b);
          idx1[nf1] = static_cast<uint32_t>(b);
          nf0 += 1 - may_sat;
          nf1 += may_sat;
          ftop = std::max(ftop, e);
        } else {
          if (hist) block_hist(x + b * kMxBlock, kMxBlock, acc);
          std::memcpy(rest + ns * kMxBlock, x + b * kMxBlock, kMxBlock * sizeof(float));
          rest_e[ns++] = e;
          stop = std::max(stop, e);
        }
      }
      xs = rest;
      es = rest_e;
      uint64_t low[5] = {}, sat[5] = {};
      double err[5] = {};
      acc.hist_signed |= hist;
      with_bool(hist, [&](auto kH) {
        if (nf0 > 0) mx_fused<false, kH()>(x, idx0, nf0, ebias, ftop, low, sat, err, &acc.hist);
        if (nf1 > 0) mx_fused<true, kH()>(x, idx1, nf1, ebias, ftop, low, sat, err, &acc.hist);
      });
      if (hist) {
        const size_t tail = pi.nb * kMxBlock;  // the elements past the last whole MX block
        block_hist(x + tail, n - tail, acc);
        hist_counted(n, acc);
      }
      for (int f = 0; f < 5; ++f) {
        bs.fmt[f].flushed += low[f];
        bs.fmt[f].saturated += sat[f];
        bs.fmt[f].sum_err2 += err[f];
      }
    }
    if (bc.mask >> 0 & 1u) mx_piece<0, kMxfp8E4M3>(xs, ns, es, stop, bs);
    if (bc.mask >> 1 & 1u) mx_piece<1, kMxfp8E5M2>(xs, ns, es, stop, bs);
    if (bc.mask >> 2 & 1u) mx_piece<2, kMxfp6E3M2>(xs, ns, es, stop, bs);
    if (bc.mask >> 3 & 1u) mx_piece<3, kMxfp6E2M3>(xs, ns, es, stop, bs);
    if (bc.mask >> 4 & 1u) mx_piece<4, kMxfp4>(xs, ns, es, stop, bs);
    for (int f = 0; f + 1 < kNumBlockFormats; ++f) {
      if (!(bc.mask >> f & 1u)) continue;
      bs.fmt[f].flushed -= pi.zeros_mx;  // the loops counted zeros as flushed
      bs.fmt[f].sum_x2 += pi.x2_mx;
    }
  }
  for (int f = 0; f < kNumBlockFormats; ++f) {
    if (!(bc.mask >> f & 1u)) continue;
    const auto bsz = static_cast<size_t>(block_size_of(f));
    const size_t full = clean ? n / bsz * bsz : 0;  // elements the fast path takes
    if (clean && f == kNumBlockFormats - 1) nvfp4_piece(x, pi, bc.nvfp4_scale, bs);
    if (full < n) blocks_slow(f, x + full, n - full, bc.nvfp4_scale, bs);
  }
}

// hist = false: the caller histograms the elements itself (block_formats_piece).
OwnSums process_floats(const float* x, size_t n, const ScaleSet& sc, Acc& acc, bool hist = true) {
  OwnSums own;
  while (n > 0) {
    const size_t m = std::min(n, kBlock);
    const OwnSums o = block_scalars(x, m, sc, acc);
    own.x2 += o.x2;
    own.zeros += o.zeros;
    if (hist) {
      block_hist(x, m, acc);
      hist_counted(m, acc);
    }
    x += m;
    n -= m;
  }
  return own;
}

template <Format F, class T>
FPSCOPE_CLONES void decode_block(const T* __restrict src, size_t n, float* __restrict dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = decode_storage_t<F>(src[i]);
}

// Feeds the view's elements (rows x cols at stride ld) of storage type T/F through the loops.
template <Format F, class T>
void process_view(const T* base, uint64_t rows, uint64_t c0, uint64_t c1, uint64_t ld,
                  const ScaleSet& sc, Acc& acc) {
  if constexpr (F == Format::FP32) {
    if (rows >= 256 || ld == rows) {  // in place: one contiguous run per column (or overall)
      if (ld == rows) {
        process_floats(reinterpret_cast<const float*>(base + c0 * ld), rows * (c1 - c0), sc, acc);
      } else {
        for (uint64_t j = c0; j < c1; ++j)
          process_floats(reinterpret_cast<const float*>(base + j * ld), rows, sc, acc);
      }
      return;
    }
  }
  // Gather (and decode) into a block buffer.
  alignas(64) float buf[kBlock];
  size_t fill = 0;
  for (uint64_t j = c0; j < c1; ++j) {
    const T* col = base + j * ld;
    uint64_t i = 0;
    while (i < rows) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(rows - i, kBlock - fill));
      if constexpr (F == Format::FP32)
        std::memcpy(buf + fill, col + i, take * sizeof(float));
      else
        decode_block<F, T>(col + i, take, buf + fill);
      fill += take;
      i += take;
      if (fill == kBlock) {
        process_floats(buf, fill, sc, acc);
        fill = 0;
      }
    }
  }
  if (fill > 0) process_floats(buf, fill, sc, acc);
}

// The same with the block-scaled formats, each piece of the data read once: blocks along the
// stored columns (Rows: each column is a line, in pieces of kBlock starting at its first row)
// or along the stored rows (Cols: panels of 32 columns gathered row by row into a tile whose
// rows are the lines, so a full panel's tile is one piece of whole blocks).
template <Format F, class T>
void process_view_blocks_in(const T* base, uint64_t rows, uint64_t c0, uint64_t c1, uint64_t ld,
                            const ScaleSet& sc, const BlockCfg& bc, Acc& acc) {
  alignas(64) float buf[kBlock];
  auto load = [&](const T* src, size_t n, float* dst) {
    if constexpr (F == Format::FP32)
      std::memcpy(dst, src, n * sizeof(float));
    else
      decode_block<F, T>(src, n, dst);
  };
  if (bc.axis == BlockAxis::Rows) {
    for (uint64_t j = c0; j < c1; ++j) {
      const T* col = base + j * ld;
      for (uint64_t i = 0; i < rows; i += kBlock) {
        const auto m = static_cast<size_t>(std::min<uint64_t>(rows - i, kBlock));
        const float* x = buf;
        if constexpr (F == Format::FP32)
          x = reinterpret_cast<const float*>(col + i);  // in place
        else
          load(col + i, m, buf);
        const OwnSums own = process_floats(x, m, sc, acc, false);
        block_formats_piece(x, m, bc, &own, acc, true);
      }
    }
    return;
  }
  constexpr uint64_t kTileRows = kBlock / kMxBlock;
  for (uint64_t j0 = c0; j0 < c1; j0 += kMxBlock) {
    const auto pw = static_cast<size_t>(std::min<uint64_t>(kMxBlock, c1 - j0));
    for (uint64_t i0 = 0; i0 < rows; i0 += kTileRows) {
      const auto tr = static_cast<size_t>(std::min<uint64_t>(kTileRows, rows - i0));
      for (size_t c = 0; c < pw; ++c) {
        const T* col = base + (j0 + c) * ld + i0;
        for (size_t r = 0; r < tr; ++r) {
          if constexpr (F == Format::FP32)
            buf[r * pw + c] = detail::u2f(col[r]);
          else
            buf[r * pw + c] = decode_storage_t<F>(col[r]);
        }
      }
      if (pw == static_cast<size_t>(kMxBlock)) {
        const OwnSums own = process_floats(buf, tr * pw, sc, acc, false);
        block_formats_piece(buf, tr * pw, bc, &own, acc, true);
      } else {
        process_floats(buf, tr * pw, sc, acc);
        for (size_t r = 0; r < tr; ++r)
          block_formats_piece(buf + r * pw, pw, bc, nullptr, acc, false);
      }
    }
  }
}

template <Format F, class T>
void process_view_blocks(const T* base, uint64_t rows, uint64_t c0, uint64_t c1, uint64_t ld,
                         const ScaleSet& sc, const BlockCfg& bc, Acc& acc) {
  process_view_blocks_in<F, T>(base, rows, c0, c1, ld, sc, bc, acc);
  fold_mx_blocks(acc.mx_ehist, acc.mx_zero_blocks, bc.mask, acc.blocks);
  std::memset(acc.mx_ehist, 0, sizeof acc.mx_ehist);
  acc.mx_zero_blocks = 0;
}

// ---- 8- and 16-bit storage: count codes, fold each distinct code once ----------------------
// A tensor of 8- or 16-bit elements holds at most 256 or 65536 distinct values: the pass counts
// codes (one increment per element) and then runs the vectorized loops once over the distinct
// finite values present, weighted by their counts. Counts and flags are exact; sums are weighted
// (another summation order than element by element). Used where the tensor is large against the
// code space.
template <class T>
constexpr size_t kCodes = size_t{1} << (8 * sizeof(T));
template <class T>
constexpr uint64_t kMinElementsForCodes = sizeof(T) == 1 ? 4096 : uint64_t{1} << 18;
constexpr uint64_t kMaxCountsBeforeFold = uint64_t{1} << 31;  // uint32 counters cannot wrap

// Folds and clears the counters: NaN/Inf codes are counted here; the finite values present go,
// with their counts as weights, through the vectorized loops in blocks.
template <Format F, class T>
void fold_codes(uint32_t* counts, const ScaleSet& sc, Acc& acc) {
  alignas(64) float values[kScalarBlock];
  alignas(64) uint32_t weights[kScalarBlock];
  size_t m = 0;
  for (size_t c = 0; c < kCodes<T>; ++c) {
    const uint32_t k = counts[c];
    if (k == 0) continue;
    counts[c] = 0;
    const float x = decode_storage_t<F>(static_cast<uint32_t>(c));
    const uint32_t u = detail::f2u(x);
    const uint32_t a = u & kFp32AbsMask;
    acc.count += k;
    acc.hist64[a >> kHistBinShift] += k;  // finish() takes zeros and NaN/Inf out again
    if (a >= kFp32InfBits) {
      if (a > kFp32InfBits)
        acc.nan += k;
      else
        ((u >> kFp32SignBit) ? acc.neg_inf : acc.pos_inf) += k;
      continue;
    }
    values[m] = x;
    weights[m] = k;
    if (++m == kScalarBlock) {
      block_scalars_weighted(values, weights, m, sc, acc);
      m = 0;
    }
  }
  if (m > 0) block_scalars_weighted(values, weights, m, sc, acc);
}

// Four interleaved counters per code would not fit L2 for 16-bit codes: two, and a 2x unroll.
template <class T>
void count_run(const T* __restrict p, uint64_t n, uint32_t* __restrict c0,
               uint32_t* __restrict c1) {
  uint64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    ++c0[p[i]];
    ++c1[p[i + 1]];
  }
  if (i < n) ++c0[p[i]];
}

template <Format F, class T>
void process_view_codes(const T* base, uint64_t rows, uint64_t c0, uint64_t c1, uint64_t ld,
                        const ScaleSet& sc, Acc& acc) {
  thread_local std::vector<uint32_t> counts;  // 2 x kCodes, all zero between calls
  counts.resize(2 * kCodes<T>);
  uint32_t* a = counts.data();
  uint32_t* b = a + kCodes<T>;
  uint64_t since_fold = 0;
  auto fold = [&] {
    for (size_t c = 0; c < kCodes<T>; ++c) {
      a[c] += b[c];
      b[c] = 0;
    }
    fold_codes<F, T>(a, sc, acc);
    since_fold = 0;
  };
  for (uint64_t j = c0; j < c1; ++j) {
    const T* col = base + j * ld;
    for (uint64_t i = 0; i < rows;) {
      const uint64_t take = std::min(rows - i, kMaxCountsBeforeFold - since_fold);
      count_run(col + i, take, a, b);
      since_fold += take;
      i += take;
      if (since_fold == kMaxCountsBeforeFold) fold();
    }
  }
  fold();
}

void finish(Acc& acc, const ScaleSet& sc, TensorStats* out) {
  flush_hist(acc);
  out->count = acc.count;
  out->nan = acc.nan;
  out->pos_inf = acc.pos_inf;
  out->neg_inf = acc.neg_inf;
  out->zero = acc.zero;
  out->amax = detail::u2f(static_cast<uint32_t>(acc.amax_bits));
  const bool any = out->finite_count() > 0;
  out->min = any ? detail::u2f(static_cast<uint32_t>(order_key(static_cast<uint32_t>(acc.min_key))))
                 : 0.0f;
  out->max = any ? detail::u2f(static_cast<uint32_t>(order_key(static_cast<uint32_t>(acc.max_key))))
                 : 0.0f;
  out->sum = acc.sum;
  out->sum_sq = acc.sum_sq;
  for (int f = 0; f < kNumTargets; ++f) {
    out->fmt[f].overflow = acc.ov[f];
    out->fmt[f].underflow = acc.uf[f];
    out->fmt[f].subnormal = acc.sn[f];
    out->fmt[f].sum_err2 = acc.err2[f] * sc.inv2[f];
  }
  for (int b = 0; b < kHistBins; ++b) out->hist[b] = acc.hist64[b];
  const BlockStatsSet& bs = acc.blocks;
  for (int f = 0; f < kNumBlockFormats; ++f) {
    out->blocks.fmt[f] = bs.fmt[f];
    std::memcpy(out->blocks.scale_hist[f], bs.scale_hist[f], sizeof bs.scale_hist[f]);
  }
  out->hist[0] -= acc.zero;  // zeros landed in bin 0
  for (int b = kHistFirstNonFiniteBin; b < kHistBins; ++b)
    out->hist[b] = 0;  // NaN / Inf (exponent all ones)
}

// The pass over a part of the view: code counting for large 8/16-bit tensors, else the
// vectorized loops.
template <Format F, class T>
void process_part(const T* base, uint64_t rows, uint64_t c0, uint64_t c1, uint64_t ld, bool codes,
                  const ScaleSet& sc, const BlockCfg& bc, Acc& acc) {
  if (bc.mask != 0) return process_view_blocks<F, T>(base, rows, c0, c1, ld, sc, bc, acc);
  if constexpr (sizeof(T) <= 2) {
    if (codes) return process_view_codes<F, T>(base, rows, c0, c1, ld, sc, acc);
  }
  process_view<F, T>(base, rows, c0, c1, ld, sc, acc);
}

template <Format F, class T>
void run_typed(const void* data, uint64_t rows, uint64_t cols, uint64_t ld, const ScaleSet& sc,
               const BlockCfg& bc, unsigned threads, TensorStats* out) {
  const auto* base = static_cast<const T*>(data);
  const uint64_t total = rows * cols;
  // Block formats need the elements in their order: no code counting.
  const bool codes = sizeof(T) <= 2 && total >= kMinElementsForCodes<T> && bc.mask == 0;
  unsigned nt = threads == 0 ? 1 : threads;
  nt = static_cast<unsigned>(std::min<uint64_t>(nt, std::max<uint64_t>(1, total / kMinPerThread)));
  if (nt <= 1) {
    // One accumulator per thread, reset for each call: a fresh allocation (~55 KiB) often came
    // back from the allocator as new pages (returned to the system between calls), a page fault
    // every 4 KiB of it: ~30 per sampled step on the probe's helper over the MLP sample's first
    // 300 steps.
    thread_local std::unique_ptr<Acc> reused;
    if (!reused) {
      reused = std::make_unique<Acc>();
    } else {
      static_assert(std::is_trivially_destructible_v<Acc>, "reset in place");
      new (reused.get()) Acc();
    }
    Acc& acc = *reused;
    process_part<F, T>(base, rows, 0, cols, ld, codes, sc, bc, acc);
    finish(acc, sc, out);
    return;
  }
  // Split by columns when there are enough of them, else by rows (each part a sub-view).
  std::vector<std::unique_ptr<Acc>> accs(nt);
  std::vector<std::thread> pool;
  const bool by_cols = cols >= nt;
  const uint64_t extent = by_cols ? cols : rows;
  // With block formats, a split along the block axis falls on a block boundary (kBlock: a
  // multiple of every block size, as the Rows pieces assume).
  const bool along_blocks = bc.mask != 0 && (by_cols == (bc.axis == BlockAxis::Cols));
  const uint64_t align = along_blocks ? (by_cols ? kMxBlock : kBlock) : 1;
  auto split = [&](unsigned t) { return t == nt ? extent : extent * t / nt / align * align; };
  for (unsigned t = 0; t < nt; ++t) {
    const uint64_t b = split(t), e = split(t + 1);
    accs[t] = std::make_unique<Acc>();
    Acc* acc = accs[t].get();
    auto work = [=] {
      FpEnvironment fp_env;  // each thread: FTZ/DAZ off
      if (by_cols)
        process_part<F, T>(base, rows, b, e, ld, codes, sc, bc, *acc);
      else
        process_part<F, T>(base + b, e - b, 0, cols, ld, codes, sc, bc, *acc);
    };
    if (t + 1 == nt)
      work();  // the calling thread takes the last part
    else
      pool.emplace_back(work);
  }
  for (auto& th : pool) th.join();
  finish(*accs[0], sc, out);
  for (unsigned t = 1; t < nt; ++t) {
    auto part = std::make_unique<TensorStats>();
    for (int f = 0; f < kNumTargets; ++f) part->fmt[f].scale = out->fmt[f].scale;
    part->blocks.mask = out->blocks.mask;
    part->blocks.axis = out->blocks.axis;
    part->blocks.nvfp4_tensor_scale = out->blocks.nvfp4_tensor_scale;
    finish(*accs[t], sc, part.get());
    out->merge(*part);
  }
}

BlockCfg block_cfg(const void* data, Format dtype, uint64_t rows, uint64_t cols, uint64_t ld,
                   const StatsOptions& opt) {
  BlockCfg bc;
  bc.mask = opt.block_formats & kAllBlockFormats;
  bc.axis = opt.block_axis;
  if (bc.mask >> (kNumBlockFormats - 1) & 1u) {
    const float amax =
        opt.tensor_amax >= 0.0f ? opt.tensor_amax : compute_amax(data, dtype, rows, cols, ld);
    bc.nvfp4_scale = nvfp4_tensor_scale(amax);
  }
  return bc;
}

}  // namespace

void compute_stats(const void* data, Format dtype, uint64_t rows, uint64_t cols, uint64_t ld,
                   const StatsOptions& opt, TensorStats* out) {
  FpEnvironment fp_env;
  reset_stats(*out, opt.scale);
  if (rows == 0 || cols == 0 || data == nullptr) return;
  if (cols == 1) ld = rows;
  const ScaleSet sc = make_scale_set(opt.scale);
  const BlockCfg bc = block_cfg(data, dtype, rows, cols, ld, opt);
  out->blocks.mask = bc.mask;
  out->blocks.axis = bc.axis;
  out->blocks.nvfp4_tensor_scale = bc.nvfp4_scale;
  switch (dtype) {
    case Format::FP32:
      run_typed<Format::FP32, uint32_t>(data, rows, cols, ld, sc, bc, opt.threads, out);
      break;
    case Format::BF16:
      run_typed<Format::BF16, uint16_t>(data, rows, cols, ld, sc, bc, opt.threads, out);
      break;
    case Format::FP16:
      run_typed<Format::FP16, uint16_t>(data, rows, cols, ld, sc, bc, opt.threads, out);
      break;
    case Format::E4M3:
      run_typed<Format::E4M3, uint8_t>(data, rows, cols, ld, sc, bc, opt.threads, out);
      break;
    case Format::E5M2:
      run_typed<Format::E5M2, uint8_t>(data, rows, cols, ld, sc, bc, opt.threads, out);
      break;
  }
}

namespace {
template <Format F, class T>
float amax_typed(const void* data, uint64_t rows, uint64_t cols, uint64_t ld) {
  const auto* base = static_cast<const T*>(data);
  int32_t m = 0;
  for (uint64_t j = 0; j < cols; ++j) {
    const T* col = base + j * ld;
#pragma omp simd reduction(max : m)
    for (uint64_t i = 0; i < rows; ++i) {
      const auto a = static_cast<int32_t>(detail::f2u(decode_storage_t<F>(col[i])) & kFp32AbsMask);
      const int32_t fin = a < kFp32InfBitsI32 ? a : 0;
      m = fin > m ? fin : m;
    }
  }
  return detail::u2f(static_cast<uint32_t>(m));
}
}  // namespace

float compute_amax(const void* data, Format dtype, uint64_t rows, uint64_t cols, uint64_t ld) {
  if (rows == 0 || cols == 0 || data == nullptr) return 0.0f;
  if (cols == 1) ld = rows;
  switch (dtype) {
    case Format::FP32:
      return amax_typed<Format::FP32, uint32_t>(data, rows, cols, ld);
    case Format::BF16:
      return amax_typed<Format::BF16, uint16_t>(data, rows, cols, ld);
    case Format::FP16:
      return amax_typed<Format::FP16, uint16_t>(data, rows, cols, ld);
    case Format::E4M3:
      return amax_typed<Format::E4M3, uint8_t>(data, rows, cols, ld);
    case Format::E5M2:
      return amax_typed<Format::E5M2, uint8_t>(data, rows, cols, ld);
  }
  return 0.0f;
}

namespace {
// Thirty-two independent multiply-xor lanes over 64-bit words (four vectors: the 64-bit multiply's
// latency, ~15 cycles on AVX-512, is hidden by the other chains; with eight lanes it bounded the
// pass at ~0.3 ns per FP32 element), fed column after column so that a strided view pays the final
// mixing once, not per column. Each lane's chain is order-dependent and a bijection of each word;
// the words of a column that do not fill a group of eight, and its tail bytes, go through one
// scalar chain with the column's length.
struct Fingerprint {
  static constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;
  static constexpr int kLanes = 32;
  uint64_t lane[kLanes];
  uint64_t h;

  explicit Fingerprint(uint64_t seed) : h(seed) {
    for (int l = 0; l < kLanes; ++l)
      lane[l] = seed + static_cast<uint64_t>(l) * 0x632be59bd9b4e019ull;
  }
  uint64_t finish() {
    for (uint64_t x : lane) {
      h = (h ^ x) * kMul;
      h ^= h >> 32;
    }
    return h;
  }
};

FPSCOPE_CLONES void fingerprint_bytes(const unsigned char* p, size_t n, Fingerprint& f) {
  constexpr uint64_t kMul = Fingerprint::kMul;
  const size_t words = n / 8;
  size_t i = 0;
  for (; i + Fingerprint::kLanes <= words; i += Fingerprint::kLanes) {
    uint64_t w[Fingerprint::kLanes];
    std::memcpy(w, p + i * 8, sizeof w);
    for (int l = 0; l < Fingerprint::kLanes; ++l) f.lane[l] = (f.lane[l] ^ w[l]) * kMul;
  }
  for (; i + 8 <= words; i += 8) {
    uint64_t w[8];
    std::memcpy(w, p + i * 8, sizeof w);
    for (int l = 0; l < 8; ++l) f.lane[l] = (f.lane[l] ^ w[l]) * kMul;
  }
  uint64_t h = f.h ^ (static_cast<uint64_t>(n) * kMul);
  for (; i < words; ++i) {
    uint64_t w;
    std::memcpy(&w, p + i * 8, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, p + words * 8, n - words * 8);
  f.h = (h ^ tail) * kMul;
}
}  // namespace

uint64_t content_fingerprint(const void* data, Format dtype, uint64_t rows, uint64_t cols,
                             uint64_t ld) {
  if (rows == 0 || cols == 0 || data == nullptr) return 0;
  if (cols == 1) ld = rows;
  const auto esize = static_cast<uint64_t>(storage_bits(spec(dtype)) / 8);
  const auto* p = static_cast<const unsigned char*>(data);
  Fingerprint f(0x243f6a8885a308d3ull);
  if (ld == rows) {
    fingerprint_bytes(p, rows * cols * esize, f);
  } else {
    for (uint64_t j = 0; j < cols; ++j) fingerprint_bytes(p + j * ld * esize, rows * esize, f);
  }
  return f.finish();
}

void compute_stats_reference(const void* data, Format dtype, uint64_t rows, uint64_t cols,
                             uint64_t ld, const StatsOptions& opt, TensorStats* out) {
  FpEnvironment fp_env;
  reset_stats(*out, opt.scale);
  if (rows == 0 || cols == 0 || data == nullptr) return;
  const ScaleSet sc = make_scale_set(opt.scale);
  const int esize = storage_bits(spec(dtype)) / 8;
  const auto* p = static_cast<const unsigned char*>(data);
  for (uint64_t j = 0; j < cols; ++j) {
    for (uint64_t i = 0; i < rows; ++i) {
      uint32_t bits = 0;
      std::memcpy(&bits, p + (i + j * ld) * static_cast<uint64_t>(esize),
                  static_cast<size_t>(esize));  // little-endian host
      accumulate_element(*out, decode_storage(dtype, bits), sc);
    }
  }
  // Block formats: each line (a stored column for Rows, a stored row for Cols) in blocks.
  const BlockCfg bc = block_cfg(data, dtype, rows, cols, cols == 1 ? rows : ld, opt);
  out->blocks.mask = bc.mask;
  out->blocks.axis = bc.axis;
  out->blocks.nvfp4_tensor_scale = bc.nvfp4_scale;
  if (bc.mask == 0) return;
  const bool rows_axis = bc.axis == BlockAxis::Rows;
  const uint64_t lines = rows_axis ? cols : rows, len = rows_axis ? rows : cols;
  std::vector<float> line(static_cast<size_t>(len));
  for (uint64_t l = 0; l < lines; ++l) {
    for (uint64_t k = 0; k < len; ++k) {
      const uint64_t i = rows_axis ? k : l, j = rows_axis ? l : k;
      uint32_t bits = 0;
      std::memcpy(&bits, p + (i + j * ld) * static_cast<uint64_t>(esize),
                  static_cast<size_t>(esize));
      line[k] = decode_storage(dtype, bits);
    }
    for (int f = 0; f < kNumBlockFormats; ++f) {
      if (!(bc.mask >> f & 1u)) continue;
      const auto bsz = static_cast<uint64_t>(block_size_of(f));
      for (uint64_t k = 0; k < len; k += bsz) {
        const int m = static_cast<int>(std::min(bsz, len - k));
        accumulate_block(out->blocks, f, block_stats_of(f, line.data() + k, m, bc.nvfp4_scale), m);
      }
    }
  }
}

const char* host_stats_isa() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(FPSCOPE_NO_TARGET_CLONES)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "avx512";
  if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
  return "baseline";
}

}  // namespace fpscope
