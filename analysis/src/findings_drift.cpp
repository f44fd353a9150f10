// Drift finding families: abrupt changes within the run (change points of drift_series) and
// drift against a baseline run (compare_runs).
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "findings_families.h"

namespace fpscope::analysis {

namespace {

// How strong a change is, in [0, 1] before clamping: amax by the octaves of its factor,
// SQNR by its dB (FindingOptions::change_amax_octaves, change_sqnr_db).
double amax_change_strength(double factor, const FindingOptions& opt) {
  return std::fabs(std::log2(factor)) / opt.change_amax_octaves;
}

}  // namespace

namespace families {

namespace {

std::string change_short(const ChangePoint& c) {
  if (c.series == "amax")
    return fmt::format("amax x{} ({} -> {})", fmt_num(c.after / c.before), fmt_num(c.before),
                       fmt_num(c.after));
  const std::string f = c.series.rfind("sqnr_", 0) == 0 ? c.series.substr(5) : c.series;
  return fmt::format("{} SQNR {:.1f} -> {:.1f} dB", f, c.before, c.after);
}

std::string change_text(const ChangePoint& c) {
  return fmt::format("step {}: {}", c.step, change_short(c));
}

// Strength of a change point for ranking; an amax change from or to 0 counts as full strength.
double change_strength(const ChangePoint& c, const FindingOptions& opt) {
  if (c.series == "amax")
    return c.before > 0 && c.after > 0 ? amax_change_strength(c.after / c.before, opt) : 1.0;
  return std::fabs(c.after - c.before) / opt.change_sqnr_db;
}

// SQNR change points of an FP8 format whose counts were taken unscaled are left out (unscaled
// FP8 casts say nothing about an FP8 recipe).
bool unscaled_fp8_sqnr(const ChangePoint& c, const TensorRisk* risk) {
  if (c.series == "amax") return false;
  for (int i = 0; i < kNumTargets; ++i) {
    const Format f = kTargets[i];
    if (c.series == std::string("sqnr_") + spec(f).name &&
        (f == Format::E4M3 || f == Format::E5M2) && !(risk && risk->formats[i].scaled))
      return true;
  }
  return false;
}

bool drift_finding(const trace::TraceModel& model, const RunAnalysis& a, const TensorDrift& d,
                   Finding* out) {
  const FindingOptions& opt = a.options.findings;
  const TensorRisk* risk = nullptr;
  for (const auto& r : a.risks)
    if (r.tensor == d.tensor) risk = &r;
  std::vector<const ChangePoint*> cps;
  for (const auto& c : d.change_points)
    if (!unscaled_fp8_sqnr(c, risk)) cps.push_back(&c);
  if (cps.empty()) return false;
  const ChangePoint* top = cps.front();
  for (const auto* c : cps)
    if (change_strength(*c, opt) > change_strength(*top, opt)) top = c;
  const auto& info = model.tensor(d.tensor);
  const std::string who = info.name.empty() ? d.id : fmt::format("{} ({})", d.id, info.name);
  Finding f;
  f.severity = opt.drift;
  f.score =
      level_score(f.severity, fraction_magnitude(std::min(1.0, change_strength(*top, opt)), opt));
  f.kind = FindingKind::Drift;
  f.tensor = d.tensor;
  f.tensor_id = d.id;
  f.first_step = static_cast<int64_t>(cps.front()->step);
  f.last_step = static_cast<int64_t>(cps.back()->step);
  f.title = fmt::format("{} changes abruptly at step {}: {}{}", who, top->step, change_short(*top),
                        cps.size() > 1 ? fmt::format(" ({} change points)", cps.size()) : "");
  std::string ev = fmt::format(
      "against the median of the previous {} steps (amax factor >= {}, "
      "SQNR change >= {} dB): ",
      a.options.drift.window, fmt_num(a.options.drift.amax_factor),
      fmt_num(a.options.drift.sqnr_db));
  for (size_t i = 0; i < cps.size(); ++i) {
    if (i == opt.evidence_list_max) {
      ev += fmt::format("; ... {} more", cps.size() - opt.evidence_list_max);
      break;
    }
    ev += (i ? "; " : "") + change_text(*cps[i]);
  }
  f.evidence = std::move(ev);
  f.recommendation =
      "A step change in this tensor's range or precision: check what changed at that step "
      "(learning-rate schedule, end of warm-up, a data or loss spike); if it moves the tensor "
      "toward a format's limit, the overflow/underflow findings show the consequence.";
  *out = std::move(f);
  return true;
}

}  // namespace

void drift_findings(const trace::TraceModel& model, const RunAnalysis& a,
                    std::vector<Finding>* out) {
  for (const auto& d : a.drift) {
    Finding f;
    if (drift_finding(model, a, d, &f)) out->push_back(std::move(f));
  }
}

}  // namespace families

std::vector<Finding> baseline_findings(const trace::TraceModel& base,
                                       const std::vector<CrossRunDrift>& drift,
                                       const FindingOptions& opt) {
  std::vector<Finding> out;
  for (const auto& d : drift) {
    if (d.first_step_beyond < 0) continue;
    Finding f;
    f.severity = opt.baseline_drift;
    const double r =
        d.amax_ratio > 0 && std::isfinite(d.amax_ratio) ? d.amax_ratio : opt.baseline_unknown_ratio;
    // 1e-300: log2 stays finite whatever r is.
    f.score = level_score(
        f.severity,
        fraction_magnitude(std::min(1.0, amax_change_strength(std::max(r, 1e-300), opt)), opt));
    f.kind = FindingKind::BaselineDrift;
    f.tensor = d.match.other;
    f.tensor_id = d.id;
    f.first_step = d.first_step_beyond;
    f.title = fmt::format("{} drifts from the baseline {}: {} at step {}", d.id, base.trace().path,
                          d.first_beyond_reason, d.first_step_beyond);
    std::string sq;
    for (int i = 0; i < kNumTargets; ++i) {
      if (std::isnan(d.sqnr_delta_db[i])) continue;
      sq += fmt::format("{}{} {:+.1f} dB", sq.empty() ? "" : ", ", spec(kTargets[i]).name,
                        d.sqnr_delta_db[i]);
    }
    f.evidence = fmt::format("amax {} -> {} (x{}); SQNR change: {}", fmt_num(d.base_amax),
                             fmt_num(d.other_amax), fmt_num(d.amax_ratio), sq.empty() ? "n/a" : sq);
    if (d.has_rel_diff())  // both runs recorded value sketches (docs/metrics.md)
      f.evidence += fmt::format(
          "; value difference: max {}, > 1% from step {}, > 10% from step {}",
          fmt_rel_diff(d.max_rel_diff),
          d.first_step_rel_1pct >= 0 ? fmt::format("{}", d.first_step_rel_1pct) : "-",
          d.first_step_rel_10pct >= 0 ? fmt::format("{}", d.first_step_rel_10pct) : "-");
    f.recommendation =
        "Compare the two runs' recipes for this op (dtype, loss scale, FP8 scaling); the first "
        "divergent step is where to look.";
    out.push_back(std::move(f));
  }
  rank_findings(&out);
  return out;
}

}  // namespace fpscope::analysis
