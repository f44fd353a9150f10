// Finding families from the risk rows: NaN/Inf in the data, range (overflow, underflow) and
// precision (SQNR) of each target format.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "findings_families.h"

namespace fpscope::analysis::families {

namespace {

const char* fname(Format f) {
  return spec(f).name;
}

bool is_fp8(Format f) {
  return f == Format::E4M3 || f == Format::E5M2;
}

// Unscaled FP8 casts are expected to fail (real FP8 recipes scale): the FP8 what-if judges
// them, the range and precision families do not.
bool capped(Format f, const FormatRisk& fr) {
  return is_fp8(f) && !fr.scaled;
}

// "gemm#3.D (fc1.out)", or the id alone when the tensor has no name.
std::string who(const TensorRisk& r) {
  return r.name.empty() ? r.id : fmt::format("{} ({})", r.id, r.name);
}

// "fp16 64x128 D (gemm 3 observations)": the evidence's first words.
std::string shape(const TensorRisk& r) {
  return fmt::format("{} {}x{} {} ({} {})", fname(r.dtype), r.rows, r.cols,
                     trace::role_name(r.role), r.op, plural(r.observations, "observation"));
}

Finding about(const TensorRisk& r, FindingKind kind, Format f) {
  Finding out;
  out.kind = kind;
  out.tensor = r.tensor;
  out.tensor_id = r.id;
  out.format = f;
  return out;
}

std::string scale_note(const FormatRisk& fr) {
  return fr.scaled ? " (at the trace's recorded scale)" : "";
}

Finding overflow_finding(const TensorRisk& r, Format fmt_, const FormatRisk& fr,
                         const LossScaleAnalysis& ls, const FindingOptions& opt) {
  Finding f = about(r, FindingKind::Overflow, fmt_);
  const bool loss_scaled = fmt_ == Format::FP16 && loss_scaled_overflow(r, ls, opt);
  f.severity = loss_scaled ? opt.overflow_loss_scaled : opt.overflow;
  f.score = level_score(f.severity, fraction_magnitude(fr.overflow_frac, opt));
  f.first_step = fr.first_overflow_step;
  f.last_step = static_cast<int64_t>(r.last_step);
  f.title = fmt::format("{} would overflow {} {} (amax {} > {})", fname(fmt_), who(r),
                        steps_phrase(fr.first_overflow_step, f.last_step), fmt_num(r.amax),
                        fmt_num(max_finite(fmt_)));
  f.evidence = fmt::format("{}: {} of {} nonzero elements overflow{} in {} of {}; trend {}",
                           shape(r), fr.overflow, fr.eligible, scale_note(fr), fr.overflow_steps,
                           plural(r.steps, "step"), trend_name(fr.trend));
  const bool bf16_safe = r.formats[target_index(Format::BF16)].overflow == 0;
  if (loss_scaled) {
    const double unscaled = r.amax / ls.min_scale;
    f.evidence += fmt::format(
        "; loss-scaled: amax / smallest loss scale {} = {}, so a scale at or below {} fits FP16",
        fmt_num(ls.min_scale), fmt_num(unscaled), fmt_num(max_finite(Format::FP16) / unscaled));
    f.recommendation =
        "Nothing to do while the loss scaler probes: if this GEMM ran in FP16, the scaler would "
        "back off to a scale that fits (see the evidence). Start the scaler lower to skip fewer "
        "steps.";
  } else if (fmt_ == Format::FP16) {
    f.recommendation = fmt::format(
        "{}; or lower the loss scale / scale this tensor down. E4M3 (max {}) would need "
        "per-tensor scaling.",
        bf16_safe ? "Run this op in BF16 (no BF16 overflow seen)"
                  : "Keep this op in FP32 (BF16 overflows too)",
        fmt_num(max_finite(Format::E4M3)));
  } else if (is_fp8(fmt_)) {
    f.recommendation =
        "Use per-tensor current scaling (or a larger delayed-scaling margin) for this tensor, "
        "or E5M2 for gradients.";
  } else {
    f.recommendation = "Keep this op in FP32: its values exceed the BF16 range.";
  }
  return f;
}

Finding underflow_finding(const TensorRisk& r, Format fmt_, const FormatRisk& fr,
                          const RiskOptions& risk, const FindingOptions& opt) {
  Finding f = about(r, FindingKind::Underflow, fmt_);
  f.severity = fr.underflow_frac >= risk.underflow_error ? Severity::Error : Severity::Warning;
  f.score = level_score(f.severity, fraction_magnitude(fr.underflow_frac, opt));
  f.first_step = fr.first_underflow_step;
  f.last_step = static_cast<int64_t>(r.last_step);
  f.title =
      fmt::format("{} would flush {} of {} to zero {}", fname(fmt_), fmt_pct(fr.underflow_frac),
                  who(r), steps_phrase(fr.first_underflow_step, f.last_step));
  f.evidence =
      fmt::format("{}: {} of {} nonzero elements underflow{} (below {}); {} subnormal; trend {}",
                  shape(r), fr.underflow, fr.eligible, scale_note(fr), fmt_num(min_subnormal(fmt_)),
                  fmt_pct(fr.subnormal_frac), trend_name(fr.trend));
  const bool grad = r.role == trace::Role::C || r.role == trace::Role::D;
  if (fmt_ == Format::FP16) {
    f.recommendation = grad ? "Use (or raise) dynamic loss scaling so gradients stay in the "
                              "FP16 normal range, or train in BF16 (same range as FP32)."
                            : "Use BF16 for this tensor (FP32's range) or scale it up.";
  } else if (fmt_ == Format::BF16) {
    f.recommendation =
        "Values are below BF16's (= FP32's) normal range: check for vanishing "
        "activations/gradients; keep this op in FP32.";
  } else {
    f.recommendation =
        "Raise the FP8 scale (smaller margin, most_recent amax) or use E5M2 for "
        "gradients (more range).";
  }
  return f;
}

}  // namespace

bool loss_scaled_overflow(const TensorRisk& r, const LossScaleAnalysis& ls,
                          const FindingOptions& opt) {
  return scaler_probing(ls, opt) && ls.min_scale > 1.0 &&
         static_cast<double>(r.amax) / ls.min_scale <= max_finite(Format::FP16);
}

// NaN/Inf confined to the steps the loss scaler skipped is what dynamic loss scaling expects
// when the scale overshoots (the scaler then backs off): worth a warning, not the critical
// finding of NaN/Inf that reaches the weights.
void nonfinite_findings(const std::vector<TensorRisk>& risks, const RiskOptions& risk,
                        const LossScaleAnalysis& ls, const FindingOptions& opt,
                        std::vector<Finding>* out) {
  const bool probing = scaler_probing(ls, opt);
  for (const auto& r : risks) {
    const uint64_t nonfinite = r.nan + r.pos_inf + r.neg_inf;
    if (nonfinite == 0 || is_additive_mask(r)) continue;
    const bool only_skipped = nonfinite_only_in_skipped(r, risk.skipped_steps);
    Finding f = about(r, FindingKind::Nonfinite, r.dtype);
    f.severity = !only_skipped ? opt.nonfinite
                 : probing     ? opt.nonfinite_in_probing
                               : opt.nonfinite_in_skipped;
    f.score = level_score(f.severity, fraction_magnitude(fraction(nonfinite, r.elements), opt));
    f.first_step = r.first_nonfinite_step;
    f.title = only_skipped
                  ? fmt::format("{} holds NaN/Inf in {}, all skipped by the loss scaler", who(r),
                                plural(r.nonfinite_steps.size(), "step"))
                  : fmt::format("{} holds NaN/Inf from step {}", who(r), r.first_nonfinite_step);
    f.evidence = fmt::format("{}: {} NaN, {} +Inf, {} -Inf over {} elements (amax of finite {})",
                             shape(r), r.nan, r.pos_inf, r.neg_inf, r.elements, fmt_num(r.amax));
    f.recommendation =
        only_skipped
            ? "Expected with dynamic loss scaling: the scale overshot, the scaler skipped the "
              "step and backed off. A problem only if it repeats (see the loss-scale findings)."
            : "Find the first operation that produced it (loss-scale section: first offending op "
              "per skipped step); check the inputs of that op, lower the learning rate or loss "
              "scale, or keep this op in FP32/BF16.";
    out->push_back(std::move(f));
  }
}

// An attention mask adds -Inf to the scores where attention is not allowed (softmax makes them
// 0): the same -Inf, in the same number every step, in the C operand and in the GEMM's output.
void additive_mask_findings(const std::vector<TensorRisk>& risks, const FindingOptions& opt,
                            std::vector<Finding>* out) {
  std::vector<const TensorRisk*> masks;
  for (const auto& r : risks)
    if (is_additive_mask(r) && r.mask_tensor == static_cast<int64_t>(r.tensor)) masks.push_back(&r);
  // Risk rows come sorted by score: tensor order keeps the findings' order independent of it.
  std::sort(masks.begin(), masks.end(),
            [](const TensorRisk* a, const TensorRisk* b) { return a->tensor < b->tensor; });
  for (const TensorRisk* m : masks) {
    const TensorRisk& r = *m;
    Finding f = about(r, FindingKind::AdditiveMask, r.dtype);
    f.severity = opt.additive_mask;
    f.score = level_score(f.severity, fraction_magnitude(fraction(r.neg_inf, r.elements), opt));
    f.first_step = r.first_nonfinite_step;
    f.last_step = static_cast<int64_t>(r.last_step);
    f.title = fmt::format("additive mask: {} elements at -Inf in every step of {}", r.mask_neg_inf,
                          who(r));
    std::string outputs;
    for (const auto& d : risks)
      if (d.mask_tensor == static_cast<int64_t>(r.tensor) && d.tensor != r.tensor)
        outputs += fmt::format("; output {}: {} -Inf in every step", d.id, d.mask_neg_inf);
    f.evidence = fmt::format("{}: {} -Inf in each of {}, no NaN, no +Inf (added with beta != 0){}",
                             shape(r), r.mask_neg_inf, plural(r.steps, "step"), outputs);
    f.recommendation =
        "Expected: an additive attention mask (-Inf where attention is not allowed; softmax "
        "turns them into 0). A problem only if the count changes or NaN/+Inf appear: those stay "
        "nonfinite findings.";
    out->push_back(std::move(f));
  }
}

void range_findings(const std::vector<TensorRisk>& risks, const RiskOptions& risk,
                    const LossScaleAnalysis& ls, const FindingOptions& opt,
                    std::vector<Finding>* out) {
  for (const auto& r : risks) {
    for (int i = 0; i < kNumTargets; ++i) {
      const Format fmt_ = kTargets[i];
      const FormatRisk& fr = r.formats[i];
      if (capped(fmt_, fr)) continue;
      if (fr.overflow > 0) out->push_back(overflow_finding(r, fmt_, fr, ls, opt));
      if (fr.underflow > 0 && fr.underflow_frac >= risk.underflow_warn)
        out->push_back(underflow_finding(r, fmt_, fr, risk, opt));
    }
  }
}

void precision_findings(const std::vector<TensorRisk>& risks, const RiskOptions& risk,
                        const FindingOptions& opt, std::vector<Finding>* out) {
  for (const auto& r : risks) {
    for (int i = 0; i < kNumTargets; ++i) {
      const Format fmt_ = kTargets[i];
      const FormatRisk& fr = r.formats[i];
      if (capped(fmt_, fr) || !std::isfinite(fr.sqnr_db) ||
          !(fr.sqnr_db < nominal_sqnr_db(fmt_) - risk.sqnr_margin_db))
        continue;
      const double deficit = nominal_sqnr_db(fmt_) - fr.sqnr_db;
      Finding f = about(r, FindingKind::Sqnr, fmt_);
      f.severity = opt.sqnr;
      f.score = level_score(f.severity, linear_magnitude(deficit, opt.sqnr_deficit_full_db));
      f.first_step = static_cast<int64_t>(r.first_step);
      f.last_step = static_cast<int64_t>(r.last_step);
      f.title = fmt::format(
          "{} cast of {} loses precision: SQNR {:.1f} dB ({:.1f} dB below "
          "nominal {:.1f} dB)",
          fname(fmt_), who(r), fr.sqnr_db, deficit, nominal_sqnr_db(fmt_));
      f.evidence = fmt::format(
          "{}: {} underflow, {} subnormal; SQNR change over the run "
          "{:+.1f} dB (trend {})",
          shape(r), fmt_pct(fr.underflow_frac), fmt_pct(fr.subnormal_frac), fr.sqnr_delta_db,
          trend_name(fr.trend));
      f.recommendation =
          "Most of the error comes from values near the bottom of the range: scale the tensor "
          "up (loss scale / per-tensor scale) or use a format with more range.";
      out->push_back(std::move(f));
    }
  }
}

}  // namespace fpscope::analysis::families
