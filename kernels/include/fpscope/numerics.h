// fpscope per-element numerics: the casts, the classification and the statistics step that the
// host statistics pass (kernels/src) and the CUDA kernels (kernels/cuda) both use. Definitions:
// docs/design.md "Numerics definitions"; every format constant comes from formats.h.
//
// Contract:
//  - cast_scaled(F, y): round-to-nearest-even, NON-saturating cast of a finite (or +-Inf) FP32 y
//    to F, returned as the exact float value of the result, with the classification:
//      overflow  : the cast is Inf (IEEE formats) or NaN (E4M3 FN). |y| >= max + half ulp of max
//                  overflows, except that E4M3's tie at exactly max + half ulp rounds to even = max
//                  (its "one step above max" is the NaN code), as CUDA's __NV_NOSAT casts do;
//      underflow : y != 0 and the cast is zero (flushed; half of the smallest subnormal ties to
//                  even, i.e. to zero);
//      subnormal : the cast is a nonzero subnormal of F.
//    Bit for bit equal to __float2half_rn, __float2bfloat16_rn and
//    __nv_cvt_float_to_fp8(y, __NV_NOSAT, __NV_E4M3 / __NV_E5M2) (tests/kernels compare).
//  - Independent of the FPU's flush-to-zero / denormals-are-zero modes (a probe lives in programs
//    built with -ffast-math): values that could be FP32 subnormals are handled as integers or only
//    reach float arithmetic where a flushed input gives the same answer. Assumes the default
//    round-to-nearest mode. No libm; branch-free (selects), so the host loops vectorize.
//  - accumulate_element: one element into the statistics (stats.h contract). The error of an
//    element is e = (y - cast(y)) / s with y = fl(x * s): exactly x - cast(x*s)/s whenever x*s
//    is exact in FP32 (always for power-of-two scales); see element_target.
#pragma once

#include <cstdint>
#include <cstring>

#include "fpscope/formats.h"
#include "fpscope/stats.h"

namespace fpscope {

struct CastResult {
  float value;  // the cast result as a float (exact); Inf or NaN on overflow, as the format does
  bool overflow;
  bool underflow;
  bool subnormal;
};

namespace detail {

FPSCOPE_HD inline uint32_t f2u(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#elif defined(__GNUC__) || defined(__clang__)
  return __builtin_bit_cast(uint32_t, f);  // not addressable: keeps SIMD loops vectorizable
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
FPSCOPE_HD inline float u2f(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#elif defined(__GNUC__) || defined(__clang__)
  return __builtin_bit_cast(float, u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}
// Explicitly rounded FP32 operations: nvcc would otherwise contract a*b+c into an FMA (the host
// compiler does not in ISO mode) and the magic-number rounding below must not be reassociated.
FPSCOPE_HD inline float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
FPSCOPE_HD inline float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
FPSCOPE_HD inline float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

FPSCOPE_HD inline double dmul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
FPSCOPE_HD inline double dsub_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}

// FP32 bit-pattern constants of a cast target, all derived from the format table.
template <Format F>
struct CastParams {
  static constexpr FormatSpec S = kFormats[static_cast<int>(F)];
  static constexpr int kShift = kFp32ManBits - S.man_bits;  // FP32 mantissa bits the cast drops
  static constexpr int32_t kHalf = int32_t{1} << (kShift - 1);
  static constexpr int32_t kKeep = ~((int32_t{1} << kShift) - 1);
  // Smallest normal of F as an FP32 pattern (biased exponent field only).
  static constexpr int32_t kMinNormalBits = static_cast<int32_t>(fp32_pow2_bits(min_normal_exp(S)));
  // Max finite plus half an ulp of F at the top binade, as an FP32 pattern.
  static constexpr int32_t kMaxBits =
      static_cast<int32_t>(fp32_pow2_bits(max_exp(S))) | (int32_t{max_mantissa(S)} << kShift);
  static constexpr int32_t kOverflowBits = kMaxBits + kHalf;
  static constexpr bool kIeee = S.special == SpecialEncoding::IEEE;
  // Targets whose normal range starts above FP32's need their own subnormal rounding; for BF16
  // (same exponent range as FP32) the FP32 bit-pattern rounding is already right everywhere.
  static constexpr bool kOwnSubnormals = min_normal_exp(S) > kFp32MinNormalExp;
  // Exponent offset of the rounding magic number (see round_abs_bits): 2^(e + kShift) has an
  // FP32 ulp of 2^(e - man_bits), F's quantum at exponent e.
  static constexpr uint32_t kMagicExpOffset = uint32_t{kShift} << kFp32ManBits;
  // Classification thresholds on |y|'s FP32 pattern a (the rounding is monotone in a, so each
  // outcome is an interval of patterns; tests check the edges against round_abs_bits and CUDA):
  //   a <= kUnderflowMaxBits: the cast is 0 (half the smallest subnormal ties to even: 0);
  //   a <  kNormalStartBits : the cast is below F's smallest normal (the tie between the largest
  //                           subnormal, an odd mantissa, and the smallest normal rounds up).
  static constexpr int32_t kUnderflowMaxBits =
      kOwnSubnormals ? int32_t{min_subnormal_exp(S) - 1 + kFp32Bias} << kFp32ManBits : kHalf;
  static constexpr int32_t kNormalStartBits =
      kMinNormalBits - (kOwnSubnormals ? int32_t{1} << kShift : kHalf);
  static constexpr uint32_t kOverflowPattern = kIeee ? kFp32InfBits : kFp32QuietNanBits;
};

// Raw cast of |y| given as its FP32 pattern a (0 <= a <= kFp32InfBits): the result's pattern,
// before the overflow override (the value is unspecified where the cast overflows). Branch-free.
template <Format F>
FPSCOPE_HD inline int32_t round_abs_bits(int32_t a) {
  using P = CastParams<F>;
  if constexpr (!P::kOwnSubnormals) {
    // F has FP32's exponent range (BF16): round the FP32 pattern at bit kShift, ties to even; a
    // carry into the exponent field is the correct next binade, and FP32 subnormals round on
    // the same grid.
    return (a + (P::kHalf - 1) + ((a >> P::kShift) & 1)) & P::kKeep;
  } else {
    // Magic-number rounding: M = 2^(e + kShift), e = max(exponent of |y|, F's smallest normal
    // exponent). |y| + M lies in [M, 2M), whose FP32 ulp is F's quantum at |y| (its subnormal
    // quantum below F's normal range), so the addition rounds |y| to F's grid, ties to even (M's
    // mantissa is even), and subtracting M is exact. M is a normal number and the result is 0
    // or normal, so DAZ/FTZ cannot change it (an FP32-subnormal |y| rounds to 0 either way).
    // Where F overflows, M may be Inf or garbage: the caller overrides those results.
    const int32_t ea = a & kFp32ExpMaskI32;
    const float m = u2f(static_cast<uint32_t>(ea > P::kMinNormalBits ? ea : P::kMinNormalBits) +
                        P::kMagicExpOffset);
    return static_cast<int32_t>(f2u(sub_rn(add_rn(u2f(static_cast<uint32_t>(a)), m), m)));
  }
}

// Per-element classification of y = x * s for one target: flags as 0/1 integers (vector-friendly)
// and the cast result's float value.
struct TargetStep {
  uint32_t overflow;
  uint32_t underflow;
  uint32_t subnormal;
  float value;  // cast result (Inf/NaN when overflow)
};

// The three exclusive outcomes of casting |y| (FP32 pattern a, finite) to F, as 0/1.
template <Format F>
FPSCOPE_HD inline uint32_t classify_overflow(int32_t a) {
  using P = CastParams<F>;
  return P::kIeee ? (a >= P::kOverflowBits) : (a > P::kOverflowBits);
}
template <Format F>
FPSCOPE_HD inline uint32_t classify_underflow(int32_t a) {
  return static_cast<uint32_t>(a != 0) &
         static_cast<uint32_t>(a <= CastParams<F>::kUnderflowMaxBits);
}
template <Format F>
FPSCOPE_HD inline uint32_t classify_subnormal(int32_t a) {
  using P = CastParams<F>;
  return static_cast<uint32_t>(a > P::kUnderflowMaxBits) &
         static_cast<uint32_t>(a < P::kNormalStartBits);
}

template <Format F>
FPSCOPE_HD inline TargetStep cast_step(float y) {
  using P = CastParams<F>;
  const uint32_t u = f2u(y);
  const uint32_t sign = u & kFp32SignMask;
  const int32_t a = static_cast<int32_t>(u & kFp32AbsMask);
  const int32_t r = round_abs_bits<F>(a);
  TargetStep t;
  t.overflow = classify_overflow<F>(a);
  t.underflow = classify_underflow<F>(a);
  t.subnormal = classify_subnormal<F>(a);
  t.value = u2f(sign | (t.overflow ? P::kOverflowPattern : static_cast<uint32_t>(r)));
  return t;
}

}  // namespace detail

// Cast of an already-scaled FP32 value y to target F (compile-time format).
template <Format F>
FPSCOPE_HD inline CastResult cast_scaled_t(float y) {
  const detail::TargetStep t = detail::cast_step<F>(y);
  return CastResult{t.value, t.overflow != 0, t.underflow != 0, t.subnormal != 0};
}

// Cast of an already-scaled finite FP32 value y to f (BF16, FP16, E4M3, E5M2; FP32 is the
// identity and never overflows, underflows or is counted subnormal).
FPSCOPE_HD inline CastResult cast_scaled(Format f, float y) {
  switch (f) {
    case Format::BF16:
      return cast_scaled_t<Format::BF16>(y);
    case Format::FP16:
      return cast_scaled_t<Format::FP16>(y);
    case Format::E4M3:
      return cast_scaled_t<Format::E4M3>(y);
    case Format::E5M2:
      return cast_scaled_t<Format::E5M2>(y);
    case Format::FP32:
      break;
  }
  return CastResult{y, false, false, false};
}

// Value of a storage pattern of format F (the low storage_bits bits of `bits`), as FP32 (exact).
template <Format F>
FPSCOPE_HD inline float decode_storage_t(uint32_t bits) {
  constexpr FormatSpec S = kFormats[static_cast<int>(F)];
  if constexpr (F == Format::FP32) {
    return detail::u2f(bits);
  } else if constexpr (F == Format::BF16) {
    // BF16 is the top half of an FP32 pattern.
    return detail::u2f((bits & ((1u << storage_bits(S)) - 1u)) << (kFp32ManBits - S.man_bits));
  } else {
    constexpr int kE = S.exp_bits, kM = S.man_bits;
    constexpr uint32_t kEMask = exponent_field_mask(S), kMMask = mantissa_field_mask(S);
    const uint32_t sign = ((bits >> (kE + kM)) & 1u) << kFp32SignBit;
    const uint32_t e = (bits >> kM) & kEMask;
    const uint32_t m = bits & kMMask;
    // Normal: rebias the exponent, left-align the mantissa.
    const uint32_t normal =
        ((e + static_cast<uint32_t>(kFp32Bias - exponent_bias(S))) << kFp32ManBits) |
        (m << (kFp32ManBits - kM));
    // Subnormal: m smallest subnormals (m < 2^man_bits: exact, an FP32 normal).
    const uint32_t sub =
        detail::f2u(detail::mul_rn(static_cast<float>(m), pow2f(min_subnormal_exp(S))));
    uint32_t r = e == 0 ? sub : normal;
    // uint32_t{...}: selects between prvalues (a constant's lvalue in the select changed GCC's
    // vectorized decode loops).
    if constexpr (S.special == SpecialEncoding::IEEE) {
      r = e == kEMask ? (m == 0 ? uint32_t{kFp32InfBits} : uint32_t{kFp32QuietNanBits}) : r;
    } else {
      r = (e == kEMask && m == kMMask) ? uint32_t{kFp32QuietNanBits} : r;
    }
    return detail::u2f(sign | r);
  }
}

// Value of a storage pattern (FP32, BF16, FP16, E4M3, E5M2).
FPSCOPE_HD inline float decode_storage(Format storage, uint32_t bits) {
  switch (storage) {
    case Format::FP32:
      return decode_storage_t<Format::FP32>(bits);
    case Format::BF16:
      return decode_storage_t<Format::BF16>(bits);
    case Format::FP16:
      return decode_storage_t<Format::FP16>(bits);
    case Format::E4M3:
      return decode_storage_t<Format::E4M3>(bits);
    case Format::E5M2:
      return decode_storage_t<Format::E5M2>(bits);
  }
  return 0.0f;
}

// Exponent-histogram bin of |x|: biased FP32 exponent * 4 + the top two mantissa bits, i.e. the
// top 11 bits of |x|'s pattern (formats.h hist_bin_of_bits). Meaningful for finite nonzero x
// (stats.h contract).
FPSCOPE_HD inline int hist_bin(float x) {
  return hist_bin_of_bits(detail::f2u(x));
}

// Smallest |x| falling into bin b, and the largest (both finite for b < kHistFirstNonFiniteBin).
FPSCOPE_HD inline float hist_bin_low(int b) {
  return detail::u2f(hist_bin_low_bits(b));
}
FPSCOPE_HD inline float hist_bin_high(int b) {
  return detail::u2f(hist_bin_low_bits(b + 1) - 1u);
}

// |x|'s FP32 pattern.
FPSCOPE_HD inline uint32_t abs_bits(float x) {
  return detail::f2u(x) & kFp32AbsMask;
}

// Per-format scales with 1/s^2 (computed once per tensor, not per element).
struct ScaleSet {
  float scale[kNumTargets];
  double inv2[kNumTargets];  // 1 / s^2 in double: converts sum d^2 into sum e^2
};
FPSCOPE_HD inline ScaleSet make_scale_set(const float* scales) {
  ScaleSet s;
  for (int i = 0; i < kNumTargets; ++i) {
    s.scale[i] = scales[i];
    const double inv = 1.0 / static_cast<double>(scales[i]);
    s.inv2[i] = inv * inv;
  }
  return s;
}

// The per-element step for one target: classification of y = x * s (rounded to FP32, as a real
// scaled cast computes it) and the cast's error in the scaled domain, d = |y| - |cast(y)| (the
// sign of the error is not needed: only d^2 is summed), which FP32 holds exactly (cast(y) is y
// rounded to fewer bits); 0 when the cast overflows. Same flags and value as cast_step, without
// the sign and overflow-pattern work.
// The error of the element is e = d / s, so sum e^2 = (sum d^2) / s^2: exactly
// x - cast(x*s)/s whenever x*s is exact in FP32 (always for power-of-two scales, barring FP32
// overflow/underflow of y); otherwise it leaves out the FP32 rounding of x*s (< half an FP32
// ulp of y), which is not the target format's doing.
struct ElementTarget {
  uint32_t overflow;
  uint32_t underflow;
  uint32_t subnormal;
  float d;  // y - cast(y), 0 on overflow
};
template <Format F>
FPSCOPE_HD inline ElementTarget element_target(float x, float scale) {
  using P = detail::CastParams<F>;
  const float y = detail::mul_rn(x, scale);
  const auto a = static_cast<int32_t>(detail::f2u(y) & kFp32AbsMask);
  const uint32_t ov = detail::classify_overflow<F>(a);
  const float r = detail::u2f(static_cast<uint32_t>(detail::round_abs_bits<F>(a)));
  const float d = ov ? 0.0f : detail::sub_rn(detail::u2f(static_cast<uint32_t>(a)), r);
  // Underflow is "x != 0 and the cast is 0": it includes an x * s that FP32 itself flushed.
  const uint32_t uf =
      static_cast<uint32_t>(abs_bits(x) != 0) & static_cast<uint32_t>(a <= P::kUnderflowMaxBits);
  return ElementTarget{ov, uf, detail::classify_subnormal<F>(a), d};
}

// One element into the scalar part of the statistics. Returns its histogram bin, or -1 when it
// takes no part in the histogram (NaN, Inf, zero).
FPSCOPE_HD inline int accumulate_scalars(StatsScalars& s, float x, const ScaleSet& sc) {
  const uint32_t a = abs_bits(x);
  const bool had_finite = s.finite_count() > 0;
  ++s.count;
  if (a > kFp32InfBits) {
    ++s.nan;
    return -1;
  }
  if (a == kFp32InfBits) {
    if (detail::f2u(x) >> kFp32SignBit)
      ++s.neg_inf;
    else
      ++s.pos_inf;
    return -1;
  }
  const float ax = detail::u2f(a);
  s.amax = ax > s.amax ? ax : s.amax;
  s.min = (!had_finite || x < s.min) ? x : s.min;
  s.max = (!had_finite || x > s.max) ? x : s.max;
  const double xd = static_cast<double>(x);
  s.sum += xd;
  s.sum_sq += xd * xd;
  if (a == 0) {
    ++s.zero;
    return -1;
  }
  const ElementTarget t0 = element_target<kTargets[0]>(x, sc.scale[0]);
  const ElementTarget t1 = element_target<kTargets[1]>(x, sc.scale[1]);
  const ElementTarget t2 = element_target<kTargets[2]>(x, sc.scale[2]);
  const ElementTarget t3 = element_target<kTargets[3]>(x, sc.scale[3]);
  const ElementTarget* ts[kNumTargets] = {&t0, &t1, &t2, &t3};
  for (int i = 0; i < kNumTargets; ++i) {
    s.fmt[i].overflow += ts[i]->overflow;
    s.fmt[i].underflow += ts[i]->underflow;
    s.fmt[i].subnormal += ts[i]->subnormal;
    const auto d = static_cast<double>(ts[i]->d);
    s.fmt[i].sum_err2 += d * d * sc.inv2[i];
  }
  return static_cast<int>(a >> kHistBinShift);
}
static_assert(kNumTargets == 4, "accumulate_scalars unrolls the four targets of kTargets");

// One element into full statistics (scalars + histogram). `scales` has kNumTargets entries.
FPSCOPE_HD inline void accumulate_element(TensorStats& s, float x, const ScaleSet& sc) {
  const int b = accumulate_scalars(s, x, sc);
  if (b >= 0) ++s.hist[b];
}
FPSCOPE_HD inline void accumulate_element(TensorStats& s, float x, const float* scales) {
  accumulate_element(s, x, make_scale_set(scales));
}

// Resets statistics to "nothing observed" with the given per-format scales.
FPSCOPE_HD inline void reset_stats(TensorStats& s, const float* scales) {
  s = TensorStats{};
  for (int i = 0; i < kNumTargets; ++i) s.fmt[i].scale = scales[i];
}

}  // namespace fpscope
