// The real dynamic loader, the real libcublas/libcublasLt: does the preloaded probe see every call
// of every hooked function, and pass the status through unchanged? Needs no GPU (null handles).
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <sstream>
#include <string>

namespace {

struct Result {
  int exit_code = -1;
  std::string out;
};

Result run(const std::string& preload, const std::string& program, bool merge_stderr = true) {
  std::string cmd = "env -u LD_PRELOAD";
  // A real probe writes a trace: keep it in the build tree, never in the test's cwd.
  if (!preload.empty())
    cmd += " FPSCOPE_OUTPUT=" FPSCOPE_TEST_TMP "/interpose-%p.fpst LD_PRELOAD=" + preload;
  cmd += " " + program + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  Result r;
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) r.out.append(buf, n);
  const int st = pclose(f);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// "<name> <status>" lines and "seen <name> <count>" lines.
void parse(const std::string& out, std::map<std::string, int>* status,
           std::map<std::string, long long>* seen) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    std::string a, b;
    long long v = 0;
    if (line.rfind("seen ", 0) == 0) {
      l >> a >> b >> v;
      (*seen)[b] = v;
    } else if (line.rfind("cublas", 0) == 0) {
      l >> a >> v;
      (*status)[a] = static_cast<int>(v);
    }
  }
}

const char* const kHooks[] = {"cublasGemmEx",
                              "cublasGemmEx_64",
                              "cublasGemmStridedBatchedEx",
                              "cublasGemmStridedBatchedEx_64",
                              "cublasGemmBatchedEx",
                              "cublasGemmBatchedEx_64",
                              "cublasSgemm_v2",
                              "cublasSgemm_v2_64",
                              "cublasHgemm",
                              "cublasHgemm_64",
                              "cublasLtMatmul"};

TEST(Interpose, ProbeSeesEveryHookedCallAndPassesStatusThrough) {
  const Result base = run("", FPSCOPE_NULL_CALLS);
  ASSERT_EQ(base.exit_code, 0) << base.out;
  const Result probed = run(FPSCOPE_PROBE_LIB, FPSCOPE_NULL_CALLS);
  ASSERT_EQ(probed.exit_code, 0) << probed.out;
  std::map<std::string, int> st0, st1;
  std::map<std::string, long long> seen0, seen1;
  parse(base.out, &st0, &seen0);
  parse(probed.out, &st1, &seen1);
  EXPECT_TRUE(seen0.empty()) << "the probe is not loaded in the baseline run";
  for (const char* h : kHooks) {
    SCOPED_TRACE(h);
    ASSERT_TRUE(st0.count(h)) << base.out;
    ASSERT_TRUE(st1.count(h)) << probed.out;
    EXPECT_EQ(st1[h], st0[h]) << "status changed by the probe";
    EXPECT_NE(st0[h], 0) << "a null handle must fail";
    EXPECT_EQ(seen1[h], 1) << "the probe did not interpose " << h << "\n" << probed.out;
    std::printf("  %-30s status %d (seen %lld)\n", h, st0[h], seen1[h]);
  }
}

// The loader facts behind exports.map, measured with a plain (no .symver) hook of cublasGemmEx.
TEST(Interpose, UnversionedDefinitionInterposesAVersionedReference) {
  const Result r = run(FPSCOPE_NEG_UNVERSIONED, FPSCOPE_NULL_CALLS);
  std::map<std::string, int> st;
  std::map<std::string, long long> seen;
  parse(r.out, &st, &seen);
  EXPECT_EQ(seen["cublasGemmEx"], 1) << r.out;
}

TEST(Interpose, DefinitionInAnotherVersionNodeDoesNotInterpose) {
  const Result r = run(FPSCOPE_NEG_NAMED, FPSCOPE_NULL_CALLS);
  std::map<std::string, int> st;
  std::map<std::string, long long> seen;
  parse(r.out, &st, &seen);
  ASSERT_TRUE(seen.count("cublasGemmEx")) << r.out;  // the library is loaded ...
  EXPECT_EQ(seen["cublasGemmEx"], 0) << r.out;       // ... but the loader skipped its hook
}

TEST(PassThrough, CudaProgramWithoutGpuBehavesTheSameUnderTheProbe) {
  // stdout only: the probe may log to stderr, never to stdout.
  const Result base = run("", FPSCOPE_CUDART_NO_DEVICE, false);
  const Result probed = run(FPSCOPE_PROBE_LIB, FPSCOPE_CUDART_NO_DEVICE, false);
  EXPECT_EQ(probed.exit_code, base.exit_code);
  EXPECT_EQ(probed.out, base.out);
  std::printf("%s", base.out.c_str());
}

}  // namespace
