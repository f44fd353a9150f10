// The findings vocabulary (kind names, scores, ranking) and analyze(): it runs the analyses, then
// the finding families (findings_families.h) on their results, and ranks what they found.
#include "fpscope/analysis/findings.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <set>

#include <fmt/format.h>

#include "findings_families.h"

namespace fpscope::analysis {

const char* kind_name(FindingKind k) {
  switch (k) {
    case FindingKind::Nonfinite:
      return "nonfinite";
    case FindingKind::Overflow:
      return "overflow";
    case FindingKind::Underflow:
      return "underflow";
    case FindingKind::Sqnr:
      return "sqnr";
    case FindingKind::LossScaleCollapse:
      return "loss_scale_collapse";
    case FindingKind::SkippedSteps:
      return "skipped_steps";
    case FindingKind::MasterNotFp32:
      return "master_not_fp32";
    case FindingKind::MasterWeightLoss:
      return "master_weight_loss";
    case FindingKind::Fp8Saturation:
      return "fp8_saturation";
    case FindingKind::Fp8Underflow:
      return "fp8_underflow";
    case FindingKind::Drift:
      return "drift";
    case FindingKind::BaselineDrift:
      return "baseline_drift";
    case FindingKind::AdditiveMask:
      return "additive_mask";
    case FindingKind::RankFirstFault:
      return "rank_first_fault";
    case FindingKind::RankSkew:
      return "rank_skew";
    case FindingKind::RankDesync:
      return "rank_desync";
    case FindingKind::RankLossScale:
      return "rank_loss_scale";
    case FindingKind::OptimizerStateLowPrecision:
      return "optimizer_state_low_precision";
    case FindingKind::Fp16MasterStagnant:
      return "fp16_master_stagnant";
    case FindingKind::BlockLoss:
      return "block_loss";
  }
  return "unknown";
}

std::optional<FindingKind> parse_kind(std::string_view name) {
  for (int i = 0; i < kNumFindingKinds; ++i) {
    const auto k = static_cast<FindingKind>(i);
    if (name == kind_name(k)) return k;
  }
  return std::nullopt;
}

std::ostream& operator<<(std::ostream& os, FindingKind k) {
  return os << kind_name(k);
}

int fraction_magnitude(double frac, const FindingOptions& opt) {
  if (!(frac > 0.0)) return 0;
  const double d = opt.fraction_decades;
  const double m = (std::log10(frac) + d) / d * kMaxMagnitude;
  return static_cast<int>(std::clamp(std::lround(m), 1L, static_cast<long>(kMaxMagnitude)));
}

int linear_magnitude(double x, double full) {
  return static_cast<int>(
      std::clamp(std::lround(x / full * kMaxMagnitude), 1L, static_cast<long>(kMaxMagnitude)));
}

namespace families {

std::string steps_phrase(int64_t first, int64_t last) {
  if (first < 0) return "";
  if (first == last || last < 0) return fmt::format("at step {}", first);
  return fmt::format("from step {}", first);
}

}  // namespace families

void rank_findings(std::vector<Finding>* findings) {
  std::stable_sort(findings->begin(), findings->end(), [](const Finding& a, const Finding& b) {
    if (a.score != b.score) return a.score > b.score;
    // By name, not enum value: the order the reports have always had.
    if (a.kind != b.kind) return std::strcmp(kind_name(a.kind), kind_name(b.kind)) < 0;
    if (a.tensor_id != b.tensor_id) return a.tensor_id < b.tensor_id;
    return a.first_step < b.first_step;
  });
}

namespace {

// The run's extent: sampled steps, steps with observations or loss-scale records, steps the run
// went through (step marks too), distinct GEMM calls.
void count_steps(const trace::TraceModel& model, RunAnalysis* a) {
  const auto& trace = model.trace();
  std::set<uint64_t> steps(model.steps().begin(), model.steps().end());
  a->sampled_steps = steps.size();
  for (const auto& r : trace.loss_scales) steps.insert(r.step);
  {
    std::set<uint64_t> run = steps;
    for (const auto& m : trace.steps) run.insert(m.step);
    a->run_steps = run.size();
    if (!run.empty()) {
      a->run_first_step = *run.begin();
      a->run_last_step = *run.rbegin();
    }
  }
  std::vector<uint64_t> seqs;
  seqs.reserve(trace.observations.size());
  for (const auto& o : trace.observations) seqs.push_back(o.seq);
  std::sort(seqs.begin(), seqs.end());
  a->gemm_calls = static_cast<uint64_t>(std::unique(seqs.begin(), seqs.end()) - seqs.begin());
  const std::string_view prefix = trace::kNotMeasuredPrefix;
  for (const auto& e : trace.events)
    if (e.level >= trace::EventLevel::Warning && e.text.compare(0, prefix.size(), prefix) == 0) {
      a->not_measured = e.text.substr(prefix.size());
      break;
    }
  a->steps = steps.size();
  if (!steps.empty()) {
    a->first_step = *steps.begin();
    a->last_step = *steps.rbegin();
  }
}

// Within-run change points of every observed tensor; progress in [0, 1] over the tensors.
std::vector<TensorDrift> run_drift(const trace::TraceModel& model, const DriftOptions& opt,
                                   const ProgressFn& progress) {
  std::vector<TensorDrift> out;
  const uint32_t nt = model.num_tensors();
  for (uint32_t ti = 0; ti < nt; ++ti) {
    if (model.series(ti).empty()) continue;
    auto d = drift_series(model, ti, opt);
    if (!d.change_points.empty())
      out.push_back({ti, model.tensor(ti).id, std::move(d.change_points)});
    if (ti % 16 == 15) progress(static_cast<double>(ti + 1) / nt);
  }
  return out;
}

}  // namespace

RunAnalysis analyze(const trace::TraceModel& model, const AnalysisOptions& opt,
                    const ProgressFn& progress) {
  auto report = [&](double f) {
    if (progress) progress(f);
  };
  RunAnalysis a;
  a.options = opt;
  a.meta = parse_run_meta(model.trace().metadata_json);
  report(0.0);

  // The analyses, each on the trace.
  a.loss_scale = analyze_loss_scale(model, opt.loss_scale);
  RiskOptions risk_opt = opt.risk;
  for (const auto& sk : a.loss_scale.skipped) risk_opt.skipped_steps.push_back(sk.step);
  std::sort(risk_opt.skipped_steps.begin(), risk_opt.skipped_steps.end());
  a.risks = analyze_risk(model, risk_opt, opt.findings);
  report(0.2);
  a.weights = analyze_weights(model.trace());
  report(0.25);
  if (opt.run_whatif)
    a.whatif = fp8_whatif(model, opt.whatif, [&](double f) { report(0.25 + 0.45 * f); });
  if (opt.run_whatif) a.format_choices = format_choices(model, a.whatif, opt.whatif, opt.findings);
  report(0.7);
  if (opt.run_drift)
    a.drift = run_drift(model, opt.drift, [&](double f) { report(0.7 + 0.25 * f); });
  report(0.95);
  count_steps(model, &a);

  // The finding families on their results, then one ranking.
  const FindingOptions& fo = opt.findings;
  families::nonfinite_findings(a.risks, risk_opt, a.loss_scale, fo, &a.findings);
  families::additive_mask_findings(a.risks, fo, &a.findings);
  families::range_findings(a.risks, risk_opt, a.loss_scale, fo, &a.findings);
  families::precision_findings(a.risks, risk_opt, fo, &a.findings);
  families::loss_scale_findings(a.loss_scale, fo, &a.findings);
  families::weight_findings(a.weights, fo, &a.findings);
  families::optimizer_state_findings(model.trace(), a.weights, fo, &a.findings);
  families::whatif_findings(a.whatif, a.format_choices, opt, &a.findings);
  families::block_findings(model, a, &a.findings);
  families::drift_findings(model, a, &a.findings);
  rank_findings(&a.findings);
  report(1.0);
  return a;
}

void add_baseline_findings(const trace::TraceModel& base, const trace::TraceModel& run,
                           RunAnalysis* a) {
  a->baseline_drift = compare_runs(base, run, a->options.cross);
  auto bf = baseline_findings(base, a->baseline_drift, a->options.findings);
  a->findings.insert(a->findings.end(), std::make_move_iterator(bf.begin()),
                     std::make_move_iterator(bf.end()));
  rank_findings(&a->findings);
}

}  // namespace fpscope::analysis
