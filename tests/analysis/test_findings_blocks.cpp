// block_loss findings (findings_blocks.cpp) on hand-built traces with block statistics (trace
// format 1.3): the fractions in the titles, the named format (the widest that loses), the
// comparison with per-tensor E4M3, the cheapest format that holds the tensor (format_choice.h's
// rule: loss at most format_hold_loss and SQNR within block_hold_sqnr_margin_db of its elements'
// nominal; the cost order of kFormatCandidates), the
// thresholds' edges, and nothing for traces without block statistics.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fpscope/analysis/analysis.h"
#include "fpscope/analysis/causes.h"
#include "trace_builder.h"

using namespace fpscope;
using namespace fpscope::analysis;
using fpscope::test::Builder;
using fpscope::test::fi;

namespace {

constexpr int kMx8E4 = 0, kMx8E5 = 1, kMx6E3 = 2, kMx6E2 = 3, kMx4 = 4,
              kNv4 = 5;  // kBlockFormats order

// One format's counts in one observation: `elements` in 32 blocks, sum x^2 = elements, and
// sum e^2 giving `sqnr_db` (10 log10(sum_x2 / sum_err2)).
BlockFormatCounts counts(uint64_t elements, uint64_t flushed, uint64_t saturated, double sqnr_db) {
  BlockFormatCounts c;
  c.blocks = 32;
  c.elements = elements;
  c.flushed = flushed;
  c.saturated = saturated;
  c.sum_x2 = static_cast<double>(elements);
  c.sum_err2 = c.sum_x2 * std::pow(10.0, -sqnr_db / 10.0);
  return c;
}

// Appends a block section for the LAST observation of `b`.
trace::BlockStatsRecord& blocks(Builder& b) {
  trace::BlockStatsRecord r;
  r.observation = static_cast<uint32_t>(b.t.observations.size() - 1);
  b.t.block_stats.push_back(r);
  return b.t.block_stats.back();
}

std::vector<const Finding*> block_loss(const RunAnalysis& a) {
  std::vector<const Finding*> v;
  for (const auto& f : a.findings)
    if (f.kind == FindingKind::BlockLoss) v.push_back(&f);
  return v;
}

// Two steps of 1000 nonzero elements of enc.linear1.wgrad, per-tensor E4M3 unscaled flushing 480
// of each (48%), and per step (x 2 in the totals), MXFP6 E2M3 not measured:
//   MXFP8 E4M3  31 flushed              -> 62/2000  = 3.1%  loses (>= 1%), SQNR 25 dB
//   MXFP8 E5M2   1 flushed              -> 2/2000   = 0.1%  holds: <= 0.1%, 22 dB >= 23.06 - 10
//   MXFP6 E3M2   8 flushed + 2 saturated -> 20/2000 = 1%    loses: exactly at block_loss_info
//   MXFP4      300 flushed              -> 600/2000 = 30%   loses
//   NVFP4        1 flushed              -> 2/2000   = 0.1%  holds: 15 dB >= 17.04 - 10
// The widest losing format is MXFP8 E4M3 (8 bits; E5M2 holds); the cheapest holding is NVFP4
// (4.5 bits per element; MXFP4, 4.25, loses).
Builder wgrad(double nvfp4_sqnr_db = 15.0) {
  Builder b;
  const uint32_t t = b.tensor("enc.linear1.wgrad", trace::Role::D, 25, 40);
  for (uint64_t s = 0; s < 2; ++s) {
    auto& o = b.obs(t, s, s, 1000, 4.0f, 1000.0);
    o.stats.fmt[fi(Format::E4M3)].underflow = 480;
    o.stats.fmt[fi(Format::E4M3)].sum_err2 = 100.0;  // 10 dB
    b.hist(4 * 127, 1000);
    auto& r = blocks(b);
    r.mask = (1u << kMx8E4) | (1u << kMx8E5) | (1u << kMx6E3) | (1u << kMx4) | (1u << kNv4);
    r.fmt[kMx8E4] = counts(1000, 31, 0, 25.0);
    r.fmt[kMx8E5] = counts(1000, 1, 0, 22.0);
    r.fmt[kMx6E3] = counts(1000, 8, 2, 20.0);
    r.fmt[kMx4] = counts(1000, 300, 0, 9.0);
    r.fmt[kNv4] = counts(1000, 1, 0, nvfp4_sqnr_db);
  }
  return b;
}

}  // namespace

TEST(BlockFindings, NamesTheWidestLosingFormatAndTheCheapestHolding) {
  const auto b = wgrad();
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  const auto fs = block_loss(a);
  ASSERT_EQ(fs.size(), 1u);
  const Finding& f = *fs[0];
  EXPECT_EQ(f.title, "MXFP8 E4M3 would flush 3.1% of enc.linear1.wgrad to zero inside its blocks");
  // 3.1% < 10%: Info; 1000 + round((log10(0.031) + 7) / 7 * 999) = 1000 + round(783.69).
  EXPECT_EQ(f.severity, Severity::Info);
  EXPECT_EQ(f.score, 1784);
  EXPECT_EQ(f.tensor_id, "enc.linear1.wgrad");
  EXPECT_FALSE(f.format.has_value());
  EXPECT_EQ(f.first_step, 0);
  EXPECT_EQ(f.last_step, 1);
  EXPECT_NE(f.evidence.find("62 of 2000 elements flushed, 0 saturated; SQNR 25.0 dB (nominal of "
                            "its elements 29.1 dB)"),
            std::string::npos)
      << f.evidence;
  // Per-tensor E4M3 on the same observations: 960 of 2000 (48%), SQNR 10 log10(2000/200).
  EXPECT_NE(f.evidence.find("Per-tensor E4M3 on the same observations (unscaled): flushes 48%, "
                            "overflows 0%, SQNR 10.0 dB"),
            std::string::npos)
      << f.evidence;
  EXPECT_NE(f.evidence.find("MXFP8 E5M2 0.1% (SQNR 22.0 dB), MXFP6 E3M2 1% (SQNR 20.0 dB), "
                            "MXFP4 30% (SQNR 9.0 dB), NVFP4 0.1% (SQNR 15.0 dB)"),
            std::string::npos)
      << f.evidence;
  EXPECT_EQ(f.evidence.find("E2M3"), std::string::npos) << "not measured, not listed";
  EXPECT_EQ(f.recommendation,
            "If this tensor is to be block-scaled, use NVFP4: the cheapest measured block format "
            "that holds it (0.1% flushed or saturated, SQNR 15.0 dB, 4.5 bits per element).");

  // One cause for the block findings: a what-if hint, never the verdict.
  const RunCauses rc = build_causes(a, a.findings);
  bool found = false;
  for (const auto& c : rc.causes)
    if (c.kind == CauseKind::BlockFormats) {
      found = true;
      EXPECT_FALSE(c.decides_verdict);
      EXPECT_EQ(c.title, f.title);
    }
  EXPECT_TRUE(found);
  EXPECT_STREQ(cause_kind_name(CauseKind::BlockFormats), "block_formats");
}

TEST(BlockFindings, HoldingNeedsTheSqnrToo) {
  // NVFP4 at 7 dB is under 17.04 - 10 = 7.04: it no longer holds; nor does MXFP4 (30%): the
  // cheapest holding is MXFP6 E3M2 (1%, exactly at format_hold_loss; 20 dB >= 23.1 - 10).
  const auto b = wgrad(7.0);
  const trace::TraceModel m(b.t);
  const auto a_m = analyze(m);
  const auto fs = block_loss(a_m);
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0]->recommendation,
            "If this tensor is to be block-scaled, use MXFP6 E3M2: the cheapest measured block "
            "format that holds it (1% flushed or saturated, SQNR 20.0 dB, 6.25 bits per "
            "element).");
  // Just above the edge it holds again.
  const auto b2 = wgrad(7.05);
  const trace::TraceModel m2(b2.t);
  const auto a_m2 = analyze(m2);
  const auto fs2 = block_loss(a_m2);
  ASSERT_EQ(fs2.size(), 1u);
  EXPECT_NE(fs2[0]->recommendation.find("use NVFP4"), std::string::npos);
}

TEST(BlockFindings, ThresholdEdgesAndSaturation) {
  // Every measured format below 1%: no finding. 9 of 1000 flushed in MXFP4 (0.9%).
  {
    Builder b;
    const uint32_t t = b.tensor("gemm#0.A", trace::Role::A);
    b.obs(t, 3, 0, 1000, 1.0f, 1000.0);
    auto& r = blocks(b);
    r.mask = 1u << kMx4;
    r.fmt[kMx4] = counts(1000, 9, 0, 15.0);
    const trace::TraceModel m(b.t);
    const auto a_m = analyze(m);
    EXPECT_TRUE(block_loss(a_m).empty());
    // 10 of 1000 (1%): exactly at block_loss_info, a finding.
    b.t.block_stats.back().fmt[kMx4].flushed = 10;
    const trace::TraceModel m2(b.t);
    const auto a_m2 = analyze(m2);
    const auto fs = block_loss(a_m2);
    ASSERT_EQ(fs.size(), 1u);
    EXPECT_EQ(fs[0]->title, "MXFP4 would flush 1% of gemm#0.A to zero inside its blocks");
    EXPECT_EQ(fs[0]->first_step, 3);
  }
  // NVFP4 alone, 150 of 1000 saturated (15% >= 10%): Warning, a saturation title; nothing holds,
  // and the other formats were not measured.
  {
    Builder b;
    const uint32_t t = b.tensor("gemm#1.B", trace::Role::B);
    b.obs(t, 0, 0, 1000, 1.0f, 1000.0);
    auto& r = blocks(b);
    r.mask = 1u << kNv4;
    r.fmt[kNv4] = counts(1000, 0, 150, 12.0);
    r.fmt[kNv4].scale_overflow = 7;
    const trace::TraceModel m(b.t);
    const auto a_m = analyze(m);
    const auto fs = block_loss(a_m);
    ASSERT_EQ(fs.size(), 1u);
    EXPECT_EQ(fs[0]->title, "NVFP4 would saturate 15% of gemm#1.B inside its blocks");
    EXPECT_EQ(fs[0]->severity, Severity::Warning);
    EXPECT_NE(fs[0]->evidence.find("7 with a scale overflow"), std::string::npos)
        << fs[0]->evidence;
    EXPECT_EQ(fs[0]->recommendation,
              "No measured block format holds this tensor (each loses more than 1% of its "
              "elements, or its SQNR is more than 10 dB below its elements' nominal): keep it in "
              "BF16 (or per-tensor FP8 if its numbers above are better), or measure the other "
              "block formats "
              "(FPSCOPE_FORMATS=blocks).");
  }
  // Both flushed and saturated: both in the title. MXFP6 E2M3: 20 + 30 of 1000.
  {
    Builder b;
    const uint32_t t = b.tensor("gemm#2.D");
    b.obs(t, 0, 0, 1000, 1.0f, 1000.0);
    auto& r = blocks(b);
    r.mask = 1u << kMx6E2;
    r.fmt[kMx6E2] = counts(1000, 20, 30, 20.0);
    const trace::TraceModel m(b.t);
    const auto a_m = analyze(m);
    const auto fs = block_loss(a_m);
    ASSERT_EQ(fs.size(), 1u);
    EXPECT_EQ(fs[0]->title,
              "MXFP6 E2M3 would flush 2% of gemm#2.D to zero and saturate 3% inside its blocks");
  }
}

TEST(BlockFindings, E4m3NotMeasuredSaysSo) {
  auto b = wgrad();
  b.t.metadata_json = R"({"config": {"formats": ["bf16", "fp16"]}})";
  const trace::TraceModel m(b.t);
  const auto a_m = analyze(m);
  const auto fs = block_loss(a_m);
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_NE(fs[0]->evidence.find("Per-tensor E4M3: not measured (FPSCOPE_FORMATS)"),
            std::string::npos)
      << fs[0]->evidence;
}

TEST(BlockFindings, NoBlockStatisticsNoChange) {
  // The same trace without its block sections: the findings are those of before, one for one.
  auto with = wgrad();
  auto without = with;
  without.t.block_stats.clear();
  const trace::TraceModel mw(with.t), mo(without.t);
  const auto aw = analyze(mw);
  const auto ao = analyze(mo);
  EXPECT_TRUE(block_loss(ao).empty());
  std::vector<std::string> tw, to;
  for (const auto& f : aw.findings)
    if (f.kind != FindingKind::BlockLoss) tw.push_back(f.title);
  for (const auto& f : ao.findings) to.push_back(f.title);
  EXPECT_EQ(tw, to);
  EXPECT_EQ(aw.findings.size(), ao.findings.size() + 1);
}
