// Findings, summary JSON, reports (determinism, self-containment), diff rules and the bug-ticket
// summary on a small hand-built trace. Size: ~655 lines, one hand-built trace shared by every
// output's tests; new report sections get their own test file beside it.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "fpscope/analysis/analysis.h"
#include "fpscope/analysis/causes.h"
#include "fpscope/analysis/text_escape.h"
#include "trace_builder.h"

using namespace fpscope;
using namespace fpscope::analysis;
using fpscope::test::Builder;
using fpscope::test::fi;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// gemm#0.D: steps 0..3, 100 elements; FP16 overflow 0,0,5,10 (amax 1000,1000,7e4,7e4) from
// step 2; histogram: 100 values in bin 4*(127+9) (2^9..) per step. gemm#0.A: exact, clean.
// Loss scale: 4 steps, step 2 skipped (its first offender is gemm#0.D, seq 21).
Builder make(bool overflow = true) {
  Builder b;
  b.t.path = "hand.fpst";
  b.t.version_major = 1;
  const uint32_t d = b.tensor("gemm#0.D", trace::Role::D, 10, 10);
  const uint32_t a = b.tensor("gemm#0.A", trace::Role::A, 10, 10);
  for (uint64_t s = 0; s < 4; ++s) {
    b.obs(a, s, 10 * s + 20, 100, 1.0f, 50.0);
    b.hist(4 * 127, 100);
    const bool big = overflow && s >= 2;
    auto& o = b.obs(d, s, 10 * s + 21, 100, big ? 7e4f : 1000.0f, 1e6);
    o.stats.fmt[fi(Format::FP16)].overflow = big ? (s == 2 ? 5 : 10) : 0;
    o.stats.fmt[fi(Format::FP16)].sum_err2 = 1e-2;  // 10 log10(1e6/1e-2) = 80 dB
    o.stats.fmt[fi(Format::BF16)].sum_err2 = 1.0;   // 60 dB
    b.hist(4 * (127 + 9), 100);
  }
  b.loss_scale(0, 1024, false, 1024);
  b.loss_scale(1, 1024, false, 1024);
  b.loss_scale(2, 1024, overflow, overflow ? 512 : 1024);
  b.loss_scale(3, overflow ? 512 : 1024, false, 0);
  return b;
}

}  // namespace

TEST(Findings, RankedWithEvidenceAndRecommendation) {
  const auto b = make();
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  EXPECT_EQ(a.steps, 4u);
  EXPECT_EQ(a.gemm_calls, 8u);
  ASSERT_FALSE(a.findings.empty());
  const auto& f = a.findings[0];
  // FP16 overflow: 15 of 400 elements -> Error, 3000 + round((log10(0.0375) + 7) / 7 * 999).
  EXPECT_EQ(f.kind, FindingKind::Overflow);
  EXPECT_EQ(f.severity, Severity::Error);
  EXPECT_EQ(f.tensor_id, "gemm#0.D");
  EXPECT_EQ(f.first_step, 2);
  EXPECT_EQ(f.score, 3000 + 795);
  EXPECT_EQ(f.title, "fp16 would overflow gemm#0.D from step 2 (amax 70000 > 65504)");
  EXPECT_NE(f.recommendation.find("BF16"), std::string::npos);
  EXPECT_NE(f.evidence.find("15 of 400"), std::string::npos);
  // The skipped step names its first offender.
  bool skipped = false;
  for (const auto& x : a.findings)
    if (x.kind == FindingKind::SkippedSteps) {
      skipped = true;
      EXPECT_NE(x.evidence.find("step 2 (scale 1024): first fp16 overflow in gemm#0.D (seq 41)"),
                std::string::npos)
          << x.evidence;
    }
  EXPECT_TRUE(skipped);
}

TEST(Summary, JsonFieldsMatchHandComputedValues) {
  const auto b = make();
  const trace::TraceModel m(b.t);
  const auto j = summary_json(b.t, analyze(m));
  EXPECT_EQ(j["summary_version"], 1);
  EXPECT_EQ(j["trace"]["path"], "hand.fpst");
  EXPECT_EQ(j["trace"]["steps"], 4);
  EXPECT_EQ(j["trace"]["observations"], 8);
  EXPECT_EQ(j["trace"]["truncated"], false);
  EXPECT_EQ(j["trace"]["step_source"], "none");
  ASSERT_EQ(j["tensors"].size(), 2u);
  const auto& d = j["tensors"][0];  // worst first
  EXPECT_EQ(d["id"], "gemm#0.D");
  EXPECT_EQ(d["role"], "D");
  EXPECT_EQ(d["dtype"], "fp32");
  EXPECT_EQ(d["shape"], nlohmann::json::array({10, 10}));
  EXPECT_EQ(d["observations"], 4);
  EXPECT_EQ(d["elements"], 400);
  EXPECT_DOUBLE_EQ(d["amax"].get<double>(), 70000.0);
  EXPECT_EQ(d["formats"]["fp16"]["overflow"], 15);
  EXPECT_EQ(d["formats"]["fp16"]["first_overflow_step"], 2);
  // fp16 overflows (15 elements): SQNR undefined -> null (10 log10(4e6 / 4e-2) = 80 dB would
  // ignore the overflowed elements); bf16: 10 log10(4e6 / 4) = 60 dB.
  EXPECT_TRUE(d["formats"]["fp16"]["sqnr_db"].is_null());
  EXPECT_NEAR(d["formats"]["bf16"]["sqnr_db"].get<double>(), 60.0, 1e-9);
  // gemm#0.A: exact casts -> SQNR null.
  EXPECT_TRUE(j["tensors"][1]["formats"]["fp16"]["sqnr_db"].is_null());
  ASSERT_EQ(j["loss_scale"].size(), 4u);
  EXPECT_EQ(j["loss_scale"][2]["found_inf"], true);
  EXPECT_DOUBLE_EQ(j["loss_scale"][2]["scale"].get<double>(), 1024.0);
  EXPECT_EQ(j["loss_scale_summary"]["skipped"][0]["first_offender"], "gemm#0.D");
  EXPECT_TRUE(j["weights"].is_array());
}

TEST(Report, DeterministicSelfContainedHtmlAndMarkdown) {
  const auto b = make();
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  const std::string h1 = render_html(m, a, {});
  const std::string h2 = render_html(m, analyze(m), {});
  EXPECT_EQ(h1, h2);
  EXPECT_NE(h1.find("<svg"), std::string::npos);
  EXPECT_NE(h1.find("<polyline"), std::string::npos);
  EXPECT_NE(h1.find("fp16 would overflow gemm#0.D from step 2"), std::string::npos);
  // Self-contained: nothing fetched from elsewhere.
  EXPECT_EQ(h1.find("src="), std::string::npos);
  EXPECT_EQ(h1.find("href="), std::string::npos);

  const auto dir =
      std::filesystem::temp_directory_path() /
      ("fpscope_report_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "x");
  std::filesystem::create_directories(dir / "y");
  std::string err;
  ASSERT_TRUE(write_report(m, a, (dir / "x" / "r.md").string(), {}, &err)) << err;
  ASSERT_TRUE(write_report(m, a, (dir / "y" / "r.md").string(), {}, &err)) << err;
  const std::string md = slurp(dir / "x" / "r.md");
  EXPECT_EQ(md, slurp(dir / "y" / "r.md"));
  EXPECT_NE(md.find("![loss scale](r_files/loss_scale.svg)"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir / "x" / "r_files" / "loss_scale.svg"));
  EXPECT_EQ(slurp(dir / "x" / "r_files" / "tensor0_exponents.svg"),
            slurp(dir / "y" / "r_files" / "tensor0_exponents.svg"));
  ASSERT_TRUE(write_report(m, a, (dir / "x" / "r.html").string(), {}, &err)) << err;
  EXPECT_EQ(slurp(dir / "x" / "r.html"), h1);
  EXPECT_FALSE(write_report(m, a, (dir / "x" / "r.pdf").string(), {}, &err));
  EXPECT_NE(err.find("r.pdf"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Report, HtmlAndMarkdownTensorTablesAgree) {
  // 4 tensors, a 2-row table: both renderings list the same two, worst first, and say how many
  // more there are and where to find them.
  Builder b;
  b.t.path = "four.fpst";
  for (int i = 0; i < 4; ++i) {
    const uint32_t t = b.tensor(fmt::format("gemm#{}.D", i));
    for (uint64_t s = 0; s < 2; ++s) {
      b.obs(t, s, s * 4 + static_cast<uint64_t>(i), 100, 1.0f, 50.0);
      b.hist(4 * 127, 100);
    }
  }
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  ASSERT_EQ(a.risks.size(), 4u);
  ReportOptions ro;
  ro.max_tensor_rows = 2;
  const std::string h = render_html(m, a, ro);
  const std::string md = render_markdown(m, a, ro, "x_files", nullptr);
  for (size_t i = 0; i < a.risks.size(); ++i) {
    const auto& r = a.risks[i];
    const bool shown = i < 2;
    const std::string sev = severity_name(r.severity);
    EXPECT_EQ(h.find(fmt::format("<tr><td>{}</td><td style=\"color:", r.id)) != std::string::npos,
              shown)
        << r.id;
    // Markdown: the id as escaped text (md_text): gemm\#0.D.
    EXPECT_EQ(
        md.find(fmt::format("| gemm\\#{}.D | {} |", r.id.substr(5, 1), sev)) != std::string::npos,
        shown)
        << r.id;
  }
  EXPECT_NE(h.find("<p>... 2 more tensors (fpscope summary --json: .tensors).</p>"),
            std::string::npos);
  EXPECT_NE(md.find("\n... 2 more tensors (fpscope summary --json: .tensors).\n"),
            std::string::npos);
  // All rows fit: no note in either.
  ro.max_tensor_rows = 4;
  EXPECT_EQ(render_html(m, a, ro).find("more tensors"), std::string::npos);
  EXPECT_EQ(render_markdown(m, a, ro, "x_files", nullptr).find("more tensors"), std::string::npos);
}

TEST(Report, BugTicketSummaryForSelection) {
  const auto b = make();
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  Selection sel;
  sel.tensors = {0};  // gemm#0.D
  const std::string s = markdown_summary(m, a, sel);
  // Ids are md_text-escapes ("#" -> "\\#"): rendered, they read gemm#0.D.
  EXPECT_NE(s.find("fp16 would overflow gemm\\#0.D"), std::string::npos);
  EXPECT_NE(s.find("| gemm\\#0.D |"), std::string::npos);
  EXPECT_EQ(s.find("| gemm\\#0.A |"), std::string::npos);
  sel.tensors = {1};  // the clean tensor
  EXPECT_NE(markdown_summary(m, a, sel).find("no findings for this selection"), std::string::npos);
}

TEST(Diff, RulesAndRegressions) {
  DiffRules r;
  std::string err;
  ASSERT_TRUE(parse_fail_on("sqnr=3, amax=4", &r, &err)) << err;
  EXPECT_TRUE(r.sqnr);
  EXPECT_DOUBLE_EQ(r.sqnr_drop_db, 3.0);
  EXPECT_TRUE(r.amax);
  EXPECT_DOUBLE_EQ(r.amax_growth, 4.0);
  EXPECT_FALSE(r.overflow);
  EXPECT_FALSE(r.skipped);
  EXPECT_FALSE(parse_fail_on("bogus", &r, &err));
  EXPECT_NE(err.find("bogus"), std::string::npos);
  EXPECT_FALSE(parse_fail_on("sqnr=abc", &r, &err));
  EXPECT_FALSE(parse_fail_on("amax=0.5", &r, &err));
  EXPECT_FALSE(parse_fail_on("overflow=2", &r, &err));

  const auto clean = make(false);
  const auto bad = make(true);
  const trace::TraceModel mc(clean.t), mb(bad.t);
  const auto ac = analyze(mc), ab = analyze(mb);
  // Same run against itself: clean.
  EXPECT_TRUE(diff_runs(mc, ac, mc, ac, DiffRules{}).regressions.empty());
  // clean -> bad: new FP16 overflow in gemm#0.D, amax 1000 -> 70000 (x70 > 10), skipped 0 -> 1.
  const auto d = diff_runs(mc, ac, mb, ab, DiffRules{});
  ASSERT_EQ(d.regressions.size(), 3u);
  EXPECT_EQ(d.regressions[0].rule, "amax");
  EXPECT_EQ(d.regressions[1].rule, "overflow");
  EXPECT_EQ(d.regressions[1].tensor_id, "gemm#0.D");
  EXPECT_EQ(d.regressions[2].rule, "skipped");
  EXPECT_EQ(d.base_skipped, 0u);
  EXPECT_EQ(d.new_skipped, 1u);
  // bad -> clean: an improvement, no regression.
  EXPECT_TRUE(diff_runs(mb, ab, mc, ac, DiffRules{}).regressions.empty());
  // Only the skipped rule.
  DiffRules only;
  ASSERT_TRUE(parse_fail_on("skipped", &only, &err));
  EXPECT_EQ(diff_runs(mc, ac, mb, ab, only).regressions.size(), 1u);
}

TEST(Export, CsvJsonlPerfettoParse) {
  const auto b = make();
  std::stringstream csv, jl, pf;
  export_csv(b.t, csv);
  export_jsonl(b.t, jl);
  export_perfetto(b.t, pf);
  std::string line;
  int lines = 0;
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("step,seq,time_ns,stream,tensor,id,", 0), 0u);
  while (std::getline(csv, line)) ++lines;
  EXPECT_EQ(lines, 8);  // one row per observation
  int rows = 0;
  while (std::getline(jl, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(j.contains("formats"));
    ++rows;
  }
  EXPECT_EQ(rows, 8);
  const auto p = nlohmann::json::parse(pf.str());
  int counters = 0;
  for (const auto& e : p["traceEvents"])
    if (e["ph"] == "C") ++counters;
  EXPECT_EQ(counters, 8 * 2 + 4);  // amax + overflow per observation, 4 loss-scale records
}

// What went wrong while recording (the probe's warning events) is in every summary and report,
// never only in the trace: an incomplete trace must not pass for a complete one.
TEST(Summary, WarningEventsAreShownInTextJsonAndReport) {
  auto b = make();
  auto ev = [&](trace::EventLevel l, std::string text, uint64_t step) {
    trace::EventRecord e;
    e.level = l;
    e.text = std::move(text);
    e.step = step;
    b.t.events.push_back(e);
  };
  ev(trace::EventLevel::Info, "loss 2.5", 0);
  ev(trace::EventLevel::Warning,
     "cuda: 12 GEMM operand observations skipped: all result slots in flight", 1);
  ev(trace::EventLevel::Error, "cuda: CUPTI unavailable: \x1b[2J", 2);
  ev(trace::EventLevel::Warning, "third", 3);
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  EXPECT_EQ(warnings_text(b.t),
            "3 warnings: cuda: 12 GEMM operand observations skipped: all result slots in flight; "
            "cuda: CUPTI unavailable: \x1b[2J (and more: summary --json .warnings)");
  const std::string txt = summary_text(b.t, a);
  EXPECT_NE(txt.find("\nwarnings   3 warnings: cuda: 12 GEMM"), std::string::npos) << txt;
  const auto j = summary_json(b.t, a);
  ASSERT_EQ(j["warnings"].size(), 3u);
  EXPECT_EQ(j["warnings"][1]["level"], "error");
  EXPECT_EQ(j["warnings"][1]["step"], 2);
  EXPECT_EQ(j["warnings"][2]["text"], "third");
  EXPECT_EQ(j["warnings_total"], 3);
  // Bounded: a trace with many warnings lists the first 1000 and counts them all.
  for (uint64_t i = 0; i < 5000; ++i) ev(trace::EventLevel::Warning, "same", i);
  const auto big = summary_json(b.t, a);
  EXPECT_EQ(big["warnings"].size(), 1000u);
  EXPECT_EQ(big["warnings_total"], 5003);
  b.t.events.resize(4);
  EXPECT_NE(render_html(m, a, ReportOptions{})
                .find("<tr><th>warnings</th><td style=\"text-align:left\">3 warnings: "),
            std::string::npos);
  b.t.events.clear();
  EXPECT_EQ(warnings_text(b.t), "");
  EXPECT_EQ(summary_text(b.t, analyze(trace::TraceModel(b.t))).find("warnings   "),
            std::string::npos);
}

// Issue 17: steps 0, 1 and 2^64-1 (a trace from a program that counts down from -1). The step span
// 2^64-1 used to wrap `s1 - s0 + 1` to 0 heatmap columns (SIGSEGV); the axis labels went through
// a double that does not convert back to 2^64-1.
TEST(Report, PlotsSpanTheWholeStepRange) {
  Builder b;
  const uint32_t t = b.tensor("gemm#0.D");
  const uint64_t steps[] = {0, 1, UINT64_MAX};
  for (uint64_t s : steps) {
    b.obs(t, s, s == UINT64_MAX ? 2 : s, 16, 1.0f, 16.0);
    b.hist(4 * 127, 16);  // 2^0: exponent 0
    b.loss_scale(s, 1024, false, 1024);
  }
  const trace::TraceModel m(b.t);
  const std::string heat = svg_exponent_heatmap(m, t);
  // 220 columns of 2 px from x = 60: steps 0 and 1 in column 0, 2^64-1 in column 219.
  std::vector<std::string> cells;
  for (size_t p = heat.find("<rect x=\""); p != std::string::npos;
       p = heat.find("<rect x=\"", p + 1)) {
    const std::string r = heat.substr(p, heat.find("/>", p) - p);
    if (r.find("fill=\"rgb(") != std::string::npos)
      cells.push_back(r.substr(9, r.find('"', 9) - 9));
  }
  EXPECT_EQ(cells, (std::vector<std::string>{"60.0", "498.0"}));
  EXPECT_NE(heat.find(">step 0<"), std::string::npos);
  EXPECT_NE(heat.find(">18446744073709551615<"), std::string::npos);
  const std::string amax = svg_amax_sqnr(m, t);
  EXPECT_NE(amax.find(">18446744073709551615<"), std::string::npos);
  const auto a = analyze(m);
  EXPECT_NE(svg_loss_scale(a).find(">18446744073709551615<"), std::string::npos);
  EXPECT_NE(render_html(m, a, ReportOptions{}).find("18446744073709551615"), std::string::npos);
}

// Issue 17: a tensor id with an invalid byte, an ESC sequence, markup and a table-cell separator.
// HTML (and its inline SVG) show them as visible text and stay well-formed (no raw control
// character, which XML forbids); Markdown cannot be split into cells or turned into markup.
TEST(Report, HostileNamesAreEscaped) {
  Builder b;
  b.t.path = "hostile.fpst";
  const std::string id = "x\xff\x1b[2J<img src=y onerror=alert(1)>|*a*";
  const uint32_t t = b.tensor(id);
  for (uint64_t s = 0; s < 2; ++s) {
    b.obs(t, s, s, 100, 7e4f, 1e6);
    b.hist(4 * 127, 100);
  }
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  const std::string h = render_html(m, a, ReportOptions{});
  EXPECT_EQ(h.find('\x1b'), std::string::npos);
  EXPECT_EQ(h.find("<img"), std::string::npos);
  EXPECT_NE(h.find("x\xEF\xBF\xBD\\x1B[2J&lt;img src=y onerror=alert(1)&gt;|*a*"),
            std::string::npos);
  std::vector<std::pair<std::string, std::string>> plots;
  const std::string md = render_markdown(m, a, ReportOptions{}, "x_files", &plots);
  EXPECT_EQ(md.find('\x1b'), std::string::npos);
  for (size_t p = md.find("<img"); p != std::string::npos; p = md.find("<img", p + 1))
    EXPECT_EQ(md[p - 1], '\\') << "raw HTML at " << p;
  EXPECT_NE(md.find("| x\xEF\xBF\xBD\\\\x1B\\[2J\\<img src=y onerror=alert(1)\\>\\|\\*a\\* |"),
            std::string::npos)
      << md;
  ASSERT_FALSE(plots.empty());
  for (const auto& [name, svg] : plots) EXPECT_EQ(svg.find('\x1b'), std::string::npos) << name;
}

namespace {

// gemm#0.D: steps 0..3 as in make() (FP16 overflow from step 2, amax 7e4), NaN at step 1.
// Loss scale over 8 steps: step 0 grows 1024 -> 2048 when `grows` (else stays), step 1 is
// skipped and backs off to half, then constant. With the growth the scaler probes (1 growth,
// 1 backoff, 1 of 8 steps skipped < 25%); the smallest scale is 1024, 7e4 / 1024 = 68 fits FP16.
Builder scaler_run(bool grows) {
  Builder b;
  b.t.path = "scaler.fpst";
  const uint32_t d = b.tensor("gemm#0.D", trace::Role::D, 10, 10);
  for (uint64_t s = 0; s < 4; ++s) {
    const bool big = s >= 2;
    auto& o = b.obs(d, s, s, 100, big ? 7e4f : 1000.0f, 1e6);
    o.stats.fmt[fi(Format::FP16)].overflow = big ? 5 : 0;
    o.stats.fmt[fi(Format::FP16)].sum_err2 = 1e-2;
    o.stats.fmt[fi(Format::BF16)].sum_err2 = 1.0;
    if (s == 1) {
      o.stats.count += 4;
      o.stats.nan = 4;
    }
    b.hist(4 * (127 + 9), 100);
  }
  const double s1 = grows ? 2048 : 1024;
  b.loss_scale(0, 1024, false, s1);
  b.loss_scale(1, s1, true, s1 / 2);
  for (uint64_t s = 2; s < 8; ++s) b.loss_scale(s, s1 / 2, false, s1 / 2);
  return b;
}

const Cause* cause_of_kind(const RunCauses& rc, CauseKind k) {
  for (const auto& c : rc.causes)
    if (c.kind == k) return &c;
  return nullptr;
}

}  // namespace

TEST(Causes, TensorListNamesTheFirstFewThenHowManyMore) {
  EXPECT_EQ(tensor_list({"a"}), "a");
  EXPECT_EQ(tensor_list({"a", "b"}), "a and b");
  EXPECT_EQ(tensor_list({"a", "b", "c"}), "a, b and c");
  EXPECT_EQ(tensor_list({"a", "b", "c", "d", "e"}), "a, b, c and 2 more");
}

TEST(Causes, OneCausePerKindAndFormatWithEveryFindingOnce) {
  // Three tensors overflow FP16 (amax 7e4, 8e4, 9e4), no loss scaler: one range_overflow cause
  // for the three findings, which decides "at risk in fp16".
  Builder b;
  for (int i = 0; i < 3; ++i) {
    const uint32_t t = b.tensor(fmt::format("gemm#{}.D", i));
    auto& o = b.obs(t, 0, static_cast<uint64_t>(i), 100, 7e4f + 1e4f * static_cast<float>(i), 1e6);
    o.stats.fmt[fi(Format::FP16)].overflow = 3;
    o.stats.fmt[fi(Format::FP16)].sum_err2 = 1e-2;
    o.stats.fmt[fi(Format::BF16)].sum_err2 = 1.0;
  }
  const trace::TraceModel m(b.t);
  AnalysisOptions ao;
  ao.run_whatif = false;
  const auto a = analyze(m, ao);
  const RunCauses rc = build_causes(a, a.findings);
  std::vector<int> seen(a.findings.size(), 0);
  for (const auto& c : rc.causes)
    for (size_t i : c.findings) ++seen.at(i);
  for (int n : seen) EXPECT_EQ(n, 1);
  const Cause* c = cause_of_kind(rc, CauseKind::RangeOverflow);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->findings.size(), 3u);
  EXPECT_EQ(c->tensors.size(), 3u);
  EXPECT_EQ(c->format, Format::FP16);
  EXPECT_TRUE(c->decides_verdict);
  EXPECT_EQ(c->severity, Severity::Error);
  EXPECT_NE(c->title.find("FP16 would overflow 3 tensors (gemm#"), std::string::npos) << c->title;
  EXPECT_NE(c->title.find("at step 0; amax up to 90000 (FP16 max 65504)"), std::string::npos)
      << c->title;
  EXPECT_EQ(rc.verdict.state, VerdictState::AtRisk);
  EXPECT_EQ(rc.verdict.headline, "at risk in fp16");
  EXPECT_EQ(rc.causes.front().kind, CauseKind::RangeOverflow);
  EXPECT_LE(rc.verdict.why.size(), 3u);
  EXPECT_EQ(rc.verdict.next_action, "For " + tensor_list(c->tensors) + ": " + c->recommendation);
}

// The same FP16 overflow in a run that stores its tensors in BF16 (a BF16 autocast run): FP16 is a
// cast this run does not make, so the cause is a what-if and the run is healthy. Seen on a GPT-2-
// small BF16 run on an H200, whose first verdict was "at risk in fp16".
TEST(Causes, ABf16RunsFp16CastsAreWhatIfsThatDoNotMoveTheVerdict) {
  Builder b;
  for (int i = 0; i < 3; ++i) {
    const uint32_t t = b.tensor(fmt::format("gemm#{}.D", i), trace::Role::D, 10, 10, Format::BF16);
    auto& o = b.obs(t, 0, static_cast<uint64_t>(i), 100, 7e4f + 1e4f * static_cast<float>(i), 1e6);
    o.stats.fmt[fi(Format::FP16)].overflow = 3;
    o.stats.fmt[fi(Format::FP16)].sum_err2 = 1e-2;
  }
  const trace::TraceModel m(b.t);
  AnalysisOptions ao;
  ao.run_whatif = false;
  const auto a = analyze(m, ao);
  const RunCauses rc = build_causes(a, a.findings);
  const Cause* c = cause_of_kind(rc, CauseKind::RangeOverflow);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->format, Format::FP16);
  EXPECT_EQ(c->severity, Severity::Error);  // the finding keeps its level
  EXPECT_TRUE(c->what_if);
  EXPECT_FALSE(c->decides_verdict);
  EXPECT_EQ(rc.verdict.state, VerdictState::Healthy);
  const std::string why = fmt::format("{}", fmt::join(rc.verdict.why, " "));
  EXPECT_NE(why.find("FP16 casts this run does not make"), std::string::npos) << why;
  const auto j = summary_json(b.t, a);
  EXPECT_EQ(j["causes"][0]["what_if"], true);
}

// No GEMM observed: nothing wrong is not "healthy". The PyTorch integration's "not measured: "
// warning (CPU autocast) is the reason the verdict gives; with GEMMs measured it is a note.
TEST(Causes, NoGemmObservedIsNothingMeasuredNotHealthy) {
  Builder b;
  for (uint64_t s = 0; s < 3; ++s) b.t.steps.push_back({s, trace::StepSource::Framework, 0, 0});
  {
    const trace::TraceModel m(b.t);
    const auto a = analyze(m);
    ASSERT_EQ(a.gemm_calls, 0u);
    const RunCauses rc = build_causes(a, a.findings);
    EXPECT_EQ(rc.verdict.state, VerdictState::Unmeasured);
    EXPECT_STREQ(verdict_state_name(rc.verdict.state), "unmeasured");
    EXPECT_EQ(rc.verdict.headline, "nothing measured");
    ASSERT_EQ(rc.verdict.why.size(), 2u);
    EXPECT_EQ(rc.verdict.why[0],
              "No matrix multiply reached the probe, so no GEMM operand was measured: nothing "
              "here says the run is healthy.");
    EXPECT_NE(rc.verdict.why[1].find("oneDNN"), std::string::npos) << rc.verdict.why[1];
    EXPECT_NE(rc.verdict.next_action.find("sgemm"), std::string::npos);
    EXPECT_EQ(summary_json(b.t, a)["verdict"]["state"], "unmeasured");
  }
  const std::string why = "CPU autocast to bfloat16 was on: its matmuls run in oneDNN";
  b.t.events.push_back({0, 0, trace::EventLevel::Info, "not measured: an info event, not it"});
  b.t.events.push_back({0, 0, trace::EventLevel::Warning, "not measured: " + why});
  {
    const trace::TraceModel m(b.t);
    const auto a = analyze(m);
    EXPECT_EQ(a.not_measured, why);
    const RunCauses rc = build_causes(a, a.findings);
    EXPECT_EQ(rc.verdict.state, VerdictState::Unmeasured);
    ASSERT_EQ(rc.verdict.why.size(), 2u);
    EXPECT_EQ(rc.verdict.why[1], why + ".");
  }
  b.tensor("gemm#0.D");  // one GEMM measured, clean: healthy, the warning kept as a note
  b.obs(0, 0, 0, 16, 1.0f, 100.0);
  {
    const trace::TraceModel m(b.t);
    const auto a = analyze(m);
    EXPECT_EQ(a.gemm_calls, 1u);
    const RunCauses rc = build_causes(a, a.findings);
    EXPECT_EQ(rc.verdict.state, VerdictState::Healthy);
    ASSERT_FALSE(rc.verdict.why.empty());
    EXPECT_EQ(rc.verdict.why.back(), why + ".");
  }
}

TEST(Causes, AProbingLossScalerMakesItsOverflowAndSkipsInfoAndTheRunHealthy) {
  AnalysisOptions ao;
  ao.run_whatif = false;
  ao.run_drift = false;
  {
    const auto b = scaler_run(true);
    const trace::TraceModel m(b.t);
    const auto a = analyze(m, ao);
    ASSERT_EQ(a.loss_scale.growths, 1u);
    ASSERT_EQ(a.loss_scale.backoffs, 1u);
    for (const auto& f : a.findings) EXPECT_EQ(f.severity, Severity::Info) << f.title;
    const RunCauses rc = build_causes(a, a.findings);
    EXPECT_EQ(rc.verdict.state, VerdictState::Healthy);
    EXPECT_EQ(rc.verdict.headline, "healthy");
    ASSERT_TRUE(cause_of_kind(rc, CauseKind::LossScaledOverflow));
    EXPECT_NE(cause_of_kind(rc, CauseKind::LossScaledOverflow)->title.find("loss-scaled"),
              std::string::npos);
    ASSERT_TRUE(cause_of_kind(rc, CauseKind::NonfiniteInSkipped));
    ASSERT_TRUE(cause_of_kind(rc, CauseKind::LossScaler));
    EXPECT_FALSE(cause_of_kind(rc, CauseKind::RangeOverflow));
    // The scaler's story comes first in a healthy run.
    EXPECT_EQ(rc.causes.front().kind, CauseKind::LossScaler);
    EXPECT_NE(rc.verdict.why[1].find("skipped 1 of 8 steps and grew back"), std::string::npos);
  }
  {
    // No growth: the scale only falls, the scaler does not probe: the overflow is an error, the
    // NaN a warning, and the run at risk in fp16.
    const auto b = scaler_run(false);
    const trace::TraceModel m(b.t);
    const auto a = analyze(m, ao);
    const RunCauses rc = build_causes(a, a.findings);
    const Cause* ovf = cause_of_kind(rc, CauseKind::RangeOverflow);
    ASSERT_TRUE(ovf);
    EXPECT_EQ(ovf->severity, Severity::Error);
    const Cause* nan = cause_of_kind(rc, CauseKind::NonfiniteInSkipped);
    ASSERT_TRUE(nan);
    EXPECT_EQ(nan->severity, Severity::Warning);
    EXPECT_EQ(rc.verdict.state, VerdictState::AtRisk);
    EXPECT_EQ(rc.verdict.headline, "at risk in fp16");
  }
}

TEST(Causes, ACollapsedLossScaleIsBrokenAndItsCauseComesFirst) {
  Builder b;
  const uint32_t d = b.tensor("gemm#0.D");
  double s = 65536;
  for (uint64_t st = 0; st < 4; ++st) {
    auto& o = b.obs(d, st, st, 100, 1.0f, 50.0);
    o.stats.count += 4;
    o.stats.nan = 4;
    b.loss_scale(st, s, true, s / 2);
    s /= 2;
  }
  const trace::TraceModel m(b.t);
  AnalysisOptions ao;
  ao.run_whatif = false;
  const auto a = analyze(m, ao);
  ASSERT_TRUE(a.loss_scale.collapsed);
  const RunCauses rc = build_causes(a, a.findings);
  EXPECT_EQ(rc.verdict.state, VerdictState::Broken);
  EXPECT_EQ(rc.verdict.headline, "broken");
  ASSERT_FALSE(rc.causes.empty());
  EXPECT_EQ(rc.causes.front().kind, CauseKind::LossScaler);
  EXPECT_TRUE(rc.causes.front().decides_verdict);
  EXPECT_EQ(rc.verdict.why.front().rfind("Loss scale collapsed", 0), 0u) << rc.verdict.why.front();
}

TEST(Report, VerdictAndCausesFirstEverythingElseBelowTheFold) {
  const auto b = make();
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  const std::string h = render_html(m, a, ReportOptions{});
  const size_t v = h.find("id=\"verdict\""), c = h.find("id=\"causes\""),
               run = h.find("<h2>Run</h2>"), all = h.find("<details id=\"findings\">");
  ASSERT_NE(v, std::string::npos);
  EXPECT_LT(v, c);
  EXPECT_LT(c, run);
  EXPECT_LT(run, all);
  EXPECT_NE(h.find("<summary>Per-tensor table"), std::string::npos);
  const std::string md = render_markdown(m, a, ReportOptions{}, "x_files", nullptr);
  const size_t mv = md.find("**Verdict: "), mc = md.find("### Causes ("), mrun = md.find("### Run"),
               app = md.find("## Appendix"), mall = md.find("### All findings");
  ASSERT_NE(mv, std::string::npos);
  EXPECT_LT(mv, mc);
  EXPECT_LT(mc, mrun);
  EXPECT_LT(mrun, app);
  EXPECT_LT(app, mall);
  EXPECT_NE(md.find("| # | severity | cause | first step |"), std::string::npos);
  // No raw HTML in the Markdown: every '<' is an escaped one.
  for (size_t p = md.find('<'); p != std::string::npos; p = md.find('<', p + 1))
    EXPECT_TRUE(p > 0 && md[p - 1] == '\\') << md.substr(p, 40);
}

TEST(Report, HostileNamesAreEscapedInHtmlAndMarkdown) {
  Builder b;
  b.t.path = "evil<b>|.fpst";
  const std::string evil = "<script>x</script>|*a*";
  const uint32_t t = b.tensor(evil);
  auto& o = b.obs(t, 0, 0, 100, 7e4f, 1e6);
  o.stats.fmt[fi(Format::FP16)].overflow = 3;
  const trace::TraceModel m(b.t);
  AnalysisOptions ao;
  ao.run_whatif = false;
  const auto a = analyze(m, ao);
  const std::string h = render_html(m, a, ReportOptions{});
  EXPECT_EQ(h.find("<script>"), std::string::npos);
  EXPECT_EQ(h.find("evil<b>"), std::string::npos);
  EXPECT_NE(h.find(html_text(evil)), std::string::npos);
  const std::string md = render_markdown(m, a, ReportOptions{}, "x_files", nullptr);
  EXPECT_EQ(md.find("<script>"), std::string::npos);
  EXPECT_EQ(md.find("evil<b>"), std::string::npos);
  EXPECT_NE(md.find(md_text(evil)), std::string::npos);
}
