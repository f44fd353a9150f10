// The OCP MX / NVFP4 element and scale formats (formats.h kE3M2, kE2M3, kE2M1, kE8M0, the
// E4M3 / E5M2 rows) and their casts (block_numerics.h) against CUDA 13's own host conversion
// functions, compiled by the host compiler:
//  - cuda_fp6.h: __nv_cvt_float_to_fp6(x, __NV_E3M2 / __NV_E2M3, cudaRoundNearest) "saturating
//    the out-of-range values ... Large out-of-range values saturate to MAXNORM of the same sign.
//    NaN input values result in positive MAXNORM", __nv_cvt_fp6_to_halfraw;
//  - cuda_fp4.h: __nv_cvt_float_to_fp4(x, __NV_E2M1, cudaRoundNearest) (same rules),
//    __nv_cvt_fp4_to_halfraw;
//  - cuda_fp8.h: __nv_cvt_float_to_fp8(x, __NV_SATFINITE, ..) (the saturating FP8 cast an MX
//    block uses), __nv_cvt_float_to_e8m0(x, sat, cudaRoundZero / cudaRoundPosInf) ("rounded to
//    the closest power of two in the direction specified ... smaller than 2^-127 clipped to
//    2^-127 ... larger than 2^127 clipped to 2^127 if __NV_SATFINITE, or NaN otherwise; NaN
//    inputs convert into NaN, 0xFF"), __nv_cvt_e8m0_to_bf16raw.
// And against the OCP Microscaling Formats (MX) v1.0 specification where CUDA has no function:
// the element values (FP6 E3M2: max 28, min subnormal 2^-4; E2M3: max 7.5, min subnormal 2^-3;
// FP4 E2M1: max 6, min subnormal 0.5; no Inf/NaN) and section 6.3 "Conversion from vector of
// scalar format": X = 2^(floor(log2(max |V_i|)) - emax_elem).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp4.h>
#include <cuda_fp6.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "fpscope/block_numerics.h"
#include "fpscope/formats.h"

namespace {
using fpscope::FormatSpec;

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float half_raw_to_float(__half_raw h) {
  return __half2float(__half(h));
}

// One element format under test: CUDA's encode (saturating, RNE) and decode for it.
enum class Kind { E3M2, E2M3, E2M1, E4M3, E5M2 };
struct Elem {
  Kind kind;
  const char* name;
  int bits;
};
const Elem kElems[] = {{Kind::E3M2, "e3m2", 6},
                       {Kind::E2M3, "e2m3", 6},
                       {Kind::E2M1, "e2m1", 4},
                       {Kind::E4M3, "e4m3", 8},
                       {Kind::E5M2, "e5m2", 8}};

uint32_t cuda_encode(Kind k, float y) {
  switch (k) {
    case Kind::E3M2:
      return __nv_cvt_float_to_fp6(y, __NV_E3M2, cudaRoundNearest);
    case Kind::E2M3:
      return __nv_cvt_float_to_fp6(y, __NV_E2M3, cudaRoundNearest);
    case Kind::E2M1:
      return __nv_cvt_float_to_fp4(y, __NV_E2M1, cudaRoundNearest);
    case Kind::E4M3:
      return __nv_cvt_float_to_fp8(y, __NV_SATFINITE, __NV_E4M3);
    case Kind::E5M2:
      return __nv_cvt_float_to_fp8(y, __NV_SATFINITE, __NV_E5M2);
  }
  return 0;
}
float cuda_decode(Kind k, uint32_t c) {
  switch (k) {
    case Kind::E3M2:
      return half_raw_to_float(
          __nv_cvt_fp6_to_halfraw(static_cast<__nv_fp6_storage_t>(c), __NV_E3M2));
    case Kind::E2M3:
      return half_raw_to_float(
          __nv_cvt_fp6_to_halfraw(static_cast<__nv_fp6_storage_t>(c), __NV_E2M3));
    case Kind::E2M1:
      return half_raw_to_float(
          __nv_cvt_fp4_to_halfraw(static_cast<__nv_fp4_storage_t>(c), __NV_E2M1));
    case Kind::E4M3:
      return half_raw_to_float(
          __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(c), __NV_E4M3));
    case Kind::E5M2:
      return half_raw_to_float(
          __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(c), __NV_E5M2));
  }
  return 0;
}

// fpscope's side, dispatched to the compile-time format.
struct Ours {
  uint32_t code;
  fpscope::SatCast cast;
};
Ours ours(Kind k, float y) {
  switch (k) {
    case Kind::E3M2:
      return {fpscope::encode_sat<fpscope::kE3M2>(y), fpscope::cast_sat<fpscope::kE3M2>(y)};
    case Kind::E2M3:
      return {fpscope::encode_sat<fpscope::kE2M3>(y), fpscope::cast_sat<fpscope::kE2M3>(y)};
    case Kind::E2M1:
      return {fpscope::encode_sat<fpscope::kE2M1>(y), fpscope::cast_sat<fpscope::kE2M1>(y)};
    case Kind::E4M3:
      return {fpscope::encode_sat<fpscope::kE4M3>(y), fpscope::cast_sat<fpscope::kE4M3>(y)};
    case Kind::E5M2:
      return {fpscope::encode_sat<fpscope::kE5M2>(y), fpscope::cast_sat<fpscope::kE5M2>(y)};
  }
  return {};
}
float our_decode(Kind k, uint32_t c) {
  switch (k) {
    case Kind::E3M2:
      return fpscope::decode_code<fpscope::kE3M2>(c);
    case Kind::E2M3:
      return fpscope::decode_code<fpscope::kE2M3>(c);
    case Kind::E2M1:
      return fpscope::decode_code<fpscope::kE2M1>(c);
    case Kind::E4M3:
      return fpscope::decode_code<fpscope::kE4M3>(c);
    case Kind::E5M2:
      return fpscope::decode_code<fpscope::kE5M2>(c);
  }
  return 0;
}
const FormatSpec& spec_of(Kind k) {
  switch (k) {
    case Kind::E3M2:
      return fpscope::kE3M2;
    case Kind::E2M3:
      return fpscope::kE2M3;
    case Kind::E2M1:
      return fpscope::kE2M1;
    case Kind::E4M3:
      return fpscope::kE4M3;
    case Kind::E5M2:
      break;
  }
  return fpscope::kE5M2;
}

bool same(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || bits(a) == bits(b);
}

// ---- the table rows against the OCP values ---------------------------------------------------
static_assert(fpscope::storage_bits(fpscope::kE3M2) == 6 &&
              fpscope::storage_bits(fpscope::kE2M3) == 6);
static_assert(fpscope::max_finite(fpscope::kE3M2) == 28.0f);
static_assert(fpscope::min_subnormal(fpscope::kE3M2) == 0.0625f);
static_assert(fpscope::min_normal(fpscope::kE3M2) == 0.25f);
static_assert(fpscope::max_finite(fpscope::kE2M3) == 7.5f);
static_assert(fpscope::min_subnormal(fpscope::kE2M3) == 0.125f);
static_assert(fpscope::min_normal(fpscope::kE2M3) == 1.0f);
static_assert(fpscope::max_finite(fpscope::kE2M1) == 6.0f);
static_assert(!fpscope::has_nan(fpscope::kE3M2) && !fpscope::has_inf(fpscope::kE2M3) &&
              !fpscope::has_nan(fpscope::kE2M1));
static_assert(fpscope::max_exp(fpscope::kE4M3) == 8 && fpscope::max_exp(fpscope::kE5M2) == 15 &&
              fpscope::max_exp(fpscope::kE3M2) == 4 && fpscope::max_exp(fpscope::kE2M3) == 2 &&
              fpscope::max_exp(fpscope::kE2M1) == 2);  // OCP MX v1.0 emax_elem
static_assert(fpscope::bits_per_element(fpscope::kMxfp8E4M3) == 8.25 &&
              fpscope::bits_per_element(fpscope::kMxfp8E5M2) == 8.25 &&
              fpscope::bits_per_element(fpscope::kMxfp6E3M2) == 6.25 &&
              fpscope::bits_per_element(fpscope::kMxfp6E2M3) == 6.25 &&
              fpscope::bits_per_element(fpscope::kMxfp4) == 4.25 &&
              fpscope::bits_per_element(fpscope::kNvfp4) == 4.5);
static_assert(fpscope::kNvfp4.block_size == 16 && fpscope::kMxfp4.block_size == 32);

TEST(BlockFormats, TableListsEveryMxAndNvfp4Format) {
  const char* want[] = {"mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "nvfp4"};
  ASSERT_EQ(fpscope::kNumBlockFormats, 6);
  for (int i = 0; i < fpscope::kNumBlockFormats; ++i) {
    const FormatSpec& b = *fpscope::kBlockFormats[i];
    EXPECT_STREQ(b.name, want[i]);
    EXPECT_TRUE(fpscope::is_block_scaled(b) && fpscope::valid_spec(b)) << b.name;
    EXPECT_EQ(b.block_size, i == 5 ? 16 : 32) << b.name;
    EXPECT_EQ(b.block_scale->exp_bits, i == 5 ? 4 : 8) << b.name;
  }
}

// ---- decode: every code ----------------------------------------------------------------------
TEST(BlockCasts, DecodeEveryCodeMatchesCuda) {
  for (const Elem& e : kElems) {
    SCOPED_TRACE(e.name);
    const FormatSpec& s = spec_of(e.kind);
    for (uint32_t c = 0; c < (1u << e.bits); ++c) {
      const float want = cuda_decode(e.kind, c);
      EXPECT_TRUE(same(our_decode(e.kind, c), want)) << c;
      const fpscope::CodeValue v = fpscope::code_value(s, c);  // the table's generic decoder
      if (std::isnan(want)) {
        EXPECT_EQ(v.kind, fpscope::CodeKind::NaN) << c;
      } else if (std::isinf(want)) {
        EXPECT_EQ(v.kind, fpscope::CodeKind::Inf) << c;
      } else {
        EXPECT_EQ(v.kind, fpscope::CodeKind::Finite) << c;
        EXPECT_TRUE(same(v.value, want)) << c;
      }
    }
  }
}

TEST(BlockCasts, E8M0DecodeEveryCodeMatchesCuda) {
  for (uint32_t c = 0; c < 256; ++c) {
    __nv_bfloat16_raw r = __nv_cvt_e8m0_to_bf16raw(static_cast<__nv_fp8_storage_t>(c));
    const float want = __bfloat162float(__nv_bfloat16(r));
    EXPECT_TRUE(same(fpscope::e8m0_value(c), want)) << c;
    if (c < 255) {
      EXPECT_EQ(fpscope::e8m0_value(c), std::ldexp(1.0f, static_cast<int>(c) - 127)) << c;
      EXPECT_EQ(fpscope::code_value(fpscope::kE8M0, c).value, want) << c;
    }
  }
}

// ---- encode: inputs --------------------------------------------------------------------------
// Every BF16-representable float, the neighbourhood (+-4 FP32 ulps) of every value of the
// format and of every midpoint between neighbours (0 and the smallest subnormal, max and
// max + one quantum: the saturation tie), the specials, a strided sweep of all FP32 patterns and
// random ones.
std::vector<float> encode_inputs(Kind k) {
  std::vector<float> in;
  for (uint32_t b = 0; b < 65536; ++b) in.push_back(from_bits(b << 16));
  const uint32_t n = 1u << (fpscope::storage_bits(spec_of(k)) - 1);  // nonnegative codes
  std::vector<float> vals;
  for (uint32_t c = 0; c < n; ++c) {
    const float v = cuda_decode(k, c);
    if (std::isfinite(v)) vals.push_back(v);
  }
  std::sort(vals.begin(), vals.end());
  vals.push_back(2 * vals.back() - vals[vals.size() - 2]);  // max + one quantum
  std::vector<float> centres = vals;
  for (size_t i = 0; i + 1 < vals.size(); ++i) centres.push_back((vals[i] + vals[i + 1]) / 2);
  for (float c : centres) {
    for (int d = -4; d <= 4; ++d) {
      const float v = from_bits(static_cast<uint32_t>(static_cast<int32_t>(bits(c)) + d));
      if (c == 0.0f && d < 0) continue;
      in.push_back(v);
      in.push_back(-v);
    }
  }
  const float specials[] = {0.0f,
                            -0.0f,
                            INFINITY,
                            -INFINITY,
                            NAN,
                            -NAN,
                            from_bits(0x7f800001u),
                            from_bits(0xffc00001u),
                            std::numeric_limits<float>::max(),
                            -std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::min(),
                            std::numeric_limits<float>::denorm_min(),
                            -std::numeric_limits<float>::denorm_min(),
                            from_bits(0x007fffffu),
                            std::ldexp(1.0f, 64),
                            std::ldexp(1.0f, 100)};
  in.insert(in.end(), std::begin(specials), std::end(specials));
  // Every 4099th FP32 pattern (a prime stride: all low-bit residues occur), both signs.
  for (uint64_t b = 0; b < 0x7f800000u; b += 4099) {
    in.push_back(from_bits(static_cast<uint32_t>(b)));
    in.push_back(-from_bits(static_cast<uint32_t>(b)));
  }
  std::mt19937 rng(19);
  for (int i = 0; i < 400000; ++i) in.push_back(from_bits(static_cast<uint32_t>(rng())));
  // Random values inside the format's range, where every FP32 bit matters for the rounding.
  std::uniform_real_distribution<float> u(-vals.back(), vals.back());
  for (int i = 0; i < 400000; ++i) in.push_back(u(rng));
  return in;
}

TEST(BlockCasts, EncodeMatchesCudaSaturatingCasts) {
  for (const Elem& e : kElems) {
    SCOPED_TRACE(e.name);
    const FormatSpec& s = spec_of(e.kind);
    const float max = fpscope::max_finite(s);
    // One quantum of the top binade, from CUDA's decode of the code below max (same binade).
    const double quantum = max - cuda_decode(e.kind, fpscope::max_finite_code(s) - 1u);
    const bool max_odd = (fpscope::max_finite_code(s) & 1u) != 0;
    const float min_norm = cuda_decode(e.kind, 1u << s.man_bits);
    int failures = 0;
    for (const float y : encode_inputs(e.kind)) {
      const uint32_t want = cuda_encode(e.kind, y);
      const Ours o = ours(e.kind, y);
      const float want_value = cuda_decode(e.kind, want);
      if (std::isnan(y) && fpscope::has_nan(s)) {
        // CUDA's NaN code keeps some payload bits (E5M2); any NaN code is the NaN.
        failures += !std::isnan(our_decode(e.kind, o.code)) || !std::isnan(o.cast.value);
        continue;
      }
      failures += o.code != want;
      failures += !same(o.cast.value, want_value);
      if (std::isnan(y)) continue;
      // Flags: independent definitions on CUDA's result and the input.
      const double ay = std::fabs(static_cast<double>(y));
      const double tie = static_cast<double>(max) + quantum / 2;
      const bool sat = ay > tie || (ay == tie && max_odd);
      failures += (o.cast.saturated != 0) != sat;
      failures += (o.cast.underflow != 0) != (y != 0.0f && want_value == 0.0f);
      failures +=
          (o.cast.subnormal != 0) != (want_value != 0.0f && std::fabs(want_value) < min_norm);
      if (failures > 0 && failures < 5) {
        ADD_FAILURE() << "y=" << y << " (0x" << std::hex << bits(y) << ") ours 0x" << o.code
                      << " cuda 0x" << want << std::dec << " value " << o.cast.value << " sat "
                      << o.cast.saturated << " uf " << o.cast.underflow << " sub "
                      << o.cast.subnormal;
        failures = 5;
      }
    }
    EXPECT_EQ(failures, 0);
  }
}

// The probe runs inside someone else's program: a cast must not leave FE_INVALID in its
// floating-point state (nor trap, where the program enabled the trap). The magic-number rounding
// of a huge |y| would add and subtract +Inf (block_numerics.h sat_abs_bits clamps first): every
// binade of FP32, both signs, and +-Inf.
TEST(BlockCasts, NoCastRaisesInvalidOperation) {
  std::vector<float> ys = {std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity()};
  for (int e = -149; e <= 127; ++e)
    for (const float m : {1.0f, 1.25f, 1.9999999f})
      for (const float sign : {1.0f, -1.0f}) ys.push_back(sign * std::ldexp(m, e));
  for (const Elem& e : kElems) {
    SCOPED_TRACE(e.name);
    const float max = fpscope::max_finite(spec_of(e.kind));
    int raised = 0, wrong = 0;
    for (const float y : ys) {
      std::feclearexcept(FE_INVALID);
      const Ours o = ours(e.kind, y);
      volatile float sink = o.cast.value;  // used before the flags are read
      raised += std::fetestexcept(FE_INVALID) != 0;
      if (std::fabs(y) > 2 * max) wrong += sink != std::copysign(max, y) || o.cast.saturated != 1;
    }
    EXPECT_EQ(raised, 0);
    EXPECT_EQ(wrong, 0);  // and every value far above max saturated to +-max
  }
}

// A few casts by hand from the OCP value lists (round to nearest even, saturation).
TEST(BlockCasts, HandCheckedOcpValues) {
  using fpscope::cast_sat;
  EXPECT_EQ(cast_sat<fpscope::kE2M1>(5.0f).value, 4.0f);   // tie 4 | 6: even mantissa (4)
  EXPECT_EQ(cast_sat<fpscope::kE2M1>(2.5f).value, 2.0f);   // tie 2 | 3
  EXPECT_EQ(cast_sat<fpscope::kE2M1>(0.25f).value, 0.0f);  // half the smallest subnormal
  EXPECT_EQ(cast_sat<fpscope::kE2M1>(0.2500001f).value, 0.5f);
  EXPECT_EQ(cast_sat<fpscope::kE2M1>(-7.0f).value, -6.0f);  // tie 6 | (8): saturates
  EXPECT_EQ(cast_sat<fpscope::kE2M1>(-7.0f).saturated, 1u);
  EXPECT_EQ(cast_sat<fpscope::kE2M1>(6.9f).saturated, 0u);  // rounds to 6 anyway
  EXPECT_EQ(cast_sat<fpscope::kE2M1>(6.9f).value, 6.0f);
  EXPECT_EQ(cast_sat<fpscope::kE2M1>(NAN).value, 6.0f);  // CUDA: NaN -> +MAXNORM
  EXPECT_EQ(cast_sat<fpscope::kE3M2>(1000.0f).value, 28.0f);
  EXPECT_EQ(cast_sat<fpscope::kE3M2>(0.09375f).value, 0.125f);  // tie 1 | 2 subnormals: even
  EXPECT_EQ(cast_sat<fpscope::kE2M3>(7.75f).value, 7.5f);       // tie 7.5 | (8): saturated
  EXPECT_EQ(cast_sat<fpscope::kE2M3>(7.75f).saturated, 1u);
  EXPECT_EQ(cast_sat<fpscope::kE4M3>(464.0f).value, 448.0f);  // tie 448 | (480): even, no clamp
  EXPECT_EQ(cast_sat<fpscope::kE4M3>(464.0f).saturated, 0u);
  EXPECT_EQ(cast_sat<fpscope::kE4M3>(464.5f).saturated, 1u);
  EXPECT_EQ(fpscope::encode_sat<fpscope::kE2M1>(-0.0f), 0x8u);
  EXPECT_EQ(fpscope::encode_sat<fpscope::kE3M2>(-1e-30f), 0x20u);  // flushed, sign kept
}

// ---- E8M0 ------------------------------------------------------------------------------------
TEST(BlockCasts, E8M0EncodeMatchesCudaInAllFourModes) {
  std::vector<float> in;
  for (uint32_t b = 0; b < 65536; ++b) in.push_back(from_bits(b << 16));
  for (int e = -149; e <= 127; ++e) {
    const float p = std::ldexp(1.0f, e);
    for (int d = -3; d <= 3; ++d) {
      const float v = from_bits(static_cast<uint32_t>(static_cast<int32_t>(bits(p)) + d));
      in.push_back(v);
      in.push_back(-v);
    }
  }
  std::mt19937 rng(8);
  for (int i = 0; i < 400000; ++i) in.push_back(from_bits(static_cast<uint32_t>(rng())));
  in.push_back(INFINITY);
  in.push_back(-INFINITY);
  in.push_back(NAN);
  in.push_back(std::numeric_limits<float>::max());
  struct Mode {
    fpscope::E8M0Round ours;
    cudaRoundMode cuda;
    bool sat;
  };
  const Mode modes[] = {{fpscope::E8M0Round::Floor, cudaRoundZero, false},
                        {fpscope::E8M0Round::Floor, cudaRoundZero, true},
                        {fpscope::E8M0Round::Ceil, cudaRoundPosInf, false},
                        {fpscope::E8M0Round::Ceil, cudaRoundPosInf, true}};
  for (const Mode& m : modes) {
    SCOPED_TRACE(testing::Message()
                 << "ceil " << (m.ours == fpscope::E8M0Round::Ceil) << " sat " << m.sat);
    int failures = 0;
    for (const float x : in) {
      const uint32_t want = __nv_cvt_float_to_e8m0(x, m.sat ? __NV_SATFINITE : __NV_NOSAT, m.cuda);
      const uint32_t got = fpscope::e8m0_from_float(x, m.ours, m.sat);
      if (got != want && ++failures < 5)
        ADD_FAILURE() << "x=" << x << " (0x" << std::hex << bits(x) << ") ours 0x" << got
                      << " cuda 0x" << want;
    }
    EXPECT_EQ(failures, 0);
  }
}

// OCP MX v1.0 section 6.3: shared_exp = floor(log2(amax)) - emax_elem, clamped at E8M0's 2^-127
// (the OCP reference code, microxcaling's clamp_shared_exp, does the same); equal to CUDA's
// round-toward-zero E8M0 of amax, lowered by emax_elem, and to a frexp computation.
template <const FormatSpec& B>
void check_mx_scale(const std::vector<float>& amaxes) {
  const int emax = fpscope::max_exp(B);
  int failures = 0;
  for (const float amax : amaxes) {
    const fpscope::MxScale s = fpscope::mx_scale<B>(amax);
    if (!std::isfinite(amax)) {
      failures += s.code != 0xffu || s.nan != 1u;
      continue;
    }
    const int cuda = __nv_cvt_float_to_e8m0(amax, __NV_SATFINITE, cudaRoundZero);
    int want_code = std::max(cuda - emax, 0);
    int fl = 0;
    std::frexp(amax, &fl);  // amax = f * 2^fl, f in [0.5, 1): floor(log2) = fl - 1
    const int shared = amax == 0.0f ? -1000 : fl - 1 - emax;
    const int want_frexp = std::max(shared, -127) + 127;
    failures += static_cast<int>(s.code) != want_code || want_code != want_frexp;
    failures += s.exp != std::max(shared, -127) || s.nan != 0u;
    failures += (s.underflow != 0) != (amax != 0.0f && shared < -127);
    if (failures > 0 && failures < 5) {
      ADD_FAILURE() << B.name << " amax=" << amax << " code " << s.code << " cuda-based "
                    << want_code << " frexp-based " << want_frexp;
      failures = 5;
    }
  }
  EXPECT_EQ(failures, 0) << B.name;
}

TEST(BlockCasts, MxScaleIsFloorLog2AmaxMinusEmaxElem) {
  std::vector<float> amaxes;
  for (uint32_t b = 0; b < 65536; ++b) amaxes.push_back(std::fabs(from_bits(b << 16)));
  for (int e = -149; e <= 127; ++e)
    for (int d = -2; d <= 2; ++d)
      amaxes.push_back(
          from_bits(static_cast<uint32_t>(static_cast<int32_t>(bits(std::ldexp(1.0f, e))) + d) &
                    0x7fffffffu));
  amaxes.push_back(std::numeric_limits<float>::max());
  amaxes.push_back(NAN);
  check_mx_scale<fpscope::kMxfp8E4M3>(amaxes);
  check_mx_scale<fpscope::kMxfp8E5M2>(amaxes);
  check_mx_scale<fpscope::kMxfp6E3M2>(amaxes);
  check_mx_scale<fpscope::kMxfp6E2M3>(amaxes);
  check_mx_scale<fpscope::kMxfp4>(amaxes);
  // By hand: amax 6 (MXFP4): floor(log2 6) = 2 = emax(E2M1), X = 1; amax 448 (MXFP8 E4M3): 8 - 8.
  EXPECT_EQ(fpscope::mx_scale<fpscope::kMxfp4>(6.0f).code, 127u);
  EXPECT_EQ(fpscope::mx_scale<fpscope::kMxfp8E4M3>(448.0f).code, 127u);
  EXPECT_EQ(fpscope::mx_scale<fpscope::kMxfp8E4M3>(512.0f).code, 128u);
  EXPECT_EQ(fpscope::mx_scale<fpscope::kMxfp4>(0.0f).underflow, 0u);  // zero block: no underflow
  EXPECT_EQ(fpscope::mx_scale<fpscope::kMxfp4>(1e-38f).underflow, 1u);
}

TEST(BlockCasts, MulPow2IsExactScalingAlsoForSubnormals) {
  std::mt19937 rng(3);
  for (int i = 0; i < 200000; ++i) {
    const auto r = static_cast<uint32_t>(rng());
    const float x = from_bits((r & 0x807fffffu) | ((r & 0x40000000u) ? 0x00800000u : 0u));
    const int k = static_cast<int>(static_cast<uint32_t>(rng()) % 253u) - 125;
    const double want = std::ldexp(static_cast<double>(x), k);
    EXPECT_EQ(fpscope::mul_pow2(x, k), static_cast<float>(want)) << x << " " << k;
  }
}

}  // namespace
