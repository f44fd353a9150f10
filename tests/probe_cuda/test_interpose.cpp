// The real dynamic loader, the real libcublas/libcublasLt: does the preloaded probe see every call
// of every hooked function, and pass the status through unchanged? Needs no GPU (null handles).
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <sstream>
#include <string>

#include "fpscope/trace_io.h"
#include "run_util.h"

namespace {

namespace pt = fpscope::cuda::proc;
namespace trace = fpscope::trace;
using fpscope::Format;

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
                              "cublasSgemmStridedBatched",
                              "cublasSgemmStridedBatched_64",
                              "cublasHgemmStridedBatched",
                              "cublasHgemmStridedBatched_64",
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

TEST(Interpose, MissingRealFunctionFailsEveryCallAndIsLoggedOnce) {
  const pt::Output r =
      pt::run("FPSCOPE_OUTPUT=" FPSCOPE_TEST_TMP "/missing-real.fpst LD_PRELOAD=" FPSCOPE_PROBE_LIB,
              FPSCOPE_MISSING_REAL);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "cublasGemmEx 1\ncublasLtMatmul 1\ncublasGemmEx 1\ncublasLtMatmul 1\n"
            "cublasGemmEx 1\ncublasLtMatmul 1\n");
  auto count = [&](const std::string& what) {
    size_t n = 0;
    for (size_t at = r.err.find(what); at != std::string::npos; at = r.err.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("cannot find the real cublasGemmEx"), 1u) << r.err;
  EXPECT_EQ(count("cannot find the real cublasLtMatmul"), 1u) << r.err;
}

// A process holding libcublas.so.12 and libcublas.so.13 (torch built for CUDA 12 plus an extension
// built for CUDA 13), each called by a library linked against it: its references are
// cublasSgemm_v2@libcublas.so.12 and @libcublas.so.13. The probe's hook for each version node
// must call that version's real function (dlvsym); one shared entry resolved by name sent both
// clients to whichever library the loader found first (issue 16 item 4). The stand-ins return
// 1000 + their major.
TEST(Interpose, TwoCublasMajorsInOneProcessEachReachTheirOwn) {
  const Result base = run("", FPSCOPE_TWO_CUBLAS_MAJORS, false);
  ASSERT_EQ(base.exit_code, 0) << base.out;
  ASSERT_EQ(base.out, "12 1012 1012\n13 1013 1013\n");  // the loader's own routing
  const Result probed = run(FPSCOPE_PROBE_LIB, FPSCOPE_TWO_CUBLAS_MAJORS, false);
  ASSERT_EQ(probed.exit_code, 0) << probed.out;
  EXPECT_EQ(probed.out, "12 1012 1012\n13 1013 1013\nseen cublasSgemm_v2 2\nseen cublasGemmEx 2\n");
}

// The same for cuBLASLt: the clients' references are cublasLtMatmul@libcublasLt.so.12 and .13.
// Each node's hook must call its own library's cublasLtMatmul (the stand-ins return 1000 + major)
// and decode the call's descriptors with that library's getters: each client's descriptors hold
// its major, and each stand-in counts the getter reads it served and those of a descriptor of the
// other major ("reads <major> <matmul desc> <layout> <foreign>").
TEST(Interpose, TwoCublasLtMajorsInOneProcessEachReachTheirOwn) {
  struct Reads {
    int desc = -1, layout = -1, foreign = -1;
  };
  auto reads_of = [](const std::string& out, int major) {
    const std::string key = "reads " + std::to_string(major) + " ";
    Reads r;
    const size_t at = out.find(key);
    if (at != std::string::npos)
      std::istringstream(out.substr(at + key.size())) >> r.desc >> r.layout >> r.foreign;
    return r;
  };
  const Result base = run("", FPSCOPE_TWO_CUBLASLT_MAJORS, false);
  ASSERT_EQ(base.exit_code, 0) << base.out;
  // The loader's own routing, and no getter reads without the probe.
  ASSERT_EQ(base.out, "12 1012\n13 1013\nreads 12 0 0 0\nreads 13 0 0 0\n");
  const Result probed = run(FPSCOPE_PROBE_LIB, FPSCOPE_TWO_CUBLASLT_MAJORS, false);
  ASSERT_EQ(probed.exit_code, 0) << probed.out;
  EXPECT_EQ(probed.out.rfind("12 1012\n13 1013\n", 0), 0u) << probed.out;
  EXPECT_NE(probed.out.find("seen cublasLtMatmul 2\n"), std::string::npos) << probed.out;
  for (int major : {12, 13}) {
    SCOPED_TRACE(major);
    const Reads r = reads_of(probed.out, major);
    EXPECT_EQ(r.foreign, 0) << probed.out;
    if (!FPSCOPE_PROBE_DECODES_LT) {  // the stand-in probe records and decodes nothing
      EXPECT_EQ(r.desc, 0) << probed.out;
      EXPECT_EQ(r.layout, 0) << probed.out;
      continue;
    }
    // The probe read the call's matmul descriptor and then layout A (whose read fails in the
    // stand-in library, so nothing is recorded) through this major's library, never the other's.
    EXPECT_GT(r.desc, 0) << probed.out;
    EXPECT_EQ(r.layout, 1) << probed.out;
  }
}

// Same exit code, same stdout, same stderr apart from the probe's own "[fpscope]" lines.
void expect_same_behaviour(const pt::Output& base, const pt::Output& probed) {
  EXPECT_EQ(probed.exit_code, base.exit_code);
  EXPECT_EQ(probed.out, base.out);
  EXPECT_EQ(pt::without_probe_lines(probed.err), base.err);
  EXPECT_EQ(pt::without_probe_lines(base.err), base.err);
}

std::string probe_env(const std::string& trace) {
  return "FPSCOPE_OUTPUT=" + trace +
         " FPSCOPE_LOG=info FPSCOPE_EVERY=1 FPSCOPE_CUPTI_LIB=" + FPSCOPE_CUPTI_LIB +
         " LD_PRELOAD=" FPSCOPE_PROBE_LIB;
}

TEST(PassThrough, CudaProgramWithoutGpuBehavesTheSameUnderTheProbe) {
  const std::string trace = FPSCOPE_TEST_TMP "/passthrough-cudart.fpst";
  const pt::Output base = pt::run("", FPSCOPE_CUDART_NO_DEVICE);
  const pt::Output probed = pt::run(probe_env(trace), FPSCOPE_CUDART_NO_DEVICE);
  EXPECT_EQ(base.exit_code, 3) << base.out << base.err;  // no device: its own error path
  expect_same_behaviour(base, probed);
  // No cuBLAS call, so the probe never created its CUDA runtime: nothing to do at exit.
  EXPECT_EQ(probed.err.find("cuda exit"), std::string::npos) << probed.err;
  EXPECT_EQ(probed.err.find("GPU tensor statistics"), std::string::npos) << probed.err;
  std::printf("%s", base.out.c_str());
}

TEST(PassThrough, CudaMlpSampleWithoutGpuBehavesTheSameUnderTheProbe) {
  const std::string trace = FPSCOPE_TEST_TMP "/passthrough-mlp.fpst";
  const std::string cmd = std::string(FPSCOPE_CUDA_MLP) + " --dtype fp16 --steps 3";
  const pt::Output base = pt::run("", cmd);
  if (base.exit_code == 0) GTEST_SKIP() << "a GPU is present: tests/gpu/run.sh covers this";
  EXPECT_EQ(base.exit_code, 2) << base.out << base.err;
  EXPECT_NE(base.err.find("cuda_mlp: no CUDA GPU available"), std::string::npos) << base.err;
  const pt::Output probed = pt::run(probe_env(trace), cmd);
  expect_same_behaviour(base, probed);
  std::printf("  cuda_mlp: exit %d, %s", base.exit_code, base.err.c_str());
}

// Real cuBLASLt descriptors, null handles: the cublasLtMatmul call goes the probe's whole CUDA
// path (decoding, recorder, CUPTI start, pipeline() finding no device), the program's own error
// handling must not notice.
TEST(PassThrough, LtMatmulAndGemmExWithNullHandlesRunTheProbesCudaPath) {
  const std::string trace = FPSCOPE_TEST_TMP "/passthrough-lt.fpst";
  std::remove(trace.c_str());
  const pt::Output base = pt::run("", FPSCOPE_LT_NULL_CALLS);
  if (base.out.find("GPU present") != std::string::npos) GTEST_SKIP() << "a GPU is present";
  ASSERT_EQ(base.exit_code, 4) << base.out << base.err;
  EXPECT_NE(base.out.find("cublasLtMatmul 1\n"), std::string::npos) << base.out;
  EXPECT_NE(base.out.find("cublasGemmEx 1\n"), std::string::npos) << base.out;
  const pt::Output probed = pt::run(probe_env(trace), FPSCOPE_LT_NULL_CALLS);
  expect_same_behaviour(base, probed);
  std::printf("probe log:\n%s", probed.err.c_str());

  // The probe's CUDA path ran: CUPTI was started, the device pipeline was created and found no
  // driver (this machine has none: the program's cudart could not load libcuda.so.1, and the
  // probe never loads it itself) and said so once, in the log and in the trace; the Lt call was
  // decoded and recorded.
  EXPECT_NE(probed.err.find("GPU tensor statistics are off: the program has not loaded the CUDA "
                            "driver (libcuda.so.1)"),
            std::string::npos)
      << probed.err;
  const bool cupti_started = probed.err.find("CUPTI subscribed") != std::string::npos ||
                             probed.err.find("cuptiSubscribe failed") != std::string::npos ||
                             probed.err.find("CUPTI is held by another tool") != std::string::npos;
  EXPECT_TRUE(cupti_started) << probed.err;
  EXPECT_EQ(probed.err.find("cuda exit"), std::string::npos) << "no runtime, no exit work";
  trace::Trace t;
  trace::ReadError err;
  ASSERT_TRUE(trace::read_trace(trace, &t, &err)) << err.message;
  EXPECT_TRUE(t.clean_close);
  std::map<std::string, const trace::TensorInfo*> lt;
  for (const auto& ti : t.tensors)
    if (ti.op == "cublasLtMatmul") lt[trace::role_name(ti.role)] = &ti;
  ASSERT_EQ(lt.size(), 4u) << "A, B, C (beta 1) and D of the cublasLtMatmul call";
  const auto& d = *lt["D"];
  EXPECT_EQ(d.gemm.m, 24);
  EXPECT_EQ(d.gemm.n, 40);
  EXPECT_EQ(d.gemm.k, 56);
  EXPECT_EQ(d.gemm.alpha, 1.0);
  EXPECT_EQ(d.gemm.beta, 1.0);
  EXPECT_EQ(d.dtype, Format::FP16);
  EXPECT_EQ(lt["A"]->rows, 24u);
  EXPECT_EQ(lt["A"]->cols, 56u);
  EXPECT_EQ(lt["B"]->rows, 56u);
  EXPECT_EQ(lt["B"]->cols, 40u);
  EXPECT_TRUE(t.observations.empty()) << "no device: no statistics";
  for (const auto& ti : t.tensors) EXPECT_NE(ti.op, "cublasGemmEx") << "null classic handle";
  int off = 0;
  for (const auto& e : t.events) off += e.text.rfind("cuda: tensor statistics off: ", 0) == 0;
  EXPECT_EQ(off, 1);
}

// FPSCOPE_CUPTI_PROFILER is "<program> <client library>": the mode goes between them.
std::string mode_command(const std::string& mode) {
  const std::string pc = FPSCOPE_CUPTI_PROFILER;
  const size_t sp = pc.find(' ');
  return pc.substr(0, sp) + " " + mode + pc.substr(sp);
}

// CUPTI has one subscriber slot. A profiler that subscribes after the probe (torch.profiler starts
// at profile time, after the first cuBLAS call) must get it: on an H200, torch.profiler saw 0 CUDA
// kernels under the probe before the probe gave its subscriber up (tests/gpu/profiler_check.py).
// The stand-in libcupti enforces the rule as CUPTI's documentation states it (fake_cupti.c).
TEST(Cupti, ProfilerSubscribingAfterTheProbeGetsCuptiAndTheTraceSaysWhatIsLost) {
  const std::string trace = FPSCOPE_TEST_TMP "/cupti-late.fpst";
  std::remove(trace.c_str());
  const std::string cmd = mode_command("late");
  const pt::Output base = pt::run("", cmd);
  ASSERT_EQ(base.exit_code, 0) << base.out << base.err;
  const std::string env = "FPSCOPE_OUTPUT=" + trace +
                          " FPSCOPE_LOG=info FPSCOPE_CUPTI_LIB=" FPSCOPE_FAKE_CUPTI
                          " LD_PRELOAD=" FPSCOPE_PROBE_LIB;
  const pt::Output probed = pt::run(env, cmd);
  EXPECT_NE(probed.err.find("CUPTI subscribed (InitializeInjection)"), std::string::npos)
      << "the probe held CUPTI first: " << probed.err;
  EXPECT_EQ(probed.exit_code, 0) << probed.out << probed.err;
  EXPECT_NE(probed.out.find("profiler_subscribe 0\n"), std::string::npos) << probed.out;
  EXPECT_NE(probed.out.find("holder <not provided>\n"), std::string::npos) << probed.out;
  EXPECT_NE(probed.err.find("fpscope released CUPTI to it"), std::string::npos) << probed.err;
  trace::Trace t;
  trace::ReadError err;
  ASSERT_TRUE(trace::read_trace(trace, &t, &err)) << err.message;
  int released = 0;
  for (const auto& e : t.events)
    released += e.text.rfind("cuda: CUPTI released to another subscriber (cuptiSubscribe)", 0) == 0;
  EXPECT_EQ(released, 1);
}

// The other order: a profiler already holds CUPTI; the probe leaves it there and says so.
TEST(Cupti, ProbeStartingAfterAProfilerLeavesItsSubscriber) {
  const std::string trace = FPSCOPE_TEST_TMP "/cupti-first.fpst";
  const std::string cmd = mode_command("first");
  const std::string env = "FPSCOPE_OUTPUT=" + trace +
                          " FPSCOPE_LOG=info FPSCOPE_CUPTI_LIB=" FPSCOPE_FAKE_CUPTI
                          " LD_PRELOAD=" FPSCOPE_PROBE_LIB;
  const pt::Output probed = pt::run(env, cmd);
  EXPECT_EQ(probed.exit_code, 0) << probed.out << probed.err;
  EXPECT_NE(probed.out.find("profiler_subscribe 0\n"), std::string::npos) << probed.out;
  EXPECT_NE(probed.err.find("CUPTI is held by another tool (CUPTI for <not provided>)"),
            std::string::npos)
      << probed.err;
}

}  // namespace
