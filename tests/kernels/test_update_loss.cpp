// The host update-loss pass (kernels/src/update_loss.cpp: blocked, vectorized, fixed-lane sums)
// against a straightforward scalar reference: update_loss.h's per-element step (whose ratio bin
// goes through doubles, not the pass's FP32 fields) folded left to right, the sums in long
// double. Counts and histogram must be equal; each sum within the rounding bound of a
// reordered double sum of positive terms. Random patterns and edge data: zeros of both signs,
// FP32 subnormals, NaN/Inf, updates exactly at half an ulp of BF16/FP16, the formats' overflow.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "fpscope/update_loss.h"

namespace {

struct Reference {
  uint64_t changed = 0, stagnant[2] = {0, 0};
  long double lost[2] = {0, 0}, delta_abs = 0;
  uint64_t hist[fpscope::kRatioBins] = {};
};

Reference reference(const std::vector<float>& prev, const std::vector<float>& cur) {
  Reference r;
  for (size_t i = 0; i < prev.size(); ++i) {
    const fpscope::UpdateLossStep s = fpscope::update_loss_step(prev[i], cur[i]);
    if (!s.changed) continue;
    ++r.changed;
    const long double d = s.delta;
    r.delta_abs += std::fabs(d);
    for (int f = 0; f < 2; ++f) {
      r.stagnant[f] += s.applied[f] == 0.0f;
      r.lost[f] += std::fabs(d - static_cast<long double>(s.applied[f]));
    }
    if (s.ratio_bin >= 0) ++r.hist[s.ratio_bin];
  }
  return r;
}

float bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A double sum of n terms >= 0 in any order is within (n - 1) * 2^-53 * (its exact value) of it
// (to first order); the long double reference is ~2^11 times closer.
// An FP32 delta that overflowed (w_prev, w_cur of opposite signs near max) makes a sum Inf in both.
void expect_sum(double fast, long double ref, size_t n, const char* what) {
  if (std::isinf(ref)) {
    EXPECT_EQ(static_cast<long double>(fast), ref) << what;
    return;
  }
  const long double tol = static_cast<long double>(n) * std::ldexp(1.0L, -52) * ref;
  EXPECT_LE(std::fabs(static_cast<long double>(fast) - ref), tol)
      << what << ": " << fast << " vs " << static_cast<double>(ref) << " (n=" << n << ")";
}

void expect_matches(const std::vector<float>& prev, const std::vector<float>& cur) {
  ASSERT_EQ(prev.size(), cur.size());
  const Reference r = reference(prev, cur);
  fpscope::UpdateLossCounts bf16, fp16;
  uint64_t changed = 0;
  uint64_t hist[fpscope::kRatioBins];
  fpscope::compute_update_loss(prev.data(), cur.data(), prev.size(), &bf16, &fp16, &changed, hist);
  const size_t n = prev.size();
  EXPECT_EQ(changed, r.changed) << "n=" << n;
  EXPECT_EQ(bf16.stagnant, r.stagnant[0]) << "n=" << n;
  EXPECT_EQ(fp16.stagnant, r.stagnant[1]) << "n=" << n;
  expect_sum(bf16.lost_abs, r.lost[0], n, "bf16 lost");
  expect_sum(fp16.lost_abs, r.lost[1], n, "fp16 lost");
  expect_sum(bf16.delta_abs, r.delta_abs, n, "bf16 delta");
  expect_sum(fp16.delta_abs, r.delta_abs, n, "fp16 delta");
  for (int b = 0; b < fpscope::kRatioBins; ++b) EXPECT_EQ(hist[b], r.hist[b]) << "bin " << b;
}

// Edge values: both zeros, the smallest/largest FP32 subnormals, a few normals around BF16's
// and FP16's thresholds (the FP16 normal/subnormal boundary, its max, BF16's max), Inf, NaN.
std::vector<float> edge_values() {
  const float inf = std::numeric_limits<float>::infinity();
  return {0.0f,
          -0.0f,
          bits(1),           // smallest FP32 subnormal
          bits(0x007fffff),  // largest FP32 subnormal
          -bits(0x00400000),
          std::ldexp(1.0f, -126),
          std::ldexp(1.0f, -14),  // FP16's smallest normal
          std::ldexp(1.0f, -24),  // FP16's smallest subnormal
          std::ldexp(1.0f, -25),
          1.0f,
          -1.0f,
          1.0f + std::ldexp(1.0f, -7),  // BF16 odd mantissa
          3.0f,
          65504.0f,  // FP16 max
          65520.0f,  // FP16 max + half ulp: overflows
          70000.0f,
          bits(0x7f7f0000),  // BF16 max
          std::numeric_limits<float>::max(),
          -std::numeric_limits<float>::max(),
          inf,
          -inf,
          std::numeric_limits<float>::quiet_NaN(),
          bits(0xffc00001)};
}

TEST(UpdateLossPass, EveryPairOfEdgeValuesAndEdgeUpdates) {
  const std::vector<float> e = edge_values();
  // Updates of every edge weight: to every edge value, and by +-half an ulp of BF16 and FP16 (the
  // ties), a quarter and three quarters of one, one ulp, and one FP32 ulp.
  std::vector<float> prev, cur;
  for (float p : e) {
    for (float c : e) {
      prev.push_back(p);
      cur.push_back(c);
    }
    if (!std::isfinite(p) || p == 0.0f) continue;
    int ex;
    std::frexp(p, &ex);  // |p| in [2^(ex-1), 2^ex)
    for (int man : {7, 10}) {
      const float ulp = std::ldexp(1.0f, ex - 1 - man);
      for (float k : {0.5f, -0.5f, 0.25f, 0.75f, 1.0f, -1.0f, 1.5f}) {
        prev.push_back(p);
        cur.push_back(p + k * ulp);
      }
    }
    prev.push_back(p);
    cur.push_back(std::nextafter(p, std::numeric_limits<float>::infinity()));
  }
  expect_matches(prev, cur);
}

TEST(UpdateLossPass, HalfUlpTiesHandWorked) {
  // BF16 at w = 1: half an ulp is 2^-8. 1 + 2^-8 ties to even: 1 (stagnant, all lost);
  // (1 + 2^-7) + 2^-8 ties to even: 1 + 2^-6 (applied 2^-7, lost 2^-8).
  // FP16 at w = 1: half an ulp is 2^-11, same two cases one level down.
  const float h8 = std::ldexp(1.0f, -8), h11 = std::ldexp(1.0f, -11);
  const std::vector<float> prev = {1.0f, 1.0f + 2 * h8, 1.0f, 1.0f + 2 * h11};
  const std::vector<float> cur = {1.0f + h8, 1.0f + 3 * h8, 1.0f + h11, 1.0f + 3 * h11};
  fpscope::UpdateLoss l;
  fpscope::add_update_loss(prev.data(), cur.data(), prev.size(), &l);
  EXPECT_EQ(l.changed, 4u);
  // BF16: the first is stagnant; the second applies 2^-7; the FP16 ties (2^-11 and 2^-11 on
  // 1 + 2^-10) are below BF16's half ulp: stagnant.
  EXPECT_EQ(l.bf16.stagnant, 3u);
  EXPECT_EQ(l.bf16.lost_abs, 2 * std::ldexp(1.0, -8) + 2 * std::ldexp(1.0, -11));
  // FP16: the BF16-sized updates apply exactly (2^-8 on 1 and on 1 + 2^-7 are FP16 multiples);
  // 1 + 2^-11 -> 1 (stagnant); (1 + 2^-10) + 2^-11 -> 1 + 2^-9 (applied 2^-10, lost 2^-11).
  EXPECT_EQ(l.fp16.stagnant, 1u);
  EXPECT_EQ(l.fp16.lost_abs, std::ldexp(1.0, -11) + std::ldexp(1.0, -11));
  EXPECT_EQ(l.bf16.delta_abs, 2 * std::ldexp(1.0, -8) + 2 * std::ldexp(1.0, -11));
}

TEST(UpdateLossPass, FP32SubnormalRatiosBinLikeDoubles) {
  // Both operands FP32 subnormals (the pass normalizes them in FP32 fields; the reference in
  // double): 2^-140 / 2^-130 -> bin -10; 3 * 2^-149 / 2^-148 -> floor(log2 1.5) = 0.
  const std::vector<float> prev = {std::ldexp(1.0f, -130), std::ldexp(1.0f, -148), 1.0f};
  const std::vector<float> cur = {std::ldexp(1.0f, -130) + std::ldexp(1.0f, -140),
                                  std::ldexp(1.0f, -148) + 3 * std::ldexp(1.0f, -149),
                                  1.0f + std::ldexp(1.0f, -20)};
  fpscope::UpdateLoss l;
  fpscope::add_update_loss(prev.data(), cur.data(), prev.size(), &l);
  EXPECT_EQ(l.changed, 3u);
  EXPECT_EQ(l.ratio_hist[-10 - fpscope::kRatioLog2Min], 1u);
  EXPECT_EQ(l.ratio_hist[0 - fpscope::kRatioLog2Min], 1u);
  EXPECT_EQ(l.ratio_hist[-20 - fpscope::kRatioLog2Min], 1u);
  expect_matches(prev, cur);
}

TEST(UpdateLossPass, RandomPatternsAndTrainingLikeUpdatesOfEverySize) {
  std::mt19937 g(21);
  std::normal_distribution<float> w(0.0f, 0.05f);
  std::uniform_int_distribution<int> scale(-30, 0);
  // Sizes around the pass's lane group (16) and block (512).
  for (size_t n : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{511}, size_t{512},
                   size_t{513}, size_t{1040}, size_t{100003}}) {
    std::vector<float> prev(n), cur(n);
    for (size_t i = 0; i < n; ++i) {
      switch (g() % 4) {
        case 0:  // arbitrary patterns: every class, NaN/Inf included
          prev[i] = bits(static_cast<uint32_t>(g()));
          cur[i] = bits(static_cast<uint32_t>(g()));
          break;
        case 1:  // an unchanged weight
          prev[i] = cur[i] = w(g);
          break;
        default:  // an optimizer-sized update of 2^-30 .. 1 relative
          prev[i] = w(g);
          cur[i] = prev[i] + prev[i] * std::ldexp(w(g), scale(g));
      }
    }
    expect_matches(prev, cur);
  }
}

TEST(UpdateLossPass, PiecesOfWholeBlocksAddUpToOnePass) {
  // probe/src/weight_watch.cpp measures a gathered watch 4096 positions at a time: pieces of
  // whole 512-element blocks must give exactly the sums of one pass (same lanes, same order).
  std::mt19937 g(7);
  std::normal_distribution<float> w(0.0f, 1.0f);
  const size_t n = 3 * 4096 + 100;
  std::vector<float> prev(n), cur(n);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = w(g);
    cur[i] = prev[i] + 1e-3f * w(g);
  }
  fpscope::UpdateLoss one, pieces;
  fpscope::add_update_loss(prev.data(), cur.data(), n, &one);
  for (size_t i = 0; i < n; i += 4096)
    fpscope::add_update_loss(prev.data() + i, cur.data() + i, std::min<size_t>(4096, n - i),
                             &pieces);
  EXPECT_EQ(one.changed, pieces.changed);
  EXPECT_EQ(one.bf16.stagnant, pieces.bf16.stagnant);
  EXPECT_EQ(one.bf16.lost_abs, pieces.bf16.lost_abs);
  EXPECT_EQ(one.fp16.lost_abs, pieces.fp16.lost_abs);
  EXPECT_EQ(one.bf16.delta_abs, pieces.bf16.delta_abs);
  EXPECT_GT(one.bf16.stagnant, 0u);
}

}  // namespace
