// The finding families that analyze() (findings.cpp) runs on the analyses' results. Each one
// appends its findings, unranked, in a deterministic order (rank_findings keeps the order of
// ties); every number it scores or thresholds with comes from FindingOptions / RiskOptions.
// Internal to the analysis library.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fpscope/analysis/findings.h"

namespace fpscope::analysis::families {

// Text shared by the families: "at step 3" (first == last or last < 0), "from step 3", "" when
// first < 0.
std::string steps_phrase(int64_t first, int64_t last);

// Context rules of the loss scaler (finding_options.h "probing"), shared by the families and
// the causes (causes.cpp), so a finding's level and its cause agree.
// The scaler backs off and grows back: skipped steps are it doing its job.
bool scaler_probing(const LossScaleAnalysis& ls, const FindingOptions& opt);
// r's FP16 overflow is one a probing scaler removes by backing off: r.amax divided by the run's
// smallest loss scale (> 1) fits FP16. The trace does not say which GEMMs run in the backward
// pass; a forward tensor that overflowed FP16 in a real FP16 run would have made every step
// skip (no probing scaler), so under a probing scaler the overflow is of loss-scaled values.
bool loss_scaled_overflow(const TensorRisk& r, const LossScaleAnalysis& ls,
                          const FindingOptions& opt);

// findings_tensor.cpp, from the risk rows (risk.skipped_steps: the loss scaler's skipped steps).
// Nonfinite: NaN/Inf in a tensor's data (only at skipped steps: nonfinite_in_skipped, or
// nonfinite_in_probing under a probing scaler), except the tensors of an additive mask
// (is_additive_mask).
void nonfinite_findings(const std::vector<TensorRisk>& risks, const RiskOptions& risk,
                        const LossScaleAnalysis& ls, const FindingOptions& opt,
                        std::vector<Finding>* out);
// AdditiveMask: one per mask C (is_additive_mask), covering the D outputs of its GEMM.
void additive_mask_findings(const std::vector<TensorRisk>& risks, const FindingOptions& opt,
                            std::vector<Finding>* out);
// Overflow and Underflow of each target format (FP8 only when its counts were scaled); FP16
// overflow that loss_scaled_overflow() clears is overflow_loss_scaled.
void range_findings(const std::vector<TensorRisk>& risks, const RiskOptions& risk,
                    const LossScaleAnalysis& ls, const FindingOptions& opt,
                    std::vector<Finding>* out);
// Sqnr: a cast's SQNR below nominal by more than risk.sqnr_margin_db (FP8 only when scaled).
void precision_findings(const std::vector<TensorRisk>& risks, const RiskOptions& risk,
                        const FindingOptions& opt, std::vector<Finding>* out);

// findings_training.cpp: LossScaleCollapse, SkippedSteps; MasterNotFp32, MasterWeightLoss,
// Fp16MasterStagnant (from the weight-update records); OptimizerStateLowPrecision (from the
// PyTorch integration's "optimizer state: <name>: <optimizer>: <key> <dtype>, ..." events, one
// finding per parameter, in trace order; linked to the parameter's watch when it has one).
void loss_scale_findings(const LossScaleAnalysis& ls, const FindingOptions& opt,
                         std::vector<Finding>* out);
void weight_findings(const std::vector<WeightLoss>& weights, const FindingOptions& opt,
                     std::vector<Finding>* out);
void optimizer_state_findings(const trace::Trace& trace, const std::vector<WeightLoss>& weights,
                              const FindingOptions& opt, std::vector<Finding>* out);

// findings_fp8.cpp: one Fp8Saturation or Fp8Underflow finding per (tensor, FP8 format). With
// `choices` (the format comparison: traces with block statistics) the evidence lists the compared
// formats and the recommendation follows the comparison.
void whatif_findings(const std::vector<WhatIfTensor>& whatif,
                     const std::vector<FormatChoice>& choices, const AnalysisOptions& opt,
                     std::vector<Finding>* out);

// findings_blocks.cpp: one BlockLoss finding per tensor whose observations carry block statistics
// (trace format 1.3) and one of whose measured block formats flushes or saturates at least
// opt.block_loss_info of its elements (a.options.findings; a.risks, a.whatif for the evidence).
// Appends nothing for traces without block statistics.
void block_findings(const trace::TraceModel& model, const RunAnalysis& a,
                    std::vector<Finding>* out);

// findings_drift.cpp: one Drift finding per tensor with change points (a.drift, a.risks,
// a.options). Baseline drift: baseline_findings() in findings.h.
void drift_findings(const trace::TraceModel& model, const RunAnalysis& a,
                    std::vector<Finding>* out);

}  // namespace fpscope::analysis::families
