// Cross-run value difference from the value sketches (drift.h "Value difference"), its diff
// outputs, and the N-run compare report (compare.h), on traces built in memory.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fpscope/analysis/compare.h"
#include "fpscope/analysis/diff.h"
#include "fpscope/analysis/findings.h"
#include "fpscope/value_sketch.h"
#include "golden_files.h"
#include "trace_builder.h"

using namespace fpscope;
using namespace fpscope::analysis;
using fpscope::test::Builder;
using fpscope::test::fi;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The sketch of a column-major rows x cols float array, as the writer stores it (floats).
std::vector<float> sketch_of(const std::vector<float>& x, uint64_t rows, uint64_t cols) {
  ValueSketch s;
  compute_sketch(x.data(), Format::FP32, rows, cols, rows, &s);
  return std::vector<float>(s.v, s.v + kSketchBuckets);
}

double sum_sq(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return s;
}

// An observation of tensor t at step s carrying sketch `v` and sum of squares `ss`.
void obs_with_sketch(Builder& b, uint32_t t, uint64_t step, uint64_t seq, double ss,
                     std::vector<float> v) {
  b.obs(t, step, seq, 16, 1.0f, ss);
  b.t.sketches.push_back({static_cast<uint32_t>(b.t.observations.size() - 1), std::move(v)});
}

// A crafted sketch pair: base bucket 0 = 10 with sum_sq 100 (norm 10); other bucket 0 = 10 + 10r:
// estimated ||other - base|| / ||base|| = r (up to float rounding).
std::vector<float> bucket0(double v) {
  std::vector<float> s(kSketchBuckets, 0.0f);
  s[0] = static_cast<float>(v);
  return s;
}

}  // namespace

// The estimate against the exact ||y - x|| / ||x|| on 200 random pairs of three difference
// shapes. The sketch's relative standard deviation on the norm is ~4.4 %: at least 95 % within
// 10 %, all within 25 %.
TEST(CrossRunDifference, SketchEstimateMatchesExactRelativeDifference) {
  const uint64_t rows = 48, cols = 40;
  std::mt19937_64 rng(20261204);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uni(-1.0, 1.0);
  Builder base, other;
  const uint32_t tb = base.tensor("gemm#0.D", trace::Role::D, rows, cols);
  const uint32_t to = other.tensor("gemm#0.D", trace::Role::D, rows, cols);
  std::vector<double> exact;
  for (uint64_t step = 0; step < 200; ++step) {
    const double amp = static_cast<double>(1 + step % 7);
    std::vector<float> x(rows * cols), y;
    for (auto& v : x) v = static_cast<float>(normal(rng) * amp);
    y = x;
    const double scale = std::pow(10.0, -3.0 + 3.0 * static_cast<double>(step % 11) / 10.0);
    switch (step % 3) {
      case 0:  // uniform noise everywhere
        for (auto& v : y) v += static_cast<float>(scale * uni(rng) * amp);
        break;
      case 1: {  // one row (column-major: positions i + j * rows) differs
        const uint64_t i = step % rows;
        for (uint64_t j = 0; j < cols; ++j) y[i + j * rows] *= static_cast<float>(1.0 + 10 * scale);
        break;
      }
      default:  // a few elements
        for (int k = 0; k < 5; ++k)
          y[(step * 131 + k * 977) % y.size()] += static_cast<float>(30 * scale * amp);
    }
    double d2 = 0;
    for (size_t p = 0; p < x.size(); ++p) {
      const double d = static_cast<double>(y[p]) - x[p];
      d2 += d * d;
    }
    exact.push_back(std::sqrt(d2 / sum_sq(x)));
    obs_with_sketch(base, tb, step, step, sum_sq(x), sketch_of(x, rows, cols));
    obs_with_sketch(other, to, step, step, sum_sq(y), sketch_of(y, rows, cols));
  }
  const trace::TraceModel mb(base.t), mo(other.t);
  const auto drift = compare_runs(mb, mo);
  ASSERT_EQ(drift.size(), 1u);
  const auto& d = drift[0];
  ASSERT_EQ(d.rel_diff_series.size(), 200u);
  int within10 = 0;
  double worst = 0;
  for (size_t i = 0; i < 200; ++i) {
    ASSERT_GT(exact[i], 0.0);
    const double err = std::fabs(d.rel_diff_series[i] - exact[i]) / exact[i];
    within10 += err <= 0.10;
    worst = std::max(worst, err);
  }
  RecordProperty("within_10pct", within10);  // --gtest_output=xml shows them
  RecordProperty("worst_rel_error_permille", static_cast<int>(worst * 1000));
  EXPECT_GE(within10, 190) << "worst relative error " << worst;
  EXPECT_LE(worst, 0.25);
  // Against the thresholds: the first steps are those of the estimated series.
  EXPECT_EQ(d.first_step_rel_1pct, first_step_above(d.steps, d.rel_diff_series, 0.01));
  EXPECT_GE(d.first_step_rel_1pct, 0);
  EXPECT_NEAR(d.max_rel_diff, *std::max_element(exact.begin(), exact.end()),
              0.25 * *std::max_element(exact.begin(), exact.end()));
}

TEST(CrossRunDifference, FirstStepAboveOnACraftedSeries) {
  const std::vector<uint64_t> steps = {3, 5, 8, 9, 12};
  const std::vector<double> rel = {0.01, kNaN, 0.0101, 0.5, 0.02};
  EXPECT_EQ(first_step_above(steps, rel, 0.01), 8);  // 0.01 itself is not above; NaN never
  EXPECT_EQ(first_step_above(steps, rel, 0.10), 9);
  EXPECT_EQ(first_step_above(steps, rel, 0.6), -1);
  EXPECT_EQ(first_step_above({1, 2}, {kNaN, std::numeric_limits<double>::infinity()}, 0.1), 2);
}

// Per-step merging (order within the step, common prefix), missing sketches, a zero base norm.
TEST(CrossRunDifference, StepMergingAndEdgeCases) {
  Builder base, other;
  const uint32_t a = base.tensor("gemm#0.D"), b = other.tensor("gemm#0.D");
  // Step 0: rel 0.005. Step 1: two observations in base, one in other (common prefix: the
  // first), rel 0.02. Step 2: two in both: dist2 1 + 9 over sum_sq 100 + 900: sqrt(10/1000).
  // Step 3: the other run lacks a sketch: NaN. Step 4: base norm 0, no difference: 0.
  // Step 5: base norm 0, other nonzero: +inf. Step 6: rel 0.2.
  obs_with_sketch(base, a, 0, 0, 100, bucket0(10));
  obs_with_sketch(other, b, 0, 0, 100, bucket0(10.05));
  obs_with_sketch(base, a, 1, 1, 100, bucket0(10));
  obs_with_sketch(base, a, 1, 2, 100, bucket0(50));
  obs_with_sketch(other, b, 1, 1, 100, bucket0(10.2));
  obs_with_sketch(base, a, 2, 3, 100, bucket0(10));
  obs_with_sketch(base, a, 2, 4, 900, bucket0(30));
  obs_with_sketch(other, b, 2, 3, 100, bucket0(11));
  obs_with_sketch(other, b, 2, 4, 900, bucket0(33));
  obs_with_sketch(base, a, 3, 5, 100, bucket0(10));
  other.obs(b, 3, 5, 16, 1.0f, 100);  // no sketch
  obs_with_sketch(base, a, 4, 6, 0, bucket0(0));
  obs_with_sketch(other, b, 4, 6, 0, bucket0(0));
  obs_with_sketch(base, a, 5, 7, 0, bucket0(0));
  obs_with_sketch(other, b, 5, 7, 4, bucket0(2));
  obs_with_sketch(base, a, 6, 8, 100, bucket0(10));
  obs_with_sketch(other, b, 6, 8, 100, bucket0(12));
  const trace::TraceModel mb(base.t), mo(other.t);
  const auto drift = compare_runs(mb, mo);
  ASSERT_EQ(drift.size(), 1u);
  const auto& d = drift[0];
  ASSERT_EQ(d.steps.size(), 7u);
  ASSERT_EQ(d.rel_diff_series.size(), 7u);
  EXPECT_NEAR(d.rel_diff_series[0], 0.005, 1e-6);
  EXPECT_NEAR(d.rel_diff_series[1], 0.02, 1e-6);
  EXPECT_NEAR(d.rel_diff_series[2], std::sqrt(10.0 / 1000.0), 1e-6);
  EXPECT_TRUE(std::isnan(d.rel_diff_series[3]));
  EXPECT_EQ(d.rel_diff_series[4], 0.0);
  EXPECT_TRUE(std::isinf(d.rel_diff_series[5]));
  EXPECT_NEAR(d.rel_diff_series[6], 0.2, 1e-6);
  EXPECT_EQ(d.first_step_rel_1pct, 1);
  EXPECT_EQ(d.first_step_rel_10pct, 5);
  EXPECT_TRUE(std::isinf(d.max_rel_diff));
  EXPECT_TRUE(d.has_rel_diff());
  EXPECT_EQ(other.t.sketch_of(10), nullptr);  // the unsketched observation of step 3
}

// Traces without sketches: the value-difference fields are NaN / -1 and the rest unchanged.
TEST(CrossRunDifference, NoSketchesLeavesTheOldFieldsAlone) {
  Builder base, other;
  const uint32_t a = base.tensor("gemm#0.D"), b = other.tensor("gemm#0.D");
  for (uint64_t s = 0; s < 3; ++s) {
    base.obs(a, s, s, 16, 1.0f, 10);
    other.obs(b, s, s, 16, s == 2 ? 5.0f : 1.0f, 10);
  }
  const trace::TraceModel mb(base.t), mo(other.t);
  const auto d = compare_runs(mb, mo).at(0);
  EXPECT_EQ(d.first_step_beyond, 2);
  EXPECT_EQ(d.rel_diff_series.size(), 3u);
  for (double r : d.rel_diff_series) EXPECT_TRUE(std::isnan(r));
  EXPECT_EQ(d.first_step_rel_1pct, -1);
  EXPECT_EQ(d.first_step_rel_10pct, -1);
  EXPECT_FALSE(d.has_rel_diff());
  EXPECT_TRUE(rank_by_divergence({d}).empty());
}

TEST(CrossRunDifference, RankByDivergence) {
  std::vector<CrossRunDrift> v(5);
  auto set = [&](size_t i, int64_t s1, int64_t s10, double mx) {
    v[i].match.base = static_cast<uint32_t>(i);
    v[i].first_step_rel_1pct = s1;
    v[i].first_step_rel_10pct = s10;
    v[i].max_rel_diff = mx;
  };
  set(0, -1, -1, 0.005);
  set(1, 4, -1, 0.05);
  set(2, 4, 6, 0.3);
  set(3, 2, -1, 0.02);
  set(4, -1, -1, kNaN);  // not measurable: left out
  EXPECT_EQ(rank_by_divergence(v), (std::vector<size_t>{3, 2, 1, 0}));
}

namespace {

// Two runs with sketches: tensor gemm#0.D differs by 0.5 %, 2 %, 20 % over steps 0..2;
// gemm#1.D by 0.1 % throughout.
struct SketchedPair {
  Builder base, neu;
  SketchedPair() {
    const double rel0[3] = {0.005, 0.02, 0.2};
    for (int k = 0; k < 2; ++k) {
      const std::string id = k == 0 ? "gemm#0.D" : "gemm#1.D";
      const uint32_t a = base.tensor(id), b = neu.tensor(id);
      for (uint64_t s = 0; s < 3; ++s) {
        const uint64_t seq = s * 2 + static_cast<uint64_t>(k);
        obs_with_sketch(base, a, s, seq, 100, bucket0(10));
        obs_with_sketch(neu, b, s, seq, 100, bucket0(10 + 10 * (k == 0 ? rel0[s] : 0.001)));
      }
    }
    // Observations must stay in file order for the sketches' binary search.
  }
};

}  // namespace

TEST(CrossRunDifference, DiffOutputsAndDivergenceRule) {
  SketchedPair p;
  const trace::TraceModel mb(p.base.t), mn(p.neu.t);
  AnalysisOptions ao;
  ao.run_whatif = false;
  ao.run_drift = false;
  const auto ab = analyze(mb, ao), an = analyze(mn, ao);
  const DiffResult d = diff_runs(mb, ab, mn, an, DiffRules{});
  ASSERT_TRUE(d.sketches);
  for (const auto& r : d.regressions) EXPECT_NE(r.rule, "divergence");  // off by default
  const std::string text = diff_text(d, p.base.t, p.neu.t);
  EXPECT_NE(text.find("value difference (sketches): 1 of 2 matched tensors differ by more than "
                      "1%:\n  gemm#0.D: > 1% from step 1, > 10% from step 2, max 20%\n"),
            std::string::npos)
      << text;
  const std::string md = diff_markdown(d, p.base.t, p.neu.t);
  EXPECT_NE(md.find("| gemm\\#0.D | 1 | 2 | 20% |\n| gemm\\#1.D | - | - | 0.1% |\n"),
            std::string::npos)
      << md;
  const auto j = diff_json(d, DiffRules{});
  ASSERT_TRUE(j.contains("value_difference"));
  EXPECT_EQ(j["value_difference"][0]["first_step_rel_10pct"], 2);
  EXPECT_TRUE(j["value_difference"][1]["first_step_rel_1pct"].is_null());
  EXPECT_FALSE(j["rules"].contains("divergence"));

  DiffRules rules;
  std::string err;
  ASSERT_TRUE(parse_fail_on("divergence=0.015", &rules, &err)) << err;
  EXPECT_TRUE(rules.divergence);
  EXPECT_FALSE(rules.amax);
  EXPECT_DOUBLE_EQ(rules.divergence_max, 0.015);
  const DiffResult g = diff_runs(mb, ab, mn, an, rules);
  ASSERT_EQ(g.regressions.size(), 1u);
  EXPECT_EQ(g.regressions[0].rule, "divergence");
  EXPECT_EQ(g.regressions[0].message,
            "gemm#0.D: values differ from base by 2% at step 1 (limit 1.5%; max 20%)");
  EXPECT_EQ(diff_json(g, rules)["rules"]["divergence"], 0.015);
  ASSERT_TRUE(parse_fail_on("all", &rules, &err));
  EXPECT_FALSE(rules.divergence);  // not part of "all"
  EXPECT_FALSE(parse_fail_on("divergence=-1", &rules, &err));
}

TEST(CrossRunDifference, BaselineFindingEvidenceGainsTheValueDifference) {
  SketchedPair p;
  // gemm#0.D's amax grows x4 at step 2 so that a baseline_drift finding exists.
  p.neu.t.observations[2].stats.amax = 4.0f;
  const trace::TraceModel mb(p.base.t), mn(p.neu.t);
  const auto f = baseline_findings(mb, compare_runs(mb, mn), FindingOptions{});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_NE(f[0].evidence.find("; value difference: max 20%, > 1% from step 1, > 10% from step 2"),
            std::string::npos)
      << f[0].evidence;
}

namespace {

// Three runs of a 50-step program: fp32 (reference), bf16, e4m3. Tensors: embed (named, role W
// via an "A" operand), gemm#1.D, logits (the last GEMM output).
struct ThreeRuns {
  Builder run[3];
  ThreeRuns(bool losses = true) {
    const char* emulate[3] = {"off", "bf16", "e4m3:current"};
    for (int r = 0; r < 3; ++r) {
      Builder& b = run[r];
      b.t.path = std::string("runs/") + (r == 0 ? "fp32" : r == 1 ? "bf16" : "e4m3") + ".fpst";
      b.t.metadata_json = std::string(R"({"config": {"emulate": ")") + emulate[r] + R"("}})";
      const uint32_t x = b.tensor("gemm#0.A", trace::Role::A, 4, 4, Format::FP32, "embed");
      const uint32_t h = b.tensor("gemm#1.D", trace::Role::D);
      const uint32_t lg = b.tensor("gemm#2.D", trace::Role::D, 4, 4, Format::FP32, "logits");
      for (uint64_t s = 0; s < 50; ++s) {
        // rel diffs per run and tensor: bf16 grows slowly, e4m3 fast; logits follow.
        const double g = static_cast<double>(s) / 49.0;
        const double rx[3] = {0, 0.002 + 0.01 * g, 0.008 + 0.3 * g};
        const double rh[3] = {0, 0.004 + 0.02 * g, 0.03 + 0.2 * g};
        const double rl[3] = {0, 0.001 + 0.2 * g * g, 0.02 + 0.5 * g};
        obs_with_sketch(b, x, s, 3 * s, 100, bucket0(10 + 10 * rx[r]));
        obs_with_sketch(b, h, s, 3 * s + 1, 100, bucket0(10 + 10 * rh[r]));
        obs_with_sketch(b, lg, s, 3 * s + 2, 100, bucket0(10 + 10 * rl[r]));
        b.t.observations.back().stats.count = 4096;
        if (r == 2) {  // the e4m3 run's logits underflow E4M3 and overflow a little
          b.t.observations.back().stats.fmt[fi(Format::E4M3)].underflow = 100 + s;
          b.t.observations.back().stats.fmt[fi(Format::E4M3)].overflow = s / 10;
        }
        if (r == 0) b.t.observations.back().stats.fmt[fi(Format::E4M3)].underflow = 7;
        if (losses) {
          const double loss = 2.0 * std::exp(-0.05 * static_cast<double>(s));
          const double drift[3] = {0, 0.001 * g, 0.05 * g};
          b.t.losses.push_back({s, loss * (1 + drift[r]), s});
          if (s % 10 == 0) b.t.losses.push_back({s, loss * (1 + drift[r]) + 0.1, s});  // 2 records
        }
      }
    }
  }
};

}  // namespace

TEST(CompareReport, RankingEvidenceAndLoss) {
  ThreeRuns t;
  const trace::TraceModel m0(t.run[0].t), m1(t.run[1].t), m2(t.run[2].t);
  const CompareReport r = compare_report(
      {{"fp32", &t.run[0].t, &m0}, {"bf16", &t.run[1].t, &m1}, {"e4m3", &t.run[2].t, &m2}});
  ASSERT_EQ(r.runs.size(), 3u);
  EXPECT_EQ(r.runs[0].emulate, "");
  EXPECT_EQ(r.runs[2].emulate, "e4m3:current");
  EXPECT_EQ(r.runs[1].steps, 50u);
  ASSERT_TRUE(r.losses);
  ASSERT_EQ(r.loss_rows.size(), 50u);
  // Step 10: two loss records per run: their mean.
  const double l10 = 2.0 * std::exp(-0.5);
  EXPECT_NEAR(r.loss_rows[10].value[0], l10 + 0.05, 1e-12);
  EXPECT_NEAR(r.loss_rows[49].rel_diff[2], 0.05, 1e-9);  // e4m3's loss 5 % above fp32's
  ASSERT_EQ(r.others.size(), 2u);
  // e4m3: every tensor over 1 % at some step; embed from step 1 (0.8 % at 0), gemm#1.D from
  // step 0 (3 %), logits from 0 (2 %): those two ordered by their step > 10 %.
  const auto& e = r.others[1];
  EXPECT_EQ(e.measurable, 3u);
  EXPECT_EQ(e.diverging, 3u);
  ASSERT_EQ(e.ranked.size(), 3u);
  EXPECT_EQ(e.ranked[0].name, "logits");    // > 1 % at 0, > 10 % at step 8 (0.02 + 0.5 g)
  EXPECT_EQ(e.ranked[1].name, "gemm#1.D");  // > 1 % at 0, > 10 % at step 18
  EXPECT_EQ(e.ranked[2].name, "embed");     // > 1 % at 1
  EXPECT_EQ(e.drift[e.ranked[0].drift].first_step_rel_10pct, 8);
  EXPECT_EQ(e.drift[e.ranked[1].drift].first_step_rel_10pct, 18);
  EXPECT_EQ(e.ranked[2].role, "A");
  EXPECT_NEAR(e.ranked[0].last_rel_diff, 0.52, 1e-5);
  ASSERT_TRUE(e.first.present);
  EXPECT_EQ(e.first.step, 0u);
  EXPECT_EQ(e.first.target, fi(Format::E4M3));
  EXPECT_TRUE(e.first.target_emulated);
  // The first divergence is where it starts: of the tensors over 1 % at step 0 (gemm#1.D, 3 %,
  // seq 1; logits, 2 %, seq 2), the one whose op ran first, not logits, ranked first.
  EXPECT_EQ(e.drift[e.first.drift].id, "gemm#1.D");
  EXPECT_EQ(e.first.underflow, 0u);
  EXPECT_EQ(e.first.ref_underflow, 0u);
  EXPECT_NEAR(e.first.rel_diff, 0.03, 1e-5);
  // Without gemm#1.D's divergence at step 0, logits (seq 2) is where it starts: its E4M3 counts.
  ThreeRuns late;
  for (size_t o = 0; o < late.run[2].t.observations.size(); ++o)
    if (late.run[2].t.observations[o].tensor == 1 && late.run[2].t.observations[o].step == 0)
      late.run[2].t.sketches[o].v = late.run[0].t.sketches[o].v;  // gemm#1.D equal at step 0
  const trace::TraceModel l0(late.run[0].t), l2(late.run[2].t);
  const CompareReport lr =
      compare_report({{"fp32", &late.run[0].t, &l0}, {"e4m3", &late.run[2].t, &l2}});
  const DivergenceEvidence& le = lr.others[0].first;
  ASSERT_TRUE(le.present);
  EXPECT_EQ(lr.others[0].drift[le.drift].id, "gemm#2.D");
  EXPECT_EQ(le.underflow, 100u);
  EXPECT_EQ(le.count, 4096u);
  EXPECT_EQ(le.ref_underflow, 7u);
  // bf16 targets BF16, where nothing overflowed.
  EXPECT_EQ(r.others[0].first.target, fi(Format::BF16));
  EXPECT_EQ(r.others[0].first.underflow, 0u);
  EXPECT_EQ(emulated_target("hybrid:delayed"), fi(Format::E4M3));
  EXPECT_EQ(emulated_target("fp16"), fi(Format::FP16));
  EXPECT_EQ(emulated_target(""), -1);
}

TEST(CompareReport, NoLossFallsBackToTheLastGemmOutput) {
  ThreeRuns t(false);
  const trace::TraceModel m0(t.run[0].t), m1(t.run[1].t);
  const CompareReport r = compare_report({{"fp32", &t.run[0].t, &m0}, {"bf16", &t.run[1].t, &m1}});
  EXPECT_FALSE(r.losses);
  EXPECT_EQ(r.fallback_tensor, "gemm#2.D");  // the id, as summary and report name tensors
  ASSERT_EQ(r.loss_rows.size(), 50u);
  EXPECT_NEAR(r.loss_rows[49].rel_diff[1], 0.201, 1e-5);
  const std::string md = compare_markdown(r);
  EXPECT_NE(md.find("No loss recorded in any run: instead, the value difference of the "
                    "reference's last GEMM output, gemm\\#2.D"),
            std::string::npos)
      << md;
  // Without sketches in one run: said so, no ranking.
  t.run[1].t.sketches.clear();
  const trace::TraceModel n1(t.run[1].t);
  const CompareReport q = compare_report({{"fp32", &t.run[0].t, &m0}, {"bf16", &t.run[1].t, &n1}});
  EXPECT_EQ(q.others[0].measurable, 0u);
  EXPECT_NE(compare_markdown(q).find("No per-tensor difference: a trace has no value sketches."),
            std::string::npos);
  EXPECT_THROW(compare_report({{"fp32", &t.run[0].t, &m0}}), std::invalid_argument);
}

// Golden: the whole Markdown and JSON of the three-run report (tests/golden/compare_expected;
// FPSCOPE_UPDATE_GOLDEN=1 rewrites them).
TEST(CompareReport, Golden) {
  ThreeRuns t;
  const trace::TraceModel m0(t.run[0].t), m1(t.run[1].t), m2(t.run[2].t);
  const CompareReport r = compare_report(
      {{"fp32", &t.run[0].t, &m0}, {"bf16", &t.run[1].t, &m1}, {"e4m3", &t.run[2].t, &m2}});
  ThreeRuns u(false);
  const trace::TraceModel n0(u.run[0].t), n2(u.run[2].t);
  const CompareReport q = compare_report({{"fp32", &u.run[0].t, &n0}, {"e4m3", &u.run[2].t, &n2}});
  const std::pair<std::string, std::string> outputs[] = {
      {"compare.md", compare_markdown(r)},
      {"compare.json", compare_json(r).dump(2) + "\n"},
      {"compare_no_loss.md", compare_markdown(q)},
  };
  fpscope::testing::expect_golden_files(FPSCOPE_COMPARE_GOLDEN_DIR,
                                        {std::begin(outputs), std::end(outputs)});
}
