// Loss-scale history (docs/metrics.md "Loss scale").
//
// Contract:
//  - series: the trace's loss-scale records sorted by step (stable for equal steps).
//  - A record is a backoff when its scale after the update is lower than before: next_scale when
//    known (> 0), else the next record's scale; a growth when higher.
//  - skipped: records with found_inf (the optimizer step was skipped), each with the first
//    operation of that step, in sequence (seq) order, whose output data held NaN/Inf or whose
//    FP16 cast overflowed (overflow count when the FP16 counts were unscaled, amax > FP16 max
//    otherwise). offender_tensor = -1 when no observation of that step qualifies (or the step
//    was not sampled).
//  - collapse: the scale fell below `collapse_below` (default 1), or `collapse_backoffs`
//    consecutive records were backoffs. collapse_step is the step where the condition first held.
//  - steps_at_min: records whose scale equals the minimum scale seen.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace fpscope::analysis {

struct SkippedStep {
  uint64_t step = 0;
  double scale = 0.0;
  int64_t offender_tensor = -1;  // TensorInfo::index of the first offending op, -1 none
  std::string offender_id;
  uint64_t offender_seq = 0;
  std::string reason;  // "nan", "inf", "fp16 overflow", or "" when none found
};

struct LossScaleOptions {
  double collapse_below = 1.0;
  int collapse_backoffs = 3;
};

struct LossScaleAnalysis {
  bool present = false;  // the trace has loss-scale records
  std::vector<trace::LossScaleRecord> series;
  std::vector<SkippedStep> skipped;
  uint64_t backoffs = 0;
  uint64_t growths = 0;
  double min_scale = 0.0;
  double max_scale = 0.0;
  double final_scale = 0.0;  // next_scale of the last record when known, else its scale
  uint64_t steps_at_min = 0;
  double fraction_at_min = 0.0;
  bool collapsed = false;
  int64_t collapse_step = -1;
  std::string collapse_reason;
};

LossScaleAnalysis analyze_loss_scale(const trace::TraceModel& model,
                                     const LossScaleOptions& opt = {});

}  // namespace fpscope::analysis
