// Screenshot tests of fpscope-gui's rank sets and master-weight panel (CTest label gui): the real
// binary on generated traces (fpscope_gui_gen_trace --rank/--fault-rank/--watch-extra) under
// Xvfb. What they expect comes from the generator's documented plan and from the analysis
// library (analyze_weights), not from the viewer's core.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "fpscope/analysis/weights.h"
#include "fpscope/gui/colors.h"
#include "fpscope/gui/view_model.h"
#include "fpscope/trace_io.h"
#include "screenshot_fixture.h"

using namespace fpscope;
using namespace fpscope::gui;
using namespace fpscope::gui_test;

namespace {

// Where on the viridis ramp a pixel lies: the t of the nearest of 256 ramp samples, or -1 when
// no ramp colour is within `tol` (sum of channel differences).
double ramp_t(Rgb p, int tol = 12) {
  double best_t = -1.0;
  int best = tol + 1;
  for (int k = 0; k <= 255; ++k) {
    const Rgb c = heat_color(static_cast<float>(k) / 255.0f);
    const int d = std::abs(p.r - c.r) + std::abs(p.g - c.g) + std::abs(p.b - c.b);
    if (d < best) best = d, best_t = k / 255.0;
  }
  return best_t;
}

// The generator's plan: 120 steps, fault from steps/3 = 40 on the fault rank's layer0.out.
constexpr int kSteps = 120;
constexpr int kFaultStep = kSteps / 3;

}  // namespace

class GuiRanks : public GuiScreenshot {
 protected:
  // Writes ranks 0..n-1 into dir_/set/run-<r>.fpst.
  // fault_rank -1: none.
  void make_set(int n, int fault_rank, const std::string& extra = "") {
    fs::create_directories(dir_ / "set");
    for (int r = 0; r < n; ++r) {
      const std::string cmd =
          quote(kGen) + " " +
          quote((dir_ / "set" / ("run-" + std::to_string(r) + ".fpst")).string()) + " --steps " +
          std::to_string(kSteps) + " --rank " + std::to_string(r) + " --world-size " +
          std::to_string(n) + " --fault-rank " + std::to_string(fault_rank) + extra +
          " > /dev/null";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
  }
};

TEST_F(GuiRanks, RankSetOpensAtThePlantedRankAndItsRowIsHotFromTheFaultOn) {
  make_set(4, 2);
  // A directory argument: its traces, which carry rank and world size: a rank set.
  const Shot s = take("ranks", {(dir_ / "set").string()});
  ASSERT_EQ(s.rc, 0) << s.log;
  EXPECT_EQ(s.fact("ranks"), "0|1|2|3");
  EXPECT_EQ(s.fact("runs"), "");  // no rank is shown as a run of its own
  // The first cross-rank fault: rank 2's layer0.out (gemm#0.D) overflows FP16 at step 40.
  EXPECT_EQ(s.fact("rank"), "2");
  EXPECT_EQ(s.fact("selected"), "gemm#0.D");
  EXPECT_EQ(s.fact("step"), std::to_string(kFaultStep));
  EXPECT_EQ(s.fact("ranks_first_step"), std::to_string(kFaultStep));
  EXPECT_EQ(s.fact("ranks_first_ranks"), "2");
  ASSERT_TRUE(s.has("ranks_plot") && s.has("rank_selector"));
  const Rect p = s.region("ranks_plot");
  ASSERT_GT(p.w, 200);
  ASSERT_GT(p.h, 4 * 6);
  const double x0 = std::stod(s.fact("x0")), x1 = std::stod(s.fact("x1"));
  // The centre pixel of rank r's row at step `step` (rank 0 on top).
  auto pixel = [&](int r, double step) {
    const int x = p.x + static_cast<int>((step + 0.5 - x0) / (x1 - x0) * p.w);
    const int y = p.y + static_cast<int>((r + 0.5) * p.h / 4.0);
    return s.at(x, y);
  };
  // log2 amax: healthy ~ 2^4 (N(0,4) over 4096 elements), planted ~ 2^19 (x 3e4): on the ramp
  // from the lowest to the highest of all cells, the planted row is near the top, the others
  // near the bottom, and before step 40 rank 2 is as cold as the others.
  for (double step : {kFaultStep + 5.0, kFaultStep + 40.0, kSteps - 10.0}) {
    const double hot = ramp_t(pixel(2, step));
    EXPECT_GT(hot, 0.8) << "rank 2, step " << step;
    for (int r : {0, 1, 3}) {
      const double cold = ramp_t(pixel(r, step));
      EXPECT_GE(cold, 0.0) << "rank " << r << " step " << step << ": not a heat colour";
      EXPECT_LT(cold, 0.25) << "rank " << r << ", step " << step;
    }
  }
  for (int r = 0; r < 4; ++r) {
    const double t = ramp_t(pixel(r, kFaultStep - 10.0));
    EXPECT_GE(t, 0.0);
    EXPECT_LT(t, 0.25) << "rank " << r << " before the fault";
  }

  // --rank with --select / --step: that rank, tensor and step (the path a click on a cell takes);
  // the heatmap's story does not change with the rank shown.
  const Shot r0 = take("rank0", {(dir_ / "set").string()},
                       {"--rank", "0", "--select", "gemm#0.D", "--step", "60"});
  ASSERT_EQ(r0.rc, 0) << r0.log;
  EXPECT_EQ(r0.fact("rank"), "0");
  EXPECT_EQ(r0.fact("selected"), "gemm#0.D");
  EXPECT_EQ(r0.fact("step"), "60");
  EXPECT_EQ(r0.fact("ranks_first_ranks"), "2");
}

TEST_F(GuiRanks, ADesyncedReplicaOpensAtItsFindingWithNoRankBroken) {
  // No rank breaks alone (no fault planted; the generator's NaN at step 84 is on every rank);
  // rank 3's layer0.weight (gemm#0.B) differs from its replicas from step 40: rank_desync, which
  // the viewer opens at rather than the NaN every rank shares.
  make_set(4, 9, " --desync-rank 3");  // fault rank 9: no such rank, nothing planted
  const Shot s = take("desync", {(dir_ / "set").string()});
  ASSERT_EQ(s.rc, 0) << s.log;
  EXPECT_EQ(s.fact("rank"), "3");
  EXPECT_EQ(s.fact("selected"), "gemm#0.B");
  EXPECT_EQ(s.fact("step"), std::to_string(kFaultStep));
  EXPECT_EQ(s.fact("ranks_finding"), "rank_desync");
  EXPECT_EQ(s.fact("ranks_first_step"), "-1");  // the weight itself never overflows
}

TEST_F(GuiRanks, RunsFlagAndASingleRankKeepTheRunsView) {
  make_set(2, 1);
  const std::string a = (dir_ / "set" / "run-0.fpst").string();
  const std::string b = (dir_ / "set" / "run-1.fpst").string();
  // --runs: the two ranks are compared as runs (today's view): chips, no rank selector.
  const Shot runs = take("runs", {a, b}, {"--runs"});
  ASSERT_EQ(runs.rc, 0) << runs.log;
  EXPECT_EQ(runs.fact("runs"), "run-0.fpst|run-1.fpst");
  EXPECT_EQ(runs.fact("ranks"), "");
  EXPECT_FALSE(runs.has("ranks_plot"));
  EXPECT_FALSE(runs.has("rank_selector"));
  // One trace of a rank set: exactly the single-trace view.
  const Shot one = take("one", {b});
  ASSERT_EQ(one.rc, 0) << one.log;
  EXPECT_EQ(one.fact("runs"), "run-1.fpst");
  EXPECT_FALSE(one.has("ranks_plot"));
  // The same two traces without a flag: a rank set (their metadata says so).
  const Shot set = take("set", {a, b});
  ASSERT_EQ(set.rc, 0) << set.log;
  EXPECT_EQ(set.fact("ranks"), "0|1");
  EXPECT_TRUE(set.has("ranks_plot"));
}

TEST_F(GuiRanks, WeightPanelListsParametersByLostMassWithTheSampledBand) {
  const std::string trace = (dir_ / "w.fpst").string();
  ASSERT_EQ(
      std::system(
          (quote(kGen) + " " + quote(trace) + " --steps 60 --watch-extra 1 > /dev/null").c_str()),
      0);
  // The order, from the analysis library: by BF16 lost mass, descending.
  trace::Trace t;
  trace::ReadError err;
  ASSERT_TRUE(trace::read_trace(trace, &t, &err)) << err.message;
  const auto ws = analysis::analyze_weights(t);
  ASSERT_EQ(ws.size(), 3u);
  std::vector<size_t> idx(ws.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::sort(idx.begin(), idx.end(),
            [&](size_t a, size_t b) { return ws[a].bf16_lost_mass > ws[b].bf16_lost_mass; });
  std::string order;
  for (size_t i : idx) order += (order.empty() ? "" : "|") + ws[i].name;
  // The generator's plan (gen_trace.cpp): the sampled one loses most, the whole bias nothing.
  ASSERT_EQ(order, "encoder.big.weight|w1|head.bias");
  const auto& big = ws[idx[0]];
  ASSERT_TRUE(big.sampled);
  ASSERT_LT(big.bf16_stagnant_lo, big.bf16_stagnant);
  const Shot s = take("weights", {trace});
  ASSERT_EQ(s.rc, 0) << s.log;
  EXPECT_EQ(s.fact("weights_order"), order);
  EXPECT_EQ(s.fact("weight_selected"), "encoder.big.weight");  // the worst, selected first
  // The parameter left out of the watch, as the analysis library reads the trace's events.
  const auto left = analysis::left_out_weights(t);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(s.fact("weights_left_out"), left[0].name);
  EXPECT_EQ(left[0].name, "encoder.embedding.weight");
  EXPECT_FALSE(s.has("ranks_plot"));
  // The sampled parameter's curve carries its 95% band: BF16's colour at 22% over the plot
  // background, a band of some height around the curve.
  ASSERT_TRUE(s.has("weights_plot") && s.has("weights_table"));
  const Rect wp = s.region("weights_plot");
  const Rgb bf = format_color(Format::BF16);
  const Rgb bg{18, 20, 26};
  auto mix = [](uint8_t a, uint8_t b) {
    return static_cast<uint8_t>(std::lround(0.22 * a + 0.78 * b));
  };
  const Rgb band{mix(bf.r, bg.r), mix(bf.g, bg.g), mix(bf.b, bg.b)};
  EXPECT_GT(s.count(wp, band, 8), 100u) << "no BF16 interval band in the stagnant plot";
  EXPECT_GT(s.count(wp, bf, 10), 40u) << "no BF16 stagnant curve";
}
