#include "fpscope/analysis/whatif.h"

#include <algorithm>
#include <bit>
#include <memory>
#include <vector>

#include "fpscope/analysis/common.h"
#include "fpscope/histogram.h"
#include "fpscope/scaling.h"

namespace fpscope::analysis {

namespace {

// Memoizes, per histogram bin, which bounds one element of that bin adds to at the current
// (format, scale), asking the numerics core (whatif_add_bin) once per bin and scale: delayed
// scales stay constant for long stretches, so most observations cost table lookups only.
class BinMemo {
 public:
  explicit BinMemo(Format f) : f_(f) {}

  void add(HistWhatIf& w, int bin, uint64_t count, float scale) {
    if (!valid_ || scale != scale_) {
      // Allocated on first use: one memo per (tensor, FP8 format), and most tensors of a large
      // trace never reach a histogram replay.
      mask_.assign(static_cast<size_t>(kHistBins), kUnknown);
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

namespace {

// Replay state of one (tensor, format): the scaler, the memo, and the step being accumulated.
struct Replay {
  explicit Replay(Format f, const WhatIfOptions& opt)
      : format(f),
        scaler(f, ScalingPolicy::Delayed, opt.history_len, opt.margin, opt.algo),
        memo(f) {}
  Format format;
  Fp8Scaler scaler;
  BinMemo memo;
  WhatIfTensor w;
  bool open = false;    // a step is being accumulated
  bool seeded = false;  // the history holds a finite nonzero amax: steps are replayed
  WhatIfStep cur;
  bool exact = true;
  uint64_t exact_overflow = 0, exact_underflow = 0;
  HistWhatIf hist;

  void finish() {
    if (!open) return;
    open = false;
    if (!seeded) {  // no usable amax in the history yet: this step only feeds it
      ++w.seed_steps;
      if (w.first_seed_step < 0) w.first_seed_step = static_cast<int64_t>(cur.step);
      scaler.observe(cur.amax);
      const uint32_t bits = std::bit_cast<uint32_t>(cur.amax);
      seeded = bits > 0u && bits < kFp32InfBits;  // finite and > 0
      return;
    }
    if (exact) {
      cur.source = CountSource::Exact;
      cur.overflow_lo = cur.overflow_hi = exact_overflow;
      cur.underflow_lo = cur.underflow_hi = exact_underflow;
      ++w.exact_steps;
    } else {
      cur.source = CountSource::Histogram;
      cur.overflow_lo = hist.overflow_lo;
      cur.overflow_hi = hist.overflow_hi;
      cur.underflow_lo = hist.underflow_lo;
      cur.underflow_hi = hist.underflow_hi;
      // No element exceeds the step's amax: when amax itself does not overflow at this scale,
      // neither does anything else (the bin edges alone would allow up to the top bin's edge).
      if (whatif_category(format, cur.amax, cur.scale) != 3) cur.overflow_lo = cur.overflow_hi = 0;
      ++w.histogram_steps;
    }
    scaler.observe(cur.amax);  // this step's amax enters the history for the next steps
    w.eligible += cur.eligible;
    w.overflow_lo += cur.overflow_lo;
    w.overflow_hi += cur.overflow_hi;
    w.underflow_lo += cur.underflow_lo;
    w.underflow_hi += cur.underflow_hi;
    if (cur.overflow_lo > 0) {
      ++w.saturate_steps;
      if (w.first_saturate_step < 0) w.first_saturate_step = static_cast<int64_t>(cur.step);
      const double f = fraction(cur.overflow_lo, cur.eligible);
      if (f > w.worst_overflow_frac) {
        w.worst_overflow_frac = f;
        w.worst_step = static_cast<int64_t>(cur.step);
        w.worst_scale = cur.scale;
        w.worst_amax = cur.amax;
      }
    }
    if (cur.underflow_lo > 0) {
      ++w.underflow_steps;
      if (w.first_underflow_step < 0) w.first_underflow_step = static_cast<int64_t>(cur.step);
    }
    w.steps.push_back(cur);
  }

  void start(uint64_t step) {
    open = true;
    cur = WhatIfStep{};
    cur.step = step;
    cur.scale = scaler.scale();  // from the amax history of earlier steps
    exact = true;
    exact_overflow = exact_underflow = 0;
    hist = HistWhatIf{};
  }
};

}  // namespace

// Observations are visited in step order (TraceModel's per-step lists, close to file order, so
// the histogram pool is read nearly sequentially), each feeding every format's replay state of
// its tensor; a tensor's step is finished when its next step starts or at the end.
std::vector<WhatIfTensor> fp8_whatif(const trace::TraceModel& model, const WhatIfOptions& opt,
                                     const std::function<void(double)>& progress) {
  const auto& t = model.trace();
  std::vector<Format> formats;
  std::vector<int> fidx;
  for (Format f : opt.formats)
    if (target_index(f) >= 0) {
      formats.push_back(f);
      fidx.push_back(target_index(f));
    }
  const size_t nf = formats.size();
  const uint32_t nt = model.num_tensors();
  std::vector<bool> eligible(nt, false);
  for (uint32_t ti = 0; ti < nt; ++ti) {
    const Format d = model.tensor(ti).dtype;
    eligible[ti] = opt.include_fp8_tensors || (d != Format::E4M3 && d != Format::E5M2);
  }
  std::vector<std::unique_ptr<Replay>> state(static_cast<size_t>(nt) * nf);
  const size_t pool = std::min(t.hist_bins.size(), t.hist_counts.size());
  const auto steps = model.steps();
  for (size_t si = 0; si < steps.size(); ++si) {
    const uint64_t step = steps[si];
    if (progress && si % 1024 == 0)
      progress(static_cast<double>(si) / static_cast<double>(steps.size()));
    for (uint32_t oi : model.step_observations(step)) {
      const auto& rec = t.observations[oi];
      if (rec.tensor >= nt || !eligible[rec.tensor]) continue;
      const size_t begin = std::min<size_t>(rec.hist_begin, pool);
      const size_t end = begin + std::min<size_t>(rec.hist_len, pool - begin);
      for (size_t j = 0; j < nf; ++j) {
        auto& r = state[static_cast<size_t>(rec.tensor) * nf + j];
        if (!r) {
          r = std::make_unique<Replay>(formats[j], opt);
          r->w.tensor = rec.tensor;
          r->w.id = model.tensor(rec.tensor).id;
          r->w.format = formats[j];
        }
        if (!r->open || r->cur.step != step) {
          r->finish();
          r->start(step);
        }
        const auto& c = rec.stats.fmt[fidx[j]];
        r->cur.amax = std::max(r->cur.amax, rec.stats.amax);
        r->cur.eligible += rec.stats.nonzero_finite_count();
        // Exact when every observation of the step has this format's counts at exactly s.
        r->exact = r->exact && c.scale == r->cur.scale;
        r->exact_overflow += c.overflow;
        r->exact_underflow += c.underflow;
        if (!r->seeded) continue;  // a seed step: only its amax matters
        for (size_t k = begin; k < end; ++k)
          r->memo.add(r->hist, t.hist_bins[k], t.hist_counts[k], r->cur.scale);
      }
    }
  }
  std::vector<WhatIfTensor> out;
  for (auto& r : state) {
    if (!r) continue;
    r->finish();
    r->w.overflow_frac = fraction(r->w.overflow_lo, r->w.eligible);
    r->w.underflow_frac = fraction(r->w.underflow_lo, r->w.eligible);
    out.push_back(std::move(r->w));
  }
  return out;
}

}  // namespace fpscope::analysis
