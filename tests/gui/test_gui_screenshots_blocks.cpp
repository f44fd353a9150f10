// Screenshot tests of fpscope-gui on traces with block-scaled formats (trace format 1.3; CTest
// label gui): the tensor table's block columns, the drift panel's block series and bars, and the
// heatmap's block-scale strip and coverage line. Expectations come from the trace itself (read
// here), not from the viewer.
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

#include "fpscope/gui/block_view.h"
#include "fpscope/gui/colors.h"
#include "fpscope/gui/view_model.h"
#include "fpscope/trace_io.h"

using namespace fpscope;
using namespace fpscope::gui;
namespace fs = std::filesystem;

#include "screenshot_fixture.h"

using namespace fpscope::gui_test;

namespace {

bool inside(const Rect& a, const Rect& outer) {
  return a.w > 0 && a.h > 0 && a.x >= outer.x && a.y >= outer.y && a.x + a.w <= outer.x + outer.w &&
         a.y + a.h <= outer.y + outer.h;
}

}  // namespace

TEST_F(GuiScreenshot, BlockFormatsInTableDriftAndHeatmap) {
  const std::string trace = (dir_ / "blocks.fpst").string();
  ASSERT_EQ(std::system((quote(kGen) + " " + quote(trace) +
                         " --steps 40 --layers 2 --elements 2048 --blocks 63 > /dev/null")
                            .c_str()),
            0);
  // Independently of the viewer: head.logits (gemm#2.D) at step 30, its amax and lowest
  // populated exponent bin over the step's observations.
  trace::Trace t;
  trace::ReadError re;
  ASSERT_TRUE(trace::read_trace(trace, &t, &re)) << re.message;
  ASSERT_EQ(t.block_stats.size(), t.observations.size());  // every observation has a section
  uint32_t logits = UINT32_MAX;
  for (const auto& ti : t.tensors)
    if (ti.id == "gemm#2.D") logits = ti.index;
  ASSERT_NE(logits, UINT32_MAX);
  float amax = 0.0f;
  int lowest = kHistBins;
  for (const auto& o : t.observations) {
    if (o.tensor != logits || o.step != 30) continue;
    amax = std::max(amax, o.stats.amax);
    for (uint32_t j = 0; j < o.hist_len; ++j)
      lowest = std::min<int>(lowest, t.hist_bins[o.hist_begin + j]);
  }
  ASSERT_GT(amax, 0.0f);
  // One MXFP8 E4M3 block: log2(448 / 2^-9) octaves (OCP MX: E4M3 max 448, min subnormal 2^-9).
  const double tensor_oct = std::log2(static_cast<double>(amax)) - (lowest / 4.0 - 127.0);
  char want[200];
  std::snprintf(want, sizeof want,
                "one block covers %.1f octaves of the tensor's %.1f-octave range", 17.807354922,
                tensor_oct);

  const Shot s = take("blocks", {trace}, {"--select", "gemm#2.D", "--step", "30"});
  ASSERT_EQ(s.rc, 0) << s.log;
  ASSERT_EQ(s.fact("selected"), "gemm#2.D");
  ASSERT_EQ(s.fact("step"), "30");
  // Table: one column group per measured format, all six here.
  EXPECT_EQ(s.fact("table_block_formats"),
            "MXFP8 E4M3, MXFP8 E5M2, MXFP6 E3M2, MXFP6 E2M3, MXFP4, NVFP4");
  // Heatmap strip: the first format, its coverage line, its scale bars in its colour.
  EXPECT_EQ(s.fact("block_format"), "MXFP8 E4M3");
  EXPECT_EQ(s.fact("block_coverage").rfind(want, 0), 0u)
      << s.fact("block_coverage") << " vs " << want;
  ASSERT_TRUE(s.has("block_scales") && s.has("heatmap"));
  const Rect strip = s.region("block_scales");
  EXPECT_TRUE(inside(strip, s.region("heatmap")));
  EXPECT_GT(s.count(strip, block_format_color(0), 6), 30u);
  // The bracket of one block at the current step, inside the plot.
  ASSERT_TRUE(s.has("block_bracket"));
  const Rect br = s.region("block_bracket");
  const Rect hp = s.region("heatmap_plot");
  EXPECT_GE(br.x, hp.x);
  EXPECT_LE(br.x + br.w, hp.x + hp.w);
  EXPECT_GT(s.count(br, block_format_color(0), 6), 10u);
  // Drift: the block formats' SQNR lines in their colours, and a bar per format in its colour.
  const Rect dp = s.region("drift_plot");
  size_t line_px = 0;
  for (int f = 0; f < kNumBlockFormats; ++f) line_px += s.count(dp, block_format_color(f), 10);
  EXPECT_GT(line_px, 40u);
  for (int f = 0; f < kNumBlockFormats; ++f) {
    const std::string bar = "drift_bar:" + block_format_label(f);
    ASSERT_TRUE(s.has(bar)) << bar;
    EXPECT_EQ(s.dominant(s.region(bar)), block_format_color(f)) << bar;
  }
}

TEST_F(GuiScreenshot, NoBlockFormatsNoBlockColumnsOrStrip) {
  const std::string trace = (dir_ / "plain.fpst").string();
  ASSERT_EQ(std::system((quote(kGen) + " " + quote(trace) +
                         " --steps 20 --layers 1 --elements 1024 > /dev/null")
                            .c_str()),
            0);
  const Shot s = take("plain", {trace}, {"--select", "gemm#1.D"});
  ASSERT_EQ(s.rc, 0) << s.log;
  EXPECT_EQ(s.fact("table_block_formats"), "");
  EXPECT_EQ(s.fact("block_coverage"), "");
  EXPECT_FALSE(s.has("block_scales"));
  EXPECT_FALSE(s.has("block_bracket"));
  for (int f = 0; f < kNumBlockFormats; ++f)
    EXPECT_FALSE(s.has("drift_bar:" + block_format_label(f)));
}
