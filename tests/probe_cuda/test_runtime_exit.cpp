// The CUDA path's exit drain (device_runtime.h: shutdown) end to end with the host backend:
// runtime_exit_prog writes a real trace; this reads it with the one trace reader.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "fpscope/trace_io.h"
#include "run_util.h"

namespace fpscope::cuda {
namespace {

using proc::Output;

struct Result {
  Output run;
  trace::Trace trace;
};

Result record(const std::string& mode, const std::string& extra_env = "") {
  const std::string path = std::string(FPSCOPE_TEST_TMP) + "/exit-" + mode + ".fpst";
  std::remove(path.c_str());
  Result r;
  r.run = proc::run("FPSCOPE_OUTPUT=" + path +
                        " FPSCOPE_STEPS=api FPSCOPE_EVERY=1 FPSCOPE_CUDA_SLOTS=4 "
                        "FPSCOPE_LOG=info " +
                        extra_env,
                    std::string(FPSCOPE_EXIT_PROG) + " " + mode);
  trace::ReadError err;
  EXPECT_TRUE(trace::read_trace(path, &r.trace, &err)) << err.message << "\n" << r.run.err;
  return r;
}

std::vector<std::string> cuda_events(const trace::Trace& t) {
  std::vector<std::string> v;
  for (const auto& e : t.events)
    if (e.text.rfind("cuda:", 0) == 0) v.push_back(e.text);
  return v;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::vector<float> amaxes(const trace::Trace& t) {
  std::vector<float> v;
  for (const auto& o : t.observations) v.push_back(static_cast<float>(o.stats.amax));
  std::sort(v.begin(), v.end());
  return v;
}

void expect_skip_events(const std::vector<std::string>& ev) {
  EXPECT_TRUE(has(ev,
                  "cuda: 1 GEMM operand observations skipped: all result slots in flight "
                  "(raise FPSCOPE_CUDA_SLOTS)"));
  EXPECT_TRUE(has(ev,
                  "cuda: 1 GEMM operand observations skipped: stream was capturing a CUDA "
                  "graph"));
  EXPECT_TRUE(has(ev,
                  "cuda: 2 GEMM operand observations skipped: operand type or layout not "
                  "readable by the stats kernels"));
}

void expect_drain_thread_stopped(const std::string& out) {
  unsigned long long before = 0, after = 1;
  const auto at = out.find("polls before ");
  ASSERT_NE(at, std::string::npos) << out;
  ASSERT_EQ(std::sscanf(out.c_str() + at, "polls before %llu after %llu", &before, &after), 2);
  EXPECT_GT(before, 0u);
  EXPECT_EQ(before, after) << "something still polls the device after the exit drain";
}

TEST(CudaExit, LateResultsAreDrainedAndSkipCountsReachTheTrace) {
  const Result r = record("recorder-first", "FPSCOPE_CUDA_DRAIN_MS=20000");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  EXPECT_NE(r.run.out.find("submitted 4 ring_full 1 capturing 1"), std::string::npos) << r.run.out;
  EXPECT_NE(r.run.out.find("delivered before exit 2"), std::string::npos) << r.run.out;
  EXPECT_TRUE(r.trace.clean_close);
  // All four results, the two that completed during the exit drain included.
  EXPECT_EQ(amaxes(r.trace), (std::vector<float>{1, 2, 3, 4}));
  for (const auto& o : r.trace.observations) EXPECT_EQ(o.stats.count, 32u);
  const auto ev = cuda_events(r.trace);
  expect_skip_events(ev);
  for (const auto& e : ev) EXPECT_EQ(e.find("still on the device"), std::string::npos) << e;
  expect_drain_thread_stopped(r.run.out);
  EXPECT_NE(r.run.err.find("[fpscope] cuda exit: 4 observations delivered"), std::string::npos)
      << r.run.err;
}

TEST(CudaExit, WorksWhenTheRecorderExitsFirst) {
  // The CUDA runtime created before the recorder: the recorder's atexit handler runs first and
  // the drain runs as its shutdown hook, before the trace is closed.
  const Result r = record("pipeline-first", "FPSCOPE_CUDA_DRAIN_MS=20000");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  EXPECT_TRUE(r.trace.clean_close);
  EXPECT_EQ(amaxes(r.trace), (std::vector<float>{1, 2, 3, 4}));
  expect_skip_events(cuda_events(r.trace));
  expect_drain_thread_stopped(r.run.out);
}

TEST(CudaExit, ResultsThatNeverCompleteAreCountedAfterTheDeadline) {
  const Result r = record("stuck", "FPSCOPE_CUDA_DRAIN_MS=200");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  EXPECT_TRUE(r.trace.clean_close);
  EXPECT_EQ(amaxes(r.trace), (std::vector<float>{1, 2}));
  const auto ev = cuda_events(r.trace);
  expect_skip_events(ev);
  EXPECT_TRUE(has(ev, "cuda: 2 results still on the device at exit"));
  expect_drain_thread_stopped(r.run.out);
}

TEST(CudaExit, NoCudaWorkNoExitWork) {
  const Result r = record("none");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  EXPECT_TRUE(r.trace.clean_close);
  EXPECT_TRUE(cuda_events(r.trace).empty());
  EXPECT_NE(r.run.out.find("no backend"), std::string::npos) << r.run.out;
  EXPECT_EQ(r.run.err.find("cuda exit"), std::string::npos) << r.run.err;
}

}  // namespace
}  // namespace fpscope::cuda
