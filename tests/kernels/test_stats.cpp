// The host statistics pass (compute_stats) against independent reference statistics built on
// CUDA's casts, plus the accumulator's merge, strided views, special inputs and threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "fpscope/host_stats.h"
#include "fpscope/numerics.h"
#include "stats_ref.h"

namespace {
using fpscope::Format;
using fpscope::kNumTargets;
using fpscope::TensorStats;

const float kOnes[kNumTargets] = {1, 1, 1, 1};

// Compares two statistics: counts, amax, min, max and histogram exactly; double sums to a
// relative tolerance (summation order differs).
void expect_same(const TensorStats& got, const TensorStats& want, double rel = 1e-12,
                 const char* what = "") {
  SCOPED_TRACE(what);
  EXPECT_EQ(got.count, want.count);
  EXPECT_EQ(got.nan, want.nan);
  EXPECT_EQ(got.pos_inf, want.pos_inf);
  EXPECT_EQ(got.neg_inf, want.neg_inf);
  EXPECT_EQ(got.zero, want.zero);
  EXPECT_EQ(got.amax, want.amax);
  if (want.finite_count() > 0) {
    EXPECT_EQ(got.min, want.min);
    EXPECT_EQ(got.max, want.max);
  }
  auto near = [rel](double a, double b) { return std::fabs(a - b) <= rel * std::fabs(b) + 1e-300; };
  EXPECT_TRUE(near(got.sum, want.sum) ||
              std::fabs(got.sum - want.sum) < 1e-9 * std::sqrt(want.sum_sq))
      << got.sum << " vs " << want.sum;
  EXPECT_TRUE(near(got.sum_sq, want.sum_sq)) << got.sum_sq << " vs " << want.sum_sq;
  for (int i = 0; i < kNumTargets; ++i) {
    SCOPED_TRACE(fpscope::spec(fpscope::kTargets[i]).name);
    EXPECT_EQ(got.fmt[i].overflow, want.fmt[i].overflow);
    EXPECT_EQ(got.fmt[i].underflow, want.fmt[i].underflow);
    EXPECT_EQ(got.fmt[i].subnormal, want.fmt[i].subnormal);
    EXPECT_EQ(got.fmt[i].scale, want.fmt[i].scale);
    // The fast pass sums FP16/FP8 squared errors in FP32 lanes per block (host_stats.cpp):
    // relative error below 1e-5 by construction (stats.h); counts stay exact.
    const double err_rel = std::max(rel, 1e-5);
    EXPECT_TRUE(std::fabs(got.fmt[i].sum_err2 - want.fmt[i].sum_err2) <=
                err_rel * std::fabs(want.fmt[i].sum_err2) + 1e-300)
        << got.fmt[i].sum_err2 << " vs " << want.fmt[i].sum_err2;
  }
  int bad_bins = 0;
  for (int b = 0; b < fpscope::kHistBins; ++b) bad_bins += got.hist[b] != want.hist[b];
  EXPECT_EQ(bad_bins, 0);
}

std::unique_ptr<TensorStats> run(const void* data, Format dt, uint64_t rows, uint64_t cols,
                                 uint64_t ld, const float* scales = kOnes, unsigned threads = 1) {
  fpscope::StatsOptions opt;
  std::memcpy(opt.scale, scales, sizeof opt.scale);
  opt.threads = threads;
  auto s = std::make_unique<TensorStats>();
  fpscope::compute_stats(data, dt, rows, cols, ld, opt, s.get());
  return s;
}

// Every pattern of a storage format as one tensor of that format.
template <class T>
void every_pattern(Format f, uint32_t n, const float* scales, double rel) {
  std::vector<T> data(n);
  std::vector<float> values(n);
  for (uint32_t b = 0; b < n; ++b) {
    data[b] = static_cast<T>(b);
    values[b] = ref::decode(f, b);
  }
  auto got = run(data.data(), f, n, 1, n, scales);
  const TensorStats want = ref::stats_of(values, scales);
  expect_same(*got, want, rel, fpscope::spec(f).name);
  // Also as a 2-D view with an odd shape.
  auto got2 = run(data.data(), f, n / 8, 8, n / 8, scales);
  expect_same(*got2, want, rel, "2-D");
}

TEST(HostStats, EveryFp16AndBf16PatternAsInput) {
  every_pattern<uint16_t>(Format::FP16, 65536, kOnes, 1e-12);
  every_pattern<uint16_t>(Format::BF16, 65536, kOnes, 1e-12);
}

TEST(HostStats, EveryFp8CodeAsInput) {
  every_pattern<uint8_t>(Format::E4M3, 256, kOnes, 1e-12);
  every_pattern<uint8_t>(Format::E5M2, 256, kOnes, 1e-12);
}

TEST(HostStats, EveryPatternWithScales) {
  // Powers of two and odd scales: e = (fl(x*s) - cast(fl(x*s))) / s, as the reference computes.
  const float pow2[kNumTargets] = {0.25f, 1024.0f, 1.0f / 64, 8.0f};
  every_pattern<uint16_t>(Format::FP16, 65536, pow2, 1e-12);
  every_pattern<uint16_t>(Format::BF16, 65536, pow2, 1e-12);
  every_pattern<uint8_t>(Format::E4M3, 256, pow2, 1e-12);
  const float odd[kNumTargets] = {3.7f, 0.3f, 1000.0f, 17.0f};
  every_pattern<uint16_t>(Format::FP16, 65536, odd, 1e-9);
  every_pattern<uint8_t>(Format::E5M2, 256, odd, 1e-9);
}

std::vector<float> random_tensor(size_t n, uint32_t seed, bool specials) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  std::uniform_int_distribution<int> ex(-40, 20);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (auto& x : v) x = std::ldexp(g(rng), ex(rng));
  if (specials) {
    for (size_t i = 0; i < n; i += 97) v[i] = NAN;
    for (size_t i = 5; i < n; i += 331) v[i] = INFINITY;
    for (size_t i = 7; i < n; i += 499) v[i] = -INFINITY;
    for (size_t i = 3; i < n; i += 53) v[i] = (i & 1) ? 0.0f : -0.0f;
    for (size_t i = 11; i < n; i += 1001) v[i] = 1e-42f;  // FP32 subnormal
    for (size_t i = 13; i < n; i += 777) v[i] = -3e38f;   // beyond BF16's max
  }
  return v;
}

TEST(HostStats, RandomFp32MatchesReference) {
  const auto v = random_tensor(100003, 1, true);
  const float sc[kNumTargets] = {1, 1, 448.0f / 3.0f, 0.5f};
  auto got = run(v.data(), Format::FP32, v.size(), 1, v.size(), sc);
  expect_same(*got, ref::stats_of(v, sc), 1e-9, "fp32");
  // Against numerics.h's own scalar element step too (bit-identical per element).
  fpscope::StatsOptions opt;
  std::memcpy(opt.scale, sc, sizeof sc);
  auto r = std::make_unique<TensorStats>();
  fpscope::compute_stats_reference(v.data(), Format::FP32, v.size(), 1, v.size(), opt, r.get());
  expect_same(*got, *r, 1e-12, "scalar path");
}

TEST(HostStats, NanInfAndZerosAreCountedAndExcluded) {
  const std::vector<float> v = {NAN,  1.0f,  INFINITY, -INFINITY, -INFINITY,
                                0.0f, -0.0f, -2.0f,    NAN,       70000.0f};
  auto s = run(v.data(), Format::FP32, v.size(), 1, v.size());
  EXPECT_EQ(s->count, 10u);
  EXPECT_EQ(s->nan, 2u);
  EXPECT_EQ(s->pos_inf, 1u);
  EXPECT_EQ(s->neg_inf, 2u);
  EXPECT_EQ(s->zero, 2u);
  EXPECT_EQ(s->finite_count(), 5u);
  EXPECT_EQ(s->amax, 70000.0f);
  EXPECT_EQ(s->min, -2.0f);
  EXPECT_EQ(s->max, 70000.0f);
  EXPECT_EQ(s->sum, 69999.0);
  EXPECT_EQ(s->sum_sq, 1.0 + 4.0 + 70000.0 * 70000.0);
  EXPECT_EQ(s->fmt[1].overflow, 1u);  // 70000 overflows FP16 only
  EXPECT_EQ(s->fmt[0].overflow, 0u);
  uint64_t in_hist = 0;
  for (uint64_t c : s->hist) in_hist += c;
  EXPECT_EQ(in_hist, 3u);  // 1, -2, 70000
  EXPECT_EQ(s->hist[127 * 4], 1u);
  EXPECT_EQ(s->hist[128 * 4], 1u);
  // 70000 = 1.068 * 2^16: top mantissa bits 00.
  EXPECT_EQ(s->hist[143 * 4], 1u);
}

TEST(HostStats, HandWorkedSqnr) {
  // x = {1, 1 + 2^-12, 2^-26, -3}.
  //  FP16: 1 + 2^-12 is below 1's half ulp (2^-11): rounds to 1, e = 2^-12; 2^-26 is below half
  //        the smallest subnormal (2^-25): flushed, e = 2^-26 (an underflow); 1 and -3 exact.
  //  BF16: 1 + 2^-12 -> 1 (e = 2^-12); 2^-26 and -3 exact.
  //  E4M3/E5M2: like FP16 (2^-26 is below both formats' subnormals).
  //  sum x^2 = 1 + (1 + 2^-12)^2 + 2^-52 + 9;  SQNR_FP16 = 10 log10(sum x^2 / (2^-24 + 2^-52)).
  const std::vector<float> v = {1.0f, 1.0f + std::ldexp(1.0f, -12), std::ldexp(1.0f, -26), -3.0f};
  auto s = run(v.data(), Format::FP32, 4, 1, 4);
  const double e16 = std::ldexp(1.0, -24) + std::ldexp(1.0, -52);
  // FP16/FP8 squared errors are summed in FP32 lanes (stats.h: within 1e-5 relative; here the
  // 2^-52 term is below FP32's precision next to 2^-24).
  EXPECT_NEAR(s->fmt[1].sum_err2, e16, 1e-5 * e16);
  EXPECT_EQ(s->fmt[1].underflow, 1u);
  EXPECT_EQ(s->fmt[0].sum_err2, std::ldexp(1.0, -24));
  EXPECT_EQ(s->fmt[0].underflow, 0u);
  EXPECT_NEAR(s->fmt[2].sum_err2, e16, 1e-5 * e16);
  EXPECT_NEAR(s->fmt[3].sum_err2, e16, 1e-5 * e16);
  EXPECT_EQ(s->fmt[2].underflow, 1u);
  EXPECT_EQ(s->fmt[3].underflow, 1u);
  const double x2 = 1.0 + std::pow(1.0 + std::ldexp(1.0, -12), 2) + std::ldexp(1.0, -52) + 9.0;
  EXPECT_EQ(s->sum_sq, x2);
  const double sqnr16 = 10 * std::log10(s->sum_sq / s->fmt[1].sum_err2);
  EXPECT_NEAR(sqnr16, 82.661, 0.001);  // 10 log10(11.00049 * 2^24 / (1 + 2^-28))
}

TEST(HostStats, StridedViewIgnoresPadding) {
  // 37 x 11 column-major view with ld 50; the padding rows hold NaN and huge values.
  const uint64_t rows = 37, cols = 11, ld = 50;
  auto all = random_tensor(ld * cols, 7, false);
  std::vector<float> inside;
  for (uint64_t j = 0; j < cols; ++j)
    for (uint64_t i = 0; i < ld; ++i) {
      if (i < rows)
        inside.push_back(all[i + j * ld]);
      else
        all[i + j * ld] = (i & 1) ? NAN : 1e30f;
    }
  auto got = run(all.data(), Format::FP32, rows, cols, ld);
  expect_same(*got, ref::stats_of(inside, kOnes), 1e-12, "fp32 strided");
  // BF16 storage, long columns (in-place path for FP32 is rows >= 256; BF16 always decodes).
  const uint64_t r2 = 300, c2 = 5, ld2 = 313;
  std::vector<uint16_t> b(ld2 * c2, 0x7fc0);  // padding: BF16 NaN
  std::vector<float> in2;
  std::mt19937 rng(3);
  for (uint64_t j = 0; j < c2; ++j)
    for (uint64_t i = 0; i < r2; ++i) {
      b[i + j * ld2] = static_cast<uint16_t>(rng());
      in2.push_back(ref::decode(Format::BF16, b[i + j * ld2]));
    }
  auto got2 = run(b.data(), Format::BF16, r2, c2, ld2);
  expect_same(*got2, ref::stats_of(in2, kOnes), 1e-12, "bf16 strided");
  std::vector<float> f3(ld2 * c2, NAN);
  for (uint64_t j = 0; j < c2; ++j)
    for (uint64_t i = 0; i < r2; ++i) f3[i + j * ld2] = in2[i + j * r2];
  auto got3 = run(f3.data(), Format::FP32, r2, c2, ld2);
  expect_same(*got3, ref::stats_of(in2, kOnes), 1e-12, "fp32 strided long columns");
}

TEST(HostStats, MergeOfAnySplitEqualsOnePass) {
  const auto v = random_tensor(20000, 11, true);
  const float sc[kNumTargets] = {2, 0.5f, 64, 1};
  auto whole = run(v.data(), Format::FP32, v.size(), 1, v.size(), sc);
  std::mt19937 rng(5);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<size_t> cuts = {0, v.size()};
    const int k = 1 + trial % 7;
    for (int c = 0; c < k; ++c) cuts.push_back(rng() % v.size());
    std::sort(cuts.begin(), cuts.end());
    auto merged = std::make_unique<TensorStats>();
    fpscope::reset_stats(*merged, sc);
    // Merge in a shuffled order: the merge is commutative too.
    std::vector<size_t> order(cuts.size() - 1);
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t p : order) {
      const size_t b = cuts[p], e = cuts[p + 1];
      auto part = run(v.data() + b, Format::FP32, e - b, 1, e - b, sc);
      merged->merge(*part);
    }
    expect_same(*merged, *whole, 1e-12, "split");
  }
  // An empty part merges as the identity (min/max untouched).
  auto empty = run(v.data(), Format::FP32, 0, 1, 1, sc);
  auto m2 = std::make_unique<TensorStats>(*whole);
  m2->merge(*empty);
  expect_same(*m2, *whole, 0, "empty");
  EXPECT_EQ(empty->count, 0u);
}

TEST(HostStats, ThreadsGiveTheSameStatistics) {
  const auto v = random_tensor(3 << 20, 21, true);
  auto one = run(v.data(), Format::FP32, v.size(), 1, v.size(), kOnes, 1);
  auto two = run(v.data(), Format::FP32, v.size(), 1, v.size(), kOnes, 3);
  expect_same(*two, *one, 1e-12, "threads, 1-D");
  auto cols1 = run(v.data(), Format::FP32, 1000, 3000, 1024, kOnes, 1);
  auto cols3 = run(v.data(), Format::FP32, 1000, 3000, 1024, kOnes, 3);
  expect_same(*cols3, *cols1, 1e-12, "threads, by columns");
}

TEST(HostStats, Fp8StorageStrided) {
  // 3 x 4 E4M3 view, ld 5, by hand: codes 0x38 = 1.0, 0x40 = 2.0, 0xb8 = -1.0, 0x7f = NaN,
  // 0x00 = 0, 0x7e = 448; padding 0x7f (NaN) must be skipped.
  const uint8_t d[20] = {0x38, 0x40, 0xb8, 0x7f, 0x7f, 0x00, 0x7e, 0x38, 0x7f, 0x7f,
                         0x7f, 0x38, 0x38, 0x7f, 0x7f, 0x40, 0x40, 0x40, 0x7f, 0x7f};
  auto s = run(d, Format::E4M3, 3, 4, 5);
  EXPECT_EQ(s->count, 12u);
  EXPECT_EQ(s->nan, 1u);
  EXPECT_EQ(s->zero, 1u);
  EXPECT_EQ(s->amax, 448.0f);
  EXPECT_EQ(s->min, -1.0f);
  EXPECT_EQ(s->sum, 1 + 2 - 1 + 0 + 448 + 1 + 1 + 1 + 2 + 2 + 2);
  for (int i = 0; i < kNumTargets; ++i) EXPECT_EQ(s->fmt[i].overflow, 0u);
  EXPECT_EQ(s->hist[127 * 4], 5u);      // |1| x 5
  EXPECT_EQ(s->hist[128 * 4], 4u);      // 2 x 4
  EXPECT_EQ(s->hist[135 * 4 + 3], 1u);  // 448 = 1.75 * 2^8
}

// Large 8/16-bit tensors take the code-counting path (one increment per element, each distinct
// code folded once): the same statistics as the reference, element by element, on CUDA's casts.
template <class T>
void large_storage_tensor(Format f, size_t rows, size_t cols, size_t ld, uint32_t seed,
                          const float* scales) {
  std::mt19937 rng(seed);
  const uint32_t codes = sizeof(T) == 1 ? 256 : 65536;
  std::vector<T> data(ld * cols);
  std::vector<float> values;
  values.reserve(rows * cols);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (size_t j = 0; j < cols; ++j) {
    for (size_t i = 0; i < ld; ++i) {
      // Mostly one cluster of codes (a real tensor), some uniformly random codes (NaN/Inf too).
      uint32_t c =
          (rng() % 8 == 0) ? rng() % codes : static_cast<uint32_t>(std::fabs(g(rng)) * 900) % codes;
      if (i >= rows) c = codes - 1;  // padding, never read (NaN in every format here)
      data[i + j * ld] = static_cast<T>(c);
      if (i < rows) values.push_back(ref::decode(f, c));
    }
  }
  auto got = run(data.data(), f, rows, cols, ld, scales);
  expect_same(*got, ref::stats_of(values, scales), 1e-9, fpscope::spec(f).name);
  auto threaded = run(data.data(), f, rows, cols, ld, scales, 3);
  expect_same(*threaded, *got, 1e-9, "threads");
}

TEST(HostStats, LargeSixteenBitTensorsCountCodes) {
  const float odd[kNumTargets] = {1.0f, 3.7f, 448.0f / 3.0f, 0.5f};
  large_storage_tensor<uint16_t>(Format::BF16, 700, 900, 703, 5, kOnes);
  large_storage_tensor<uint16_t>(Format::FP16, 1 << 19, 1, 1 << 19, 6, odd);
}

TEST(HostStats, LargeFp8TensorsCountCodes) {
  const float sc[kNumTargets] = {1.0f, 1.0f, 0.25f, 64.0f};
  large_storage_tensor<uint8_t>(Format::E4M3, 100, 90, 101, 7, sc);
  large_storage_tensor<uint8_t>(Format::E5M2, 5000, 3, 5000, 8, kOnes);
}

#if defined(__x86_64__)
// A program running with flush-to-zero and denormals-are-zero (torch.set_flush_denormal(True))
// gets the same statistics as one without, and its modes back.
TEST(HostStats, FlushToZeroModesDoNotChangeTheStatistics) {
  std::vector<float> v;
  for (uint32_t i = 1; i < 4096; ++i) v.push_back(ref::from_bits(i << 11));  // FP32 subnormals
  for (int i = 0; i < 1000; ++i)
    v.push_back(std::ldexp(1.0f + static_cast<float>(i) / 1000.0f, -30 + i % 40));
  const auto want = ref::stats_of(v, kOnes);
  const unsigned saved = _mm_getcsr();
  _mm_setcsr(saved | (1u << 15) | (1u << 6));  // FTZ | DAZ
  auto got = run(v.data(), Format::FP32, v.size(), 1, v.size());
  const unsigned after = _mm_getcsr();
  _mm_setcsr(saved);
  EXPECT_EQ(after, saved | (1u << 15) | (1u << 6)) << "the caller's FP modes are restored";
  expect_same(*got, want, 1e-12, "under FTZ/DAZ");
  // By hand: i << 11 stays a nonzero BF16 subnormal for 17 <= i < 4080 (0x8000 ties to 0;
  // from 0x7f8000 on it rounds up to the smallest normal).
  EXPECT_EQ(got->fmt[0].subnormal, 4080u - 17u);
  EXPECT_EQ(got->fmt[0].underflow, 16u);
  EXPECT_GT(got->sum, 0.0);
}
#endif

// docs/design.md: underflow counts x != 0 whose cast of y = x * s is zero, including a y that FP32
// itself flushed to zero.
TEST(HostStats, UnderflowCountsProductsThatFp32Flushes) {
  const std::vector<float> v = {1e-30f, -1e-30f, 1.0f, 0.0f};
  const float tiny[kNumTargets] = {1e-20f, 1e-20f, 1e-20f, 1e-20f};
  auto s = run(v.data(), Format::FP32, v.size(), 1, v.size(), tiny);
  // BF16: the two products that FP32 flushes (1e-50). FP16/E4M3/E5M2 also flush 1.0 * 1e-20.
  EXPECT_EQ(s->fmt[0].underflow, 2u);
  for (int i = 1; i < kNumTargets; ++i) EXPECT_EQ(s->fmt[i].underflow, 3u) << i;
  expect_same(*s, ref::stats_of(v, tiny), 1e-12, "flushed products");
}

// The pass picks a loop per block and target from the block's smallest nonzero and largest |x|
// (no overflow check when even the largest cannot overflow, no underflow/subnormal counts when
// even the smallest is a normal of the target, squared errors in FP32 lanes when the span allows):
// blocks of narrow and wide exponent windows everywhere in FP32's range, at the scales where the
// windows cross each target's thresholds, must give the reference statistics.
TEST(HostStats, RangeSpecializedBlocksMatchReference) {
  const float unit[kNumTargets] = {1, 1, 1, 1};
  const float odd[kNumTargets] = {0.5f, 1024.0f, 448.0f / 3.0f, 3.7f};
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  int cases = 0;
  for (int lo : {-149, -140, -127, -126, -110, -60, -24, -14, -9, 0, 8, 15, 16, 100, 126}) {
    for (int width : {0, 1, 4, 30, 101, 102, 103, 104, 200}) {
      std::vector<float> v(3 * 1008 + 17);
      for (auto& x : v) {
        const int e = lo + static_cast<int>(rng() % static_cast<uint32_t>(width + 1));
        x = std::ldexp(mant(rng), std::min(e, 127)) * ((rng() & 1) ? 1.0f : -1.0f);
        if (!std::isfinite(x)) x = 3e38f;
      }
      v[5] = 0.0f;
      for (const float* sc : {unit, odd}) {
        auto got = run(v.data(), Format::FP32, v.size(), 1, v.size(), sc);
        expect_same(*got, ref::stats_of(v, sc), 1e-12, "window");
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, 15 * 9 * 2);
}

// BF16 squared errors in FP32 lanes: a block whose large element is exact in BF16 (error 0) and
// whose other elements are the smallest inexact values the FP32 path still takes (102 binades
// below) holds all of its error in the smallest possible terms: a flushed term would show.
TEST(HostStats, Bf16ErrorsOfTheSmallestTermsAreKept) {
  // Up to 103 binades below: FP32 lanes; beyond, double (terms 116+ binades below would flush).
  for (int below : {100, 102, 103, 104, 110, 116, 120, 125, 130}) {
    std::vector<float> v(1008, 0.0f);
    v[0] = std::ldexp(1.0f, 20);  // exact in BF16
    for (size_t i = 1; i < v.size(); ++i)
      v[i] = std::ldexp(1.0f + std::ldexp(1.0f, -23) * static_cast<float>(i % 7 + 1), 20 - below);
    const TensorStats want = ref::stats_of(v, kOnes);
    ASSERT_GT(want.fmt[0].sum_err2, 0.0);
    auto got = run(v.data(), Format::FP32, v.size(), 1, v.size());
    expect_same(*got, want, 1e-12, "smallest BF16 errors");
  }
}

// The per-block loop choice at its edges: a block whose smallest nonzero or largest |x| lies one
// pattern either side of a target's underflow, subnormal or overflow threshold.
template <int T>
void threshold_edges() {
  using P = fpscope::detail::CastParams<fpscope::kTargets[T]>;
  const int32_t edges[] = {P::kUnderflowMaxBits, P::kUnderflowMaxBits + 1, P::kNormalStartBits - 1,
                           P::kNormalStartBits,  P::kOverflowBits - 1,     P::kOverflowBits,
                           P::kOverflowBits + 1};
  for (int32_t e : edges) {
    float edge;
    std::memcpy(&edge, &e, 4);
    // The other elements sit well inside the target's normal range, above the small edges and
    // below the large ones.
    const float inside = std::sqrt(edge) > 1.0f ? 1.5f : std::sqrt(edge);
    for (bool edge_first : {true, false}) {
      std::vector<float> v(1008, inside);
      for (size_t i = 0; i < v.size(); i += 3) v[i] = -inside * 1.25f;
      v[edge_first ? 0 : 1007] = edge;
      v[500] = -edge;
      auto got = run(v.data(), Format::FP32, v.size(), 1, v.size());
      expect_same(*got, ref::stats_of(v, kOnes), 1e-12, fpscope::spec(fpscope::kTargets[T]).name);
    }
  }
}

// The pass reuses one accumulator per thread (reset for each call): a call must start from zero
// whatever the previous one left in it. A tensor with NaN, Inf, zeros, every block format and a
// wide histogram, then another that fills other bins and blocks, then the first again: the
// same statistics, bit for bit, as the first time, and as the element-by-element reference.
TEST(HostStats, EachCallStartsFromZeroOnTheSameThread) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(64 * 96), y(4096);
  for (auto& v : x) v = g(rng) * std::ldexp(1.0f, static_cast<int>(rng() % 40) - 20);
  x[5] = std::nanf("");
  x[700] = INFINITY;
  for (int i = 1024; i < 1056; ++i) x[static_cast<size_t>(i)] = 0.0f;  // an all-zero MX block
  for (auto& v : y) v = 6.0e4f + g(rng);
  fpscope::StatsOptions opt;
  opt.block_formats = fpscope::kAllBlockFormats;
  auto once = [&](const std::vector<float>& v, uint64_t rows) {
    auto s = std::make_unique<TensorStats>();
    fpscope::compute_stats(v.data(), Format::FP32, rows, v.size() / rows, rows, opt, s.get());
    return s;
  };
  const auto first = once(x, 64);
  const auto other = once(y, 4096);
  const auto again = once(x, 64);
  ASSERT_NE(other->amax, first->amax);
  expect_same(*again, *first, 0.0, "the same tensor again");
  for (int f = 0; f < fpscope::kNumTargets; ++f)
    EXPECT_EQ(again->fmt[f].sum_err2, first->fmt[f].sum_err2);
  EXPECT_EQ(again->blocks.mask, first->blocks.mask);
  for (int f = 0; f < fpscope::kNumBlockFormats; ++f) {
    const auto &a = again->blocks.fmt[f], &b = first->blocks.fmt[f];
    EXPECT_EQ(a.blocks, b.blocks);
    EXPECT_EQ(a.elements, b.elements);
    EXPECT_EQ(a.flushed, b.flushed);
    EXPECT_EQ(a.saturated, b.saturated);
    EXPECT_EQ(a.zero_blocks, b.zero_blocks);
    EXPECT_EQ(a.nan_scale, b.nan_scale);
    EXPECT_EQ(a.sum_err2, b.sum_err2);
    EXPECT_EQ(a.sum_x2, b.sum_x2);
    for (int i = 0; i < fpscope::kBlockScaleBins; ++i)
      EXPECT_EQ(again->blocks.scale_hist[f][i], first->blocks.scale_hist[f][i]) << f << " " << i;
  }
  TensorStats ref;
  fpscope::compute_stats_reference(x.data(), Format::FP32, 64, 96, 64, opt, &ref);
  expect_same(*first, ref, 1e-12, "against the reference");
  EXPECT_EQ(first->blocks.fmt[0].zero_blocks, ref.blocks.fmt[0].zero_blocks);
  EXPECT_EQ(first->blocks.fmt[0].nan_scale, ref.blocks.fmt[0].nan_scale);
  EXPECT_GE(first->blocks.fmt[0].zero_blocks, 1u);
  EXPECT_GE(first->blocks.fmt[0].nan_scale, 2u);  // the NaN's and the Inf's blocks
}

TEST(HostStats, LoopChoiceAtEveryThresholdEdge) {
  threshold_edges<0>();
  threshold_edges<1>();
  threshold_edges<2>();
  threshold_edges<3>();
}

}  // namespace

namespace {
// The probe reuses statistics of a buffer whose fingerprint did not change: any change of any
// element must change it; padding between columns must not.
TEST(Fingerprint, EveryBitOfEveryElementCounts) {
  std::vector<float> v(37 * 5);
  std::mt19937 rng(3);
  for (auto& x : v) x = static_cast<float>(rng()) / 1e6f;
  const uint64_t base = fpscope::content_fingerprint(v.data(), Format::FP32, v.size(), 1, v.size());
  EXPECT_EQ(base, fpscope::content_fingerprint(v.data(), Format::FP32, v.size(), 1, v.size()));
  int same = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    for (int b = 0; b < 32; ++b) {
      std::vector<float> w = v;
      uint32_t u;
      std::memcpy(&u, &w[i], 4);
      u ^= 1u << b;
      std::memcpy(&w[i], &u, 4);
      same += fpscope::content_fingerprint(w.data(), Format::FP32, w.size(), 1, w.size()) == base;
    }
  }
  EXPECT_EQ(same, 0);
  // Strided view: rows 30 of ld 37, 5 columns. Padding changes nothing; elements do.
  const uint64_t s0 = fpscope::content_fingerprint(v.data(), Format::FP32, 30, 5, 37);
  std::vector<float> w = v;
  for (size_t j = 0; j < 5; ++j) w[j * 37 + 33] = 12345.0f;  // padding
  EXPECT_EQ(fpscope::content_fingerprint(w.data(), Format::FP32, 30, 5, 37), s0);
  w[2 * 37 + 29] = -1.0f;  // last row of column 2
  EXPECT_NE(fpscope::content_fingerprint(w.data(), Format::FP32, 30, 5, 37), s0);
  // Two columns swapped: another fingerprint.
  std::vector<float> sw = v;
  std::swap_ranges(sw.begin(), sw.begin() + 30, sw.begin() + 37);
  EXPECT_NE(fpscope::content_fingerprint(sw.data(), Format::FP32, 30, 5, 37), s0);
  // 16-bit and 8-bit storage: the element bytes.
  std::vector<uint16_t> h(1001, 7);
  const uint64_t hb = fpscope::content_fingerprint(h.data(), Format::BF16, h.size(), 1, h.size());
  h[1000] = 8;
  EXPECT_NE(fpscope::content_fingerprint(h.data(), Format::BF16, h.size(), 1, h.size()), hb);
}

// A strided view whose columns fill the 32 vector lanes, a group of 8 and the scalar chain (70
// rows: 35 words), and a contiguous one of several 32-word groups: every bit of every element
// counts, the padding does not, and columns are not interchangeable.
TEST(Fingerprint, EveryLaneAndColumnCounts) {
  constexpr uint64_t kRows = 70, kCols = 4, kLd = 75;
  std::vector<float> v(kLd * kCols);
  std::mt19937 rng(5);
  for (auto& x : v) x = static_cast<float>(rng()) / 1e6f;
  for (const uint64_t rows : {kRows, kLd}) {  // kLd: contiguous (ld == rows)
    const uint64_t base = fpscope::content_fingerprint(v.data(), Format::FP32, rows, kCols, kLd);
    int same = 0;
    for (uint64_t j = 0; j < kCols; ++j) {
      for (uint64_t i = 0; i < rows; ++i) {
        for (int b = 0; b < 32; b += 7) {
          std::vector<float> w = v;
          uint32_t u;
          std::memcpy(&u, &w[j * kLd + i], 4);
          u ^= 1u << b;
          std::memcpy(&w[j * kLd + i], &u, 4);
          same += fpscope::content_fingerprint(w.data(), Format::FP32, rows, kCols, kLd) == base;
        }
      }
    }
    EXPECT_EQ(same, 0) << rows;
  }
  const uint64_t s0 = fpscope::content_fingerprint(v.data(), Format::FP32, kRows, kCols, kLd);
  std::vector<float> w = v;
  for (uint64_t j = 0; j < kCols; ++j) w[j * kLd + kRows] = 1.0f;  // padding
  EXPECT_EQ(fpscope::content_fingerprint(w.data(), Format::FP32, kRows, kCols, kLd), s0);
  std::vector<float> sw = v;
  std::swap_ranges(sw.begin(), sw.begin() + kRows, sw.begin() + kLd);  // columns 0 and 1
  EXPECT_NE(fpscope::content_fingerprint(sw.data(), Format::FP32, kRows, kCols, kLd), s0);
}
}  // namespace

// Counts read from a trace need not be consistent: finite_count() must saturate, not wrap.
TEST(StatsScalars, FiniteCountsSaturateOnInconsistentCounts) {
  fpscope::StatsScalars s;
  s.count = 5;
  s.nan = 7;
  EXPECT_EQ(s.finite_count(), 0u);
  EXPECT_EQ(s.nonzero_finite_count(), 0u);
  s.nan = ~uint64_t{0};
  s.pos_inf = 2;
  EXPECT_EQ(s.finite_count(), 0u);
  s.count = 10;
  s.nan = 1;
  s.pos_inf = 2;
  s.neg_inf = 3;
  s.zero = 9;  // more zeros than finite values
  EXPECT_EQ(s.finite_count(), 4u);
  EXPECT_EQ(s.nonzero_finite_count(), 0u);
  s.zero = 1;
  EXPECT_EQ(s.nonzero_finite_count(), 3u);
}
