// The CUDA statistics kernel's steps (stats_reduce.h: the same functions stats_kernels.cu calls),
// run on the CPU through its model (stats_sim.h: same grid/block/warp decomposition, a 32-lane
// array for the shuffles, sequential atomics), against the host pass; and the warp tree itself
// on hand-made lanes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fpscope/host_stats.h"
#include "fpscope/numerics.h"
#include "fpscope/stats_reduce.h"
#include "fpscope/stats_sim.h"
#include "tensor_stats_expect.h"

namespace {
using fpscope::Format;
using fpscope::TensorStats;

// a (the model) against b: tests/support/tensor_stats_expect.h. err2_rel: the kernel's fast path
// sums at most kLaneElems = 16 terms in FP32 before folding them into double: against an
// element-by-element pass (sequential() below) within 16 roundings of 2^-24, 1e-6.
using fpscope::test::expect_same;

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

// Normal values times 2^[e_lo, e_hi]; NaN/-Inf every nan_every/457 elements (0: none), zeros
// every 59.
std::vector<float> data(size_t n, uint32_t seed, int e_lo = -30, int e_hi = 18,
                        size_t nan_every = 113) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_int_distribution<int> ex(e_lo, e_hi);
  std::vector<float> v(n);
  for (auto& x : v) x = std::ldexp(g(rng), ex(rng));
  if (nan_every > 0) {
    for (size_t i = 0; i < n; i += nan_every) v[i] = NAN;
    for (size_t i = 1; i < n; i += 457) v[i] = -INFINITY;
  }
  for (size_t i = 2; i < n; i += 59) v[i] = 0.0f;
  return v;
}

// Model, host pass and element-by-element pass on FP32 data v at scales sc.
void check_fp32(const std::vector<float>& v, const float* sc, unsigned grid = 0) {
  fpscope::StatsOptions opt;
  std::copy(sc, sc + 4, opt.scale);
  auto host = std::make_unique<TensorStats>();
  auto dev = std::make_unique<TensorStats>();
  fpscope::compute_stats(v.data(), Format::FP32, v.size(), 1, v.size(), opt, host.get());
  fpscope::simulate_tensor_stats_kernel(v.data(), Format::FP32, v.size(), 1, v.size(), 1, 0, sc,
                                        dev.get(), grid);
  expect_same(*dev, *host);
  expect_same(*dev, *sequential(v.data(), Format::FP32, v.size(), 1, v.size(), sc), 1e-6, false);
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
    expect_same(*dev, *sequential(v.data(), Format::FP32, v.size(), 1, v.size(), kScales), 1e-6);
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
              1e-6);
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
    expect_same(*dev, *sequential(b16.data(), f, 700, 100, 700, kScales), 1e-6);
  }
  for (Format f : {Format::E4M3, Format::E5M2}) {
    fpscope::compute_stats(b8.data(), f, 50, 90, 55, opt, host.get());
    fpscope::simulate_tensor_stats_kernel(b8.data(), f, 50, 90, 55, 1, 0, kScales, dev.get());
    expect_same(*dev, *host);
    expect_same(*dev, *sequential(b8.data(), f, 50, 90, 55, kScales), 1e-6);
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
  std::vector<uint32_t> hist(fpscope::kHistBins);
  struct Add {
    void add(uint32_t* p, uint32_t v) { *p += v; }
  } at;
  for (unsigned l = 0; l < fpscope::kWarpSize; ++l) {
    fpscope::ThreadAcc acc;
    fpscope::accumulate_generic(acc, l == 5 ? NAN : static_cast<float>(l + 1), sc, hist.data(), at);
    w->lane[l] = fpscope::to_partial(acc);
  }
  EXPECT_EQ(hist[fpscope::hist_bin(32.0f)], 1u);
  EXPECT_EQ(hist[fpscope::hist_bin(1.0f)], 1u);
  fpscope::warp_reduce(*w);
  const fpscope::StatsPartial& s = w->lane[0];
  EXPECT_EQ(s.count, 32u);
  EXPECT_EQ(s.nan, 1u);
  EXPECT_EQ(s.amax, fpscope::abs_bits(32.0f));
  EXPECT_EQ(s.min_key, fpscope::order_key(fpscope::detail::f2u(1.0f)));
  EXPECT_EQ(s.max_key, fpscope::order_key(fpscope::detail::f2u(32.0f)));
  EXPECT_EQ(s.sum, 32.0 * 33.0 / 2.0 - 6.0);
  EXPECT_EQ(s.ov[2], 0u);
  const fpscope::StatsPartial& h = w->lane[16];
  EXPECT_EQ(h.count, 16u);
  EXPECT_EQ(h.min_key, fpscope::order_key(fpscope::detail::f2u(17.0f)));
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
  // One chunk of 512 elements per warp, 8 warps per block, at most the resident blocks.
  EXPECT_EQ(fpscope::stats_chunk_blocks(0, 264), 1u);
  EXPECT_EQ(fpscope::stats_chunk_blocks(4096, 264), 1u);
  EXPECT_EQ(fpscope::stats_chunk_blocks(4097, 264), 2u);
  EXPECT_EQ(fpscope::stats_chunk_blocks(uint64_t{1} << 30, 264), 264u);
}

TEST(CudaModel, BlockHistogramsFlushSummedIntoTheSlot) {
  // Two copies (per-warp histograms) of kHistBins counters.
  std::vector<uint32_t> hist(2 * fpscope::kHistBins, 7u);
  fpscope::clear_block_hist(hist.data(), 2, 1, 3);  // thread 1 of 3 clears 1, 4, ..., 2047
  EXPECT_EQ(hist[0], 7u);
  EXPECT_EQ(hist[1], 0u);
  EXPECT_EQ(hist[4], 0u);
  EXPECT_EQ(hist[5], 7u);
  EXPECT_EQ(hist[1024], 0u);  // 1024 = 3 * 341 + 1
  EXPECT_EQ(hist[1025], 7u);
  struct Add {
    void add(uint32_t* p, uint32_t v) { *p += v; }
    void add(uint64_t* p, uint64_t v) { *p += v; }
  } at;
  fpscope::ThreadAcc acc;
  acc.zero = 3;  // the thread's zeros went into bin 0: taken out again
  fpscope::finish_thread_hist(hist.data(), acc, at);
  EXPECT_EQ(hist[0], 4u);
  auto slot = std::make_unique<TensorStats>();
  slot->hist[0] = 5;
  for (unsigned t = 0; t < 3; ++t) fpscope::flush_block_hist(slot.get(), hist.data(), 2, t, 3, at);
  EXPECT_EQ(slot->hist[0], 5u + 4u + 0u);  // copy 1's bin 0 (index 1024) was cleared
  EXPECT_EQ(slot->hist[1], 0u + 7u);       // copy 1's bin 1 (index 1025) was not
  EXPECT_EQ(slot->hist[1023], 7u + 0u);    // index 2047 = 3 * 682 + 1: cleared
}

// The x-space bounds classify every |x| as numerics.h's element_target does, at unit, odd,
// negative, tiny, huge and non-finite scales (edges: each bound and its neighbours).
TEST(CudaModel, TargetBoundsMatchElementTarget) {
  const float scales[] = {1.0f,  3.0f, 0.37f,    448.0f / 3.1f, -2.0f, 1e-30f,
                          1e30f, 0.0f, INFINITY, NAN,           1e-45f};
  std::mt19937 rng(5);
  for (float s : scales) {
    SCOPED_TRACE(s);
    const float sv[fpscope::kNumTargets] = {s, s, s, s};
    const fpscope::ScaleSet sc = fpscope::make_scale_set(sv);
    for (int i = 0; i < fpscope::kNumTargets; ++i) {
      const fpscope::TargetBounds b = fpscope::make_target_bounds(i, sc);
      std::vector<uint32_t> probes;
      for (uint32_t e : {b.ov, b.uf, b.below, b.normal, b.tiny})
        for (int dlt = -2; dlt <= 2; ++dlt) probes.push_back(e + static_cast<uint32_t>(dlt));
      for (int k = 0; k < 3000; ++k)
        probes.push_back(static_cast<uint32_t>(rng() % fpscope::kFp32InfBits));
      for (uint32_t a : probes) {
        if (a == 0 || a >= fpscope::kFp32InfBits) continue;
        const float x = fpscope::detail::u2f(a);
        fpscope::ElementTarget t{};
        const fpscope::Format f = fpscope::kTargets[i];
        if (f == Format::BF16) t = fpscope::element_target<Format::BF16>(x, s);
        if (f == Format::FP16) t = fpscope::element_target<Format::FP16>(x, s);
        if (f == Format::E4M3) t = fpscope::element_target<Format::E4M3>(x, s);
        if (f == Format::E5M2) t = fpscope::element_target<Format::E5M2>(x, s);
        ASSERT_EQ(t.overflow != 0, a >= b.ov) << i << " a " << a;
        ASSERT_EQ(t.underflow != 0, a <= b.uf) << i << " a " << a;
        ASSERT_EQ((t.underflow | t.subnormal) != 0, a < b.below) << i << " a " << a;
      }
    }
  }
  // Unit scale, FP16: overflow from 65520, underflow up to 2^-25, subnormal below 2^-14 - 2^-25.
  const float ones[fpscope::kNumTargets] = {1.0f, 1.0f, 1.0f, 1.0f};
  const fpscope::TargetBounds f16 = fpscope::make_target_bounds(1, fpscope::make_scale_set(ones));
  EXPECT_EQ(f16.ov, fpscope::abs_bits(65520.0f));
  EXPECT_EQ(f16.uf, fpscope::abs_bits(std::ldexp(1.0f, -25)));
  EXPECT_EQ(f16.below, fpscope::abs_bits(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)));
  EXPECT_EQ(f16.normal, fpscope::abs_bits(std::ldexp(1.0f, -14)));
}

// Clean data (no NaN/Inf): the fast path in each of its specializations against the host pass.
TEST(CudaModel, FastPathSpecializations) {
  const float ones[fpscope::kNumTargets] = {1.0f, 1.0f, 1.0f, 1.0f};
  {
    SCOPED_TRACE("every target normal, no overflow: integer rounding");
    check_fp32(data(100000, 11, -1, 1, 0), ones);
  }
  {
    SCOPED_TRACE("subnormals and overflows of every narrow target");
    check_fp32(data(100000, 12, -45, 42, 0), ones);
    check_fp32(data(100000, 12, -45, 42, 0), kScales, 3);
  }
  {
    SCOPED_TRACE("FP32 subnormals and near-FLT_MAX: BF16 beyond one prescale, double sums");
    auto v = data(50000, 13, -20, 20, 0);
    for (size_t i = 7; i < v.size(); i += 300) v[i] = 3e-44f;
    for (size_t i = 9; i < v.size(); i += 700) v[i] = -3.3e38f;
    check_fp32(v, ones);
  }
  {
    SCOPED_TRACE("odd and non-finite scales");
    // (NaN or zero scales make sum_err2 NaN on both sides: TargetBounds test.)
    const float odd[fpscope::kNumTargets] = {3.0f, 1e30f, 1e-30f, -1.0f / 1024};
    check_fp32(data(30000, 14, -20, 20, 0), odd);
  }
}

// min/max by order key: -0 is below +0 (host pass) whichever lane or block sees it first.
TEST(CudaModel, SignedZerosOrderAsTheHostPass) {
  const float ones[fpscope::kNumTargets] = {1.0f, 1.0f, 1.0f, 1.0f};
  std::vector<float> v(5000, 0.0f);
  v[4000] = -0.0f;  // a later chunk and block than the +0s
  check_fp32(v, ones, 2);
  std::vector<float> w(5000, -0.0f);
  w[4500] = 0.0f;
  check_fp32(w, ones, 2);
  auto dev = std::make_unique<TensorStats>();
  fpscope::simulate_tensor_stats_kernel(v.data(), Format::FP32, v.size(), 1, v.size(), 1, 0, ones,
                                        dev.get(), 2);
  EXPECT_TRUE(std::signbit(dev->min));
  EXPECT_FALSE(std::signbit(dev->max));
}

}  // namespace

// ---- the codes' scale (issue 16 item 8, value_scale.h) --------------------------------------

// FP8 code -> value, written here from the OCP FP8 definition (independent of numerics.h).
float fp8_value(Format f, uint8_t c) {
  const bool e4 = f == Format::E4M3;
  const int man_bits = e4 ? 3 : 2, bias = e4 ? 7 : 15, exp_max = e4 ? 15 : 31;
  const int e = (c & 0x7f) >> man_bits, m = c & ((1 << man_bits) - 1);
  const float sign = (c & 0x80) ? -1.0f : 1.0f;
  if (e4 && e == exp_max && m == (1 << man_bits) - 1) return NAN;  // E4M3: S.1111.111 only
  if (!e4 && e == exp_max) return m == 0 ? sign * INFINITY : NAN;
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), 1 - bias - man_bits);
  return sign * std::ldexp(static_cast<float>((1 << man_bits) + m), e - bias - man_bits);
}

// Every code several times, in a shuffled order; `finite_in`: only codes that are finite numbers
// of f (the kernel's fast path: a chunk without NaN/Inf).
std::vector<uint8_t> fp8_codes(uint32_t seed, size_t n, const Format* finite_in = nullptr) {
  std::vector<uint8_t> v;
  for (uint32_t c = 0; v.size() < n; ++c)
    if (finite_in == nullptr || std::isfinite(fp8_value(*finite_in, static_cast<uint8_t>(c))))
      v.push_back(static_cast<uint8_t>(c));
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  return v;
}

void check_fp8_scaled(bool finite);

// The kernel (model) reading FP8 codes through a per-tensor scale measures what the host pass
// measures on the values the codes stand for: code * s (A/B/C) or code / s (D), each computed
// here in double and rounded once to FP32 (a product or quotient of two FP32 numbers rounded from
// double is the correctly rounded FP32 result, as the kernel's one FP32 operation gives).
TEST(CudaModel, Fp8CodesThroughTheirScaleAreTheValuesTheGemmUsed) {
  for (const bool finite : {false, true}) {
    SCOPED_TRACE(finite ? "finite codes, contiguous: fast path" : "every code, strided");
    check_fp8_scaled(finite);
  }
}

void check_fp8_scaled(bool finite) {
  const uint64_t rows = finite ? 64 : 60, cols = 70, ld = 64;
  const float targets[fpscope::kNumTargets] = {1.0f, 1.0f, 448.0f / 30.0f, 0.5f};
  fpscope::StatsOptions opt;
  std::copy(targets, targets + 4, opt.scale);
  struct Case {
    Format f;
    float s;
    fpscope::ValueScaleOp op;
  };
  // Non-power-of-two scales: products and quotients round; the tiny factors take the smallest
  // codes into FP32 subnormals (and E4M3 / 9.3e-8 its largest past the E4M3/E5M2 targets' range).
  for (const Case& c : {Case{Format::E4M3, 0.0371f, fpscope::ValueScaleOp::Multiply},
                        Case{Format::E5M2, 3.1e-3f, fpscope::ValueScaleOp::Multiply},
                        Case{Format::E4M3, 37.5f, fpscope::ValueScaleOp::Divide},
                        Case{Format::E5M2, 1.7e-6f, fpscope::ValueScaleOp::Multiply},
                        Case{Format::E4M3, 9.3e-8f, fpscope::ValueScaleOp::Divide}}) {
    const auto codes = fp8_codes(21, ld * cols, finite ? &c.f : nullptr);
    SCOPED_TRACE(std::string(fpscope::spec(c.f).name) + " scale " + std::to_string(c.s) +
                 (c.op == fpscope::ValueScaleOp::Divide ? " divide" : " multiply"));
    std::vector<float> values;  // the view's elements, column-major, scaled on the host
    for (uint64_t j = 0; j < cols; ++j)
      for (uint64_t i = 0; i < rows; ++i) {
        const double x = fp8_value(c.f, codes[j * ld + i]);
        values.push_back(static_cast<float>(c.op == fpscope::ValueScaleOp::Divide
                                                ? x / static_cast<double>(c.s)
                                                : x * static_cast<double>(c.s)));
      }
    auto host = std::make_unique<TensorStats>();
    auto dev = std::make_unique<TensorStats>();
    auto raw = std::make_unique<TensorStats>();
    fpscope::compute_stats(values.data(), Format::FP32, values.size(), 1, values.size(), opt,
                           host.get());
    const float scale_in_memory = c.s;  // the "device" scalar: the model reads it itself
    fpscope::simulate_tensor_stats_kernel(codes.data(), c.f, rows, cols, ld, 1, 0, targets,
                                          dev.get(), 3, {&scale_in_memory, c.op});
    expect_same(*dev, *host);
    // Not the raw codes' statistics (the scale changed what is measured).
    fpscope::simulate_tensor_stats_kernel(codes.data(), c.f, rows, cols, ld, 1, 0, targets,
                                          raw.get(), 3);
    EXPECT_NE(raw->amax, dev->amax);
    EXPECT_NE(raw->sum_sq, dev->sum_sq);
  }
}

TEST(CudaModel, ValueScaleIsReadAtTheLaunchNotCapturedAtTheCall) {
  const auto codes = fp8_codes(22, 4096);
  const float ones[fpscope::kNumTargets] = {1.0f, 1.0f, 1.0f, 1.0f};
  auto a = std::make_unique<TensorStats>();
  auto b = std::make_unique<TensorStats>();
  auto raw = std::make_unique<TensorStats>();
  float scalar = 1.0f;  // scale 1: the codes as stored, bit for bit
  const fpscope::ValueScale vs{&scalar, fpscope::ValueScaleOp::Multiply};
  fpscope::simulate_tensor_stats_kernel(codes.data(), Format::E4M3, 4096, 1, 4096, 1, 0, ones,
                                        a.get(), 0, vs);
  fpscope::simulate_tensor_stats_kernel(codes.data(), Format::E4M3, 4096, 1, 4096, 1, 0, ones,
                                        raw.get());
  EXPECT_EQ(std::memcmp(a.get(), raw.get(), sizeof(TensorStats)), 0);
  scalar = 0.25f;  // the same ValueScale: what the pointer holds when the pass runs counts
  fpscope::simulate_tensor_stats_kernel(codes.data(), Format::E4M3, 4096, 1, 4096, 1, 0, ones,
                                        b.get(), 0, vs);
  EXPECT_EQ(b->amax, raw->amax * 0.25f);  // a power of two: exact
  EXPECT_DOUBLE_EQ(b->sum_sq, raw->sum_sq / 16.0);
  EXPECT_EQ(b->nan, raw->nan);
  // Op None ignores the pointer.
  fpscope::simulate_tensor_stats_kernel(codes.data(), Format::E4M3, 4096, 1, 4096, 1, 0, ones,
                                        a.get(), 0, {&scalar, fpscope::ValueScaleOp::None});
  EXPECT_EQ(std::memcmp(a.get(), raw.get(), sizeof(TensorStats)), 0);
}

TEST(CudaModel, ValueScaleOnBatchedStridedFp8) {
  // 2 matrices of 30 x 9, ld 32, 400 codes apart; D-style (divide) scale.
  const uint64_t rows = 30, cols = 9, ld = 32, stride = 400, batch = 2;
  const auto codes = fp8_codes(23, stride * batch);
  const float s = 5.3f;
  std::vector<float> values;
  for (uint64_t m = 0; m < batch; ++m)
    for (uint64_t j = 0; j < cols; ++j)
      for (uint64_t i = 0; i < rows; ++i)
        values.push_back(static_cast<float>(
            static_cast<double>(fp8_value(Format::E5M2, codes[m * stride + j * ld + i])) / s));
  fpscope::StatsOptions opt;
  std::copy(kScales, kScales + 4, opt.scale);
  auto host = std::make_unique<TensorStats>();
  auto dev = std::make_unique<TensorStats>();
  fpscope::compute_stats(values.data(), Format::FP32, values.size(), 1, values.size(), opt,
                         host.get());
  fpscope::simulate_tensor_stats_kernel(codes.data(), Format::E5M2, rows, cols, ld, batch, stride,
                                        kScales, dev.get(), 2, {&s, fpscope::ValueScaleOp::Divide});
  expect_same(*dev, *host);
}
