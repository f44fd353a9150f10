// End-to-end: the built `fpscope` executable on traces written here with TraceWriter. Checks
// summary --json against hand-computed values, diff exit codes, export outputs (parsed), reports
// (byte-identical reruns), bad-input messages with exit 2, truncated traces and hostile names
// (issue 17). Over 600 lines: one suite, so the traces are written once (SetUpTestSuite).
#include <sqlite3.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "fpscope/trace_io.h"

using namespace fpscope;
namespace fs = std::filesystem;

namespace {

using cli_test::Run;
using cli_test::run_cli;
using cli_test::slurp;
using cli_test::tmpdir;

// Appended rather than "'" + p.string(): GCC 12 at -O3 inlines operator+(const char*, string&&)
// into a string::insert that trips a bogus -Wrestrict (GCC bug 105329).
std::string q(const fs::path& p) {
  std::string quoted = "'";
  quoted += p.string();
  quoted += '\'';
  return quoted;
}

// Two tensors over 4 steps, 100 elements each:
//  gemm#0.A: 100 values of 1.0 (histogram bin 4*127), sum x^2 = 100, exact in every format.
//  gemm#0.D: 100 values per step, amax 1000 (or 70000 at steps 2, 3 when `overflow`), sum x^2 =
//            1e6, FP16 sum e^2 = 1e-2 (80 dB), BF16 sum e^2 = 1 (60 dB); FP16 overflow 5 at step
//            2 and 10 at step 3 when `overflow`.
//  loss scale 1024 per step; step 2 skipped (next 512) when `overflow`.
void write_trace(const fs::path& path, bool overflow) {
  std::string err;
  auto w = trace::TraceWriter::open(path.string(), R"({"test":"cli"})", {}, &err);
  ASSERT_TRUE(w) << err;
  trace::TensorInfo a;
  a.id = "gemm#0.A";
  a.op = "sgemm";
  a.role = trace::Role::A;
  a.rows = 10;
  a.cols = 10;
  trace::TensorInfo d = a;
  d.id = "gemm#0.D";
  d.role = trace::Role::D;
  d.name = "fc1.out";
  const uint32_t ia = w->define_tensor(a);
  const uint32_t id = w->define_tensor(d);
  for (uint64_t s = 0; s < 4; ++s) {
    trace::StepMark m;
    m.step = s;
    m.source = trace::StepSource::Api;
    m.first_seq = 2 * s;
    m.time_ns = s * 1000000;
    w->step(m);
    trace::Observation oa;
    oa.tensor = ia;
    oa.step = s;
    oa.seq = 2 * s;
    oa.time_ns = s * 1000000 + 10;
    oa.stats.count = 100;
    oa.stats.amax = 1.0f;
    oa.stats.min = 1.0f;
    oa.stats.max = 1.0f;
    oa.stats.sum = 100.0;
    oa.stats.sum_sq = 100.0;
    oa.stats.hist[4 * 127] = 100;
    w->observe(oa);
    const bool big = overflow && s >= 2;
    trace::Observation od;
    od.tensor = id;
    od.step = s;
    od.seq = 2 * s + 1;
    od.time_ns = s * 1000000 + 20;
    od.stats.count = 100;
    od.stats.amax = big ? 7e4f : 1000.0f;
    od.stats.min = -od.stats.amax;
    od.stats.max = od.stats.amax;
    od.stats.sum_sq = 1e6;
    od.stats.fmt[target_index(Format::FP16)].overflow = big ? (s == 2 ? 5 : 10) : 0;
    od.stats.fmt[target_index(Format::FP16)].sum_err2 = 1e-2;
    od.stats.fmt[target_index(Format::BF16)].sum_err2 = 1.0;
    od.stats.hist[4 * (127 + 9)] = 100;
    w->observe(od);
    trace::LossScaleRecord l;
    l.step = s;
    l.scale = overflow && s == 3 ? 512 : 1024;
    l.found_inf = overflow && s == 2;
    l.next_scale = l.found_inf ? 512 : l.scale;
    l.time_ns = s * 1000000 + 30;
    w->loss_scale(l);
  }
  ASSERT_TRUE(w->close()) << w->error();
}

// Issue 17: names are bytes from someone else's program. One tensor whose id holds an invalid
// UTF-8 byte (0xFF) and a terminal escape (ESC [31m), whose name holds a bell and whose op is a
// spreadsheet formula; an event text with ESC ]0; (set window title). Step 0: amax 1, step 1:
// amax NaN and sum +inf (NaN statistics from a broken probe).
constexpr const char* kHostileId = "gemm#0.D\xff\x1b[31m";
void write_hostile_trace(const fs::path& path) {
  std::string err;
  auto w = trace::TraceWriter::open(path.string(), R"({"test":"hostile"})", {}, &err);
  ASSERT_TRUE(w) << err;
  trace::TensorInfo d;
  d.id = kHostileId;
  d.name = "fc1\a";
  d.op = "=HYPERLINK(\"http://x\")";
  d.role = trace::Role::D;
  d.rows = 2;
  d.cols = 2;
  const uint32_t id = w->define_tensor(d);
  for (uint64_t s = 0; s < 2; ++s) {
    trace::StepMark m;
    m.step = s;
    m.source = trace::StepSource::Api;
    m.first_seq = s;
    m.time_ns = s * 1000000;
    w->step(m);
    trace::Observation o;
    o.tensor = id;
    o.step = s;
    o.seq = s;
    o.time_ns = s * 1000000 + 10;
    o.stats.count = 4;
    o.stats.amax = s == 0 ? 1.0f : NAN;
    o.stats.min = -1.0f;
    o.stats.max = 1.0f;
    o.stats.sum = s == 0 ? 0.0 : INFINITY;
    o.stats.sum_sq = 4.0;
    o.stats.hist[4 * 127] = 4;
    w->observe(o);
  }
  trace::EventRecord e;
  e.step = 1;
  e.time_ns = 1000000;
  e.text = "loss \x1b]0;pwned\a spike";
  w->event(e);
  ASSERT_TRUE(w->close()) << w->error();
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    write_trace(tmpdir() / "clean.fpst", false);
    write_trace(tmpdir() / "bad.fpst", true);
    write_hostile_trace(tmpdir() / "hostile.fpst");
  }
  static void TearDownTestSuite() { fs::remove_all(tmpdir()); }
  fs::path clean = tmpdir() / "clean.fpst";
  fs::path bad = tmpdir() / "bad.fpst";
  fs::path hostile = tmpdir() / "hostile.fpst";
};

}  // namespace

TEST_F(Cli, SummaryJsonMatchesHandComputedValues) {
  const auto r = run_cli("summary --json " + q(bad));
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["summary_version"], 1);
  EXPECT_EQ(j["trace"]["steps"], 4);
  EXPECT_EQ(j["trace"]["observations"], 8);
  EXPECT_EQ(j["trace"]["truncated"], false);
  EXPECT_EQ(j["trace"]["dropped_bytes"], 0);
  EXPECT_EQ(j["trace"]["step_source"], "api");
  ASSERT_EQ(j["tensors"].size(), 2u);
  const auto& d = j["tensors"][0];  // worst first: the overflowing output
  EXPECT_EQ(d["id"], "gemm#0.D");
  EXPECT_EQ(d["name"], "fc1.out");
  EXPECT_EQ(d["op"], "sgemm");
  EXPECT_EQ(d["role"], "D");
  EXPECT_EQ(d["dtype"], "fp32");
  EXPECT_EQ(d["shape"], nlohmann::json::array({10, 10}));
  EXPECT_EQ(d["observations"], 4);
  EXPECT_EQ(d["elements"], 400);
  EXPECT_DOUBLE_EQ(d["amax"].get<double>(), 70000.0);
  EXPECT_EQ(d["nan"], 0);
  EXPECT_EQ(d["formats"]["fp16"]["overflow"], 15);  // 5 + 10
  EXPECT_EQ(d["formats"]["fp16"]["first_overflow_step"], 2);
  EXPECT_DOUBLE_EQ(d["formats"]["fp16"]["overflow_frac"].get<double>(), 15.0 / 400.0);
  // SQNR: FP16 overflows (15 elements): undefined, null (not 10 log10(4e6 / 4e-2) = 80 dB);
  // BF16 10 log10(4e6 / 4) = 60 dB.
  EXPECT_TRUE(d["formats"]["fp16"]["sqnr_db"].is_null());
  EXPECT_NEAR(d["formats"]["bf16"]["sqnr_db"].get<double>(), 60.0, 1e-9);
  EXPECT_EQ(d["severity"], "error");
  EXPECT_TRUE(j["tensors"][1]["formats"]["fp16"]["sqnr_db"].is_null());  // exact
  ASSERT_EQ(j["loss_scale"].size(), 4u);
  EXPECT_EQ(j["loss_scale"][2]["found_inf"], true);
  EXPECT_EQ(j["loss_scale_summary"]["skipped"][0]["first_offender"], "gemm#0.D");
  EXPECT_EQ(j["loss_scale_summary"]["backoffs"], 1);
  EXPECT_EQ(j["findings"][0]["kind"], "overflow");

  const auto h = run_cli("summary " + q(bad));
  ASSERT_EQ(h.rc, 0) << h.err;
  EXPECT_NE(h.out.find("gemm#0.D"), std::string::npos);
  EXPECT_NE(h.out.find("skipped step 2 (scale 1024): first fp16 overflow in gemm#0.D"),
            std::string::npos);
}

TEST_F(Cli, DiffExitCodes) {
  EXPECT_EQ(run_cli("diff " + q(clean) + " " + q(clean)).rc, 0);
  const auto r = run_cli("diff " + q(clean) + " " + q(bad));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("[overflow] gemm#0.D: new fp16 overflow"), std::string::npos) << r.out;
  EXPECT_EQ(run_cli("diff " + q(bad) + " " + q(clean)).rc, 0);  // an improvement
  EXPECT_EQ(run_cli("diff " + q(clean) + " " + q(bad) + " --fail-on none").rc, 0);
  EXPECT_EQ(run_cli("diff " + q(clean) + " " + q(bad) + " --fail-on skipped").rc, 1);
  EXPECT_EQ(run_cli("diff " + q(clean) + " " + q(bad) + " --fail-on sqnr").rc, 0);
  const auto e = run_cli("diff " + q(clean) + " " + q(bad) + " --fail-on bogus");
  EXPECT_EQ(e.rc, 2);
  EXPECT_NE(e.err.find("unknown rule 'bogus'"), std::string::npos);
  const auto m = run_cli("diff " + q(clean) + " " + q(tmpdir() / "missing.fpst"));
  EXPECT_EQ(m.rc, 2);
  EXPECT_NE(m.err.find("missing.fpst"), std::string::npos);
  const auto md = run_cli("diff " + q(clean) + " " + q(bad) + " --json -o " + q(tmpdir() / "d.md"));
  EXPECT_EQ(md.rc, 1);
  EXPECT_EQ(nlohmann::json::parse(md.out)["regressions"].size(), 3u);  // amax, overflow, skipped
  EXPECT_NE(slurp(tmpdir() / "d.md").find("## fpscope diff"), std::string::npos);
}

TEST_F(Cli, ExportsParse) {
  ASSERT_EQ(run_cli("export " + q(bad) + " --format csv -o " + q(tmpdir() / "x.csv")).rc, 0);
  {
    std::ifstream f(tmpdir() / "x.csv");
    std::string line;
    int n = 0;
    std::getline(f, line);
    EXPECT_EQ(line.rfind("step,seq,time_ns,stream,tensor,id,name,op,role,dtype", 0), 0u);
    while (std::getline(f, line)) ++n;
    EXPECT_EQ(n, 8);
  }
  ASSERT_EQ(run_cli("export " + q(bad) + " --format jsonl -o " + q(tmpdir() / "x.jsonl")).rc, 0);
  {
    std::ifstream f(tmpdir() / "x.jsonl");
    std::string line;
    uint64_t ovf = 0;
    while (std::getline(f, line))
      ovf += nlohmann::json::parse(line)["formats"]["fp16"]["overflow"].get<uint64_t>();
    EXPECT_EQ(ovf, 15u);
  }
  ASSERT_EQ(run_cli("export " + q(bad) + " --format perfetto -o " + q(tmpdir() / "x.json")).rc, 0);
  {
    const auto j = nlohmann::json::parse(slurp(tmpdir() / "x.json"));
    int amax = 0, ls = 0;
    for (const auto& e : j["traceEvents"]) {
      const std::string name = e["name"];
      if (e["ph"] == "C" && name.rfind("amax ", 0) == 0) ++amax;
      if (e["ph"] == "C" && name == "loss_scale") ++ls;
    }
    EXPECT_EQ(amax, 8);
    EXPECT_EQ(ls, 4);
  }
  ASSERT_EQ(run_cli("export " + q(bad) + " --format sqlite -o " + q(tmpdir() / "x.sqlite")).rc, 0);
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((tmpdir() / "x.sqlite").string().c_str(), &db), SQLITE_OK);
    auto scalar = [&](const char* sql) {
      sqlite3_stmt* st = nullptr;
      EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK) << sql;
      int64_t v = -1;
      if (st && sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
      sqlite3_finalize(st);
      return v;
    };
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM observations"), 8);
    EXPECT_EQ(scalar("SELECT SUM(fp16_overflow) FROM observations"), 15);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM loss_scales WHERE found_inf = 1"), 1);
    EXPECT_EQ(scalar("SELECT COUNT(*) FROM observations o JOIN tensors t ON o.tensor = t.id "
                     "JOIN strings s ON t.tensor_id = s.id WHERE s.value = 'gemm#0.D'"),
              4);
    EXPECT_EQ(scalar("SELECT SUM(count) FROM histograms"), 800);
    EXPECT_EQ(scalar("SELECT exponent FROM histograms h JOIN observations o ON h.observation = "
                     "o.id WHERE o.tensor = 1 LIMIT 1"),
              9);
    sqlite3_close(db);
  }
  // Unknown tensor: exit 2, one line naming the file and the tensor.
  const auto u =
      run_cli("export " + q(bad) + " --format csv --tensor nope -o " + q(tmpdir() / "y.csv"));
  EXPECT_EQ(u.rc, 2);
  EXPECT_NE(u.err.find("bad.fpst: no tensor 'nope'"), std::string::npos) << u.err;
}

TEST_F(Cli, ReportsAreDeterministic) {
  const auto h1 = tmpdir() / "r1.html", h2 = tmpdir() / "r2.html";
  ASSERT_EQ(run_cli("report " + q(bad) + " -o " + q(h1)).rc, 0);
  ASSERT_EQ(run_cli("report " + q(bad) + " -o " + q(h2)).rc, 0);
  const std::string a = slurp(h1);
  EXPECT_EQ(a, slurp(h2));
  EXPECT_NE(a.find("<svg"), std::string::npos);
  EXPECT_NE(a.find("fp16 would overflow gemm#0.D (fc1.out) from step 2"), std::string::npos);
  fs::create_directories(tmpdir() / "m1");
  fs::create_directories(tmpdir() / "m2");
  ASSERT_EQ(run_cli("report " + q(bad) + " -o " + q(tmpdir() / "m1" / "issue.md")).rc, 0);
  ASSERT_EQ(run_cli("report " + q(bad) + " -o " + q(tmpdir() / "m2" / "issue.md")).rc, 0);
  EXPECT_EQ(slurp(tmpdir() / "m1" / "issue.md"), slurp(tmpdir() / "m2" / "issue.md"));
  EXPECT_TRUE(fs::exists(tmpdir() / "m1" / "issue_files" / "loss_scale.svg"));
  ASSERT_EQ(
      run_cli("report " + q(bad) + " --baseline " + q(clean) + " -o " + q(tmpdir() / "b.html")).rc,
      0);
  EXPECT_NE(slurp(tmpdir() / "b.html").find("Compared with baseline"), std::string::npos);
  const auto e = run_cli("report " + q(bad) + " -o " + q(tmpdir() / "r.pdf"));
  EXPECT_EQ(e.rc, 2);
  EXPECT_NE(e.err.find("r.pdf: unknown report type"), std::string::npos);
}

TEST_F(Cli, BadInputIsOneLineAndExit2) {
  const auto m = run_cli("summary " + q(tmpdir() / "nope.fpst"));
  EXPECT_EQ(m.rc, 2);
  EXPECT_NE(m.err.find("nope.fpst"), std::string::npos);
  EXPECT_EQ(std::count(m.err.begin(), m.err.end(), '\n'), 1);

  {
    std::ofstream f(tmpdir() / "text.fpst");
    f << "this is not a trace\n";
  }
  const auto n = run_cli("summary " + q(tmpdir() / "text.fpst"));
  EXPECT_EQ(n.rc, 2);
  EXPECT_NE(n.err.find("text.fpst: not an fpscope trace"), std::string::npos) << n.err;

  // Another major version: patch the header's major (bytes 8-9, little endian) to 2.
  std::string bytes = slurp(bad);
  bytes[8] = 2;
  bytes[9] = 0;
  {
    std::ofstream f(tmpdir() / "v2.fpst", std::ios::binary);
    f << bytes;
  }
  const auto v = run_cli("summary " + q(tmpdir() / "v2.fpst"));
  EXPECT_EQ(v.rc, 2);
  EXPECT_NE(v.err.find("v2.fpst"), std::string::npos);
  EXPECT_NE(v.err.find("version 2"), std::string::npos) << v.err;

  const auto t = run_cli("summary " + q(bad) + " --tensor gemm#9.D");
  EXPECT_EQ(t.rc, 2);
  EXPECT_NE(t.err.find("no tensor 'gemm#9.D'"), std::string::npos);
  EXPECT_EQ(run_cli("summary").rc, 2);                         // missing argument
  EXPECT_EQ(run_cli("summary " + q(bad) + " --bogus").rc, 2);  // unknown option
  EXPECT_EQ(run_cli("summary --help").rc, 0);
}

TEST_F(Cli, TruncatedTraceIsReadAndReported) {
  std::string bytes = slurp(bad);
  ASSERT_GT(bytes.size(), 100u);
  bytes.resize(bytes.size() - 7);  // tear the tail (footer)
  {
    std::ofstream f(tmpdir() / "torn.fpst", std::ios::binary);
    f << bytes;
  }
  const auto r = run_cli("summary --json " + q(tmpdir() / "torn.fpst"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("torn.fpst: trace is truncated"), std::string::npos) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["trace"]["truncated"], true);
  EXPECT_GT(j["trace"]["dropped_bytes"].get<uint64_t>(), 0u);
}

TEST_F(Cli, DiffFailsWhenNewIsTruncated) {
  // A crashed run: the clean trace with its tail (the footer) torn off.
  std::string bytes = slurp(clean);
  bytes.resize(bytes.size() - 7);
  const fs::path torn = tmpdir() / "torn_clean.fpst";
  {
    std::ofstream f(torn, std::ios::binary);
    f << bytes;
  }
  const auto r = run_cli("diff " + q(clean) + " " + q(torn));
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("[truncated] new trace is truncated"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TRUNCATED"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("no regressions"), std::string::npos) << r.out;
  const auto j = run_cli("diff " + q(clean) + " " + q(torn) + " --json");
  EXPECT_EQ(j.rc, 1);
  const auto jj = nlohmann::json::parse(j.out);
  EXPECT_EQ(jj["new"]["truncated"], true);
  EXPECT_GT(jj["new"]["dropped_bytes"].get<uint64_t>(), 0u);
  EXPECT_EQ(jj["base"]["steps"], 4);
  EXPECT_EQ(jj["regressions"][0]["rule"], "truncated");
  ASSERT_EQ(run_cli("diff " + q(clean) + " " + q(torn) + " -o " + q(tmpdir() / "t.md")).rc, 1);
  EXPECT_NE(slurp(tmpdir() / "t.md").find("**truncated**"), std::string::npos);
  // Leaving the rule out accepts it; a truncated BASE is not a regression of NEW.
  EXPECT_EQ(
      run_cli("diff " + q(clean) + " " + q(torn) + " --fail-on overflow,sqnr,skipped,amax").rc, 0);
  EXPECT_EQ(run_cli("diff " + q(torn) + " " + q(clean)).rc, 0);
  const auto h = run_cli("diff --help");
  EXPECT_NE(h.out.find("truncated"), std::string::npos);
}

TEST_F(Cli, UnknownCommandIsNamed) {
  const auto r = run_cli("bogus");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("fpscope: unknown command 'bogus'"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
}

TEST_F(Cli, SubcommandHelpDoesNotRepeatTopLevelExamples) {
  const auto top = run_cli("--help");
  EXPECT_EQ(top.rc, 0);
  const std::string marker = "Exit codes: 0 ok, 1 regression (diff), 2 error.";
  EXPECT_NE(top.out.find(marker), std::string::npos) << top.out;
  for (const char* sub : {"summary", "report", "diff", "export", "record"}) {
    const auto h = run_cli(std::string(sub) + " --help");
    if (std::string(sub) == "record" && h.rc != 0) continue;  // built without `record`
    EXPECT_EQ(h.rc, 0) << sub;
    EXPECT_EQ(h.out.find(marker), std::string::npos) << sub << " --help:\n" << h.out;
  }
}

TEST_F(Cli, DashOWritesToStdout) {
  const auto h = run_cli("report " + q(bad) + " -o -");
  EXPECT_EQ(h.rc, 0) << h.err;
  EXPECT_EQ(h.out.rfind("<!DOCTYPE html>", 0), 0u);
  const auto m = run_cli("report " + q(bad) + " -o - --format md");
  EXPECT_EQ(m.rc, 0) << m.err;
  EXPECT_EQ(m.out.rfind("## fpscope report", 0), 0u);
  EXPECT_EQ(m.out.find("]("), std::string::npos) << "no plot references without plot files";
  const auto d = run_cli("diff " + q(clean) + " " + q(bad) + " -o -");
  EXPECT_EQ(d.rc, 1);
  EXPECT_EQ(d.out.rfind("## fpscope diff", 0), 0u) << d.out;
  EXPECT_EQ(run_cli("diff " + q(clean) + " " + q(bad) + " -o - --json").rc, 2);
  const auto c = run_cli("export " + q(bad) + " --format csv -o -");
  EXPECT_EQ(c.rc, 0) << c.err;
  EXPECT_EQ(c.out.rfind("step,seq,time_ns", 0), 0u);
  EXPECT_EQ(std::count(c.out.begin(), c.out.end(), '\n'), 9);  // header + 8 observations
  EXPECT_EQ(run_cli("export " + q(bad) + " --format sqlite -o -").rc, 2);
}

TEST_F(Cli, CannotWriteSaysWhy) {
  const std::string where = (tmpdir() / "no" / "such" / "dir").string();
  for (const std::string& args : {"report " + q(bad) + " -o '" + where + "/r.html'",
                                  "diff " + q(clean) + " " + q(bad) + " -o '" + where + "/d.md'",
                                  "export " + q(bad) + " --format csv -o '" + where + "/x.csv'"}) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.rc, 2) << args;
    EXPECT_NE(r.err.find("cannot write: No such file or directory"), std::string::npos)
        << args << ": " << r.err;
  }
}

TEST_F(Cli, UnknownTensorHintIsASteadyStateId) {
  // A trace whose first tensors are warm-up calls (gemm#w<k>), as the probe writes them.
  const fs::path p = tmpdir() / "warmup.fpst";
  {
    std::string err;
    auto w = trace::TraceWriter::open(p.string(), "{}", {}, &err);
    ASSERT_TRUE(w) << err;
    for (const char* id : {"gemm#w0.A", "gemm#w0.D", "gemm#x0.D", "gemm#0.A"}) {
      trace::TensorInfo t;
      t.id = id;
      t.op = "sgemm";
      t.rows = t.cols = 2;
      w->define_tensor(t);
    }
    ASSERT_TRUE(w->close());
  }
  const auto r = run_cli("summary " + q(p) + " --tensor nope");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("no tensor 'nope' (ids look like 'gemm#0.A'"), std::string::npos) << r.err;
}

TEST_F(Cli, PipedSummaryFitsEightyColumns) {
  const auto r = run_cli("summary " + q(bad));  // stdout is a file: not a terminal
  ASSERT_EQ(r.rc, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) EXPECT_LE(line.size(), 80u) << line;
  EXPECT_NE(r.out.find("steps      4 steps (0..3), all sampled; source api"), std::string::npos)
      << r.out;
  const auto w = run_cli("summary " + q(bad) + " --wide");
  size_t longest = 0;
  std::istringstream win(w.out);
  while (std::getline(win, line)) longest = std::max(longest, line.size());
  EXPECT_GT(longest, 80u);
  EXPECT_EQ(run_cli("summary " + q(bad) + " --width 100").rc, 0);
}

// Issue 17: invalid UTF-8 in a name made summary --json and the JSON exports exit 2
// (nlohmann type_error.316); NaN statistics were written as bare nan (not JSON).
TEST_F(Cli, JsonOutputsSurviveInvalidUtf8AndNaN) {
  const std::string want_id = "gemm#0.D\xEF\xBF\xBD\x1b[31m";  // 0xFF -> U+FFFD, ESC kept (JSON)
  const auto r = run_cli("summary " + q(hostile) + " --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["tensors"].size(), 1u);
  EXPECT_EQ(j["tensors"][0]["id"], want_id);
  EXPECT_EQ(j["tensors"][0]["name"], "fc1\a");

  const auto dj = run_cli("diff " + q(hostile) + " " + q(hostile) + " --json");
  EXPECT_NE(dj.rc, 2) << dj.err;
  EXPECT_TRUE(nlohmann::json::accept(dj.out)) << dj.out;

  ASSERT_EQ(run_cli("export " + q(hostile) + " --format jsonl -o " + q(tmpdir() / "h.jsonl")).rc,
            0);
  std::ifstream f(tmpdir() / "h.jsonl");
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(f, line);) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["id"], want_id);
  EXPECT_EQ(rows[0]["amax"], 1.0);
  EXPECT_TRUE(rows[1]["amax"].is_null());
  EXPECT_TRUE(rows[1]["sum"].is_null());
  EXPECT_EQ(rows[1]["sum_sq"], 4.0);

  ASSERT_EQ(run_cli("export " + q(hostile) + " --format perfetto -o " + q(tmpdir() / "h.json")).rc,
            0);
  const auto p = nlohmann::json::parse(slurp(tmpdir() / "h.json"));
  std::vector<nlohmann::json> amax;
  for (const auto& e : p["traceEvents"])
    if (e["name"] == "amax " + want_id) amax.push_back(e["args"]["amax"]);
  ASSERT_EQ(amax.size(), 2u);
  EXPECT_EQ(amax[0], 1.0);
  EXPECT_TRUE(amax[1].is_null());
}

// An export that fails part-way leaves the previous file untouched and no temporary file: the
// write limit (ulimit -f, SIGXFSZ ignored so write() fails with EFBIG) stops the CSV after 1 KiB.
TEST_F(Cli, FailedExportLeavesNoPartialFile) {
  const fs::path dir = tmpdir() / "atomic";
  fs::create_directories(dir);
  const fs::path out = dir / "x.csv";
  { std::ofstream(out) << "previous\n"; }
  const std::string cmd = "trap '' XFSZ; ulimit -f 1; exec '" + std::string(FPSCOPE_EXE) +
                          "' export " + q(bad) + " --format csv -o " + q(out) + " >/dev/null 2>&1";
  // 8 rows of ~300 bytes: more than 1 KiB.
  const int st = std::system(("bash -c \"" + cmd + "\"").c_str());
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 2);
  EXPECT_EQ(slurp(out), "previous\n");
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

// Issue 17: tensor ids are bytes; an ESC sequence in one used to reach the terminal raw from
// `summary` and `diff` (colour changes, window titles, cursor moves). Now they are visible escapes.
TEST_F(Cli, TextOutputsEscapeControlCharacters) {
  const std::string shown = "gemm#0.D\xEF\xBF\xBD\\x1B[31m";  // 0xFF -> U+FFFD, ESC -> \x1B
  const auto s = run_cli("summary " + q(hostile));
  ASSERT_EQ(s.rc, 0) << s.err;
  EXPECT_EQ(s.out.find('\x1b'), std::string::npos);
  EXPECT_EQ(s.out.find('\a'), std::string::npos);
  EXPECT_NE(s.out.find(shown), std::string::npos) << s.out;
  const auto d = run_cli("diff " + q(clean) + " " + q(hostile));
  ASSERT_NE(d.rc, 2) << d.err;
  EXPECT_EQ(d.out.find('\x1b'), std::string::npos);
  EXPECT_NE(d.out.find("only in new:  " + shown), std::string::npos) << d.out;
  // diff -o: Markdown through md_text.
  ASSERT_NE(run_cli("diff " + q(clean) + " " + q(hostile) + " -o " + q(tmpdir() / "h.md")).rc, 2);
  const std::string md = slurp(tmpdir() / "h.md");
  EXPECT_EQ(md.find('\x1b'), std::string::npos);
  EXPECT_NE(md.find("only in new: gemm\\#0.D\xEF\xBF\xBD\\\\x1B\\[31m"), std::string::npos) << md;
}

// Issue 17: a name starting with = (+ - @) is a formula when the CSV is opened in a spreadsheet
// (CSV injection); control characters split or corrupt rows. Cells go through csv_cell.
TEST_F(Cli, CsvCellsCannotBeFormulas) {
  ASSERT_EQ(run_cli("export " + q(hostile) + " --format csv -o " + q(tmpdir() / "h.csv")).rc, 0);
  std::ifstream f(tmpdir() / "h.csv");
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);  // header + 2 observations: no row split by a control character
  // id, name, op after step,seq,time_ns,stream,tensor.
  EXPECT_EQ(lines[1].rfind("0,0,10,0,0,gemm#0.D\xEF\xBF\xBD\\x1B[31m,fc1\\x07,"
                           "\"'=HYPERLINK(\"\"http://x\"\")\",D,",
                           0),
            0u)
      << lines[1];
}
