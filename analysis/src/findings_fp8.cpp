// The FP8 what-if finding family: delayed scaling replayed on the trace (whatif.h) would saturate
// or flush a tensor; one finding per (tensor, FP8 format), the worse of the two. With block
// statistics in the trace, the evidence adds the format comparison (format_choice.h) and the
// recommendation follows it; without, it names per-block scaling only as something to measure.
#include <cmath>

#include <fmt/format.h>

#include "findings_families.h"

namespace fpscope::analysis {

Severity whatif_severity(const WhatIfTensor& w, const RiskOptions& risk, int* score,
                         FindingKind* kind, const FindingOptions& opt) {
  Severity sat = Severity::None, unf = Severity::None;
  if (w.saturate_steps > 0 && w.overflow_lo > 0)
    sat = w.overflow_frac >= opt.fp8_saturation_warn ? Severity::Warning : Severity::Info;
  if (w.underflow_lo > 0 && w.underflow_frac >= risk.underflow_warn)
    unf = w.underflow_frac >= risk.underflow_error ? Severity::Warning : Severity::Info;
  const int ss =
      sat == Severity::None ? 0 : level_score(sat, fraction_magnitude(w.overflow_frac, opt));
  const int us =
      unf == Severity::None ? 0 : level_score(unf, fraction_magnitude(w.underflow_frac, opt));
  const bool s_worse = ss >= us;
  if (score) *score = s_worse ? ss : us;
  if (kind) *kind = s_worse ? FindingKind::Fp8Saturation : FindingKind::Fp8Underflow;
  return s_worse ? sat : unf;
}

namespace families {

namespace {

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

// "E4M3 delayed 0% (SQNR ~27.1 dB), ..., MXFP8 E4M3 3.1% (SQNR 23.0 dB)": the measured formats.
std::string compared_phrase(const FormatChoice& ch) {
  std::string s;
  for (int c = 0; c < kCandidateBf16; ++c) {
    const FormatResult& r = ch.result[c];
    if (!r.measured) continue;
    s += fmt::format("{}{} {} (SQNR {})", s.empty() ? "" : ", ", kFormatCandidates[c].display,
                     format_loss_str(r), format_sqnr_str(r));
  }
  return s;
}

// The worse of saturation and underflow, the other one in the evidence. `ch`: the tensor's
// format comparison (traces with block statistics), else nullptr.
bool whatif_finding(const WhatIfTensor& w, const FormatChoice* ch, const AnalysisOptions& opt,
                    Finding* out) {
  int score = 0;
  FindingKind kind = FindingKind::Fp8Saturation;
  const Severity sev = whatif_severity(w, opt.risk, &score, &kind, opt.findings);
  if (sev == Severity::None) return false;
  const char* fn = spec(w.format).name;
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
  const bool sat = kind == FindingKind::Fp8Saturation;
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
  if (ch)
    ev += fmt::format(
        ". Format comparison on its observations with block statistics (lost = flushed or "
        "saturated): {}",
        compared_phrase(*ch));
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
    if (ch)
      f.recommendation += fmt::format(" Compared with the block formats: {}.",
                                      format_choice_clause(*ch, opt.findings));
  } else if (w.format == Format::E4M3) {
    const std::string head = fmt::format(
        "The tensor's values span more than E4M3's {:.1f} octaves below the scaled amax: ",
        octaves(Format::E4M3));
    // Per-block scaling is recommended only with its measured numbers (the comparison).
    f.recommendation =
        ch ? fmt::format("{}{} (E5M2, {:.1f} octaves, is the per-tensor alternative).", head,
                         format_choice_clause(*ch, opt.findings), octaves(Format::E5M2))
           : fmt::format(
                 "{}use E5M2 for it ({:.1f} octaves) or keep it in BF16 (per-block scaling "
                 "may hold it: record with --formats blocks to measure MXFP8/NVFP4).",
                 head, octaves(Format::E5M2));
  } else {
    const std::string head = fmt::format(
        "Even {} (the wider FP8 format, {:.1f} octaves) cannot hold this tensor's range under one "
        "per-tensor scale: ",
        fn, octaves(w.format));
    f.recommendation = ch ? fmt::format("{}{}.", head, format_choice_clause(*ch, opt.findings))
                          : head +
                                "keep it in BF16 (per-block scaling may hold it: record with "
                                "--formats blocks to measure MXFP8/NVFP4).";
  }
  *out = std::move(f);
  return true;
}

}  // namespace

void whatif_findings(const std::vector<WhatIfTensor>& whatif,
                     const std::vector<FormatChoice>& choices, const AnalysisOptions& opt,
                     std::vector<Finding>* out) {
  for (const auto& w : whatif) {
    Finding f;
    if (whatif_finding(w, format_choice_of(choices, w.tensor), opt, &f))
      out->push_back(std::move(f));
  }
}

}  // namespace families
}  // namespace fpscope::analysis
