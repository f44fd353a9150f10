// Findings from the FP8 what-if (grouped, fraction-dependent severity, format-aware advice),
// within-run drift findings and JSON, the master-weight ratio distribution, the 80-column human
// summary with run facts, the diff's truncation rule and run facts, report sections and caps,
// NaN/Inf findings (loss-scaler skips, additive masks). Over 600 lines: one test per finding
// behaviour, each with its hand-built trace next to it; splitting would scatter the helpers.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "fpscope/analysis/analysis.h"
#include "trace_builder.h"

using namespace fpscope;
using namespace fpscope::analysis;
using fpscope::test::Builder;
using fpscope::test::fi;

namespace {

std::vector<const Finding*> of_kind(const RunAnalysis& a, const std::string& prefix) {
  std::vector<const Finding*> v;
  for (const auto& f : a.findings)
    if (std::string(kind_name(f.kind)).rfind(prefix, 0) == 0) v.push_back(&f);
  return v;
}

// Same data as test_whatif.cpp's make(): E4M3 delayed scaling (history 2) replays steps 1..5
// (step 0 seeds the history): overflow 90 of 500 elements, all at step 3 (90 of its 100);
// underflow 3 + 4*10 = 43 (8.6%).
Builder saturating() {
  Builder b;
  const uint32_t t = b.tensor("gemm#0.D");
  const float amax[6] = {0.5f, 0.5f, 0.5f, 8.0f, 0.5f, 0.5f};
  for (uint64_t s = 0; s < 6; ++s) {
    auto& o = b.obs(t, s, s, 100, amax[s], 1.0);
    auto& c = o.stats.fmt[fi(Format::E4M3)];
    if (s == 1) {
      c.scale = 896.0f;
      c.underflow = 3;
    }
    b.hist(s == 3 ? 520 : 502, 90);
    b.hist(388, 10);
  }
  return b;
}

// 3 steps of 100 elements: 50 of value 1 (bin 4*127) and 50 tiny ones in bin 4*(127-40)
// ([2^-40, 1.25*2^-40)). Delayed scaling: E4M3 s = 448 (2^-40*448 < 2^-31), E5M2 s = 57344
// (2^-40*57344 < 2^-24): far below both formats' half smallest subnormal (2^-10, 2^-17): the 50
// tiny values flush in both, both bounds, at steps 1 and 2 (step 0 seeds). 100 of 200: 50%.
// Bin 4*127 is [1, 1.25): scaled by 448 its edge would reach 560 > 448, but the amax is 1 and
// 1*448 = 448 does not overflow: no overflow (both bounds 0).
Builder underflowing() {
  Builder b;
  const uint32_t t = b.tensor("gemm#0.D");
  for (uint64_t s = 0; s < 3; ++s) {
    b.obs(t, s, s, 100, 1.0f, 50.0);
    b.hist(4 * 127, 50);
    b.hist(4 * (127 - 40), 50);
  }
  return b;
}

}  // namespace

TEST(WhatIfFindings, OnePerTensorAndFormatSeverityByFraction) {
  const auto b = saturating();
  const trace::TraceModel m(b.t);
  AnalysisOptions opt;
  opt.whatif.history_len = 2;
  opt.whatif.formats = {Format::E4M3};
  const auto a = analyze(m, opt);
  const auto fs = of_kind(a, "fp8_");
  // Saturation (90/500 = 18%) and underflow (8.6%) of the same tensor and format: ONE finding,
  // the worse one: saturation >= 1e-3 is a Warning, 2000 + round((log10(0.18) + 7) / 7 * 999).
  ASSERT_EQ(fs.size(), 1u);
  const Finding& f = *fs[0];
  EXPECT_EQ(f.kind, FindingKind::Fp8Saturation);
  EXPECT_EQ(f.severity, Severity::Warning);
  EXPECT_EQ(f.score, 2000 + 893);
  EXPECT_EQ(f.first_step, 3);
  EXPECT_EQ(f.title,
            "e4m3 with delayed scaling would saturate 18% of gemm#0.D in 1 of 5 replayed steps "
            "from step 3");
  // The evidence: the seed step, where the counts come from, the bounds (equal: one number),
  // the worst step, and the underflow that did not make the title.
  EXPECT_NE(f.evidence.find("5 steps replayed (the first observed step 0 only seeds the amax "
                            "history)"),
            std::string::npos)
      << f.evidence;
  EXPECT_NE(f.evidence.find("counts exact at 1 step, from the exponent histogram at 4"),
            std::string::npos)
      << f.evidence;
  EXPECT_NE(f.evidence.find("overflow 90 of 500 elements (worst step 3: 90% of its elements, "
                            "amax 8 at scale 896)"),
            std::string::npos)
      << f.evidence;
  EXPECT_NE(f.evidence.find("underflow 43 (8.6%) in 5 steps"), std::string::npos) << f.evidence;
  EXPECT_EQ(f.evidence.find(" to 90"), std::string::npos) << "equal bounds print once";

  // Severity follows the fraction: a saturation below 1e-3 is Info; underflow 1%..10% Info,
  // >= 10% Warning; never above Warning (a hypothetical recipe).
  WhatIfTensor w;
  w.eligible = 100000;
  w.saturate_steps = 1;
  w.overflow_lo = 50;
  w.overflow_frac = 5e-4;
  int score = 0;
  FindingKind kind = FindingKind::Drift;
  EXPECT_EQ(whatif_severity(w, RiskOptions{}, &score, &kind), Severity::Info);
  EXPECT_EQ(kind, FindingKind::Fp8Saturation);
  w.overflow_lo = 100;
  w.overflow_frac = 1e-3;
  EXPECT_EQ(whatif_severity(w, RiskOptions{}, &score, &kind), Severity::Warning);
  w.overflow_lo = 90000;
  w.overflow_frac = 0.9;
  EXPECT_EQ(whatif_severity(w, RiskOptions{}, &score, &kind), Severity::Warning);
  WhatIfTensor u;
  u.eligible = 1000;
  u.underflow_lo = 9;
  u.underflow_frac = 0.009;
  EXPECT_EQ(whatif_severity(u, RiskOptions{}, &score, &kind), Severity::None);
  u.underflow_lo = 50;
  u.underflow_frac = 0.05;
  EXPECT_EQ(whatif_severity(u, RiskOptions{}, &score, &kind), Severity::Info);
  EXPECT_EQ(kind, FindingKind::Fp8Underflow);
  u.underflow_lo = 100;
  u.underflow_frac = 0.1;
  EXPECT_EQ(whatif_severity(u, RiskOptions{}, &score, &kind), Severity::Warning);
}

TEST(WhatIfFindings, RecommendationsKnowTheFormat) {
  const auto b = underflowing();
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  const auto fs = of_kind(a, "fp8_");
  ASSERT_EQ(fs.size(), 2u);  // e4m3 and e5m2
  for (const Finding* f : fs) {
    SCOPED_TRACE(f->title);
    EXPECT_EQ(f->kind, FindingKind::Fp8Underflow);
    EXPECT_EQ(f->severity, Severity::Warning);  // 50% >= 10%
    EXPECT_NE(f->evidence.find("counts from the exponent histogram"), std::string::npos);
    EXPECT_NE(f->evidence.find("no overflow in 200 elements"), std::string::npos) << f->evidence;
    EXPECT_NE(f->evidence.find("underflow 100 (50%) in 2 steps"), std::string::npos) << f->evidence;
    if (f->format == Format::E4M3) {
      EXPECT_EQ(f->title,
                "e4m3 with delayed scaling would flush 50% of gemm#0.D to zero (2 of 2 replayed "
                "steps)");
      EXPECT_NE(f->recommendation.find("use E5M2"), std::string::npos);
    } else {
      EXPECT_EQ(f->format, Format::E5M2);
      EXPECT_EQ(f->recommendation.find("use E5M2"), std::string::npos) << f->recommendation;
      EXPECT_NE(f->recommendation.find("per-block"), std::string::npos);
    }
  }
}

// gemm#0.D: amax 1000, 1000, 70000, 70000 (steps 0..3), FP16 overflow at steps 2, 3 (so its
// per-step FP16 SQNR is undefined there), BF16 SQNR 60 dB every step.
Builder jumping() {
  Builder b;
  b.t.path = "jump.fpst";
  const uint32_t d = b.tensor("gemm#0.D", trace::Role::D, 10, 10);
  for (uint64_t s = 0; s < 4; ++s) {
    auto& o = b.obs(d, s, s, 100, s >= 2 ? 7e4f : 1000.0f, 1e6);
    o.stats.fmt[fi(Format::FP16)].overflow = s >= 2 ? 5 : 0;
    o.stats.fmt[fi(Format::FP16)].sum_err2 = 1e-2;
    o.stats.fmt[fi(Format::BF16)].sum_err2 = 1.0;
  }
  return b;
}

TEST(DriftFindings, ChangePointsReachFindingsJsonAndText) {
  const auto b = jumping();
  const trace::TraceModel m(b.t);
  AnalysisOptions opt;
  opt.run_whatif = false;
  const auto a = analyze(m, opt);
  // Step 2: amax 70000 vs the median 1000 of steps 0, 1: x70 >= 4. FP16 SQNR is undefined from
  // step 2 (overflow): no SQNR change point; BF16 constant.
  ASSERT_EQ(a.drift.size(), 1u);
  EXPECT_EQ(a.drift[0].id, "gemm#0.D");
  ASSERT_EQ(a.drift[0].change_points.size(), 1u);
  EXPECT_EQ(a.drift[0].change_points[0].step, 2u);
  EXPECT_EQ(a.drift[0].change_points[0].series, "amax");
  const auto fs = of_kind(a, "drift");
  ASSERT_EQ(fs.size(), 1u);
  // Info, 1000 + round((log10(log2(70) / 20) + 7) / 7 * 999) = 1000 + 926.
  EXPECT_EQ(fs[0]->severity, Severity::Info);
  EXPECT_EQ(fs[0]->score, 1926);
  EXPECT_EQ(fs[0]->title, "gemm#0.D changes abruptly at step 2: amax x70 (1000 -> 70000)");
  EXPECT_NE(fs[0]->evidence.find("step 2: amax x70 (1000 -> 70000)"), std::string::npos);

  const auto j = summary_json(b.t, a);
  EXPECT_EQ(j["drift_available"], true);
  ASSERT_EQ(j["drift"].size(), 1u);
  EXPECT_EQ(j["drift"][0]["tensor"], "gemm#0.D");
  EXPECT_EQ(j["drift"][0]["change_points"][0]["step"], 2);
  EXPECT_EQ(j["drift"][0]["change_points"][0]["series"], "amax");
  EXPECT_DOUBLE_EQ(j["drift"][0]["change_points"][0]["before"].get<double>(), 1000.0);
  EXPECT_DOUBLE_EQ(j["drift"][0]["change_points"][0]["after"].get<double>(), 70000.0);
  const std::string text = summary_text(b.t, a, 40, 80);
  EXPECT_NE(text.find("drift      1 change point in 1 tensor"), std::string::npos) << text;
  EXPECT_NE(text.find("gemm#0.D step 2: amax 1000 -> 70000"), std::string::npos) << text;

  // Switched off: nothing, and JSON says it was not computed.
  opt.run_drift = false;
  const auto off = analyze(m, opt);
  EXPECT_TRUE(off.drift.empty());
  EXPECT_TRUE(of_kind(off, "drift").empty());
  EXPECT_EQ(summary_json(b.t, off)["drift_available"], false);
}

TEST(WeightsJson, RatioDistributionAndHalfUlpFractions) {
  Builder b;
  const uint32_t w = b.tensor("fc.weight", trace::Role::Weight, 4, 5, Format::FP32, "fc.weight");
  trace::WeightUpdateRecord u;
  u.step = 1;
  u.tensor = w;
  u.elements = 20;
  u.changed = 20;
  // floor(log2 |delta|/|w|): -13: 5 (below 2^-12: lost in FP16 and BF16), -12: 3 (below 2^-9
  // only), -10: 2 (below 2^-9), -9: 10 (not below 2^-9: [2^-9, 2^-8)).
  u.ratio_hist = {{-13, 5}, {-12, 3}, {-10, 2}, {-9, 10}};
  b.t.weight_updates.push_back(u);
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  ASSERT_EQ(a.weights.size(), 1u);
  EXPECT_DOUBLE_EQ(a.weights[0].below_bf16_half_ulp, 10.0 / 20.0);  // 5 + 3 + 2
  EXPECT_DOUBLE_EQ(a.weights[0].below_fp16_half_ulp, 5.0 / 20.0);
  const auto j = summary_json(b.t, a);
  const auto& x = j["weights"][0];
  EXPECT_DOUBLE_EQ(x["below_fp16_half_ulp"].get<double>(), 0.25);
  ASSERT_EQ(x["ratio_hist"].size(), 4u);
  EXPECT_EQ(x["ratio_hist"][0]["log2_ratio"], -13);
  EXPECT_EQ(x["ratio_hist"][0]["count"], 5);
  EXPECT_EQ(x["ratio_hist"][3]["log2_ratio"], -9);
  // The report plots it with both half-ulp lines.
  const std::string svg = svg_weight_ratio(a.weights[0]);
  EXPECT_NE(svg.find("BF16 half-ulp 2^-9"), std::string::npos);
  EXPECT_NE(svg.find("FP16 half-ulp 2^-12"), std::string::npos);
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '\n') > 5, true);
  const std::string html = render_html(m, a, {});
  EXPECT_NE(html.find("update/weight ratio"), std::string::npos);
  EXPECT_NE(html.find("below FP16 half-ulp"), std::string::npos);
}

// An FP16 watched parameter: 4 updates of 100 positions; `changed` per update.
Builder fp16_master(uint64_t changed) {
  Builder b;
  const uint32_t w = b.tensor("fc.weight", trace::Role::Weight, 10, 10, Format::FP16, "fc.weight");
  for (uint64_t s = 0; s < 4; ++s) {
    trace::WeightUpdateRecord u;
    u.step = s;
    u.tensor = w;
    u.master_dtype = Format::FP16;
    u.elements = u.watched = 100;
    u.changed = changed;
    b.t.weight_updates.push_back(u);
  }
  return b;
}

TEST(MasterWeightFindings, Fp16MasterStagnantFromUnchangedElements) {
  // 95 of 100 changed per update: 5% unchanged (>= master_loss_report, 1%): the finding, an error
  // beside master_not_fp32; 100 of 100: none.
  const Builder some = fp16_master(95);  // TraceModel keeps a reference: builders outlive it
  const trace::TraceModel m(some.t);
  const auto a = analyze(m);
  const auto fs = of_kind(a, "fp16_master_stagnant");
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0]->tensor_id, "fc.weight");
  EXPECT_EQ(fs[0]->severity, Severity::Error);
  EXPECT_EQ(fs[0]->format, Format::FP16);
  EXPECT_EQ(fs[0]->first_step, 0);
  EXPECT_NE(fs[0]->title.find("5% of element updates rounded away"), std::string::npos)
      << fs[0]->title;
  EXPECT_NE(fs[0]->evidence.find("4 updates of 100 positions"), std::string::npos);
  EXPECT_NE(fs[0]->recommendation.find("Kahan"), std::string::npos);
  EXPECT_EQ(of_kind(a, "master_not_fp32").size(), 1u);
  const Builder none = fp16_master(100);
  const trace::TraceModel all(none.t);
  EXPECT_TRUE(of_kind(analyze(all), "fp16_master_stagnant").empty());
  // At and just below the threshold.
  Builder below = fp16_master(99);
  below.t.weight_updates[0].changed = 100;
  below.t.weight_updates[1].changed = 100;
  below.t.weight_updates[2].changed = 100;
  below.t.weight_updates[3].changed = 96;  // 4 of 400: 1%, at the threshold
  EXPECT_EQ(of_kind(analyze(trace::TraceModel(below.t)), "fp16_master_stagnant").size(), 1u);
  below.t.weight_updates[3].changed = 97;  // 3 of 400: 0.75%
  EXPECT_TRUE(of_kind(analyze(trace::TraceModel(below.t)), "fp16_master_stagnant").empty());
}

TEST(MasterWeightFindings, OptimizerStateEventsOnePerParameter) {
  Builder b = fp16_master(100);
  auto event = [&](uint64_t step, const std::string& text) {
    trace::EventRecord e;
    e.step = step;
    e.text = text;
    b.t.events.push_back(e);
  };
  event(0, "optimizer state: fc.weight: AdamW: exp_avg float16, exp_avg_sq float16");
  event(0, "optimizer state: enc.layers.0.bias: AdamW: exp_avg bfloat16, exp_avg_sq bfloat16");
  event(1, "optimizer state: fc.weight: AdamW: exp_avg float16");  // a name seen: ignored
  event(1, "optimizer state: no entries");                         // malformed: ignored
  event(1, "watch: left out x: no FPSCOPE_WATCH_BUDGET left");     // another kind of event
  const auto a = analyze(trace::TraceModel(b.t));
  const auto fs = of_kind(a, "optimizer_state_low_precision");
  ASSERT_EQ(fs.size(), 2u);
  const Finding* fc = fs[0]->tensor_id == "fc.weight" ? fs[0] : fs[1];
  const Finding* enc = fc == fs[0] ? fs[1] : fs[0];
  EXPECT_EQ(fc->severity, Severity::Warning);
  EXPECT_EQ(fc->format, Format::FP16);
  EXPECT_EQ(fc->tensor, static_cast<int64_t>(a.weights[0].tensor));  // linked to its watch
  EXPECT_EQ(fc->title, "Optimizer state of fc.weight is fp16 (AdamW: exp_avg, exp_avg_sq)");
  EXPECT_NE(fc->evidence.find("the parameter itself is fp16"), std::string::npos);
  EXPECT_EQ(enc->tensor_id, "enc.layers.0.bias");
  EXPECT_EQ(enc->tensor, -1);  // not watched
  EXPECT_EQ(enc->format, Format::BF16);
  EXPECT_EQ(enc->evidence, "AdamW state after step 0: exp_avg bfloat16, exp_avg_sq bfloat16");
  EXPECT_NE(enc->recommendation.find("FP32"), std::string::npos);
}

// Step marks 0..60 (every step), observations every 10 steps (7), metadata with every = 10.
Builder sampled() {
  Builder b;
  b.t.path = "/some/rather/long/directory/name/that/goes/on/and/on/for/a/while/run.fpst";
  b.t.version_major = 1;
  b.t.step_source = trace::StepSource::GemmPeriod;
  b.t.metadata_json =
      R"({"command_line":["/usr/bin/python3","train.py","--name","my run"],"host":"node7",)"
      R"("probe":"libfpscope_probe","probe_version":"0.1.0","pid":42,"config":{"every":10}})";
  for (uint64_t s = 0; s <= 60; ++s) {
    trace::StepMark mk;
    mk.step = s;
    mk.source = trace::StepSource::GemmPeriod;
    b.t.steps.push_back(mk);
  }
  const uint32_t d = b.tensor("transformer.h.11.mlp.c_proj.very_long_name.D", trace::Role::D, 768,
                              3072, Format::FP32, "h.11.mlp.c_proj");
  const uint32_t g = b.tensor("gemm#1.C", trace::Role::C, 768, 3072);
  for (uint64_t s = 0; s <= 60; s += 10) {
    auto& o = b.obs(d, s, s, 1000, 1e5f, 1e9);
    o.stats.fmt[fi(Format::FP16)].overflow = 10;
    o.stats.fmt[fi(Format::BF16)].sum_err2 = 1.0;
    auto& q = b.obs(g, s, s + 1, 1000, 1e-6f, 1e-9);
    q.stats.fmt[fi(Format::FP16)].underflow = 500;
  }
  return b;
}

TEST(SummaryText, EightyColumnsRunFactsAndSampledSteps) {
  const auto b = sampled();
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  EXPECT_EQ(a.run_steps, 61u);
  EXPECT_EQ(a.sampled_steps, 7u);
  EXPECT_EQ(a.meta.sample_every, 10);
  const std::string text = summary_text(b.t, a, 40, 80);
  EXPECT_NE(text.find("steps      61 steps (0..60), 7 sampled (every 10); source gemm_period"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("command    /usr/bin/python3 train.py --name 'my run'"), std::string::npos)
      << text;
  EXPECT_NE(text.find("run        host node7, probe libfpscope_probe 0.1.0, pid 42"),
            std::string::npos)
      << text;
  std::istringstream in(text);
  std::string line;
  size_t longest = 0;
  while (std::getline(in, line)) {
    EXPECT_LE(line.size(), 80u) << line;
    longest = std::max(longest, line.size());
  }
  EXPECT_GT(longest, 60u);
  // SQNR where FP16 overflows: n/a; the wide layout (width 0) is one line per tensor, > 80.
  EXPECT_NE(text.find("n/a"), std::string::npos);
  const std::string wide = summary_text(b.t, a, 40, 0);
  EXPECT_NE(wide.find(" | fp16 "), std::string::npos);
  size_t wide_longest = 0;
  std::istringstream win(wide);
  while (std::getline(win, line)) wide_longest = std::max(wide_longest, line.size());
  EXPECT_GT(wide_longest, 150u);
  // JSON run facts.
  const auto j = summary_json(b.t, a);
  EXPECT_EQ(j["trace"]["run_steps"], 61);
  EXPECT_EQ(j["trace"]["sampled_steps"], 7);
  EXPECT_EQ(j["trace"]["sample_every"], 10);
  EXPECT_EQ(j["trace"]["host"], "node7");
  EXPECT_EQ(j["trace"]["probe_version"], "0.1.0");
  EXPECT_EQ(j["trace"]["command_line"][3], "my run");
}

TEST(SummaryText, StepsLineWithoutSampling) {
  Builder b;
  const uint32_t t = b.tensor("gemm#0.D");
  for (uint64_t s = 0; s < 4; ++s) b.obs(t, s, s, 10, 1.0f, 10.0);
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  EXPECT_EQ(run_steps_text(b.t, a), "4 steps (0..3), all sampled; source none");
}

namespace {
// A complete 4-step base and new runs derived from it.
Builder run_of(uint64_t steps, bool truncated, const std::string& extra_tensor = "") {
  Builder b;
  b.t.path = truncated ? "crashed.fpst" : fmt::format("run{}.fpst", steps);
  b.t.truncated = truncated;
  b.t.dropped_bytes = truncated ? 812 : 0;
  b.t.truncation_reason = truncated ? "torn chunk at offset 4096" : "";
  const uint32_t d = b.tensor("gemm#0.D", trace::Role::D, 10, 10);
  const uint32_t x = extra_tensor.empty() ? 0 : b.tensor(extra_tensor, trace::Role::A, 3, 3);
  for (uint64_t s = 0; s < steps; ++s) {
    b.obs(d, s, 2 * s, 100, 1.0f, 100.0).stats.fmt[fi(Format::FP16)].sum_err2 = 1e-6;
    if (!extra_tensor.empty()) b.obs(x, s, 2 * s + 1, 9, 1.0f, 9.0);
    b.loss_scale(s, s >= 2 ? 512 : 1024, s == 1, s >= 1 ? 512 : 1024);
  }
  return b;
}
}  // namespace

TEST(DiffTruncation, TruncatedOrShorterNewRunIsARegression) {
  const auto base = run_of(4, false, "gemm#1.A");
  const auto same = run_of(4, false, "gemm#1.A");
  const auto crashed = run_of(2, true);
  const auto shorter = run_of(3, false);
  const trace::TraceModel mb(base.t), ms(same.t), mc(crashed.t), mh(shorter.t);
  AnalysisOptions ao;
  ao.run_whatif = false;
  const auto ab = analyze(mb, ao), as = analyze(ms, ao), ac = analyze(mc, ao), ah = analyze(mh, ao);
  EXPECT_TRUE(diff_runs(mb, ab, ms, as, DiffRules{}).regressions.empty());

  const auto d = diff_runs(mb, ab, mc, ac, DiffRules{});
  ASSERT_EQ(d.regressions.size(), 1u);
  EXPECT_EQ(d.regressions[0].rule, "truncated");
  EXPECT_NE(d.regressions[0].message.find("new trace is truncated (torn chunk at offset 4096; 812 "
                                          "bytes dropped)"),
            std::string::npos)
      << d.regressions[0].message;
  EXPECT_TRUE(d.neu.truncated);
  EXPECT_EQ(d.neu.dropped_bytes, 812u);
  EXPECT_EQ(d.base.run_steps, 4u);
  EXPECT_EQ(d.neu.run_steps, 2u);
  const std::string text = diff_text(d, base.t, crashed.t);
  EXPECT_NE(text.find("TRUNCATED (torn chunk at offset 4096; 812 bytes dropped)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("only in base: gemm#1.A"), std::string::npos) << text;
  // Loss scale, both runs: 1 skipped step, backoff at step 1 (1024 -> 512), min 512, final 512.
  EXPECT_NE(text.find("loss scale base: 1 skipped step, 1 backoff, 0 growths; min 512, final 512"),
            std::string::npos)
      << text;
  const auto j = diff_json(d, DiffRules{});
  EXPECT_EQ(j["new"]["truncated"], true);
  EXPECT_EQ(j["new"]["dropped_bytes"], 812);
  EXPECT_EQ(j["base"]["steps"], 4);
  EXPECT_EQ(j["new"]["steps"], 2);
  // NEW ran steps 0 (1024) and 1 (1024, skipped, next 512): min 1024, final 512.
  EXPECT_EQ(j["new"]["loss_scale"]["min_scale"], 1024.0);
  EXPECT_EQ(j["new"]["loss_scale"]["final_scale"], 512.0);
  EXPECT_EQ(j["rules"]["truncated"], true);
  EXPECT_NE(diff_markdown(d, base.t, crashed.t).find("**truncated**"), std::string::npos);

  // Not truncated but fewer steps (3 < 4): also a regression.
  const auto h = diff_runs(mb, ab, mh, ah, DiffRules{});
  ASSERT_EQ(h.regressions.size(), 1u);
  EXPECT_EQ(h.regressions[0].rule, "truncated");
  EXPECT_NE(h.regressions[0].message.find("fewer steps than base: 3 < 4"), std::string::npos);

  // The rule can be named, and left out.
  DiffRules r;
  std::string err;
  ASSERT_TRUE(parse_fail_on("truncated", &r, &err)) << err;
  EXPECT_TRUE(r.truncated);
  EXPECT_FALSE(r.overflow);
  ASSERT_TRUE(parse_fail_on("overflow,sqnr", &r, &err));
  EXPECT_FALSE(r.truncated);
  EXPECT_TRUE(diff_runs(mb, ab, mc, ac, r).regressions.empty());
  EXPECT_FALSE(parse_fail_on("truncated=2", &r, &err));
  ASSERT_TRUE(parse_fail_on("all", &r, &err));
  EXPECT_TRUE(r.truncated);
}

TEST(DiffText, ListsUnmatchedTensorsUpToACap) {
  Builder base, neu;
  base.t.path = "a.fpst";
  neu.t.path = "b.fpst";
  for (int i = 0; i < 12; ++i) {
    const uint32_t t = base.tensor(fmt::format("gemm#{}.D", i));
    base.obs(t, 0, static_cast<uint64_t>(i), 16, 1.0f, 16.0);
  }
  const trace::TraceModel mb(base.t), mn(neu.t);
  AnalysisOptions ao;
  ao.run_whatif = false;
  const auto d = diff_runs(mb, analyze(mb, ao), mn, analyze(mn, ao), DiffRules{});
  EXPECT_EQ(d.only_base.size(), 12u);
  const std::string text = diff_text(d, base.t, neu.t, 10);
  EXPECT_NE(text.find("only in base: gemm#0.D, gemm#1.D,"), std::string::npos) << text;
  EXPECT_NE(text.find("gemm#9.D, ... 2 more"), std::string::npos) << text;
  EXPECT_EQ(text.find("gemm#10.D"), std::string::npos) << text;
}

TEST(ReportCaps, WhatIfFindingsCappedAndTheNoteIsTrue) {
  // 8 tensors that each underflow E4M3 and E5M2 (16 what-if findings): the report lists 5, and
  // its note names the command that lists them all, with --baseline when there is one.
  Builder b;
  b.t.path = "many.fpst";
  for (int i = 0; i < 8; ++i) {
    const uint32_t t = b.tensor(fmt::format("gemm#{}.D", i));
    for (uint64_t s = 0; s < 3; ++s) {
      b.obs(t, s, s * 8 + static_cast<uint64_t>(i), 100, 1.0f, 50.0);
      b.hist(4 * 127, 50);
      b.hist(4 * (127 - 40), 50);
    }
  }
  const trace::TraceModel m(b.t);
  const auto a = analyze(m);
  EXPECT_EQ(of_kind(a, "fp8_").size(), 16u);
  ReportOptions ro;
  std::vector<std::pair<std::string, std::string>> plots;
  const std::string md = render_markdown(m, a, ro, "x_files", &plots);
  // Counted in the list of individual findings (the causes above it aggregate them).
  size_t listed = 0;
  const size_t all = md.find("### All findings");
  ASSERT_NE(all, std::string::npos);
  for (size_t p = md.find("with delayed scaling would", all); p != std::string::npos;
       p = md.find("with delayed scaling would", p + 1))
    ++listed;
  EXPECT_EQ(listed, 5u);
  EXPECT_NE(md.find("... 11 more findings not listed here (11 FP8 what-if): fpscope summary "
                    "many.fpst --json lists every finding (.findings)."),
            std::string::npos)
      << md;
  ro.baseline = &m;
  EXPECT_NE(render_markdown(m, a, ro, "x_files", nullptr)
                .find("fpscope summary many.fpst --baseline many.fpst --json lists"),
            std::string::npos);
  // Without a plot list: no image references.
  EXPECT_EQ(render_markdown(m, a, ReportOptions{}, "x_files", nullptr).find("!["),
            std::string::npos);
}

namespace {
// NaN in gemm#0.D at the given steps; the loss scaler skipped steps 2 and 5.
Builder nan_at(std::vector<uint64_t> nan_steps) {
  Builder b;
  const uint32_t t = b.tensor("gemm#0.D");
  for (uint64_t s = 0; s < 6; ++s) {
    auto& o = b.obs(t, s, s, 100, 1.0f, 50.0);
    if (std::find(nan_steps.begin(), nan_steps.end(), s) != nan_steps.end()) {
      o.stats.count += 4;
      o.stats.nan = 4;
    }
    b.loss_scale(s, 65536.0, s == 2 || s == 5);
  }
  return b;
}
}  // namespace

TEST(NonfiniteFindings, ConfinedToSkippedStepsIsAWarning) {
  AnalysisOptions opt;
  opt.run_whatif = false;
  {
    const auto b = nan_at({2, 5});
    const trace::TraceModel m(b.t);
    const auto a = analyze(m, opt);
    const auto fs = of_kind(a, "nonfinite");
    ASSERT_EQ(fs.size(), 1u);
    EXPECT_EQ(fs[0]->severity, Severity::Warning);
    EXPECT_EQ(fs[0]->title, "gemm#0.D holds NaN/Inf in 2 steps, all skipped by the loss scaler");
  }
  {
    const auto b = nan_at({2, 3});  // step 3 was applied: NaN reached the weights
    const trace::TraceModel m(b.t);
    const auto a = analyze(m, opt);
    const auto fs = of_kind(a, "nonfinite");
    ASSERT_EQ(fs.size(), 1u);
    EXPECT_EQ(fs[0]->severity, Severity::Critical);
    EXPECT_EQ(fs[0]->title, "gemm#0.D holds NaN/Inf from step 2");
  }
}

namespace {
// One attention-score GEMM per step s (seq 10 * s, name "attn"): A and B finite, C (alpha 1,
// `beta`) with c_neg[s] -Inf, D with d_neg[s] -Inf and d_nan[s] NaN, 64 elements each.
Builder scores(std::vector<uint64_t> c_neg, std::vector<uint64_t> d_neg, double beta = 1.0,
               std::vector<uint64_t> d_nan = {}) {
  Builder b;
  uint32_t t[4];
  const trace::Role roles[4] = {trace::Role::A, trace::Role::B, trace::Role::C, trace::Role::D};
  for (int i = 0; i < 4; ++i) {
    t[i] = b.tensor(fmt::format("gemm#0.{}", trace::role_name(roles[i])), roles[i], 8, 8);
    b.t.tensors[t[i]].gemm.beta = beta;
  }
  for (uint64_t s = 0; s < c_neg.size(); ++s) {
    const uint64_t seq = 10 * s;
    b.obs(t[0], s, seq, 64, 1.0f, 16.0);
    b.obs(t[1], s, seq, 64, 1.0f, 16.0);
    auto& c = b.obs(t[2], s, seq, 64 - c_neg[s], 0.0f, 0.0);
    c.stats.count = 64;
    c.stats.neg_inf = c_neg[s];
    const uint64_t nan = s < d_nan.size() ? d_nan[s] : 0;
    auto& d = b.obs(t[3], s, seq, 64 - d_neg[s] - nan, 2.0f, 30.0);
    d.stats.count = 64;
    d.stats.neg_inf = d_neg[s];
    d.stats.nan = nan;
  }
  return b;
}

RunAnalysis analyze_plain(const Builder& b) {
  AnalysisOptions opt;
  opt.run_whatif = false;
  opt.run_drift = false;
  const trace::TraceModel m(b.t);
  return analyze(m, opt);
}

const TensorRisk& risk_of(const RunAnalysis& a, const std::string& id) {
  for (const auto& r : a.risks)
    if (r.id == id) return r;
  ADD_FAILURE() << "no risk row " << id;
  return a.risks.front();
}

std::vector<std::string> critical_tensors(const RunAnalysis& a) {
  std::vector<std::string> v;
  for (const auto& f : a.findings)
    if (f.severity == Severity::Critical) {
      EXPECT_EQ(f.kind, FindingKind::Nonfinite);
      v.push_back(f.tensor_id);
    }
  std::sort(v.begin(), v.end());
  return v;
}
}  // namespace

TEST(AdditiveMaskFindings, MaskAndItsOutputAreOneInfoFinding) {
  // 28 of 64 at -Inf (a causal 8x8 mask) in C and D at each of 3 steps; D's the same count, then
  // fewer (a masked row the output has no -Inf in is still the mask's).
  for (const uint64_t d : {28u, 20u}) {
    const auto a = analyze_plain(scores({28, 28, 28}, {d, d, d}));
    EXPECT_TRUE(of_kind(a, "nonfinite").empty());
    for (const auto& f : a.findings) EXPECT_EQ(f.severity, Severity::Info) << f.title;
    const auto fs = of_kind(a, "additive_mask");
    ASSERT_EQ(fs.size(), 1u);
    const Finding& f = *fs[0];
    EXPECT_EQ(f.severity, Severity::Info);
    EXPECT_EQ(f.tensor_id, "gemm#0.C");
    // 84 of 192 elements: 1000 + round((log10(0.4375) + 7) / 7 * 999) = 1000 + 948.
    EXPECT_EQ(f.score, 1948);
    EXPECT_EQ(f.first_step, 0);
    EXPECT_EQ(f.last_step, 2);
    EXPECT_EQ(f.title, "additive mask: 28 elements at -Inf in every step of gemm#0.C");
    EXPECT_NE(f.evidence.find(fmt::format("output gemm#0.D: {} -Inf in every step", d)),
              std::string::npos)
        << f.evidence;
    // The tensor table's rule is the same: neither tensor is painted above Info.
    const auto& c = risk_of(a, "gemm#0.C");
    EXPECT_EQ(c.severity, Severity::Info);
    EXPECT_EQ(c.severity_reason, "additive mask: 28 elements at -Inf in every step");
    const auto& dr = risk_of(a, "gemm#0.D");
    EXPECT_EQ(dr.severity, Severity::Info);
    EXPECT_EQ(dr.mask_tensor, static_cast<int64_t>(c.tensor));
    EXPECT_EQ(
        dr.severity_reason,
        fmt::format("output of additive mask gemm#0.C: {} elements at -Inf in every step", d));
  }
}

TEST(AdditiveMaskFindings, InfFromFiniteInputsStaysCritical) {
  // C finite, D with -Inf: the GEMM produced them.
  const auto a = analyze_plain(scores({0, 0, 0}, {28, 28, 28}));
  EXPECT_TRUE(of_kind(a, "additive_mask").empty());
  EXPECT_EQ(critical_tensors(a), std::vector<std::string>{"gemm#0.D"});
  EXPECT_EQ(risk_of(a, "gemm#0.D").severity, Severity::Critical);
  const auto fs = of_kind(a, "nonfinite");
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0]->title, "gemm#0.D holds NaN/Inf from step 0");
}

TEST(AdditiveMaskFindings, CountsThatChangeOrNaNAreNotAMask) {
  const std::vector<std::string> both = {"gemm#0.C", "gemm#0.D"};
  {  // The mask's count changes at step 2: not a mask; C and D critical as before.
    const auto a = analyze_plain(scores({28, 28, 29}, {28, 28, 29}));
    EXPECT_TRUE(of_kind(a, "additive_mask").empty());
    EXPECT_EQ(critical_tensors(a), both);
    EXPECT_EQ(risk_of(a, "gemm#0.C").severity, Severity::Critical);
  }
  {  // A steady mask whose output's -Inf grow: the output is critical, the mask alone info.
    const auto a = analyze_plain(scores({28, 28, 28}, {28, 28, 30}));
    EXPECT_EQ(of_kind(a, "additive_mask").size(), 1u);
    EXPECT_EQ(critical_tensors(a), std::vector<std::string>{"gemm#0.D"});
    const auto fs = of_kind(a, "nonfinite");
    ASSERT_EQ(fs.size(), 1u);
    EXPECT_EQ(fs[0]->first_step, 0);
  }
  {  // More -Inf in the output than in the mask, every step.
    const auto a = analyze_plain(scores({20, 20, 20}, {28, 28, 28}));
    EXPECT_EQ(critical_tensors(a), std::vector<std::string>{"gemm#0.D"});
  }
  {  // NaN appears in the output at step 2.
    const auto a = analyze_plain(scores({28, 28, 28}, {28, 28, 28}, 1.0, {0, 0, 1}));
    EXPECT_EQ(critical_tensors(a), std::vector<std::string>{"gemm#0.D"});
    EXPECT_EQ(risk_of(a, "gemm#0.D").severity, Severity::Critical);
  }
}

TEST(AdditiveMaskFindings, BetaZeroIsNotAMask) {
  // A C with beta 0 is not added: its -Inf are not a mask (and D's are not covered).
  const auto a = analyze_plain(scores({28, 28, 28}, {28, 28, 28}, 0.0));
  EXPECT_TRUE(of_kind(a, "additive_mask").empty());
  EXPECT_EQ(critical_tensors(a), (std::vector<std::string>{"gemm#0.C", "gemm#0.D"}));
}

// ---- one vocabulary: kind names, options
// ---------------------------------------------------------

TEST(FindingKinds, OneNameEachAndItParsesBack) {
  // The names docs/summary-json.md lists for "kind", in FindingKind order.
  const char* const documented[] = {"nonfinite",
                                    "overflow",
                                    "underflow",
                                    "sqnr",
                                    "loss_scale_collapse",
                                    "skipped_steps",
                                    "master_not_fp32",
                                    "master_weight_loss",
                                    "fp8_saturation",
                                    "fp8_underflow",
                                    "drift",
                                    "baseline_drift",
                                    "additive_mask",
                                    "rank_first_fault",
                                    "rank_skew",
                                    "rank_desync",
                                    "rank_loss_scale",
                                    "optimizer_state_low_precision",
                                    "fp16_master_stagnant",
                                    "block_loss"};
  ASSERT_EQ(std::size(documented), static_cast<size_t>(kNumFindingKinds));
  for (int i = 0; i < kNumFindingKinds; ++i) {
    const auto k = static_cast<FindingKind>(i);
    EXPECT_STREQ(kind_name(k), documented[i]);
    ASSERT_TRUE(parse_kind(documented[i]).has_value()) << documented[i];
    EXPECT_EQ(*parse_kind(documented[i]), k);
    std::ostringstream os;
    os << k;
    EXPECT_EQ(os.str(), documented[i]);
  }
  EXPECT_FALSE(parse_kind("").has_value());
  EXPECT_FALSE(parse_kind("Overflow").has_value());
  EXPECT_FALSE(parse_kind("fp8_").has_value());
}

TEST(FindingOptions, MagnitudeMaps) {
  const FindingOptions opt;
  // round((log10(f) + 7) / 7 * 999), clamped to [1, 999]; 0 for nothing.
  EXPECT_EQ(fraction_magnitude(0.0, opt), 0);
  EXPECT_EQ(fraction_magnitude(std::nan(""), opt), 0);
  EXPECT_EQ(fraction_magnitude(1e-8, opt), 1);
  EXPECT_EQ(fraction_magnitude(1e-7, opt), 1);
  EXPECT_EQ(fraction_magnitude(0.1, opt), 856);
  EXPECT_EQ(fraction_magnitude(1.0, opt), 999);
  EXPECT_EQ(fraction_magnitude(5.0, opt), 999);
  EXPECT_EQ(linear_magnitude(30.0, 60.0), 500);  // 499.5 rounds away from zero
  EXPECT_EQ(linear_magnitude(1e-9, 60.0), 1);
  EXPECT_EQ(linear_magnitude(90.0, 60.0), 999);
  EXPECT_EQ(level_score(Severity::Error, 795), 3795);
}

namespace {

// gemm#0.D over steps 0..3, 100 elements each: FP16 overflow 0, 0, 5, 10 (15 of 400 = 3.75%);
// loss scale records at 4 steps, step 2 skipped (1 of 4 = 25%).
Builder overflowing() {
  Builder b;
  const uint32_t d = b.tensor("gemm#0.D", trace::Role::D, 10, 10);
  for (uint64_t s = 0; s < 4; ++s) {
    const bool big = s >= 2;
    auto& o = b.obs(d, s, 10 * s + 21, 100, big ? 7e4f : 1000.0f, 1e6);
    o.stats.fmt[fi(Format::FP16)].overflow = big ? (s == 2 ? 5 : 10) : 0;
    o.stats.fmt[fi(Format::FP16)].sum_err2 = 1e-2;
    o.stats.fmt[fi(Format::BF16)].sum_err2 = 1.0;
    b.hist(4 * (127 + 9), 100);
  }
  b.loss_scale(0, 1024, false, 1024);
  b.loss_scale(1, 1024, false, 1024);
  b.loss_scale(2, 1024, true, 512);
  b.loss_scale(3, 512, false, 0);
  return b;
}

const Finding* first_of(const RunAnalysis& a, FindingKind k) {
  for (const auto& f : a.findings)
    if (f.kind == k) return &f;
  return nullptr;
}

}  // namespace

TEST(FindingOptions, DecideLevelsMagnitudesAndThresholds) {
  const auto b = overflowing();
  const trace::TraceModel m(b.t);
  AnalysisOptions opt;
  opt.run_whatif = false;
  opt.run_drift = false;
  {
    const auto a = analyze(m, opt);
    const Finding* ovf = first_of(a, FindingKind::Overflow);
    ASSERT_TRUE(ovf);
    EXPECT_EQ(ovf->severity, Severity::Error);
    EXPECT_EQ(ovf->score, 3000 + 795);  // log10(0.0375) = -1.426: (7 - 1.426) / 7 * 999
    const Finding* sk = first_of(a, FindingKind::SkippedSteps);
    ASSERT_TRUE(sk);
    EXPECT_EQ(sk->severity, Severity::Warning);  // 25% >= 1%
    EXPECT_EQ(sk->score, 2000 + 913);            // log10(0.25) = -0.602
    ASSERT_FALSE(a.risks.empty());
    EXPECT_EQ(a.risks[0].score, 3795);  // the risk row shares the scale
  }
  {
    opt.findings.overflow = Severity::Critical;
    opt.findings.fraction_decades = 3.5;
    opt.findings.skipped_steps_warn = 0.5;
    const auto a = analyze(m, opt);
    const Finding* ovf = first_of(a, FindingKind::Overflow);
    ASSERT_TRUE(ovf);
    EXPECT_EQ(ovf->severity, Severity::Critical);
    EXPECT_EQ(ovf->score, 4000 + 592);  // (3.5 - 1.426) / 3.5 * 999
    const Finding* sk = first_of(a, FindingKind::SkippedSteps);
    ASSERT_TRUE(sk);
    EXPECT_EQ(sk->severity, Severity::Info);  // 25% < 50%
    EXPECT_EQ(sk->score, 1000 + 827);         // (3.5 - 0.602) / 3.5 * 999
    ASSERT_FALSE(a.risks.empty());
    EXPECT_EQ(a.risks[0].severity, Severity::Critical);
    EXPECT_EQ(a.risks[0].score, 4592);
    EXPECT_EQ(a.findings.front().kind, FindingKind::Overflow);
  }
}
