// Unit tests of the viewer core's block-scaled formats (block_view.h, trace format 1.3): the
// tensor table's per-tensor loss/SQNR and their sort, the per-step series and scale histograms
// the drift and heatmap panels draw, and the block-coverage numbers. Expected values are worked
// out by hand from the counts written (and, end to end, from the OCP MX scale rule).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "fpscope/gui/block_view.h"
#include "fpscope/gui/tensor_view.h"
#include "fpscope/gui/view_model.h"
#include "fpscope/host_stats.h"
#include "fpscope/trace_io.h"

using namespace fpscope;
using namespace fpscope::gui;

namespace {

constexpr int kMx8E4 = 0;  // kBlockFormats indices
constexpr int kMx8E5 = 1;
constexpr int kMx6E3 = 2;
constexpr int kMx6E2 = 3;
constexpr int kMx4 = 4;
constexpr int kNv4 = 5;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("fpscope_gui_blocks_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

BlockFormatCounts counts(uint64_t elements, uint64_t flushed, uint64_t saturated, double sum_x2,
                         double sum_err2) {
  BlockFormatCounts c;
  c.blocks = elements / 32;
  c.elements = elements;
  c.flushed = flushed;
  c.saturated = saturated;
  c.sum_x2 = sum_x2;
  c.sum_err2 = sum_err2;
  return c;
}

// One observation to write: its tensor, step, values (the scalar statistics and exponent
// histogram come from the host pass) and, when mask != 0, a hand-made block section.
struct Obs {
  uint32_t tensor;
  uint64_t step;
  std::vector<float> values;
  uint32_t mask = 0;
  std::vector<std::pair<int, BlockFormatCounts>> fmt;
  std::vector<std::tuple<int, int, uint64_t>> scales;  // (format, bin, blocks)
};

// Writes tensors "t0".."t<n-1>" and the observations through TraceWriter, reads it back.
struct BlockTrace {
  std::string path;
  trace::Trace t;
  std::unique_ptr<trace::TraceModel> model;

  BlockTrace(const std::string& name, int tensors, const std::vector<Obs>& obs) {
    path = temp_path(name);
    std::string err;
    auto w = trace::TraceWriter::open(path, "{}", {}, &err);
    EXPECT_TRUE(w) << err;
    for (int k = 0; k < tensors; ++k) {
      trace::TensorInfo info;
      info.id = "t" + std::to_string(k);
      info.op = "sgemm";
      info.rows = 64;
      info.cols = 1;
      w->define_tensor(info);
    }
    uint64_t seq = 0;
    for (const Obs& x : obs) {
      trace::Observation o;
      o.tensor = x.tensor;
      o.step = x.step;
      o.seq = seq++;
      compute_stats(x.values.data(), Format::FP32, x.values.size(), 1, x.values.size(), {},
                    &o.stats);
      o.stats.blocks.mask = x.mask;
      for (const auto& [f, c] : x.fmt) o.stats.blocks.fmt[f] = c;
      for (const auto& [f, bin, n] : x.scales) o.stats.blocks.scale_hist[f][bin] = n;
      w->observe(o);
    }
    EXPECT_TRUE(w->close());
    trace::ReadError re;
    EXPECT_TRUE(trace::read_trace(path, &t, &re)) << re.message;
    model = std::make_unique<trace::TraceModel>(t);
  }
  ~BlockTrace() { std::filesystem::remove(path); }
};

// t0: MXFP8 E4M3 at steps 1 and 2 (loss 3/64 then 1/64; SQNR 10 log10(100/1), 10 log10(300/3)),
//     MXFP4 only at step 2 (16/64 lost, 10 log10(300/30)).
// t1: MXFP8 E4M3 at step 1, 8/64 lost, SQNR 10 log10(1000/1) = 30 dB.
// t2: no block section at all.
std::vector<Obs> three_tensors() {
  const std::vector<float> v = {1.0f, 2.0f, 0.25f};
  return {
      {0, 1, v, 1u << kMx8E4, {{kMx8E4, counts(64, 2, 1, 100.0, 1.0)}}, {{kMx8E4, 120, 2}}},
      {0,
       2,
       v,
       (1u << kMx8E4) | (1u << kMx4),
       {{kMx8E4, counts(64, 1, 0, 300.0, 3.0)}, {kMx4, counts(64, 8, 8, 300.0, 30.0)}},
       {{kMx8E4, 121, 2}, {kMx4, 125, 2}}},
      {1, 1, v, 1u << kMx8E4, {{kMx8E4, counts(64, 8, 0, 1000.0, 1.0)}}, {}},
      {2, 1, v, 0, {}, {}},
  };
}

std::string ids(const std::vector<uint32_t>& idx, const std::vector<analysis::TensorRisk>& rows) {
  std::string s;
  for (uint32_t i : idx) s += rows[i].id + " ";
  return s;
}

}  // namespace

TEST(BlockColumns, PerTensorTotalsAreTheAnalysisLibrarys) {
  BlockTrace tr("columns.fpst", 3, three_tensors());
  const BlockColumns b = block_columns(tr.t);
  EXPECT_EQ(b.formats, (std::vector<int>{kMx8E4, kMx4}));
  ASSERT_EQ(b.tensors.size(), 3u);
  const BlockCell* c = b.cell(0, kMx8E4);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->counts.elements, 128u);
  EXPECT_DOUBLE_EQ(block_loss(c->counts), 4.0 / 128.0);
  EXPECT_DOUBLE_EQ(block_sqnr(c->counts), 20.0);  // 10 log10(400 / 4)
  c = b.cell(0, kMx4);
  ASSERT_NE(c, nullptr);
  EXPECT_DOUBLE_EQ(block_loss(c->counts), 0.25);
  EXPECT_DOUBLE_EQ(block_sqnr(c->counts), 10.0);
  EXPECT_DOUBLE_EQ(block_sqnr(b.cell(1, kMx8E4)->counts), 30.0);
  EXPECT_EQ(b.cell(1, kMx4), nullptr);  // not measured on t1
  EXPECT_EQ(b.cell(2, kMx8E4), nullptr);
  EXPECT_EQ(b.cell(7, kMx8E4), nullptr);  // out of range
  EXPECT_EQ(b.cell(0, kMx8E5), nullptr);  // never measured
  EXPECT_EQ(block_format_label(kMx8E4), "MXFP8 E4M3");
  EXPECT_EQ(block_format_label(kNv4), "NVFP4");

  // load_run attaches them to the run; a trace without block sections has none (no columns).
  const auto run = load_run(tr.path);
  ASSERT_TRUE(run->ok) << run->error;
  EXPECT_EQ(run->blocks.formats, b.formats);
  BlockTrace plain("plain.fpst", 1, {{0, 1, {1.0f}, 0, {}, {}}});
  EXPECT_TRUE(block_columns(plain.t).formats.empty());
  EXPECT_TRUE(block_columns(plain.t).tensors.empty());
}

TEST(BlockColumns, SortByLossAndSqnrUnmeasuredLast) {
  BlockTrace tr("sort.fpst", 3, three_tensors());
  const auto run = load_run(tr.path);
  ASSERT_TRUE(run->ok) << run->error;
  const auto& rows = run->analysis.risks;
  ASSERT_EQ(rows.size(), 3u);
  const BlockColumns* b = &run->blocks;
  // MXFP8 E4M3 loss: t1 8/64 = 0.125, t0 4/128 = 0.031, t2 unmeasured (last either way).
  EXPECT_EQ(ids(filter_sort(rows, "", {{Col::BlockLoss, kMx8E4, true}}, b), rows), "t1 t0 t2 ");
  EXPECT_EQ(ids(filter_sort(rows, "", {{Col::BlockLoss, kMx8E4, false}}, b), rows), "t0 t1 t2 ");
  // SQNR: t1 30 dB, t0 20 dB.
  EXPECT_EQ(ids(filter_sort(rows, "", {{Col::BlockSqnr, kMx8E4, true}}, b), rows), "t1 t0 t2 ");
  EXPECT_EQ(ids(filter_sort(rows, "", {{Col::BlockSqnr, kMx8E4, false}}, b), rows), "t0 t1 t2 ");
  // MXFP4: only t0 measured; the others keep the analysis order (stable) after it.
  const auto mx4 = ids(filter_sort(rows, "", {{Col::BlockLoss, kMx4, false}}, b), rows);
  EXPECT_EQ(mx4.substr(0, 3), "t0 ");
  // Without block columns (another run's sort spec), every row is unmeasured: analysis order.
  EXPECT_EQ(ids(filter_sort(rows, "", {{Col::BlockLoss, kMx8E4, true}}, nullptr), rows),
            ids(filter_sort(rows, "", {}, nullptr), rows));
}

TEST(BlockSteps, MergedPerStepWithScaleHistograms) {
  // Two observations of t0 at step 5 (both MXFP8 E4M3), one at step 6 without a block section,
  // one at step 9 with MXFP6 E2M3 only.
  const std::vector<float> v = {4.0f, 0.5f};
  BlockTrace tr("steps.fpst", 1,
                {{0,
                  5,
                  v,
                  1u << kMx8E4,
                  {{kMx8E4, counts(32, 1, 0, 50.0, 0.5)}},
                  {{kMx8E4, 120, 2}, {kMx8E4, 121, 1}}},
                 {0,
                  5,
                  v,
                  1u << kMx8E4,
                  {{kMx8E4, counts(32, 0, 3, 50.0, 4.5)}},
                  {{kMx8E4, 121, 3}, {kMx8E4, 127, 1}}},
                 {0, 6, v, 0, {}, {}},
                 {0, 9, v, 1u << kMx6E2, {{kMx6E2, counts(64, 0, 0, 10.0, 0.0)}}, {}}});
  const TensorSteps ts = build_tensor_steps(*tr.model, 0);
  ASSERT_EQ(ts.size(), 3u);
  const BlockSteps& b = ts.blocks;
  EXPECT_EQ(b.mask, (1u << kMx8E4) | (1u << kMx6E2));
  EXPECT_EQ(b.slots, 2);  // only the two measured formats are stored
  EXPECT_EQ(b.counts.size(), 3u * 2u);
  EXPECT_EQ(b.hist_off.size(), 3u * 2u + 1u);
  EXPECT_TRUE(b.measured(0, kMx8E4));
  EXPECT_FALSE(b.measured(0, kMx6E2));
  EXPECT_FALSE(b.measured(1, kMx8E4));  // step 6: no block section
  EXPECT_TRUE(b.measured(2, kMx6E2));
  EXPECT_EQ(b.at(0, kMx8E4).elements, 64u);
  EXPECT_EQ(b.at(0, kMx8E4).flushed, 1u);
  EXPECT_EQ(b.at(0, kMx8E4).saturated, 3u);
  const auto bins = b.scale_bins(0, kMx8E4);
  const auto cnt = b.scale_counts(0, kMx8E4);
  ASSERT_EQ(bins.size(), 3u);
  EXPECT_EQ(bins[0], 120);
  EXPECT_EQ(cnt[0], 2u);
  EXPECT_EQ(bins[1], 121);
  EXPECT_EQ(cnt[1], 4u);  // 1 + 3
  EXPECT_EQ(bins[2], 127);
  EXPECT_EQ(cnt[2], 1u);
  EXPECT_TRUE(b.scale_bins(1, kMx8E4).empty());

  // Series: step 5 loss 4/64, SQNR 10 log10(100 / 5); step 6 a gap; step 9 exact (+inf).
  const BlockSeries s = block_series(b, kMx8E4);
  ASSERT_EQ(s.sqnr_db.size(), 3u);
  EXPECT_DOUBLE_EQ(s.loss[0], 4.0 / 64.0);
  EXPECT_DOUBLE_EQ(s.sqnr_db[0], 10.0 * std::log10(20.0));
  EXPECT_TRUE(std::isnan(s.loss[1]) && std::isnan(s.sqnr_db[1]));
  EXPECT_TRUE(std::isnan(s.loss[2]));  // step 9 did not measure MXFP8 E4M3
  const BlockSeries e2 = block_series(b, kMx6E2);
  EXPECT_EQ(e2.loss[2], 0.0);
  EXPECT_EQ(e2.sqnr_db[2], std::numeric_limits<double>::infinity());

  // A trace without block sections: empty, as before the format had them.
  BlockTrace plain("steps_plain.fpst", 1, {{0, 1, v, 0, {}, {}}});
  EXPECT_TRUE(build_tensor_steps(*plain.model, 0).blocks.empty());
}

TEST(BlockCoverage, OctavesFromTheFormatTableAndTheHistogram) {
  // Element ranges from the OCP MX spec sheet (max finite / smallest positive subnormal):
  // E4M3 448 / 2^-9, E5M2 57344 / 2^-16, E3M2 28 / 2^-4, E2M3 7.5 / 2^-3, E2M1 6 / 0.5.
  EXPECT_NEAR(block_range_octaves(kMx8E4), std::log2(448.0) + 9.0, 1e-12);
  EXPECT_NEAR(block_range_octaves(kMx8E4), 17.807354922057604, 1e-12);
  EXPECT_NEAR(block_range_octaves(kMx8E5), std::log2(57344.0) + 16.0, 1e-12);
  EXPECT_NEAR(block_range_octaves(kMx6E3), std::log2(28.0) + 4.0, 1e-12);
  EXPECT_NEAR(block_range_octaves(kMx6E2), std::log2(7.5) + 3.0, 1e-12);
  EXPECT_NEAR(block_range_octaves(kMx4), std::log2(12.0), 1e-12);
  EXPECT_NEAR(block_range_octaves(kNv4), 3.5849625007211561, 1e-12);

  // Tensor range: amax 1024 (2^10) down to the lower edge of bin (124 << 2) = 2^-3: 13 octaves;
  // the next quarter-octave bin starts at 2^-2.75: 12.75.
  EXPECT_DOUBLE_EQ(tensor_range_octaves(1024.0f, 124 * 4), 13.0);
  EXPECT_DOUBLE_EQ(tensor_range_octaves(1024.0f, 124 * 4 + 1), 12.75);
  EXPECT_TRUE(std::isnan(tensor_range_octaves(0.0f, 500)));
  EXPECT_TRUE(std::isnan(tensor_range_octaves(1.0f, -1)));
  EXPECT_TRUE(std::isnan(tensor_range_octaves(std::numeric_limits<float>::infinity(), 500)));

  // From a real step: values 1024, 3, 0.125 (and a zero): lowest bin 0.125 = 2^-3 -> 13 octaves.
  BlockTrace tr(
      "coverage.fpst", 1,
      {{0, 4, {1024.0f, 3.0f, 0.125f, 0.0f}, 1u << kMx4, {{kMx4, counts(4, 1, 0, 1.0, 0.1)}}, {}}});
  const TensorSteps ts = build_tensor_steps(*tr.model, 0);
  const BlockCoverage e4 = step_block_coverage(ts, 0, kMx8E4);
  EXPECT_DOUBLE_EQ(e4.tensor_octaves, 13.0);
  EXPECT_DOUBLE_EQ(e4.fraction(), 1.0);  // 17.8 octaves cover all 13
  const BlockCoverage fp4 = step_block_coverage(ts, 0, kMx4);
  EXPECT_NEAR(fp4.fraction(), std::log2(12.0) / 13.0, 1e-12);
  EXPECT_TRUE(std::isnan(step_block_coverage(ts, 5, kMx4).tensor_octaves));  // no such step
  EXPECT_TRUE(std::isnan(step_block_coverage(ts, 5, kMx4).fraction()));

  EXPECT_EQ(scale_bin_label(124), "2^-3");
  EXPECT_EQ(scale_bin_label(127), "2^0");
  EXPECT_EQ(scale_bin_label(0), "2^-127");
  EXPECT_EQ(scale_bin_label(255), "NaN");
}

TEST(BlockColumns, EndToEndFromTheHostPass) {
  // One block of 32 elements: 31 x 1.0 and one 2^-20 (rows = 32, one column). MX scale rule:
  // X = 2^(floor(log2 amax) - emax_elem). MXFP4 (E2M1, emax 2): X = 2^-2, bin 125; 2^-20 / X =
  // 2^-18 is below half of E2M1's smallest positive 0.5: flushed. MXFP8 E4M3 (emax 8): X = 2^-8,
  // bin 119; 2^-20 / X = 2^-12 is below half of 2^-9: flushed. 1.0 is exact in both.
  std::vector<float> v(32, 1.0f);
  v[5] = std::ldexp(1.0f, -20);
  const std::string path = temp_path("e2e.fpst");
  {
    std::string err;
    auto w = trace::TraceWriter::open(path, "{}", {}, &err);
    ASSERT_TRUE(w) << err;
    trace::TensorInfo info;
    info.id = "x";
    info.op = "sgemm";
    info.rows = 32;
    info.cols = 1;
    w->define_tensor(info);
    trace::Observation o;
    o.step = 3;
    StatsOptions opt;
    opt.block_formats = (1u << kMx8E4) | (1u << kMx4);
    compute_stats(v.data(), Format::FP32, 32, 1, 32, opt, &o.stats);
    w->observe(o);
    ASSERT_TRUE(w->close());
  }
  const auto run = load_run(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(run->ok) << run->error;
  EXPECT_EQ(run->blocks.formats, (std::vector<int>{kMx8E4, kMx4}));
  for (int f : {kMx8E4, kMx4}) {
    const BlockCell* c = run->blocks.cell(0, f);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->counts.elements, 32u);
    EXPECT_EQ(c->counts.flushed, 1u);
    EXPECT_EQ(c->counts.saturated, 0u);
    EXPECT_DOUBLE_EQ(block_loss(c->counts), 1.0 / 32.0);
    // The only error is the flushed 2^-20: SQNR = 10 log10((31 + 2^-40) / 2^-40).
    EXPECT_NEAR(block_sqnr(c->counts), 10.0 * std::log10(31.0 * std::ldexp(1.0, 40) + 1.0), 1e-9);
  }
  const TensorSteps ts = build_tensor_steps(*run->model, 0);
  ASSERT_EQ(ts.blocks.scale_bins(0, kMx4).size(), 1u);
  EXPECT_EQ(ts.blocks.scale_bins(0, kMx4)[0], 125);
  EXPECT_EQ(ts.blocks.scale_bins(0, kMx8E4)[0], 119);
  EXPECT_EQ(ts.blocks.scale_counts(0, kMx8E4)[0], 1u);
  // The tensor spans 2^0 down to 2^-20: 20 octaves; one MXFP4 block covers log2(12) of them.
  const BlockCoverage c = step_block_coverage(ts, 0, kMx4);
  EXPECT_DOUBLE_EQ(c.tensor_octaves, 20.0);
  EXPECT_NEAR(c.fraction(), std::log2(12.0) / 20.0, 1e-12);
}

TEST(BlockColumns, LossSeverityAndColours) {
  analysis::FindingOptions opt;  // block_loss_info 1%, block_loss_warn 10%
  EXPECT_EQ(block_loss_severity(0.0, opt), analysis::Severity::None);
  EXPECT_EQ(block_loss_severity(0.0099, opt), analysis::Severity::None);
  EXPECT_EQ(block_loss_severity(0.01, opt), analysis::Severity::Info);
  EXPECT_EQ(block_loss_severity(0.0999, opt), analysis::Severity::Info);
  EXPECT_EQ(block_loss_severity(0.10, opt), analysis::Severity::Warning);
  EXPECT_EQ(block_loss_severity(1.0, opt), analysis::Severity::Warning);  // never above Warning
  // Six block colours, distinct from each other and from the four cast targets' colours.
  std::set<std::tuple<int, int, int>> seen;
  for (Format f : kTargets) {
    const Rgb c = format_color(f);
    seen.insert({c.r, c.g, c.b});
  }
  for (int f = 0; f < kNumBlockFormats; ++f) {
    const Rgb c = block_format_color(f);
    EXPECT_TRUE(seen.insert({c.r, c.g, c.b}).second) << block_format_label(f);
  }
}
