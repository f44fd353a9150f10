// The block-scaled quantize-dequantize (block_numerics.h mx_block_qdq, nvfp4_block_qdq,
// block_qdq_of: what `fpscope record --emulate mxfp8|...|nvfp4` runs the GEMMs on) against a
// per-element computation with CUDA's own conversions (block_ref.h: the scale from frexp, OCP MX
// v1.0 section 6.3 X = 2^(floor(log2 amax) - emax_elem) clamped to E8M0's 2^-127; x / X in
// double through __nv_cvt_double_to_fp8/_fp6/_fp4 with saturation; decoded q * X. NVFP4: the
// E4M3 block scale of fl(fl(amax / 6) * s_enc) by __nv_cvt_float_to_fp8(__NV_SATFINITE), the
// E2M1 element of fl(x * fl(s_enc / sf)), decoded fl(fl(q * sf) / s_enc)), on block_ref.h's
// crafted blocks; plus the decoded values' consistency with the block statistics (the same
// squared error) and hand-computed blocks.
#include <cuda_fp16.h>
#include <cuda_fp4.h>
#include <cuda_fp6.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fpscope/block_numerics.h"

#include "block_ref.h"

namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Bit-identical, NaN matching any NaN.
void expect_same_values(const std::vector<float>& got, const std::vector<float>& want,
                        const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " element " << i;
    } else {
      EXPECT_EQ(bits_of(got[i]), bits_of(want[i]))
          << what << " element " << i << ": " << got[i] << " vs " << want[i];
    }
  }
}

std::vector<float> ref_mx_values(Kind k, const std::vector<float>& x) {
  const Range rg = range_of(k);
  double amax = 0;
  bool nonfinite = false;
  for (float v : x) {
    nonfinite = nonfinite || !std::isfinite(v);
    amax = std::max(amax, std::fabs(static_cast<double>(v)));
  }
  if (nonfinite) return std::vector<float>(x.size(), NAN);
  int fl = 0;
  std::frexp(amax, &fl);
  const int shared = std::max(amax == 0 ? -127 : fl - 1 - rg.emax, -127);
  const double X = std::ldexp(1.0, shared);
  std::vector<float> out;
  for (float v : x) {
    const double q = cuda_decode(k, cuda_encode_double(k, static_cast<double>(v) / X));
    out.push_back(static_cast<float>(q * X));  // exact: a short multiple of a power of two
  }
  return out;
}

std::vector<float> ref_nvfp4_values(const std::vector<float>& x, float s_enc) {
  float amax = 0;
  bool nonfinite = false;
  for (float v : x) {
    nonfinite = nonfinite || !std::isfinite(v);
    amax = std::max(amax, std::fabs(v));
  }
  if (nonfinite) return std::vector<float>(x.size(), NAN);
  const float want = (amax / 6.0f) * s_enc;
  const auto sf = static_cast<float>(
      cuda_decode(Kind::E4M3, __nv_cvt_float_to_fp8(want, __NV_SATFINITE, __NV_E4M3)));
  std::vector<float> out;
  for (float v : x) {
    if (sf == 0.0f) {
      out.push_back(std::signbit(v) ? -0.0f : 0.0f);
      continue;
    }
    const float y = v * (s_enc / sf);
    const auto q = static_cast<float>(
        cuda_decode(Kind::E2M1, cuda_encode_double(Kind::E2M1, static_cast<double>(y))));
    out.push_back((q * sf) / s_enc);
  }
  return out;
}

// MX: sum (x - decoded)^2 of the values (exact) equals the statistics' sum_err2 and the reference's
// err2.
void expect_error_is(const std::vector<float>& x, const std::vector<float>& decoded, double stats,
                     long double ref, const std::string& what) {
  long double e2 = 0;
  for (size_t j = 0; j < x.size(); ++j) {
    const long double e = static_cast<long double>(x[j]) - static_cast<long double>(decoded[j]);
    e2 += e * e;
  }
  const long double tol = 1e-12L * ref;
  EXPECT_LE(std::fabs(e2 - static_cast<long double>(stats)), tol) << what;
  EXPECT_LE(std::fabs(e2 - ref), tol) << what;
}

template <const FormatSpec& B>
void check_mx(Kind k, int f) {
  int i = 0;
  for (const std::vector<float>& b : crafted_blocks(B.block_size)) {
    const std::string what = std::string(B.name) + " block " + std::to_string(i++);
    const int n = static_cast<int>(b.size());
    std::vector<float> got(b.size()), via(b.size());
    fpscope::mx_block_qdq<B>(b.data(), n, got.data());
    expect_same_values(got, ref_mx_values(k, b), what);
    fpscope::block_qdq_of(f, b.data(), n, 1.0f, via.data());
    expect_same_values(via, got, what + " (block_qdq_of)");
    // The statistics' error is the error of these values (one source of truth), and so is the
    // reference's.
    const fpscope::BlockStats st = fpscope::mx_block_stats<B>(b.data(), n);
    if (st.nan_scale) continue;
    expect_error_is(b, got, st.sum_err2, ref_mx(k, b).err2, what);
  }
}

TEST(BlockQdq, MxBlocksMatchCudasCasts) {
  check_mx<fpscope::kMxfp8E4M3>(Kind::E4M3, 0);
  check_mx<fpscope::kMxfp8E5M2>(Kind::E5M2, 1);
  check_mx<fpscope::kMxfp6E3M2>(Kind::E3M2, 2);
  check_mx<fpscope::kMxfp6E2M3>(Kind::E2M3, 3);
  check_mx<fpscope::kMxfp4>(Kind::E2M1, 4);
}

TEST(BlockQdq, Nvfp4BlocksMatchCudasCasts) {
  int i = 0;
  for (const std::vector<float>& b : crafted_blocks(16)) {
    float amax = 0;
    for (float v : b) amax = std::isfinite(v) ? std::max(amax, std::fabs(v)) : amax;
    const float own = fpscope::nvfp4_tensor_scale(amax);
    for (float s_enc : {own, own * 1000.0f, own * 1e-5f, own * 1e-6f, 1.0f}) {
      if (!std::isfinite(s_enc)) continue;
      const std::string what =
          "nvfp4 block " + std::to_string(i) + " s_enc " + std::to_string(s_enc);
      const int n = static_cast<int>(b.size());
      std::vector<float> got(b.size()), via(b.size());
      fpscope::nvfp4_block_qdq(b.data(), n, s_enc, got.data());
      expect_same_values(got, ref_nvfp4_values(b, s_enc), what);
      fpscope::block_qdq_of(5, b.data(), n, s_enc, via.data());
      expect_same_values(via, got, what + " (block_qdq_of)");
      // The scale is the statistics' (their error is of the unrounded q * sf / s_enc: not
      // comparable with the FP32 values' where x is almost exactly representable).
      const fpscope::BlockStats st = fpscope::nvfp4_block_stats(b.data(), n, s_enc);
      EXPECT_EQ(st.scale_code, ref_nvfp4(b, s_enc).scale_code) << what;
    }
    ++i;
  }
}

// By hand. MXFP4 (E2M1: 0, 0.5, 1, 1.5, 2, 3, 4, 6; emax_elem 2): amax 10 gives
// X = 2^(3 - 2) = 2: 10 / 2 = 5 ties between 4 and 6 -> 4 (even code), so 8; 0.7 / 2 = 0.35 ->
// 0.5 (nearer than 0), so 1; -3.1 / 2 = -1.55 -> -1.5, so -3. MXFP8 E4M3 (emax 8): amax 1000
// gives X = 2^(9 - 8) = 2: 1000 / 2 = 500 -> 448 (saturated, not NaN), so 896. NVFP4 with
// s_enc = 1: amax 6 gives sf = E4M3(1) = 1; 2.4 -> 2; -2.6 -> -3; 5 ties between 4 and 6 -> 4
// (even code).
TEST(BlockQdq, HandCheckedValues) {
  const float mx[4] = {10.0f, 0.7f, -3.1f, 0.0f};
  float out[4];
  fpscope::mx_block_qdq<fpscope::kMxfp4>(mx, 4, out);
  EXPECT_EQ(out[0], 8.0f);
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_EQ(out[2], -3.0f);
  EXPECT_EQ(out[3], 0.0f);
  const float e4[2] = {1000.0f, -1.0f};
  fpscope::mx_block_qdq<fpscope::kMxfp8E4M3>(e4, 2, out);
  EXPECT_EQ(out[0], 896.0f);
  EXPECT_EQ(out[1], -1.0f);
  const float nv[4] = {6.0f, 2.4f, -2.6f, 5.0f};
  fpscope::nvfp4_block_qdq(nv, 4, 1.0f, out);
  EXPECT_EQ(out[0], 6.0f);
  EXPECT_EQ(out[1], 2.0f);
  EXPECT_EQ(out[2], -3.0f);
  EXPECT_EQ(out[3], 4.0f);
  // In place (out == x), and the smallest scale 2^-127: an FP32-subnormal result, exact.
  float tiny[2] = {0x1p-127f, -0x1.8p-126f};
  fpscope::mx_block_qdq<fpscope::kMxfp8E4M3>(tiny, 2, tiny);
  EXPECT_EQ(tiny[0], 0x1p-127f);
  EXPECT_EQ(tiny[1], -0x1.8p-126f);
}

}  // namespace
