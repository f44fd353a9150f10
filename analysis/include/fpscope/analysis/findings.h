// The whole analysis of one run, and the ranked findings built from it.
#pragma once

#include <cstdint>
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
  std::string kind;     // "nonfinite", "overflow", "underflow", "subnormal", "sqnr",
                        // "loss_scale_collapse", "skipped_steps", "master_not_fp32",
                        // "master_weight_loss", "fp8_saturation", "fp8_underflow", "drift"
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
  CrossRunOptions cross;
};

struct RunAnalysis {
  AnalysisOptions options;        // what produced this analysis
  std::vector<TensorRisk> risks;  // sorted by severity
  LossScaleAnalysis loss_scale;
  std::vector<WeightLoss> weights;
  std::vector<WhatIfTensor> whatif;
  std::vector<Finding> findings;  // ranked
  uint64_t steps = 0;             // distinct steps holding observations or loss-scale records
  uint64_t first_step = 0;
  uint64_t last_step = 0;
  uint64_t gemm_calls = 0;  // distinct seq values among the observations
};

// Runs every single-run analysis and ranks the findings. Deterministic.
RunAnalysis analyze(const trace::TraceModel& model, const AnalysisOptions& opt = {});

// Findings from comparing against a baseline run (drift beyond thresholds), ranked; used by
// `report --baseline` and `diff`.
std::vector<Finding> baseline_findings(const trace::TraceModel& base, const trace::TraceModel& run,
                                       const std::vector<CrossRunDrift>& drift);

// Sorts findings by score desc, kind, tensor id, first step: the one ranking everyone uses.
void rank_findings(std::vector<Finding>* findings);

}  // namespace fpscope::analysis
