// The CUDA statistics kernel's reduction, run on the CPU through its model (stats_sim.h: same
// grid/warp decomposition, per-element code, warp merge order and slot protocol), against the
// host pass.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "fpscope/host_stats.h"
#include "fpscope/stats_sim.h"

namespace {
using fpscope::Format;
using fpscope::TensorStats;

void expect_same(const TensorStats& a, const TensorStats& b) {
  EXPECT_EQ(a.count, b.count);
  EXPECT_EQ(a.nan, b.nan);
  EXPECT_EQ(a.pos_inf, b.pos_inf);
  EXPECT_EQ(a.neg_inf, b.neg_inf);
  EXPECT_EQ(a.zero, b.zero);
  EXPECT_EQ(a.amax, b.amax);
  EXPECT_EQ(a.min, b.min);
  EXPECT_EQ(a.max, b.max);
  EXPECT_NEAR(a.sum, b.sum, 1e-9 * std::sqrt(b.sum_sq) + 1e-300);
  EXPECT_NEAR(a.sum_sq, b.sum_sq, 1e-12 * b.sum_sq);
  for (int i = 0; i < fpscope::kNumTargets; ++i) {
    EXPECT_EQ(a.fmt[i].overflow, b.fmt[i].overflow);
    EXPECT_EQ(a.fmt[i].underflow, b.fmt[i].underflow);
    EXPECT_EQ(a.fmt[i].subnormal, b.fmt[i].subnormal);
    EXPECT_EQ(a.fmt[i].scale, b.fmt[i].scale);
    EXPECT_NEAR(a.fmt[i].sum_err2, b.fmt[i].sum_err2, 1e-12 * b.fmt[i].sum_err2);
  }
  for (int k = 0; k < fpscope::kHistBins; ++k) ASSERT_EQ(a.hist[k], b.hist[k]) << "bin " << k;
}

std::vector<float> data(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_int_distribution<int> ex(-30, 18);
  std::vector<float> v(n);
  for (auto& x : v) x = std::ldexp(g(rng), ex(rng));
  for (size_t i = 0; i < n; i += 113) v[i] = NAN;
  for (size_t i = 1; i < n; i += 457) v[i] = -INFINITY;
  for (size_t i = 2; i < n; i += 59) v[i] = 0.0f;
  return v;
}

const float kScales[fpscope::kNumTargets] = {1.0f, 2.0f, 448.0f / 30.0f, 0.125f};

TEST(CudaModel, GridStrideBlocksWarpsEqualHostPass) {
  const auto v = data(300000, 1);
  fpscope::StatsOptions opt;
  std::copy(kScales, kScales + 4, opt.scale);
  auto host = std::make_unique<TensorStats>();
  auto dev = std::make_unique<TensorStats>();
  fpscope::compute_stats(v.data(), Format::FP32, v.size(), 1, v.size(), opt, host.get());
  for (unsigned grid : {0u, 1u, 3u, 7u}) {  // 0: the kernel's own grid (1024 blocks here)
    SCOPED_TRACE(grid);
    fpscope::simulate_tensor_stats_kernel(v.data(), Format::FP32, v.size(), 1, v.size(), 1, 0,
                                          kScales, dev.get(), grid);
    expect_same(*dev, *host);
  }
}

TEST(CudaModel, StridedAndBatchedViews) {
  // 3 matrices of 100 x 7 with ld 128, 1000 elements apart (padding NaN).
  const uint64_t rows = 100, cols = 7, ld = 128, stride = 1000, batch = 3;
  auto all = data(stride * batch, 2);
  std::vector<float> packed;
  for (uint64_t b = 0; b < batch; ++b)
    for (uint64_t j = 0; j < cols; ++j)
      for (uint64_t i = 0; i < ld; ++i) {
        float& x = all[b * stride + j * ld + i];
        if (i < rows)
          packed.push_back(x);
        else
          x = NAN;
      }
  fpscope::StatsOptions opt;
  std::copy(kScales, kScales + 4, opt.scale);
  auto host = std::make_unique<TensorStats>();
  auto dev = std::make_unique<TensorStats>();
  fpscope::compute_stats(packed.data(), Format::FP32, packed.size(), 1, packed.size(), opt,
                         host.get());
  fpscope::simulate_tensor_stats_kernel(all.data(), Format::FP32, rows, cols, ld, batch, stride,
                                        kScales, dev.get(), 5);
  expect_same(*dev, *host);
}

TEST(CudaModel, Bf16AndFp8Storage) {
  std::vector<uint16_t> b16(70000);
  std::vector<uint8_t> b8(5000);
  std::mt19937 rng(9);
  for (auto& b : b16) b = static_cast<uint16_t>(rng());
  for (auto& b : b8) b = static_cast<uint8_t>(rng());
  fpscope::StatsOptions opt;
  std::copy(kScales, kScales + 4, opt.scale);
  auto host = std::make_unique<TensorStats>();
  auto dev = std::make_unique<TensorStats>();
  for (Format f : {Format::BF16, Format::FP16}) {
    fpscope::compute_stats(b16.data(), f, 700, 100, 700, opt, host.get());
    fpscope::simulate_tensor_stats_kernel(b16.data(), f, 700, 100, 700, 1, 0, kScales, dev.get());
    expect_same(*dev, *host);
  }
  for (Format f : {Format::E4M3, Format::E5M2}) {
    fpscope::compute_stats(b8.data(), f, 50, 90, 55, opt, host.get());
    fpscope::simulate_tensor_stats_kernel(b8.data(), f, 50, 90, 55, 1, 0, kScales, dev.get());
    expect_same(*dev, *host);
  }
}

TEST(CudaModel, AllNonFiniteAndEmpty) {
  const std::vector<float> v = {NAN, INFINITY, NAN};
  fpscope::StatsOptions opt;
  auto host = std::make_unique<TensorStats>();
  auto dev = std::make_unique<TensorStats>();
  fpscope::compute_stats(v.data(), Format::FP32, 3, 1, 3, opt, host.get());
  fpscope::simulate_tensor_stats_kernel(v.data(), Format::FP32, 3, 1, 3, 1, 0, opt.scale,
                                        dev.get());
  expect_same(*dev, *host);
  EXPECT_EQ(dev->min, 0.0f);  // finalized: no finite element
  fpscope::simulate_tensor_stats_kernel(v.data(), Format::FP32, 0, 1, 1, 1, 0, opt.scale,
                                        dev.get());
  EXPECT_EQ(dev->count, 0u);
  EXPECT_EQ(dev->max, 0.0f);
  EXPECT_EQ(dev->fmt[2].scale, 1.0f);
}

}  // namespace
