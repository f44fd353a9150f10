// numerics.h (casts, decode, histogram bin) against CUDA's own host conversion functions.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cuda_ref.h"
#include "fpscope/numerics.h"

namespace {
using fpscope::Format;
using fpscope::kTargets;

const char* name(Format f) {
  return fpscope::spec(f).name;
}

// Compares fpscope's cast of y with CUDA's for every target; returns the number of mismatches
// (reported with the first few values).
int check_all_targets(float y, int* reported) {
  int bad = 0;
  for (Format f : kTargets) {
    const fpscope::CastResult got = fpscope::cast_scaled(f, y);
    const ref::Cast want = ref::cast(f, y);
    const bool ok = ref::same_value(got.value, want.value) && got.overflow == want.overflow &&
                    got.underflow == want.underflow && got.subnormal == want.subnormal;
    if (!ok) {
      ++bad;
      if ((*reported)++ < 20)
        ADD_FAILURE() << name(f) << " y=" << y << " (0x" << std::hex << ref::bits(y) << std::dec
                      << "): got " << got.value << " ov/uf/sub " << got.overflow << got.underflow
                      << got.subnormal << ", CUDA " << want.value << " " << want.overflow
                      << want.underflow << want.subnormal;
    }
  }
  return bad;
}

TEST(Decode, AllSixteenBitPatternsMatchCuda) {
  for (Format f : {Format::FP16, Format::BF16}) {
    for (uint32_t b = 0; b < 65536; ++b) {
      const float got = fpscope::decode_storage(f, b);
      const float want = ref::decode(f, b);
      ASSERT_TRUE(ref::same_value(got, want)) << name(f) << " pattern 0x" << std::hex << b;
    }
  }
}

TEST(Decode, AllFp8CodesMatchCuda) {
  for (Format f : {Format::E4M3, Format::E5M2}) {
    for (uint32_t b = 0; b < 256; ++b) {
      const float got = fpscope::decode_storage(f, b);
      const float want = ref::decode(f, b);
      ASSERT_TRUE(ref::same_value(got, want)) << name(f) << " code 0x" << std::hex << b;
    }
  }
  // Spot checks by hand: E4M3 0x7e = 448 (max), 0x7f = NaN; E5M2 0x7c = Inf, 0x01 = 2^-16.
  EXPECT_EQ(fpscope::decode_storage(Format::E4M3, 0x7e), 448.0f);
  EXPECT_TRUE(std::isnan(fpscope::decode_storage(Format::E4M3, 0x7f)));
  EXPECT_TRUE(std::isinf(fpscope::decode_storage(Format::E5M2, 0x7c)));
  EXPECT_EQ(fpscope::decode_storage(Format::E5M2, 0x01), std::ldexp(1.0f, -16));
  EXPECT_EQ(fpscope::decode_storage(Format::FP32, 0x3f800000u), 1.0f);
}

// Every value of every storage format (all 2^16 FP16/BF16 patterns, all FP8 codes) as the input
// of every cast.
TEST(CastScaled, EveryStorageValueAsInputMatchesCuda) {
  int reported = 0, bad = 0;
  for (Format src : {Format::FP16, Format::BF16, Format::E4M3, Format::E5M2}) {
    const uint32_t n = fpscope::storage_bits(fpscope::spec(src)) == 16 ? 65536 : 256;
    for (uint32_t b = 0; b < n; ++b) {
      const float y = ref::decode(src, b);
      if (std::isnan(y)) continue;  // inputs are finite or Inf by contract
      bad += check_all_targets(y, &reported);
    }
  }
  EXPECT_EQ(bad, 0);
}

// Boundary values of each format, derived from CUDA's own encodings (not the format table).
std::vector<float> boundaries(Format f) {
  const auto& s = fpscope::spec(f);
  const uint32_t n = 1u << fpscope::storage_bits(s);
  // Largest finite and smallest normal/subnormal by scanning CUDA's decode of positive codes.
  float maxv = 0, min_sub = INFINITY, min_norm = ref::decode(f, 1u << s.man_bits);
  std::vector<float> reps;  // all positive finite representable values, ascending
  for (uint32_t b = 0; b < n / 2; ++b) {
    const float v = ref::decode(f, b);
    if (!std::isfinite(v)) continue;
    reps.push_back(v);
    if (v > maxv) maxv = v;
    if (v > 0 && v < min_sub) min_sub = v;
  }
  auto up = [](float v) { return std::nextafter(v, INFINITY); };
  auto down = [](float v) { return std::nextafter(v, 0.0f); };
  std::vector<float> out;
  auto add = [&](float v) {
    out.push_back(v);
    out.push_back(up(v));
    out.push_back(down(v));
  };
  // Max and max + half ulp (the ulp at the top binade from the next-lower representable value).
  const float below_max = reps[reps.size() - 2];
  const float half_ulp = (maxv - below_max) / 2;
  add(maxv);
  add(maxv + half_ulp);
  add(maxv + 2 * half_ulp);
  add(min_sub);
  add(min_sub / 2);     // tie: flushes to 0 (even)
  add(min_sub * 1.5f);  // tie between 1 and 2 subnormal quanta: 2 (even)
  add(min_norm);
  add(min_norm - min_sub / 2);  // tie between the largest subnormal and the smallest normal
  // Halfway points between consecutive representable values (all of them for 8-bit formats,
  // a sample for 16-bit ones).
  const size_t step = reps.size() > 1000 ? 97 : 1;
  for (size_t i = 0; i + 1 < reps.size(); i += step) add((reps[i] + reps[i + 1]) / 2);
  add(1.0f);
  add(0.0f);
  add(INFINITY);
  const size_t m = out.size();
  for (size_t i = 0; i < m; ++i) out.push_back(-out[i]);
  return out;
}

TEST(CastScaled, BoundariesOfEveryFormatMatchCuda) {
  int reported = 0, bad = 0;
  size_t checked = 0;
  for (Format f : kTargets) {
    for (float y : boundaries(f)) {
      bad += check_all_targets(y, &reported);
      ++checked;
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(checked, 1000u);
}

// The classification at the edges, by hand (values from the OCP/IEEE definitions; the table
// itself is checked against CUDA in test_formats).
TEST(CastScaled, HandPickedEdges) {
  using fpscope::cast_scaled;
  // FP16: 65504 max; 65520 = max + half ulp (ulp 32) ties to even = overflow; 65519.996 stays.
  EXPECT_FALSE(cast_scaled(Format::FP16, 65519.996f).overflow);
  EXPECT_EQ(cast_scaled(Format::FP16, 65519.996f).value, 65504.0f);
  EXPECT_TRUE(cast_scaled(Format::FP16, 65520.0f).overflow);
  EXPECT_TRUE(std::isinf(cast_scaled(Format::FP16, -65520.0f).value));
  // E4M3: 464 = 448 + half ulp ties to even = 448 (no overflow); just above 464 is NaN.
  EXPECT_EQ(cast_scaled(Format::E4M3, 464.0f).value, 448.0f);
  EXPECT_FALSE(cast_scaled(Format::E4M3, 464.0f).overflow);
  EXPECT_TRUE(cast_scaled(Format::E4M3, 464.00003f).overflow);
  EXPECT_TRUE(std::isnan(cast_scaled(Format::E4M3, 500.0f).value));
  // E5M2: max 57344, ulp 8192: 61440 ties up = Inf.
  EXPECT_TRUE(cast_scaled(Format::E5M2, 61440.0f).overflow);
  EXPECT_EQ(cast_scaled(Format::E5M2, 61439.996f).value, 57344.0f);
  // FP16 smallest subnormal 2^-24: 2^-25 ties to even = 0 (underflow), just above rounds up.
  const float h = std::ldexp(1.0f, -25);
  EXPECT_TRUE(cast_scaled(Format::FP16, h).underflow);
  EXPECT_EQ(ref::bits(cast_scaled(Format::FP16, -h).value), 0x80000000u);  // -0
  EXPECT_EQ(cast_scaled(Format::FP16, std::nextafter(h, 1.0f)).value, std::ldexp(1.0f, -24));
  EXPECT_TRUE(cast_scaled(Format::FP16, std::ldexp(1.0f, -24)).subnormal);
  EXPECT_FALSE(cast_scaled(Format::FP16, std::ldexp(1.0f, -14)).subnormal);
  // E4M3 smallest subnormal 2^-9; 3 * 2^-10 ties between 1 and 2 quanta: 2 (even).
  EXPECT_EQ(cast_scaled(Format::E4M3, 3 * std::ldexp(1.0f, -10)).value, std::ldexp(1.0f, -8));
  // BF16: 1 + 2^-8 (half ulp of 1) ties to 1; FP32 subnormals stay BF16 subnormals.
  EXPECT_EQ(cast_scaled(Format::BF16, 1.0f + std::ldexp(1.0f, -8)).value, 1.0f);
  EXPECT_TRUE(cast_scaled(Format::BF16, std::ldexp(1.0f, -130)).subnormal);
  EXPECT_TRUE(cast_scaled(Format::BF16, 3.4e38f).overflow);
  // FP32 is the identity.
  EXPECT_EQ(cast_scaled(Format::FP32, 1e-40f).value, 1e-40f);
}

// Millions of random FP32 patterns over the whole exponent range (both signs), and more
// concentrated in each format's own range.
TEST(CastScaled, RandomFp32MatchCuda) {
  std::mt19937 rng(12345);
  int reported = 0, bad = 0;
  for (int i = 0; i < 8000000; ++i) {
    const uint32_t u = static_cast<uint32_t>(rng());
    const float y = ref::from_bits(u);
    if (std::isnan(y)) continue;
    bad += check_all_targets(y, &reported);
  }
  // Exponents from 4 below the smallest subnormal to 2 above the max, random mantissas.
  for (Format f : kTargets) {
    const auto& s = fpscope::spec(f);
    // Biased FP32 exponent fields 0 (FP32 subnormals) .. 254, random sign and mantissa.
    std::uniform_int_distribution<int> ex(
        std::max(fpscope::min_subnormal_exp(s) - 4, fpscope::kFp32MinNormalExp - 1),
        std::min(fpscope::max_exp(s) + 2, fpscope::kFp32MaxExp));
    for (int i = 0; i < 500000; ++i) {
      const uint32_t sign = (static_cast<uint32_t>(rng()) & 1u) ? fpscope::kFp32SignMask : 0u;
      const uint32_t e = static_cast<uint32_t>(ex(rng) + fpscope::kFp32Bias);
      const uint32_t u = sign | (e << fpscope::kFp32ManBits) |
                         (static_cast<uint32_t>(rng()) & fpscope::kFp32ManMask);
      bad += check_all_targets(ref::from_bits(u), &reported);
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST(HistBin, HandPickedValues) {
  // bin = biased exponent * 4 + top two mantissa bits of |x|. Literal values on purpose: this
  // pins the layout that formats.h's kHist* constants and traces depend on.
  EXPECT_EQ(fpscope::hist_bin(1.0f), 127 * 4);        // 1.00 * 2^0
  EXPECT_EQ(fpscope::hist_bin(1.25f), 127 * 4 + 1);   // 1.01b
  EXPECT_EQ(fpscope::hist_bin(1.5f), 127 * 4 + 2);    // 1.10b
  EXPECT_EQ(fpscope::hist_bin(-1.75f), 127 * 4 + 3);  // sign ignored
  EXPECT_EQ(fpscope::hist_bin(1.2499999f), 127 * 4);  // still the first quarter
  EXPECT_EQ(fpscope::hist_bin(3.0f), 128 * 4 + 2);    // 1.5 * 2^1
  EXPECT_EQ(fpscope::hist_bin(65504.0f), 142 * 4 + 3);
  EXPECT_EQ(fpscope::hist_bin(std::ldexp(1.0f, -24)), 103 * 4);
  EXPECT_EQ(fpscope::hist_bin(std::ldexp(1.0f, -149)), 0);  // FP32 subnormal: exponent 0
  EXPECT_EQ(fpscope::hist_bin(std::ldexp(1.0f, -127)), 2);  // subnormal 0.10b * 2^-126
  EXPECT_EQ(fpscope::hist_bin_low(127 * 4 + 1), 1.25f);
  EXPECT_EQ(fpscope::hist_bin_high(127 * 4 + 1), std::nextafter(1.5f, 0.0f));
}

}  // namespace
