// The verdict of a run and its findings grouped by cause: what a reader of a bug ticket sees
// first (report top, `fpscope summary` top, summary --json "verdict" and "causes").
//
// Contract:
//  - Every finding belongs to exactly one cause; a cause is one (CauseKind, format) pair and
//    lists its findings by index into the findings vector it was built from, in rank order.
//  - Causes follow the mixed-precision recipe (CauseKind below). A cause's severity is the worst
//    of its findings'; its title, evidence and recommendation aggregate them (the tensors by
//    name, the first few then "and N more"; the first step; the worst number).
//  - The verdict is derived from the causes only (never per trace): "broken" when something went
//    wrong in the run itself at Error or worse (NaN/Inf reached the weights, the loss scale
//    collapsed); else "at risk in FORMAT" when a cause about the run itself or about a cast it
//    can make (FP16/BF16 range and precision, non-FP32 master weights, skipped steps of a scaler
//    that does not probe) is Warning or worse; else "healthy". What-ifs of another recipe (FP8
//    delayed scaling, BF16 master weights), overflow a probing loss scaler removes, and drift
//    hints never move the verdict.
//  - Causes are ordered: the ones that decide the verdict first, then severity, then the best
//    finding score, then CauseKind order. Deterministic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fpscope/analysis/findings.h"

namespace fpscope::analysis {

enum class CauseKind : uint8_t {
  NonfiniteProduced,   // "nonfinite": NaN/Inf produced by an op and reaching the weights
  LossScaler,          // "loss_scaler": collapse, skipped steps (probing or not)
  NonfiniteInSkipped,  // "nonfinite_in_skipped_steps": NaN/Inf only in steps the scaler skipped
  RangeOverflow,       // "range_overflow": a cast to the format would overflow
  Underflow,           // "underflow": ... would flush values to zero
  Precision,           // "precision": SQNR loss beyond the margin
  MasterWeights,       // "master_weights": master weights not FP32, or BF16 copies lose updates
  LossScaledOverflow,  // "loss_scaled_overflow": FP16 overflow a probing loss scaler removes
  Fp8Saturation,       // "fp8_scaling_lag": FP8 delayed scaling saturates when the amax jumps
  Fp8Underflow,        // "fp8_underflow": FP8 delayed scaling flushes small values
  IntendedInfinity,    // "intended_infinity": additive masks (-Inf by design)
  Drift,               // "drift": change points within the run (a hint)
  BaselineDrift,       // "baseline_drift": drift against a baseline run
  ReplicaDesync,       // "replica_desync": data-parallel replicas' weights differ (rank sets)
  RankSkew,            // "rank_skew": a rank's amax far from its replicas' (rank sets)
  BlockFormats,        // "block_formats": block-scaled formats would flush/saturate (a what-if)
};
inline constexpr int kNumCauseKinds = 16;
const char* cause_kind_name(CauseKind k);

struct Cause {
  CauseKind kind = CauseKind::RangeOverflow;
  Severity severity = Severity::Info;
  int score = 0;  // the best score of its findings
  std::optional<Format> format;
  std::vector<size_t> findings;      // indices into the findings, rank order
  std::vector<std::string> tensors;  // distinct tensor ids (weights: names), rank order
  int64_t first_step = -1;
  int64_t last_step = -1;
  bool decides_verdict = false;
  // A cast cause (range, underflow, precision) to a format a mixed-precision run does not store
  // (a BF16 run's FP16 casts): a what-if, shown but never moving the verdict. An FP32-only run's
  // casts all count: which format it can move to is its question.
  bool what_if = false;
  std::string title;           // one line, aggregated
  std::string evidence;        // the numbers behind it
  std::string recommendation;  // what to do (the top finding's)
};

// Unmeasured: nothing is wrong, and no GEMM was observed either (the run's matrix multiplies ran
// where the probe has no hook): "healthy" would claim what nobody measured.
enum class VerdictState : uint8_t { Healthy = 0, AtRisk = 1, Broken = 2, Unmeasured = 3 };
// "healthy", "at_risk", "broken", "unmeasured"
const char* verdict_state_name(VerdictState s);

struct Verdict {
  VerdictState state = VerdictState::Healthy;
  std::vector<Format> formats;   // at risk: the formats concerned (may be empty)
  std::string headline;          // "healthy", "at risk in fp16", "broken", "nothing measured"
  std::vector<std::string> why;  // one to three sentences
  std::string next_action;       // the single most useful next step
};

struct RunCauses {
  Verdict verdict;
  std::vector<Cause> causes;
};

// Groups `findings` (a.findings, or those plus a baseline's, ranked) by cause and derives the
// verdict. `a` supplies the context: risk rows (amax, SQNR), loss scale, FP8 what-if, weights.
RunCauses build_causes(const RunAnalysis& a, const std::vector<Finding>& findings);

// "FP16 would overflow 7 tensors (gemm#5.D, gemm#7.D, gemm#10.D and 4 more)": the first
// `shown` ids then "and N more".
std::string tensor_list(const std::vector<std::string>& ids, size_t shown = 3);

// summary --json: adds "verdict" and "causes" (docs/summary-json.md) to `j`, built from
// a.findings (whose indices the causes list).
void add_causes_json(const RunAnalysis& a, nlohmann::ordered_json* j);

// summary text: the verdict, why, next action and the first `max_causes` causes, wrapped to
// `width` columns (0: unlimited), then a blank line.
std::string causes_text(const RunAnalysis& a, int width, size_t max_causes = 10);

}  // namespace fpscope::analysis
