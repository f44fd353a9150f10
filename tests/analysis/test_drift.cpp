// Drift within a run (series, change points) and between runs (matching, amax ratio, SQNR delta,
// first step beyond the thresholds).
#include <cmath>

#include <gtest/gtest.h>

#include "fpscope/analysis/drift.h"
#include "trace_builder.h"

using namespace fpscope;
using namespace fpscope::analysis;
using fpscope::test::Builder;
using fpscope::test::fi;

TEST(Drift, SeriesAndChangePoints) {
  Builder b;
  const uint32_t t = b.tensor("gemm#0.D");
  // amax 1,1,1,1,8,8; FP16 sum e^2 1e-4 (60 dB at sum x^2 = 100) then 1e-2 (40 dB) at steps 4, 5.
  const float amax[6] = {1, 1, 1, 1, 8, 8};
  for (uint64_t s = 0; s < 6; ++s) {
    auto& o = b.obs(t, s, s, 10, amax[s], 100.0);
    o.stats.fmt[fi(Format::FP16)].sum_err2 = s < 4 ? 1e-4 : 1e-2;
    o.stats.fmt[fi(Format::FP16)].overflow = s == 5 ? 5 : 0;
  }
  const trace::TraceModel m(b.t);
  const auto d = drift_series(m, t);
  ASSERT_EQ(d.steps.size(), 6u);
  EXPECT_FLOAT_EQ(d.amax[4], 8.0f);
  EXPECT_NEAR(d.sqnr_db[fi(Format::FP16)][0], 60.0, 1e-9);
  EXPECT_NEAR(d.sqnr_db[fi(Format::FP16)][4], 40.0, 1e-9);
  EXPECT_DOUBLE_EQ(d.overflow_frac[fi(Format::FP16)][5], 0.5);  // 5 of 10
  EXPECT_TRUE(std::isnan(d.sqnr_db[fi(Format::BF16)][0]) ||
              std::isinf(d.sqnr_db[fi(Format::BF16)][0]));
  // Step 4: amax 8 vs median(1,1,1,1) = 1: ratio 8 >= 4 -> change point; the window restarts,
  // so step 5 (one earlier point in the new window) is not. Same for FP16 SQNR 40 vs 60.
  ASSERT_EQ(d.change_points.size(), 2u);
  EXPECT_EQ(d.change_points[0].step, 4u);
  EXPECT_EQ(d.change_points[0].series, "amax");
  EXPECT_DOUBLE_EQ(d.change_points[0].before, 1.0);
  EXPECT_DOUBLE_EQ(d.change_points[0].after, 8.0);
  EXPECT_EQ(d.change_points[1].step, 4u);
  EXPECT_EQ(d.change_points[1].series, "sqnr_fp16");
  EXPECT_NEAR(d.change_points[1].before, 60.0, 1e-9);
  EXPECT_NEAR(d.change_points[1].after, 40.0, 1e-9);
}

TEST(Drift, CrossRunMatchingAndDivergence) {
  Builder base, other;
  // Matched by id: gemm#0.D 4x4 D (FP32 in base, BF16 in the other run: dtype may differ).
  const uint32_t b0 = base.tensor("gemm#0.D", trace::Role::D, 4, 4, Format::FP32);
  // Matched by name only: ids differ.
  const uint32_t b1 = base.tensor("gemm#1.A", trace::Role::A, 2, 3, Format::FP32, "fc1");
  // Unmatched: the other run's gemm#2.B has another shape.
  const uint32_t b2 = base.tensor("gemm#2.B", trace::Role::B, 3, 3);
  const uint32_t o0 = other.tensor("gemm#0.D", trace::Role::D, 4, 4, Format::BF16);
  const uint32_t o2 = other.tensor("gemm#2.B", trace::Role::B, 3, 4);
  const uint32_t o1 = other.tensor("gemm#5.A", trace::Role::A, 2, 3, Format::FP32, "fc1");
  const float amax_o[4] = {1, 1, 3, 3};
  const double err_o[4] = {1e-4, 1e-4, 1e-2, 1e-2};
  for (uint64_t s = 0; s < 4; ++s) {
    base.obs(b0, s, 3 * s, 16, 1.0f, 100.0).stats.fmt[fi(Format::FP16)].sum_err2 = 1e-4;
    other.obs(o0, s, 3 * s, 16, amax_o[s], 100.0).stats.fmt[fi(Format::FP16)].sum_err2 = err_o[s];
    // fc1: same amax; the other run's FP16 SQNR falls from 60 to 50 dB at step 1.
    base.obs(b1, s, 3 * s + 1, 6, 2.0f, 100.0).stats.fmt[fi(Format::FP16)].sum_err2 = 1e-4;
    other.obs(o1, s, 3 * s + 1, 6, 2.0f, 100.0).stats.fmt[fi(Format::FP16)].sum_err2 =
        s == 0 ? 1e-4 : 1e-3;
    base.obs(b2, s, 3 * s + 2, 9, 1.0f, 1.0);
    other.obs(o2, s, 3 * s + 2, 12, 1.0f, 1.0);
  }
  const trace::TraceModel mb(base.t), mo(other.t);
  const auto m = match_tensors(mb, mo);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].base, b0);
  EXPECT_EQ(m[0].other, o0);
  EXPECT_FALSE(m[0].by_name);
  EXPECT_EQ(m[1].base, b1);
  EXPECT_EQ(m[1].other, o1);
  EXPECT_TRUE(m[1].by_name);

  const auto d = compare_runs(mb, mo);  // thresholds: amax x2, SQNR -3 dB
  ASSERT_EQ(d.size(), 2u);
  // gemm#0.D: amax 1 -> 3: ratio 3. Per step ratios 1,1,3,3: first beyond x2 at step 2.
  EXPECT_DOUBLE_EQ(d[0].amax_ratio, 3.0);
  EXPECT_EQ(d[0].first_step_beyond, 2);
  EXPECT_EQ(d[0].first_beyond_reason, "amax ratio 3");
  // SQNR base 10 log10(400 / 4e-4) = 60; other 10 log10(400 / 0.0202) = 42.9671 dB.
  const int h = fi(Format::FP16);
  EXPECT_NEAR(d[0].base_sqnr_db[h], 60.0, 1e-9);
  EXPECT_NEAR(d[0].other_sqnr_db[h], 10.0 * std::log10(400.0 / 0.0202), 1e-9);
  EXPECT_NEAR(d[0].sqnr_delta_db[h], 10.0 * std::log10(400.0 / 0.0202) - 60.0, 1e-9);
  EXPECT_NEAR(d[0].sqnr_delta_db[h], -17.0329, 1e-4);
  // BF16 had no error recorded in either run (+inf): delta undefined.
  EXPECT_TRUE(std::isnan(d[0].sqnr_delta_db[fi(Format::BF16)]));
  // fc1: amax ratio 1; per step FP16 SQNR 60 vs 50 at step 1: drop 10 > 3 -> beyond at step 1.
  EXPECT_DOUBLE_EQ(d[1].amax_ratio, 1.0);
  EXPECT_EQ(d[1].first_step_beyond, 1);
  EXPECT_EQ(d[1].first_beyond_reason, "fp16 SQNR -10.0 dB");
  EXPECT_EQ(d[1].steps.size(), 4u);
}
