#include "fpscope/analysis/loss_scale.h"

#include "fpscope/analysis/common.h"

#include <algorithm>
#include <span>

#include <fmt/format.h>

namespace fpscope::analysis {

namespace {

// The first operation of `step` (seq order) whose output held NaN/Inf or overflowed FP16.
void find_offender(const trace::Trace& t, std::span<const uint32_t> obs, SkippedStep* sk) {
  const int fp16 = target_index(Format::FP16);
  const float fp16_max = max_finite(Format::FP16);
  const trace::ObservationRecord* best = nullptr;
  std::string reason;
  for (uint32_t i : obs) {
    const auto& o = t.observations[i];
    const auto& s = o.stats;
    std::string why;
    if (s.nan > 0) {
      why = "nan";
    } else if (s.pos_inf + s.neg_inf > 0) {
      why = "inf";
    } else if (s.fmt[fp16].scale == 1.0f ? s.fmt[fp16].overflow > 0 : s.amax > fp16_max) {
      why = "fp16 overflow";
    } else {
      continue;
    }
    if (!best || o.seq < best->seq) {
      best = &o;
      reason = why;
    }
  }
  if (best) {
    sk->offender_tensor = best->tensor;
    sk->offender_id = best->tensor < t.tensors.size() ? t.tensors[best->tensor].id
                                                      : fmt::format("tensor#{}", best->tensor);
    sk->offender_seq = best->seq;
    sk->reason = reason;
  }
}

}  // namespace

LossScaleAnalysis analyze_loss_scale(const trace::TraceModel& model, const LossScaleOptions& opt) {
  const auto& trace = model.trace();
  LossScaleAnalysis a;
  a.series = trace.loss_scales;
  std::stable_sort(a.series.begin(), a.series.end(),
                   [](const auto& x, const auto& y) { return x.step < y.step; });
  if (a.series.empty()) return a;
  a.present = true;

  a.min_scale = a.series.front().scale;
  a.max_scale = a.series.front().scale;
  int run = 0;  // consecutive backoffs
  for (size_t i = 0; i < a.series.size(); ++i) {
    const auto& r = a.series[i];
    a.min_scale = std::min(a.min_scale, r.scale);
    a.max_scale = std::max(a.max_scale, r.scale);
    double after = r.next_scale > 0.0        ? r.next_scale
                   : i + 1 < a.series.size() ? a.series[i + 1].scale
                                             : r.scale;
    const bool backoff = after < r.scale;
    const bool growth = after > r.scale;
    a.backoffs += backoff;
    a.growths += growth;
    run = backoff ? run + 1 : 0;
    if (!a.collapsed && r.scale < opt.collapse_below) {
      a.collapsed = true;
      a.collapse_step = static_cast<int64_t>(r.step);
      a.collapse_reason = fmt::format("loss scale {} < {} at step {}", fmt_num(r.scale),
                                      fmt_num(opt.collapse_below), r.step);
    }
    if (!a.collapsed && opt.collapse_backoffs > 0 && run >= opt.collapse_backoffs) {
      a.collapsed = true;
      a.collapse_step = static_cast<int64_t>(r.step);
      a.collapse_reason =
          fmt::format("{} consecutive backoffs ending at step {} (scale {} -> {})", run, r.step,
                      fmt_num(a.series[i + 1 - run].scale), fmt_num(after));
    }
    if (r.found_inf) {
      SkippedStep sk;
      sk.step = r.step;
      sk.scale = r.scale;
      find_offender(trace, model.step_observations(r.step), &sk);
      a.skipped.push_back(std::move(sk));
    }
  }
  const auto& last = a.series.back();
  a.final_scale = last.next_scale > 0.0 ? last.next_scale : last.scale;
  for (const auto& r : a.series) a.steps_at_min += (r.scale == a.min_scale);
  a.fraction_at_min = fraction(a.steps_at_min, a.series.size());
  return a;
}

}  // namespace fpscope::analysis
