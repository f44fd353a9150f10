#include "fpscope/analysis/findings.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

namespace fpscope::analysis {

namespace {

int log_mag(double f) {
  if (!(f > 0.0)) return 0;
  const double m = (std::log10(f) + 7.0) / 7.0 * 999.0;
  return static_cast<int>(std::clamp(std::lround(m), 1L, 999L));
}

const char* fname(Format f) {
  return spec(f).name;
}

std::string steps_phrase(int64_t first, int64_t last) {
  if (first < 0) return "";
  if (first == last || last < 0) return fmt::format("at step {}", first);
  return fmt::format("from step {}", first);
}

// opt.skipped_steps: the steps the loss scaler skipped, sorted. NaN/Inf confined to them is
// what dynamic loss scaling expects when the scale overshoots (the scaler then backs off):
// worth a warning, not the critical finding of NaN/Inf that reaches the weights.
void risk_findings(const TensorRisk& r, const RiskOptions& opt, std::vector<Finding>* out) {
  const std::string who = r.name.empty() ? r.id : fmt::format("{} ({})", r.id, r.name);
  const std::string shape =
      fmt::format("{} {}x{} {} ({} {})", fname(r.dtype), r.rows, r.cols, trace::role_name(r.role),
                  r.op, plural(r.observations, "observation"));
  const uint64_t nonfinite = r.nan + r.pos_inf + r.neg_inf;
  if (nonfinite > 0) {
    const bool only_skipped = nonfinite_only_in_skipped(r, opt.skipped_steps);
    Finding f;
    f.severity = only_skipped ? Severity::Warning : Severity::Critical;
    f.score = (only_skipped ? 2000 : 4000) + log_mag(fraction(nonfinite, r.elements));
    f.kind = "nonfinite";
    f.tensor = r.tensor;
    f.tensor_id = r.id;
    f.format = r.dtype;
    f.first_step = r.first_nonfinite_step;
    f.title = only_skipped
                  ? fmt::format("{} holds NaN/Inf in {}, all skipped by the loss scaler", who,
                                plural(r.nonfinite_steps.size(), "step"))
                  : fmt::format("{} holds NaN/Inf from step {}", who, r.first_nonfinite_step);
    f.evidence = fmt::format("{}: {} NaN, {} +Inf, {} -Inf over {} elements (amax of finite {})",
                             shape, r.nan, r.pos_inf, r.neg_inf, r.elements, fmt_num(r.amax));
    f.recommendation =
        only_skipped
            ? "Expected with dynamic loss scaling: the scale overshot, the scaler skipped the "
              "step and backed off. A problem only if it repeats (see the loss-scale findings)."
            : "Find the first operation that produced it (loss-scale section: first offending op "
              "per skipped step); check the inputs of that op, lower the learning rate or loss "
              "scale, or keep this op in FP32/BF16.";
    out->push_back(std::move(f));
  }
  const int ibf16 = target_index(Format::BF16);
  for (int i = 0; i < kNumTargets; ++i) {
    const FormatRisk& fr = r.formats[i];
    const Format fmt_ = kTargets[i];
    const bool fp8 = fmt_ == Format::E4M3 || fmt_ == Format::E5M2;
    const bool capped = fp8 && !fr.scaled;
    const std::string scale_note = fr.scaled ? " (at the trace's recorded scale)" : "";
    if (fr.overflow > 0 && !capped) {
      Finding f;
      f.severity = Severity::Error;
      f.score = 3000 + log_mag(fr.overflow_frac);
      f.kind = "overflow";
      f.tensor = r.tensor;
      f.tensor_id = r.id;
      f.format = fmt_;
      f.first_step = fr.first_overflow_step;
      f.last_step = static_cast<int64_t>(r.last_step);
      f.title = fmt::format("{} would overflow {} {} (amax {} > {})", fname(fmt_), who,
                            steps_phrase(fr.first_overflow_step, f.last_step), fmt_num(r.amax),
                            fmt_num(max_finite(fmt_)));
      f.evidence = fmt::format("{}: {} of {} nonzero elements overflow{} in {} of {}; trend {}",
                               shape, fr.overflow, fr.eligible, scale_note, fr.overflow_steps,
                               plural(r.steps, "step"), trend_name(fr.trend));
      const bool bf16_safe = r.formats[ibf16].overflow == 0;
      if (fmt_ == Format::FP16) {
        f.recommendation = fmt::format(
            "{}; or lower the loss scale / scale this tensor down. E4M3 (max {}) would need "
            "per-tensor scaling.",
            bf16_safe ? "Run this op in BF16 (no BF16 overflow seen)"
                      : "Keep this op in FP32 (BF16 overflows too)",
            fmt_num(max_finite(Format::E4M3)));
      } else if (fp8) {
        f.recommendation =
            "Use per-tensor current scaling (or a larger delayed-scaling margin) for this tensor, "
            "or E5M2 for gradients.";
      } else {
        f.recommendation = "Keep this op in FP32: its values exceed the BF16 range.";
      }
      out->push_back(std::move(f));
    }
    if (fr.underflow > 0 && fr.underflow_frac >= opt.underflow_warn && !capped) {
      Finding f;
      f.severity = fr.underflow_frac >= opt.underflow_error ? Severity::Error : Severity::Warning;
      f.score = static_cast<int>(f.severity) * 1000 + log_mag(fr.underflow_frac);
      f.kind = "underflow";
      f.tensor = r.tensor;
      f.tensor_id = r.id;
      f.format = fmt_;
      f.first_step = fr.first_underflow_step;
      f.last_step = static_cast<int64_t>(r.last_step);
      f.title =
          fmt::format("{} would flush {} of {} to zero {}", fname(fmt_), fmt_pct(fr.underflow_frac),
                      who, steps_phrase(fr.first_underflow_step, f.last_step));
      f.evidence = fmt::format(
          "{}: {} of {} nonzero elements underflow{} (below {}); {} subnormal; trend {}", shape,
          fr.underflow, fr.eligible, scale_note, fmt_num(min_subnormal(fmt_)),
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
      out->push_back(std::move(f));
    }
    if (!capped && std::isfinite(fr.sqnr_db) &&
        fr.sqnr_db < nominal_sqnr_db(fmt_) - opt.sqnr_margin_db) {
      const double deficit = nominal_sqnr_db(fmt_) - fr.sqnr_db;
      Finding f;
      f.severity = Severity::Warning;
      f.score = 2000 + static_cast<int>(std::clamp(std::lround(deficit / 60.0 * 999.0), 1L, 999L));
      f.kind = "sqnr";
      f.tensor = r.tensor;
      f.tensor_id = r.id;
      f.format = fmt_;
      f.first_step = static_cast<int64_t>(r.first_step);
      f.last_step = static_cast<int64_t>(r.last_step);
      f.title = fmt::format(
          "{} cast of {} loses precision: SQNR {:.1f} dB ({:.1f} dB below "
          "nominal {:.1f} dB)",
          fname(fmt_), who, fr.sqnr_db, deficit, nominal_sqnr_db(fmt_));
      f.evidence = fmt::format(
          "{}: {} underflow, {} subnormal; SQNR change over the run "
          "{:+.1f} dB (trend {})",
          shape, fmt_pct(fr.underflow_frac), fmt_pct(fr.subnormal_frac), fr.sqnr_delta_db,
          trend_name(fr.trend));
      f.recommendation =
          "Most of the error comes from values near the bottom of the range: scale the tensor "
          "up (loss scale / per-tensor scale) or use a format with more range.";
      out->push_back(std::move(f));
    }
  }
}

std::string source_phrase(const WhatIfTensor& w) {
  if (w.histogram_steps == 0) return "exact counts";
  if (w.exact_steps == 0) return "from the exponent histogram";
  return fmt::format("exact at {}, from the exponent histogram at {}",
                     plural(w.exact_steps, "step"), w.histogram_steps);
}

// log2 of a format's dynamic range: max finite over min subnormal (E4M3 ~17.8, E5M2 ~31.8).
double octaves(Format f) {
  return std::log2(static_cast<double>(max_finite(f)) / static_cast<double>(min_subnormal(f)));
}

}  // namespace

Severity whatif_severity(const WhatIfTensor& w, const RiskOptions& risk, int* score,
                         std::string* kind) {
  Severity sat = Severity::None, unf = Severity::None;
  if (w.saturate_steps > 0 && w.overflow_lo > 0)
    sat = w.overflow_frac >= 1e-3 ? Severity::Warning : Severity::Info;
  if (w.underflow_lo > 0 && w.underflow_frac >= risk.underflow_warn)
    unf = w.underflow_frac >= risk.underflow_error ? Severity::Warning : Severity::Info;
  const int ss =
      sat == Severity::None ? 0 : static_cast<int>(sat) * 1000 + log_mag(w.overflow_frac);
  const int us =
      unf == Severity::None ? 0 : static_cast<int>(unf) * 1000 + log_mag(w.underflow_frac);
  const bool s_worse = ss >= us;
  if (score) *score = s_worse ? ss : us;
  if (kind) *kind = s_worse ? "fp8_saturation" : "fp8_underflow";
  return s_worse ? sat : unf;
}

namespace {

// One finding per (tensor, FP8 format): the worse of saturation and underflow, the other one in
// the evidence.
bool whatif_finding(const WhatIfTensor& w, const AnalysisOptions& opt, Finding* out) {
  int score = 0;
  std::string kind;
  const Severity sev = whatif_severity(w, opt.risk, &score, &kind);
  if (sev == Severity::None) return false;
  const char* fn = fname(w.format);
  const uint64_t replayed = w.steps.size();
  Finding f;
  f.severity = sev;
  f.score = score;
  f.kind = kind;
  f.tensor = w.tensor;
  f.tensor_id = w.id;
  f.format = w.format;
  const std::string policy = fmt::format("history {}, margin {}, {}", opt.whatif.history_len,
                                         opt.whatif.margin, amax_algo_name(opt.whatif.algo));
  const bool sat = kind == "fp8_saturation";
  if (sat) {
    f.first_step = w.first_saturate_step;
    f.title =
        fmt::format("{} with delayed scaling would saturate {} of {} in {} of {} from step {}", fn,
                    fmt_pct(w.overflow_frac), w.id, w.saturate_steps,
                    plural(replayed, "replayed step"), w.first_saturate_step);
  } else {
    f.first_step = w.first_underflow_step;
    f.title = fmt::format("{} with delayed scaling would flush {} of {} to zero ({} of {})", fn,
                          fmt_pct(w.underflow_frac), w.id, w.underflow_steps,
                          plural(replayed, "replayed step"));
  }
  std::string ev =
      fmt::format("delayed scaling ({}); {} replayed", policy, plural(replayed, "step"));
  if (w.seed_steps > 0)
    ev += fmt::format(" (the first observed step {} only seeds the amax history{})",
                      w.first_seed_step,
                      w.seed_steps > 1 ? fmt::format(", {} seed steps in all", w.seed_steps) : "");
  ev += fmt::format("; counts {}", source_phrase(w));
  if (w.overflow_hi == 0)
    ev += fmt::format("; no overflow in {} elements", w.eligible);
  else
    ev += fmt::format("; overflow {} of {} elements", fmt_bounds(w.overflow_lo, w.overflow_hi),
                      w.eligible);
  if (w.worst_step >= 0)
    ev +=
        fmt::format(" (worst step {}: {} of its elements, amax {} at scale {})", w.worst_step,
                    fmt_pct(w.worst_overflow_frac), fmt_num(w.worst_amax), fmt_num(w.worst_scale));
  if (w.underflow_hi == 0)
    ev += "; no underflow";
  else
    ev += fmt::format("; underflow {} ({}) in {}", fmt_bounds(w.underflow_lo, w.underflow_hi),
                      fmt_pct(w.underflow_frac), plural(w.underflow_steps, "step"));
  f.evidence = std::move(ev);
  if (sat) {
    f.recommendation = fmt::format(
        "The amax grows faster than the history follows: use current (per-tensor, just-in-time) "
        "scaling for this tensor, a margin of 1-2, or a shorter history / most_recent "
        "(--fp8-margin, --fp8-history, --fp8-amax replay those){}.",
        w.format == Format::E4M3
            ? fmt::format("; or E5M2 (max {}, {:.0f}x the headroom, one mantissa bit fewer)",
                          fmt_num(max_finite(Format::E5M2)),
                          static_cast<double>(max_finite(Format::E5M2) / max_finite(Format::E4M3)))
            : "");
  } else if (w.format == Format::E4M3) {
    f.recommendation = fmt::format(
        "The tensor's values span more than E4M3's {:.1f} octaves below the scaled amax: use E5M2 "
        "for it ({:.1f} octaves), per-block (MXFP8) scaling, or keep it in BF16.",
        octaves(Format::E4M3), octaves(Format::E5M2));
  } else {
    f.recommendation = fmt::format(
        "Even {} (the wider FP8 format, {:.1f} octaves) cannot hold this tensor's range under one "
        "per-tensor scale: use per-block (MXFP8) scaling or keep it in BF16.",
        fn, octaves(w.format));
  }
  *out = std::move(f);
  return true;
}

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

// Strength of a change point for ranking: log2 of the amax factor / 20, SQNR change / 60 dB.
double change_strength(const ChangePoint& c) {
  if (c.series == "amax")
    return c.before > 0 && c.after > 0 ? std::fabs(std::log2(c.after / c.before)) / 20.0 : 1.0;
  return std::fabs(c.after - c.before) / 60.0;
}

// One finding per tensor with change points. SQNR change points of an FP8 format whose counts
// were taken unscaled are left out (unscaled FP8 casts say nothing about an FP8 recipe).
bool drift_finding(const trace::TraceModel& model, const RunAnalysis& a, const TensorDrift& d,
                   Finding* out) {
  const TensorRisk* risk = nullptr;
  for (const auto& r : a.risks)
    if (r.tensor == d.tensor) risk = &r;
  std::vector<const ChangePoint*> cps;
  for (const auto& c : d.change_points) {
    if (c.series != "amax") {
      bool skip = false;
      for (int i = 0; i < kNumTargets; ++i) {
        const Format f = kTargets[i];
        if (c.series == std::string("sqnr_") + fname(f) &&
            (f == Format::E4M3 || f == Format::E5M2) && !(risk && risk->formats[i].scaled))
          skip = true;
      }
      if (skip) continue;
    }
    cps.push_back(&c);
  }
  if (cps.empty()) return false;
  const ChangePoint* top = cps.front();
  for (const auto* c : cps)
    if (change_strength(*c) > change_strength(*top)) top = c;
  const auto& info = model.tensor(d.tensor);
  const std::string who = info.name.empty() ? d.id : fmt::format("{} ({})", d.id, info.name);
  Finding f;
  f.severity = Severity::Info;
  f.score = 1000 + log_mag(std::min(1.0, change_strength(*top)));
  f.kind = "drift";
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
    if (i == 5) {
      ev += fmt::format("; ... {} more", cps.size() - 5);
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

void rank_findings(std::vector<Finding>* findings) {
  std::stable_sort(findings->begin(), findings->end(), [](const Finding& a, const Finding& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.kind != b.kind) return a.kind < b.kind;
    if (a.tensor_id != b.tensor_id) return a.tensor_id < b.tensor_id;
    return a.first_step < b.first_step;
  });
}

RunAnalysis analyze(const trace::TraceModel& model, const AnalysisOptions& opt,
                    const ProgressFn& progress) {
  const auto& trace = model.trace();
  auto report = [&](double f) {
    if (progress) progress(f);
  };
  RunAnalysis a;
  a.options = opt;
  a.meta = parse_run_meta(trace.metadata_json);
  report(0.0);
  a.loss_scale = analyze_loss_scale(model, opt.loss_scale);
  RiskOptions risk_opt = opt.risk;
  for (const auto& sk : a.loss_scale.skipped) risk_opt.skipped_steps.push_back(sk.step);
  std::sort(risk_opt.skipped_steps.begin(), risk_opt.skipped_steps.end());
  a.risks = analyze_risk(model, risk_opt);
  report(0.2);
  a.weights = analyze_weights(trace);
  report(0.25);
  if (opt.run_whatif)
    a.whatif = fp8_whatif(model, opt.whatif, [&](double f) { report(0.25 + 0.45 * f); });
  report(0.7);
  if (opt.run_drift) {
    const uint32_t nt = model.num_tensors();
    for (uint32_t ti = 0; ti < nt; ++ti) {
      if (model.series(ti).empty()) continue;
      auto d = drift_series(model, ti, opt.drift);
      if (!d.change_points.empty())
        a.drift.push_back({ti, model.tensor(ti).id, std::move(d.change_points)});
      if (ti % 16 == 15) report(0.7 + 0.25 * (ti + 1) / nt);
    }
  }
  report(0.95);

  std::set<uint64_t> steps(model.steps().begin(), model.steps().end());
  a.sampled_steps = steps.size();
  for (const auto& r : trace.loss_scales) steps.insert(r.step);
  {
    std::set<uint64_t> run = steps;
    for (const auto& m : trace.steps) run.insert(m.step);
    a.run_steps = run.size();
    if (!run.empty()) {
      a.run_first_step = *run.begin();
      a.run_last_step = *run.rbegin();
    }
  }
  std::vector<uint64_t> seqs;
  seqs.reserve(trace.observations.size());
  for (const auto& o : trace.observations) seqs.push_back(o.seq);
  std::sort(seqs.begin(), seqs.end());
  a.gemm_calls = static_cast<uint64_t>(std::unique(seqs.begin(), seqs.end()) - seqs.begin());
  a.steps = steps.size();
  if (!steps.empty()) {
    a.first_step = *steps.begin();
    a.last_step = *steps.rbegin();
  }

  const auto& ls = a.loss_scale;
  for (const auto& r : a.risks) risk_findings(r, risk_opt, &a.findings);

  if (ls.collapsed) {
    Finding f;
    f.severity = Severity::Error;
    f.score = 3900;
    f.kind = "loss_scale_collapse";
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
    a.findings.push_back(std::move(f));
  }
  if (!ls.skipped.empty()) {
    const double frac = fraction(ls.skipped.size(), ls.series.size());
    Finding f;
    f.severity = frac >= 0.01 ? Severity::Warning : Severity::Info;
    f.score = static_cast<int>(f.severity) * 1000 + log_mag(frac);
    f.kind = "skipped_steps";
    f.first_step = static_cast<int64_t>(ls.skipped.front().step);
    f.last_step = static_cast<int64_t>(ls.skipped.back().step);
    f.title = fmt::format("{} optimizer steps skipped for Inf/NaN gradients ({} of steps)",
                          ls.skipped.size(), fmt_pct(frac));
    std::string ev;
    size_t shown = 0;
    for (const auto& s : ls.skipped) {
      if (shown++ == 5) {
        ev += fmt::format("; ... {} more", ls.skipped.size() - 5);
        break;
      }
      if (!ev.empty()) ev += "; ";
      ev += s.offender_tensor >= 0
                ? fmt::format("step {} (scale {}): first {} in {} (seq {})", s.step,
                              fmt_num(s.scale), s.reason, s.offender_id, s.offender_seq)
                : fmt::format("step {} (scale {}): no offending op recorded", s.step,
                              fmt_num(s.scale));
    }
    f.evidence = ev;
    f.recommendation =
        "A few skipped steps are how dynamic loss scaling probes; many mean the scale is too "
        "high or an op overflows FP16: keep the first offending op in FP32/BF16.";
    a.findings.push_back(std::move(f));
  }

  for (const auto& w : a.weights) {
    if (w.not_fp32) {
      Finding f;
      f.severity = Severity::Error;
      f.score = 3000 + log_mag(std::max(w.bf16_stagnant, w.fp16_stagnant));
      f.kind = "master_not_fp32";
      f.tensor = w.tensor;
      f.tensor_id = w.name;
      f.format = w.master_dtype;
      f.first_step = w.series.empty() ? -1 : static_cast<int64_t>(w.series.front().step);
      f.title = fmt::format("Master weights of {} are {}, not FP32", w.name, fname(w.master_dtype));
      f.evidence = fmt::format(
          "{} updates; BF16 would leave {} of updates stagnant, lose {} of "
          "update mass",
          w.updates, fmt_pct(w.bf16_stagnant), fmt_pct(w.bf16_lost_mass));
      f.recommendation =
          "Keep FP32 master weights (optimizer state) and cast to BF16/FP16 only for compute.";
      a.findings.push_back(std::move(f));
    }
    const double worst = std::max(w.bf16_stagnant, w.bf16_lost_mass);
    if (w.changed > 0 && worst >= 0.01) {
      Finding f;
      f.severity =
          (w.bf16_stagnant >= 0.5 || w.bf16_lost_mass >= 0.1) ? Severity::Warning : Severity::Info;
      f.score = static_cast<int>(f.severity) * 1000 + log_mag(worst);
      f.kind = "master_weight_loss";
      f.tensor = w.tensor;
      f.tensor_id = w.name;
      f.format = Format::BF16;
      f.first_step = w.series.empty() ? -1 : static_cast<int64_t>(w.series.front().step);
      f.title = fmt::format(
          "BF16 master weights would lose {} of {}'s update mass ({} of "
          "updates stagnant)",
          fmt_pct(w.bf16_lost_mass), w.name, fmt_pct(w.bf16_stagnant));
      f.evidence = fmt::format(
          "{} updates, {} changed elements; FP16: {} stagnant, {} lost; {} "
          "of updates below half a BF16 ulp",
          w.updates, w.changed, fmt_pct(w.fp16_stagnant), fmt_pct(w.fp16_lost_mass),
          fmt_pct(w.below_bf16_half_ulp));
      f.recommendation =
          "Keep master weights in FP32 (or use stochastic rounding / Kahan-compensated BF16 "
          "updates) if you plan low-precision optimizer state.";
      a.findings.push_back(std::move(f));
    }
  }

  for (const auto& w : a.whatif) {
    Finding f;
    if (whatif_finding(w, opt, &f)) a.findings.push_back(std::move(f));
  }
  for (const auto& d : a.drift) {
    Finding f;
    if (drift_finding(model, a, d, &f)) a.findings.push_back(std::move(f));
  }
  rank_findings(&a.findings);
  report(1.0);
  return a;
}

std::vector<Finding> baseline_findings(const trace::TraceModel& base, const trace::TraceModel& run,
                                       const std::vector<CrossRunDrift>& drift) {
  (void)run;
  std::vector<Finding> out;
  for (const auto& d : drift) {
    if (d.first_step_beyond < 0) continue;
    Finding f;
    f.severity = Severity::Warning;
    const double r = d.amax_ratio > 0 && std::isfinite(d.amax_ratio) ? d.amax_ratio : 1e7;
    f.score = 2000 + log_mag(std::min(1.0, std::fabs(std::log2(std::max(r, 1e-300))) / 20.0));
    f.kind = "baseline_drift";
    f.tensor = d.match.other;
    f.tensor_id = d.id;
    f.first_step = d.first_step_beyond;
    f.title = fmt::format("{} drifts from the baseline {}: {} at step {}", d.id, base.trace().path,
                          d.first_beyond_reason, d.first_step_beyond);
    std::string sq;
    for (int i = 0; i < kNumTargets; ++i) {
      if (std::isnan(d.sqnr_delta_db[i])) continue;
      sq += fmt::format("{}{} {:+.1f} dB", sq.empty() ? "" : ", ", fname(kTargets[i]),
                        d.sqnr_delta_db[i]);
    }
    f.evidence = fmt::format("amax {} -> {} (x{}); SQNR change: {}", fmt_num(d.base_amax),
                             fmt_num(d.other_amax), fmt_num(d.amax_ratio), sq.empty() ? "n/a" : sq);
    f.recommendation =
        "Compare the two runs' recipes for this op (dtype, loss scale, FP8 scaling); the first "
        "divergent step is where to look.";
    out.push_back(std::move(f));
  }
  rank_findings(&out);
  return out;
}

void add_baseline_findings(const trace::TraceModel& base, const trace::TraceModel& run,
                           RunAnalysis* a) {
  const auto drift = compare_runs(base, run, a->options.cross);
  auto bf = baseline_findings(base, run, drift);
  a->findings.insert(a->findings.end(), std::make_move_iterator(bf.begin()),
                     std::make_move_iterator(bf.end()));
  rank_findings(&a->findings);
}

}  // namespace fpscope::analysis
