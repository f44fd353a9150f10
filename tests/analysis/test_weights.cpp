// Master-weight update loss: stagnant / lost-mass totals, per-update series, ratio histogram,
// and the not-FP32 flag.
#include <gtest/gtest.h>

#include "fpscope/analysis/weights.h"
#include "trace_builder.h"

using namespace fpscope;
using namespace fpscope::analysis;
using fpscope::test::Builder;

namespace {
trace::WeightUpdateRecord rec(uint64_t step, uint32_t tensor, uint64_t changed, uint64_t bst,
                              double blost, uint64_t fst, double flost, double delta,
                              std::vector<std::pair<int16_t, uint64_t>> hist,
                              Format master = Format::FP32) {
  trace::WeightUpdateRecord r;
  r.step = step;
  r.tensor = tensor;
  r.master_dtype = master;
  r.elements = 128;
  r.changed = changed;
  r.bf16 = {bst, blost, delta};
  r.fp16 = {fst, flost, delta};
  r.ratio_hist = std::move(hist);
  return r;
}
}  // namespace

TEST(Weights, StagnantLostMassAndFlag) {
  Builder b;
  const uint32_t w =
      b.tensor("fc1.weight", trace::Role::Weight, 8, 16, Format::FP32, "fc1.weight", "watch");
  const uint32_t v = b.tensor("fc2.weight", trace::Role::Weight, 8, 16, Format::BF16, "", "watch");
  // Given in reverse step order: the analysis sorts by step.
  b.t.weight_updates.push_back(rec(2, w, 100, 30, 1.0, 0, 0.1, 4.0, {{-12, 10}, {-6, 90}}));
  b.t.weight_updates.push_back(rec(1, w, 100, 50, 2.0, 10, 0.5, 4.0, {{-12, 30}, {-8, 70}}));
  b.t.weight_updates.push_back(rec(1, v, 10, 10, 1.0, 10, 1.0, 1.0, {}, Format::BF16));

  const auto ws = analyze_weights(b.t);
  ASSERT_EQ(ws.size(), 2u);
  const auto& a = ws[0];
  EXPECT_EQ(a.name, "fc1.weight");
  EXPECT_EQ(a.updates, 2u);
  EXPECT_EQ(a.changed, 200u);
  EXPECT_FALSE(a.not_fp32);
  // BF16: stagnant (50 + 30) / 200 = 0.4; lost mass (2 + 1) / (4 + 4) = 0.375.
  EXPECT_DOUBLE_EQ(a.bf16_stagnant, 0.4);
  EXPECT_DOUBLE_EQ(a.bf16_lost_mass, 0.375);
  // FP16: stagnant 10 / 200 = 0.05; lost (0.5 + 0.1) / 8 = 0.075.
  EXPECT_DOUBLE_EQ(a.fp16_stagnant, 0.05);
  EXPECT_DOUBLE_EQ(a.fp16_lost_mass, 0.6 / 8.0);
  ASSERT_EQ(a.series.size(), 2u);
  EXPECT_EQ(a.series[0].step, 1u);
  EXPECT_DOUBLE_EQ(a.series[0].bf16_stagnant, 0.5);
  EXPECT_DOUBLE_EQ(a.series[0].bf16_lost_mass, 0.5);
  EXPECT_DOUBLE_EQ(a.series[1].bf16_lost_mass, 0.25);
  // Histogram merged: -12: 40, -8: 70, -6: 90; below half a BF16 ulp (bin <= -10): 40 / 200.
  ASSERT_EQ(a.ratio_hist.size(), 3u);
  EXPECT_EQ(a.ratio_hist[0], (std::pair<int16_t, uint64_t>{-12, 40}));
  EXPECT_EQ(a.ratio_hist[2], (std::pair<int16_t, uint64_t>{-6, 90}));
  EXPECT_DOUBLE_EQ(a.below_bf16_half_ulp, 0.2);
  // The BF16 master copy is flagged; unnamed -> its id.
  EXPECT_EQ(ws[1].name, "fc2.weight");
  EXPECT_TRUE(ws[1].not_fp32);
  EXPECT_EQ(ws[1].master_dtype, Format::BF16);
  EXPECT_DOUBLE_EQ(ws[1].bf16_stagnant, 1.0);
}
