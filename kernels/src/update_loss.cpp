// Host master-weight update-loss pass (per-element math: update_loss.h, shared with CUDA).
// Structure: the elements go through in blocks of kBlock; per block, one branch-free vectorized
// loop applies update_loss.h's per-element math (inlined; the unchanged and non-finite elements
// are masked, not skipped), counts, and stores each element's three sum terms and ratio bin; the
// sums are then added in 16 fixed lanes (vector extensions: the same order in every ISA clone,
// so the result does not depend on the machine) and a scalar loop counts the bins into
// interleaved sub-histograms. tests/kernels/test_update_loss.cpp compares it with a scalar
// reference.
#include "fpscope/update_loss.h"

#include <cstddef>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(FPSCOPE_NO_TARGET_CLONES)
#define FPSCOPE_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define FPSCOPE_CLONES
#endif

namespace fpscope {
namespace {

constexpr size_t kLanes = 16;            // partial sums per double sum (two 8-double vectors)
constexpr size_t kBlock = 512;           // elements per block: its per-element buffers stay in L1
constexpr uint32_t kNoBin = kRatioBins;  // bin slot of elements without a ratio (discarded)
static_assert(kBlock % kLanes == 0, "whole lane groups per full block");

// Fixed-width vectors (GCC/Clang vector extensions): the lane of each partial sum is set here,
// not by the vectorizer, so every ISA clone adds the same terms in the same order.
typedef float Floats8 __attribute__((vector_size(32)));
typedef double Doubles8 __attribute__((vector_size(64)));

// applied_F of update_loss.h's applied_update, with 0/1 flags instead of branches.
template <Format F>
__attribute__((always_inline)) inline float applied(float w_prev, float delta) {
  const detail::TargetStep base = detail::cast_step<F>(w_prev);
  const detail::TargetStep next = detail::cast_step<F>(detail::add_rn(base.value, delta));
  const float a = detail::sub_rn(next.value, base.value);
  return (base.overflow | next.overflow) != 0 ? 0.0f : a;
}

// Exponent and mantissa fields of finite nonzero |x| as a normal number (garbage otherwise):
// equal to those of (double)x (its mantissa 29 bits shorter), which is what
// detail::floor_log2_ratio compares. An FP32 subnormal is its pattern a times 2^-149, and
// (float)a (an integer below 2^24: exact, a normal) has its mantissa and exponent + 149; an
// integer conversion, so flush-to-zero modes cannot change it.
__attribute__((always_inline)) inline void normal_fields(float x, int32_t& e, int32_t& m) {
  const uint32_t a = abs_bits(x);
  const uint32_t sub = a < (uint32_t{1} << kFp32ManBits);
  const uint32_t n = sub ? detail::f2u(static_cast<float>(static_cast<int32_t>(a))) : a;
  e = static_cast<int32_t>(n >> kFp32ManBits) - (sub ? 149 : 0);
  m = static_cast<int32_t>(n & ((uint32_t{1} << kFp32ManBits) - 1));
}

// Per block, loop 1: every element's flags, masked operands and ratio bin, 32-bit lanes only.
struct BlockTerms {
  alignas(64) float delta[kBlock];       // delta where changed, else 0
  alignas(64) float applied[2][kBlock];  // applied_BF16, applied_FP16 where changed, else 0
  alignas(64) uint32_t bin[kBlock];      // ratio bin, kNoBin when none
};

// The sum of 16 partial sums (lane k: the block's elements i % 16 == k), lane 0 first.
__attribute__((always_inline)) inline double fold(const Doubles8& lo, const Doubles8& hi) {
  double s = 0;
  for (int k = 0; k < 8; ++k) s += lo[k];
  for (int k = 0; k < 8; ++k) s += hi[k];
  return s;
}

typedef uint64_t Bits8 __attribute__((vector_size(64)));

// acc += |v|: the sign bits cleared (by reference: 64-byte vectors by value change the ABI
// between ISA clones).
__attribute__((always_inline)) inline void add_abs(Doubles8& acc, const Doubles8& v) {
  Bits8 b;
  __builtin_memcpy(&b, &v, sizeof b);
  b &= ~(uint64_t{1} << 63);
  Doubles8 a;
  __builtin_memcpy(&a, &b, sizeof a);
  acc += a;
}

// n <= kBlock elements into `out` (added).
FPSCOPE_CLONES void block_pass(const float* __restrict prev, const float* __restrict cur, size_t n,
                               UpdateLoss& out) {
  BlockTerms t;
  // Integer counts are exact in any order: the vectorizer's reduction.
  uint32_t changed = 0, stagnant_bf16 = 0, stagnant_fp16 = 0;
#pragma omp simd reduction(+ : changed, stagnant_bf16, stagnant_fp16)
  for (size_t i = 0; i < n; ++i) {
    const float p = prev[i], c = cur[i];
    const uint32_t finite = static_cast<uint32_t>(abs_bits(p) < kFp32InfBits) &
                            static_cast<uint32_t>(abs_bits(c) < kFp32InfBits);
    const float delta = detail::sub_rn(c, p);
    const uint32_t ch = finite & (delta != 0.0f);
    const float ab = applied<Format::BF16>(p, delta);
    const float ah = applied<Format::FP16>(p, delta);
    changed += ch;
    stagnant_bf16 += ch & (ab == 0.0f);
    stagnant_fp16 += ch & (ah == 0.0f);
    t.delta[i] = ch ? delta : 0.0f;
    t.applied[0][i] = ch ? ab : 0.0f;
    t.applied[1][i] = ch ? ah : 0.0f;
    // floor(log2(|delta| / |w_prev|)) (detail::floor_log2_ratio); integer arithmetic on the
    // patterns, meaningless where no bin is taken (0, NaN, Inf) and discarded there.
    const uint32_t has_bin = ch & (p != 0.0f);
    int32_t ed, md, ew, mw;
    normal_fields(delta, ed, md);
    normal_fields(p, ew, mw);
    int32_t b = ed - ew - (md < mw ? 1 : 0);
    b = b < kRatioLog2Min ? kRatioLog2Min : (b > kRatioLog2Max ? kRatioLog2Max : b);
    // delta overflowed FP32 (w_prev and w_cur of opposite signs near max): Inf's double exponent
    // puts it in the highest bin.
    b = abs_bits(delta) >= kFp32InfBits ? kRatioLog2Max : b;
    t.bin[i] = has_bin ? static_cast<uint32_t>(b - kRatioLog2Min) : kNoBin;
  }
  const size_t padded = (n + kLanes - 1) / kLanes * kLanes;
  for (size_t i = n; i < padded; ++i) t.delta[i] = t.applied[0][i] = t.applied[1][i] = 0.0f;
  // Loop 2: the sums in double (|delta - applied| is exact there), in fixed lanes.
  Doubles8 lost_lo[2] = {}, lost_hi[2] = {}, dabs_lo = {}, dabs_hi = {};
  for (size_t i = 0; i < padded; i += kLanes) {
    Floats8 f[3][2];
    __builtin_memcpy(&f[0], t.delta + i, sizeof f[0]);
    __builtin_memcpy(&f[1], t.applied[0] + i, sizeof f[1]);
    __builtin_memcpy(&f[2], t.applied[1] + i, sizeof f[2]);
    const Doubles8 d_lo = __builtin_convertvector(f[0][0], Doubles8);
    const Doubles8 d_hi = __builtin_convertvector(f[0][1], Doubles8);
    for (int k = 0; k < 2; ++k) {
      add_abs(lost_lo[k], d_lo - __builtin_convertvector(f[1 + k][0], Doubles8));
      add_abs(lost_hi[k], d_hi - __builtin_convertvector(f[1 + k][1], Doubles8));
    }
    add_abs(dabs_lo, d_lo);
    add_abs(dabs_hi, d_hi);
  }
  out.changed += changed;
  out.bf16.stagnant += stagnant_bf16;
  out.fp16.stagnant += stagnant_fp16;
  out.bf16.lost_abs += fold(lost_lo[0], lost_hi[0]);
  out.fp16.lost_abs += fold(lost_lo[1], lost_hi[1]);
  const double dsum = fold(dabs_lo, dabs_hi);
  out.bf16.delta_abs += dsum;
  out.fp16.delta_abs += dsum;
  // Loop 3: the histogram. Neighbouring elements usually share a bin: four sub-histograms, so
  // that an increment does not wait for the previous one's store.
  uint32_t hist[4][kRatioBins + 1] = {};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    ++hist[0][t.bin[i]];
    ++hist[1][t.bin[i + 1]];
    ++hist[2][t.bin[i + 2]];
    ++hist[3][t.bin[i + 3]];
  }
  for (; i < n; ++i) ++hist[0][t.bin[i]];
  for (int b = 0; b < kRatioBins; ++b)
    out.ratio_hist[b] += uint64_t{hist[0][b]} + hist[1][b] + hist[2][b] + hist[3][b];
}

}  // namespace

void add_update_loss(const float* w_prev, const float* w_cur, uint64_t n, UpdateLoss* out) {
  for (uint64_t i = 0; i < n; i += kBlock) {
    const uint64_t left = n - i;
    block_pass(w_prev + i, w_cur + i, left < kBlock ? static_cast<size_t>(left) : kBlock, *out);
  }
}

void compute_update_loss(const float* w_prev, const float* w_cur, uint64_t n,
                         UpdateLossCounts* bf16, UpdateLossCounts* fp16, uint64_t* changed,
                         uint64_t ratio_hist[kRatioBins]) {
  UpdateLoss acc;
  add_update_loss(w_prev, w_cur, n, &acc);
  *bf16 = acc.bf16;
  *fp16 = acc.fp16;
  *changed = acc.changed;
  for (int b = 0; b < kRatioBins; ++b) ratio_hist[b] = acc.ratio_hist[b];
}

}  // namespace fpscope
