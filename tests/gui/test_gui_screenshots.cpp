// Screenshot tests of fpscope-gui (CTest label gui): the real binary renders a real trace under
// Xvfb (xvfb-run, Mesa's software OpenGL), writes a PNG and, with --regions, the rectangles of its
// panels and a few facts (selected tensor, current step, empty-state messages). The checks read
// the PNG's pixels inside those rectangles; what they expect is computed here from the trace with
// the analysis library (gui core's load_run), not copied from the viewer.
//
// Skipped, with a message saying so, only when xvfb-run is not installed (scripts/install-deps.sh
// installs it; CI has it).
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
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fpscope/gui/colors.h"
#include "fpscope/gui/view_model.h"
#include "fpscope/trace_io.h"

using namespace fpscope;
using namespace fpscope::gui;
namespace fs = std::filesystem;

#include "screenshot_fixture.h"

using namespace fpscope::gui_test;

namespace {

// What the analysis says about the sample trace, computed independently of the viewer.
const gui::Run& sample_run() {
  static const std::shared_ptr<const gui::Run> r = load_run(kSample);
  return *r;
}

const analysis::TensorRisk* find_risk(const gui::Run& run, const std::string& id) {
  for (const auto& r : run.analysis.risks)
    if (r.id == id) return &r;
  return nullptr;
}

// Samples of the heat ramp (viridis), to recognise heat cells among the pixels.
bool heat_like(Rgb p) {
  static const std::vector<Rgb> ramp = [] {
    std::vector<Rgb> v;
    for (int k = 0; k <= 64; ++k) v.push_back(heat_color(static_cast<float>(k) / 64.0f));
    return v;
  }();
  for (const Rgb& c : ramp)
    if (std::abs(p.r - c.r) + std::abs(p.g - c.g) + std::abs(p.b - c.b) <= 12) return true;
  return false;
}

Rect intersect(const Rect& a, const Rect& b) {
  const int x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  const int x1 = std::min(a.x + a.w, b.x + b.w), y1 = std::min(a.y + a.h, b.y + b.h);
  return {x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0)};
}

bool inside(const Rect& a, const Rect& outer) {
  return a.w > 0 && a.h > 0 && a.x >= outer.x && a.y >= outer.y && a.x + a.w <= outer.x + outer.w &&
         a.y + a.h <= outer.y + outer.h;
}

}  // namespace

TEST_F(GuiScreenshot, DefaultViewSelectsTheWorstTensorAndFillsEveryPanel) {
  const gui::Run& run = sample_run();
  ASSERT_TRUE(run.ok) << run.error;
  ASSERT_FALSE(run.analysis.risks.empty());
  const auto worst =
      std::max_element(run.analysis.risks.begin(), run.analysis.risks.end(),
                       [](const auto& a, const auto& b) { return a.score < b.score; });
  const Shot s = take("default", {kSample});
  ASSERT_EQ(s.rc, 0) << s.log;
  ASSERT_EQ(s.w, 1600);
  ASSERT_EQ(s.h, 1000);
  // The first trace's load selected the most severe tensor and set the step axis to the run.
  EXPECT_EQ(s.fact("selected"), worst->id);
  EXPECT_DOUBLE_EQ(std::stod(s.fact("x0")), step_extent(run).lo);
  EXPECT_DOUBLE_EQ(std::stod(s.fact("x1")), step_extent(run).hi);
  EXPECT_EQ(s.fact("detail_message"), "");  // no "computing..." / "Select a tensor."
  EXPECT_EQ(s.fact("heatmap_message"), "");
  EXPECT_EQ(s.fact("drift_message"), "");

  // Heatmap: heat cells, many colours, no single colour dominating.
  ASSERT_TRUE(s.has("heatmap_plot"));
  const Rect hm = s.region("heatmap_plot");
  ASSERT_GT(hm.w * hm.h, 100 * 100);
  size_t heat = 0;
  for (int y = hm.y; y < hm.y + hm.h; ++y)
    for (int x = hm.x; x < hm.x + hm.w; ++x) heat += heat_like(s.at(x, y)) ? 1 : 0;
  const double area = static_cast<double>(hm.w) * hm.h;
  EXPECT_GT(static_cast<double>(heat) / area, 0.05) << heat << " heat-coloured pixels";
  const auto hist = s.histogram(hm);
  EXPECT_GT(hist.size(), 40u);
  size_t top = 0;
  for (const auto& [c, n] : hist) top = std::max(top, n);
  EXPECT_LT(static_cast<double>(top) / area, 0.8);

  // Drift: a real plot (not a 45 px strip) with the BF16 line in it.
  ASSERT_TRUE(s.has("drift_plot"));
  const Rect dp = s.region("drift_plot");
  EXPECT_GE(dp.h, 150);
  EXPECT_GT(s.count(dp, format_color(Format::BF16), 10), 40u);

  // The what-if controls are inside the window and the detail panel, with room to use them; the
  // slider shows its grab.
  ASSERT_TRUE(s.has("whatif") && s.has("whatif_slider") && s.has("whatif_delayed") &&
              s.has("detail"));
  const Rect win{0, 0, s.w, s.h};
  const Rect wi = s.region("whatif"), det = s.region("detail");
  EXPECT_TRUE(inside(wi, det));
  EXPECT_GE(wi.w, 300);
  EXPECT_GE(wi.h, 150);
  const Rect sl = s.region("whatif_slider"), dl = s.region("whatif_delayed");
  EXPECT_TRUE(inside(sl, wi));
  EXPECT_TRUE(inside(dl, wi));
  EXPECT_TRUE(inside(sl, win));
  EXPECT_GE(sl.w, 120);
  EXPECT_GT(s.count(sl, {61, 133, 224}, 6), 20u) << "slider grab (ImGuiCol_SliderGrab) not drawn";

  // No loss-scale records in this sample: the track collapses and says so.
  EXPECT_EQ(s.fact("loss_scale_records"), "0");
  EXPECT_EQ(s.fact("timeline_message"), "no loss-scale records in this trace");
  EXPECT_LE(s.region("timeline").h, 130);
}

TEST_F(GuiScreenshot, SelectAndStepAreHonouredAndOverflowCellsCarryTheirSeverityColour) {
  const gui::Run& run = sample_run();
  ASSERT_TRUE(run.ok) << run.error;
  const auto* d = find_risk(run, "gemm#0.D");
  const auto* b = find_risk(run, "gemm#0.B");
  ASSERT_TRUE(d && b);
  const auto& f16d = d->formats[static_cast<size_t>(target_index(Format::FP16))];
  const auto& f16b = b->formats[static_cast<size_t>(target_index(Format::FP16))];
  // The sample's known FP16 overflow (the trace was recorded from a real PyTorch run).
  ASSERT_GT(f16d.overflow, 0u);
  ASSERT_GT(f16b.overflow, 0u);
  const auto sev_d = metric_severity(f16d, Col::Overflow, run.analysis.options.risk, nullptr);
  const auto sev_b = metric_severity(f16b, Col::Overflow, run.analysis.options.risk, nullptr);
  EXPECT_GE(sev_d, analysis::Severity::Error);
  EXPECT_GE(sev_b, analysis::Severity::Error);

  // A step in the middle of the run (the sample records every 10th step).
  ASSERT_GE(run.timeline_steps.size(), 3u);
  const uint64_t step = run.timeline_steps[run.timeline_steps.size() / 2];
  const Shot s =
      take("select", {kSample}, {"--select", "gemm#0.D", "--step", std::to_string(step)});
  ASSERT_EQ(s.rc, 0) << s.log;
  EXPECT_EQ(s.fact("selected"), "gemm#0.D");
  EXPECT_EQ(s.fact("step"), std::to_string(step));

  // The FP16 overflow cells are painted in the analysis severity colour (unselected row: pure).
  // Only cells wholly in the visible body of the table count (rows scrolled under the frozen
  // header rows are laid out there but clipped).
  ASSERT_TRUE(s.has("table_body") && s.has("cell:gemm#0.B:fp16.ovf"));
  const Rect table = s.region("table_body");
  auto visible = [&](const std::string& name) {
    const Rect r = s.region(name);
    return s.has(name) && inside(r, table) ? r : Rect{};
  };
  const Rect cb = visible("cell:gemm#0.B:fp16.ovf");
  ASSERT_GT(cb.w * cb.h, 100);
  EXPECT_GT(static_cast<double>(s.count(cb, severity_color(sev_b))) / (cb.w * cb.h), 0.4);
  // ... and that colour is nowhere in the cells of a metric the analysis finds harmless.
  const auto& bf = b->formats[static_cast<size_t>(target_index(Format::BF16))];
  ASSERT_EQ(metric_severity(bf, Col::Overflow, run.analysis.options.risk, nullptr),
            analysis::Severity::None);
  const Rect cbf = intersect(s.region("cell:gemm#0.B:bf16.ovf"), s.region("table"));
  if (cbf.w * cbf.h > 100) {
    EXPECT_EQ(s.count(cbf, severity_color(sev_b)), 0u);
  }
  int clean_cells = 0;
  for (const auto& r : run.analysis.risks) {  // every visible FP16 overflow-free row
    if (r.formats[static_cast<size_t>(target_index(Format::FP16))].overflow != 0) continue;
    const Rect c = visible("cell:" + r.id + ":fp16.ovf");
    if (c.w * c.h <= 100) continue;
    ++clean_cells;
    EXPECT_EQ(s.count(c, severity_color(sev_b)), 0u) << r.id;
  }
  EXPECT_GE(clean_cells, 3);
  // The selected row carries the selection highlight; an unselected one does not.
  ASSERT_TRUE(s.has("row:gemm#0.D") && s.has("row:gemm#0.B"));
  ASSERT_GT(visible("row:gemm#0.D").w, 0);
  ASSERT_GT(visible("row:gemm#0.B").w, 0);
  const Rgb sel = s.dominant(visible("row:gemm#0.D"));
  const Rgb other = s.dominant(visible("row:gemm#0.B"));
  EXPECT_NE(sel, other);
  EXPECT_GT(static_cast<int>(sel.b), static_cast<int>(sel.r) + 40) << "selection highlight is blue";
  // The selected row's FP16 overflow cell still shows its severity colour under the highlight:
  // not the plain highlight of a cell without one, and redder than it.
  const Rect cd = visible("cell:gemm#0.D:fp16.ovf");
  ASSERT_GT(cd.w * cd.h, 100);
  const Rgb under = s.dominant(cd);
  EXPECT_NE(under, sel);
  EXPECT_GT(static_cast<int>(under.r), static_cast<int>(sel.r) + 30);

  // The current-step line sits at that step of the timeline.
  ASSERT_TRUE(s.has("timeline_plot"));
  const Rect tp = s.region("timeline_plot");
  const double x0 = std::stod(s.fact("x0")), x1 = std::stod(s.fact("x1"));
  const int cx =
      tp.x + static_cast<int>(std::lround((static_cast<double>(step) - x0) / (x1 - x0) * tp.w));
  auto whiteness = [&](int x) {
    int n = 0;
    for (int y = tp.y + 1; y < tp.y + tp.h - 1; ++y) {
      const Rgb p = s.at(x, y);
      n += (p.r > 190 && p.g > 190 && p.b > 190) ? 1 : 0;
    }
    return n;
  };
  int best = 0;
  for (int x = cx - 2; x <= cx + 2; ++x) best = std::max(best, whiteness(x));
  EXPECT_GE(best, (tp.h - 2) / 2) << "no current-step line at x=" << cx;
  EXPECT_LT(whiteness(tp.x + tp.w / 10), (tp.h - 2) / 2);  // and not everywhere

  // The heatmap follows the selection: another tensor draws other pixels.
  // (another tensor of other shape and magnitudes: the one with the smallest amax)
  const auto other_t =
      std::min_element(run.analysis.risks.begin(), run.analysis.risks.end(),
                       [](const auto& a, const auto& c) { return a.amax < c.amax; });
  ASSERT_NE(other_t->id, "gemm#0.D");
  const Shot o =
      take("select_other", {kSample}, {"--select", other_t->id, "--step", std::to_string(step)});
  ASSERT_EQ(o.rc, 0) << o.log;
  EXPECT_EQ(o.fact("selected"), other_t->id);
  const Rect h1 = s.region("heatmap_plot"), h2 = o.region("heatmap_plot");
  ASSERT_EQ(h1.w, h2.w);
  ASSERT_EQ(h1.h, h2.h);
  size_t differ = 0;
  for (int y = 0; y < h1.h; ++y)
    for (int x = 0; x < h1.w; ++x)
      differ += s.at(h1.x + x, h1.y + y) == o.at(h2.x + x, h2.y + y) ? 0 : 1;
  EXPECT_GT(static_cast<double>(differ) / (h1.w * h1.h), 0.05);

  // The heatmap's line labels do not collide and stay beside the plot.
  std::vector<Rect> labels;
  for (const auto& [k, v] : s.info["regions"].items())
    if (k.rfind("heat_label:", 0) == 0) labels.push_back(s.region(k));
  EXPECT_GE(labels.size(), 9u);  // 4 formats x (max, min normal) + amax
  for (size_t i = 0; i < labels.size(); ++i) {
    EXPECT_GE(labels[i].x, h1.x + h1.w);
    EXPECT_GE(labels[i].y, h1.y - 1);
    EXPECT_LE(labels[i].y + labels[i].h, h1.y + h1.h + 1);
    for (size_t j = i + 1; j < labels.size(); ++j) {
      const bool overlap =
          labels[i].y < labels[j].y + labels[j].h && labels[j].y < labels[i].y + labels[i].h;
      EXPECT_FALSE(overlap) << "labels " << i << " and " << j << " overlap";
    }
  }
}

TEST_F(GuiScreenshot, SqnrOfAFormatThatOverflowsIsNotPlotted) {
  // head.logits of the generated run exceeds E4M3's max (448) at every step: its E4M3 SQNR is
  // undefined everywhere, so the drift plot must hold no E4M3-coloured pixel, and no E4M3 bar.
  const std::string trace = (dir_ / "gen.fpst").string();
  ASSERT_EQ(std::system((quote(kGen) + " " + quote(trace) +
                         " --steps 40 --layers 2 --elements 2048 > /dev/null")
                            .c_str()),
            0);
  const auto run = load_run(trace);
  ASSERT_TRUE(run->ok) << run->error;
  const auto* logits = find_risk(*run, "gemm#2.D");
  ASSERT_TRUE(logits);
  ASSERT_EQ(logits->name, "head.logits");
  const auto drift = analysis::drift_series(*run->model, logits->tensor);
  const int e4 = target_index(Format::E4M3), bf = target_index(Format::BF16);
  for (size_t i = 0; i < drift.steps.size(); ++i) {
    ASSERT_GT(drift.overflow_frac[static_cast<size_t>(e4)][i], 0.0) << "step " << drift.steps[i];
    ASSERT_EQ(drift.overflow_frac[static_cast<size_t>(bf)][i], 0.0);
  }
  const Shot s = take("sqnr", {trace}, {"--select", "gemm#2.D"});
  ASSERT_EQ(s.rc, 0) << s.log;
  ASSERT_EQ(s.fact("selected"), "gemm#2.D");
  const Rect dp = s.region("drift_plot");
  ASSERT_GT(dp.w * dp.h, 0);
  EXPECT_EQ(s.count(dp, format_color(Format::E4M3), 24), 0u);
  EXPECT_GT(s.count(dp, format_color(Format::BF16), 10), 40u);
  EXPECT_FALSE(s.has("drift_bar:e4m3"));
  EXPECT_TRUE(s.has("drift_bar:bf16"));
}

TEST_F(GuiScreenshot, BrokenAndEmptyTracesShowTheirState) {
  // Not a trace: exit code 3 (screenshot written, a trace failed) and the red banner.
  const std::string junk = (dir_ / "junk.fpst").string();
  std::ofstream(junk) << "definitely not an fpscope trace\n";
  const Shot bad = take("corrupt", {junk});
  EXPECT_EQ(bad.rc, 3) << bad.log;
  ASSERT_TRUE(bad.has("banner"));
  const Rect bn = bad.region("banner");
  ASSERT_GT(bn.w * bn.h, 1000);
  EXPECT_GT(static_cast<double>(bad.count(bn, {150, 24, 36})) / (bn.w * bn.h), 0.5);
  // The good sample next to the bad file still loads and is shown.
  const Shot mixed = take("mixed", {junk, kSample});
  EXPECT_EQ(mixed.rc, 3);
  EXPECT_TRUE(mixed.has("banner"));
  EXPECT_FALSE(mixed.fact("selected").empty());
  EXPECT_TRUE(mixed.has("heatmap_plot"));

  // A trace with a tensor but no observations: says so instead of "computing...".
  const std::string empty = (dir_ / "empty.fpst").string();
  {
    std::string err;
    auto w = trace::TraceWriter::open(empty, "{}", {}, &err);
    ASSERT_TRUE(w) << err;
    trace::TensorInfo info;
    info.id = "gemm#0.D";
    info.op = "sgemm";
    w->define_tensor(info);
    ASSERT_TRUE(w->close());
  }
  const Shot e = take("empty", {empty});
  EXPECT_EQ(e.rc, 0) << e.log;
  EXPECT_EQ(e.fact("heatmap_message").rfind("no observations in this trace", 0), 0u)
      << e.fact("heatmap_message");
  EXPECT_EQ(e.fact("detail_message").rfind("no observations in this trace", 0), 0u);
  EXPECT_EQ(e.fact("drift_message").rfind("no observations in this trace", 0), 0u);
}

TEST_F(GuiScreenshot, RunsWithTheSameFileNameShowTheirFolders) {
  fs::create_directories(dir_ / "fp16");
  fs::create_directories(dir_ / "bf16");
  fs::copy_file(kSample, dir_ / "fp16" / "run.fpst");
  fs::copy_file(kSample, dir_ / "bf16" / "run.fpst");
  const Shot s =
      take("two", {(dir_ / "fp16" / "run.fpst").string(), (dir_ / "bf16" / "run.fpst").string()});
  ASSERT_EQ(s.rc, 0) << s.log;
  EXPECT_EQ(s.fact("runs"), "fp16/run.fpst|bf16/run.fpst");
}
