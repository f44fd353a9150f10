// The format table's derived constants against CUDA's own host conversion functions, and rows the
// table does not list (E2M1, E8M0, MXFP8, MXFP4, NVFP4) described as data, checked against the
// OCP / NVIDIA definitions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/stats.h"

namespace {
using fpscope::CodeKind;
using fpscope::Format;
using fpscope::FormatSpec;
using fpscope::pow2f;
using fpscope::SpecialEncoding;

// ---- rows the table does not list: data only ------------------------------------------------
// OCP MX v1.0: E2M1 (FP4) has no Inf/NaN, values 0, 0.5, 1, 1.5, 2, 3, 4, 6; E8M0 is an unsigned
// exponent (bias 127, 2^-127 .. 2^127, 0xFF = NaN, no zero); MXFP8/MXFP4: blocks of 32 with an
// E8M0 scale. NVFP4: E2M1 in blocks of 16 with an E4M3 scale.
constexpr FormatSpec kE2M1 = {fpscope::kUnlistedFormat,
                              "e2m1",
                              2,
                              1,
                              SpecialEncoding::AllFinite,
                              0,
                              false,
                              true,
                              true,
                              nullptr};
constexpr FormatSpec kE8M0 = {fpscope::kUnlistedFormat,
                              "e8m0",
                              8,
                              0,
                              SpecialEncoding::FiniteNanOnlyMax,
                              0,
                              false,
                              false,
                              false,
                              nullptr};
constexpr FormatSpec kMxfp8 =
    fpscope::block_scaled(fpscope::spec(Format::E4M3), "mxfp8", 32, kE8M0);
constexpr FormatSpec kMxfp4 = fpscope::block_scaled(kE2M1, "mxfp4", 32, kE8M0);
constexpr FormatSpec kNvfp4 =
    fpscope::block_scaled(kE2M1, "nvfp4", 16, fpscope::spec(Format::E4M3));

// Same element encoding (pointer comparisons are not constant under GCC's -fsanitize=undefined).
constexpr bool same_encoding(const FormatSpec& a, const FormatSpec& b) {
  return a.exp_bits == b.exp_bits && a.man_bits == b.man_bits && a.special == b.special &&
         a.has_sign == b.has_sign && a.has_zero == b.has_zero;
}

static_assert(fpscope::valid_spec(kE2M1) && fpscope::valid_spec(kE8M0) &&
              fpscope::valid_spec(kMxfp8) && fpscope::valid_spec(kMxfp4) &&
              fpscope::valid_spec(kNvfp4));
static_assert(fpscope::storage_bits(kE2M1) == 4);
static_assert(fpscope::exponent_bias(kE2M1) == 1);
static_assert(fpscope::max_finite(kE2M1) == 6.0f);
static_assert(fpscope::min_normal(kE2M1) == 1.0f);
static_assert(fpscope::min_subnormal(kE2M1) == 0.5f);
static_assert(!fpscope::has_inf(kE2M1) && !fpscope::has_nan(kE2M1));
// The FN encoding reserves the top code for NaN: E2M1 described with it would top out at 4.
static_assert(fpscope::max_finite(FormatSpec{fpscope::kUnlistedFormat, "e2m1fn", 2, 1,
                                             SpecialEncoding::FiniteNanOnlyMax, 0, false, true,
                                             true, nullptr}) == 4.0f);

static_assert(fpscope::storage_bits(kE8M0) == 8);
static_assert(fpscope::exponent_bias(kE8M0) == 127);
static_assert(fpscope::max_finite(kE8M0) == pow2f(127));
static_assert(fpscope::min_normal(kE8M0) == pow2f(-127));
static_assert(fpscope::min_subnormal(kE8M0) == pow2f(-127));  // no subnormals: the smallest value
static_assert(!fpscope::has_inf(kE8M0) && fpscope::has_nan(kE8M0));
static_assert(!fpscope::has_subnormals(kE8M0));
static_assert(fpscope::code_value(kE8M0, 0xff).kind == CodeKind::NaN);
static_assert(fpscope::code_value(kE8M0, 0xfe).value == pow2f(127));
static_assert(fpscope::code_value(kE8M0, 0x7f).value == 1.0f);
static_assert(fpscope::code_value(kE8M0, 0x00).value == pow2f(-127));

static_assert(kMxfp8.block_size == 32 && same_encoding(*kMxfp8.block_scale, kE8M0));
static_assert(same_encoding(kMxfp4, kE2M1) && same_encoding(kNvfp4, kE2M1));
static_assert(same_encoding(kMxfp8, fpscope::spec(Format::E4M3)) && !same_encoding(kE2M1, kE8M0));
static_assert(fpscope::max_finite(kMxfp8) == fpscope::max_finite(Format::E4M3));
static_assert(fpscope::storage_bits(kMxfp8) == 8 && fpscope::block_storage_bits(kMxfp8) == 264);
static_assert(fpscope::bits_per_element(kMxfp8) == 8.25);
static_assert(kMxfp4.block_size == 32 && same_encoding(*kMxfp4.block_scale, kE8M0));
static_assert(fpscope::bits_per_element(kMxfp4) == 4.25);
static_assert(kNvfp4.block_size == 16 && kNvfp4.block_scale->format == Format::E4M3);
static_assert(fpscope::max_finite(kNvfp4) == 6.0f && fpscope::bits_per_element(kNvfp4) == 4.5);
static_assert(fpscope::is_block_scaled(kNvfp4) && !fpscope::is_block_scaled(kE2M1));
static_assert(fpscope::bits_per_element(fpscope::spec(Format::BF16)) == 16.0);
// A block scale must itself be plain.
static_assert(!fpscope::valid_spec(fpscope::block_scaled(kE2M1, "bad", 16, kNvfp4)));

// ---- the listed rows: hand-checked values (CUDA's encodings below) ----------------------------
static_assert(fpscope::max_finite(Format::FP16) == 65504.0f);
static_assert(fpscope::max_finite(Format::E4M3) == 448.0f);
static_assert(fpscope::max_finite(Format::E5M2) == 57344.0f);
static_assert(fpscope::min_subnormal(Format::FP16) == pow2f(-24));
static_assert(fpscope::min_subnormal(Format::E4M3) == pow2f(-9));
static_assert(fpscope::min_subnormal(Format::E5M2) == pow2f(-16));
static_assert(fpscope::storage_bits(fpscope::spec(Format::FP32)) == 32);
static_assert(fpscope::storage_bits(fpscope::spec(Format::E5M2)) == 8);

// ---- FP32 layout and histogram bins: derived constants against their literal values ----------
static_assert(fpscope::kFp32ExpBits == 8 && fpscope::kFp32ManBits == 23);
static_assert(fpscope::kFp32Bias == 127 && fpscope::kFp32MaxBiasedExp == 255);
static_assert(fpscope::kFp32MinNormalExp == -126 && fpscope::kFp32MaxExp == 127);
static_assert(fpscope::kFp32MinSubnormalExp == -149);
static_assert(fpscope::kFp32SignMask == 0x80000000u && fpscope::kFp32AbsMask == 0x7fffffffu);
static_assert(fpscope::kFp32ManMask == 0x007fffffu && fpscope::kFp32ExpMask == 0x7f800000u);
static_assert(fpscope::kFp32InfBits == 0x7f800000u && fpscope::kFp32NegInfBits == 0xff800000u);
static_assert(fpscope::kFp32QuietNanBits == 0x7fc00000u);
static_assert(fpscope::kFp32MaxFiniteBits == 0x7f7fffffu);
static_assert(fpscope::fp32_pow2_bits(0) == 0x3f800000u &&
              fpscope::fp32_pow2_bits(-126) == 0x00800000u);
static_assert(fpscope::fp32_biased_exponent(0xbf800000u) == 127);
static_assert(fpscope::kHistBinCount == fpscope::kHistBins && fpscope::kHistBinCount == 1024);
static_assert(fpscope::kHistFirstNonFiniteBin == 1020 && fpscope::kHistBinShift == 21);
static_assert(fpscope::hist_bin_of_bits(0x3f800000u) == 508);   // 1.0: 127 * 4
static_assert(fpscope::hist_bin_of_bits(0xbfe00000u) == 511);   // -1.75: top mantissa bits 11
static_assert(fpscope::hist_bin_of_bits(0x7f800000u) == 1020);  // +Inf
static_assert(fpscope::hist_bin_exponent(508) == 0 && fpscope::hist_bin_exponent(511) == 0);
static_assert(fpscope::hist_bin_exponent(507) == -1 && fpscope::hist_bin_exponent(4) == -126);
static_assert(fpscope::hist_bin_exponent(0) == -127);  // FP32 subnormals
static_assert(fpscope::hist_bin_quarter(510) == 2);
static_assert(fpscope::hist_first_bin_of_exponent(0) == 508);
static_assert(fpscope::hist_first_bin_of_exponent(-126) == 4);
static_assert(fpscope::hist_first_bin_of_exponent(128) == fpscope::kHistFirstNonFiniteBin);
static_assert(fpscope::hist_bin_low_bits(509) == 0x3fa00000u);  // 1.25
static_assert(fpscope::hist_bin_octave(510) == 0.5 && fpscope::hist_bin_octave(0) == -127.0);

float fp16_bits_to_float(unsigned short b) {
  __half_raw r;
  r.x = b;
  return __half2float(__half(r));
}
float bf16_bits_to_float(unsigned short b) {
  __nv_bfloat16_raw r;
  r.x = b;
  return __bfloat162float(__nv_bfloat16(r));
}
float fp8_bits_to_float(unsigned char b, __nv_fp8_interpretation_t kind) {
  __half_raw h = __nv_cvt_fp8_to_halfraw(b, kind);
  return __half2float(__half(h));
}

TEST(FormatTable, MaxFiniteMatchesCudaLargestEncoding) {
  EXPECT_EQ(fpscope::max_finite(Format::FP16), fp16_bits_to_float(0x7bff));
  EXPECT_EQ(fpscope::max_finite(Format::BF16), bf16_bits_to_float(0x7f7f));
  EXPECT_EQ(fpscope::max_finite(Format::E4M3), fp8_bits_to_float(0x7e, __NV_E4M3));
  EXPECT_EQ(fpscope::max_finite(Format::E5M2), fp8_bits_to_float(0x7b, __NV_E5M2));
  float fmax;
  const uint32_t fmax_bits = fpscope::kFp32MaxFiniteBits;
  std::memcpy(&fmax, &fmax_bits, 4);
  EXPECT_EQ(fpscope::max_finite(Format::FP32), fmax);
}

TEST(FormatTable, SmallestNormalAndSubnormalMatchCuda) {
  EXPECT_EQ(fpscope::min_subnormal(Format::FP16), fp16_bits_to_float(0x0001));
  EXPECT_EQ(fpscope::min_normal(Format::FP16), fp16_bits_to_float(0x0400));
  EXPECT_EQ(fpscope::min_subnormal(Format::BF16), bf16_bits_to_float(0x0001));
  EXPECT_EQ(fpscope::min_normal(Format::BF16), bf16_bits_to_float(0x0080));
  EXPECT_EQ(fpscope::min_subnormal(Format::E4M3), fp8_bits_to_float(0x01, __NV_E4M3));
  EXPECT_EQ(fpscope::min_normal(Format::E4M3), fp8_bits_to_float(0x08, __NV_E4M3));
  EXPECT_EQ(fpscope::min_subnormal(Format::E5M2), fp8_bits_to_float(0x01, __NV_E5M2));
  EXPECT_EQ(fpscope::min_normal(Format::E5M2), fp8_bits_to_float(0x04, __NV_E5M2));
}

TEST(FormatTable, E2M1CodesAreTheOcpValues) {
  const float ocp[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (uint32_t c = 0; c < 16; ++c) {
    const fpscope::CodeValue v = fpscope::code_value(kE2M1, c);
    ASSERT_EQ(v.kind, CodeKind::Finite) << c;
    EXPECT_EQ(v.value, (c & 8u) ? -ocp[c & 7u] : ocp[c & 7u]) << c;
    EXPECT_EQ(std::signbit(v.value), (c & 8u) != 0) << c;
  }
}

TEST(FormatTable, E8M0CodesArePowersOfTwo) {
  for (uint32_t c = 0; c < 255; ++c) {
    const fpscope::CodeValue v = fpscope::code_value(kE8M0, c);
    ASSERT_EQ(v.kind, CodeKind::Finite) << c;
    EXPECT_EQ(v.value, std::ldexp(1.0f, static_cast<int>(c) - 127)) << c;
  }
  EXPECT_EQ(fpscope::code_value(kE8M0, 255).kind, CodeKind::NaN);
}

// The generic code decoder against CUDA for every 8- and 16-bit code of the listed formats.
TEST(FormatTable, CodeValueMatchesCudaForEveryCode) {
  auto check = [](Format f, uint32_t c, float want) {
    const fpscope::CodeValue v = fpscope::code_value(fpscope::spec(f), c);
    const char* n = fpscope::spec(f).name;
    if (std::isnan(want)) {
      EXPECT_EQ(v.kind, CodeKind::NaN) << n << " " << c;
    } else if (std::isinf(want)) {
      EXPECT_EQ(v.kind, CodeKind::Inf) << n << " " << c;
      EXPECT_EQ(v.value, want > 0 ? 1.0f : -1.0f) << n << " " << c;
    } else {
      EXPECT_EQ(v.kind, CodeKind::Finite) << n << " " << c;
      EXPECT_EQ(v.value, want) << n << " " << c;
      EXPECT_EQ(std::signbit(v.value), std::signbit(want)) << n << " " << c;
    }
  };
  for (uint32_t c = 0; c < 65536; ++c) {
    check(Format::FP16, c, fp16_bits_to_float(static_cast<unsigned short>(c)));
    check(Format::BF16, c, bf16_bits_to_float(static_cast<unsigned short>(c)));
  }
  for (uint32_t c = 0; c < 256; ++c) {
    check(Format::E4M3, c, fp8_bits_to_float(static_cast<unsigned char>(c), __NV_E4M3));
    check(Format::E5M2, c, fp8_bits_to_float(static_cast<unsigned char>(c), __NV_E5M2));
  }
}

// For every row of at most 16 bits, listed or not: the range functions are the extremes of its
// codes' values.
TEST(FormatTable, RangeFunctionsAreTheExtremesOfTheCodes) {
  std::vector<FormatSpec> rows = {kE2M1, kE8M0, kMxfp8, kMxfp4, kNvfp4};
  for (const FormatSpec& s : fpscope::kFormats)
    if (fpscope::storage_bits(s) <= 16) rows.push_back(s);
  for (const FormatSpec& s : rows) {
    SCOPED_TRACE(s.name);
    float maxv = 0, min_pos = INFINITY, min_norm = INFINITY;
    int nan = 0, inf = 0;
    const uint32_t n = 1u << fpscope::storage_bits(s);
    for (uint32_t c = 0; c < n; ++c) {
      const fpscope::CodeValue v = fpscope::code_value(s, c);
      nan += v.kind == CodeKind::NaN;
      inf += v.kind == CodeKind::Inf;
      if (v.kind != CodeKind::Finite || !(v.value > 0)) continue;
      maxv = std::max(maxv, v.value);
      min_pos = std::min(min_pos, v.value);
      const uint32_t e = (c >> s.man_bits) & fpscope::exponent_field_mask(s);
      if (e > 0 || !s.has_zero) min_norm = std::min(min_norm, v.value);
    }
    EXPECT_EQ(fpscope::max_finite(s), maxv);
    EXPECT_EQ(fpscope::min_subnormal(s), min_pos);
    EXPECT_EQ(fpscope::min_normal(s), min_norm);
    EXPECT_EQ(fpscope::has_nan(s), nan > 0);
    EXPECT_EQ(fpscope::has_inf(s), inf > 0);
    EXPECT_EQ(inf, fpscope::has_inf(s) ? (s.has_sign ? 2 : 1) : 0);
  }
}

TEST(FormatTable, NamesRoundTripAndUnknownIsRejected) {
  for (const auto& s : fpscope::kFormats) {
    Format f{};
    ASSERT_TRUE(fpscope::format_from_name(s.name, &f)) << s.name;
    EXPECT_EQ(f, s.format);
  }
  Format f{};
  EXPECT_FALSE(fpscope::format_from_name("fp8", &f));
  EXPECT_FALSE(fpscope::format_from_name("fp1", &f));
  EXPECT_FALSE(fpscope::format_from_name("", &f));
}

TEST(FormatTable, CastTargetsAreTheTableRowsMarkedAsTargets) {
  int n = 0;
  for (const auto& s : fpscope::kFormats) {
    if (!s.cast_target) continue;
    ASSERT_LT(n, fpscope::kNumTargets);
    EXPECT_EQ(fpscope::kTargets[n], s.format);
    EXPECT_EQ(fpscope::target_index(s.format), n);
    ++n;
  }
  EXPECT_EQ(n, fpscope::kNumTargets);
  EXPECT_EQ(fpscope::target_index(Format::FP32), -1);
}
}  // namespace
