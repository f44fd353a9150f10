// The value sketch (kernels value_sketch.h) against exact norms computed here in double: the
// distance between two sketches estimates ||x - y|| within 10 % for nearly every pair, whatever
// the shape of the difference (spread, one column, a few elements), also for ops made of batch
// parts; the sketch ignores the layout (ld) and non-finite elements and is deterministic.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "fpscope/value_sketch.h"

namespace fpscope {
namespace {

double exact_norm(const std::vector<float>& x, const std::vector<float>& y) {
  double s = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(y[i]);
    s += d * d;
  }
  return std::sqrt(s);
}

std::vector<float> as_floats(const ValueSketch& s) {
  return std::vector<float>(s.v, s.v + kSketchBuckets);
}

double sketch_norm(const ValueSketch& a, const ValueSketch& b) {
  const std::vector<float> fa = as_floats(a), fb = as_floats(b);
  return std::sqrt(sketch_distance2(fa.data(), fb.data(), kSketchBuckets));
}

ValueSketch sketch_of(const std::vector<float>& x, uint64_t rows, uint64_t cols) {
  ValueSketch s;
  compute_sketch(x.data(), Format::FP32, rows, cols, rows, &s);
  return s;
}

enum class Shape { Spread, OneColumn, FewElements, Proportional };

// y = x + a difference of the given shape.
std::vector<float> perturbed(const std::vector<float>& x, uint64_t rows, Shape shape,
                             std::mt19937_64& rng) {
  std::vector<float> y = x;
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::uniform_int_distribution<size_t> pos(0, x.size() - 1);
  switch (shape) {
    case Shape::Spread:
      for (float& v : y) v += 1e-3f * n(rng);
      break;
    case Shape::OneColumn: {
      const size_t col = pos(rng) / rows;
      for (uint64_t i = 0; i < rows; ++i) y[col * rows + i] += 0.05f * n(rng);
      break;
    }
    case Shape::FewElements:
      for (int k = 0; k < 40; ++k) y[pos(rng)] += n(rng);
      break;
    case Shape::Proportional:  // as a rounding to a shorter mantissa does
      for (float& v : y) v *= 1.0f + 4e-3f * n(rng);
      break;
  }
  return y;
}

TEST(ValueSketch, EstimatesTheDistanceWithinTenPercentForNearlyEveryPair) {
  std::mt19937_64 rng(20261204);
  std::normal_distribution<float> n(0.0f, 1.0f);
  int within10 = 0, total = 0;
  double worst = 0.0;
  for (Shape shape : {Shape::Spread, Shape::OneColumn, Shape::FewElements, Shape::Proportional}) {
    for (int t = 0; t < 60; ++t) {
      const uint64_t rows = 64 + 16 * (t % 5), cols = 48 + 8 * (t % 3);
      std::vector<float> x(rows * cols);
      for (float& v : x) v = n(rng);
      const std::vector<float> y = perturbed(x, rows, shape, rng);
      const double exact = exact_norm(x, y);
      const double est = sketch_norm(sketch_of(x, rows, cols), sketch_of(y, rows, cols));
      const double rel = std::abs(est / exact - 1.0);
      within10 += rel <= 0.10;
      worst = std::max(worst, rel);
      ++total;
    }
  }
  // The norm's relative standard deviation is ~1/sqrt(2 * 256) = 4.4 %: 10 % is 2.3 sigma.
  EXPECT_GE(within10, total * 95 / 100) << "of " << total << ", worst " << worst;
  EXPECT_LT(worst, 0.25);
}

TEST(ValueSketch, IsLinearAndDeterministic) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> n(0.0f, 1.0f);
  const uint64_t rows = 33, cols = 17;
  std::vector<float> x(rows * cols), y(rows * cols), d(rows * cols);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = n(rng);
    y[i] = n(rng);
    d[i] = x[i] - y[i];  // exact enough: compared with a tolerance below
  }
  const ValueSketch sx = sketch_of(x, rows, cols), sy = sketch_of(y, rows, cols),
                    sd = sketch_of(d, rows, cols), sx2 = sketch_of(x, rows, cols);
  EXPECT_EQ(std::memcmp(sx.v, sx2.v, sizeof sx.v), 0);
  for (uint32_t j = 0; j < kSketchBuckets; ++j) EXPECT_NEAR(sx.v[j] - sy.v[j], sd.v[j], 1e-5);
  // Each element lands in exactly one bucket with sign +-1: the buckets' absolute sum is at most
  // the elements' absolute sum, and the sketch of one element e_p is +-1 in one bucket.
  std::vector<float> e(rows * cols, 0.0f);
  e[5 + 3 * rows] = 2.5f;
  const ValueSketch se = sketch_of(e, rows, cols);
  int nonzero = 0;
  for (double v : se.v) nonzero += v != 0.0;
  EXPECT_EQ(nonzero, 1);
  const SketchSlot slot = sketch_slot(5 + 3 * rows);
  EXPECT_EQ(se.v[slot.bucket], slot.negative ? -2.5 : 2.5);
}

// The pass equals the definition (sketch_slot) applied element by element in position order, bit
// for bit: columns that start and end inside runs of 256, padding between columns.
TEST(ValueSketch, EqualsTheDefinitionElementByElement) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> n(0.0f, 1.0f);
  const uint64_t rows = 37, cols = 29, ld = 41;
  std::vector<float> x(ld * cols);
  for (float& v : x) v = n(rng);
  double ref[kSketchBuckets] = {};
  for (uint64_t j = 0; j < cols; ++j)
    for (uint64_t i = 0; i < rows; ++i) {
      const SketchSlot s = sketch_slot(i + j * rows);
      const double d = x[i + j * ld];
      ref[s.bucket] += s.negative ? -d : d;
    }
  ValueSketch got;
  compute_sketch(x.data(), Format::FP32, rows, cols, ld, &got);
  for (uint32_t b = 0; b < kSketchBuckets; ++b) EXPECT_EQ(got.v[b], ref[b]) << "bucket " << b;
  // One run's 256 positions fill the 256 buckets once each.
  bool seen[kSketchBuckets] = {};
  for (uint64_t p = 512; p < 768; ++p) seen[sketch_slot(p).bucket] = true;
  for (bool s : seen) EXPECT_TRUE(s);
}

TEST(ValueSketch, LayoutAndNonFiniteElementsDoNotMatter) {
  const uint64_t rows = 5, cols = 4, ld = 9;
  std::vector<float> packed(rows * cols), padded(ld * cols, 1e30f);
  for (uint64_t j = 0; j < cols; ++j)
    for (uint64_t i = 0; i < rows; ++i) {
      packed[i + j * rows] = static_cast<float>(i) - 2.0f * static_cast<float>(j);
      padded[i + j * ld] = packed[i + j * rows];
    }
  ValueSketch a, b;
  compute_sketch(packed.data(), Format::FP32, rows, cols, rows, &a);
  compute_sketch(padded.data(), Format::FP32, rows, cols, ld, &b);
  EXPECT_EQ(std::memcmp(a.v, b.v, sizeof a.v), 0);
  std::vector<float> with_nan = packed;
  with_nan[3] = NAN;
  with_nan[7] = INFINITY;
  std::vector<float> zeroed = packed;
  zeroed[3] = 0.0f;
  zeroed[7] = 0.0f;
  ValueSketch c, d;
  compute_sketch(with_nan.data(), Format::FP32, rows, cols, rows, &c);
  compute_sketch(zeroed.data(), Format::FP32, rows, cols, rows, &d);
  EXPECT_EQ(std::memcmp(c.v, d.v, sizeof c.v), 0);
}

TEST(ValueSketch, Bf16StorageSketchesItsValues) {
  const uint64_t rows = 16, cols = 8;
  std::vector<float> f(rows * cols);
  std::vector<uint16_t> b(rows * cols);
  for (size_t i = 0; i < f.size(); ++i) {
    // Values exact in BF16: their FP32 pattern's low half is zero.
    const float v = static_cast<float>(static_cast<int>(i) - 60) * 0.125f;
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    b[i] = static_cast<uint16_t>(bits >> 16);
    f[i] = v;
  }
  ValueSketch sf, sb;
  compute_sketch(f.data(), Format::FP32, rows, cols, rows, &sf);
  compute_sketch(b.data(), Format::BF16, rows, cols, rows, &sb);
  EXPECT_EQ(std::memcmp(sf.v, sb.v, sizeof sf.v), 0);
}

// A batched op (64 slices, as PyTorch's CPU bmm calls sgemm once per slice) whose slices differ
// the same way at the same positions: a plain sum of the slices' sketches would add those
// differences coherently (64x the squared distance); add(o, part) keeps the estimate unbiased.
TEST(ValueSketch, BatchPartsDoNotAddCoherently) {
  std::mt19937_64 rng(11);
  std::normal_distribution<float> n(0.0f, 1.0f);
  const uint64_t rows = 32, cols = 16, parts = 64;
  std::vector<float> delta(rows * cols);
  for (float& v : delta) v = 1e-2f * n(rng);
  int within10 = 0;
  const int trials = 20;
  for (int t = 0; t < trials; ++t) {
    ValueSketch sx, sy;
    double exact2 = 0.0;
    for (uint64_t p = 0; p < parts; ++p) {
      std::vector<float> x(rows * cols), y(rows * cols);
      for (size_t i = 0; i < x.size(); ++i) {
        x[i] = n(rng);
        y[i] = x[i] + delta[i];
      }
      const double e = exact_norm(x, y);
      exact2 += e * e;
      sx.add(sketch_of(x, rows, cols), p);
      sy.add(sketch_of(y, rows, cols), p);
    }
    const double rel = std::abs(sketch_norm(sx, sy) / std::sqrt(exact2) - 1.0);
    within10 += rel <= 0.10;
    EXPECT_LT(rel, 0.3) << "trial " << t;
  }
  EXPECT_GE(within10, trials * 85 / 100);
}

}  // namespace
}  // namespace fpscope
