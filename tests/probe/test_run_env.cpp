// The run environment (traces/include/fpscope/run_env.h): the rank rule and the `%p %r %h`
// expansion the probe and `fpscope record` share; and the output claiming of the probe
// (probe/src/output_claim.h): sibling paths and the lock that refuses a second claimant.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "fpscope/run_env.h"
#include "output_claim.h"

using namespace fpscope::trace;

namespace {

std::optional<std::string> rank_of(const std::map<std::string, std::string>& vars) {
  return rank_from([&vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(RunEnv, RankRule) {
  EXPECT_EQ(rank_of({}), std::nullopt);  // unset
  EXPECT_EQ(rank_of({{"RANK", "3"}}), "3");
  EXPECT_EQ(rank_of({{"RANK", ""}}), std::nullopt);  // empty counts as unset ...
  EXPECT_EQ(rank_of({{"RANK", ""}, {"OMPI_COMM_WORLD_RANK", "5"}}), "5");  // ... the next one
  EXPECT_EQ(rank_of({{"RANK", "2"}, {"OMPI_COMM_WORLD_RANK", "5"}, {"SLURM_PROCID", "7"}}), "2");
  EXPECT_EQ(rank_of({{"OMPI_COMM_WORLD_RANK", ""}, {"SLURM_PROCID", "7"}}), "7");
  EXPECT_EQ(rank_of({{"RANK", "worker-a"}}), "worker-a");  // not numeric: kept as written
  EXPECT_EQ(rank_of({{"RANK", "0"}}), "0");
}

TEST(RunEnv, Expansion) {
  const RunEnv env{.pid = 42, .rank = "3", .host = "node7"};
  EXPECT_EQ(expand_path("run-%p-r%r-%h.fpst", env), "run-42-r3-node7.fpst");
  EXPECT_EQ(expand_path("%p%p", env), "4242");
  EXPECT_EQ(expand_path("100%%-%%p", env), "100%-%p");  // %% is a literal %, never a prefix
  EXPECT_EQ(expand_path("a%qb%", env), "a%qb%");        // unknown %x and a trailing % kept
  EXPECT_EQ(expand_path("plain.fpst", env), "plain.fpst");
  EXPECT_EQ(expand_path("", env), "");
  const RunEnv none{.pid = 1, .rank = std::nullopt, .host = ""};
  EXPECT_EQ(expand_path("r%r-%h", none), "r0-unknown");  // no rank: 0; no host: unknown
  const RunEnv odd{.pid = 1, .rank = "worker-a", .host = "h"};
  EXPECT_EQ(expand_path("run-%r.fpst", odd), "run-worker-a.fpst");
}

class RealEnv : public ::testing::Test {
 protected:
  void SetUp() override { clear(); }
  void TearDown() override { clear(); }
  static void clear() {
    for (const char* n : kRankVariables) unsetenv(n);
  }
};

TEST_F(RealEnv, ThisProcess) {
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  EXPECT_EQ(expand_output_path("r%r", 1), "r0");  // unset
  setenv("RANK", "", 1);
  EXPECT_EQ(expand_output_path("r%r", 1), "r0");  // empty
  setenv("SLURM_PROCID", "9", 1);
  EXPECT_EQ(expand_output_path("r%r", 1), "r9");  // empty RANK falls through
  setenv("RANK", "3", 1);
  EXPECT_EQ(expand_output_path("run-%p-r%r-%h.fpst", 42),
            std::string("run-42-r3-") + host + ".fpst");
  const RunEnv env = current_run_env(7);
  EXPECT_EQ(env.pid, 7);
  EXPECT_EQ(env.rank, "3");
  EXPECT_EQ(env.host, host);
}

TEST(OutputClaim, SiblingPath) {
  using fpscope::probe::sibling_path;
  EXPECT_EQ(sibling_path("/d/run.fpst", 12), "/d/run.12.fpst");
  EXPECT_EQ(sibling_path("run.fpst", 12), "run.12.fpst");
  EXPECT_EQ(sibling_path("/d/run", 12), "/d/run.12");
  EXPECT_EQ(sibling_path("/d.x/run", 12), "/d.x/run.12");  // a dot in the folder is no extension
  EXPECT_EQ(sibling_path("/d/.fpst", 12), "/d/.fpst.12");  // nor a leading dot
  EXPECT_EQ(sibling_path("/d/a.b.fpst", 12), "/d/a.b.12.fpst");
}

TEST(OutputClaim, SecondClaimantGetsTheSibling) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("fpscope_claim_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string p = (dir / "run.fpst").string();
  fpscope::probe::OutputClaim first, second, third;
  EXPECT_EQ(first.claim_or_sibling(p, 1), p);
  EXPECT_TRUE(first.claim(p));  // its own claim again
  // flock belongs to the open file description: another claimant in this process is refused.
  testing::internal::CaptureStderr();
  EXPECT_FALSE(second.claim(p));
  EXPECT_EQ(second.claim_or_sibling(p, 2), (dir / "run.2.fpst").string());
  EXPECT_EQ(third.claim_or_sibling(p, 2), "");  // the sibling is taken too
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("another process is recording to " + p), std::string::npos) << err;
  EXPECT_NE(err.find("in use too; recording disabled"), std::string::npos) << err;
  // A path that cannot be opened is no refusal: the trace writer reports the error.
  EXPECT_TRUE(third.claim((dir / "no" / "such" / "dir.fpst").string()));
  fs::remove_all(dir);
}

TEST(OutputClaim, StaleCheck) {
  namespace fs = std::filesystem;
  const std::string p =
      (fs::temp_directory_path() / ("fpscope_stale_" + std::to_string(getpid()) + ".fpst"))
          .string();
  fs::remove(p);
  const fpscope::probe::PathSnapshot missing = fpscope::probe::PathSnapshot::take(p);
  EXPECT_TRUE(missing.missing_or_unchanged(p));
  { std::ofstream(p) << "old"; }
  EXPECT_FALSE(missing.missing_or_unchanged(p));  // written since: another process's trace
  const fpscope::probe::PathSnapshot seen = fpscope::probe::PathSnapshot::take(p);
  EXPECT_TRUE(seen.missing_or_unchanged(p));  // the very file seen at start: stale
  fs::remove(p);
}

}  // namespace
