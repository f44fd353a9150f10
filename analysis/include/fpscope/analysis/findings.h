// The whole analysis of one run, and the ranked findings built from it.
//
// How to add a finding kind
//  1. Append it to FindingKind below, bump kNumFindingKinds, and give it its name in kind_name()
//     (findings.cpp; snake_case: the name is what summary --json, the reports and the tests see,
//     and the ranking's tie-breaker). parse_kind() and the round-trip test follow kind_name().
//  2. Put its numbers (level, magnitude scale, thresholds) in FindingOptions
//     (finding_options.h), each with its default and what it means; no literals in the code.
//  3. Write its family function in analysis/src/findings_<family>.cpp (declared in
//     src/findings_families.h): it reads the analysis results (RunAnalysis fields, or a new
//     analysis you add to RunAnalysis and to analyze()), appends Findings with severity,
//     score = level_score(severity, magnitude), kind, tensor, format, steps, title, evidence and
//     recommendation; push findings of one kind in a deterministic order (ties keep it).
//  4. Call it from analyze() in findings.cpp (before rank_findings).
//  5. The reports list every kind in rank order; report.cpp caps the FP8 what-if and drift kinds
//     separately (listed_findings): add the new kind there only if it needs such a cap.
//  6. Document it: docs/metrics.md (what it measures), docs/summary-json.md (the kind's name
//     among "kind" values), docs/cli.md if an option controls it.
//  7. Test it in tests/analysis/test_findings.cpp on a hand-built trace: the finding appears
//     with the expected severity/score/evidence, and does not appear just below its threshold.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fpscope/analysis/common.h"
#include "fpscope/analysis/drift.h"
#include "fpscope/analysis/finding_options.h"
#include "fpscope/analysis/format_choice.h"
#include "fpscope/analysis/loss_scale.h"
#include "fpscope/analysis/risk.h"
#include "fpscope/analysis/weights.h"
#include "fpscope/analysis/whatif.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace fpscope::analysis {

// What a finding is about. kind_name() gives the name JSON and reports print.
enum class FindingKind : uint8_t {
  Nonfinite,          // "nonfinite": NaN/Inf in a tensor's data
  Overflow,           // "overflow": a target format would overflow
  Underflow,          // "underflow": a target format would flush values to zero
  Sqnr,               // "sqnr": a cast loses precision beyond the nominal SQNR margin
  LossScaleCollapse,  // "loss_scale_collapse"
  SkippedSteps,       // "skipped_steps": optimizer steps skipped for Inf/NaN gradients
  MasterNotFp32,      // "master_not_fp32"
  MasterWeightLoss,   // "master_weight_loss": BF16 master weights would lose updates
  Fp8Saturation,      // "fp8_saturation": FP8 delayed-scaling what-if saturates
  Fp8Underflow,       // "fp8_underflow": ... flushes to zero
  Drift,              // "drift": change points within the run
  BaselineDrift,      // "baseline_drift": drift against a baseline run
  AdditiveMask,       // "additive_mask": -Inf of an additive (attention) mask, by design
  // Cross-rank kinds (a rank set: ranks.h, findings_ranks.cpp); tensor -1, the id names it.
  RankFirstFault,  // "rank_first_fault": the first rank (step, op) with NaN/Inf or an overflow
  RankSkew,        // "rank_skew": a rank's amax far from its replicas' on the same op and step
  RankDesync,      // "rank_desync": replicated operands (weights) differ between replicas
  RankLossScale,   // "rank_loss_scale": the ranks' loss scalers disagree
  // Master weights and optimizer state (issue 21; after the cross-rank kinds: values unchanged).
  OptimizerStateLowPrecision,  // "optimizer_state_low_precision": Adam moments etc. in BF16/FP16
  Fp16MasterStagnant,          // "fp16_master_stagnant": FP16 master weights drop updates
  // Block-scaled formats (issue 19; traces with block statistics only, findings_blocks.cpp).
  BlockLoss,  // "block_loss": MXFP8/MXFP6/MXFP4/NVFP4 would flush or saturate inside blocks
};
inline constexpr int kNumFindingKinds = 20;

// "nonfinite", "overflow", ... (the comments above): the one spelling of each kind.
const char* kind_name(FindingKind k);
// The inverse of kind_name; nullopt for any other string.
std::optional<FindingKind> parse_kind(std::string_view name);
// Writes kind_name(k) (test messages).
std::ostream& operator<<(std::ostream& os, FindingKind k);

struct Finding {
  Severity severity = Severity::Info;
  int score = 0;  // level_score(severity, magnitude): the ranking key (desc), then kind name,
                  // then tensor id, then first step
  FindingKind kind = FindingKind::Nonfinite;
  int64_t tensor = -1;    // TensorInfo::index, -1 when not about one tensor
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
  FindingOptions findings;  // levels, magnitudes and thresholds of the findings and risk rows
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
  // The what-if's format comparison: only for traces with block statistics (format_choice.h).
  std::vector<FormatChoice> format_choices;
  std::vector<TensorDrift> drift;  // tensors with change points, in tensor index order
  std::vector<Finding> findings;   // ranked
  // With a baseline (add_baseline_findings): compare_runs(base, this run), every matched tensor.
  std::vector<CrossRunDrift> baseline_drift;
  uint64_t steps = 0;  // distinct steps holding observations or loss-scale records
  uint64_t first_step = 0;
  uint64_t last_step = 0;
  uint64_t sampled_steps = 0;  // distinct steps holding observations
  // Distinct steps the run went through as far as the trace knows: step marks, observations and
  // loss-scale records (step marks are written for every step, sampled or not).
  uint64_t run_steps = 0;
  uint64_t run_first_step = 0;
  uint64_t run_last_step = 0;
  uint64_t gemm_calls = 0;  // distinct seq values among the observations
  // The PyTorch integration's first warning that matrix multiplies ran where the probe has no hook
  // (CPU autocast, modules without a GEMM: a warning event starting with
  // trace::kNotMeasuredPrefix, prefix removed; empty: none).
  std::string not_measured;
};

// Progress of a long analysis: called with the fraction done in [0, 1], from the calling thread.
using ProgressFn = std::function<void(double)>;

// Runs every single-run analysis (loss scale, risk, master weights, FP8 what-if, drift), then
// the finding families on their results, and ranks the findings. Deterministic.
RunAnalysis analyze(const trace::TraceModel& model, const AnalysisOptions& opt = {},
                    const ProgressFn& progress = {});

// Findings from comparing against a baseline run (drift beyond thresholds), kind
// BaselineDrift, ranked; used by `report --baseline` and `summary --baseline`.
std::vector<Finding> baseline_findings(const trace::TraceModel& base,
                                       const std::vector<CrossRunDrift>& drift,
                                       const FindingOptions& opt = {});

// Adds the baseline findings of `run` against `base` (compare_runs with a->options.cross) to
// a->findings and re-ranks them.
void add_baseline_findings(const trace::TraceModel& base, const trace::TraceModel& run,
                           RunAnalysis* a);

// Severity of an FP8 what-if result (docs/metrics.md "FP8 what-if"): saturation (overflow lower
// bound / eligible) f > 0 is Info, f >= opt.fp8_saturation_warn Warning; underflow
// f >= risk.underflow_warn Info, >= risk.underflow_error Warning. Hypothetical (another recipe
// than the run's): never above Warning. Returns the worse of the two; *kind Fp8Saturation or
// Fp8Underflow (saturation on a tie).
Severity whatif_severity(const WhatIfTensor& w, const RiskOptions& risk, int* score,
                         FindingKind* kind, const FindingOptions& opt = {});

// Sorts findings by score desc, kind name, tensor id, first step: the one ranking everyone uses.
void rank_findings(std::vector<Finding>* findings);

}  // namespace fpscope::analysis
