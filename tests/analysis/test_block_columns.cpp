// Block-scaled formats as columns (issue 19, item 3): the one per-tensor aggregation
// (analysis/src/block_totals.h), the summary text's block-format table, the report's
// "Block-scaled formats" table and diff's per-format loss change, on hand-built traces whose
// numbers are computed by hand below; and a golden of those outputs on the same crafted trace
// (tests/golden/blocks_expected/; FPSCOPE_UPDATE_GOLDEN=1 rewrites it: review the diff).
// Traces without block statistics: tests/golden (byte-identical outputs) and the checks here.
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "block_totals.h"
#include "fpscope/analysis/analysis.h"
#include "golden_files.h"
#include "trace_builder.h"

using namespace fpscope;
using namespace fpscope::analysis;
using fpscope::test::Builder;

namespace {

constexpr int kMx8E4 = 0, kMx4 = 4, kNv4 = 5;  // kBlockFormats order

BlockFormatCounts counts(uint64_t elements, uint64_t flushed, uint64_t saturated, double x2,
                         double err2) {
  BlockFormatCounts c;
  c.blocks = elements / 32;
  c.elements = elements;
  c.flushed = flushed;
  c.saturated = saturated;
  c.sum_x2 = x2;
  c.sum_err2 = err2;
  return c;
}

// Appends a block section for the LAST observation of `b`.
trace::BlockStatsRecord& blocks(Builder& b, uint32_t mask, BlockAxis axis = BlockAxis::Rows) {
  trace::BlockStatsRecord r;
  r.observation = static_cast<uint32_t>(b.t.observations.size() - 1);
  r.mask = mask;
  r.axis = axis;
  b.t.block_stats.push_back(r);
  return b.t.block_stats.back();
}

// Three tensors, two steps of 1000 elements each (sum x^2 = 1000 per observation):
//   enc.linear1.wgrad (MXFP8 E4M3, MXFP4, NVFP4; blocks along rows), per step:
//     E4M3  `e4_flushed` flushed, err^2 2 then 8   -> 2*e4_flushed/2000; SQNR 10 log10(2000/10)
//                                                     = 23.0 dB
//     MXFP4 300 flushed, err^2 100 + 100          -> 30%, 10 log10(2000/200) = 10.0 dB
//     NVFP4 4 flushed, err^2 40 + 40              -> 0.4%, 10 log10(2000/80) = 14.0 dB
//   enc.linear2.A (MXFP8 E4M3, MXFP4; rows at step 0, cols at step 1: mixed):
//     E4M3  5 saturated, then 15 flushed, err^2 0 -> 20/2000 = 1.0%, exact
//     MXFP4 nothing lost, err^2 1 + 1             -> 0, 10 log10(2000/2) = 30.0 dB
//   dec.proj.D: no block statistics.
Builder crafted(uint64_t e4_flushed = 31) {
  Builder b;
  b.t.path = "blocks.fpst";
  b.t.version_major = 1;
  b.t.version_minor = 3;
  const uint32_t w = b.tensor("enc.linear1.wgrad", trace::Role::D, 25, 40);
  const uint32_t a = b.tensor("enc.linear2.A", trace::Role::A, 40, 25);
  const uint32_t p = b.tensor("dec.proj.D", trace::Role::D, 10, 100);
  uint64_t seq = 0;
  for (uint64_t s = 0; s < 2; ++s) {
    b.obs(w, s, seq++, 1000, 4.0f, 1000.0);
    b.hist(4 * 127, 1000);
    auto& rw = blocks(b, 1u << kMx8E4 | 1u << kMx4 | 1u << kNv4);
    rw.fmt[kMx8E4] = counts(1000, e4_flushed, 0, 1000.0, s == 0 ? 2.0 : 8.0);
    rw.fmt[kMx4] = counts(1000, 300, 0, 1000.0, 100.0);
    rw.fmt[kNv4] = counts(1000, 4, 0, 1000.0, 40.0);
    b.obs(a, s, seq++, 1000, 2.0f, 1000.0);
    b.hist(4 * 127, 1000);
    auto& ra = blocks(b, 1u << kMx8E4 | 1u << kMx4, s == 0 ? BlockAxis::Rows : BlockAxis::Cols);
    ra.fmt[kMx8E4] = s == 0 ? counts(1000, 0, 5, 1000.0, 0.0) : counts(1000, 15, 0, 1000.0, 0.0);
    ra.fmt[kMx4] = counts(1000, 0, 0, 1000.0, 1.0);
    b.obs(p, s, seq++, 1000, 1.0f, 1000.0);
    b.hist(4 * 127, 1000);
  }
  return b;
}

Builder without_blocks() {
  Builder b = crafted();
  b.t.block_stats.clear();
  b.t.version_minor = 2;
  return b;
}

std::string line_with(const std::string& text, const std::string& start) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l.rfind(start, 0) == 0) return l;
  return "(no line starting with '" + start + "')";
}

}  // namespace

TEST(BlockTotals, SumsEachTensorsSectionsOnce) {
  const Builder b = crafted();
  const auto xs = analysis::detail::block_totals(b.t);
  ASSERT_EQ(xs.size(), 3u);
  const analysis::detail::BlockTotals& w = xs[0];
  EXPECT_EQ(w.observations, 2u);
  EXPECT_EQ(w.mask, 1u << kMx8E4 | 1u << kMx4 | 1u << kNv4);
  EXPECT_EQ(w.axis, 0);
  EXPECT_EQ(w.fmt[kMx8E4].elements, 2000u);
  EXPECT_EQ(w.fmt[kMx8E4].flushed, 62u);
  EXPECT_EQ(w.fmt[kMx8E4].blocks, 62u);  // 31 + 31
  EXPECT_DOUBLE_EQ(w.fmt[kMx8E4].sum_err2, 10.0);
  EXPECT_DOUBLE_EQ(analysis::detail::block_loss_frac(w.fmt[kMx8E4]), 0.031);
  EXPECT_NEAR(analysis::detail::block_sqnr_db(w.fmt[kMx8E4]), 23.0103, 1e-4);  // 10 log10(200)
  EXPECT_NEAR(analysis::detail::block_sqnr_db(w.fmt[kNv4]), 13.9794, 1e-4);    // 10 log10(25)
  EXPECT_EQ(w.first_loss_step[kMx8E4], 0);
  EXPECT_EQ(w.last_loss_step[kMx8E4], 1);
  EXPECT_FALSE(w.measured(1));
  const analysis::detail::BlockTotals& a = xs[1];
  EXPECT_EQ(a.axis, 2);  // rows then cols
  EXPECT_EQ(a.fmt[kMx8E4].flushed, 15u);
  EXPECT_EQ(a.fmt[kMx8E4].saturated, 5u);
  EXPECT_DOUBLE_EQ(analysis::detail::block_loss_frac(a.fmt[kMx8E4]), 0.01);
  EXPECT_TRUE(std::isinf(analysis::detail::block_sqnr_db(a.fmt[kMx8E4])));
  EXPECT_EQ(a.first_loss_step[kMx4], -1);
  EXPECT_FALSE(a.measured(kNv4));
  EXPECT_EQ(xs[2].observations, 0u);
  EXPECT_EQ(analysis::detail::measured_block_formats(xs), 1u << kMx8E4 | 1u << kMx4 | 1u << kNv4);
  EXPECT_EQ(analysis::detail::block_format_display_name(kMx8E4), "MXFP8 E4M3");
  EXPECT_EQ(analysis::detail::block_format_display_name(kNv4), "NVFP4");
  EXPECT_TRUE(std::isnan(analysis::detail::block_sqnr_db(BlockFormatCounts{})));

  // A record naming an observation out of range counts nowhere; no sections: no totals.
  Builder bad = crafted();
  bad.t.block_stats.push_back(bad.t.block_stats.front());
  bad.t.block_stats.back().observation = 999;
  EXPECT_EQ(analysis::detail::block_totals(bad.t)[0].fmt[kMx8E4].flushed, 62u);
  EXPECT_TRUE(analysis::detail::block_totals(without_blocks().t).empty());
}

TEST(BlockColumns, SummaryTextTable) {
  const Builder b = crafted();
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  const std::string s = summary_text(b.t, a, 40, 0);
  // Loss: pct5 ("3.1%", "30%", "0.40%", "1.0%", "0"); SQNR: one decimal, "exact", "-".
  EXPECT_EQ(line_with(s, "TENSOR                 |"),
            "TENSOR                 | MXFP8 E4M3  | MXFP4       | NVFP4");
  EXPECT_EQ(line_with(s, "enc.linear1.wgrad      |"),
            "enc.linear1.wgrad      |  3.1%  23.0 |   30%  10.0 | 0.40%  14.0");
  EXPECT_EQ(line_with(s, "enc.linear2.A          |"),
            "enc.linear2.A          |  1.0% exact |     0  30.0 |     -     -");
  EXPECT_EQ(s.find("dec.proj.D             |"), std::string::npos) << "no block statistics";
  EXPECT_NE(s.find("block formats: loss = flushed + saturated"), std::string::npos);

  // 50 columns: two formats per table ((50 - 22) / 14), NVFP4 in a second table below.
  const std::string n = summary_text(b.t, a, 40, 50);
  EXPECT_NE(n.find("TENSOR                 | MXFP8 E4M3  | MXFP4\n"), std::string::npos) << n;
  EXPECT_NE(n.find("TENSOR                 | NVFP4\n"), std::string::npos) << n;
  EXPECT_NE(n.find("enc.linear2.A          |     -     -\n"), std::string::npos) << n;

  // One row: the other tensor is counted, not shown.
  const std::string one = summary_text(b.t, a, 1, 0);
  EXPECT_NE(one.find("... 1 more tensors with block statistics"), std::string::npos) << one;

  // No block statistics: no table, no heading.
  const Builder p = without_blocks();
  const trace::TraceModel mp(p.t);
  const std::string plain = summary_text(p.t, analyze(mp), 40, 0);
  EXPECT_EQ(plain.find("block formats"), std::string::npos);
  EXPECT_EQ(plain.find("MXFP8"), std::string::npos);
}

TEST(BlockColumns, ReportTableInBothRenderings) {
  const Builder b = crafted();
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  const std::string md = render_markdown(m, a, ReportOptions{}, "x_files", nullptr);
  EXPECT_NE(md.find("### Block-scaled formats"), std::string::npos);
  EXPECT_NE(md.find("| tensor | MXFP8 E4M3 loss | MXFP8 E4M3 SQNR | MXFP4 loss | MXFP4 SQNR | "
                    "NVFP4 loss | NVFP4 SQNR |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| enc.linear1.wgrad | 3.1% | 23.0 dB | 30% | 10.0 dB | 0.4% | 14.0 dB |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| enc.linear2.A | 1% | exact | 0% | 30.0 dB | - | - |"), std::string::npos)
      << md;
  const std::string h = render_html(m, a, ReportOptions{});
  EXPECT_NE(h.find("<summary>Block-scaled formats (2 tensors)</summary>"), std::string::npos);
  EXPECT_NE(h.find("<tr><td>enc.linear1.wgrad</td><td>3.1%</td><td>23.0 dB</td><td>30%</td>"
                   "<td>10.0 dB</td><td>0.4%</td><td>14.0 dB</td></tr>"),
            std::string::npos);

  const Builder p = without_blocks();
  const trace::TraceModel mp(p.t);
  const auto ap = analyze(mp);
  EXPECT_EQ(render_markdown(mp, ap, ReportOptions{}, "x_files", nullptr).find("Block-scaled"),
            std::string::npos);
  EXPECT_EQ(render_html(mp, ap, ReportOptions{}).find("Block-scaled"), std::string::npos);
}

TEST(BlockColumns, DiffPerFormatLossChange) {
  // Base: E4M3 flushes 5 per step of enc.linear1.wgrad (10/2000 = 0.5%); new: 31 (3.1%). Every
  // other pair is the same in both runs.
  const Builder base = crafted(5), neu = crafted(31);
  const trace::TraceModel mb(base.t), mn(neu.t);
  const auto ab = analyze(mb), an = analyze(mn);
  const DiffResult d = diff_runs(mb, ab, mn, an, DiffRules{});
  ASSERT_EQ(d.block_changes.size(), 5u);  // wgrad: 3 formats, linear2.A: 2
  const BlockLossChange* c = nullptr;
  for (const auto& x : d.block_changes)
    if (x.tensor_id == "enc.linear1.wgrad" && x.format == kMx8E4) c = &x;
  ASSERT_NE(c, nullptr);
  EXPECT_DOUBLE_EQ(c->base_loss, 0.005);
  EXPECT_DOUBLE_EQ(c->new_loss, 0.031);
  const std::string txt = diff_text(d, base.t, neu.t);
  EXPECT_NE(txt.find("block formats: loss (flushed + saturated inside blocks) changed in 1 of 5 "
                     "tensor/format pairs both runs measured:\n"
                     "  enc.linear1.wgrad MXFP8 E4M3: 0.5% -> 3.1% (SQNR 23.0 -> 23.0 dB)\n"),
            std::string::npos)
      << txt;
  const std::string md = diff_markdown(d, base.t, neu.t);
  EXPECT_NE(md.find("| enc.linear1.wgrad | MXFP8 E4M3 | 0.5% | 3.1% | +2.60 pp | 23.0 dB | "
                    "23.0 dB |"),
            std::string::npos)
      << md;
  const auto j = diff_json(d, DiffRules{});
  ASSERT_TRUE(j.contains("block_formats"));
  EXPECT_EQ(j["block_formats"].size(), 5u);
  EXPECT_EQ(j["block_formats"][0]["format"], "mxfp8_e4m3");
  EXPECT_TRUE(j["block_formats"][3]["base_sqnr_db"].is_null());  // linear2.A E4M3: exact

  // Only one side has block statistics: nothing compared, no section, no key.
  const Builder p = without_blocks();
  const trace::TraceModel mp(p.t);
  const auto ap = analyze(mp);
  const DiffResult dp = diff_runs(mp, ap, mn, an, DiffRules{});
  EXPECT_TRUE(dp.block_changes.empty());
  EXPECT_EQ(diff_text(dp, p.t, neu.t).find("block formats"), std::string::npos);
  EXPECT_EQ(diff_markdown(dp, p.t, neu.t).find("Block-scaled"), std::string::npos);
  EXPECT_FALSE(diff_json(dp, DiffRules{}).contains("block_formats"));
}

// Golden: the new sections as users see them, on the crafted trace. The version string is
// replaced by "VERSION" (as scripts/update-golden.sh does).
TEST(BlockColumnsGolden, SummaryReportDiff) {
  const Builder base = crafted(5), b = crafted();
  const trace::TraceModel mb(base.t), m(b.t);
  const auto ab = analyze(mb), a = analyze(m);
  const DiffResult d = diff_runs(mb, ab, m, a, DiffRules{});
  const std::regex version("Generated by fpscope [^ ]+\\. Definitions");
  const std::pair<std::string, std::string> outputs[] = {
      {"summary.txt", summary_text(b.t, a, 40, 80)},
      {"summary_w50.txt", summary_text(b.t, a, 40, 50)},
      {"report.md",
       std::regex_replace(render_markdown(m, a, ReportOptions{}, "report_files", nullptr), version,
                          "Generated by fpscope VERSION. Definitions")},
      {"diff.txt", diff_text(d, base.t, b.t)},
      {"diff.md", diff_markdown(d, base.t, b.t)},
      {"diff.json", diff_json(d, DiffRules{}).dump(2) + "\n"},
  };
  fpscope::testing::expect_golden_files(FPSCOPE_BLOCKS_GOLDEN_DIR,
                                        {std::begin(outputs), std::end(outputs)});
}
