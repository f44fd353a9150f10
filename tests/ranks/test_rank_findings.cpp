// Cross-rank findings (findings_ranks.cpp) on hand-built rank summaries, rank identity and the
// trace arguments of a rank set (ranks.cpp). The e2e proof on a real DDP run is test_ranks.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fpscope/analysis/ranks.h"

using namespace fpscope;
using namespace fpscope::analysis;

namespace {

RankCell cell(uint64_t step, float amax, double sum = 1.0, uint64_t seq = 0) {
  RankCell c;
  c.step = step;
  c.first_seq = seq;
  c.count = 100;
  c.amax = amax;
  c.max = amax;
  c.min = -amax;
  c.sum = sum;
  c.sum_sq = sum * sum;
  return c;
}

RankSummary rank(int64_t r, std::vector<RankTensor> tensors = {}) {
  RankSummary s;
  s.identity.rank = r;
  s.identity.path = "run-" + std::to_string(r) + ".fpst";
  s.identity.source = RankSource::Metadata;
  s.tensors = std::move(tensors);
  return s;
}

RankTensor tensor(const std::string& id, trace::Role role, std::vector<RankCell> cells) {
  RankTensor t;
  t.id = id;
  t.role = role;
  t.rows = t.cols = 10;
  t.cells = std::move(cells);
  return t;
}

std::vector<RankFinding> of_kind(const std::vector<RankFinding>& fs, FindingKind k) {
  std::vector<RankFinding> out;
  for (const auto& f : fs)
    if (f.finding.kind == k) out.push_back(f);
  return out;
}

// Three ranks of "x.D" with amaxes 1, 2 and (at step 2) `outlier` on rank 2.
std::vector<RankSummary> skew_set(float outlier) {
  std::vector<RankSummary> rs;
  for (int r = 0; r < 3; ++r) {
    std::vector<RankCell> cs;
    for (uint64_t s = 0; s < 3; ++s)
      cs.push_back(cell(s, r == 1 ? 2.0f : (r == 2 && s == 2 ? outlier : 1.0f), 1.0 + r));
    rs.push_back(rank(r, {tensor("x.D", trace::Role::D, cs)}));
  }
  return rs;
}

}  // namespace

TEST(RankSkew, FlaggedAtTheRatioNotBelow) {
  // The others' median at step 2 is (1 + 2) / 2 = 1.5; the threshold 64 x 1.5 = 96.
  const FindingOptions opt;
  ASSERT_EQ(opt.rank_skew_ratio, 64.0);
  const auto at = of_kind(rank_findings_of(skew_set(96.0f), opt), FindingKind::RankSkew);
  ASSERT_EQ(at.size(), 1u);
  EXPECT_EQ(at[0].ranks, std::vector<int64_t>{2});
  EXPECT_EQ(at[0].finding.first_step, 2);
  EXPECT_EQ(at[0].finding.tensor_id, "x.D");
  EXPECT_EQ(at[0].finding.severity, Severity::Warning);
  EXPECT_TRUE(of_kind(rank_findings_of(skew_set(95.0f), opt), FindingKind::RankSkew).empty());
}

TEST(RankDesync, MajorityNamesTheOddReplica) {
  std::vector<RankSummary> rs;
  for (int r = 0; r < 3; ++r) {
    // w.A: identical weights at steps 0 and 1; rank 0 differs at step 2.
    std::vector<RankCell> w = {cell(0, 0.5f, 3.0), cell(1, 0.5f, 3.25),
                               cell(2, 0.5f, r == 0 ? 3.5000001 : 3.5)};
    // x.B: data, different on every rank from step 0: never a replicated operand.
    std::vector<RankCell> x = {cell(0, 1.0f, r), cell(1, 1.0f, r + 5.0), cell(2, 1.0f, r + 7.0)};
    // y.D: an output identical at first, then not: outputs are never compared.
    std::vector<RankCell> y = {cell(0, 1.0f), cell(1, 1.0f, r == 2 ? 9.0 : 1.0)};
    rs.push_back(rank(r, {tensor("w.A", trace::Role::A, w), tensor("x.B", trace::Role::B, x),
                          tensor("y.D", trace::Role::D, y)}));
  }
  const auto de = of_kind(rank_findings_of(rs, {}), FindingKind::RankDesync);
  ASSERT_EQ(de.size(), 1u);
  EXPECT_EQ(de[0].finding.tensor_id, "w.A");
  EXPECT_EQ(de[0].ranks, std::vector<int64_t>{0});
  EXPECT_EQ(de[0].finding.first_step, 2);
  EXPECT_EQ(de[0].finding.severity, Severity::Critical);
}

TEST(RankDesync, ZeroedBuffersAndPipelineStages) {
  std::vector<RankSummary> rs;
  for (int r = 0; r < 3; ++r) {
    // g.C: a zeroed accumulator at step 0 (identical, proves nothing), the rank's data after.
    std::vector<RankCell> g = {cell(0, 0.0f, 0.0), cell(1, 1.0f, 2.0 + r), cell(2, 1.0f, 3.0 + r)};
    rs.push_back(rank(r, {tensor("g.C", trace::Role::C, g)}));
  }
  // w.A only on ranks 1 and 2 (a pipeline stage), replicated, then rank 2 differs at step 2.
  for (int r = 1; r < 3; ++r)
    rs[static_cast<size_t>(r)].tensors.push_back(tensor(
        "w.A", trace::Role::A, {cell(0, 1.0f, 5.0), cell(1, 1.0f, 6.0), cell(2, 1.0f, 7.0 + r)}));
  const auto de = of_kind(rank_findings_of(rs, {}), FindingKind::RankDesync);
  ASSERT_EQ(de.size(), 1u);
  EXPECT_EQ(de[0].finding.tensor_id, "w.A");
  EXPECT_EQ(de[0].ranks, std::vector<int64_t>{2});
  EXPECT_EQ(de[0].finding.first_step, 2);
}

TEST(RankDesync, NoMajorityNamesThoseUnlikeTheLowestRank) {
  std::vector<RankSummary> rs;
  for (int r = 0; r < 2; ++r)
    rs.push_back(rank(r * 2 + 4, {tensor("w.W", trace::Role::Weight,
                                         {cell(0, 1.0f), cell(1, r ? 1.5f : 1.0f)})}));
  const auto de = of_kind(rank_findings_of(rs, {}), FindingKind::RankDesync);
  ASSERT_EQ(de.size(), 1u);
  EXPECT_EQ(de[0].ranks, std::vector<int64_t>{6});
  EXPECT_EQ(de[0].finding.first_step, 1);
}

TEST(RankLossScale, DisagreementNamesTheRankAndStep) {
  std::vector<RankSummary> rs = {rank(0), rank(1)};
  for (uint64_t s = 0; s < 4; ++s)
    for (int r = 0; r < 2; ++r) rs[r].loss_scales.push_back({s, 1024.0, r == 1 && s == 2});
  const auto fs = rank_findings_of(rs, {});
  const auto ls = of_kind(fs, FindingKind::RankLossScale);
  ASSERT_EQ(ls.size(), 1u);
  // No majority of two: rank 1 differs from rank 0.
  EXPECT_EQ(ls[0].ranks, std::vector<int64_t>{1});
  EXPECT_EQ(ls[0].finding.first_step, 2);
  EXPECT_EQ(ls[0].finding.severity, Severity::Error);
  // Agreeing scalers: nothing.
  rs[1].loss_scales[2].found_inf = false;
  EXPECT_TRUE(rank_findings_of(rs, {}).empty());
}

TEST(RankFirstFault, FirstRankStepAndOpThenTheSpread) {
  std::vector<RankSummary> rs;
  for (int r = 0; r < 3; ++r) {
    RankCell a = cell(3, 1.0f, 1.0, 7), b = cell(3, 1.0f, 1.0, 5), a4 = cell(4, 1.0f, 1.0, 7);
    if (r == 2) a.nonfinite = b.nonfinite = 1;  // rank 2 at step 3: b.D runs first (seq 5)
    if (r == 0) a4.nonfinite = 3;               // rank 0 at step 4; rank 1 never
    rs.push_back(
        rank(r, {tensor("a.D", trace::Role::D, {a, a4}), tensor("b.D", trace::Role::D, {b})}));
  }
  const auto ff = of_kind(rank_findings_of(rs, {}), FindingKind::RankFirstFault);
  ASSERT_EQ(ff.size(), 1u);
  EXPECT_EQ(ff[0].ranks, std::vector<int64_t>{2});
  EXPECT_EQ(ff[0].finding.first_step, 3);
  EXPECT_EQ(ff[0].finding.last_step, 4);
  EXPECT_EQ(ff[0].finding.tensor_id, "b.D");
  EXPECT_FALSE(ff[0].finding.format.has_value());
  EXPECT_NE(ff[0].finding.evidence.find("then rank 0 at step 4; 1 rank never"), std::string::npos)
      << ff[0].finding.evidence;
}

TEST(RankFirstFault, OverflowOnEveryRankAtOnceIsNotARankStory) {
  const int fp16 = target_index(Format::FP16);
  std::vector<RankSummary> rs;
  for (int r = 0; r < 2; ++r) {
    RankCell c = cell(1, 1e5f, 1.0 + r);
    c.overflow[fp16] = 0.5f;
    rs.push_back(rank(r, {tensor("a.D", trace::Role::D, {cell(0, 1.0f, 1.0 + r), c})}));
  }
  EXPECT_TRUE(of_kind(rank_findings_of(rs, {}), FindingKind::RankFirstFault).empty());
  rs[1].tensors[0].cells[1].overflow[fp16] = 0.0f;  // now rank 0 only
  const auto ff = of_kind(rank_findings_of(rs, {}), FindingKind::RankFirstFault);
  ASSERT_EQ(ff.size(), 1u);
  EXPECT_EQ(ff[0].finding.format, Format::FP16);
  EXPECT_EQ(ff[0].ranks, std::vector<int64_t>{0});
}

TEST(RankIdentity, MetadataThenFileNameThenOrder) {
  trace::Trace t;
  t.metadata_json = R"({"rank":"3","world_size":"8","local_rank":"1","host":"n1"})";
  auto id = identify_rank(t, "d/run-12.fpst", 5);
  EXPECT_EQ(id.rank, 3);
  EXPECT_EQ(id.source, RankSource::Metadata);
  EXPECT_EQ(id.world_size, 8);
  EXPECT_EQ(id.local_rank, 1);
  t.metadata_json = R"({"pid":1})";
  id = identify_rank(t, "d/run-12.fpst", 5);
  EXPECT_EQ(id.rank, 12);
  EXPECT_EQ(id.source, RankSource::FileName);
  id = identify_rank(t, "d7/run.fpst", 5);
  EXPECT_EQ(id.rank, 5);
  EXPECT_EQ(id.source, RankSource::Order);
}

TEST(RankSetBuild, SortsByRankAndRejectsADuplicate) {
  RankSet set;
  std::string err;
  ASSERT_TRUE(build_rank_set({rank(2), rank(0), rank(1)}, {}, &set, &err)) << err;
  ASSERT_EQ(set.ranks.size(), 3u);
  EXPECT_EQ(set.ranks[0].identity.rank, 0);
  EXPECT_EQ(set.ranks[2].identity.rank, 2);
  auto dup = rank(1);
  dup.identity.path = "other.fpst";
  EXPECT_FALSE(build_rank_set({rank(1), dup}, {}, &set, &err));
  EXPECT_NE(err.find("run-1.fpst and other.fpst: both traces are rank 1"), std::string::npos)
      << err;
}

TEST(RankSetArgs, DirectoryGlobAndPaths) {
  namespace fs = std::filesystem;
  const fs::path d =
      fs::temp_directory_path() / ("fpscope_rank_args_" + std::to_string(::getpid()));
  fs::create_directories(d);
  for (const char* n : {"run-1.fpst", "run-0.fpst", "notes.txt"}) std::ofstream(d / n) << "x";
  std::vector<std::string> paths;
  std::string err;
  ASSERT_TRUE(expand_trace_args({d.string()}, &paths, &err)) << err;
  EXPECT_EQ(paths,
            (std::vector<std::string>{(d / "run-0.fpst").string(), (d / "run-1.fpst").string()}));
  paths.clear();
  ASSERT_TRUE(
      expand_trace_args({(d / "run-*.fpst").string(), (d / "run-0.fpst").string()}, &paths, &err));
  EXPECT_EQ(paths.size(), 2u);  // the duplicate dropped
  paths.clear();
  EXPECT_FALSE(expand_trace_args({(d / "nothing-*.fpst").string()}, &paths, &err));
  EXPECT_NE(err.find("no file matches this pattern"), std::string::npos) << err;
  fs::remove_all(d);
}
