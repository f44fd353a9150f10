#include "fpscope/analysis/format_choice.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "block_totals.h"
#include "fpscope/analysis/common.h"
#include "fpscope/histogram.h"
#include "fpscope/scaling.h"

namespace fpscope::analysis {

namespace {
constexpr int kMx8E4 = 0, kMx8E5 = 1, kMx6E3 = 2, kMx6E2 = 3, kMx4 = 4, kNv4 = 5;  // kBlockFormats
}  // namespace

const FormatCandidate kFormatCandidates[kNumFormatCandidates] = {
    {"mxfp4", "MXFP4", kMx4, false, false, bits_per_element(kMxfp4)},
    {"nvfp4", "NVFP4", kNv4, false, false, bits_per_element(kNvfp4)},
    {"mxfp6_e2m3", "MXFP6 E2M3", kMx6E2, false, false, bits_per_element(kMxfp6E2M3)},
    {"mxfp6_e3m2", "MXFP6 E3M2", kMx6E3, false, false, bits_per_element(kMxfp6E3M2)},
    {"e4m3_delayed", "E4M3 delayed", -1, true, true, 8.0},
    {"e4m3_current", "E4M3 current", -1, true, false, 8.0},
    {"mxfp8_e4m3", "MXFP8 E4M3", kMx8E4, false, false, bits_per_element(kMxfp8E4M3)},
    {"mxfp8_e5m2", "MXFP8 E5M2", kMx8E5, false, false, bits_per_element(kMxfp8E5M2)},
    {"bf16", "BF16", -1, false, false, 16.0},
};

double candidate_nominal_db(int c) {
  const FormatCandidate& k = kFormatCandidates[c];
  if (k.block_format >= 0) return nominal_sqnr_db_bits(kBlockFormats[k.block_format]->man_bits);
  return nominal_sqnr_db(k.per_tensor_e4m3 ? Format::E4M3 : Format::BF16);
}

bool format_holds(double loss_hi, double sqnr_db, double nominal_db, const FindingOptions& opt) {
  return loss_hi <= opt.format_hold_loss &&
         !(sqnr_db < nominal_db - opt.block_hold_sqnr_margin_db);  // NaN: the loss decides
}

namespace {

// Per-tensor E4M3 at some scale, summed over observations.
struct E4m3Acc {
  uint64_t elements = 0, overflow_lo = 0, lost_lo = 0, lost_hi = 0;
  double sum_sq = 0.0, err2 = 0.0;
  uint64_t observations = 0, exact = 0, histogram = 0;
  int64_t first_step = -1, last_step = -1;
};

// Squared error of one element of histogram bin b cast to E4M3 at scale s, in x's units: the
// element's square when it flushes, quantum^2 / 12 (round to nearest of a value spread over its
// quantum) when kept, 0 when it overflows (the SQNR is then undefined: common.h). The bin is cut
// at the observation's amax: no element lies above it (the top bin's midpoint may).
double bin_err2(int b, float s, float amax) {
  const Format f = Format::E4M3;
  const double hi = std::min<double>(hist_bin_high(b), amax);
  const double lo = std::min<double>(hist_bin_low(b), hi);
  const double mid = 0.5 * (lo + hi);
  const int cat = whatif_category(f, static_cast<float>(mid), s);
  if (cat == 3) return 0.0;
  if (cat == 0) return (lo * lo + lo * hi + hi * hi) / 3.0;
  const FormatSpec& sp = spec(f);
  const double y = mid * static_cast<double>(s);
  const int e = cat == 1 ? min_normal_exp(sp) : std::ilogb(y);
  const double q = std::ldexp(1.0, e - sp.man_bits) / static_cast<double>(s);
  return q * q / 12.0;
}

void add_observation(const trace::Trace& t, const trace::ObservationRecord& rec, float s,
                     E4m3Acc& a) {
  const int e4 = target_index(Format::E4M3);
  const FormatCounts& c = rec.stats.fmt[e4];
  const auto step = static_cast<int64_t>(rec.step);
  ++a.observations;
  if (a.first_step < 0 || step < a.first_step) a.first_step = step;
  a.last_step = std::max(a.last_step, step);
  a.elements += rec.stats.finite_count();
  a.sum_sq += rec.stats.sum_sq;
  if (c.scale == s) {  // the probe's own counts at exactly this scale
    ++a.exact;
    a.overflow_lo += c.overflow;
    a.lost_lo += c.overflow + c.underflow;
    a.lost_hi += c.overflow + c.underflow;
    a.err2 += c.sum_err2;
    return;
  }
  ++a.histogram;
  const size_t pool = std::min(t.hist_bins.size(), t.hist_counts.size());
  const size_t begin = std::min<size_t>(rec.hist_begin, pool);
  const size_t end = begin + std::min<size_t>(rec.hist_len, pool - begin);
  HistWhatIf w;
  for (size_t k = begin; k < end; ++k) {
    const int b = t.hist_bins[k];
    if (b >= kHistFirstNonFiniteBin) continue;
    whatif_add_bin(w, b, t.hist_counts[k], Format::E4M3, s);
    a.err2 += static_cast<double>(t.hist_counts[k]) * bin_err2(b, s, rec.stats.amax);
  }
  // No element exceeds the amax: when it does not overflow, nothing does (whatif.h).
  if (whatif_category(Format::E4M3, rec.stats.amax, s) != 3) w.overflow_lo = w.overflow_hi = 0;
  a.overflow_lo += w.overflow_lo;
  a.lost_lo += w.overflow_lo + w.underflow_lo;
  a.lost_hi += w.overflow_hi + w.underflow_hi;
}

FormatResult e4m3_result(const E4m3Acc& a) {
  FormatResult r;
  r.measured = a.observations > 0;
  r.elements = a.elements;
  r.lost_lo = a.lost_lo;
  r.lost_hi = a.lost_hi;
  r.loss_lo = fraction(a.lost_lo, a.elements);
  r.loss_hi = fraction(a.lost_hi, a.elements);
  r.sqnr_db = sqnr_db(a.sum_sq, a.err2, a.overflow_lo);
  r.observations = a.observations;
  r.first_step = a.first_step;
  r.last_step = a.last_step;
  r.exact_observations = a.exact;
  r.histogram_observations = a.histogram;
  return r;
}

// Which observations of each tensor measured block format f (coverage of the block columns).
struct Coverage {
  uint64_t observations = 0;
  int64_t first_step = -1, last_step = -1;
};

}  // namespace

std::vector<FormatChoice> format_choices(const trace::TraceModel& model,
                                         const std::vector<WhatIfTensor>& whatif,
                                         const WhatIfOptions& wopt, const FindingOptions& opt) {
  std::vector<FormatChoice> out;
  const trace::Trace& t = model.trace();
  if (t.block_stats.empty()) return out;
  const uint32_t nt = model.num_tensors();
  const std::vector<detail::BlockTotals> totals = detail::block_totals(t);

  std::vector<char> has_block(t.observations.size(), 0);
  std::vector<Coverage> cover(static_cast<size_t>(nt) * kNumBlockFormats);
  for (const trace::BlockStatsRecord& b : t.block_stats) {
    if (b.observation >= t.observations.size()) continue;
    const trace::ObservationRecord& o = t.observations[b.observation];
    if (o.tensor >= nt) continue;
    has_block[b.observation] = 1;
    const auto step = static_cast<int64_t>(o.step);
    for (int f = 0; f < kNumBlockFormats; ++f) {
      if (!(b.mask >> f & 1u)) continue;
      Coverage& c = cover[static_cast<size_t>(o.tensor) * kNumBlockFormats + f];
      ++c.observations;
      if (c.first_step < 0 || step < c.first_step) c.first_step = step;
      c.last_step = std::max(c.last_step, step);
    }
  }
  std::vector<const WhatIfTensor*> delayed(nt, nullptr);
  for (const WhatIfTensor& w : whatif)
    if (w.format == Format::E4M3 && w.tensor < nt) delayed[w.tensor] = &w;

  for (uint32_t ti = 0; ti < nt; ++ti) {
    const auto series = model.series(ti);
    const Format dtype = model.tensor(ti).dtype;
    if (series.empty() ||
        (!wopt.include_fp8_tensors && (dtype == Format::E4M3 || dtype == Format::E5M2)))
      continue;
    FormatChoice ch;
    ch.tensor = ti;
    ch.id = model.tensor(ti).id;
    const bool with_blocks = ti < totals.size() && totals[ti].observations > 0;
    E4m3Acc cur, del;
    const WhatIfTensor* w = delayed[ti];
    size_t wi = 0;  // series is in step order, so are w->steps
    for (uint32_t oi : series) {
      if (with_blocks && !has_block[oi]) continue;
      const trace::ObservationRecord& rec = t.observations[oi];
      add_observation(t, rec, Fp8Scaler::current_scale(Format::E4M3, rec.stats.amax), cur);
      if (!w) continue;
      while (wi < w->steps.size() && w->steps[wi].step < rec.step) ++wi;
      if (wi < w->steps.size() && w->steps[wi].step == rec.step)
        add_observation(t, rec, w->steps[wi].scale, del);
    }
    for (int c = 0; c < kNumFormatCandidates; ++c) {
      const FormatCandidate& k = kFormatCandidates[c];
      FormatResult r;
      if (k.per_tensor_e4m3) {
        r = e4m3_result(k.delayed ? del : cur);
      } else if (k.block_format >= 0 && with_blocks && totals[ti].measured(k.block_format)) {
        const BlockFormatCounts& b = totals[ti].fmt[k.block_format];
        const Coverage& cv = cover[static_cast<size_t>(ti) * kNumBlockFormats + k.block_format];
        r.measured = true;
        r.elements = b.elements;
        r.lost_lo = r.lost_hi = b.flushed + b.saturated;
        r.loss_lo = r.loss_hi = detail::block_loss_frac(b);
        r.sqnr_db = detail::block_sqnr_db(b);
        r.observations = cv.observations;
        r.first_step = cv.first_step;
        r.last_step = cv.last_step;
      }
      if (r.measured && r.elements > 0)
        r.holds = format_holds(r.loss_hi, r.sqnr_db, candidate_nominal_db(c), opt);
      ch.result[c] = r;
    }
    ch.recommended = kCandidateBf16;
    for (int c = 0; c < kCandidateBf16; ++c)
      if (ch.result[c].holds) {
        ch.recommended = c;
        break;
      }
    out.push_back(std::move(ch));
  }
  return out;
}

std::string format_loss_str(const FormatResult& r) {
  if (!r.measured) return "-";
  if (r.lost_lo == r.lost_hi) return fmt_pct(r.loss_lo);
  return fmt::format("{} to {}", fmt_pct(r.loss_lo), fmt_pct(r.loss_hi));
}

std::string format_sqnr_str(const FormatResult& r) {
  if (!r.measured) return "-";
  const bool estimated = r.histogram_observations > 0 && std::isfinite(r.sqnr_db);
  return (estimated ? "~" : "") + fmt_sqnr(r.sqnr_db);
}

const FormatChoice* format_choice_of(const std::vector<FormatChoice>& choices, uint32_t tensor) {
  const auto it =
      std::lower_bound(choices.begin(), choices.end(), tensor,
                       [](const FormatChoice& c, uint32_t ti) { return c.tensor < ti; });
  return it != choices.end() && it->tensor == tensor ? &*it : nullptr;
}

std::string format_choice_clause(const FormatChoice& ch, const FindingOptions& opt) {
  int mx8 = 0;  // MXFP8 E4M3's place in kFormatCandidates
  while (kFormatCandidates[mx8].block_format != kMx8E4) ++mx8;
  const FormatResult& m = ch.result[mx8];
  const int r = ch.recommended;
  const FormatCandidate& k = kFormatCandidates[r];
  std::string mx8_note;
  if (!m.measured)
    mx8_note =
        "; MXFP8 was not measured on it: record with --formats blocks to measure MXFP8/NVFP4";
  else if (r != mx8)
    mx8_note = fmt::format("; MXFP8 E4M3 measured on it loses {} (SQNR {})", format_loss_str(m),
                           format_sqnr_str(m));
  if (r == kCandidateBf16)
    return fmt::format(
        "keep it in BF16 (no compared format holds it: loss at most {}, SQNR within {:.0f} dB of "
        "its nominal){}",
        fmt_pct(opt.format_hold_loss), opt.block_hold_sqnr_margin_db, mx8_note);
  const FormatResult& x = ch.result[r];
  if (k.block_format == kMx8E4 || k.block_format == kMx8E5)
    return fmt::format(
        "use per-block ({}) scaling: measured on this tensor it loses {} (SQNR {}), the cheapest "
        "compared format that holds it ({} bits per element)",
        k.display, format_loss_str(x), format_sqnr_str(x), fmt_num(k.bits));
  return fmt::format(
      "use {}: the cheapest compared format that holds it (loses {}, SQNR {}, {} bits per "
      "element){}",
      k.display, format_loss_str(x), format_sqnr_str(x), fmt_num(k.bits), mx8_note);
}

}  // namespace fpscope::analysis
