// The run environment (traces/include/fpscope/run_env.h): the rank rule and the `%p %r %h`
// expansion the probe and `fpscope record` share; and the output claiming of the probe
// (probe/src/output_claim.h): sibling paths and the lock that refuses a second claimant.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
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

// Issue 17: the claim opened the path with O_CREAT and no O_NOFOLLOW, so the trace writer then
// truncated a symlink's target.
TEST(OutputClaim, SymlinkIsNeverFollowed) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("fpscope_link_" + std::to_string(getpid()));
  fs::create_directories(dir);
  { std::ofstream(dir / "victim") << "keep"; }
  fs::create_symlink(dir / "victim", dir / "run.fpst");
  fpscope::probe::OutputClaim c;
  testing::internal::CaptureStderr();
  EXPECT_EQ(c.claim_or_sibling((dir / "run.fpst").string(), 7), (dir / "run.7.fpst").string());
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("is a symbolic link, never followed"), std::string::npos) << err;
  std::ifstream f(dir / "victim");
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(f)), {}), "keep");
  EXPECT_TRUE(fs::is_symlink(dir / "run.fpst"));
  fs::remove_all(dir);
}

// Issue 17: open(O_WRONLY) of a FIFO without a reader blocked the program forever.
TEST(OutputClaim, FifoNeverBlocks) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("fpscope_fifo_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string p = (dir / "run.fpst").string();
  ASSERT_EQ(mkfifo(p.c_str(), 0600), 0);
  fpscope::probe::OutputClaim c;
  testing::internal::CaptureStderr();
  auto got = std::async(std::launch::async, [&] { return c.claim_or_sibling(p, 7); });
  const bool done = got.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  if (!done) {  // unblock the claim so that the test ends
    const int fd = open(p.c_str(), O_RDONLY | O_NONBLOCK);
    got.wait();
    close(fd);
  }
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(done) << "claiming a FIFO blocked";
  EXPECT_EQ(got.get(), "");  // never written: recording disabled
  EXPECT_NE(err.find("is not a regular file"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dir / "run.7.fpst"));
  fs::remove_all(dir);
}

// A trace header (traces/FORMAT.md section 3) with the given metadata.
void write_trace_header(const std::string& path, const std::string& meta) {
  std::string h(
      "\x89"
      "FPST\r\n\x1a",
      8);
  const uint16_t ver[2] = {1, 1};
  const uint32_t flags = 0, len = static_cast<uint32_t>(meta.size()), crc = 0;
  h.append(reinterpret_cast<const char*>(ver), 4);
  h.append(reinterpret_cast<const char*>(&flags), 4);
  h.append(reinterpret_cast<const char*>(&len), 4);
  h += meta;
  h.append(reinterpret_cast<const char*>(&crc), 4);
  std::ofstream(path, std::ios::binary) << h;
}

// Issue 17: after exec() the new image truncated the trace its earlier image wrote.
TEST(OutputClaim, EarlierImageOfThisProcessIsNotTruncated) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("fpscope_exec_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const long pid = static_cast<long>(getpid());
  const std::string start = fpscope::probe::process_start_id();
  ASSERT_NE(start, "");
  const std::string mine =
      "{\"pid\":" + std::to_string(pid) + ",\"process_start\":\"" + start + "\"}";
  const std::string p = (dir / "run.fpst").string(), sib = fpscope::probe::sibling_path(p, pid);
  write_trace_header(p, mine);
  const auto size = fs::file_size(p);
  fpscope::probe::OutputClaim a, b;
  EXPECT_EQ(a.try_claim(p), fpscope::probe::OutputClaim::Outcome::EarlierImage);
  EXPECT_EQ(a.claim_or_sibling(p, pid), sib);
  EXPECT_EQ(fs::file_size(p), size);
  // A second exec: the sibling is an earlier image's too.
  a.forget_after_fork();  // drop the claim without creating a trace in the sibling
  write_trace_header(sib, mine);
  EXPECT_EQ(b.claim_or_sibling(p, pid), fpscope::probe::sibling_path(sib, 2));
  // The same pid from another process start (pid reuse): a stale trace, claimed.
  fpscope::probe::OutputClaim c;
  write_trace_header(p, "{\"pid\":" + std::to_string(pid) + ",\"process_start\":\"x:1\"}");
  EXPECT_TRUE(c.claim(p));
  fs::remove_all(dir);
}

}  // namespace
