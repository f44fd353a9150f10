// Per-element references for the block-scaled casts (shared by test_block_stats.cpp and
// test_block_pass.cpp): the scale from frexp (OCP MX v1.0 section 6.3), x / X in double and
// CUDA's own double-input conversions (__nv_cvt_double_to_fp6 / _fp4 / _fp8 with
// __NV_SATFINITE), errors in long double; NVFP4 with CUDA's E4M3 and E2M1 casts. Plus the
// crafted blocks that sit at each boundary. Include from one test file per binary.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp4.h>
#include <cuda_fp6.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "fpscope/block_numerics.h"

namespace {
using fpscope::BlockStats;
using fpscope::FormatSpec;

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

enum class Kind { E4M3, E5M2, E3M2, E2M3, E2M1 };
uint32_t cuda_encode_double(Kind k, double y) {
  switch (k) {
    case Kind::E4M3:
      return __nv_cvt_double_to_fp8(y, __NV_SATFINITE, __NV_E4M3);
    case Kind::E5M2:
      return __nv_cvt_double_to_fp8(y, __NV_SATFINITE, __NV_E5M2);
    case Kind::E3M2:
      return __nv_cvt_double_to_fp6(y, __NV_E3M2, cudaRoundNearest);
    case Kind::E2M3:
      return __nv_cvt_double_to_fp6(y, __NV_E2M3, cudaRoundNearest);
    case Kind::E2M1:
      return __nv_cvt_double_to_fp4(y, __NV_E2M1, cudaRoundNearest);
  }
  return 0;
}
double cuda_decode(Kind k, uint32_t c) {
  __half_raw h{};
  switch (k) {
    case Kind::E4M3:
      h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(c), __NV_E4M3);
      break;
    case Kind::E5M2:
      h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(c), __NV_E5M2);
      break;
    case Kind::E3M2:
      h = __nv_cvt_fp6_to_halfraw(static_cast<__nv_fp6_storage_t>(c), __NV_E3M2);
      break;
    case Kind::E2M3:
      h = __nv_cvt_fp6_to_halfraw(static_cast<__nv_fp6_storage_t>(c), __NV_E2M3);
      break;
    case Kind::E2M1:
      h = __nv_cvt_fp4_to_halfraw(static_cast<__nv_fp4_storage_t>(c), __NV_E2M1);
      break;
  }
  return static_cast<double>(__half2float(__half(h)));
}
// Largest finite value and its top-binade quantum, from CUDA's codes (largest positive finite).
struct Range {
  double max, quantum;
  int emax;
  bool max_odd;
};
Range range_of(Kind k) {
  const uint32_t top = k == Kind::E4M3   ? 0x7e
                       : k == Kind::E5M2 ? 0x7b
                       : k == Kind::E2M1 ? 0x7
                                         : 0x1f;
  Range r;
  r.max = cuda_decode(k, top);
  r.quantum = r.max - cuda_decode(k, top - 1);
  int e = 0;
  std::frexp(r.max, &e);
  r.emax = e - 1;
  r.max_odd = (top & 1u) != 0;
  return r;
}

struct Ref {
  uint32_t scale_code = 0;
  double scale = 0;
  uint32_t nonfinite = 0, flushed = 0, saturated = 0, zero_block = 0, scale_underflow = 0,
           scale_overflow = 0, nan_scale = 0;
  long double err2 = 0, x2 = 0;
};

Ref ref_mx(Kind k, const std::vector<float>& x) {
  const Range rg = range_of(k);
  Ref r;
  double amax = 0;
  for (float v : x) {
    if (!std::isfinite(v)) ++r.nonfinite;
    amax = std::max(amax, std::fabs(static_cast<double>(v)));
  }
  r.zero_block = amax == 0 && r.nonfinite == 0;
  if (r.nonfinite > 0) {
    r.nan_scale = 1;
    r.scale_code = 0xff;
    r.scale = NAN;
    return r;
  }
  int fl = 0;
  std::frexp(amax, &fl);
  int shared = amax == 0 ? -127 : fl - 1 - rg.emax;
  if (shared < -127) {
    r.scale_underflow = amax != 0;
    shared = -127;
  }
  r.scale_code = static_cast<uint32_t>(shared + 127);
  const double X = std::ldexp(1.0, shared);
  r.scale = X;
  for (float v : x) {
    const double y = static_cast<double>(v) / X;  // exact in double
    const double q = cuda_decode(k, cuda_encode_double(k, y));
    r.flushed += v != 0.0f && q == 0.0;
    const double tie = rg.max + rg.quantum / 2;
    r.saturated += std::fabs(y) > tie || (std::fabs(y) == tie && rg.max_odd);
    const long double e = static_cast<long double>(v) - static_cast<long double>(q) * X;
    r.err2 += e * e;
    r.x2 += static_cast<long double>(v) * v;
  }
  return r;
}

Ref ref_nvfp4(const std::vector<float>& x, float s_enc) {
  Ref r;
  float amax = 0;
  for (float v : x) {
    if (!std::isfinite(v)) ++r.nonfinite;
    amax = std::max(amax, std::fabs(v));
  }
  r.zero_block = amax == 0 && r.nonfinite == 0;
  if (r.nonfinite > 0) {
    r.nan_scale = 1;
    r.scale_code = 0x7f;  // E4M3's NaN
    r.scale = NAN;
    return r;
  }
  const float want = (amax / 6.0f) * s_enc;
  r.scale_code = __nv_cvt_float_to_fp8(want, __NV_SATFINITE, __NV_E4M3);
  const double sf = cuda_decode(Kind::E4M3, r.scale_code);
  r.scale = sf;
  r.scale_overflow = want > 464.0f;  // 448 + half its quantum 32: the tie rounds to 448 (even)
  r.scale_underflow = amax != 0 && sf == 0;
  const float inv = sf == 0 ? 0.0f : s_enc / static_cast<float>(sf);
  for (float v : x) {
    const float y = v * inv;
    const double q = sf == 0 ? 0.0 : cuda_decode(Kind::E2M1, cuda_encode_double(Kind::E2M1, y));
    r.flushed += v != 0.0f && q == 0.0;
    r.saturated += sf != 0 && std::fabs(y) >= 7.0f;  // 6 + half its quantum 2; 6 is odd
    // x - q * sf / s_enc, the products first (exact in long double): no cancellation loss.
    const long double e = (static_cast<long double>(v) * s_enc - static_cast<long double>(q) * sf) /
                          static_cast<long double>(s_enc);
    r.err2 += e * e;
    r.x2 += static_cast<long double>(v) * v;
  }
  return r;
}

[[maybe_unused]] void expect_same(const BlockStats& got, const Ref& want, const char* what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(got.scale_code, want.scale_code);
  if (std::isnan(want.scale)) {
    EXPECT_TRUE(std::isnan(got.scale));
  } else {
    EXPECT_EQ(static_cast<double>(got.scale), want.scale);
  }
  EXPECT_EQ(got.nonfinite, want.nonfinite);
  EXPECT_EQ(got.flushed, want.flushed);
  EXPECT_EQ(got.saturated, want.saturated);
  EXPECT_EQ(got.zero_block, want.zero_block);
  EXPECT_EQ(got.scale_underflow, want.scale_underflow);
  EXPECT_EQ(got.scale_overflow, want.scale_overflow);
  EXPECT_EQ(got.nan_scale, want.nan_scale);
  const auto near = [](double a, long double b) {
    return std::fabs(static_cast<long double>(a) - b) <= 1e-12L * std::fabs(b);
  };
  EXPECT_TRUE(near(got.sum_err2, want.err2)) << got.sum_err2 << " vs " << (double)want.err2;
  EXPECT_TRUE(near(got.sum_x2, want.x2)) << got.sum_x2 << " vs " << (double)want.x2;
}

// The crafted blocks, n elements each (32 for MX, 16 for NVFP4; the last one is a short tail).
std::vector<std::vector<float>> crafted_blocks(int n) {
  std::mt19937 rng(19);
  std::normal_distribution<float> g(0.0f, 1.0f);
  auto gauss = [&](float sigma) {
    std::vector<float> b(n);
    for (float& v : b) v = sigma * g(rng);
    return b;
  };
  std::vector<std::vector<float>> blocks;
  // amax exactly a power of two, and just below one (one binade lower scale).
  for (float amax :
       {4.0f, 448.0f, 0.5f, std::nextafter(4.0f, 0.0f), std::nextafter(512.0f, 0.0f)}) {
    std::vector<float> b = gauss(0.1f * amax);
    for (float& v : b) v = std::max(-amax, std::min(amax, v));
    b[n / 2] = -amax;
    blocks.push_back(b);
  }
  // One outlier per block.
  for (float outlier : {100.0f, 1e4f, -3e5f}) {
    std::vector<float> b = gauss(1e-3f);
    b[3] = outlier;
    blocks.push_back(b);
  }
  blocks.push_back(std::vector<float>(n, 0.0f));  // all zero
  std::vector<float> negzero(n, -0.0f);
  blocks.push_back(negzero);
  // FP32 subnormals only (the scale clamps at 2^-127), and a block straddling 2^-127.
  std::vector<float> sub(n);
  for (float& v : sub) v = from_bits(static_cast<uint32_t>(rng()) & 0x807fffffu);
  blocks.push_back(sub);
  std::vector<float> around(n);
  for (int i = 0; i < n; ++i) around[i] = std::ldexp(i % 2 ? -1.0f : 1.0f, -120 - i % 16);
  blocks.push_back(around);
  // Tiny normal amax (E4M3's shared exponent underflows, E2M1's does not) and a huge one.
  blocks.push_back(gauss(1e-37f));
  std::vector<float> huge = gauss(1e37f);
  huge[0] = std::numeric_limits<float>::max();
  blocks.push_back(huge);
  // NaN and Inf inside an otherwise ordinary block.
  std::vector<float> with_nan = gauss(1.0f);
  with_nan[5] = NAN;
  blocks.push_back(with_nan);
  std::vector<float> with_inf = gauss(1.0f);
  with_inf[n - 1] = -INFINITY;
  blocks.push_back(with_inf);
  // Ordinary data at several magnitudes.
  for (float sigma : {1.0f, 3e-5f, 7e3f}) blocks.push_back(gauss(sigma));
  blocks.push_back(gauss(2.0f));
  blocks.back().resize(static_cast<size_t>(n / 4 + 3));  // short tail block
  return blocks;
}

}  // namespace
