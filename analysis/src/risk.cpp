#include "fpscope/analysis/risk.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "index.h"

namespace fpscope::analysis {

const char* trend_name(Trend t) {
  switch (t) {
    case Trend::Unknown:
      return "unknown";
    case Trend::Stable:
      return "stable";
    case Trend::Worsening:
      return "worsening";
    case Trend::Improving:
      return "improving";
  }
  return "unknown";
}

namespace {

bool is_fp8(Format f) {
  return f == Format::E4M3 || f == Format::E5M2;
}

void consider(Severity lvl, int mag, std::string why, Severity* best, int* best_score,
              std::string* best_reason) {
  const int score = level_score(lvl, mag);
  if (score > *best_score) {
    *best = lvl;
    *best_score = score;
    *best_reason = std::move(why);
  }
}

}  // namespace

Severity format_severity(const FormatRisk& r, const RiskOptions& opt, int* score,
                         std::string* reason, const FindingOptions& scoring) {
  const char* fname = spec(r.format).name;
  // Unscaled FP8 casts are expected to fail: cap their level (the what-if judges FP8).
  const bool capped = is_fp8(r.format) && !r.scaled;
  auto cap = [&](Severity s) {
    return capped && s > scoring.unscaled_fp8_max ? scoring.unscaled_fp8_max : s;
  };
  Severity best = Severity::None;
  int best_score = 0;
  std::string best_reason;
  if (r.overflow > 0) {
    consider(cap(scoring.overflow), fraction_magnitude(r.overflow_frac, scoring),
             fmt::format("{} overflow: {} of elements from step {}", fname,
                         fmt_pct(r.overflow_frac), r.first_overflow_step),
             &best, &best_score, &best_reason);
  }
  if (r.underflow_frac >= opt.underflow_warn && r.underflow > 0) {
    const Severity lvl =
        r.underflow_frac >= opt.underflow_error ? Severity::Error : Severity::Warning;
    consider(cap(lvl), fraction_magnitude(r.underflow_frac, scoring),
             fmt::format("{} underflow: {} of elements flush to zero from step {}", fname,
                         fmt_pct(r.underflow_frac), r.first_underflow_step),
             &best, &best_score, &best_reason);
  }
  if (std::isfinite(r.sqnr_db) && r.sqnr_db < nominal_sqnr_db(r.format) - opt.sqnr_margin_db) {
    const double deficit = nominal_sqnr_db(r.format) - r.sqnr_db;
    consider(cap(scoring.sqnr), linear_magnitude(deficit, scoring.sqnr_deficit_full_db),
             fmt::format("{} SQNR {:.1f} dB, {:.1f} dB below nominal", fname, r.sqnr_db, deficit),
             &best, &best_score, &best_reason);
  }
  if (r.subnormal_frac >= opt.subnormal_info && r.subnormal > 0) {
    consider(scoring.subnormal, fraction_magnitude(r.subnormal_frac, scoring),
             fmt::format("{} subnormal: {} of elements lose precision", fname,
                         fmt_pct(r.subnormal_frac)),
             &best, &best_score, &best_reason);
  }
  if (score) *score = best_score;
  if (reason) *reason = best_reason;
  return best;
}

bool is_additive_mask(const TensorRisk& r) {
  return r.mask_tensor >= 0;
}

namespace {

// The -Inf count of every step when it is the same nonzero count in all of them and no step
// holds NaN or +Inf; 0 otherwise.
uint64_t steady_neg_inf(const std::vector<detail::StepStats>& steps) {
  const uint64_t n = steps.front().s.neg_inf;
  for (const auto& st : steps)
    if (st.s.neg_inf != n || st.s.nan > 0 || st.s.pos_inf > 0) return 0;
  return n;
}

// The C operand of the GEMM that wrote D's -Inf: the tensor of the role-C observation sharing
// the seq of every D observation that holds -Inf (one and the same tensor), -1 when none.
int64_t mask_candidate(const trace::TraceModel& model, uint32_t d) {
  const auto& t = model.trace();
  int64_t found = -1;
  for (uint32_t oi : model.series(d)) {
    const auto& o = t.observations[oi];
    if (o.stats.neg_inf == 0) continue;
    const auto so = model.step_observations(o.step);
    auto it = std::lower_bound(so.begin(), so.end(), o.seq, [&](uint32_t i, uint64_t seq) {
      return t.observations[i].seq < seq;
    });
    int64_t c = -1;
    for (; it != so.end() && t.observations[*it].seq == o.seq; ++it) {
      const uint32_t ti = t.observations[*it].tensor;
      if (ti < model.num_tensors() && model.tensor(ti).role == trace::Role::C) c = ti;
    }
    if (c < 0 || (found >= 0 && c != found)) return -1;
    found = c;
  }
  return found;
}

// Sets mask_tensor / mask_neg_inf (is_additive_mask): the C masks first, then the D outputs
// they cover. steady[i]: steady_neg_inf of rows[i].
void mark_masks(const trace::TraceModel& model, const std::vector<uint64_t>& steady,
                std::vector<TensorRisk>* rows) {
  std::vector<int64_t> row_of(model.num_tensors(), -1);
  for (size_t i = 0; i < rows->size(); ++i) row_of[(*rows)[i].tensor] = static_cast<int64_t>(i);
  for (size_t i = 0; i < rows->size(); ++i) {
    auto& r = (*rows)[i];
    if (r.role == trace::Role::C && steady[i] > 0 && model.tensor(r.tensor).gemm.beta != 0.0) {
      r.mask_tensor = r.tensor;
      r.mask_neg_inf = steady[i];
    }
  }
  for (size_t i = 0; i < rows->size(); ++i) {
    auto& r = (*rows)[i];
    if (r.role != trace::Role::D || steady[i] == 0) continue;
    const int64_t c = mask_candidate(model, r.tensor);
    if (c < 0 || row_of[c] < 0) continue;
    const auto& mask = (*rows)[row_of[c]];
    if (mask.mask_tensor != c || steady[i] > mask.mask_neg_inf) continue;
    r.mask_tensor = c;
    r.mask_neg_inf = steady[i];
  }
}

}  // namespace

bool nonfinite_only_in_skipped(const TensorRisk& r, const std::vector<uint64_t>& skipped) {
  return !skipped.empty() && !r.nonfinite_steps.empty() &&
         std::all_of(r.nonfinite_steps.begin(), r.nonfinite_steps.end(), [&](uint64_t st) {
           return std::binary_search(skipped.begin(), skipped.end(), st);
         });
}

std::vector<TensorRisk> analyze_risk(const trace::TraceModel& model, const RiskOptions& opt,
                                     const FindingOptions& scoring) {
  const auto& trace = model.trace();
  std::vector<TensorRisk> rows;
  std::vector<uint64_t> steady;  // per row: steady_neg_inf of its steps
  for (uint32_t ti = 0; ti < model.num_tensors(); ++ti) {
    const auto series = model.series(ti);
    if (series.empty()) continue;
    TensorRisk r;
    r.tensor = ti;
    const auto& info = model.tensor(ti);
    r.id = info.id;
    r.name = info.name;
    r.op = info.op;
    r.role = info.role;
    r.dtype = info.dtype;
    r.rows = info.rows;
    r.cols = info.cols;
    const auto steps = detail::per_step(trace, series);
    r.observations = series.size();
    r.steps = steps.size();
    r.first_step = steps.front().step;
    r.last_step = steps.back().step;
    steady.push_back(steady_neg_inf(steps));
    for (int f = 0; f < kNumTargets; ++f) r.formats[f].format = kTargets[f];
    for (const auto& st : steps) {
      const auto& s = st.s;
      r.elements += s.count;
      r.nan += s.nan;
      r.pos_inf += s.pos_inf;
      r.neg_inf += s.neg_inf;
      r.zero += s.zero;
      r.amax = std::max(r.amax, s.amax);
      if (s.nan + s.pos_inf + s.neg_inf > 0) {
        if (r.first_nonfinite_step < 0) r.first_nonfinite_step = static_cast<int64_t>(st.step);
        r.nonfinite_steps.push_back(st.step);
      }
      for (int f = 0; f < kNumTargets; ++f) {
        auto& fr = r.formats[f];
        const auto& c = s.fmt[f];
        fr.eligible += s.nonzero_finite_count();
        fr.overflow += c.overflow;
        fr.underflow += c.underflow;
        fr.subnormal += c.subnormal;
        fr.sum_sq += s.sum_sq;
        fr.sum_err2 += c.sum_err2;
        if (c.overflow > 0) {
          ++fr.overflow_steps;
          if (fr.first_overflow_step < 0) fr.first_overflow_step = static_cast<int64_t>(st.step);
        }
        if (c.underflow > 0 && fr.first_underflow_step < 0)
          fr.first_underflow_step = static_cast<int64_t>(st.step);
        if (c.subnormal > 0 && fr.first_subnormal_step < 0)
          fr.first_subnormal_step = static_cast<int64_t>(st.step);
      }
    }
    // Scales: per observation (per_step merged them).
    for (uint32_t oi : series)
      for (int f = 0; f < kNumTargets; ++f)
        if (trace.observations[oi].stats.fmt[f].scale != 1.0f) r.formats[f].scaled = true;

    const size_t n = steps.size();
    for (int f = 0; f < kNumTargets; ++f) {
      auto& fr = r.formats[f];
      fr.overflow_frac = fraction(fr.overflow, fr.eligible);
      fr.underflow_frac = fraction(fr.underflow, fr.eligible);
      fr.subnormal_frac = fraction(fr.subnormal, fr.eligible);
      fr.sqnr_db = sqnr_db(fr.sum_sq, fr.sum_err2, fr.overflow);
      if (n >= 3) {
        const size_t k = n / 3;
        auto third = [&](size_t b, size_t e, double* rf, double* sq) {
          double sum_rf = 0, ssq = 0, serr = 0;
          uint64_t ovf = 0;
          for (size_t i = b; i < e; ++i) {
            const auto& s = steps[i].s;
            sum_rf += fraction(s.fmt[f].overflow + s.fmt[f].underflow, s.nonzero_finite_count());
            ssq += s.sum_sq;
            serr += s.fmt[f].sum_err2;
            ovf += s.fmt[f].overflow;
          }
          *rf = sum_rf / static_cast<double>(e - b);
          *sq = sqnr_db(ssq, serr, ovf);
        };
        double sq_first = 0, sq_last = 0;
        third(0, k, &fr.risk_frac_first, &sq_first);
        third(n - k, n, &fr.risk_frac_last, &sq_last);
        fr.sqnr_delta_db =
            std::isfinite(sq_first) && std::isfinite(sq_last) ? sq_last - sq_first : 0.0;
        const bool worse = (fr.risk_frac_last > 2.0 * fr.risk_frac_first &&
                            fr.risk_frac_last - fr.risk_frac_first >= 1e-6) ||
                           fr.sqnr_delta_db < -3.0;
        const bool better = (fr.risk_frac_first > 2.0 * fr.risk_frac_last &&
                             fr.risk_frac_first - fr.risk_frac_last >= 1e-6) ||
                            fr.sqnr_delta_db > 3.0;
        fr.trend = worse ? Trend::Worsening : better ? Trend::Improving : Trend::Stable;
      }
    }

    rows.push_back(std::move(r));
  }
  mark_masks(model, steady, &rows);
  // Severity: NaN/Inf in the data first (an additive mask's at its own level), then the worst
  // format.
  for (auto& r : rows) {
    int best_score = 0;
    const uint64_t nonfinite = r.nan + r.pos_inf + r.neg_inf;
    if (nonfinite > 0 && is_additive_mask(r)) {
      r.severity = scoring.additive_mask;
      best_score =
          level_score(r.severity, fraction_magnitude(fraction(nonfinite, r.elements), scoring));
      r.severity_format = r.dtype;
      r.severity_reason =
          r.mask_tensor == r.tensor
              ? fmt::format("additive mask: {} elements at -Inf in every step", r.mask_neg_inf)
              : fmt::format("output of additive mask {}: {} elements at -Inf in every step",
                            model.tensor(static_cast<uint32_t>(r.mask_tensor)).id, r.mask_neg_inf);
    } else if (nonfinite > 0) {
      const bool skipped = nonfinite_only_in_skipped(r, opt.skipped_steps);
      r.severity = skipped ? scoring.nonfinite_in_skipped : scoring.nonfinite;
      best_score =
          level_score(r.severity, fraction_magnitude(fraction(nonfinite, r.elements), scoring));
      r.severity_format = r.dtype;
      r.severity_reason = fmt::format("data holds {} NaN, {} +Inf, {} -Inf from step {}", r.nan,
                                      r.pos_inf, r.neg_inf, r.first_nonfinite_step);
    }
    for (int f = 0; f < kNumTargets; ++f) {
      int sc = 0;
      std::string why;
      const Severity lvl = format_severity(r.formats[f], opt, &sc, &why, scoring);
      if (sc > best_score) {
        best_score = sc;
        r.severity = lvl;
        r.severity_format = kTargets[f];
        r.severity_reason = std::move(why);
      }
    }
    r.score = best_score;
  }
  std::sort(rows.begin(), rows.end(), [](const TensorRisk& a, const TensorRisk& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.id != b.id) return a.id < b.id;
    return a.tensor < b.tensor;
  });
  return rows;
}

}  // namespace fpscope::analysis
