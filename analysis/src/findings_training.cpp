// Finding families of the training loop: the loss scaler (collapse, skipped steps) and the master
// weights (not FP32, updates a BF16 master copy would lose).
#include <algorithm>

#include <fmt/format.h>

#include "findings_families.h"

namespace fpscope::analysis::families {

namespace {

Finding collapse_finding(const LossScaleAnalysis& ls, const FindingOptions& opt) {
  Finding f;
  f.kind = FindingKind::LossScaleCollapse;
  f.severity = opt.loss_scale_collapse;
  f.score = level_score(f.severity, opt.loss_scale_collapse_magnitude);
  f.first_step = ls.collapse_step;
  f.title = fmt::format("Loss scale collapsed: {}", ls.collapse_reason);
  f.evidence = fmt::format(
      "{} loss-scale records, {} skipped steps, {} backoffs, {} growths; "
      "scale min {} max {} final {}",
      ls.series.size(), ls.skipped.size(), ls.backoffs, ls.growths, fmt_num(ls.min_scale),
      fmt_num(ls.max_scale), fmt_num(ls.final_scale));
  f.recommendation =
      "The gradients overflow FP16 at any scale: find the first offending op of the skipped "
      "steps and keep it in FP32/BF16, or train in BF16 (no loss scaling needed).";
  return f;
}

Finding skipped_finding(const LossScaleAnalysis& ls, const FindingOptions& opt) {
  const double frac = fraction(ls.skipped.size(), ls.series.size());
  const bool probing = scaler_probing(ls, opt);
  Finding f;
  f.kind = FindingKind::SkippedSteps;
  f.severity = probing                          ? opt.skipped_steps_probing
               : frac >= opt.skipped_steps_warn ? Severity::Warning
                                                : Severity::Info;
  f.score = level_score(f.severity, fraction_magnitude(frac, opt));
  f.first_step = static_cast<int64_t>(ls.skipped.front().step);
  f.last_step = static_cast<int64_t>(ls.skipped.back().step);
  f.title = fmt::format(
      "{} optimizer steps skipped for Inf/NaN gradients ({} of steps){}", ls.skipped.size(),
      fmt_pct(frac),
      probing ? ": dynamic loss scaling probing (the scale backs off and grows back)" : "");
  std::string ev;
  size_t shown = 0;
  for (const auto& s : ls.skipped) {
    if (shown++ == opt.evidence_list_max) {
      ev += fmt::format("; ... {} more", ls.skipped.size() - opt.evidence_list_max);
      break;
    }
    if (!ev.empty()) ev += "; ";
    ev +=
        s.offender_tensor >= 0
            ? fmt::format("step {} (scale {}): first {} in {} (seq {})", s.step, fmt_num(s.scale),
                          s.reason, s.offender_id, s.offender_seq)
            : fmt::format("step {} (scale {}): no offending op recorded", s.step, fmt_num(s.scale));
  }
  f.evidence = ev;
  f.recommendation =
      "A few skipped steps are how dynamic loss scaling probes; many mean the scale is too "
      "high or an op overflows FP16: keep the first offending op in FP32/BF16.";
  return f;
}

int64_t first_update_step(const WeightLoss& w) {
  return w.series.empty() ? -1 : static_cast<int64_t>(w.series.front().step);
}

Finding not_fp32_finding(const WeightLoss& w, const FindingOptions& opt) {
  Finding f;
  f.kind = FindingKind::MasterNotFp32;
  f.severity = opt.master_not_fp32;
  f.score =
      level_score(f.severity, fraction_magnitude(std::max(w.bf16_stagnant, w.fp16_stagnant), opt));
  f.tensor = w.tensor;
  f.tensor_id = w.name;
  f.format = w.master_dtype;
  f.first_step = first_update_step(w);
  f.title = fmt::format("Master weights of {} are {}, not FP32", w.name, spec(w.master_dtype).name);
  f.evidence = fmt::format(
      "{} updates; BF16 would leave {} of updates stagnant, lose {} of "
      "update mass",
      w.updates, fmt_pct(w.bf16_stagnant), fmt_pct(w.bf16_lost_mass));
  f.recommendation =
      "Keep FP32 master weights (optimizer state) and cast to BF16/FP16 only for compute.";
  return f;
}

Finding weight_loss_finding(const WeightLoss& w, double worst, const FindingOptions& opt) {
  Finding f;
  f.kind = FindingKind::MasterWeightLoss;
  f.severity =
      (w.bf16_stagnant >= opt.master_stagnant_warn || w.bf16_lost_mass >= opt.master_lost_mass_warn)
          ? Severity::Warning
          : Severity::Info;
  f.score = level_score(f.severity, fraction_magnitude(worst, opt));
  f.tensor = w.tensor;
  f.tensor_id = w.name;
  f.format = Format::BF16;
  f.first_step = first_update_step(w);
  f.title = fmt::format(
      "BF16 master weights would lose {} of {}'s update mass ({} of "
      "updates stagnant)",
      fmt_pct(w.bf16_lost_mass), w.name, fmt_pct(w.bf16_stagnant));
  f.evidence = fmt::format(
      "{} updates, {} changed elements; FP16: {} stagnant, {} lost; {} "
      "of updates below half a BF16 ulp",
      w.updates, w.changed, fmt_pct(w.fp16_stagnant), fmt_pct(w.fp16_lost_mass),
      fmt_pct(w.below_bf16_half_ulp));
  if (w.sampled)  // the probe's watch budget: estimates from a uniform sample of positions
    f.evidence += fmt::format(
        "; sampled {} of {} positions: BF16 stagnant 95% interval {}-{}, lost mass a point "
        "estimate",
        w.watched, w.elements, fmt_pct(w.bf16_stagnant_lo), fmt_pct(w.bf16_stagnant_hi));
  f.recommendation =
      "Keep master weights in FP32 (or use stochastic rounding / Kahan-compensated BF16 "
      "updates) if you plan low-precision optimizer state.";
  return f;
}

}  // namespace

bool scaler_probing(const LossScaleAnalysis& ls, const FindingOptions& opt) {
  return ls.present && !ls.collapsed && ls.growths >= 1 && ls.growths + 1 >= ls.backoffs &&
         fraction(ls.skipped.size(), ls.series.size()) < opt.probing_skipped_max;
}

void loss_scale_findings(const LossScaleAnalysis& ls, const FindingOptions& opt,
                         std::vector<Finding>* out) {
  if (ls.collapsed) out->push_back(collapse_finding(ls, opt));
  if (!ls.skipped.empty()) out->push_back(skipped_finding(ls, opt));
}

void weight_findings(const std::vector<WeightLoss>& weights, const FindingOptions& opt,
                     std::vector<Finding>* out) {
  for (const auto& w : weights) {
    if (w.not_fp32) out->push_back(not_fp32_finding(w, opt));
    const double worst = std::max(w.bf16_stagnant, w.bf16_lost_mass);
    if (w.changed > 0 && worst >= opt.master_loss_report)
      out->push_back(weight_loss_finding(w, worst, opt));
  }
}

}  // namespace fpscope::analysis::families
