// The whole analysis of one run, and the ranked findings built from it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fpscope/analysis/common.h"
#include "fpscope/analysis/drift.h"
#include "fpscope/analysis/loss_scale.h"
#include "fpscope/analysis/risk.h"
#include "fpscope/analysis/weights.h"
#include "fpscope/analysis/whatif.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace fpscope::analysis {

struct Finding {
  Severity severity = Severity::Info;
  int score = 0;        // level*1000 + magnitude: the ranking key (desc), then kind, then tensor id
  std::string kind;     // "nonfinite", "overflow", "underflow", "sqnr", "loss_scale_collapse",
                        // "skipped_steps", "master_not_fp32", "master_weight_loss",
                        // "fp8_saturation", "fp8_underflow", "drift" (within the run),
                        // "baseline_drift" (against a baseline run)
  int64_t tensor = -1;  // TensorInfo::index, -1 when not about one tensor
  std::string tensor_id;  // "" when not about one tensor
  std::optional<Format> format;
  int64_t first_step = -1;
  int64_t last_step = -1;
  std::string title;           // one line: what is wrong
  std::string evidence;        // tensor, steps, numbers
  std::string recommendation;  // what to do
};

struct AnalysisOptions {
  RiskOptions risk;
  LossScaleOptions loss_scale;
  WhatIfOptions whatif;
  bool run_whatif = true;
  DriftOptions drift;
  bool run_drift = true;  // within-run change points (drift_series per tensor)
  CrossRunOptions cross;
};

// The within-run change points of one tensor (drift_series(...).change_points), kept only for
// tensors that have some.
struct TensorDrift {
  uint32_t tensor = 0;
  std::string id;
  std::vector<ChangePoint> change_points;
};

struct RunAnalysis {
  AnalysisOptions options;        // what produced this analysis
  RunMeta meta;                   // from the trace's metadata (command line, host, probe, every)
  std::vector<TensorRisk> risks;  // sorted by severity
  LossScaleAnalysis loss_scale;
  std::vector<WeightLoss> weights;
  std::vector<WhatIfTensor> whatif;
  std::vector<TensorDrift> drift;  // tensors with change points, in tensor index order
  std::vector<Finding> findings;   // ranked
  uint64_t steps = 0;              // distinct steps holding observations or loss-scale records
  uint64_t first_step = 0;
  uint64_t last_step = 0;
  uint64_t sampled_steps = 0;  // distinct steps holding observations
  // Distinct steps the run went through as far as the trace knows: step marks, observations and
  // loss-scale records (step marks are written for every step, sampled or not).
  uint64_t run_steps = 0;
  uint64_t run_first_step = 0;
  uint64_t run_last_step = 0;
  uint64_t gemm_calls = 0;  // distinct seq values among the observations
};

// Progress of a long analysis: called with the fraction done in [0, 1], from the calling thread.
using ProgressFn = std::function<void(double)>;

// Runs every single-run analysis and ranks the findings. Deterministic.
RunAnalysis analyze(const trace::TraceModel& model, const AnalysisOptions& opt = {},
                    const ProgressFn& progress = {});

// Findings from comparing against a baseline run (drift beyond thresholds), kind
// "baseline_drift", ranked; used by `report --baseline` and `summary --baseline`.
std::vector<Finding> baseline_findings(const trace::TraceModel& base, const trace::TraceModel& run,
                                       const std::vector<CrossRunDrift>& drift);

// Adds the baseline findings of `run` against `base` (compare_runs with a->options.cross) to
// a->findings and re-ranks them.
void add_baseline_findings(const trace::TraceModel& base, const trace::TraceModel& run,
                           RunAnalysis* a);

// Severity of an FP8 what-if result (docs/metrics.md "FP8 what-if"): saturation (overflow lower
// bound / eligible) f > 0 is Info, f >= 1e-3 Warning; underflow f >= risk.underflow_warn Info,
// >= risk.underflow_error Warning. Hypothetical (another recipe than the run's): never above
// Warning. Returns the worse of the two; *kind "fp8_saturation" or "fp8_underflow".
Severity whatif_severity(const WhatIfTensor& w, const RiskOptions& risk, int* score,
                         std::string* kind);

// Sorts findings by score desc, kind, tensor id, first step: the one ranking everyone uses.
void rank_findings(std::vector<Finding>* findings);

}  // namespace fpscope::analysis
