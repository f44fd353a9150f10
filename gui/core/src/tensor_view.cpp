#include "fpscope/gui/tensor_view.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "fpscope/gui/colors.h"

namespace fpscope::gui {

int64_t TensorSteps::index_at_or_before(uint64_t s) const {
  const auto it = std::upper_bound(steps.begin(), steps.end(), s);
  return it == steps.begin() ? -1 : static_cast<int64_t>(it - steps.begin()) - 1;
}

int64_t TensorSteps::index_of(uint64_t s) const {
  const auto it = std::lower_bound(steps.begin(), steps.end(), s);
  return (it != steps.end() && *it == s) ? static_cast<int64_t>(it - steps.begin()) : -1;
}

TensorSteps build_tensor_steps(const trace::TraceModel& model, uint32_t tensor) {
  TensorSteps ts;
  ts.tensor = tensor;
  if (tensor >= model.num_tensors()) return ts;
  const auto& obs = model.trace().observations;
  const auto series = model.series(tensor);  // sorted by step
  trace::DenseHist dense{};
  int lo = kHistBins, hi = -1;  // touched bins of the current step
  auto flush = [&] {
    for (int b = lo; b <= hi; ++b) {
      if (dense[static_cast<size_t>(b)] == 0) continue;
      ts.bins.push_back(static_cast<uint16_t>(b));
      ts.counts.push_back(dense[static_cast<size_t>(b)]);
      dense[static_cast<size_t>(b)] = 0;
      ts.bin_lo = ts.bin_hi < ts.bin_lo ? b : std::min(ts.bin_lo, b);
      ts.bin_hi = std::max(ts.bin_hi, b);
    }
    ts.hist_off.push_back(static_cast<uint32_t>(ts.bins.size()));
    lo = kHistBins;
    hi = -1;
  };
  ts.hist_off.push_back(0);
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& rec = obs[series[k]];
    if (ts.steps.empty() || ts.steps.back() != rec.step) {
      if (!ts.steps.empty()) flush();
      ts.steps.push_back(rec.step);
      ts.amax.push_back(0.0f);
      ts.eligible.push_back(0);
      ts.nonfinite.push_back(0);
    }
    ts.amax.back() = std::max(ts.amax.back(), rec.stats.amax);
    ts.nonfinite.back() += rec.stats.nan + rec.stats.pos_inf + rec.stats.neg_inf;
    const auto& t = model.trace();
    for (uint32_t j = 0; j < rec.hist_len; ++j) {
      const size_t p = size_t{rec.hist_begin} + j;
      if (p >= t.hist_bins.size() || p >= t.hist_counts.size()) break;
      const int b = t.hist_bins[p];
      if (b >= kHistBins) continue;
      dense[static_cast<size_t>(b)] += t.hist_counts[p];
      ts.eligible.back() += t.hist_counts[p];
      lo = std::min(lo, b);
      hi = std::max(hi, b);
    }
  }
  if (!ts.steps.empty()) flush();
  ts.step_x.assign(ts.steps.begin(), ts.steps.end());
  ts.blocks = build_block_steps(model.trace(), series, ts.steps);
  return ts;
}

BlockCoverage step_block_coverage(const TensorSteps& ts, size_t i, int f) {
  BlockCoverage c;
  c.block_octaves = block_range_octaves(f);
  const bool has = i < ts.size() && !ts.step_bins(i).empty();
  c.tensor_octaves = tensor_range_octaves(has ? ts.amax[i] : 0.0f, has ? ts.step_bins(i)[0] : -1);
  return c;
}

double octave_coord(double v) {
  if (!(v > 0.0) || !std::isfinite(v)) return v > 0.0 ? kOctaveMax : kOctaveMin;
  int k = 0;
  const double f = std::frexp(v, &k);  // v = f * 2^k, f in [0.5, 1)
  return std::max(kOctaveMin, static_cast<double>(k - 1) + (2.0 * f - 1.0));
}

HeatRaster rasterize(const TensorSteps& ts, double x0, double x1, int width, int row_lo,
                     int row_hi) {
  HeatRaster r;
  if (width < 1 || row_hi < row_lo || !(x0 < x1)) return r;
  r.width = width;
  r.rows = row_hi - row_lo + 1;
  r.row_lo = row_lo;
  r.frac.assign(static_cast<size_t>(r.width) * static_cast<size_t>(r.rows), -1.0f);
  const size_t n = ts.size();
  if (n == 0) return r;
  const double w = (x1 - x0) / width;
  // Step i covers [x_i, x_{i+1}) (the last one [x_n-1, x_n-1 + 1)): a sparsely sampled run is
  // drawn as bars, not as stripes.
  auto step_end = [&](size_t i) { return i + 1 < n ? ts.step_x[i + 1] : ts.step_x[i] + 1.0; };
  // x0 may lie past 2^64 (a view panned beyond step 2^64-1): converting that double is undefined.
  const uint64_t first =
      x0 >= 18446744073709551616.0 ? UINT64_MAX : static_cast<uint64_t>(std::max(0.0, x0));
  int64_t i = std::max<int64_t>(0, ts.index_at_or_before(first));
  for (int c = 0; c < width; ++c) {
    const double c0 = x0 + c * w, c1 = c0 + w;
    while (static_cast<size_t>(i) + 1 < n && step_end(static_cast<size_t>(i)) <= c0) ++i;
    bool covered = false;  // some step overlaps this column: its empty bins are 0, not "no data"
    for (size_t k = static_cast<size_t>(i); k < n && ts.step_x[k] < c1; ++k) {
      if (step_end(k) <= c0) continue;
      if (!covered) {
        covered = true;
        for (int row = 0; row < r.rows; ++row) r.frac[static_cast<size_t>(row) * width + c] = 0.0f;
      }
      const double elig = static_cast<double>(ts.eligible[k]);
      if (elig <= 0) continue;
      const auto bins = ts.step_bins(k);
      const auto counts = ts.step_counts(k);
      for (size_t j = 0; j < bins.size(); ++j) {
        const int row = bins[j] - row_lo;
        if (row < 0 || row >= r.rows) continue;
        float& cell = r.frac[static_cast<size_t>(row) * width + c];
        cell = std::max(cell, static_cast<float>(static_cast<double>(counts[j]) / elig));
      }
    }
  }
  return r;
}

std::vector<uint32_t> raster_rgba(const HeatRaster& r, uint32_t background) {
  std::vector<uint32_t> px(static_cast<size_t>(r.width) * static_cast<size_t>(r.rows), background);
  for (int row = 0; row < r.rows; ++row) {
    const int out_row = r.rows - 1 - row;  // top row first
    for (int c = 0; c < r.width; ++c) {
      const float t = heat_t(r.at(c, row));
      if (t >= 0.0f) px[static_cast<size_t>(out_row) * r.width + c] = pack(heat_color(t));
    }
  }
  return px;
}

HeatImage heat_image(const TensorSteps& ts, double x0, double x1, int width, int row_lo, int row_hi,
                     uint32_t background) {
  HeatImage img;
  img.x0 = x0;
  img.x1 = x1;
  img.row_lo = row_lo;
  img.row_hi = row_hi;
  const HeatRaster r = rasterize(ts, x0, x1, width, row_lo, row_hi);
  img.width = r.width;
  img.rows = r.rows;
  img.rgba = raster_rgba(r, background);
  return img;
}

std::vector<float> delayed_scales(std::span<const float> amax, Format f, int history_len,
                                  int margin, AmaxAlgo algo) {
  Fp8Scaler scaler(f, ScalingPolicy::Delayed, history_len, margin, algo);
  std::vector<float> out;
  out.reserve(amax.size());
  for (float a : amax) {
    out.push_back(scaler.scale());
    scaler.observe(a);
  }
  return out;
}

HistWhatIf step_whatif(const TensorSteps& ts, size_t i, Format f, float scale) {
  if (i >= ts.size()) return {};
  const auto bins = ts.step_bins(i);
  const auto counts = ts.step_counts(i);
  return hist_whatif(bins.data(), counts.data(), bins.size(), f, scale);
}

WhatIfSeries compute_whatif(const TensorSteps& ts, const WhatIfConfig& cfg) {
  WhatIfSeries w;
  w.config = cfg;
  if (cfg.mode == ScaleMode::Delayed) {
    w.scale = delayed_scales(ts.amax, cfg.format, cfg.history_len, cfg.margin, cfg.algo);
  } else {
    w.scale.assign(ts.size(), pow2f(clamp_scale_exponent(cfg.pow2)));
  }
  w.counts.reserve(ts.size());
  w.replayed.assign(ts.size(), 1);
  bool seeded = cfg.mode != ScaleMode::Delayed;  // delayed: a finite nonzero amax seen before
  for (size_t i = 0; i < ts.size(); ++i) {
    const HistWhatIf h = step_whatif(ts, i, cfg.format, w.scale[i]);
    w.counts.push_back(h);
    if (!seeded) {
      w.replayed[i] = 0;
      ++w.seed_steps;
      seeded = std::isfinite(ts.amax[i]) && ts.amax[i] > 0.0f;
      continue;
    }
    w.total.overflow_lo += h.overflow_lo;
    w.total.overflow_hi += h.overflow_hi;
    w.total.underflow_lo += h.underflow_lo;
    w.total.underflow_hi += h.underflow_hi;
    w.total.subnormal_lo += h.subnormal_lo;
    w.total.subnormal_hi += h.subnormal_hi;
    w.total.exact = w.total.exact && h.exact;
    w.eligible += ts.eligible[i];
    if (h.overflow_lo > 0) {
      ++w.overflow_steps;
      if (w.first_overflow_step < 0) w.first_overflow_step = static_cast<int64_t>(ts.steps[i]);
    }
    if (h.underflow_lo > 0 && w.first_underflow_step < 0)
      w.first_underflow_step = static_cast<int64_t>(ts.steps[i]);
  }
  return w;
}

}  // namespace fpscope::gui
