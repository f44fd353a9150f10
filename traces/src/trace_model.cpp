#include "fpscope/trace_model.h"

#include <algorithm>
#include <cstddef>
#include <limits>

namespace fpscope::trace {

namespace {

uint64_t sat_add(uint64_t a, uint64_t b) {
  return b > std::numeric_limits<uint64_t>::max() - a ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

// StatsScalars::merge_scalars with the integer counts saturating at 2^64-1 instead of wrapping:
// a file may hold any u64 count, and a total must never come out smaller than a part.
void merge_saturating(StatsScalars& into, const StatsScalars& o) {
  const StatsScalars before = into;
  into.merge_scalars(o);
  into.count = sat_add(before.count, o.count);
  into.nan = sat_add(before.nan, o.nan);
  into.pos_inf = sat_add(before.pos_inf, o.pos_inf);
  into.neg_inf = sat_add(before.neg_inf, o.neg_inf);
  into.zero = sat_add(before.zero, o.zero);
  for (int k = 0; k < kNumTargets; ++k) {
    into.fmt[k].overflow = sat_add(before.fmt[k].overflow, o.fmt[k].overflow);
    into.fmt[k].underflow = sat_add(before.fmt[k].underflow, o.fmt[k].underflow);
    into.fmt[k].subnormal = sat_add(before.fmt[k].subnormal, o.fmt[k].subnormal);
  }
}

}  // namespace

TraceModel::TraceModel(const Trace& trace) : t_(&trace) {
  const auto& obs = trace.observations;
  const uint32_t nt = num_tensors();
  const uint32_t n = static_cast<uint32_t>(obs.size());
  totals_.assign(nt, StatsScalars{});
  first_.assign(nt, {});
  first_nonfinite_.assign(nt, kNoStep);

  // One pass: per-tensor counts, totals, first-problem steps; is the file order step-sorted?
  series_off_.assign(size_t{nt} + 1, 0);  // nt may be 2^32-1: not nt + 1 in 32 bits
  bool step_sorted = true;
  for (uint32_t i = 0; i < n; ++i) {
    const ObservationRecord& o = obs[i];
    if (i > 0) {
      const ObservationRecord& p = obs[i - 1];
      if (o.step < p.step || (o.step == p.step && o.seq < p.seq)) step_sorted = false;
    }
    if (o.tensor >= nt) continue;
    ++series_off_[o.tensor + 1];
    merge_saturating(totals_[o.tensor], o.stats);
    auto& f = first_[o.tensor];
    for (int k = 0; k < kNumTargets; ++k) {
      const FormatCounts& c = o.stats.fmt[k];
      if (c.overflow && o.step < f[k].overflow) f[k].overflow = o.step;
      if (c.underflow && o.step < f[k].underflow) f[k].underflow = o.step;
      if (c.subnormal && o.step < f[k].subnormal) f[k].subnormal = o.step;
    }
    if ((o.stats.nan || o.stats.pos_inf || o.stats.neg_inf) && o.step < first_nonfinite_[o.tensor])
      first_nonfinite_[o.tensor] = o.step;
  }

  // Observation order sorted by (step, seq, file order): usually the file order already.
  by_step_.resize(n);
  for (uint32_t i = 0; i < n; ++i) by_step_[i] = i;
  if (!step_sorted) {
    std::stable_sort(by_step_.begin(), by_step_.end(), [&](uint32_t a, uint32_t b) {
      const ObservationRecord& x = obs[a];
      const ObservationRecord& y = obs[b];
      return x.step != y.step ? x.step < y.step : x.seq < y.seq;
    });
  }

  // Per-tensor series: a stable counting sort of that order keeps (step, seq, file order).
  for (size_t t = 0; t < nt; ++t) series_off_[t + 1] += series_off_[t];
  series_.resize(series_off_[nt]);
  std::vector<uint32_t> fill(series_off_.begin(), series_off_.end() - 1);
  for (uint32_t i : by_step_) {
    const uint32_t t = obs[i].tensor;
    if (t < nt) series_[fill[t]++] = i;
  }

  // Per-step CSR over by_step_.
  for (uint32_t k = 0; k < n; ++k) {
    const uint64_t s = obs[by_step_[k]].step;
    if (steps_.empty() || steps_.back() != s) {
      steps_.push_back(s);
      step_off_.push_back(k);
    }
  }
  step_off_.push_back(n);
}

int64_t TraceModel::find_tensor(std::string_view id) const {
  for (const TensorInfo& t : t_->tensors) {
    if (t.id == id) return t.index;
  }
  return -1;
}

std::span<const uint32_t> TraceModel::series(uint32_t tensor) const {
  if (tensor >= num_tensors()) return {};
  return {series_.data() + series_off_[tensor], series_off_[tensor + 1] - series_off_[tensor]};
}

std::span<const uint32_t> TraceModel::series_range(uint32_t tensor, uint64_t step_lo,
                                                   uint64_t step_hi) const {
  const auto s = series(tensor);
  const auto& obs = t_->observations;
  const auto lo =
      std::partition_point(s.begin(), s.end(), [&](uint32_t i) { return obs[i].step < step_lo; });
  const auto hi =
      std::partition_point(lo, s.end(), [&](uint32_t i) { return obs[i].step <= step_hi; });
  return {lo, hi};
}

std::span<const uint32_t> TraceModel::step_observations(uint64_t step) const {
  const auto it = std::lower_bound(steps_.begin(), steps_.end(), step);
  if (it == steps_.end() || *it != step) return {};
  const size_t k = static_cast<size_t>(it - steps_.begin());
  return {by_step_.data() + step_off_[k], step_off_[k + 1] - step_off_[k]};
}

void TraceModel::add_histogram(uint32_t observation, DenseHist& out) const {
  const Trace& t = *t_;
  if (observation >= t.observations.size()) return;
  const ObservationRecord& o = t.observations[observation];
  const size_t end = static_cast<size_t>(o.hist_begin) + o.hist_len;
  if (end > t.hist_bins.size() || end > t.hist_counts.size()) return;
  for (size_t i = o.hist_begin; i < end; ++i) {
    if (t.hist_bins[i] < kHistBins)
      out[t.hist_bins[i]] = sat_add(out[t.hist_bins[i]], t.hist_counts[i]);
  }
}

DenseHist TraceModel::histogram(uint32_t observation) const {
  DenseHist h{};
  add_histogram(observation, h);
  return h;
}

DenseHist TraceModel::histogram_range(uint32_t tensor, uint64_t step_lo, uint64_t step_hi) const {
  DenseHist h{};
  for (uint32_t i : series_range(tensor, step_lo, step_hi)) add_histogram(i, h);
  return h;
}

}  // namespace fpscope::trace
