// End-to-end: `fpscope compare` on traces written here with TraceWriter (without value
// sketches: the per-tensor part is covered in memory by test_compare.cpp): labels, the warning
// for a trace without sketches, the JSON form, -o, and bad input (exit 2, the file named).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "fpscope/trace_io.h"

using namespace fpscope;
namespace fs = std::filesystem;

namespace {

using Result = cli_test::Run;
using cli_test::slurp;

fs::path dir() {
  const fs::path d = cli_test::tmpdir() / "compare";
  fs::create_directories(d);
  return d;
}

cli_test::Run run_fpscope(const std::string& args) {
  return cli_test::run_cli(args);
}

// One tensor over 3 steps and one loss per step (2, 1, 0.5 times `loss_factor`).
void write_run(const fs::path& path, const std::string& emulate, double loss_factor) {
  std::string err;
  auto w = trace::TraceWriter::open(path.string(),
                                    R"({"config": {"emulate": ")" + emulate + R"("}})", {}, &err);
  ASSERT_TRUE(w) << err;
  trace::TensorInfo d;
  d.id = "gemm#0.D";
  d.op = "sgemm";
  d.rows = 4;
  d.cols = 4;
  const uint32_t t = w->define_tensor(d);
  for (uint64_t s = 0; s < 3; ++s) {
    trace::StepMark m;
    m.step = s;
    m.source = trace::StepSource::Api;
    m.first_seq = s;
    w->step(m);
    trace::Observation o;
    o.tensor = t;
    o.step = s;
    o.seq = s;
    o.stats.count = 16;
    o.stats.amax = 1.0f;
    o.stats.max = 1.0f;
    o.stats.sum_sq = 16.0;
    o.stats.hist[4 * 127] = 16;
    w->observe(o);
    trace::LossRecord l;
    l.step = s;
    l.value = loss_factor * 2.0 / static_cast<double>(1u << s);
    w->loss(l);
  }
  ASSERT_TRUE(w->close()) << w->error();
}

class CliCompare : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    write_run(dir() / "ref.fpst", "off", 1.0);
    write_run(dir() / "low.fpst", "bf16", 1.1);
  }
  static void TearDownTestSuite() { fs::remove_all(dir()); }
  std::string ref = "'" + (dir() / "ref.fpst").string() + "'";
  std::string low = "'" + (dir() / "low.fpst").string() + "'";
};

}  // namespace

TEST_F(CliCompare, MarkdownWithDefaultLabelsAndSketchWarnings) {
  const Result r = run_fpscope("compare " + ref + " " + low);
  ASSERT_EQ(r.rc, 0) << r.err;
  // Labels: the file stem when not emulated, else the emulation spec.
  EXPECT_NE(r.out.find("Reference: ref."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| bf16 | "), std::string::npos) << r.out;
  // Loss 2, 1, 0.5 against 2.2, 1.1, 0.55: +10 % at every step.
  EXPECT_NE(r.out.find("| 2 | 0.5 | 0.55 | +10% |\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("No per-tensor difference: a trace has no value sketches."),
            std::string::npos);
  // One warning line per trace without sketches, naming it.
  EXPECT_NE(r.err.find("fpscope: warning: " + (dir() / "ref.fpst").string() +
                       ": recorded without --sketch: no per-tensor difference; record with "
                       "FPSCOPE_SKETCH=1 or --emulate\n"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find((dir() / "low.fpst").string() + ": recorded without --sketch"),
            std::string::npos);
}

TEST_F(CliCompare, JsonLabelsAndOutputFile) {
  const fs::path out = dir() / "cmp.json";
  const Result r = run_fpscope("compare --format json --label fp32,lowp -o '" + out.string() +
                               "' " + ref + " " + low);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "");
  const auto j = nlohmann::json::parse(slurp(out));
  EXPECT_EQ(j["runs"][0]["label"], "fp32");
  EXPECT_EQ(j["runs"][1]["label"], "lowp");
  EXPECT_EQ(j["runs"][1]["emulate"], "bf16");
  EXPECT_TRUE(j["runs"][0]["emulate"].is_null());
  EXPECT_EQ(j["runs"][0]["sketches"], false);
  ASSERT_EQ(j["loss"]["rows"].size(), 3u);
  EXPECT_NEAR(j["loss"]["rows"][1]["rel_diff"][0].get<double>(), 0.1, 1e-12);
  EXPECT_TRUE(j["comparisons"][0]["first_divergence"].is_null());
  // The same trace twice: labels made unique.
  const Result twice = run_fpscope("compare --format json " + ref + " " + ref);
  ASSERT_EQ(twice.rc, 0) << twice.err;
  const auto k = nlohmann::json::parse(twice.out);
  EXPECT_EQ(k["runs"][1]["label"], "ref (2)");
}

TEST_F(CliCompare, BadInputIsExit2NamingTheFile) {
  const std::string missing = (dir() / "missing.fpst").string();
  const Result r = run_fpscope("compare " + ref + " '" + missing + "'");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  const fs::path junk = dir() / "junk.fpst";
  std::ofstream(junk) << "not a trace";
  const Result j = run_fpscope("compare " + ref + " '" + junk.string() + "'");
  EXPECT_EQ(j.rc, 2);
  EXPECT_NE(j.err.find(junk.string()), std::string::npos) << j.err;
  EXPECT_EQ(run_fpscope("compare " + ref).rc, 2);  // one trace: nothing to compare with
  EXPECT_EQ(run_fpscope("compare --format html " + ref + " " + low).rc, 2);
  EXPECT_EQ(run_fpscope("compare --label a,b,c " + ref + " " + low).rc, 2);
}
