// NVTX ranges name tensors and mark steps, end to end on the CPU: nvtx_prog (nvtx3 header-only
// client, host sgemm_) under the preloaded probe, with NVTX_INJECTION64_PATH naming the probe as
// `fpscope record` sets it. The trace is read with the one trace reader.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "fpscope/trace_io.h"
#include "run_util.h"

namespace fpscope::cuda {
namespace {

using proc::Output;

constexpr int kSteps = 4;
constexpr double kK = 4;  // nvtx_prog's GEMMs: D = k * product * (s + 1) in its step s

struct Result {
  Output run;
  trace::Trace trace;
};

Result record(const std::string& mode, bool inject, const std::string& extra_env = "") {
  const std::string path =
      std::string(FPSCOPE_TEST_TMP) + "/nvtx-" + mode + (inject ? "" : "-noinject") + ".fpst";
  std::remove(path.c_str());
  std::string env = "FPSCOPE_OUTPUT=" + path + " FPSCOPE_EVERY=1 LD_PRELOAD=" FPSCOPE_PROBE_LIB;
  if (inject) env += " NVTX_INJECTION64_PATH=" FPSCOPE_PROBE_LIB;
  Result r;
  r.run = proc::run(env + " " + extra_env,
                    std::string(FPSCOPE_NVTX_PROG) + " " + mode + " " + std::to_string(kSteps));
  trace::ReadError err;
  EXPECT_TRUE(trace::read_trace(path, &r.trace, &err)) << err.message << "\n" << r.run.err;
  return r;
}

const trace::TensorInfo* find(const trace::Trace& t, const std::string& id) {
  for (const auto& ti : t.tensors)
    if (ti.id == id) return &ti;
  return nullptr;
}

// step -> amax of the tensor's observations.
std::map<uint64_t, double> by_step(const trace::Trace& t, const trace::TensorInfo& ti) {
  std::map<uint64_t, double> m;
  for (const auto& o : t.observations)
    if (o.tensor == ti.index) m[o.step] = o.stats.amax;
  return m;
}

void expect_named_and_stepped(const Result& r) {
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  const trace::Trace& t = r.trace;
  EXPECT_TRUE(t.clean_close);
  EXPECT_EQ(t.step_source, trace::StepSource::Nvtx);
  // One step per range: the first range starts step 0 (no GEMM came before it), so step s is the
  // program's iteration s, as with fpscope.step() at the end of each iteration.
  std::set<uint64_t> marks;
  for (const auto& s : t.steps) {
    marks.insert(s.step);
    if (s.step > 0) {
      EXPECT_EQ(s.source, trace::StepSource::Nvtx) << s.step;
    }
  }
  EXPECT_EQ(marks, (std::set<uint64_t>{0, 1, 2, 3}));
  // Named by the ranges (ASCII, Ex, registered string, wide, two GEMMs in one range); the range
  // of the step itself names nothing.
  const std::map<std::string, std::pair<std::string, double>> want = {
      {"fc1.D", {"fc1", 3.0}},
      {"fc2.D", {"fc2", 1.5}},
      {"fc2#1.D", {"fc2", 0.5}},
      {"head.D", {"head", 7.0}},
      {"wide\xc3\xa9.D", {"wide\xc3\xa9", 2.5}},
  };
  for (const auto& [id, nv] : want) {
    SCOPED_TRACE(id);
    const trace::TensorInfo* ti = find(t, id);
    ASSERT_NE(ti, nullptr);
    EXPECT_EQ(ti->name, nv.first);
    EXPECT_EQ(ti->op, "sgemm");
    EXPECT_EQ(ti->rows, 8u);
    EXPECT_EQ(ti->cols, 6u);
    const auto m = by_step(t, *ti);
    ASSERT_EQ(m.size(), static_cast<size_t>(kSteps));
    for (int s = 0; s < kSteps; ++s) {
      ASSERT_TRUE(m.count(static_cast<uint64_t>(s))) << "step " << s;
      EXPECT_EQ(m.at(static_cast<uint64_t>(s)), kK * nv.second * (s + 1)) << "step " << s;
    }
  }
  // The GEMM outside any range keeps an ordinal name; nothing is named after the step range.
  int unnamed = 0;
  for (const auto& ti : t.tensors) {
    EXPECT_EQ(ti.name.find("tep"), std::string::npos) << ti.id;
    if (ti.role == trace::Role::D && ti.name.empty()) {
      ++unnamed;
      EXPECT_EQ(ti.id.rfind("gemm#", 0), 0u) << ti.id;
      const auto m = by_step(t, ti);
      ASSERT_EQ(m.size(), static_cast<size_t>(kSteps)) << ti.id;
      for (const auto& [step, amax] : m) EXPECT_EQ(amax, kK * 0.25 * static_cast<double>(step + 1));
    }
  }
  EXPECT_EQ(unnamed, 1);
}

TEST(Nvtx, PushedRangesNameTensorsAndTheStepRangeMarksSteps) {
  expect_named_and_stepped(record("push", true));
}

TEST(Nvtx, StartedStepRangesMarkStepsToo) {
  // nvtxRangeStartA("Step <s>") / nvtxRangeEnd: case-insensitive match of FPSCOPE_STEP_RANGE.
  expect_named_and_stepped(record("start", true));
}

TEST(Nvtx, StepRangeNameIsConfigurable) {
  // With another step-range name, "step" is an ordinary range: it names the unnamed GEMM, and
  // no step marks come from NVTX (the GEMM period takes over).
  const Result r = record("push", true, "FPSCOPE_STEP_RANGE=iteration");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  EXPECT_NE(r.trace.step_source, trace::StepSource::Nvtx);
  const trace::TensorInfo* ti = find(r.trace, "step.D");
  ASSERT_NE(ti, nullptr) << "the outer range names the GEMM outside the inner ranges";
  EXPECT_NE(find(r.trace, "fc1.D"), nullptr);
}

TEST(Nvtx, WithoutTheInjectionNothingIsNamedAndStepsAreNotNvtx) {
  // The control: the same program, the probe preloaded, but NVTX not pointed at it.
  const Result r = record("push", false);
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  EXPECT_NE(r.trace.step_source, trace::StepSource::Nvtx);
  EXPECT_EQ(find(r.trace, "fc1.D"), nullptr);
  for (const auto& ti : r.trace.tensors) EXPECT_TRUE(ti.name.empty()) << ti.id;
}

TEST(Nvtx, ProgramOutputUnchanged) {
  const Output plain = proc::run("", std::string(FPSCOPE_NVTX_PROG) + " push 4");
  const Result r = record("push", true);
  EXPECT_EQ(plain.exit_code, 0);
  EXPECT_EQ(r.run.exit_code, plain.exit_code);
  EXPECT_EQ(r.run.out, plain.out);
  EXPECT_EQ(proc::without_probe_lines(r.run.err), plain.err);
}

TEST(Nvtx, DisabledProbeDeclinesTheInjection) {
  // FPSCOPE_DISABLE=1: InitializeInjectionNvtx2 returns 0, NVTX keeps every call a no-op, the
  // program runs as without the probe and no trace is written.
  const std::string path = std::string(FPSCOPE_TEST_TMP) + "/nvtx-disabled.fpst";
  std::remove(path.c_str());
  const Output plain = proc::run("", std::string(FPSCOPE_NVTX_PROG) + " push 2");
  const Output off =
      proc::run("FPSCOPE_DISABLE=1 FPSCOPE_OUTPUT=" + path +
                    " LD_PRELOAD=" FPSCOPE_PROBE_LIB " NVTX_INJECTION64_PATH=" FPSCOPE_PROBE_LIB,
                std::string(FPSCOPE_NVTX_PROG) + " push 2");
  EXPECT_EQ(off.exit_code, 0) << off.err;
  EXPECT_EQ(off.out, plain.out);
  EXPECT_EQ(proc::without_probe_lines(off.err), plain.err);
  FILE* f = std::fopen(path.c_str(), "rb");
  EXPECT_EQ(f, nullptr) << "a disabled probe wrote a trace";
  if (f != nullptr) std::fclose(f);
}

}  // namespace
}  // namespace fpscope::cuda
