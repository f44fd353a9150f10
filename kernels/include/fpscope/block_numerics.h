// fpscope block-format numerics: the per-element casts of the OCP MX v1.0 / NVFP4 element and
// scale formats (formats.h kE3M2, kE2M3, kE2M1, kE8M0 and the E4M3/E5M2 rows) and the per-block
// statistics of a block-scaled cast. Host and device (__host__ __device__), no libm, C++17.
//
// Contract:
//  - Element formats are described by a FormatSpec with static storage (formats.h rows), passed
//    as a template argument: cast_sat<kE2M1>(y), encode_sat<kE3M2>(y), decode_code<kE2M3>(c).
//  - cast_sat / encode_sat: round-to-nearest-even with SATURATION, as OCP MX v1.0 section 6.3
//    requires of the block-scaled cast (elements beyond the element range clamp to +-max normal)
//    and as CUDA's __nv_cvt_float_to_fp6 / __nv_cvt_float_to_fp4 (always saturating) and
//    __nv_cvt_float_to_fp8(.., __NV_SATFINITE, ..) do: |y| above max gives +-max, +-Inf gives
//    +-max. NaN gives the format's NaN code (E4M3 0x7F, E5M2 0x7F), or +max for the formats
//    without NaN (FP6, FP4: CUDA's documented choice; OCP leaves it to the implementation).
//    Codes equal CUDA's host conversions bit for bit, sign of zero included (tests/kernels).
//    "saturated" = the clamp changed the result: the unbounded RNE result would exceed max (the
//    same threshold as numerics.h's overflow: |y| >= max + half ulp, the tie rounding to even).
//  - E8M0 (an unsigned power of two, code c = 2^(c-127), 0xFF = NaN, no zero, no sign):
//    e8m0_from_float rounds |x| down (floor) or up (ceil) to a power of two, clips below 2^-127,
//    and above 2^127 gives NaN or (satfinite) 2^127: __nv_cvt_float_to_e8m0 with cudaRoundZero /
//    cudaRoundPosInf and __NV_NOSAT / __NV_SATFINITE.
//  - mx_scale: OCP MX v1.0 section 6.3 "Conversion from vector of scalar format": shared_exp =
//    floor(log2(amax)) - emax_elem, X = 2^shared_exp, clamped below at 2^-127 (scale underflow);
//    amax Inf or NaN gives X = NaN (code 0xFF). A finite amax never overflows E8M0 (emax_elem >=
//    2).
//  - Block statistics (mx_block_stats, nvfp4_block_stats): see BlockStats and docs/metrics.md
//    "Block-scaled formats".
//  - Independent of FTZ/DAZ where it matters: FP32-subnormal inputs are scaled by integer
//    exponent arithmetic (mul_pow2), the E8M0 value 2^-127 is built from its bits. The squared
//    errors are summed in double.
#pragma once

#include <cstdint>

#include "fpscope/formats.h"
#include "fpscope/numerics.h"
#include "fpscope/stats.h"

namespace fpscope {

// The E4M3 / E5M2 rows as complete objects (a template argument must not be an array element).
inline constexpr FormatSpec kE4M3 = kFormats[static_cast<int>(Format::E4M3)];
inline constexpr FormatSpec kE5M2 = kFormats[static_cast<int>(Format::E5M2)];

namespace detail {

FPSCOPE_HD inline double u2d(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#elif defined(__GNUC__) || defined(__clang__)
  return __builtin_bit_cast(double, u);
#else
  double d;
  std::memcpy(&d, &u, 8);
  return d;
#endif
}
// 2^e as a double (-1022 <= e <= 1023), from its IEEE binary64 bits (bias 1023, 52 mantissa
// bits; FP64 is not a table row).
FPSCOPE_HD inline double pow2d(int e) {
  return u2d(static_cast<uint64_t>(e + 1023) << 52);
}
FPSCOPE_HD inline float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

// FP32 bit-pattern constants of a saturating cast to a small format S (signed, with zero and
// subnormals, normal range inside FP32's: FP8, FP6, FP4).
template <const FormatSpec& S>
struct SatCastParams {
  static_assert(S.has_sign && S.has_zero && S.man_bits >= 1 &&
                    min_normal_exp(S) > kFp32MinNormalExp && max_exp(S) < 64,
                "cast_sat: signed small formats with subnormals");
  static constexpr int kShift = kFp32ManBits - S.man_bits;
  static constexpr int32_t kHalf = int32_t{1} << (kShift - 1);
  static constexpr int32_t kMinNormalBits = static_cast<int32_t>(fp32_pow2_bits(min_normal_exp(S)));
  static constexpr int32_t kMaxBits =
      static_cast<int32_t>(fp32_pow2_bits(max_exp(S))) | (int32_t{max_mantissa(S)} << kShift);
  static constexpr int32_t kOverflowBits = kMaxBits + kHalf;
  static constexpr bool kMaxOdd = (max_mantissa(S) & 1) != 0;
  static constexpr uint32_t kMagicExpOffset = uint32_t{kShift} << kFp32ManBits;
  // |y| <= half the smallest subnormal rounds to 0 (the tie to even); |y| below
  // kNormalStartBits rounds below the smallest normal.
  static constexpr int32_t kUnderflowMaxBits = int32_t{min_subnormal_exp(S) - 1 + kFp32Bias}
                                               << kFp32ManBits;
  static constexpr int32_t kNormalStartBits = kMinNormalBits - (int32_t{1} << kShift);
  static constexpr uint32_t kSignBit = 1u << (S.exp_bits + S.man_bits);
  static constexpr uint32_t kMaxCode = max_finite_code(S);
  static constexpr uint32_t kNanCode = has_nan(S) ? (kSignBit - 1u) : kMaxCode;
  static constexpr int kBias = exponent_bias(S);
};

// |y| (FP32 pattern a, not above the saturation threshold) rounded to S's grid, ties to even, as
// an FP32 pattern: numerics.h's magic-number rounding (M = 2^(e + kShift) has S's quantum as its
// FP32 ulp; M is normal and the result is 0 or normal, so FTZ/DAZ cannot change it).
template <const FormatSpec& S>
FPSCOPE_HD inline int32_t round_abs_bits_spec(int32_t a) {
  using P = SatCastParams<S>;
  const int32_t ea = a & kFp32ExpMaskI32;
  const float m = u2f(static_cast<uint32_t>(ea > P::kMinNormalBits ? ea : P::kMinNormalBits) +
                      P::kMagicExpOffset);
  return static_cast<int32_t>(f2u(sub_rn(add_rn(u2f(static_cast<uint32_t>(a)), m), m)));
}

// A |y| pattern a (0 <= a <= +Inf's pattern) cast to S with saturation: the rounded pattern,
// clamped to S's max, and whether the clamp changed the result (cast_sat's rules). Branch-free,
// so that the loops that inline it (host_stats.cpp's blocks_fast and nvfp4_scales) vectorize:
// a is clamped to max before the rounding, which leaves max as it is (max is on S's grid). So
// the rounding never sees a huge value, whose magic number would be +Inf and raise FE_INVALID
// in the program's floating-point state.
struct SatAbs {
  int32_t bits;
  uint32_t saturated;
};
template <const FormatSpec& S>
FPSCOPE_HD inline SatAbs sat_abs_bits(int32_t a) {
  using P = SatCastParams<S>;
  return SatAbs{round_abs_bits_spec<S>(a > P::kMaxBits ? P::kMaxBits : a),
                static_cast<uint32_t>(P::kMaxOdd ? a >= P::kOverflowBits : a > P::kOverflowBits)};
}

}  // namespace detail

// Saturating cast of y to S with its classification (flags 0/1). y may be +-Inf (saturated);
// NaN gives NaN (formats with NaN) or +max (FP6, FP4), flags clear.
struct SatCast {
  float value;         // the cast as a float (exact)
  uint32_t saturated;  // the clamp to +-max changed the result (unbounded RNE would exceed max)
  uint32_t underflow;  // y != 0 and the cast is 0
  uint32_t subnormal;  // the cast is a nonzero subnormal of S
};
template <const FormatSpec& S>
FPSCOPE_HD inline SatCast cast_sat(float y) {
  using P = detail::SatCastParams<S>;
  const uint32_t u = detail::f2u(y);
  const int32_t a = static_cast<int32_t>(u & kFp32AbsMask);
  if (a > kFp32InfBitsI32) {
    const float nan_value = has_nan(S) ? detail::u2f(kFp32QuietNanBits) : max_finite(S);
    return SatCast{nan_value, 0, 0, 0};
  }
  const detail::SatAbs r = detail::sat_abs_bits<S>(a);
  SatCast c;
  c.value = detail::u2f((u & kFp32SignMask) | static_cast<uint32_t>(r.bits));
  c.saturated = r.saturated;
  c.underflow = static_cast<uint32_t>(a != 0) & static_cast<uint32_t>(a <= P::kUnderflowMaxBits);
  c.subnormal = static_cast<uint32_t>(a > P::kUnderflowMaxBits) &
                static_cast<uint32_t>(a < P::kNormalStartBits);
  return c;
}

// The storage code (low storage_bits(S) bits) of the saturating cast of y.
template <const FormatSpec& S>
FPSCOPE_HD inline uint32_t encode_sat(float y) {
  using P = detail::SatCastParams<S>;
  const uint32_t u = detail::f2u(y);
  if ((u & kFp32AbsMask) > kFp32InfBits) return P::kNanCode;
  const uint32_t sign = (u >> kFp32SignBit) != 0 ? P::kSignBit : 0u;
  const auto r = static_cast<uint32_t>(detail::f2u(cast_sat<S>(y).value) & kFp32AbsMask);
  if (r < static_cast<uint32_t>(P::kMinNormalBits)) {
    // 0 or a subnormal: an integer number of smallest subnormals (exact).
    const float m = detail::mul_rn(detail::u2f(r), pow2f(-min_subnormal_exp(S)));
    return sign | static_cast<uint32_t>(m);
  }
  const auto e = static_cast<uint32_t>(fp32_biased_exponent(r) - kFp32Bias + P::kBias);
  return sign | (e << S.man_bits) | ((r >> P::kShift) & mantissa_field_mask(S));
}

// Value of a code of S (the low storage_bits(S) bits), exact; NaN / +-Inf where S has them.
template <const FormatSpec& S>
FPSCOPE_HD inline float decode_code(uint32_t code) {
  using P = detail::SatCastParams<S>;
  const uint32_t e = (code >> S.man_bits) & exponent_field_mask(S);
  const uint32_t m = code & mantissa_field_mask(S);
  const uint32_t sign = (code & P::kSignBit) != 0 ? kFp32SignMask : 0u;
  uint32_t r;
  if (e == 0) {
    r = detail::f2u(detail::mul_rn(static_cast<float>(m), pow2f(min_subnormal_exp(S))));
  } else {
    r = (static_cast<uint32_t>(static_cast<int>(e) - P::kBias + kFp32Bias) << kFp32ManBits) |
        (m << P::kShift);
  }
  if (S.special == SpecialEncoding::IEEE && e == exponent_field_mask(S))
    r = m == 0 ? kFp32InfBits : kFp32QuietNanBits;
  if (S.special == SpecialEncoding::FiniteNanOnlyMax && (code & ~P::kSignBit) == P::kSignBit - 1u)
    r = kFp32QuietNanBits;
  return detail::u2f(sign | r);
}

// ---- E8M0 ------------------------------------------------------------------------------------
inline constexpr uint32_t kE8M0NanCode = (1u << storage_bits(kE8M0)) - 1u;  // all ones
inline constexpr uint32_t kE8M0MaxCode = max_finite_code(kE8M0);            // 0xfe: 2^127
inline constexpr int kE8M0Bias = exponent_bias(kE8M0);                      // 127
inline constexpr int kE8M0MinExp = min_normal_exp(kE8M0);                   // -127
static_assert(kE8M0MaxCode == 0xfeu && kE8M0Bias == 127 && kE8M0MinExp == -127);

enum class E8M0Round : uint8_t {
  Floor,  // toward zero: cudaRoundZero
  Ceil,   // toward +Inf on |x|: cudaRoundPosInf
};
// |x| rounded to a power of two, as an E8M0 code (sign ignored; 0 and tiny |x| clip to 2^-127).
FPSCOPE_HD inline uint32_t e8m0_from_float(float x, E8M0Round mode, bool satfinite) {
  const uint32_t a = detail::f2u(x) & kFp32AbsMask;
  if (a > kFp32InfBits) return kE8M0NanCode;
  uint32_t code = static_cast<uint32_t>(fp32_biased_exponent(a));  // floor(log2|x|) + 127, >= 0
  // Ceil: one up unless |x| is a power of two; |x| <= 2^-127 (an FP32 subnormal) stays at code 0.
  if (mode == E8M0Round::Ceil && (a & kFp32ManMask) != 0 &&
      a > fp32_pow2_bits(kFp32MinNormalExp) / 2)
    ++code;
  if (code > kE8M0MaxCode) code = satfinite ? kE8M0MaxCode : kE8M0NanCode;
  return code;
}
// Value of an E8M0 code: 2^(code - 127), NaN for 0xFF. 2^-127 is an FP32 subnormal, built from
// its bits.
FPSCOPE_HD inline float e8m0_value(uint32_t code) {
  code &= kE8M0NanCode;
  if (code == kE8M0NanCode) return detail::u2f(kFp32QuietNanBits);
  if (code == 0) return detail::u2f(fp32_pow2_bits(kFp32MinNormalExp) / 2);
  return detail::u2f(code << kFp32ManBits);
}

// x * 2^k for finite x and -126 <= k <= 127, correctly rounded, also for FP32-subnormal x under
// DAZ (such x is m * 2^-149: scaled in two normal steps; a result that FP32 would flush is far
// below any block element's smallest subnormal).
FPSCOPE_HD inline float mul_pow2(float x, int k) {
  const uint32_t u = detail::f2u(x);
  if ((u & kFp32ExpMask) != 0 || (u & kFp32AbsMask) == 0)
    return detail::mul_rn(x, detail::u2f(fp32_pow2_bits(k)));
  const float m = static_cast<float>(u & kFp32ManMask) * ((u >> kFp32SignBit) ? -1.0f : 1.0f);
  const int rest = k + kFp32MinSubnormalExp + 100;  // m * 2^-100 * 2^rest = x * 2^k
  return detail::mul_rn(
      detail::mul_rn(m, pow2f(-100)),
      detail::u2f(fp32_pow2_bits(rest > kFp32MinNormalExp ? rest : kFp32MinNormalExp)));
}

// OCP MX block scale of a block with largest magnitude amax, for element format E.
struct MxScale {
  uint32_t code;       // E8M0 code of X
  int exp;             // shared_exp after the clamp: X = 2^exp (meaningless when nan)
  uint32_t underflow;  // amax != 0 and floor(log2 amax) - emax_elem < -127: clamped to 2^-127
  uint32_t nan;        // amax is Inf or NaN: X = NaN
};
template <const FormatSpec& E>
FPSCOPE_HD inline MxScale mx_scale(float amax) {
  const uint32_t a = detail::f2u(amax) & kFp32AbsMask;
  // floor(log2 amax) = biased exponent - 127 for normal amax; an FP32-subnormal amax gives -127,
  // which is still below -127 + emax_elem, so it clamps the same way as its true floor.
  const int shared = fp32_biased_exponent(a) - kFp32Bias - max_exp(E);
  MxScale s;
  s.nan = static_cast<uint32_t>(a >= kFp32InfBits);
  s.underflow = static_cast<uint32_t>(a != 0 && shared < kE8M0MinExp && !s.nan);
  s.exp = shared < kE8M0MinExp ? kE8M0MinExp : shared;
  s.code = s.nan ? kE8M0NanCode : static_cast<uint32_t>(s.exp + kE8M0Bias);
  return s;
}

// ---- per-block statistics --------------------------------------------------------------------
// One block of n <= block_size elements cast to a block-scaled format. Elements are counted
// only in blocks with a finite scale: a block holding a NaN or an Inf has a NaN scale (MX) or a
// NaN E4M3 scale (NVFP4), decodes to NaN entirely, and counts only in nan_scale / nonfinite.
struct BlockStats {
  uint32_t scale_code;       // E8M0 code (MX) or E4M3 code (NVFP4) of the block scale
  float scale;               // its value (NVFP4: the E4M3 value, before the tensor scale)
  uint32_t nonfinite;        // NaN / Inf elements
  uint32_t flushed;          // x != 0 whose block-scaled cast is 0
  uint32_t saturated;        // x whose cast clamps to +-max of the element format
  uint32_t zero_block;       // every element is +-0 (scale: code 0)
  uint32_t scale_underflow;  // MX: 2^shared_exp below 2^-127, clamped; NVFP4: the E4M3 scale of
                             // a nonzero block is 0 (every element flushes)
  uint32_t scale_overflow;   // NVFP4: amax / 6 * tensor scale saturates E4M3 (above 448 + half
                             // ulp); MX: never for finite data
  uint32_t nan_scale;        // the block has a NaN or Inf element: its scale is NaN
  double sum_err2;           // sum of (x - decoded(x))^2 over the elements (finite scale only)
  double sum_x2;             // sum of x^2 over the same elements (SQNR = sum_x2 / sum_err2)
};

// MX block (B: kMxfp8E4M3, kMxfp8E5M2, kMxfp6E3M2, kMxfp6E2M3, kMxfp4): X from mx_scale, each
// element cast_sat(x / X) (exact division by a power of two: mul_pow2), decoded as q * X.
template <const FormatSpec& B>
FPSCOPE_HD inline BlockStats mx_block_stats(const float* x, int n) {
  BlockStats r{};
  uint32_t amax_bits = 0;
  for (int i = 0; i < n; ++i) {
    const uint32_t a = detail::f2u(x[i]) & kFp32AbsMask;
    r.nonfinite += static_cast<uint32_t>(a >= kFp32InfBits);
    amax_bits = a > amax_bits ? a : amax_bits;  // NaN patterns are the largest: amax is NaN
  }
  const MxScale s = mx_scale<B>(detail::u2f(amax_bits));
  r.scale_code = s.code;
  r.scale = e8m0_value(s.code);
  r.zero_block = static_cast<uint32_t>(amax_bits == 0);
  r.scale_underflow = s.underflow;
  r.nan_scale = s.nan;
  if (s.nan) return r;
  const double xd = detail::pow2d(s.exp);
  for (int i = 0; i < n; ++i) {
    const SatCast c = cast_sat<B>(mul_pow2(x[i], -s.exp));
    r.flushed += static_cast<uint32_t>((detail::f2u(x[i]) & kFp32AbsMask) != 0 && c.value == 0.0f);
    r.saturated += c.saturated;
    const double xi = static_cast<double>(x[i]);
    // Exact: q * X is a short power-of-two multiple and x - q * X is within a factor 2 of x or
    // below x's ulp scale (Sterbenz / rounding error), so 53 bits hold it.
    const double e = xi - static_cast<double>(c.value) * xd;
    r.sum_err2 += e * e;
    r.sum_x2 += xi * xi;
  }
  return r;
}

// NVFP4 per-tensor encode scale (NVIDIA's two-level scaling): 6 * 448 / amax of the tensor, so
// that the largest block scale amax_block / 6 * s_enc is E4M3's 448; 1 for a zero or
// non-finite amax; at most FP32's largest finite value. tensor_scale arguments must be finite
// and positive.
FPSCOPE_HD inline float nvfp4_tensor_scale(float tensor_amax) {
  const uint32_t a = detail::f2u(tensor_amax) & kFp32AbsMask;
  if (a == 0 || a >= kFp32InfBits) return 1.0f;
  // A tiny amax would give Inf: clamp to FP32's largest finite value.
  const float s = detail::div_rn(max_finite(kE2M1) * max_finite(kE4M3), detail::u2f(a));
  return detail::f2u(s) >= kFp32InfBits ? detail::u2f(kFp32MaxFiniteBits) : s;
}

// NVFP4 block scale (E4M3, round to nearest even, saturating) of a block whose largest
// magnitude is the finite amax: sf = E4M3_rne_sat(fl(fl(amax / 6) * s_enc)).
FPSCOPE_HD inline SatCast nvfp4_block_scale(float amax, float tensor_scale) {
  return cast_sat<kE4M3>(detail::mul_rn(detail::div_rn(amax, max_finite(kE2M1)), tensor_scale));
}
// The factor a block's elements are multiplied by before their E2M1 cast: fl(s_enc / sf); 0 for
// a zero sf (every element decodes to 0).
FPSCOPE_HD inline float nvfp4_element_factor(float sf, float tensor_scale) {
  return sf == 0.0f ? 0.0f : detail::div_rn(tensor_scale, sf);
}

// NVFP4 block (E2M1 elements, E4M3 block scale, FP32 tensor scale s_enc): block scale
// sf = E4M3_rne_sat(fl(fl(amax / 6) * s_enc)); elements q = cast_sat<E2M1>(fl(x * fl(s_enc /
// sf))), decoded as q * sf / s_enc (in double).
FPSCOPE_HD inline BlockStats nvfp4_block_stats(const float* x, int n, float tensor_scale) {
  BlockStats r{};
  uint32_t amax_bits = 0;
  for (int i = 0; i < n; ++i) {
    const uint32_t a = detail::f2u(x[i]) & kFp32AbsMask;
    r.nonfinite += static_cast<uint32_t>(a >= kFp32InfBits);
    amax_bits = a > amax_bits ? a : amax_bits;
  }
  r.zero_block = static_cast<uint32_t>(amax_bits == 0);
  if (amax_bits >= kFp32InfBits) {
    r.nan_scale = 1;
    r.scale_code = encode_sat<kE4M3>(detail::u2f(kFp32QuietNanBits));
    r.scale = decode_code<kE4M3>(r.scale_code);
    return r;
  }
  const SatCast sc = nvfp4_block_scale(detail::u2f(amax_bits), tensor_scale);
  r.scale_code = encode_sat<kE4M3>(sc.value);
  r.scale = sc.value;
  r.scale_overflow = sc.saturated;
  r.scale_underflow = static_cast<uint32_t>(amax_bits != 0 && sc.value == 0.0f);
  const bool zero_scale = sc.value == 0.0f;
  const float inv = nvfp4_element_factor(sc.value, tensor_scale);
  const auto enc = static_cast<double>(tensor_scale);
  const auto sfd = static_cast<double>(sc.value);
  for (int i = 0; i < n; ++i) {
    // A zero scale (zero or underflowing block): every element decodes to 0.
    const SatCast c =
        zero_scale ? SatCast{0.0f, 0, 0, 0} : cast_sat<kE2M1>(detail::mul_rn(x[i], inv));
    r.flushed += static_cast<uint32_t>((detail::f2u(x[i]) & kFp32AbsMask) != 0 && c.value == 0.0f);
    r.saturated += c.saturated;
    const double xi = static_cast<double>(x[i]);
    // x - q * sf / s_enc as (x * s_enc - q * sf) / s_enc: both products are exact in double,
    // so the error keeps its relative accuracy when x is almost exactly representable.
    const double e = (xi * enc - static_cast<double>(c.value) * sfd) / enc;
    r.sum_err2 += e * e;
    r.sum_x2 += xi * xi;
  }
  return r;
}

// ---- quantize-dequantize (the emulated precision: probe/src/emulate.h) ---------------------
// One block of n <= block size elements x cast to a block-scaled format and decoded back to
// FP32 into out (out may be x): what a GEMM that consumes the block-scaled operand sees, as FP32
// values. The same scales and element casts as the statistics above.

// x * 2^k exactly for x a decoded element and -127 <= k <= 127 (an FP32 subnormal result is
// exact too: elements have at most 3 mantissa bits and the smallest is 2^-16).
FPSCOPE_HD inline float mul_pow2_wide(float x, int k) {
  return k < kFp32MinNormalExp ? mul_pow2(detail::mul_rn(x, 0.5f), k + 1) : mul_pow2(x, k);
}

// MX (B: kMxfp8E4M3 .. kMxfp4): out[i] = cast_sat<B>(x[i] / X) * X, X = 2^shared_exp of
// mx_scale (exact: every step is a power-of-two scaling or the element cast). A block holding a
// NaN or an Inf has a NaN scale: every out[i] is NaN (OCP MX v1.0 section 6.3).
template <const FormatSpec& B>
FPSCOPE_HD inline void mx_block_qdq(const float* x, int n, float* out) {
  uint32_t amax_bits = 0;
  for (int i = 0; i < n; ++i) {
    const uint32_t a = detail::f2u(x[i]) & kFp32AbsMask;
    amax_bits = a > amax_bits ? a : amax_bits;
  }
  const MxScale s = mx_scale<B>(detail::u2f(amax_bits));
  for (int i = 0; i < n; ++i)
    out[i] = s.nan ? detail::u2f(kFp32QuietNanBits)
                   : mul_pow2_wide(cast_sat<B>(mul_pow2(x[i], -s.exp)).value, s.exp);
}

// NVFP4 with tensor scale s_enc (nvfp4_tensor_scale of the tensor's amax): sf from
// nvfp4_block_scale, q = cast_sat<E2M1>(fl(x * nvfp4_element_factor)), out = fl(fl(q * sf) /
// s_enc) (q * sf is exact: one rounding, to the FP32 value nearest q * sf / s_enc). A zero sf
// gives x's signed zero; a block holding a NaN or an Inf (NaN E4M3 scale) gives NaN throughout.
FPSCOPE_HD inline void nvfp4_block_qdq(const float* x, int n, float tensor_scale, float* out) {
  uint32_t amax_bits = 0;
  for (int i = 0; i < n; ++i) {
    const uint32_t a = detail::f2u(x[i]) & kFp32AbsMask;
    amax_bits = a > amax_bits ? a : amax_bits;
  }
  const bool nan = amax_bits >= kFp32InfBits;
  const float sf = nan ? 0.0f : nvfp4_block_scale(detail::u2f(amax_bits), tensor_scale).value;
  const float f = nvfp4_element_factor(sf, tensor_scale);
  for (int i = 0; i < n; ++i) {
    const float q = cast_sat<kE2M1>(detail::mul_rn(x[i], f)).value;
    const float zero = detail::u2f(detail::f2u(x[i]) & kFp32SignMask);
    out[i] = nan          ? detail::u2f(kFp32QuietNanBits)
             : sf == 0.0f ? zero
                          : detail::div_rn(detail::mul_rn(q, sf), tensor_scale);
  }
}

// Block format f of kBlockFormats (0..5): the quantize-dequantize of one block.
FPSCOPE_HD inline void block_qdq_of(int f, const float* x, int n, float nvfp4_scale, float* out) {
  switch (f) {
    case 0:
      return mx_block_qdq<kMxfp8E4M3>(x, n, out);
    case 1:
      return mx_block_qdq<kMxfp8E5M2>(x, n, out);
    case 2:
      return mx_block_qdq<kMxfp6E3M2>(x, n, out);
    case 3:
      return mx_block_qdq<kMxfp6E2M3>(x, n, out);
    case 4:
      return mx_block_qdq<kMxfp4>(x, n, out);
    default:
      return nvfp4_block_qdq(x, n, nvfp4_scale, out);
  }
}

// ---- one source of truth for the statistics pass (host_stats.cpp, stats_kernels.cu) ---------
// Block format f of kBlockFormats (0..5) over one block of n <= block size elements.
FPSCOPE_HD inline BlockStats block_stats_of(int f, const float* x, int n, float nvfp4_scale) {
  switch (f) {
    case 0:
      return mx_block_stats<kMxfp8E4M3>(x, n);
    case 1:
      return mx_block_stats<kMxfp8E5M2>(x, n);
    case 2:
      return mx_block_stats<kMxfp6E3M2>(x, n);
    case 3:
      return mx_block_stats<kMxfp6E2M3>(x, n);
    case 4:
      return mx_block_stats<kMxfp4>(x, n);
    default:
      return nvfp4_block_stats(x, n, nvfp4_scale);
  }
}

// The block-scale histogram bin of a block scale value (stats.h kBlockScaleBins): its FP32
// biased exponent (E8M0 2^-127 and a zero NVFP4 scale: 0; NaN: 255).
FPSCOPE_HD inline int block_scale_bin(float scale) {
  return fp32_biased_exponent(detail::f2u(scale) & kFp32AbsMask);
}

// Folds one block (n elements) of format f into a statistics set.
FPSCOPE_HD inline void accumulate_block(BlockStatsSet& s, int f, const BlockStats& b, int n) {
  BlockFormatCounts& c = s.fmt[f];
  c.blocks += 1;
  c.elements += b.nan_scale ? 0u : static_cast<uint32_t>(n);
  c.flushed += b.flushed;
  c.saturated += b.saturated;
  c.zero_blocks += b.zero_block;
  c.scale_underflow += b.scale_underflow;
  c.scale_overflow += b.scale_overflow;
  c.nan_scale += b.nan_scale;
  c.sum_err2 += b.sum_err2;
  c.sum_x2 += b.sum_x2;
  s.scale_hist[f][block_scale_bin(b.scale)] += 1;
}

// Element count of one block of format f.
FPSCOPE_HD inline int block_size_of(int f) {
  return f == kNumBlockFormats - 1 ? kNvfp4.block_size : kMxfp4.block_size;
}
static_assert(kBlockFormats[kNumBlockFormats - 1] == &kNvfp4 && kNvfp4.block_size == 16 &&
                  kMxfp8E4M3.block_size == 32 && kMxfp6E2M3.block_size == 32,
              "block_size_of and block_stats_of follow kBlockFormats' order");

}  // namespace fpscope
