// The format table's derived constants against CUDA's own host conversion functions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cstring>

#include "fpscope/formats.h"

namespace {
using fpscope::Format;

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
  const uint32_t fmax_bits = 0x7f7fffffu;
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
