// Unit tests of the viewer core's run comparison (run_compare.h): the per-run value difference
// against the reference (analysis::compare_runs on value sketches, format 1.4), its cache, the
// tensor browser's divergence order, and the loss curves. Traces are built in memory with crafted
// sketches: base bucket 0 = 10 with sum of squares 100 (norm 10), other bucket 0 = 10 + 10 r, so
// the estimated ||other - base|| / ||base|| is exactly r (up to float rounding of the buckets).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "fpscope/gui/run_compare.h"
#include "fpscope/gui/view_model.h"
#include "fpscope/value_sketch.h"
#include "trace_builder.h"

using namespace fpscope;
using namespace fpscope::gui;
using fpscope::test::Builder;

namespace {

std::vector<float> bucket0(double v) {
  std::vector<float> s(kSketchBuckets, 0.0f);
  s[0] = static_cast<float>(v);
  return s;
}

// Tensors t0, t1, t2 observed at steps 0..3. rel[t][step]: the difference to the reference
// (NaN: no sketch for that tensor in this run). The reference itself: rel = 0 everywhere.
Builder make_run(const std::vector<std::vector<double>>& rel) {
  Builder b;
  for (int k = 0; k < 3; ++k) b.tensor("gemm#" + std::to_string(k) + ".D");
  uint64_t seq = 0;
  for (uint64_t step = 0; step < 4; ++step)
    for (uint32_t t = 0; t < 3; ++t) {
      b.obs(t, step, seq++, 16, 1.0f, 100.0);
      const double r = rel[t][step];
      if (!std::isnan(r))
        b.t.sketches.push_back(
            {static_cast<uint32_t>(b.t.observations.size() - 1), bucket0(10.0 + 10.0 * r)});
    }
  return b;
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const std::vector<double> kNone = {kNaN, kNaN, kNaN, kNaN};
const std::vector<double> kZero = {0, 0, 0, 0};

std::shared_ptr<const Run> as_run(const Builder& b, const std::string& label) {
  auto r = std::make_shared<Run>();
  r->label = label;
  r->trace = std::make_unique<trace::Trace>(b.t);
  r->model = std::make_unique<trace::TraceModel>(*r->trace);
  r->ok = true;
  return r;
}

// The reference (sketches on t0 and t1, none on t2), run B and run C.
struct ThreeRuns {
  std::shared_ptr<const Run> ref = as_run(make_run({kZero, kZero, kNone}), "ref");
  // B: t0 crosses 1 % at step 1 and 10 % at step 2, max 20 %; t1 never crosses 1 % (max 0.4 %).
  std::shared_ptr<const Run> b =
      as_run(make_run({{0.005, 0.02, 0.2, 0.05}, {0.001, 0.002, 0.003, 0.004}, kNone}), "B");
  // C: t0 stays at 0.1 %; t1 crosses 1 % at step 0 (1.5 %), max 3 %.
  std::shared_ptr<const Run> c =
      as_run(make_run({{0.001, 0.001, 0.001, 0.001}, {0.015, 0.0, 0.0, 0.03}, kNone}), "C");
};

}  // namespace

TEST(RunCompare, DiffAgainstTheReferencePerTensor) {
  ThreeRuns r;
  const RunDiff d = diff_runs(*r.ref->model, *r.b->model);
  EXPECT_TRUE(d.measurable);
  const analysis::CrossRunDrift* t0 = d.find(0);
  ASSERT_NE(t0, nullptr);
  EXPECT_EQ(t0->steps, (std::vector<uint64_t>{0, 1, 2, 3}));
  const std::vector<double> want = {0.005, 0.02, 0.2, 0.05};
  ASSERT_EQ(t0->rel_diff_series.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(t0->rel_diff_series[i], want[i], 1e-6) << i;
  EXPECT_EQ(t0->first_step_rel_1pct, 1);
  EXPECT_EQ(t0->first_step_rel_10pct, 2);
  EXPECT_NEAR(t0->max_rel_diff, 0.2, 1e-6);
  const analysis::CrossRunDrift* t2 = d.find(2);
  ASSERT_NE(t2, nullptr);
  EXPECT_FALSE(t2->has_rel_diff());  // no sketches on t2
  EXPECT_EQ(d.find(3), nullptr);     // no such tensor
}

TEST(RunCompare, CombinedDivergenceUsesRankByDivergenceOverTheRuns) {
  ThreeRuns r;
  auto db = std::make_shared<const RunDiff>(diff_runs(*r.ref->model, *r.b->model));
  auto dc = std::make_shared<const RunDiff>(diff_runs(*r.ref->model, *r.c->model));
  const Comparison c = combine_runs(3, {{1, db}, {2, dc}});
  ASSERT_EQ(c.combined.size(), 3u);
  // t0: B's first 1 % step 1, 10 % step 2, max 20 % (C's 0.1 % never crosses).
  EXPECT_EQ(c.combined[0].first_step_rel_1pct, 1);
  EXPECT_EQ(c.combined[0].first_step_rel_10pct, 2);
  EXPECT_NEAR(c.combined[0].max_rel_diff, 0.2, 1e-6);
  // t1: C's 1.5 % at step 0 is the earliest; 10 % never; max 3 % (C) over B's 0.4 %.
  EXPECT_EQ(c.combined[1].first_step_rel_1pct, 0);
  EXPECT_EQ(c.combined[1].first_step_rel_10pct, -1);
  EXPECT_NEAR(c.combined[1].max_rel_diff, 0.03, 1e-6);
  EXPECT_FALSE(c.combined[2].has_rel_diff());
  // Earliest first step > 1 % first: t1 (step 0) before t0 (step 1); t2 not measurable.
  EXPECT_EQ(c.order, (std::vector<uint32_t>{1, 0}));
  EXPECT_EQ(c.rank, (std::vector<int64_t>{1, 0, -1}));
  EXPECT_TRUE(c.measurable());

  // The browser's sort: descending = that order, not-measurable last either way.
  std::vector<analysis::TensorRisk> rows(3);
  for (uint32_t t = 0; t < 3; ++t) {
    rows[t].tensor = t;
    rows[t].id = "gemm#" + std::to_string(t) + ".D";
  }
  EXPECT_EQ(filter_sort(rows, "", {{Col::Divergence, 0, true}}, nullptr, &c.rank),
            (std::vector<uint32_t>{1, 0, 2}));
  EXPECT_EQ(filter_sort(rows, "", {{Col::Divergence, 0, false}}, nullptr, &c.rank),
            (std::vector<uint32_t>{0, 1, 2}));
  // Without a comparison the column has no values: the analysis order stays.
  EXPECT_EQ(filter_sort(rows, "", {{Col::Divergence, 0, true}}), (std::vector<uint32_t>{0, 1, 2}));
}

TEST(RunCompare, NoSketchesNothingMeasurable) {
  const auto ref = as_run(make_run({kNone, kNone, kNone}), "ref");
  const auto other = as_run(make_run({kNone, kNone, kNone}), "other");
  auto d = std::make_shared<const RunDiff>(diff_runs(*ref->model, *other->model));
  EXPECT_FALSE(d->measurable);
  EXPECT_EQ(d->drift.size(), 3u);  // matched all the same
  const Comparison c = combine_runs(3, {{1, d}});
  EXPECT_FALSE(c.measurable());
  EXPECT_EQ(c.rank, (std::vector<int64_t>{-1, -1, -1}));
}

TEST(RunCompare, CacheComputesEachPairOnce) {
  ThreeRuns r;
  DiffCache cache;
  const auto first = cache.get(r.ref, r.b);
  const auto again = cache.get(r.ref, r.b);
  EXPECT_EQ(first.get(), again.get());
  EXPECT_EQ(cache.computed(), 1u);
  const auto other = cache.get(r.ref, r.c);
  EXPECT_NE(other.get(), first.get());
  EXPECT_EQ(cache.computed(), 2u);
  // Another reference: another pair (B against C).
  const auto swapped = cache.get(r.c, r.b);
  EXPECT_EQ(cache.computed(), 3u);
  ASSERT_NE(swapped->find(1), nullptr);
  // B's t1 against C's t1 at step 0: |10.01 - 10.15| over C's norm sqrt(100) = 10: 1.4 %.
  EXPECT_NEAR(swapped->find(1)->rel_diff_series[0], 0.014, 1e-6);
}

TEST(RunCompare, LossCurveIsTheMeanOfTheStepsRecords) {
  Builder b;
  b.t.losses = {{2, 1.5, 0}, {0, 2.0, 0}, {0, 4.0, 0}, {5, -1.0, 0}, {5, 3.0, 0}};
  const LossCurve c = loss_curve(b.t);
  EXPECT_EQ(c.steps, (std::vector<double>{0, 2, 5}));
  EXPECT_EQ(c.loss, (std::vector<double>{3.0, 1.5, 1.0}));
  EXPECT_TRUE(loss_curve(Builder().t).empty());
}

// --every 10 over 20 steps: observations at steps 0 and 10, a loss at every step 0..19. The step
// axis runs to the last loss, past the last sampled step (the status bar's "20 steps (0..19)").
TEST(StepExtent, CoversTheLossesPastTheLastSampledStep) {
  Builder b;
  for (uint64_t s = 0; s < 20; ++s)
    b.t.losses.push_back({s, 2.0 - 0.05 * static_cast<double>(s), 0});
  gui::Run r;
  r.timeline_steps = {0, 10};
  r.loss = loss_curve(b.t);
  EXPECT_EQ(step_extent(r).lo, 0.0);
  EXPECT_EQ(step_extent(r).hi, 20.0);
  r.loss = {};  // no losses: the sampled steps alone
  EXPECT_EQ(step_extent(r).hi, 11.0);
  b.t.losses = {{3, 1.0, 0}};  // losses only, from step 3
  r.timeline_steps.clear();
  r.loss = loss_curve(b.t);
  EXPECT_EQ(step_extent(r).lo, 3.0);
  EXPECT_EQ(step_extent(r).hi, 4.0);
  const gui::Run none;
  EXPECT_EQ(step_extent(none).lo, 0.0);
  EXPECT_EQ(step_extent(none).hi, 1.0);
}

TEST(NoObservations, ThePanelsSayWhyWhenTheIntegrationDid) {
  analysis::RunAnalysis a;
  EXPECT_EQ(no_observations_text(a),
            "no observations in this trace (no matrix multiply reached the probe; no tensor "
            "statistics were recorded)");
  a.not_measured = "CPU autocast to bfloat16 was on";
  EXPECT_EQ(no_observations_text(a),
            "no observations in this trace: CPU autocast to bfloat16 was on");
}

TEST(RunCompare, RunColoursDifferFromEachOtherAndFromTheFormats) {
  std::set<uint32_t> seen;
  for (size_t k = 0; k < 4; ++k) seen.insert(pack(run_color(k)));
  EXPECT_EQ(seen.size(), 4u);
  for (Format f : kTargets) EXPECT_EQ(seen.count(pack(format_color(f))), 0u) << spec(f).name;
  EXPECT_EQ(run_color(0), run_color(6));  // cycles
}
