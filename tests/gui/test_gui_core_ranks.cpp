// Unit tests of the viewer core's rank-set and master-weight models (rank_view.h,
// weights_view.h): hand-built rank sets and weight series, expected values computed by hand.
// (Beside test_gui_core.cpp, in the same executable: that file is at its size limit.)
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "fpscope/gui/colors.h"
#include "fpscope/gui/rank_view.h"
#include "fpscope/gui/weights_view.h"

using namespace fpscope;
using namespace fpscope::gui;

namespace {

analysis::RankIdentity ident(int64_t rank, analysis::RankSource src, int64_t world) {
  analysis::RankIdentity id;
  id.path = "run-" + std::to_string(rank) + ".fpst";
  id.rank = rank;
  id.source = src;
  id.world_size = world;
  return id;
}

analysis::RankCell cell(uint64_t step, float amax, uint64_t count, uint64_t nonfinite,
                        float fp16_overflow) {
  analysis::RankCell c;
  c.step = step;
  c.amax = amax;
  c.count = count;
  c.nonfinite = nonfinite;
  c.overflow[target_index(Format::FP16)] = fp16_overflow;
  return c;
}

// Three ranks of "gemm#0.D": rank 1 overflows FP16 at step 2 and holds NaNs at step 3; rank 2
// has no cell at step 1; a second tensor "gemm#1.D" is healthy everywhere.
analysis::RankSet three_ranks() {
  analysis::RankSet set;
  for (int64_t r = 0; r < 3; ++r) {
    analysis::RankSummary s;
    s.identity = ident(r, analysis::RankSource::Metadata, 3);
    analysis::RankTensor t0;
    t0.id = "gemm#0.D";
    analysis::RankTensor t1;
    t1.id = "gemm#1.D";
    for (uint64_t step = 0; step < 4; ++step) {
      if (r == 2 && step == 1) continue;
      float amax = 4.0f;  // log2 = 2
      uint64_t nonfinite = 0;
      float ov = 0.0f;
      if (r == 1 && step == 2) amax = 131072.0f, ov = 0.25f;  // log2 = 17
      if (r == 1 && step == 3) amax = 1024.0f, nonfinite = 10;
      t0.cells.push_back(cell(step, amax, 40, nonfinite, ov));
      t1.cells.push_back(cell(step, 1.0f, 40, 0, 0.0f));
    }
    s.tensors = {t0, t1};
    set.ranks.push_back(std::move(s));
  }
  return set;
}

}  // namespace

TEST(RankSetRule, MetadataRanksOfOneWorldAreARankSetOtherwiseRuns) {
  using analysis::RankSource;
  const auto md = RankSource::Metadata;
  EXPECT_TRUE(is_rank_set({ident(0, md, 2), ident(1, md, 2)}, RankSetMode::Auto));
  // Same rank twice (two recordings of rank 0: two runs to compare).
  EXPECT_FALSE(is_rank_set({ident(0, md, 2), ident(0, md, 2)}, RankSetMode::Auto));
  // Different worlds.
  EXPECT_FALSE(is_rank_set({ident(0, md, 2), ident(1, md, 4)}, RankSetMode::Auto));
  // A rank from the file name only, or no world size: not enough to say "one run".
  EXPECT_FALSE(
      is_rank_set({ident(0, md, 2), ident(1, RankSource::FileName, 2)}, RankSetMode::Auto));
  EXPECT_FALSE(is_rank_set({ident(0, md, -1), ident(1, md, -1)}, RankSetMode::Auto));
  // One trace is never a set unless asked.
  EXPECT_FALSE(is_rank_set({ident(0, md, 2)}, RankSetMode::Auto));
  // The user decides.
  EXPECT_TRUE(is_rank_set({ident(0, RankSource::Order, -1), ident(1, RankSource::Order, -1)},
                          RankSetMode::Ranks));
  EXPECT_FALSE(is_rank_set({ident(0, md, 2), ident(1, md, 2)}, RankSetMode::Runs));
}

TEST(RankHeat, CellsByHandAndTheFirstBrokenRank) {
  const analysis::RankSet set = three_ranks();
  const RankHeat h = build_rank_heat(set, "gemm#0.D", RankMetric::Amax);
  ASSERT_EQ(h.rows(), 3u);
  ASSERT_EQ(h.cols(), 4u);
  EXPECT_EQ(h.ranks, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(h.steps, (std::vector<uint64_t>{0, 1, 2, 3}));
  EXPECT_DOUBLE_EQ(h.at(0, 0), 2.0);
  EXPECT_DOUBLE_EQ(h.at(1, 2), 17.0);
  EXPECT_DOUBLE_EQ(h.at(1, 3), 10.0);
  EXPECT_TRUE(std::isnan(h.at(2, 1)));
  EXPECT_EQ(h.state_at(2, 1), CellState::Missing);
  EXPECT_EQ(h.state_at(1, 2), CellState::Overflow);
  EXPECT_EQ(h.state_at(1, 3), CellState::NonFinite);
  EXPECT_EQ(h.state_at(0, 3), CellState::Ok);
  EXPECT_DOUBLE_EQ(h.lo, 2.0);
  EXPECT_DOUBLE_EQ(h.hi, 17.0);
  EXPECT_EQ(h.first_step, 2);
  EXPECT_EQ(h.first_ranks, (std::vector<int64_t>{1}));
  EXPECT_EQ(h.row_of(2), 2);
  EXPECT_EQ(h.row_of(7), -1);
  EXPECT_EQ(h.col_of(3), 3);
  EXPECT_EQ(h.col_of(9), -1);

  const RankHeat ov = build_rank_heat(set, "gemm#0.D", RankMetric::Overflow);
  EXPECT_DOUBLE_EQ(ov.at(1, 2), 0.25);
  EXPECT_DOUBLE_EQ(ov.at(0, 2), 0.0);
  const RankHeat nf = build_rank_heat(set, "gemm#0.D", RankMetric::NonFinite);
  EXPECT_DOUBLE_EQ(nf.at(1, 3), 10.0 / 40.0);
  EXPECT_DOUBLE_EQ(nf.at(1, 2), 0.0);

  // The healthy tensor: nothing broke; an unknown tensor: no columns.
  const RankHeat ok = build_rank_heat(set, "gemm#1.D", RankMetric::Amax);
  EXPECT_EQ(ok.first_step, -1);
  EXPECT_TRUE(ok.first_ranks.empty());
  EXPECT_EQ(build_rank_heat(set, "nope", RankMetric::Amax).cols(), 0u);
  // All amax 1 (log2 0): the ramp is 2 octaves about it, [-1, 1]; the cells sit mid-ramp.
  EXPECT_DOUBLE_EQ(ok.lo, -1.0);
  EXPECT_DOUBLE_EQ(ok.hi, 1.0);
  EXPECT_EQ(rank_cell_color(ok, 0.0, CellState::Ok), heat_color(0.5f));
}

TEST(RankHeat, RasterColoursAndWorstOfAColumn) {
  const analysis::RankSet set = three_ranks();
  const RankHeat h = build_rank_heat(set, "gemm#0.D", RankMetric::Amax);
  // One pixel per step.
  const RankRaster one = rank_raster(h, 0.0, 4.0, 4);
  ASSERT_EQ(one.width, 4);
  ASSERT_EQ(one.rows, 3);
  auto px = [](const RankRaster& r, int row, int x) {
    return r.rgba[static_cast<size_t>(row) * static_cast<size_t>(r.width) + static_cast<size_t>(x)];
  };
  EXPECT_EQ(px(one, 0, 0), pack(heat_color(0.0f)));  // amax 4: the lowest of [2, 17]
  EXPECT_EQ(px(one, 1, 2), pack(heat_color(1.0f)));  // amax 2^17: the highest
  EXPECT_EQ(px(one, 1, 3), pack(kRankNonFinite));    // NaN/Inf: red
  EXPECT_EQ(px(one, 2, 1), pack(kRankMissing));      // no cell
  EXPECT_EQ(px(one, 1, 1), pack(heat_color(0.0f)));
  // Two steps per pixel: column 1 covers steps 2 and 3, where rank 1 holds NaN (worse than its
  // overflow) and rank 0 is healthy.
  const RankRaster two = rank_raster(h, 0.0, 4.0, 2);
  EXPECT_EQ(px(two, 1, 1), pack(kRankNonFinite));
  EXPECT_EQ(px(two, 1, 0), pack(heat_color(0.0f)));
  EXPECT_EQ(px(two, 0, 1), pack(heat_color(0.0f)));
  // Rank 2 misses step 1 but has step 0: the column shows step 0.
  EXPECT_EQ(px(two, 2, 0), pack(heat_color(0.0f)));
  // Zoomed in: 8 pixels over steps [2, 4): pixels 0-3 are step 2, 4-7 step 3.
  const RankRaster zoom = rank_raster(h, 2.0, 4.0, 8);
  EXPECT_EQ(px(zoom, 1, 3), pack(heat_color(1.0f)));
  EXPECT_EQ(px(zoom, 1, 4), pack(kRankNonFinite));
  // Fractions: the exponent heatmap's log ramp (0.25 -> heat_t(0.25)), zero at the ramp's start.
  const RankHeat ov = build_rank_heat(set, "gemm#0.D", RankMetric::Overflow);
  const RankRaster o = rank_raster(ov, 0.0, 4.0, 4);
  EXPECT_EQ(px(o, 1, 2), pack(heat_color(heat_t(0.25))));
  EXPECT_EQ(px(o, 0, 2), pack(heat_color(0.0f)));
}

TEST(WeightsView, OrderedByLostMassAndIntervalsByHand) {
  std::vector<analysis::WeightLoss> ws(3);
  ws[0].name = "small";
  ws[0].bf16_lost_mass = 0.01;
  ws[1].name = "big";
  ws[1].bf16_lost_mass = 0.40;
  ws[1].fp16_lost_mass = 0.001;
  ws[2].name = "mid";
  ws[2].bf16_lost_mass = 0.10;
  ws[2].fp16_lost_mass = 0.05;
  EXPECT_EQ(weight_order(ws), (std::vector<size_t>{1, 2, 0}));
  EXPECT_EQ(weight_order(ws, Format::FP16), (std::vector<size_t>{2, 1, 0}));

  // A sampled watch: 64 of 4096 positions. Update 1 changed all 64 (n = 64 draws), stagnant
  // 25%; update 2 changed 40 (n = 40), stagnant 50%. Wilson 95% with the finite-population
  // correction sqrt(1 - 64/4096), computed by hand (python): [0.160965, 0.367347] and
  // [0.353156, 0.646844].
  analysis::WeightLoss w;
  w.elements = 4096;
  w.watched = 64;
  w.sampled = true;
  analysis::WeightLossPoint a, b;
  a.step = 5;
  a.changed = 64;
  a.bf16_stagnant = 0.25;
  a.bf16_lost_mass = 0.125;
  b.step = 9;
  b.changed = 40;
  b.bf16_stagnant = 0.5;
  b.fp16_stagnant = 0.0;
  w.series = {a, b};
  const WeightCurve c = weight_curve(w);
  ASSERT_EQ(c.step.size(), 2u);
  EXPECT_DOUBLE_EQ(c.step[1], 9.0);
  EXPECT_DOUBLE_EQ(c.stagnant[0], 0.25);
  EXPECT_DOUBLE_EQ(c.lost_mass[0], 0.125);
  EXPECT_NEAR(c.lo[0], 0.160965, 1e-6);
  EXPECT_NEAR(c.hi[0], 0.367347, 1e-6);
  EXPECT_NEAR(c.lo[1], 0.353156, 1e-6);
  EXPECT_NEAR(c.hi[1], 0.646844, 1e-6);
  // A whole watch: no interval.
  w.watched = 4096;
  const WeightCurve whole = weight_curve(w);
  EXPECT_DOUBLE_EQ(whole.lo[0], 0.25);
  EXPECT_DOUBLE_EQ(whole.hi[0], 0.25);
}
