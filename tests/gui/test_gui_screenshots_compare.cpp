// Screenshot tests of fpscope-gui with several runs of one program (CTest label gui): two traces
// with value sketches and losses (fpscope_gui_gen_trace --sketch 1, the second with a planted
// drift, --perturb) show the difference plot in the drift panel, the divergence column (the
// table sorted by it) and one loss curve per run on the timeline; two traces without sketches
// say so instead. Expectations come from the traces (analysis::compare_runs on them, and the
// drift the generator planted), not from the viewer.
#include <gtest/gtest.h>
#include <stb_image.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "fpscope/analysis/drift.h"
#include "fpscope/gui/colors.h"
#include "fpscope/gui/run_compare.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

using namespace fpscope;
using namespace fpscope::gui;
namespace fs = std::filesystem;

#include "screenshot_fixture.h"

using namespace fpscope::gui_test;

namespace {

std::string gen(const fs::path& dir, const std::string& name, const std::string& args) {
  const std::string out = (dir / name).string();
  const std::string cmd = quote(kGen) + " " + quote(out) +
                          " --steps 40 --layers 2 --elements 2048 " + args + " > /dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return out;
}

}  // namespace

TEST_F(GuiScreenshot, TwoSketchedRunsAlignedOnTheReference) {
  const std::string ref = gen(dir_, "ref.fpst", "--sketch 1");
  const std::string drift = gen(dir_, "drift.fpst", "--sketch 1 --perturb 5");
  // Independently of the viewer: the analysis library's difference of layer0.out (gemm#0.D).
  trace::Trace ta, tb;
  trace::ReadError re;
  ASSERT_TRUE(trace::read_trace(ref, &ta, &re)) << re.message;
  ASSERT_TRUE(trace::read_trace(drift, &tb, &re)) << re.message;
  const trace::TraceModel ma(ta), mb(tb);
  const auto d = analysis::compare_runs(ma, mb);
  const analysis::CrossRunDrift* l0 = nullptr;
  for (const auto& x : d)
    if (x.id == "gemm#0.D") l0 = &x;
  ASSERT_NE(l0, nullptr);
  // The planted drift: e = 0.5 % per step from step 13 on (step 14: 1 %, step 32: 10 %); the
  // sketch estimates it within a few per cent of e.
  EXPECT_GE(l0->first_step_rel_1pct, 14);
  EXPECT_LE(l0->first_step_rel_1pct, 15);
  EXPECT_GE(l0->first_step_rel_10pct, 31);
  EXPECT_LE(l0->first_step_rel_10pct, 33);
  const auto order = analysis::rank_by_divergence(d);
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(d[order.front()].id, "gemm#0.D");  // layer 0 drifts 4x faster than layer 1

  const Shot s = take("compare", {ref, drift}, {"--select", "gemm#0.D", "--step", "30"});
  ASSERT_EQ(s.rc, 0) << s.log;
  ASSERT_EQ(s.fact("selected"), "gemm#0.D");
  // Drift panel: the difference to Run A, Run B's line in its colour, its first steps the
  // library's.
  EXPECT_EQ(s.fact("difference_ref"), "Run A");
  EXPECT_EQ(s.fact("difference_runs"), "Run B");
  EXPECT_EQ(s.fact("difference_first_steps"), "Run B:" + std::to_string(l0->first_step_rel_1pct) +
                                                  "," + std::to_string(l0->first_step_rel_10pct));
  ASSERT_TRUE(s.has("difference_plot"));
  EXPECT_GT(s.count(s.region("difference_plot"), run_color(1), 12), 30u);
  // Tensor table: the divergence column, sorted by it (rank_by_divergence's first on top).
  EXPECT_EQ(s.fact("table_divergence"), "shown");
  EXPECT_EQ(s.fact("table_first"), d[order.front()].id);
  EXPECT_TRUE(s.has("cell:gemm#0.D:diverge"));
  // Timeline: both runs' loss curves, in their colours, with a legend.
  EXPECT_EQ(s.fact("timeline_loss_runs"), "Run A,Run B");
  const Rect tl = s.region("timeline_plot");
  EXPECT_GT(s.count(tl, run_color(0), 12), 30u);
  EXPECT_GT(s.count(tl, run_color(1), 12), 30u);
}

TEST_F(GuiScreenshot, RunsWithoutSketchesSaySo) {
  const std::string a = gen(dir_, "a.fpst", "");
  const std::string b = gen(dir_, "b.fpst", "--blocks 1");
  const Shot s = take("nosketch", {a, b}, {"--select", "gemm#0.D"});
  ASSERT_EQ(s.rc, 0) << s.log;
  EXPECT_EQ(s.fact("difference_message"), "no value sketches");
  EXPECT_FALSE(s.has("difference_plot"));
  EXPECT_EQ(s.fact("table_divergence"), "");
  EXPECT_FALSE(s.has("cell:gemm#0.D:diverge"));
  EXPECT_EQ(s.fact("timeline_loss_runs"), "");  // no LOSS records
}

TEST_F(GuiScreenshot, TheReferenceIsTheFirstRunOnTheCommandLineEvenWhenItLoadsLast) {
  // The first trace has 25x the steps of the second (same tensors and shapes, so the sketches
  // compare): it finishes loading last, and stays the reference.
  const std::string big = (dir_ / "big.fpst").string();
  ASSERT_EQ(std::system((quote(kGen) + " " + quote(big) +
                         " --steps 1000 --layers 2 --elements 2048 --sketch 1 > /dev/null")
                            .c_str()),
            0);
  const std::string small = gen(dir_, "small.fpst", "--sketch 1 --perturb 5");
  const Shot s = take("order", {big, small}, {"--runs"});
  ASSERT_EQ(s.rc, 0) << s.log;
  EXPECT_EQ(s.fact("runs"), "big.fpst|small.fpst");
  EXPECT_EQ(s.fact("difference_ref"), "Run A");
  EXPECT_EQ(s.fact("difference_runs"), "Run B");
}
