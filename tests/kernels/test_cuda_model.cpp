// The CUDA statistics kernel's steps (stats_reduce.h: the same functions stats_kernels.cu calls),
// run on the CPU through its model (stats_sim.h: same grid/block/warp decomposition, a 32-lane
// array for the shuffles, sequential atomics), against the host pass; and the warp tree itself
// on hand-made lanes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "fpscope/host_stats.h"
#include "fpscope/numerics.h"
#include "fpscope/stats_reduce.h"
#include "fpscope/stats_sim.h"

namespace {
using fpscope::Format;
using fpscope::TensorStats;

// a (the model) against b. sum_err2: the host pass sums squared errors in FP32 lanes (within
// 1e-5 of the element-by-element double sum, stats.h); against an element-by-element pass
// (sequential() below) only the order of the double additions differs: err2_rel 1e-12.
void expect_same(const TensorStats& a, const TensorStats& b, double err2_rel = 1e-5) {
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
    EXPECT_NEAR(a.fmt[i].sum_err2, b.fmt[i].sum_err2, err2_rel * b.fmt[i].sum_err2);
  }
  for (int k = 0; k < fpscope::kHistBins; ++k) ASSERT_EQ(a.hist[k], b.hist[k]) << "bin " << k;
}

// Element by element in column-major order (numerics.h only: no reduction tree, no host pass).
template <class T>
std::unique_ptr<TensorStats> sequential(const T* data, Format f, uint64_t rows, uint64_t cols,
                                        uint64_t ld, const float* scales) {
  auto s = std::make_unique<TensorStats>();
  fpscope::reset_stats(*s, scales);
  const fpscope::ScaleSet sc = fpscope::make_scale_set(scales);
  for (uint64_t j = 0; j < cols; ++j)
    for (uint64_t i = 0; i < rows; ++i) {
      uint32_t bits = 0;
      std::memcpy(&bits, &data[j * ld + i], sizeof(T));
      fpscope::accumulate_element(*s, fpscope::decode_storage(f, bits), sc);
    }
  return s;
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
    expect_same(*dev, *sequential(v.data(), Format::FP32, v.size(), 1, v.size(), kScales), 1e-12);
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
  expect_same(*dev,
              *sequential(packed.data(), Format::FP32, packed.size(), 1, packed.size(), kScales),
              1e-12);
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
    expect_same(*dev, *sequential(b16.data(), f, 700, 100, 700, kScales), 1e-12);
  }
  for (Format f : {Format::E4M3, Format::E5M2}) {
    fpscope::compute_stats(b8.data(), f, 50, 90, 55, opt, host.get());
    fpscope::simulate_tensor_stats_kernel(b8.data(), f, 50, 90, 55, 1, 0, kScales, dev.get());
    expect_same(*dev, *host);
    expect_same(*dev, *sequential(b8.data(), f, 50, 90, 55, kScales), 1e-12);
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

// Lane l holds one element, l + 1 (lane 5: a NaN instead). After the tree, lane 0 holds all 32
// lanes and lane 16 exactly lanes 16..31 (rounds 8, 4, 2, 1 bring lanes 24, 20 + 28, 18 + 22 +
// 26 + 30, the odd ones): the shuffle-down order of the device.
TEST(CudaModel, WarpTreeMergesEveryLaneOnceIntoLaneZero) {
  const float ones[fpscope::kNumTargets] = {1.0f, 1.0f, 1.0f, 1.0f};
  const fpscope::ScaleSet sc = fpscope::make_scale_set(ones);
  auto w = std::make_unique<fpscope::HostWarpLanes>();
  for (unsigned l = 0; l < fpscope::kWarpSize; ++l)
    fpscope::accumulate_scalars(w->lane[l], l == 5 ? NAN : static_cast<float>(l + 1), sc);
  fpscope::warp_reduce(*w);
  const fpscope::StatsScalars& s = w->lane[0];
  EXPECT_EQ(s.count, 32u);
  EXPECT_EQ(s.nan, 1u);
  EXPECT_EQ(s.amax, 32.0f);
  EXPECT_EQ(s.min, 1.0f);
  EXPECT_EQ(s.max, 32.0f);
  EXPECT_EQ(s.sum, 32.0 * 33.0 / 2.0 - 6.0);
  EXPECT_EQ(s.fmt[2].overflow, 0u);
  const fpscope::StatsScalars& h = w->lane[16];
  EXPECT_EQ(h.count, 16u);
  EXPECT_EQ(h.min, 17.0f);
  EXPECT_EQ(h.sum, (17.0 + 32.0) * 16.0 / 2.0);
  EXPECT_EQ(w->lane[31].count, 1u);  // the last lane never merges
  EXPECT_EQ(w->lane[30].count, 2u);  // round 1 only: lane 31
}

TEST(CudaModel, ShuffleDownKeepsOwnValueBeyondTheWarp) {
  auto w = std::make_unique<fpscope::HostWarpLanes>();
  for (unsigned l = 0; l < fpscope::kWarpSize; ++l) w->lane[l].count = l;
  w->shuffle_down(4);
  EXPECT_EQ(w->received[0].count, 4u);
  EXPECT_EQ(w->received[27].count, 31u);
  EXPECT_EQ(w->received[28].count, 28u);  // lane 32 does not exist: own value, as the device
  EXPECT_EQ(w->received[31].count, 31u);
}

TEST(CudaModel, ProblemSizeAndAddressing) {
  const auto flat = fpscope::make_stats_problem(10, 3, 10, 0, 0);  // batch 0 counts as 1
  EXPECT_EQ(flat.n, 30u);
  EXPECT_TRUE(flat.view.contiguous);
  const auto padded = fpscope::make_stats_problem(10, 3, 16, 2, 100);
  EXPECT_EQ(padded.n, 60u);
  EXPECT_FALSE(padded.view.contiguous);
  EXPECT_EQ(padded.view.offset(9), 9u);
  EXPECT_EQ(padded.view.offset(10), 16u);  // column 1
  EXPECT_EQ(padded.view.offset(29), 2 * 16 + 9u);
  EXPECT_EQ(padded.view.offset(30), 100u);  // matrix 1
  EXPECT_EQ(padded.view.offset(59), 100 + 2 * 16 + 9u);
  const auto column = fpscope::make_stats_problem(10, 1, 999, 1, 0);  // ld of one column unused
  EXPECT_TRUE(column.view.contiguous);
  EXPECT_EQ(fpscope::stats_blocks(0), 1u);
  EXPECT_EQ(fpscope::stats_blocks(257), 2u);
  EXPECT_EQ(fpscope::stats_blocks(uint64_t{1} << 40), fpscope::kStatsMaxBlocks);
}

TEST(CudaModel, BlockHistogramFlushAddsIntoTheSlot) {
  std::vector<uint32_t> hist(fpscope::kHistBins, 7u);
  fpscope::clear_block_hist(hist.data(), 1, 3);  // thread 1 of 3 clears bins 1, 4, 7, ...
  EXPECT_EQ(hist[0], 7u);
  EXPECT_EQ(hist[1], 0u);
  EXPECT_EQ(hist[4], 0u);
  EXPECT_EQ(hist[5], 7u);
  struct Add {
    void add(uint64_t* p, uint64_t v) { *p += v; }
  } at;
  auto slot = std::make_unique<TensorStats>();
  slot->hist[0] = 5;
  for (unsigned t = 0; t < 3; ++t) fpscope::flush_block_hist(slot.get(), hist.data(), t, 3, at);
  EXPECT_EQ(slot->hist[0], 12u);
  EXPECT_EQ(slot->hist[1], 0u);
  EXPECT_EQ(slot->hist[1021], 0u);  // 1021 = 3 * 340 + 1: cleared by thread 1
  EXPECT_EQ(slot->hist[1023], 7u);
}

}  // namespace
