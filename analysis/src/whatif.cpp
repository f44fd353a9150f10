#include "fpscope/analysis/whatif.h"

#include <algorithm>
#include <vector>

#include "fpscope/analysis/common.h"
#include "fpscope/histogram.h"
#include "fpscope/scaling.h"
#include "index.h"

namespace fpscope::analysis {

namespace {

// Memoizes, per histogram bin, which bounds one element of that bin adds to at the current
// (format, scale), asking the numerics core (whatif_add_bin) once per bin and scale: delayed
// scales stay constant for long stretches, so most observations cost table lookups only.
class BinMemo {
 public:
  explicit BinMemo(Format f) : f_(f), mask_(kHistBins, kUnknown) {}

  void add(HistWhatIf& w, int bin, uint64_t count, float scale) {
    if (!valid_ || scale != scale_) {
      std::fill(mask_.begin(), mask_.end(), kUnknown);
      scale_ = scale;
      valid_ = true;
    }
    if (count == 0 || bin < 0 || bin >= kHistBins) return;
    uint8_t& m = mask_[static_cast<size_t>(bin)];
    if (m == kUnknown) {
      HistWhatIf one;
      whatif_add_bin(one, bin, 1, f_, scale);
      m = static_cast<uint8_t>((one.overflow_lo ? 1 : 0) | (one.overflow_hi ? 2 : 0) |
                               (one.underflow_lo ? 4 : 0) | (one.underflow_hi ? 8 : 0));
    }
    if (m & 1) w.overflow_lo += count;
    if (m & 2) w.overflow_hi += count;
    if (m & 4) w.underflow_lo += count;
    if (m & 8) w.underflow_hi += count;
  }

 private:
  static constexpr uint8_t kUnknown = 0xff;
  Format f_;
  std::vector<uint8_t> mask_;
  float scale_ = 1.0f;
  bool valid_ = false;
};

}  // namespace

const char* amax_algo_name(AmaxAlgo a) {
  return a == AmaxAlgo::Max ? "max" : "most_recent";
}
const char* count_source_name(CountSource s) {
  return s == CountSource::Exact ? "exact" : "histogram";
}

std::vector<WhatIfTensor> fp8_whatif(const trace::TraceModel& model, const WhatIfOptions& opt) {
  const auto& t = model.trace();
  std::vector<WhatIfTensor> out;
  for (uint32_t ti = 0; ti < model.num_tensors(); ++ti) {
    const auto series = model.series(ti);
    if (series.empty()) continue;
    const auto& info = model.tensor(ti);
    const bool fp8 = info.dtype == Format::E4M3 || info.dtype == Format::E5M2;
    if (fp8 && !opt.include_fp8_tensors) continue;
    const auto steps = detail::per_step(t, series);
    for (Format f : opt.formats) {
      const int fi = target_index(f);
      if (fi < 0) continue;
      WhatIfTensor w;
      w.tensor = ti;
      w.id = info.id;
      w.format = f;
      Fp8Scaler scaler(f, ScalingPolicy::Delayed, opt.history_len, opt.margin, opt.algo);
      BinMemo memo(f);
      for (const auto& st : steps) {
        WhatIfStep ws;
        ws.step = st.step;
        ws.amax = st.s.amax;
        ws.scale = scaler.scale();  // from the history of earlier steps
        ws.eligible = st.s.nonzero_finite_count();
        // Exact when every observation of this step carries this format's counts at exactly s.
        bool exact = true;
        const auto step_obs = series.subspan(st.pos, st.nobs);
        for (uint32_t oi : step_obs)
          if (t.observations[oi].stats.fmt[fi].scale != ws.scale) exact = false;
        if (exact) {
          ws.source = CountSource::Exact;
          ws.overflow_lo = ws.overflow_hi = st.s.fmt[fi].overflow;
          ws.underflow_lo = ws.underflow_hi = st.s.fmt[fi].underflow;
          ++w.exact_steps;
        } else {
          ws.source = CountSource::Histogram;
          HistWhatIf b;
          const size_t pool = std::min(t.hist_bins.size(), t.hist_counts.size());
          for (uint32_t oi : step_obs) {
            const auto& rec = t.observations[oi];
            const size_t begin = std::min<size_t>(rec.hist_begin, pool);
            const size_t end = begin + std::min<size_t>(rec.hist_len, pool - begin);
            for (size_t k = begin; k < end; ++k)
              memo.add(b, t.hist_bins[k], t.hist_counts[k], ws.scale);
          }
          ws.overflow_lo = b.overflow_lo;
          ws.overflow_hi = b.overflow_hi;
          ws.underflow_lo = b.underflow_lo;
          ws.underflow_hi = b.underflow_hi;
          ++w.histogram_steps;
        }
        scaler.observe(st.s.amax);
        w.eligible += ws.eligible;
        w.overflow_lo += ws.overflow_lo;
        w.overflow_hi += ws.overflow_hi;
        w.underflow_lo += ws.underflow_lo;
        w.underflow_hi += ws.underflow_hi;
        if (ws.overflow_lo > 0) {
          ++w.saturate_steps;
          if (w.first_saturate_step < 0) w.first_saturate_step = static_cast<int64_t>(ws.step);
        }
        if (ws.underflow_lo > 0) {
          ++w.underflow_steps;
          if (w.first_underflow_step < 0) w.first_underflow_step = static_cast<int64_t>(ws.step);
        }
        w.steps.push_back(ws);
      }
      w.overflow_frac = fraction(w.overflow_lo, w.eligible);
      w.underflow_frac = fraction(w.underflow_lo, w.eligible);
      out.push_back(std::move(w));
    }
  }
  return out;
}

}  // namespace fpscope::analysis
