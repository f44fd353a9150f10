// Finding families of the training loop: the loss scaler (collapse, skipped steps), the master
// weights (not FP32, FP16 ones dropping updates, updates a BF16 master copy would lose) and the
// optimizer state (BF16/FP16 moments).
#include <algorithm>
#include <set>
#include <string>

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

// Element updates an FP16 master copy left unchanged: a step changes a watched FP16 weight only
// by whole FP16 ulps, so an update below half an ulp shows as an unchanged element (its own
// FP16 stagnant fraction, over changed elements, stays ~0). A zero gradient also leaves one.
double unchanged_fraction(const WeightLoss& w) {
  const double positions = static_cast<double>(w.watched) * static_cast<double>(w.updates);
  if (!(positions > 0.0)) return 0.0;
  return std::max(0.0, 1.0 - static_cast<double>(w.changed) / positions);
}

Finding fp16_stagnant_finding(const WeightLoss& w, double unchanged, const FindingOptions& opt) {
  Finding f;
  f.kind = FindingKind::Fp16MasterStagnant;
  f.severity = opt.fp16_master_stagnant;
  f.score = level_score(f.severity, fraction_magnitude(unchanged, opt));
  f.tensor = w.tensor;
  f.tensor_id = w.name;
  f.format = Format::FP16;
  f.first_step = first_update_step(w);
  f.title =
      fmt::format("FP16 master weights of {} drop updates: {} of element updates rounded away",
                  w.name, fmt_pct(unchanged));
  f.evidence = fmt::format(
      "{} updates of {} positions: {} of element updates left the FP16 weight unchanged (an "
      "update below half an FP16 ulp rounds away; a zero gradient also leaves it); {} of the "
      "applied updates' ratios |delta|/|w| at the FP16 half-ulp floor or below",
      w.updates, w.watched, fmt_pct(unchanged), fmt_pct(w.below_fp16_half_ulp));
  if (w.sampled) {
    const auto [lo, hi] = stagnant_interval(unchanged, w.watched, w.watched, w.elements);
    f.evidence += fmt::format("; sampled {} of {} positions: 95% interval {}-{}", w.watched,
                              w.elements, fmt_pct(lo), fmt_pct(hi));
  }
  f.recommendation =
      "Keep FP32 master weights and cast to FP16 only for compute (with loss scaling); if the "
      "weights must stay 16-bit, use a Kahan-compensated or stochastic-rounding optimizer.";
  return f;
}

// "optimizer state: <name>: <optimizer>: <key> <dtype>, ..." (probe/python/fpscope_hooks/
// fpscope_autowatch.py); false for any other text.
struct StateEvent {
  std::string name, optimizer, entries;
};
bool parse_state_event(const std::string& text, StateEvent* out) {
  static const std::string kPrefix = "optimizer state: ";
  if (text.rfind(kPrefix, 0) != 0) return false;
  const std::string rest = text.substr(kPrefix.size());
  const size_t entries = rest.rfind(": ");
  if (entries == std::string::npos || entries == 0) return false;
  const size_t kind = rest.rfind(": ", entries - 1);
  if (kind == std::string::npos) return false;
  out->name = rest.substr(0, kind);
  out->optimizer = rest.substr(kind + 2, entries - kind - 2);
  out->entries = rest.substr(entries + 2);
  return !out->name.empty() && !out->entries.empty();
}

Finding state_finding(const StateEvent& e, uint64_t step, const WeightLoss* w,
                      const FindingOptions& opt) {
  const bool fp16 = e.entries.find("float16") != std::string::npos &&
                    e.entries.find("bfloat16") == std::string::npos;
  const Format low = fp16 ? Format::FP16 : Format::BF16;
  std::string keys;  // "exp_avg, exp_avg_sq": the entries without their dtypes
  for (size_t at = 0; at < e.entries.size();) {
    const size_t end = std::min(e.entries.find(", ", at), e.entries.size());
    const std::string entry = e.entries.substr(at, end - at);
    if (!keys.empty()) keys += ", ";
    keys += entry.substr(0, entry.rfind(' '));
    at = end + 2;
  }
  Finding f;
  f.kind = FindingKind::OptimizerStateLowPrecision;
  f.severity = opt.optimizer_state_low_precision;
  f.score = level_score(f.severity, fraction_magnitude(1.0, opt));
  f.tensor = w ? static_cast<int64_t>(w->tensor) : -1;
  f.tensor_id = e.name;
  f.format = low;
  f.first_step = static_cast<int64_t>(step);
  f.title = fmt::format("Optimizer state of {} is {} ({}: {})", e.name, spec(low).name, e.optimizer,
                        keys);
  f.evidence = fmt::format("{} state after step {}: {}", e.optimizer, step, e.entries);
  if (w) f.evidence += fmt::format("; the parameter itself is {}", spec(w->master_dtype).name);
  f.recommendation =
      "Keep optimizer state (Adam moments, momentum) in FP32 even when weights and compute are "
      "BF16/FP16: a 16-bit moment rounds away small contributions as a 16-bit master weight "
      "does; or use an optimizer built for 16-bit state (Kahan-compensated or "
      "stochastic-rounding updates).";
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
    if (w.not_fp32 && w.master_dtype == Format::FP16) {
      const double unchanged = unchanged_fraction(w);
      if (unchanged >= opt.master_loss_report)
        out->push_back(fp16_stagnant_finding(w, unchanged, opt));
    }
    const double worst = std::max(w.bf16_stagnant, w.bf16_lost_mass);
    if (w.changed > 0 && worst >= opt.master_loss_report)
      out->push_back(weight_loss_finding(w, worst, opt));
  }
}

void optimizer_state_findings(const trace::Trace& trace, const std::vector<WeightLoss>& weights,
                              const FindingOptions& opt, std::vector<Finding>* out) {
  std::set<std::string> seen;
  for (const auto& ev : trace.events) {
    StateEvent e;
    if (!parse_state_event(ev.text, &e) || !seen.insert(e.name).second) continue;
    const WeightLoss* w = nullptr;
    for (const auto& x : weights)
      if (x.name == e.name) w = &x;
    out->push_back(state_finding(e, ev.step, w, opt));
  }
}

}  // namespace fpscope::analysis::families
