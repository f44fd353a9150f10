// Unit tests of the viewer's display-free core: downsampling, heat raster, what-if glue,
// tensor-browser model, colours, run loading, latest-result slot.
// Size: ~600 lines of independent test cases, one suite per core module.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <thread>

#include "fpscope/analysis/analysis.h"
#include "fpscope/analysis/palette.h"
#include "fpscope/gui/colors.h"
#include "fpscope/gui/downsample.h"
#include "fpscope/gui/layout.h"
#include "fpscope/gui/tensor_view.h"
#include "fpscope/gui/view_model.h"
#include "fpscope/host_stats.h"
#include "fpscope/trace_io.h"

using namespace fpscope;
using namespace fpscope::gui;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("fpscope_gui_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// Writes a one-tensor trace: observations[k] = (step, values) through TraceWriter and the host
// statistics pass, and reads it back.
struct OneTensorTrace {
  std::string path;
  trace::Trace t;
  std::unique_ptr<trace::TraceModel> model;

  OneTensorTrace(const std::string& name,
                 const std::vector<std::pair<uint64_t, std::vector<float>>>& obs) {
    path = temp_path(name);
    std::string err;
    auto w = trace::TraceWriter::open(path, "{}", {}, &err);
    EXPECT_TRUE(w) << err;
    trace::TensorInfo info;
    info.id = "gemm#0.D";
    info.op = "sgemm";
    info.rows = 1;
    info.cols = 1;
    const uint32_t ti = w->define_tensor(info);
    uint64_t seq = 0;
    for (const auto& [step, values] : obs) {
      trace::Observation o;
      o.tensor = ti;
      o.step = step;
      o.seq = seq++;
      compute_stats(values.data(), Format::FP32, values.size(), 1, values.size(), {}, &o.stats);
      w->observe(o);
    }
    EXPECT_TRUE(w->close());
    trace::ReadError re;
    EXPECT_TRUE(trace::read_trace(path, &t, &re)) << re.message;
    model = std::make_unique<trace::TraceModel>(t);
  }
  ~OneTensorTrace() { std::filesystem::remove(path); }
};

}  // namespace

// ---- downsampling ------------------------------------------------------------------------------

TEST(Downsample, ExactValuesOnHandMadeSeries) {
  const std::vector<double> x = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<double> y = {5, -1, 2, 8, 3, 3, -7, 0.5, 4, 10};
  // 5 columns of width 2 over [0, 10]: {0,1} {2,3} {4,5} {6,7} {8,9}.
  const auto cols = minmax_columns(x, y, 0.0, 10.0, 5);
  ASSERT_EQ(cols.size(), 5u);
  const double mins[5] = {-1, 2, 3, -7, 4}, maxs[5] = {5, 8, 3, 0.5, 10};
  for (int c = 0; c < 5; ++c) {
    EXPECT_EQ(cols[c].points, 2u);
    EXPECT_EQ(cols[c].finite, 2u);
    EXPECT_EQ(cols[c].y_min, mins[c]) << c;
    EXPECT_EQ(cols[c].y_max, maxs[c]) << c;
    EXPECT_EQ(cols[c].y_first, y[2 * c]);
    EXPECT_EQ(cols[c].y_last, y[2 * c + 1]);
    EXPECT_EQ(cols[c].i_first, static_cast<size_t>(2 * c));
  }
  EXPECT_EQ(cols[3].i_min, 6u);
  EXPECT_EQ(cols[4].i_max, 9u);
  // A window [2.5, 6.5] with 2 columns: [2.5,4.5) holds x=3,4; [4.5,6.5] holds x=5,6.
  const auto part = minmax_columns(x, y, 2.5, 6.5, 2);
  EXPECT_EQ(part[0].points, 2u);
  EXPECT_EQ(part[0].y_min, 3);
  EXPECT_EQ(part[0].y_max, 8);
  EXPECT_EQ(part[1].y_min, -7);
  EXPECT_EQ(part[1].y_max, 3);
  // The right edge belongs to the last column; outside points are ignored.
  EXPECT_EQ(column_of(10.0, 0.0, 10.0, 5), 4);
  EXPECT_EQ(column_of(10.5, 0.0, 10.0, 5), -1);
  EXPECT_EQ(column_of(-0.1, 0.0, 10.0, 5), -1);
  EXPECT_TRUE(minmax_columns(x, y, 1.0, 1.0, 3).empty());
}

TEST(Downsample, SingleSpikesSurviveAMillionPoints) {
  const size_t n = 1'000'000;
  std::vector<double> x(n), y(n);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (size_t i = 0; i < n; ++i) {
    x[i] = static_cast<double>(i);
    y[i] = u(rng);
  }
  y[123'457] = kInf;
  y[654'321] = kNaN;
  y[999'998] = -kInf;
  y[400'000] = 1e30;  // a finite spike
  const int w = 300;
  const auto cols = minmax_columns(x, y, 0.0, static_cast<double>(n - 1), w);
  ASSERT_EQ(cols.size(), static_cast<size_t>(w));
  const int c_inf = column_of(123'457, 0.0, n - 1.0, w);
  const int c_nan = column_of(654'321, 0.0, n - 1.0, w);
  const int c_ninf = column_of(999'998, 0.0, n - 1.0, w);
  const int c_big = column_of(400'000, 0.0, n - 1.0, w);
  uint64_t total = 0;
  for (int c = 0; c < w; ++c) {
    total += cols[c].points;
    EXPECT_EQ(cols[c].pos_inf, c == c_inf) << c;
    EXPECT_EQ(cols[c].nan, c == c_nan) << c;
    EXPECT_EQ(cols[c].neg_inf, c == c_ninf) << c;
    if (c == c_big) {
      EXPECT_EQ(cols[c].y_max, 1e30);
      EXPECT_EQ(cols[c].i_max, 400'000u);
    } else {
      EXPECT_LE(cols[c].y_max, 1.0);
    }
  }
  EXPECT_EQ(total, n);  // every point lands in exactly one column
}

// ---- per-step data, heat raster ----------------------------------------------------------------

TEST(TensorSteps, MergesObservationsPerStepAndKeepsHistograms) {
  // Step 3 has two observations (1.0 x3 and 2.0, -0.5); step 7 has one (8.0, 0).
  OneTensorTrace tr("merge.fpst", {{3, {1.0f, 1.0f, 1.0f}}, {3, {2.0f, -0.5f}}, {7, {8.0f, 0.0f}}});
  const auto ts = build_tensor_steps(*tr.model, 0);
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts.steps[0], 3u);
  EXPECT_EQ(ts.steps[1], 7u);
  EXPECT_EQ(ts.amax[0], 2.0f);
  EXPECT_EQ(ts.amax[1], 8.0f);
  EXPECT_EQ(ts.eligible[0], 5u);
  EXPECT_EQ(ts.eligible[1], 1u);  // the zero is not in the histogram
  // Bins: biased exponent * 4 (mantissa top bits 0 for these powers of two).
  const auto b0 = ts.step_bins(0);
  const auto c0 = ts.step_counts(0);
  ASSERT_EQ(b0.size(), 3u);
  EXPECT_EQ(b0[0], 126 * 4);  // 0.5
  EXPECT_EQ(c0[0], 1u);
  EXPECT_EQ(b0[1], 127 * 4);  // 1.0
  EXPECT_EQ(c0[1], 3u);
  EXPECT_EQ(b0[2], 128 * 4);  // 2.0
  EXPECT_EQ(ts.step_bins(1)[0], 130 * 4);
  EXPECT_EQ(ts.bin_lo, 126 * 4);
  EXPECT_EQ(ts.bin_hi, 130 * 4);
  EXPECT_EQ(ts.index_at_or_before(5), 0);
  EXPECT_EQ(ts.index_at_or_before(2), -1);
  EXPECT_EQ(ts.index_of(7), 1);
  EXPECT_EQ(ts.index_of(6), -1);
  // Octave coordinates line up with bins: 1.0 -> 0, 2^15 * 1.5 -> 15.5, bin 127*4 -> 0.
  EXPECT_EQ(octave_coord(1.0), 0.0);
  EXPECT_EQ(octave_coord(49152.0), 15.5);
  EXPECT_EQ(bin_coord(127 * 4 + 2), 0.5);
}

TEST(TensorSteps, RasterKeepsOneHotStepVisible) {
  // 2000 steps of 1.0; step 1234 instead holds 2^20 (one element): a 40-column raster must show
  // 2^20's bin at fraction 1 in that step's column, and nowhere else.
  std::vector<std::pair<uint64_t, std::vector<float>>> obs;
  for (uint64_t s = 0; s < 2000; ++s) obs.push_back({s, {s == 1234 ? 1048576.0f : 1.0f}});
  OneTensorTrace tr("raster.fpst", obs);
  const auto ts = build_tensor_steps(*tr.model, 0);
  const int lo = 127 * 4, hi = 147 * 4;
  const auto r = rasterize(ts, 0.0, 2000.0, 40, lo, hi);
  ASSERT_EQ(r.width, 40);
  ASSERT_EQ(r.rows, hi - lo + 1);
  const int spike_col = 1234 / 50;
  for (int c = 0; c < 40; ++c) {
    EXPECT_EQ(r.at(c, 147 * 4 - lo), c == spike_col ? 1.0f : 0.0f) << c;
    EXPECT_EQ(r.at(c, 0), 1.0f) << c;  // every column holds steps of 1.0
    EXPECT_EQ(r.at(c, 1), 0.0f) << c;  // an empty bin of a column with steps
  }
  // Beyond the last step: no data (negative), drawn as background.
  const auto wide = rasterize(ts, 0.0, 4000.0, 4, lo, hi);
  EXPECT_GE(wide.at(1, 0), 0.0f);
  EXPECT_LT(wide.at(3, 0), 0.0f);
  const auto px = raster_rgba(wide, 0xff000000u);
  EXPECT_EQ(px.size(), static_cast<size_t>(4 * wide.rows));
  EXPECT_EQ(px[3], 0xff000000u);  // top row, empty column
  EXPECT_EQ(px[static_cast<size_t>(wide.rows - 1) * 4], pack(heat_color(1.0f)));  // bottom, col 0
}

// ---- what-if glue ------------------------------------------------------------------------------

TEST(WhatIf, PowerOfTwoScalesByHand) {
  // 100 elements at 2 * max_finite(E4M3) (= 896: bin [1.75, 2) * 2^9) and 50 at 2^-12.
  const float big = 2.0f * max_finite(Format::E4M3);
  const float tiny = pow2f(-12);
  std::vector<float> v(100, big);
  v.insert(v.end(), 50, tiny);
  OneTensorTrace tr("pow2.fpst", {{0, v}});
  const auto ts = build_tensor_steps(*tr.model, 0);
  WhatIfConfig cfg;
  cfg.format = Format::E4M3;
  // s = 1: the whole big bin is above E4M3's max, 2^-12 is below half its smallest subnormal
  // (min_subnormal(E4M3) = 2^-9): exact counts.
  auto w = compute_whatif(ts, cfg);
  EXPECT_EQ(w.total.overflow_lo, 100u);
  EXPECT_EQ(w.total.overflow_hi, 100u);
  EXPECT_EQ(w.total.underflow_lo, 50u);
  EXPECT_EQ(w.total.underflow_hi, 50u);
  EXPECT_TRUE(w.total.exact);
  EXPECT_EQ(w.first_overflow_step, 0);
  EXPECT_EQ(w.eligible, 150u);
  // s = 2^-1: the big bin becomes [448, 512): its lowest value fits, the rest overflows:
  // bounds 0..100; 2^-13 still flushes.
  cfg.pow2 = -1;
  w = compute_whatif(ts, cfg);
  EXPECT_EQ(w.scale[0], 0.5f);
  EXPECT_EQ(w.total.overflow_lo, 0u);
  EXPECT_EQ(w.total.overflow_hi, 100u);
  EXPECT_FALSE(w.total.exact);
  EXPECT_EQ(w.first_overflow_step, -1);
  // s = 2^3: 896*8 overflows; 2^-9 is exactly E4M3's smallest subnormal (bin [2^-9, 1.25*2^-9)
  // stays subnormal).
  cfg.pow2 = 3;
  w = compute_whatif(ts, cfg);
  EXPECT_EQ(w.total.overflow_lo, 100u);
  EXPECT_EQ(w.total.underflow_hi, 0u);
  EXPECT_EQ(w.total.subnormal_lo, 50u);
  EXPECT_EQ(w.total.subnormal_hi, 50u);
  // s = 2^-2: [224, 256) all normal in E4M3; FP16 at s = 1 holds both exactly (896 normal, 2^-12
  // normal since min_normal(FP16) = 2^-14).
  cfg.pow2 = -2;
  w = compute_whatif(ts, cfg);
  EXPECT_EQ(w.total.overflow_hi, 0u);
  cfg.format = Format::FP16;
  cfg.pow2 = 0;
  w = compute_whatif(ts, cfg);
  EXPECT_EQ(w.total.overflow_hi + w.total.underflow_hi + w.total.subnormal_hi, 0u);
  // The single-step readout equals the series entry.
  const auto h = step_whatif(ts, 0, Format::E4M3, 1.0f);
  EXPECT_EQ(h.overflow_lo, 100u);
  EXPECT_EQ(h.underflow_lo, 50u);
}

TEST(WhatIf, DelayedScalingMatchesTheAnalysisLibrary) {
  // 24 steps whose amax swings over 2^-3 .. 2^12; delayed scaling with H = 4, margin 1.
  std::vector<std::pair<uint64_t, std::vector<float>>> obs;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (uint64_t s = 0; s < 24; ++s) {
    const float sig = std::ldexp(1.0f, static_cast<int>((s * 7) % 16) - 3);
    std::vector<float> v(256);
    for (auto& e : v) e = sig * nd(rng);
    obs.push_back({s * 10, v});
  }
  OneTensorTrace tr("delayed.fpst", obs);
  const auto ts = build_tensor_steps(*tr.model, 0);
  for (Format f : {Format::E4M3, Format::E5M2}) {
    WhatIfConfig cfg;
    cfg.format = f;
    cfg.mode = ScaleMode::Delayed;
    cfg.history_len = 4;
    cfg.margin = 1;
    const auto mine = compute_whatif(ts, cfg);
    analysis::WhatIfOptions wo;
    wo.history_len = 4;
    wo.margin = 1;
    wo.formats = {f};
    const auto theirs = analysis::fp8_whatif(*tr.model, wo);
    ASSERT_EQ(theirs.size(), 1u);
    // The first step only seeds the amax history (its amax is nonzero): not replayed.
    ASSERT_EQ(mine.replayed.size(), ts.size());
    EXPECT_EQ(mine.replayed[0], 0);
    EXPECT_EQ(mine.seed_steps, 1u);
    EXPECT_EQ(theirs[0].seed_steps, 1u);
    ASSERT_EQ(theirs[0].steps.size(), ts.size() - 1);
    // By hand: the first step is at TE's initial scale 1; the second (fp8_max * 2^-1) / amax(0).
    EXPECT_EQ(mine.scale[0], 1.0f);
    EXPECT_EQ(mine.scale[1], (max_finite(f) * 0.5f) / ts.amax[0]);
    int compared = 0;
    uint64_t eligible = 0;
    for (size_t i = 1; i < ts.size(); ++i) {
      EXPECT_EQ(mine.replayed[i], 1) << i;
      eligible += ts.eligible[i];
      const auto& a = theirs[0].steps[i - 1];
      EXPECT_EQ(a.step, ts.steps[i]);
      EXPECT_EQ(a.scale, mine.scale[i]) << i;
      EXPECT_EQ(a.eligible, ts.eligible[i]);
      if (a.source != analysis::CountSource::Histogram) continue;
      ++compared;
      EXPECT_EQ(a.overflow_lo, mine.counts[i].overflow_lo) << i;
      EXPECT_EQ(a.overflow_hi, mine.counts[i].overflow_hi) << i;
      EXPECT_EQ(a.underflow_lo, mine.counts[i].underflow_lo) << i;
      EXPECT_EQ(a.underflow_hi, mine.counts[i].underflow_hi) << i;
    }
    EXPECT_GT(compared, 20);
    EXPECT_EQ(mine.eligible, eligible);  // totals leave the seed step out
    EXPECT_GT(mine.overflow_steps, 0u);  // the swings saturate some steps
    EXPECT_EQ(static_cast<int64_t>(mine.overflow_steps),
              static_cast<int64_t>(theirs[0].saturate_steps));
  }
}

// ---- tensor browser --------------------------------------------------------------------------

namespace {
analysis::TensorRisk risk_row(const std::string& id, const std::string& name, double fp16_ovf,
                              double sqnr, analysis::Severity sev, int score) {
  analysis::TensorRisk r;
  r.id = id;
  r.name = name;
  r.op = "sgemm";
  r.severity = sev;
  r.score = score;
  r.formats[target_index(Format::FP16)].overflow_frac = fp16_ovf;
  r.formats[target_index(Format::FP16)].sqnr_db = sqnr;
  return r;
}
}  // namespace

TEST(TensorBrowser, FiltersAndSorts) {
  using analysis::Severity;
  std::vector<analysis::TensorRisk> rows = {
      risk_row("gemm#0.A", "layer0.in", 0.0, 60.0, Severity::None, 0),
      risk_row("gemm#1.D", "head.logits", 0.25, 40.0, Severity::Error, 3900),
      risk_row("gemm#2.D", "grad.w1", 0.0, kNaN, Severity::Warning, 2500),
      risk_row("gemm#3.B", "layer3.weight", 0.001, 65.0, Severity::Info, 1200)};
  rows[3].role = trace::Role::B;
  const int fp16 = target_index(Format::FP16);
  auto ids = [&](const std::vector<uint32_t>& idx) {
    std::string s;
    for (uint32_t i : idx) s += rows[i].id + " ";
    return s;
  };
  EXPECT_EQ(ids(filter_sort(rows, "", {{Col::Overflow, fp16, true}})),
            "gemm#1.D gemm#3.B gemm#0.A gemm#2.D ");  // ties keep the analysis order
  EXPECT_EQ(ids(filter_sort(rows, "", {{Col::Sqnr, fp16, false}})),
            "gemm#1.D gemm#0.A gemm#3.B gemm#2.D ");  // NaN last ascending...
  EXPECT_EQ(ids(filter_sort(rows, "", {{Col::Sqnr, fp16, true}})),
            "gemm#3.B gemm#0.A gemm#1.D gemm#2.D ");  // ... and descending
  EXPECT_EQ(ids(filter_sort(rows, "sev:warning", {{Col::Severity, 0, true}})),
            "gemm#1.D gemm#2.D ");
  EXPECT_EQ(ids(filter_sort(rows, "LAYER", {{Col::Id, 0, false}})), "gemm#0.A gemm#3.B ");
  EXPECT_EQ(ids(filter_sort(rows, "layer !weight", {{Col::Id, 0, false}})), "gemm#0.A ");
  EXPECT_EQ(ids(filter_sort(rows, "b", {{Col::Id, 0, false}})), "gemm#3.B ");  // role B
  EXPECT_EQ(ids(filter_sort(rows, "nothing-like-this", {})), "");
  EXPECT_EQ(shape_text(512, 256), "512x256");
}

TEST(TensorBrowser, CellSeverityUsesAnalysisThresholds) {
  analysis::RiskOptions opt;
  analysis::FormatRisk r;
  r.format = Format::FP16;
  r.eligible = 1000;
  r.overflow = 10;
  r.overflow_frac = 0.01;
  r.underflow = 5;
  r.underflow_frac = 0.005;  // below underflow_warn (1%)
  r.subnormal = 200;
  r.subnormal_frac = 0.2;                                     // above subnormal_info (10%)
  r.sqnr_db = analysis::nominal_sqnr_db(Format::FP16) - 1.0;  // within the margin
  std::string why;
  EXPECT_EQ(metric_severity(r, Col::Overflow, opt, &why), analysis::Severity::Error);
  EXPECT_NE(why.find("overflow"), std::string::npos);
  EXPECT_EQ(metric_severity(r, Col::Underflow, opt, nullptr), analysis::Severity::None);
  EXPECT_EQ(metric_severity(r, Col::Subnormal, opt, nullptr), analysis::Severity::Info);
  // The whole-format verdict of the analysis is the worst of the cells.
  int score = 0;
  EXPECT_EQ(analysis::format_severity(r, opt, &score, nullptr), analysis::Severity::Error);
  // A degraded SQNR of a format that overflows is undefined (n/a): no SQNR severity, even when
  // a library still reports a number; the overflow cell carries the problem.
  r.sqnr_db = analysis::nominal_sqnr_db(Format::FP16) - opt.sqnr_margin_db - 1.0;
  EXPECT_EQ(metric_severity(r, Col::Sqnr, opt, nullptr), analysis::Severity::None);
  // Without overflow the same SQNR is judged by the analysis thresholds.
  r.overflow = 0;
  r.overflow_frac = 0.0;
  r.sqnr_db = analysis::nominal_sqnr_db(Format::FP16) - 1.0;
  EXPECT_EQ(metric_severity(r, Col::Sqnr, opt, nullptr), analysis::Severity::None);
  r.sqnr_db = analysis::nominal_sqnr_db(Format::FP16) - opt.sqnr_margin_db - 1.0;
  EXPECT_EQ(metric_severity(r, Col::Sqnr, opt, nullptr), analysis::Severity::Warning);
}

// ---- colours -----------------------------------------------------------------------------------

TEST(Colors, HeatRampIsMonotoneAndSeveritiesDistinct) {
  auto lum = [](Rgb c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; };
  double prev = -1;
  for (int i = 0; i <= 64; ++i) {
    const double l = lum(heat_color(static_cast<float>(i) / 64.0f));
    EXPECT_GT(l, prev) << i;
    prev = l;
  }
  EXPECT_EQ(heat_t(1.0), 1.0f);
  EXPECT_EQ(heat_t(kHeatMinFrac), 0.0f);
  EXPECT_EQ(heat_t(1e-12), 0.0f);  // tiny but present: the darkest colour, not background
  EXPECT_LT(heat_t(0.0), 0.0f);
  EXPECT_NEAR(heat_t(1e-3), 0.5f, 1e-6);
  for (int a = 1; a <= 4; ++a)
    for (int b = a + 1; b <= 4; ++b)
      EXPECT_FALSE(severity_color(static_cast<analysis::Severity>(a)) ==
                   severity_color(static_cast<analysis::Severity>(b)));
  EXPECT_EQ(pack({1, 2, 3}, 4), 0x04030201u);
}

// The viewer draws every format in the analysis palette's colour (the report's too): the same
// RGB for every listed format, spelled here independently of both.
TEST(Colors, FormatColorsAreThePalettes) {
  const struct {
    Format f;
    Rgb rgb;
  } expected[] = {{Format::FP32, {136, 136, 136}},
                  {Format::BF16, {0, 158, 115}},
                  {Format::FP16, {230, 159, 0}},
                  {Format::E4M3, {204, 121, 167}},
                  {Format::E5M2, {86, 180, 233}}};
  ASSERT_EQ(std::size(expected), static_cast<size_t>(kNumFormats));
  for (const auto& e : expected) {
    SCOPED_TRACE(spec(e.f).name);
    EXPECT_EQ(format_color(e.f), e.rgb);
    const analysis::PaletteRgb p = analysis::format_rgb(e.f);
    EXPECT_EQ(format_color(e.f), (Rgb{p.r, p.g, p.b}));
  }
}

// ---- off-thread results ------------------------------------------------------------------------

TEST(Latest, KeepsOnlyTheNewestResult) {
  Latest<int> slot;
  std::atomic<bool> release{false};
  slot.request([&] {
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return 1;  // stale by the time it finishes
  });
  const uint64_t g2 = slot.request([] { return 2; });
  EXPECT_EQ(slot.generation(), g2);
  for (int i = 0; i < 2000 && !slot.current(); ++i) {
    slot.poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(slot.current());
  EXPECT_EQ(*slot.value(), 2);
  release = true;
  slot.wait_all();
  EXPECT_EQ(*slot.value(), 2);  // the older job finished later and was dropped
  slot.reset();
  EXPECT_FALSE(slot.current());
}

// ---- loading -----------------------------------------------------------------------------------

TEST(LoadRun, ErrorsNameTheFileAndTruncatedTracesLoad) {
  const std::string junk = temp_path("junk.fpst");
  { std::ofstream(junk) << "this is not a trace at all, just text\n"; }
  auto r = load_run(junk);
  EXPECT_FALSE(r->ok);
  EXPECT_NE(r->error.find(junk), std::string::npos) << r->error;
  EXPECT_FALSE(r->model);
  std::filesystem::remove(junk);

  auto missing = load_run(temp_path("does_not_exist.fpst"));
  EXPECT_FALSE(missing->ok);
  EXPECT_NE(missing->error.find("does_not_exist.fpst"), std::string::npos);

  std::vector<std::pair<uint64_t, std::vector<float>>> obs;
  for (uint64_t s = 0; s < 50; ++s)
    obs.push_back({s, std::vector<float>(64, 1.0f + static_cast<float>(s))});
  OneTensorTrace tr("trunc.fpst", obs);
  const auto size = std::filesystem::file_size(tr.path);
  std::filesystem::resize_file(tr.path, size - 7);
  auto t = load_run(tr.path);
  ASSERT_TRUE(t->ok) << t->error;
  EXPECT_TRUE(t->trace->truncated);
  EXPECT_EQ(t->label, std::filesystem::path(tr.path).filename().string());
}

// ---- SQNR as shown -----------------------------------------------------------------------------

TEST(ShownSqnr, OverflowMakesItUndefinedWhateverTheLibrarySays) {
  // The analysis library's value where the format overflows: NaN (new) or a number (old).
  for (double lib : {kNaN, 76.5}) {
    const auto q = shown_sqnr(lib, 3.0);
    EXPECT_EQ(q.kind, SqnrKind::Undefined) << lib;
    EXPECT_EQ(sqnr_text(q), "n/a");
    EXPECT_TRUE(std::isnan(q.plot_value()));
  }
  EXPECT_EQ(shown_sqnr(76.54, 0.0).kind, SqnrKind::Value);
  EXPECT_EQ(sqnr_text(shown_sqnr(76.54, 0.0)), "76.5");
  EXPECT_DOUBLE_EQ(shown_sqnr(76.54, 0.0).plot_value(), 76.54);
  EXPECT_EQ(sqnr_text(shown_sqnr(kInf, 0.0)), "exact");
  EXPECT_EQ(shown_sqnr(kInf, 0.0).plot_value(), kInf);
  EXPECT_EQ(sqnr_text(shown_sqnr(kNaN, 0.0)), "-");  // no signal
  EXPECT_EQ(shown_sqnr(kNaN, 0.0).kind, SqnrKind::NoSignal);
  EXPECT_EQ(shown_sqnr(12.0, 1e-9).kind, SqnrKind::Undefined);  // a fraction works the same
  EXPECT_STREQ(kSqnrUndefinedHelp, "format overflows: SQNR undefined");

  // The table sorts an overflowing format's SQNR after every number, both directions.
  using analysis::Severity;
  std::vector<analysis::TensorRisk> rows = {
      risk_row("gemm#0.D", "", 0.0, 50.0, Severity::None, 0),
      risk_row("gemm#1.D", "", 0.9, 90.0, Severity::Error, 3000),  // E4M3-style "90 dB"
      risk_row("gemm#2.D", "", 0.0, 70.0, Severity::None, 0)};
  const int fp16 = target_index(Format::FP16);
  rows[1].formats[static_cast<size_t>(fp16)].overflow = 900;
  auto ids = [&](const std::vector<uint32_t>& idx) {
    std::string s;
    for (uint32_t i : idx) s += rows[i].id + " ";
    return s;
  };
  EXPECT_EQ(ids(filter_sort(rows, "", {{Col::Sqnr, fp16, true}})), "gemm#2.D gemm#0.D gemm#1.D ");
  EXPECT_EQ(ids(filter_sort(rows, "", {{Col::Sqnr, fp16, false}})), "gemm#0.D gemm#2.D gemm#1.D ");
}

// ---- run chips ---------------------------------------------------------------------------------

TEST(RunLabels, ParentFoldersOnlyWhereFileNamesClash) {
  EXPECT_EQ(run_labels({"/a/fp16/run.fpst", "/a/bf16/run.fpst", "/x/other.fpst"}),
            (std::vector<std::string>{"fp16/run.fpst", "bf16/run.fpst", "other.fpst"}));
  // Same folder name one level up: go up until they differ.
  EXPECT_EQ(run_labels({"/r1/seed/run.fpst", "/r2/seed/run.fpst"}),
            (std::vector<std::string>{"r1/seed/run.fpst", "r2/seed/run.fpst"}));
  EXPECT_EQ(run_labels({"run.fpst"}), (std::vector<std::string>{"run.fpst"}));
  // The same file opened twice stays as it is (nothing can tell them apart).
  EXPECT_EQ(run_labels({"/a/run.fpst", "/a/run.fpst"}),
            (std::vector<std::string>{"run.fpst", "run.fpst"}));
}

// ---- label layout ------------------------------------------------------------------------------

TEST(SpreadLabels, NoOverlapOrderKeptLoneLabelsStay) {
  // Three labels wanting nearly the same place, one far away, one off the top.
  const std::vector<float> want = {100.0f, 102.0f, 101.0f, 300.0f, -50.0f};
  const auto pos = spread_labels(want, 10.0f, 400.0f, 16.0f);
  ASSERT_EQ(pos.size(), want.size());
  EXPECT_FLOAT_EQ(pos[3], 300.0f);  // alone: exactly where it wants
  EXPECT_FLOAT_EQ(pos[4], 10.0f);   // clamped to the edge
  // The cluster keeps the wanted order (0 < 2 < 1), 16 apart, centred on its mean.
  EXPECT_FLOAT_EQ(pos[2] - pos[0], 16.0f);
  EXPECT_FLOAT_EQ(pos[1] - pos[2], 16.0f);
  EXPECT_NEAR((pos[0] + pos[1] + pos[2]) / 3.0f, (100.0f + 101.0f + 102.0f) / 3.0f, 1e-3f);
  // Every pair is at least the gap apart.
  for (size_t i = 0; i < pos.size(); ++i)
    for (size_t j = i + 1; j < pos.size(); ++j) EXPECT_GE(std::abs(pos[i] - pos[j]), 16.0f - 1e-3f);

  // A cluster pushed against the bottom edge stays inside.
  const auto low = spread_labels(std::vector<float>{395.0f, 396.0f, 397.0f}, 0.0f, 400.0f, 20.0f);
  EXPECT_FLOAT_EQ(low[2], 400.0f);
  EXPECT_FLOAT_EQ(low[1], 380.0f);
  EXPECT_FLOAT_EQ(low[0], 360.0f);
  // More labels than fit: the gap shrinks to fit the range exactly.
  const auto many = spread_labels(std::vector<float>(11, 50.0f), 0.0f, 100.0f, 30.0f);
  EXPECT_FLOAT_EQ(many.front(), 0.0f);
  EXPECT_FLOAT_EQ(many.back(), 100.0f);
  EXPECT_NEAR(many[1] - many[0], 10.0f, 1e-4f);
}

// ---- heat image (what the heatmap uploads) -----------------------------------------------------

TEST(TensorSteps, HeatImageIsTheRasterWithItsRange) {
  std::vector<std::pair<uint64_t, std::vector<float>>> obs;
  for (uint64_t s = 0; s < 8; ++s)
    obs.push_back({s, std::vector<float>(32, s == 5 ? 1024.0f : 1.0f)});
  OneTensorTrace tr("heatimg.fpst", obs);
  const auto ts = build_tensor_steps(*tr.model, 0);
  const uint32_t bg = pack({1, 2, 3});
  const int b1 = 127 * 4, b1024 = (127 + 10) * 4;  // bins of 1.0 and 1024
  const auto img = heat_image(ts, 0.0, 8.0, 8, b1, b1024, bg);
  EXPECT_EQ(img.x0, 0.0);
  EXPECT_EQ(img.x1, 8.0);
  EXPECT_EQ(img.row_lo, b1);
  EXPECT_EQ(img.row_hi, b1024);
  ASSERT_EQ(img.width, 8);
  ASSERT_EQ(img.rows, b1024 - b1 + 1);
  ASSERT_EQ(img.rgba.size(), static_cast<size_t>(img.width * img.rows));
  // Top row (first) is bin b1024: hot only in column 5; bottom row is bin b1: hot elsewhere.
  const uint32_t hot = pack(heat_color(1.0f));
  for (int c = 0; c < 8; ++c) {
    EXPECT_EQ(img.rgba[static_cast<size_t>(c)] == hot, c == 5) << c;
    EXPECT_EQ(img.rgba[static_cast<size_t>((img.rows - 1) * img.width + c)] == hot, c != 5) << c;
  }
  // A bin no step populates is drawn as the background (fraction 0 is "nothing there").
  EXPECT_EQ(img.rgba[static_cast<size_t>(img.width * (img.rows / 2))], bg);
}
