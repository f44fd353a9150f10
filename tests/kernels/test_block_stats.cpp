// Per-block statistics of the block-scaled casts (block_numerics.h mx_block_stats,
// nvfp4_block_stats) against a straightforward per-element computation: the scale from frexp
// (OCP MX v1.0 section 6.3: X = 2^(floor(log2 amax) - emax_elem), clamped to E8M0's 2^-127),
// x / X in double and CUDA's own double-input conversions (__nv_cvt_double_to_fp6 / _fp4 /
// _fp8 with __NV_SATFINITE), errors in long double; NVFP4 (NVIDIA's two-level scaling: an FP32
// tensor scale 6 * 448 / amax, an E4M3 scale per 16 elements) with CUDA's E4M3 and E2M1 casts.
// Crafted blocks sit at each boundary: amax at a power of two and just below, one outlier, all
// zeros, FP32 subnormals only, NaN / Inf inside, a short tail block; plus hand-computed values.
#include <cuda_fp16.h>
#include <cuda_fp4.h>
#include <cuda_fp6.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "fpscope/block_numerics.h"

#include "block_ref.h"

namespace {

template <const FormatSpec& B>
void check_mx(Kind k) {
  int i = 0;
  for (const std::vector<float>& b : crafted_blocks(B.block_size)) {
    const std::string what = std::string(B.name) + " block " + std::to_string(i++);
    expect_same(fpscope::mx_block_stats<B>(b.data(), static_cast<int>(b.size())), ref_mx(k, b),
                what.c_str());
  }
}

TEST(BlockStats, MxBlocksMatchThePerElementReference) {
  check_mx<fpscope::kMxfp8E4M3>(Kind::E4M3);
  check_mx<fpscope::kMxfp8E5M2>(Kind::E5M2);
  check_mx<fpscope::kMxfp6E3M2>(Kind::E3M2);
  check_mx<fpscope::kMxfp6E2M3>(Kind::E2M3);
  check_mx<fpscope::kMxfp4>(Kind::E2M1);
}

TEST(BlockStats, Nvfp4BlocksMatchThePerElementReference) {
  int i = 0;
  for (const std::vector<float>& b : crafted_blocks(16)) {
    // The block's own tensor scale, a 1000x too large one (E4M3 scale saturates), one giving
    // an E4M3-subnormal block scale (1e-5: 448e-5 is about 2.3 * 2^-9) and a tiny
    // one (the E4M3 scale flushes to zero).
    float amax = 0;
    for (float v : b) amax = std::isfinite(v) ? std::max(amax, std::fabs(v)) : amax;
    const float own = fpscope::nvfp4_tensor_scale(amax);
    for (float s_enc : {own, own * 1000.0f, own * 1e-5f, own * 1e-6f, 1.0f}) {
      if (!std::isfinite(s_enc)) continue;  // the contract: a finite tensor scale
      const std::string what =
          "nvfp4 block " + std::to_string(i) + " s_enc " + std::to_string(s_enc);
      expect_same(fpscope::nvfp4_block_stats(b.data(), static_cast<int>(b.size()), s_enc),
                  ref_nvfp4(b, s_enc), what.c_str());
    }
    ++i;
  }
}

// ---- hand-computed blocks --------------------------------------------------------------------
TEST(BlockStats, HandComputedMxfp4Block) {
  // amax 4 = 2^2 = 2^emax(E2M1): X = 1 (E8M0 127). 0.25 ties to 0 (flushed), 0.3 -> 0.5,
  // -2.5 ties to -2 (even), 7 would be the amax of another block; 3 exact.
  std::vector<float> b(32, 0.0f);
  b[0] = 4.0f;
  b[1] = 0.25f;
  b[2] = 0.3f;
  b[3] = -2.5f;
  b[4] = 3.0f;
  const BlockStats s = fpscope::mx_block_stats<fpscope::kMxfp4>(b.data(), 32);
  EXPECT_EQ(s.scale_code, 127u);
  EXPECT_EQ(s.scale, 1.0f);
  EXPECT_EQ(s.flushed, 1u);
  EXPECT_EQ(s.saturated, 0u);
  const double e2 = 0.0625 + (0.3 - 0.5) * (0.3 - 0.5) + 0.25;
  EXPECT_NEAR(s.sum_err2, e2, 1e-7);  // 0.3f is not 0.3: within its float error
  EXPECT_EQ(s.sum_x2, 16.0 + 0.0625 + double{0.3f} * double{0.3f} + 6.25 + 9.0);

  // amax 7: floor(log2 7) = 2, X = 1, and 7 saturates to 6 (the tie 6 | 8 would round up).
  b[0] = 7.0f;
  const BlockStats t = fpscope::mx_block_stats<fpscope::kMxfp4>(b.data(), 32);
  EXPECT_EQ(t.scale_code, 127u);
  EXPECT_EQ(t.saturated, 1u);
  EXPECT_NEAR(t.sum_err2, e2 + 1.0, 1e-7);
}

TEST(BlockStats, HandComputedMxfp8OutlierBlock) {
  // One outlier 1000: floor(log2 1000) = 9, X = 2^(9 - 8) = 2; 1000 / 2 = 500 saturates to 448
  // (above 448 + 16), decoded 896; the 31 values 1e-3 / 2 = 5e-4 are below half of E4M3's
  // smallest subnormal 2^-9: all flush.
  std::vector<float> b(32, 1e-3f);
  b[7] = 1000.0f;
  const BlockStats s = fpscope::mx_block_stats<fpscope::kMxfp8E4M3>(b.data(), 32);
  EXPECT_EQ(s.scale_code, 128u);
  EXPECT_EQ(s.scale, 2.0f);
  EXPECT_EQ(s.saturated, 1u);
  EXPECT_EQ(s.flushed, 31u);
  EXPECT_NEAR(s.sum_err2, 104.0 * 104.0 + 31 * double{1e-3f} * double{1e-3f}, 1e-9);
}

TEST(BlockStats, HandComputedSubnormalBlock) {
  // 2^-127 .. 2^-130 (FP32 subnormals): floor(log2 amax) - 2 = -129 clamps to -127 (scale
  // underflow); x / X = 1, 0.5, 0.25 (tie: 0), 0.125: two flush.
  std::vector<float> b = {std::ldexp(1.0f, -127), std::ldexp(1.0f, -128), std::ldexp(1.0f, -129),
                          -std::ldexp(1.0f, -130)};
  const BlockStats s = fpscope::mx_block_stats<fpscope::kMxfp4>(b.data(), 4);
  EXPECT_EQ(s.scale_code, 0u);
  EXPECT_EQ(s.scale_underflow, 1u);
  EXPECT_EQ(s.flushed, 2u);
  EXPECT_EQ(s.sum_err2, std::ldexp(1.0, -258) + std::ldexp(1.0, -260));
}

TEST(BlockStats, HandComputedNvfp4Block) {
  // Tensor scale 1: sf = E4M3(6 / 6) = 1; 6 and 3 exact, 0.1 flushes (below 0.25), -5 ties to -4.
  std::vector<float> b(16, 0.0f);
  b[0] = 6.0f;
  b[1] = 3.0f;
  b[2] = 0.1f;
  b[3] = -5.0f;
  const BlockStats s = fpscope::nvfp4_block_stats(b.data(), 16, 1.0f);
  EXPECT_EQ(s.scale_code, 0x38u);  // E4M3 1.0
  EXPECT_EQ(s.scale, 1.0f);
  EXPECT_EQ(s.flushed, 1u);
  EXPECT_NEAR(s.sum_err2, 0.01 + 1.0, 1e-8);
  // The tensor scale of a tensor whose amax is this block's: 448 * 6 / 6 = 448, sf = 448.
  EXPECT_EQ(fpscope::nvfp4_tensor_scale(6.0f), 448.0f);
  const BlockStats t = fpscope::nvfp4_block_stats(b.data(), 16, 448.0f);
  EXPECT_EQ(t.scale, 448.0f);
  EXPECT_EQ(t.scale_overflow, 0u);
  // Twice that: 6 / 6 * 896 saturates E4M3 at 448; x * 896 / 448 = 2x: 6 -> 12 saturates to 6.
  const BlockStats u = fpscope::nvfp4_block_stats(b.data(), 16, 896.0f);
  EXPECT_EQ(u.scale_overflow, 1u);
  EXPECT_EQ(u.saturated, 2u);  // 12 and -10: at or above 7 = 6 + half its quantum
}

TEST(BlockStats, NanBlockCountsOnlyAsNanScale) {
  std::vector<float> b(32, 1.0f);
  b[9] = NAN;
  const BlockStats s = fpscope::mx_block_stats<fpscope::kMxfp4>(b.data(), 32);
  EXPECT_EQ(s.nan_scale, 1u);
  EXPECT_EQ(s.scale_code, 0xffu);
  EXPECT_EQ(s.nonfinite, 1u);
  EXPECT_EQ(s.flushed + s.saturated, 0u);
  EXPECT_EQ(s.sum_err2, 0.0);
}

}  // namespace
