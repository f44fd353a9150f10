// The block-scaled format finding family (issue 19): for each tensor whose observations carry
// block statistics (trace format 1.3, recorded only when FPSCOPE_FORMATS names block formats),
// one BlockLoss finding when a measured block format (MXFP8 E4M3/E5M2, MXFP6 E3M2/E2M3, MXFP4,
// NVFP4) flushes or saturates at least FindingOptions::block_loss_info of the tensor's elements
// inside their blocks. The finding names the widest such format (most element bits), compares it
// with per-tensor E4M3 on the same observations, and recommends the cheapest measured block
// format that holds the tensor (docs/metrics.md "Block-scaled formats": findings).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "findings_families.h"

namespace fpscope::analysis::families {

namespace {

// One tensor's block statistics summed over its observations that carry a block section, and
// per-tensor E4M3 over the same observations.
struct BlockTensor {
  uint64_t observations = 0;
  uint32_t mask = 0;
  int axis = -1;  // -1 none yet, 0 rows, 1 cols, 2 mixed
  BlockFormatCounts fmt[kNumBlockFormats];
  int64_t first_loss_step[kNumBlockFormats];  // first step with flushed + saturated > 0, or -1
  int64_t last_loss_step[kNumBlockFormats];
  // Per-tensor E4M3 (the trace's own counts, at the scales it recorded them).
  uint64_t finite = 0;
  uint64_t e4m3_underflow = 0;
  uint64_t e4m3_overflow = 0;
  double sum_sq = 0.0;
  double e4m3_err2 = 0.0;
  bool e4m3_scaled = false;
  BlockTensor() {
    for (int f = 0; f < kNumBlockFormats; ++f) first_loss_step[f] = last_loss_step[f] = -1;
  }
};

std::vector<BlockTensor> block_tensors(const trace::Trace& t) {
  std::vector<BlockTensor> out;
  if (t.block_stats.empty()) return out;
  out.resize(t.tensors.size());
  const int e4 = target_index(Format::E4M3);
  for (const trace::BlockStatsRecord& b : t.block_stats) {
    if (b.observation >= t.observations.size()) continue;
    const trace::ObservationRecord& o = t.observations[b.observation];
    if (o.tensor >= out.size()) continue;
    BlockTensor& x = out[o.tensor];
    ++x.observations;
    x.mask |= b.mask;
    const int axis = static_cast<int>(b.axis);
    x.axis = x.axis == -1 || x.axis == axis ? axis : 2;
    const auto step = static_cast<int64_t>(o.step);
    for (int f = 0; f < kNumBlockFormats; ++f) {
      if (!(b.mask >> f & 1u)) continue;
      const BlockFormatCounts& d = b.fmt[f];
      x.fmt[f].add(d);
      if (d.flushed + d.saturated > 0) {
        if (x.first_loss_step[f] < 0 || step < x.first_loss_step[f]) x.first_loss_step[f] = step;
        x.last_loss_step[f] = std::max(x.last_loss_step[f], step);
      }
    }
    x.finite += o.stats.finite_count();
    x.e4m3_underflow += o.stats.fmt[e4].underflow;
    x.e4m3_overflow += o.stats.fmt[e4].overflow;
    x.sum_sq += o.stats.sum_sq;
    x.e4m3_err2 += o.stats.fmt[e4].sum_err2;
    x.e4m3_scaled |= o.stats.fmt[e4].scale != 1.0f;
  }
  return out;
}

// False only when the trace's metadata lists the probe's per-tensor formats (config.formats) and
// E4M3 is not among them: its counts are then zeros, not measurements.
bool e4m3_measured(const std::string& metadata_json) {
  const auto j = nlohmann::json::parse(metadata_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return true;
  const auto c = j.find("config");
  if (c == j.end() || !c->is_object()) return true;
  const auto f = c->find("formats");
  if (f == c->end() || !f->is_array()) return true;
  for (const auto& n : *f)
    if (n.is_string() && n.get<std::string>() == spec(Format::E4M3).name) return true;
  return false;
}

// "MXFP8 E4M3" for "mxfp8_e4m3".
std::string display_name(int f) {
  std::string s = kBlockFormats[f]->name;
  for (char& ch : s)
    ch = ch == '_' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

double loss_frac(const BlockFormatCounts& c) {
  return fraction(c.flushed + c.saturated, c.elements);
}

// SQNR of the block-scaled cast: NaN with no signal, +inf when exact.
double block_sqnr(const BlockFormatCounts& c) {
  if (!(c.sum_x2 > 0.0)) return std::numeric_limits<double>::quiet_NaN();
  if (!(c.sum_err2 > 0.0)) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(c.sum_x2 / c.sum_err2);
}

// The element format's nominal SQNR (analysis/common.h nominal_sqnr_db's rule).
double element_nominal_db(int f) {
  return 6.02 * (kBlockFormats[f]->man_bits + 1) + 5.0;
}

bool holds(const BlockFormatCounts& c, int f, const FindingOptions& opt) {
  if (c.elements == 0) return false;
  const double db = block_sqnr(c);
  return loss_frac(c) < opt.block_loss_info &&
         !(db < element_nominal_db(f) - opt.block_hold_sqnr_margin_db);  // NaN: nothing to lose
}

// "3.1% (SQNR 27.4 dB)" of one format.
std::string loss_phrase(const BlockFormatCounts& c) {
  return fmt::format("{} (SQNR {})", fmt_pct(loss_frac(c)), fmt_sqnr(block_sqnr(c)));
}

const WhatIfTensor* whatif_e4m3(const std::vector<WhatIfTensor>& w, uint32_t tensor) {
  for (const auto& x : w)
    if (x.tensor == tensor && x.format == Format::E4M3) return &x;
  return nullptr;
}

bool block_finding(const BlockTensor& x, uint32_t ti, const std::string& id, const RunAnalysis& a,
                   bool e4m3_known, Finding* out) {
  const FindingOptions& opt = a.options.findings;
  // The widest (most element bits) measured format that loses at least block_loss_info; ties:
  // the larger loss, then kBlockFormats order.
  int named = -1;
  for (int f = 0; f < kNumBlockFormats; ++f) {
    const BlockFormatCounts& c = x.fmt[f];
    if (!(x.mask >> f & 1u) || c.elements == 0 || loss_frac(c) < opt.block_loss_info) continue;
    if (named < 0) {
      named = f;
      continue;
    }
    const int bits = storage_bits(*kBlockFormats[f]);
    const int named_bits = storage_bits(*kBlockFormats[named]);
    if (bits > named_bits || (bits == named_bits && loss_frac(c) > loss_frac(x.fmt[named])))
      named = f;
  }
  if (named < 0) return false;
  // The cheapest (fewest element bits) measured format that holds the tensor; ties: the higher
  // SQNR (NaN: no signal, lowest), then kBlockFormats order.
  int cheapest = -1;
  for (int f = 0; f < kNumBlockFormats; ++f) {
    if (!(x.mask >> f & 1u) || !holds(x.fmt[f], f, opt)) continue;
    if (cheapest < 0) {
      cheapest = f;
      continue;
    }
    const int bits = storage_bits(*kBlockFormats[f]);
    const int best_bits = storage_bits(*kBlockFormats[cheapest]);
    if (bits < best_bits ||
        (bits == best_bits && block_sqnr(x.fmt[f]) > block_sqnr(x.fmt[cheapest])))
      cheapest = f;
  }

  const BlockFormatCounts& c = x.fmt[named];
  const std::string name = display_name(named);
  const double loss = loss_frac(c);
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
      c.flushed, c.elements, c.saturated, fmt_sqnr(block_sqnr(c)), element_nominal_db(named),
      c.zero_blocks, c.blocks, c.scale_underflow, c.scale_overflow);
  if (c.nan_scale > 0) ev += fmt::format(", {} holding NaN/Inf (not counted)", c.nan_scale);
  if (!e4m3_known) {
    ev += ". Per-tensor E4M3: not measured (FPSCOPE_FORMATS)";
  } else {
    ev += fmt::format(
        ". Per-tensor E4M3 on the same observations ({}): flushes {}, overflows {}, SQNR {}",
        x.e4m3_scaled ? "at the recorded scales" : "unscaled",
        fmt_pct(fraction(x.e4m3_underflow, x.finite)), fmt_pct(fraction(x.e4m3_overflow, x.finite)),
        fmt_sqnr(sqnr_db(x.sum_sq, x.e4m3_err2, x.e4m3_overflow)));
  }
  if (const WhatIfTensor* w = whatif_e4m3(a.whatif, ti))
    ev += fmt::format("; with delayed scaling (the FP8 what-if) flushes {}, saturates {}",
                      fmt_pct(w->underflow_frac), fmt_pct(w->overflow_frac));
  std::string others;
  for (int g = 0; g < kNumBlockFormats; ++g)
    if (g != named && (x.mask >> g & 1u) && x.fmt[g].elements > 0)
      others += fmt::format("{}{} {}", others.empty() ? "" : ", ", display_name(g),
                            loss_phrase(x.fmt[g]));
  if (!others.empty()) ev += ". Other block formats lose (flushed + saturated): " + others;
  f.evidence = std::move(ev);

  if (cheapest >= 0) {
    f.recommendation = fmt::format(
        "If this tensor is to be block-scaled, use {}: the cheapest measured block format that "
        "holds it ({} flushed or saturated, SQNR {}, {} bits per element).",
        display_name(cheapest), fmt_pct(loss_frac(x.fmt[cheapest])),
        fmt_sqnr(block_sqnr(x.fmt[cheapest])), bits_per_element(*kBlockFormats[cheapest]));
  } else {
    f.recommendation = fmt::format(
        "No measured block format holds this tensor (each loses {} or more of its elements, or "
        "its SQNR is more than {:.0f} dB below its elements' nominal): keep it in BF16 "
        "(or per-tensor FP8 if its numbers above are better){}.",
        fmt_pct(opt.block_loss_info), opt.block_hold_sqnr_margin_db,
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
  const std::vector<BlockTensor> xs = block_tensors(t);
  if (xs.empty()) return;
  const bool e4m3_known = e4m3_measured(t.metadata_json);
  for (uint32_t ti = 0; ti < xs.size(); ++ti) {
    if (xs[ti].observations == 0) continue;
    Finding f;
    if (block_finding(xs[ti], ti, model.tensor(ti).id, a, e4m3_known, &f))
      out->push_back(std::move(f));
  }
}

}  // namespace fpscope::analysis::families
