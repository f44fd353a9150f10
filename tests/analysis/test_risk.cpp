// Format risk per tensor: totals, fractions, SQNR, first steps, trend, severity and ordering.
#include <cmath>

#include <gtest/gtest.h>

#include "fpscope/analysis/risk.h"
#include "trace_builder.h"

using namespace fpscope;
using namespace fpscope::analysis;
using fpscope::test::Builder;
using fpscope::test::fi;

namespace {

// Tensor gemm#0.D, steps 0..5, 100 nonzero finite elements each, sum x^2 = 100 per step.
//  FP16: overflow 0,0,0,0,2,4; underflow 1 per step; sum e^2 = 1e-4 per step.
//  BF16: no overflow/underflow; sum e^2 = 1e-2 per step.
//  E4M3: 50 overflows per step, unscaled (scale 1).
// Tensor gemm#1.A: one step (3), 10 elements of which 1 NaN.
// Tensor gemm#2.B: one step, exact in every format (sum e^2 = 0).
Builder make() {
  Builder b;
  const uint32_t d = b.tensor("gemm#0.D", trace::Role::D, 8, 16);
  const uint32_t a = b.tensor("gemm#1.A", trace::Role::A, 2, 5);
  const uint32_t bb = b.tensor("gemm#2.B", trace::Role::B, 5, 2);
  const uint64_t ovf[6] = {0, 0, 0, 0, 2, 4};
  for (uint64_t s = 0; s < 6; ++s) {
    auto& o = b.obs(d, s, 10 * s, 100, 2.0f + static_cast<float>(s), 100.0);
    o.stats.fmt[fi(Format::FP16)].overflow = ovf[s];
    o.stats.fmt[fi(Format::FP16)].underflow = 1;
    o.stats.fmt[fi(Format::FP16)].sum_err2 = 1e-4;
    o.stats.fmt[fi(Format::BF16)].sum_err2 = 1e-2;
    o.stats.fmt[fi(Format::E4M3)].overflow = 50;
  }
  auto& n = b.obs(a, 3, 31, 10, 1.0f, 9.0);
  n.stats.nan = 1;
  b.obs(bb, 3, 32, 10, 1.0f, 10.0);
  return b;
}

}  // namespace

TEST(Risk, TotalsFractionsSqnrFirstSteps) {
  const auto b = make();
  const trace::TraceModel m(b.t);
  const auto rows = analyze_risk(m);
  ASSERT_EQ(rows.size(), 3u);
  const TensorRisk* d = nullptr;
  for (const auto& r : rows)
    if (r.id == "gemm#0.D") d = &r;
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->observations, 6u);
  EXPECT_EQ(d->elements, 600u);
  EXPECT_FLOAT_EQ(d->amax, 7.0f);  // max of 2..7
  EXPECT_EQ(d->first_step, 0u);
  EXPECT_EQ(d->last_step, 5u);
  const auto& h = d->formats[fi(Format::FP16)];
  EXPECT_EQ(h.eligible, 600u);
  EXPECT_EQ(h.overflow, 6u);                // 2 + 4
  EXPECT_DOUBLE_EQ(h.overflow_frac, 0.01);  // 6 / 600
  EXPECT_EQ(h.underflow, 6u);
  EXPECT_DOUBLE_EQ(h.underflow_frac, 0.01);
  EXPECT_EQ(h.first_overflow_step, 4);
  EXPECT_EQ(h.first_underflow_step, 0);
  EXPECT_EQ(h.first_subnormal_step, -1);
  EXPECT_EQ(h.overflow_steps, 2u);
  // FP16 overflows (6 elements): SQNR undefined, although 10 log10(600 / 6e-4) would say 60 dB.
  EXPECT_TRUE(std::isnan(h.sqnr_db));
  // BF16: 10 log10(600 / 6e-2) = 40 dB.
  EXPECT_NEAR(d->formats[fi(Format::BF16)].sqnr_db, 40.0, 1e-9);
  EXPECT_FALSE(h.scaled);
}

TEST(Risk, TrendComparesFirstAndLastThird) {
  const auto b = make();
  const trace::TraceModel m(b.t);
  const auto rows = analyze_risk(m);
  const TensorRisk* d = nullptr;
  for (const auto& r : rows)
    if (r.id == "gemm#0.D") d = &r;
  ASSERT_NE(d, nullptr);
  const auto& h = d->formats[fi(Format::FP16)];
  // 6 steps: thirds of 2. First: (0+1)/100 and (0+1)/100 -> 0.01. Last: (2+1)/100, (4+1)/100
  // -> mean 0.04 > 2 * 0.01: worsening. SQNR: 60 dB in the first third, undefined in the last
  // (overflow at steps 4, 5): delta undefined, reported as 0.
  EXPECT_NEAR(h.risk_frac_first, 0.01, 1e-12);
  EXPECT_NEAR(h.risk_frac_last, 0.04, 1e-12);
  EXPECT_NEAR(h.sqnr_delta_db, 0.0, 1e-9);
  EXPECT_EQ(h.trend, Trend::Worsening);
  // BF16: no overflow/underflow, constant SQNR: stable.
  EXPECT_EQ(d->formats[fi(Format::BF16)].trend, Trend::Stable);
  // A tensor with a single step has no trend.
  for (const auto& r : rows) {
    if (r.id == "gemm#2.B") {
      EXPECT_EQ(r.formats[fi(Format::FP16)].trend, Trend::Unknown);
    }
  }
}

TEST(Risk, SeverityAndOrdering) {
  const auto b = make();
  const trace::TraceModel m(b.t);
  const auto rows = analyze_risk(m);
  ASSERT_EQ(rows.size(), 3u);
  // gemm#1.A holds a NaN: critical, 4000 + round((log10(1/10) + 7) / 7 * 999) = 4000 + 856.
  EXPECT_EQ(rows[0].id, "gemm#1.A");
  EXPECT_EQ(rows[0].severity, Severity::Critical);
  EXPECT_EQ(rows[0].score, 4856);
  EXPECT_EQ(rows[0].first_nonfinite_step, 3);
  EXPECT_EQ(rows[0].nan, 1u);
  // gemm#0.D: FP16 overflow (Error): 3000 + round((log10(0.01) + 7) / 7 * 999) = 3000 + 714.
  // Its other problems rank lower: FP16 underflow 1% (Warning 2714), BF16 SQNR 40 < 53.16 - 10
  // (Warning), unscaled E4M3 overflow (capped at Info). FP16 SQNR is undefined (overflow).
  EXPECT_EQ(rows[1].id, "gemm#0.D");
  EXPECT_EQ(rows[1].severity, Severity::Error);
  EXPECT_EQ(rows[1].score, 3714);
  EXPECT_EQ(rows[1].severity_format, Format::FP16);
  // gemm#2.B: exact everywhere: no severity, SQNR +inf.
  EXPECT_EQ(rows[2].id, "gemm#2.B");
  EXPECT_EQ(rows[2].severity, Severity::None);
  EXPECT_TRUE(std::isinf(rows[2].formats[fi(Format::FP16)].sqnr_db));

  // Unscaled E4M3 overflow is capped at Info; the same counts at a recorded scale are an Error.
  FormatRisk e;
  e.format = Format::E4M3;
  e.eligible = 600;
  e.overflow = 300;
  e.overflow_frac = 0.5;
  e.first_overflow_step = 0;
  e.sqnr_db = 100;
  int score = 0;
  EXPECT_EQ(format_severity(e, RiskOptions{}, &score, nullptr), Severity::Info);
  e.scaled = true;
  EXPECT_EQ(format_severity(e, RiskOptions{}, &score, nullptr), Severity::Error);
  // (log10(0.5) + 7) / 7 * 999 = 956.0 -> 3956.
  EXPECT_EQ(score, 3956);
}

TEST(Risk, UnderflowThresholds) {
  FormatRisk r;
  r.format = Format::FP16;
  r.eligible = 1000;
  r.sqnr_db = 100;
  r.underflow = 9;
  r.underflow_frac = 0.009;  // below 1%: nothing
  EXPECT_EQ(format_severity(r, RiskOptions{}, nullptr, nullptr), Severity::None);
  r.underflow = 10;
  r.underflow_frac = 0.01;  // 1%: warning
  EXPECT_EQ(format_severity(r, RiskOptions{}, nullptr, nullptr), Severity::Warning);
  r.underflow = 100;
  r.underflow_frac = 0.1;  // 10%: error
  EXPECT_EQ(format_severity(r, RiskOptions{}, nullptr, nullptr), Severity::Error);
}

// docs/design.md "Numerics definitions": e = x - cast(y)/s over elements that did NOT overflow, so
// sum e^2 leaves the overflowed elements out while sum x^2 keeps them. A format that overflows
// has an undefined SQNR (its non-saturating cast's error is infinite), not a flattering one.
TEST(Risk, SqnrUndefinedWhenTheFormatOverflows) {
  Builder b;
  const uint32_t t = b.tensor("gemm#0.D");
  // Step 0: 100 elements, sum x^2 = 1e6; E4M3 overflows 92 of them and the 8 others have
  // sum e^2 = 1e-3: 10 log10(1e6 / 1e-3) = 90 dB if the overflow were ignored. FP16 does not
  // overflow: sum e^2 = 1e-4 -> 100 dB.
  auto& o0 = b.obs(t, 0, 0, 100, 1000.0f, 1e6);
  o0.stats.fmt[fi(Format::E4M3)].overflow = 92;
  o0.stats.fmt[fi(Format::E4M3)].sum_err2 = 1e-3;
  o0.stats.fmt[fi(Format::FP16)].sum_err2 = 1e-4;
  // Step 1: nothing overflows; E4M3 sum e^2 = 1 -> 10 log10(1e6 / 1) = 60 dB for that step.
  auto& o1 = b.obs(t, 1, 1, 100, 10.0f, 1e6);
  o1.stats.fmt[fi(Format::E4M3)].sum_err2 = 1.0;
  o1.stats.fmt[fi(Format::FP16)].sum_err2 = 1e-4;
  const trace::TraceModel m(b.t);
  const auto rows = analyze_risk(m);
  ASSERT_EQ(rows.size(), 1u);
  // Over the run: E4M3 overflowed (92 > 0): undefined. FP16: 10 log10(2e6 / 2e-4) = 100 dB.
  EXPECT_TRUE(std::isnan(rows[0].formats[fi(Format::E4M3)].sqnr_db));
  EXPECT_NEAR(rows[0].formats[fi(Format::FP16)].sqnr_db, 100.0, 1e-9);
  // The shared definition itself.
  EXPECT_TRUE(std::isnan(sqnr_db(1e6, 1e-3, 92)));
  EXPECT_NEAR(sqnr_db(1e6, 1e-3, 0), 90.0, 1e-9);
  EXPECT_TRUE(std::isinf(sqnr_db(1e6, 0.0, 0)));
  EXPECT_TRUE(std::isnan(sqnr_db(0.0, 0.0, 0)));
  EXPECT_TRUE(std::isnan(sqnr_db(b.t.observations[0].stats, fi(Format::E4M3))));
  EXPECT_NEAR(sqnr_db(b.t.observations[1].stats, fi(Format::E4M3)), 60.0, 1e-9);
}
