// `fpscope compare`: N runs of the same deterministic program (e.g. one training run in FP32 and
// under --emulate bf16 / e4m3) compared with the first, tensor by tensor, without the tensors:
// from the value sketches (trace format 1.4) each trace carries (drift.h "Value difference",
// docs/metrics.md "Cross-run difference").
//
// The report (compare_report), deterministic for the same traces and labels:
//  (a) the runs: label, path, emulation (metadata config.emulate; "off" when none), observed steps,
//      whether the trace has sketches;
//  (b) the loss curves side by side: per step, each run's loss (the mean of the step's LOSS
//      records) and each other run's relative difference (other - ref) / |ref|. With no loss in
//      any run: the value difference of the reference's last GEMM output (the role-D tensor of
//      the reference's last observation) per step instead (no rows when no step of it is
//      measurable: no sketches);
//  (c) per other run: the matched tensors ranked by how early they diverge (drift.h
//      rank_by_divergence); Markdown shows the top `top_tensors`, JSON every one with its
//      per-step series (steps, rel_diff);
//  (e) per FP8 run: the reference's FP8 what-if against where the run diverged (WhatIfAgreement);
//  (d) per other run: at its first divergence (the earliest step at which any tensor differs by
//      more than 1 %, and there the tensor whose op ran first: smallest seq in the reference), the
//      other run's overflow/underflow counts in the format it emulates (bf16 -> BF16, fp16 -> FP16,
//      e4m3/hybrid -> E4M3, e5m2 -> E5M2; not emulated: the format with the most overflow +
//      underflow there), beside the reference's at the same step.
// Markdown rows of (b) are sampled (at most max_loss_rows evenly spaced plus the last); JSON has
// every row.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fpscope/analysis/drift.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace fpscope::analysis {

struct CompareInput {
  std::string label;  // "fp32", "bf16", ... (unique per report; the CLI makes them so)
  const trace::Trace* trace = nullptr;
  const trace::TraceModel* model = nullptr;  // over *trace
};

struct CompareOptions {
  size_t max_loss_rows = 40;
  size_t top_tensors = 20;
  CrossRunOptions cross;
};

struct CompareRunFacts {
  std::string label, path;
  std::string emulate;  // config.emulate, "" when not emulated
  uint64_t steps = 0;   // distinct steps with observations
  uint64_t last_step = 0;
  bool sketches = false;
  size_t losses = 0;  // LOSS records
};

struct LossRow {
  uint64_t step = 0;
  std::vector<double> value;     // per run: mean loss, or (fallback) rel diff; NaN: none
  std::vector<double> rel_diff;  // per run (entry 0 unused, NaN): relative to the reference
};

// The first-diverging tensor's overflow/underflow evidence (d).
struct DivergenceEvidence {
  bool present = false;         // a tensor differs by more than 1 % at some step
  size_t drift = 0;             // index into CompareRunResult::drift
  uint64_t step = 0;            // its first step > 1 %
  int target = 0;               // index into kTargets
  bool target_emulated = true;  // false: chosen as the format with the most out-of-range values
  uint64_t count = 0, overflow = 0, underflow = 0, nonfinite = 0;  // this run, at (tensor, step)
  uint64_t ref_count = 0, ref_overflow = 0, ref_underflow = 0, ref_nonfinite = 0;
  // Zeros in the data: an emulated run's values are already cast, so what its cast flushed shows
  // as zeros (its own underflow count is ~0), and the reference's counts say what the cast does.
  uint64_t zero = 0, ref_zero = 0;
  double rel_diff = 0.0;  // at that step
};

// One row of (c).
struct RankedTensor {
  size_t drift = 0;            // index into CompareRunResult::drift
  std::string name;            // the reference's TensorInfo name, else its id
  std::string role;            // "A", "B", "C", "D", "W"
  uint64_t last_step = 0;      // the last common step
  double last_rel_diff = 0.0;  // the rel diff there (NaN: not measurable)
};

// For a run that emulates FP8 (e4m3, e5m2, hybrid): the reference's FP8 what-if (delayed
// scaling; its fp8_saturation / fp8_underflow findings in the format the run uses) held against
// where the run really diverged. A what-if predicts what one cast loses where scaling fails; a
// run also differs wherever the format merely rounds (E4M3 keeps 3 mantissa bits), so a first
// divergence that the what-if did not flag is explained, not hidden.
struct WhatIfAgreement {
  bool applies = false;              // the run emulates E4M3 or E5M2
  int target = 0;                    // index into kTargets
  std::vector<std::string> flagged;  // tensor ids the what-if flags, by severity (report order)
  int64_t first_flagged_step = -1;   // the earliest first step among them
  bool first_divergence_flagged = false;
  size_t flagged_over_10pct = 0;  // flagged tensors that differ by > 10 % at some step here
  size_t flagged_measurable = 0;  // flagged tensors with a measurable difference
};

struct CompareRunResult {
  size_t run = 0;                    // index into the inputs (>= 1)
  std::vector<CrossRunDrift> drift;  // compare_runs(ref, run): every matched tensor
  std::vector<RankedTensor> ranked;  // rank_by_divergence(drift): every measurable tensor
  size_t measurable = 0;             // matched tensors with a measurable rel diff
  size_t diverging = 0;              // ... that differ by more than 1 % at some step
  DivergenceEvidence first;
  WhatIfAgreement whatif;  // FP8 runs: the reference's what-if against this run
};

struct CompareReport {
  std::vector<CompareRunFacts> runs;
  bool losses = false;             // some run recorded a loss; false: loss_rows hold the fallback
  std::string fallback_tensor;     // the fallback's tensor id; "" when none
  std::vector<LossRow> loss_rows;  // every step, ascending
  std::vector<CompareRunResult> others;  // runs[1..], in order
};

// inputs[0] is the reference; throws std::invalid_argument with fewer than 2 inputs.
CompareReport compare_report(const std::vector<CompareInput>& inputs,
                             const CompareOptions& opt = {});

std::string compare_markdown(const CompareReport& r, const CompareOptions& opt = {});
nlohmann::ordered_json compare_json(const CompareReport& r);

// The kTargets index a run's emulation spec stands for ("bf16", "e4m3:current", "hybrid"...), or
// -1 when none (not emulated, unknown spec).
int emulated_target(const std::string& emulate);

}  // namespace fpscope::analysis
