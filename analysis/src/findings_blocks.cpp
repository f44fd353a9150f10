// The block-scaled format finding family (issue 19): for each tensor whose observations carry
// block statistics (trace format 1.3, recorded only when FPSCOPE_FORMATS names block formats),
// one BlockLoss finding when a measured block format (MXFP8 E4M3/E5M2, MXFP6 E3M2/E2M3, MXFP4,
// NVFP4) flushes or saturates at least FindingOptions::block_loss_info of the tensor's elements
// inside their blocks. The finding names the widest such format (most element bits), compares it
// with per-tensor E4M3 on the same observations, and recommends the cheapest measured block
// format that holds the tensor (format_choice.h's rule and cost order; docs/metrics.md
// "Block-scaled formats": findings).
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "block_totals.h"
#include "findings_families.h"

namespace fpscope::analysis::families {

namespace {

using detail::block_format_display_name;
using detail::block_loss_frac;
using detail::block_sqnr_db;
using detail::BlockTotals;

// Per-tensor E4M3 (the trace's own counts, at the scales it recorded them) over the observations
// of one tensor that carry a block section.
struct E4m3Same {
  uint64_t finite = 0;
  uint64_t underflow = 0;
  uint64_t overflow = 0;
  double sum_sq = 0.0;
  double err2 = 0.0;
  bool scaled = false;
};

std::vector<E4m3Same> e4m3_same(const trace::Trace& t) {
  std::vector<E4m3Same> out(t.tensors.size());
  const int e4 = target_index(Format::E4M3);
  for (const trace::BlockStatsRecord& b : t.block_stats) {
    if (b.observation >= t.observations.size()) continue;
    const trace::ObservationRecord& o = t.observations[b.observation];
    if (o.tensor >= out.size()) continue;
    E4m3Same& x = out[o.tensor];
    x.finite += o.stats.finite_count();
    x.underflow += o.stats.fmt[e4].underflow;
    x.overflow += o.stats.fmt[e4].overflow;
    x.sum_sq += o.stats.sum_sq;
    x.err2 += o.stats.fmt[e4].sum_err2;
    x.scaled |= o.stats.fmt[e4].scale != 1.0f;
  }
  return out;
}

// False only when the trace's metadata lists the probe's per-tensor formats (config.formats) and
// E4M3 is not among them: its counts are then zeros, not measurements.
bool e4m3_measured(const RunMeta& m) {
  return !m.formats_known ||
         std::find(m.formats.begin(), m.formats.end(), spec(Format::E4M3).name) != m.formats.end();
}

// The element format's nominal SQNR (common.h's rule).
double element_nominal_db(int f) {
  return nominal_sqnr_db_bits(kBlockFormats[f]->man_bits);
}

// format_choice.h's rule, the same as the FP8 what-if's format comparison.
bool holds(const BlockFormatCounts& c, int f, const FindingOptions& opt) {
  if (c.elements == 0) return false;
  return format_holds(block_loss_frac(c), block_sqnr_db(c), element_nominal_db(f), opt);
}

// "3.1% (SQNR 27.4 dB)" of one format.
std::string loss_phrase(const BlockFormatCounts& c) {
  return fmt::format("{} (SQNR {})", fmt_pct(block_loss_frac(c)), fmt_sqnr(block_sqnr_db(c)));
}

const WhatIfTensor* whatif_e4m3(const std::vector<WhatIfTensor>& w, uint32_t tensor) {
  for (const auto& x : w)
    if (x.tensor == tensor && x.format == Format::E4M3) return &x;
  return nullptr;
}

bool block_finding(const BlockTotals& x, const E4m3Same& e, uint32_t ti, const std::string& id,
                   const RunAnalysis& a, bool e4m3_known, Finding* out) {
  const FindingOptions& opt = a.options.findings;
  // The widest (most element bits) measured format that loses at least block_loss_info; ties:
  // the larger loss, then kBlockFormats order.
  int named = -1;
  for (int f = 0; f < kNumBlockFormats; ++f) {
    const BlockFormatCounts& c = x.fmt[f];
    if (!(x.mask >> f & 1u) || c.elements == 0 || block_loss_frac(c) < opt.block_loss_info)
      continue;
    if (named < 0) {
      named = f;
      continue;
    }
    const int bits = storage_bits(*kBlockFormats[f]);
    const int named_bits = storage_bits(*kBlockFormats[named]);
    if (bits > named_bits ||
        (bits == named_bits && block_loss_frac(c) > block_loss_frac(x.fmt[named])))
      named = f;
  }
  if (named < 0) return false;
  // The cheapest measured block format that holds the tensor, in the one cost order
  // (kFormatCandidates: bits per element with the scale).
  int cheapest = -1;
  for (const FormatCandidate& k : kFormatCandidates) {
    const int f = k.block_format;
    if (f >= 0 && (x.mask >> f & 1u) && holds(x.fmt[f], f, opt)) {
      cheapest = f;
      break;
    }
  }

  const BlockFormatCounts& c = x.fmt[named];
  const std::string name = block_format_display_name(named);
  const double loss = block_loss_frac(c);
  const double ff = fraction(c.flushed, c.elements);
  const double sf = fraction(c.saturated, c.elements);
  Finding f;
  f.severity = loss >= opt.block_loss_warn ? Severity::Warning : Severity::Info;
  f.score = level_score(f.severity, fraction_magnitude(loss, opt));
  f.kind = FindingKind::BlockLoss;
  f.tensor = ti;
  f.tensor_id = id;
  f.first_step = x.first_loss_step[named];
  f.last_step = x.last_loss_step[named];
  if (c.saturated == 0)
    f.title =
        fmt::format("{} would flush {} of {} to zero inside its blocks", name, fmt_pct(ff), id);
  else if (c.flushed == 0)
    f.title = fmt::format("{} would saturate {} of {} inside its blocks", name, fmt_pct(sf), id);
  else
    f.title = fmt::format("{} would flush {} of {} to zero and saturate {} inside its blocks", name,
                          fmt_pct(ff), id, fmt_pct(sf));

  const char* axis = x.axis == 0 ? "rows" : x.axis == 1 ? "cols" : "both axes";
  std::string ev = fmt::format("{} with block statistics (blocks along {}",
                               plural(x.observations, "observation"), axis);
  const std::string steps = steps_phrase(f.first_step, f.last_step);
  ev += steps.empty() ? ")" : fmt::format("; losses {})", steps);
  ev += fmt::format(
      ": {} of {} elements flushed, {} saturated; SQNR {} (nominal of its elements "
      "{:.1f} dB); {} of {} blocks all zero, {} with a scale underflow, {} with a "
      "scale overflow",
      c.flushed, c.elements, c.saturated, fmt_sqnr(block_sqnr_db(c)), element_nominal_db(named),
      c.zero_blocks, c.blocks, c.scale_underflow, c.scale_overflow);
  if (c.nan_scale > 0) ev += fmt::format(", {} holding NaN/Inf (not counted)", c.nan_scale);
  if (!e4m3_known) {
    ev += ". Per-tensor E4M3: not measured (FPSCOPE_FORMATS)";
  } else {
    ev += fmt::format(
        ". Per-tensor E4M3 on the same observations ({}): flushes {}, overflows {}, SQNR {}",
        e.scaled ? "at the recorded scales" : "unscaled", fmt_pct(fraction(e.underflow, e.finite)),
        fmt_pct(fraction(e.overflow, e.finite)), fmt_sqnr(sqnr_db(e.sum_sq, e.err2, e.overflow)));
  }
  if (const WhatIfTensor* w = whatif_e4m3(a.whatif, ti))
    ev += fmt::format("; with delayed scaling (the FP8 what-if) flushes {}, saturates {}",
                      fmt_pct(w->underflow_frac), fmt_pct(w->overflow_frac));
  std::string others;
  for (int g = 0; g < kNumBlockFormats; ++g)
    if (g != named && (x.mask >> g & 1u) && x.fmt[g].elements > 0)
      others += fmt::format("{}{} {}", others.empty() ? "" : ", ", block_format_display_name(g),
                            loss_phrase(x.fmt[g]));
  if (!others.empty()) ev += ". Other block formats lose (flushed + saturated): " + others;
  f.evidence = std::move(ev);

  if (cheapest >= 0) {
    f.recommendation = fmt::format(
        "If this tensor is to be block-scaled, use {}: the cheapest measured block format that "
        "holds it ({} flushed or saturated, SQNR {}, {} bits per element).",
        block_format_display_name(cheapest), fmt_pct(block_loss_frac(x.fmt[cheapest])),
        fmt_sqnr(block_sqnr_db(x.fmt[cheapest])), bits_per_element(*kBlockFormats[cheapest]));
  } else {
    f.recommendation = fmt::format(
        "No measured block format holds this tensor (each loses more than {} of its elements, "
        "or its SQNR is more than {:.0f} dB below its elements' nominal): keep it in BF16 "
        "(or per-tensor FP8 if its numbers above are better){}.",
        fmt_pct(opt.format_hold_loss), opt.block_hold_sqnr_margin_db,
        x.mask == kAllBlockFormats ? ""
                                   : ", or measure the other block formats "
                                     "(FPSCOPE_FORMATS=blocks)");
  }
  *out = std::move(f);
  return true;
}

}  // namespace

void block_findings(const trace::TraceModel& model, const RunAnalysis& a,
                    std::vector<Finding>* out) {
  const trace::Trace& t = model.trace();
  const std::vector<BlockTotals> xs = detail::block_totals(t);
  if (xs.empty()) return;
  const std::vector<E4m3Same> es = e4m3_same(t);
  const bool e4m3_known = e4m3_measured(a.meta);
  for (uint32_t ti = 0; ti < xs.size(); ++ti) {
    if (xs[ti].observations == 0) continue;
    Finding f;
    if (block_finding(xs[ti], es[ti], ti, model.tensor(ti).id, a, e4m3_known, &f))
      out->push_back(std::move(f));
  }
}

}  // namespace fpscope::analysis::families
