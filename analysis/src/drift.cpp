#include "fpscope/analysis/drift.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <span>
#include <tuple>

#include <fmt/format.h>

#include "fpscope/analysis/common.h"
#include "fpscope/value_sketch.h"
#include "index.h"

namespace fpscope::analysis {

namespace {

// Median of v (reorders v; no allocation: this runs once per step and series).
double median(std::vector<double>& v) {
  const size_t n = v.size();
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(n / 2);
  std::nth_element(v.begin(), mid, v.end());
  if (n % 2) return *mid;
  return 0.5 * (*std::max_element(v.begin(), mid) + *mid);
}

DriftSeries series_from_steps(uint32_t tensor, const std::vector<detail::StepStats>& steps,
                              const DriftOptions& opt) {
  DriftSeries d;
  d.tensor = tensor;
  d.steps.reserve(steps.size());
  d.amax.reserve(steps.size());
  for (int f = 0; f < kNumTargets; ++f) {
    d.sqnr_db[f].reserve(steps.size());
    d.overflow_frac[f].reserve(steps.size());
    d.underflow_frac[f].reserve(steps.size());
  }
  for (const auto& st : steps) {
    d.steps.push_back(st.step);
    d.amax.push_back(st.s.amax);
    for (int f = 0; f < kNumTargets; ++f) {
      d.sqnr_db[f].push_back(sqnr_db(st.s, f));
      d.overflow_frac[f].push_back(fraction(st.s.fmt[f].overflow, st.s.nonzero_finite_count()));
      d.underflow_frac[f].push_back(fraction(st.s.fmt[f].underflow, st.s.nonzero_finite_count()));
    }
  }
  // Change points against the median of the previous window (finite values only). After a
  // change point the window restarts there, so a sustained shift is reported once.
  const size_t w = static_cast<size_t>(std::max(opt.window, 2));
  auto detect = [&](const std::vector<double>& v, const std::string& name, bool ratio) {
    size_t start = 0;
    std::vector<double> prev;
    prev.reserve(w);
    for (size_t i = 0; i < v.size(); ++i) {
      const size_t b = std::max(start, i > w ? i - w : size_t{0});
      prev.clear();
      for (size_t j = b; j < i; ++j)
        if (std::isfinite(v[j]) && (!ratio || v[j] > 0.0)) prev.push_back(v[j]);
      if (prev.size() < 2 || !std::isfinite(v[i]) || (ratio && !(v[i] > 0.0))) continue;
      const double m = median(prev);
      const bool hit = ratio ? (v[i] / m >= opt.amax_factor || v[i] / m <= 1.0 / opt.amax_factor)
                             : std::fabs(v[i] - m) >= opt.sqnr_db;
      if (hit) {
        d.change_points.push_back({d.steps[i], name, m, v[i]});
        start = i;
      }
    }
  };
  detect(std::vector<double>(d.amax.begin(), d.amax.end()), "amax", true);
  for (int f = 0; f < kNumTargets; ++f)
    detect(d.sqnr_db[f], std::string("sqnr_") + spec(kTargets[f]).name, false);
  std::stable_sort(d.change_points.begin(), d.change_points.end(),
                   [](const ChangePoint& a, const ChangePoint& b) {
                     return a.step != b.step ? a.step < b.step : a.series < b.series;
                   });
  return d;
}

struct Totals {
  float amax = 0.0f;
  double sum_sq = 0.0;
  std::array<double, kNumTargets> err2{};
  std::array<uint64_t, kNumTargets> overflow{};
};

// Value difference per common step (drift.h, "Value difference"). sb/so: the tensor's series in
// each run, sorted by (step, seq); steps: the common steps, ascending.
std::vector<double> rel_diff_per_step(const trace::Trace& base, std::span<const uint32_t> sb,
                                      const trace::Trace& other, std::span<const uint32_t> so,
                                      const std::vector<uint64_t>& steps) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> out(steps.size(), nan);
  if (base.sketches.empty() || other.sketches.empty()) return out;
  size_t i = 0, j = 0;
  for (size_t s = 0; s < steps.size(); ++s) {
    const uint64_t step = steps[s];
    while (i < sb.size() && base.observations[sb[i]].step < step) ++i;
    while (j < so.size() && other.observations[so[j]].step < step) ++j;
    double dist2 = 0.0, norm2 = 0.0;
    bool ok = true, any = false;
    for (; i < sb.size() && j < so.size() && base.observations[sb[i]].step == step &&
           other.observations[so[j]].step == step;
         ++i, ++j) {
      const auto* a = base.sketch_of(sb[i]);
      const auto* b = other.sketch_of(so[j]);
      if (!a || !b || a->v.size() != b->v.size() || a->v.empty()) {
        ok = false;
        continue;
      }
      any = true;
      dist2 += sketch_distance2(b->v.data(), a->v.data(), static_cast<uint32_t>(a->v.size()));
      norm2 += base.observations[sb[i]].stats.sum_sq;
    }
    if (!ok || !any) continue;
    out[s] = norm2 > 0.0   ? std::sqrt(dist2 / norm2)
             : dist2 > 0.0 ? std::numeric_limits<double>::infinity()
                           : 0.0;
  }
  return out;
}

}  // namespace

int64_t first_step_above(const std::vector<uint64_t>& steps, const std::vector<double>& rel,
                         double threshold) {
  for (size_t i = 0; i < steps.size() && i < rel.size(); ++i)
    if (rel[i] > threshold) return static_cast<int64_t>(steps[i]);  // false for NaN
  return -1;
}

std::vector<size_t> rank_by_divergence(const std::vector<CrossRunDrift>& drift) {
  std::vector<size_t> idx;
  for (size_t i = 0; i < drift.size(); ++i)
    if (drift[i].has_rel_diff()) idx.push_back(i);
  // -1 (never) sorts after every step.
  auto key = [](int64_t s) { return s < 0 ? std::numeric_limits<uint64_t>::max() : uint64_t(s); };
  std::sort(idx.begin(), idx.end(), [&](size_t x, size_t y) {
    const CrossRunDrift &a = drift[x], &b = drift[y];
    if (key(a.first_step_rel_1pct) != key(b.first_step_rel_1pct))
      return key(a.first_step_rel_1pct) < key(b.first_step_rel_1pct);
    if (key(a.first_step_rel_10pct) != key(b.first_step_rel_10pct))
      return key(a.first_step_rel_10pct) < key(b.first_step_rel_10pct);
    if (a.max_rel_diff != b.max_rel_diff) return a.max_rel_diff > b.max_rel_diff;
    return a.match.base < b.match.base;
  });
  return idx;
}

std::string fmt_rel_diff(double rel) {
  if (std::isnan(rel)) return "n/a";
  if (std::isinf(rel)) return "inf";
  return fmt_pct(rel);
}

DriftSeries drift_series(const trace::TraceModel& model, uint32_t tensor, const DriftOptions& opt) {
  if (tensor >= model.num_tensors()) return series_from_steps(tensor, {}, opt);
  return series_from_steps(tensor, detail::per_step(model.trace(), model.series(tensor)), opt);
}

std::vector<TensorMatch> match_tensors(const trace::TraceModel& base_m,
                                       const trace::TraceModel& other_m) {
  const auto& base = base_m.trace();
  const auto& other = other_m.trace();
  auto has_b = [&](uint32_t i) { return !base_m.series(i).empty(); };
  auto has_o = [&](uint32_t i) { return !other_m.series(i).empty(); };
  using Key = std::tuple<std::string, int, uint64_t, uint64_t>;
  std::map<Key, uint32_t> by_id, by_name;
  for (uint32_t i = 0; i < other.tensors.size(); ++i) {
    if (!has_o(i)) continue;
    const auto& t = other.tensors[i];
    by_id.emplace(Key{t.id, static_cast<int>(t.role), t.rows, t.cols}, i);
    if (!t.name.empty()) by_name.emplace(Key{t.name, static_cast<int>(t.role), t.rows, t.cols}, i);
  }
  std::vector<bool> used(other.tensors.size());
  std::vector<TensorMatch> out;
  std::vector<uint32_t> pending;
  for (uint32_t i = 0; i < base.tensors.size(); ++i) {
    if (!has_b(i)) continue;
    const auto& t = base.tensors[i];
    auto it = by_id.find(Key{t.id, static_cast<int>(t.role), t.rows, t.cols});
    if (it != by_id.end() && !used[it->second]) {
      used[it->second] = true;
      out.push_back({i, it->second, false});
    } else {
      pending.push_back(i);
    }
  }
  for (uint32_t i : pending) {
    const auto& t = base.tensors[i];
    if (t.name.empty()) continue;
    auto it = by_name.find(Key{t.name, static_cast<int>(t.role), t.rows, t.cols});
    if (it != by_name.end() && !used[it->second]) {
      used[it->second] = true;
      out.push_back({i, it->second, true});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const TensorMatch& a, const TensorMatch& b) { return a.base < b.base; });
  return out;
}

std::vector<CrossRunDrift> compare_runs(const trace::TraceModel& base_m,
                                        const trace::TraceModel& other_m,
                                        const CrossRunOptions& opt) {
  const auto matches = match_tensors(base_m, other_m);
  const auto& base = base_m.trace();
  const auto& other = other_m.trace();
  std::vector<CrossRunDrift> out;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& m : matches) {
    CrossRunDrift d;
    d.match = m;
    d.id = base.tensors[m.base].id;
    const auto sb = detail::per_step(base, base_m.series(m.base));
    const auto so = detail::per_step(other, other_m.series(m.other));
    Totals tb, to;
    for (const auto& s : sb) {
      tb.amax = std::max(tb.amax, s.s.amax);
      tb.sum_sq += s.s.sum_sq;
      for (int f = 0; f < kNumTargets; ++f) {
        tb.err2[f] += s.s.fmt[f].sum_err2;
        tb.overflow[f] += s.s.fmt[f].overflow;
      }
    }
    for (const auto& s : so) {
      to.amax = std::max(to.amax, s.s.amax);
      to.sum_sq += s.s.sum_sq;
      for (int f = 0; f < kNumTargets; ++f) {
        to.err2[f] += s.s.fmt[f].sum_err2;
        to.overflow[f] += s.s.fmt[f].overflow;
      }
    }
    d.base_amax = tb.amax;
    d.other_amax = to.amax;
    d.amax_ratio = tb.amax > 0.0f   ? static_cast<double>(to.amax) / tb.amax
                   : to.amax > 0.0f ? std::numeric_limits<double>::infinity()
                                    : 1.0;
    for (int f = 0; f < kNumTargets; ++f) {
      d.base_sqnr_db[f] = sqnr_db(tb.sum_sq, tb.err2[f], tb.overflow[f]);
      d.other_sqnr_db[f] = sqnr_db(to.sum_sq, to.err2[f], to.overflow[f]);
      d.sqnr_delta_db[f] = std::isfinite(d.base_sqnr_db[f]) && std::isfinite(d.other_sqnr_db[f])
                               ? d.other_sqnr_db[f] - d.base_sqnr_db[f]
                               : nan;
    }
    // Common steps (both sorted by step).
    size_t i = 0, j = 0;
    while (i < sb.size() && j < so.size()) {
      if (sb[i].step < so[j].step) {
        ++i;
      } else if (so[j].step < sb[i].step) {
        ++j;
      } else {
        const auto& a = sb[i].s;
        const auto& b = so[j].s;
        const double r = a.amax > 0.0f   ? static_cast<double>(b.amax) / a.amax
                         : b.amax > 0.0f ? std::numeric_limits<double>::infinity()
                                         : 1.0;
        d.steps.push_back(sb[i].step);
        d.amax_ratio_series.push_back(r);
        if (d.first_step_beyond < 0) {
          if (r > opt.amax_ratio || r < 1.0 / opt.amax_ratio) {
            d.first_step_beyond = static_cast<int64_t>(sb[i].step);
            d.first_beyond_reason = fmt::format("amax ratio {}", fmt_num(r));
          } else {
            for (int f = 0; f < kNumTargets; ++f) {
              const double qa = sqnr_db(a, f);
              const double qb = sqnr_db(b, f);
              if (std::isfinite(qa) && std::isfinite(qb) && qa - qb > opt.sqnr_drop_db) {
                d.first_step_beyond = static_cast<int64_t>(sb[i].step);
                d.first_beyond_reason =
                    fmt::format("{} SQNR {:+.1f} dB", spec(kTargets[f]).name, qb - qa);
                break;
              }
            }
          }
        }
        ++i;
        ++j;
      }
    }
    d.rel_diff_series =
        rel_diff_per_step(base, base_m.series(m.base), other, other_m.series(m.other), d.steps);
    d.first_step_rel_1pct = first_step_above(d.steps, d.rel_diff_series, 0.01);
    d.first_step_rel_10pct = first_step_above(d.steps, d.rel_diff_series, 0.10);
    for (double r : d.rel_diff_series)
      if (!std::isnan(r) && !(r <= d.max_rel_diff)) d.max_rel_diff = r;
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace fpscope::analysis
