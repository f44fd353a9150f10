// Rank identity from a trace's header alone and the matching of two rank sets (ranks.cpp), as
// `fpscope diff` and `fpscope export` of rank sets use them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "fpscope/analysis/ranks.h"
#include "fpscope/trace_io.h"

using namespace fpscope;
using namespace fpscope::analysis;

namespace {

RankIdentity id(int64_t rank, const std::string& path, int64_t world = -1) {
  RankIdentity r;
  r.rank = rank;
  r.path = path;
  r.world_size = world;
  return r;
}

// A trace with `metadata` and one tensor, closed.
void write_trace(const std::string& path, const std::string& metadata) {
  std::string err;
  auto w = trace::TraceWriter::open(path, metadata, trace::WriterOptions{}, &err);
  ASSERT_TRUE(w) << err;
  trace::TensorInfo t;
  t.id = "gemm#0.D";
  w->define_tensor(t);
  ASSERT_TRUE(w->close());
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("fpscope_rank_match_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

TEST(RankMatch, SameRanksMatch) {
  std::string err;
  EXPECT_TRUE(match_rank_sets({id(0, "a/0", 2), id(1, "a/1", 2)},
                              {id(0, "b/0", 2), id(1, "b/1", -1)}, &err))
      << err;
  EXPECT_TRUE(err.empty());
}

TEST(RankMatch, DifferentWorldSizesNameTheFilesOfEachSide) {
  std::string err;
  EXPECT_FALSE(match_rank_sets(
      {id(0, "a/run-0.fpst"), id(1, "a/run-1.fpst")},
      {id(0, "b/run-0.fpst"), id(1, "b/run-1.fpst"), id(2, "b/run-2.fpst"), id(3, "b/run-3.fpst")},
      &err));
  EXPECT_EQ(err,
            "the rank sets differ: BASE has 2 traces, NEW 4; a rank-set diff compares the same "
            "ranks of two runs; only in NEW: rank 2 (b/run-2.fpst), 3 (b/run-3.fpst)");
  err.clear();
  EXPECT_FALSE(match_rank_sets({id(0, "a/0"), id(5, "a/5")}, {id(0, "b/0"), id(4, "b/4")}, &err));
  EXPECT_EQ(err,
            "the rank sets differ: BASE has 2 traces, NEW 2; a rank-set diff compares the same "
            "ranks of two runs; only in BASE: rank 5 (a/5); only in NEW: rank 4 (b/4)");
}

TEST(RankMatch, SameRankIdsOfRunsOfDifferentSizesAreRefused) {
  std::string err;
  EXPECT_FALSE(match_rank_sets({id(0, "a/0", 4), id(1, "a/1", 4)},
                               {id(0, "b/0", 2), id(1, "b/1", 2)}, &err));
  EXPECT_EQ(err,
            "the rank sets differ: a/0 was recorded with world size 4, b/0 with world size 2; a "
            "rank-set diff compares the same ranks of two runs of one size");
}

TEST(RankMatch, IdentityFromMetadataFollowsTheTraceRule) {
  const auto m = identify_rank_from_metadata(
      R"({"rank":"3","world_size":"8","local_rank":"1","host":"n1"})", "x/run-7.fpst", 0);
  EXPECT_EQ(m.rank, 3);
  EXPECT_EQ(m.source, RankSource::Metadata);
  EXPECT_EQ(m.world_size, 8);
  EXPECT_EQ(m.local_rank, 1);
  EXPECT_EQ(m.host, "n1");
  const auto f = identify_rank_from_metadata("{}", "x/run-7.fpst", 2);
  EXPECT_EQ(f.rank, 7);
  EXPECT_EQ(f.source, RankSource::FileName);
  const auto o = identify_rank_from_metadata("not json", "x/run.fpst", 2);
  EXPECT_EQ(o.rank, 2);
  EXPECT_EQ(o.source, RankSource::Order);
}

TEST(RankMatch, IdentifyPathsReadsHeadersSortsAndRefusesDuplicates) {
  TempDir d;
  write_trace(d.file("b.fpst"), R"({"rank":"1"})");
  write_trace(d.file("a.fpst"), R"({"rank":"0"})");
  write_trace(d.file("c.fpst"), R"({"rank":"1"})");
  std::vector<RankIdentity> ids;
  std::string err;
  ASSERT_TRUE(identify_rank_paths({d.file("b.fpst"), d.file("a.fpst")}, &ids, &err)) << err;
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0].path, d.file("a.fpst"));
  EXPECT_EQ(ids[0].rank, 0);
  EXPECT_EQ(ids[1].path, d.file("b.fpst"));
  EXPECT_EQ(ids[1].rank, 1);
  EXPECT_FALSE(identify_rank_paths({d.file("b.fpst"), d.file("c.fpst")}, &ids, &err));
  EXPECT_EQ(err,
            d.file("b.fpst") + " and " + d.file("c.fpst") +
                ": both traces are rank 1 (from the metadata): one run has one trace per rank");
  EXPECT_FALSE(identify_rank_paths({d.file("a.fpst"), d.file("missing.fpst")}, &ids, &err));
  EXPECT_NE(err.find(d.file("missing.fpst")), std::string::npos) << err;
}

}  // namespace
