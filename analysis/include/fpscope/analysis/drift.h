// Drift within a run (per tensor, over steps) and between two runs (docs/metrics.md "Drift").
//
// Within a run: per step, the tensor's observations of that step merged: amax (max), SQNR per
// format (sum x^2 / sum e^2 of that step), overflow fraction per format. Change points: a step
// whose amax differs from the median of the previous `window` steps by at least `amax_factor`
// (either way), or whose SQNR in a format differs from the median of the previous window by at
// least `sqnr_db` dB. Needs at least 2 earlier points; after a change point the window restarts
// at it, so a sustained shift is reported once.
//
// Between runs: tensors matched by (id, role, rows, cols), else by (name, role, rows, cols) when
// named; dtype may differ (an FP16 run vs a BF16 run). amax_ratio = other amax / base amax (over
// all steps); sqnr_delta_db = other SQNR - base SQNR per format; first_step_beyond = first common
// step where the per-step amax ratio is > amax_ratio or < 1/amax_ratio, or some format's per-step
// SQNR fell by more than sqnr_drop_db.
//
// Value difference (docs/metrics.md "Cross-run difference"), from the value sketches (trace
// format 1.4, value_sketch.h) when both runs recorded them: per common step,
//     rel_diff = sqrt(sum_k dist2_k / sum_k base_sum_sq_k)
// over the k-th observation of the tensor in that step in both runs (matched by order within the
// step; when the counts differ, the common prefix), dist2_k = sketch_distance2 of the two sketches
// (an unbiased estimate of ||x_k - y_k||^2, ~4.4 % relative standard deviation on the norm) and
// base_sum_sq_k = the base observation's stats.sum_sq (exact). NaN when a pair lacks a sketch on
// either side (or the two sketches differ in length); when the base norm is 0: 0 if the estimated
// distance is 0 too, else +inf (the other run has values where the base has none).
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace fpscope::analysis {

struct ChangePoint {
  uint64_t step = 0;
  std::string series;   // "amax" or "sqnr_<format>"
  double before = 0.0;  // median of the previous window
  double after = 0.0;   // value at this step
};

struct DriftOptions {
  int window = 8;
  double amax_factor = 4.0;
  double sqnr_db = 6.0;
};

struct DriftSeries {
  uint32_t tensor = 0;
  std::vector<uint64_t> steps;  // ascending, distinct
  std::vector<float> amax;
  std::array<std::vector<double>, kNumTargets> sqnr_db;  // +inf exact, NaN no signal
  std::array<std::vector<double>, kNumTargets> overflow_frac;
  std::array<std::vector<double>, kNumTargets> underflow_frac;
  std::vector<ChangePoint> change_points;  // by step, then series name
};

DriftSeries drift_series(const trace::TraceModel& model, uint32_t tensor,
                         const DriftOptions& opt = {});

struct TensorMatch {
  uint32_t base = 0;
  uint32_t other = 0;
  bool by_name = false;  // matched by name (ids differed)
};

// One-to-one matches, in base tensor order. Tensors without observations are ignored.
std::vector<TensorMatch> match_tensors(const trace::TraceModel& base,
                                       const trace::TraceModel& other);

struct CrossRunOptions {
  double amax_ratio = 2.0;
  double sqnr_drop_db = 3.0;
};

struct CrossRunDrift {
  TensorMatch match;
  std::string id;  // base id
  float base_amax = 0.0f;
  float other_amax = 0.0f;
  double amax_ratio = 0.0;  // other/base; +inf when base amax is 0 and other is not; 1 when both 0
  std::array<double, kNumTargets> base_sqnr_db{};
  std::array<double, kNumTargets> other_sqnr_db{};
  std::array<double, kNumTargets> sqnr_delta_db{};  // NaN when either is undefined or infinite
  int64_t first_step_beyond = -1;
  std::string first_beyond_reason;        // e.g. "amax ratio 3.2" or "fp16 SQNR -7.1 dB"
  std::vector<uint64_t> steps;            // common steps
  std::vector<double> amax_ratio_series;  // per common step
  // Value difference (see the top of this file): one entry per common step (aligned with
  // `steps`), NaN where not measurable; all NaN for traces without sketches.
  std::vector<double> rel_diff_series;
  int64_t first_step_rel_1pct = -1;   // first common step with rel_diff > 0.01; -1 none
  int64_t first_step_rel_10pct = -1;  // ... > 0.10; -1 none
  double max_rel_diff = std::numeric_limits<double>::quiet_NaN();  // NaN: no step measurable
  // Whether some common step had a measurable rel_diff (= !isnan(max_rel_diff)).
  bool has_rel_diff() const { return max_rel_diff == max_rel_diff; }
};

// Indices into `drift` of the tensors with a measurable value difference, earliest divergence
// first: first step > 1 % ascending (none last), then first step > 10 % ascending (none last),
// then max_rel_diff descending, then base tensor index.
std::vector<size_t> rank_by_divergence(const std::vector<CrossRunDrift>& drift);

// A relative difference for text: "n/a" (NaN), "inf" (+inf), else fmt_pct ("3.2%").
std::string fmt_rel_diff(double rel);

// Per-step relative difference from a crafted series (what compare_runs does per tensor): the
// first entry > threshold, or -1. NaN entries never count; +inf does.
int64_t first_step_above(const std::vector<uint64_t>& steps, const std::vector<double>& rel,
                         double threshold);

std::vector<CrossRunDrift> compare_runs(const trace::TraceModel& base,
                                        const trace::TraceModel& other,
                                        const CrossRunOptions& opt = {});

}  // namespace fpscope::analysis
