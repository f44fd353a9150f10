// Format risk per tensor and target format (docs/metrics.md "Format risk").
//
// Contract:
//  - Totals are over every observation of the tensor: counts add, amax is the maximum, SQNR is
//    10*log10(sum x^2 / sum e^2) over all of them (docs/design.md "summary --json").
//  - Fractions are over the nonzero finite elements (`eligible`): zeros, NaN and Inf take no part
//    in the format counts (docs/design.md "Numerics definitions").
//  - The counts are the trace's, taken at the scale recorded in FormatCounts::scale; `scaled` says
//    whether any observation used a scale other than 1.
//  - first_*_step is the first step (in step order) with a nonzero count, -1 when never.
//  - trend compares the first and the last third of the tensor's observed steps (>= 3 steps):
//    Worsening when the per-step (overflow+underflow) fraction more than doubled (and grew by at
//    least 1e-6) or the SQNR fell by more than 3 dB; Improving for the reverse; else Stable.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "fpscope/analysis/common.h"
#include "fpscope/analysis/finding_options.h"
#include "fpscope/formats.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace fpscope::analysis {

enum class Trend : uint8_t { Unknown = 0, Stable = 1, Worsening = 2, Improving = 3 };
const char* trend_name(Trend t);  // "unknown", "stable", "worsening", "improving"

struct FormatRisk {
  Format format = Format::FP16;
  uint64_t eligible = 0;  // nonzero finite elements over all observations (fraction denominator)
  uint64_t overflow = 0;
  uint64_t underflow = 0;
  uint64_t subnormal = 0;
  double sum_sq = 0.0;    // sum x^2 over finite elements
  double sum_err2 = 0.0;  // sum e^2 over non-overflowing finite elements
  double overflow_frac = 0.0;
  double underflow_frac = 0.0;
  double subnormal_frac = 0.0;
  double sqnr_db = 0.0;  // see sqnr_db(): +inf exact, NaN no signal
  bool scaled = false;   // some observation's counts were taken at scale != 1
  int64_t first_overflow_step = -1;
  int64_t first_underflow_step = -1;
  int64_t first_subnormal_step = -1;
  uint64_t overflow_steps = 0;  // distinct steps with overflow > 0
  Trend trend = Trend::Unknown;
  double risk_frac_first = 0.0;  // mean per-step (overflow+underflow) fraction, first third
  double risk_frac_last = 0.0;   // ... last third
  double sqnr_delta_db = 0.0;    // SQNR(last third) - SQNR(first third); 0 when undefined
};

struct TensorRisk {
  uint32_t tensor = 0;  // TensorInfo::index
  std::string id;
  std::string name;
  std::string op;
  trace::Role role = trace::Role::D;
  Format dtype = Format::FP32;
  uint64_t rows = 0;
  uint64_t cols = 0;
  uint64_t observations = 0;
  uint64_t steps = 0;     // distinct steps observed
  uint64_t elements = 0;  // sum of count
  uint64_t nan = 0;
  uint64_t pos_inf = 0;
  uint64_t neg_inf = 0;
  uint64_t zero = 0;
  float amax = 0.0f;
  uint64_t first_step = 0;
  uint64_t last_step = 0;
  int64_t first_nonfinite_step = -1;              // first step whose data held NaN/Inf
  std::vector<uint64_t> nonfinite_steps;          // every step whose data held NaN/Inf
  std::array<FormatRisk, kNumTargets> formats{};  // indexed like kTargets

  // Additive mask (is_additive_mask below): mask_tensor is the mask C's TensorInfo::index (the
  // tensor's own for the C itself, the C's for the D output it covers), -1 when neither;
  // mask_neg_inf the -Inf elements of every observed step of this tensor (0 when -1).
  int64_t mask_tensor = -1;
  uint64_t mask_neg_inf = 0;

  // The worst problem found: level, a sortable score (level_score(level, magnitude), scored like
  // the findings: finding_options.h), the format it comes from (the tensor's own dtype for NaN/Inf
  // in the data) and one line saying why.
  Severity severity = Severity::None;
  int score = 0;
  Format severity_format = Format::FP32;
  std::string severity_reason;
};

struct RiskOptions {
  double underflow_warn = 0.01;   // underflow fraction: Warning at or above
  double underflow_error = 0.10;  // ... Error at or above
  double subnormal_info = 0.10;   // subnormal fraction: Info at or above
  double sqnr_margin_db = 10.0;   // Warning when SQNR < nominal_sqnr_db(f) - margin
  // Steps the loss scaler skipped (found_inf), sorted: NaN/Inf confined to them is what dynamic
  // loss scaling expects when the scale overshoots, a Warning instead of Critical.
  std::vector<uint64_t> skipped_steps;
};

// The one rule that tells an additive mask from NaN/Inf gone wrong (docs/metrics.md "Additive
// masks"), used by the risk rows (severity) and the findings (additive_mask instead of
// nonfinite):
//  - a C operand with beta != 0 whose data holds -Inf and no NaN or +Inf, with the same number of
//    -Inf in every step it is observed, is an additive mask (an attention mask: softmax turns the
//    -Inf of the scores into 0);
//  - the D output of the same GEMM (its observations share the C's seq) is covered by that mask
//    when its only non-finite values are -Inf, the same number in every observed step and no
//    more than the mask's per-step count.
// Anything else (NaN, +Inf, counts that change, -Inf in a D from finite inputs) is not a mask.
bool is_additive_mask(const TensorRisk& r);

// True when every step of r.nonfinite_steps is one of the sorted `skipped` steps (and some are).
bool nonfinite_only_in_skipped(const TensorRisk& r, const std::vector<uint64_t>& skipped);

// Risk rows for every tensor with at least one observation, sorted by score (desc), then id,
// then index: deterministic. Levels and magnitudes from `scoring`.
std::vector<TensorRisk> analyze_risk(const trace::TraceModel& model, const RiskOptions& opt = {},
                                     const FindingOptions& scoring = {});

// Severity of one format's risk (used by analyze_risk; exposed for the GUI's cell colours).
// FP8 counts taken unscaled (scale 1) are at most Info (scoring.unscaled_fp8_max): real FP8
// recipes always scale (the FP8 what-if analysis judges FP8 under scaling).
Severity format_severity(const FormatRisk& r, const RiskOptions& opt, int* score,
                         std::string* reason, const FindingOptions& scoring = {});

}  // namespace fpscope::analysis
