// How findings, and the risk rows that share their scale, are scored and thresholded: every
// number in one struct with its documented default (docs/metrics.md describes the behaviour
// these defaults give). Its own header because risk.h (the risk rows) and findings.h both use it
// and findings.h includes risk.h.
//
// A score is level * kScorePerLevel + magnitude: the level is the finding's Severity (so every
// Critical ranks above every Error), the magnitude in [1, kMaxMagnitude] orders findings of one
// level (0 only when nothing was measured). Magnitudes come from one of two maps:
//  - fraction_magnitude: a fraction in [10^-fraction_decades, 1] on a log scale (any nonzero
//    fraction ranks above 0);
//  - linear_magnitude: a quantity in [0, full] linearly (SQNR deficits in dB).
// The thresholds that decide underflow, subnormal and SQNR findings (and risk rows) are
// RiskOptions' (underflow_warn, underflow_error, subnormal_info, sqnr_margin_db): the GUI and the
// reports read them there.
#pragma once

#include <cstddef>

#include "fpscope/analysis/common.h"

namespace fpscope::analysis {

inline constexpr int kScorePerLevel = 1000;
inline constexpr int kMaxMagnitude = 999;

struct FindingOptions {
  // --- Levels: the severity (score thousands) of each kind; underflow's comes from RiskOptions.
  Severity nonfinite = Severity::Critical;            // NaN/Inf reached a tensor's data
  Severity nonfinite_in_skipped = Severity::Warning;  // ... only at steps the scaler skipped
  // -Inf of an additive mask (risk.h is_additive_mask), and the D output it covers: by design.
  Severity additive_mask = Severity::Info;
  // ... only at skipped steps of a probing scaler (scaler_probing below): the scaler's job.
  Severity nonfinite_in_probing = Severity::Info;
  Severity overflow = Severity::Error;  // a target format's overflow (FP8: only when scaled)
  // FP16 overflow of a loss-scaled tensor under a probing scaler whose amax divided by the run's
  // smallest loss scale fits FP16: backing off (which the scaler does) removes it.
  Severity overflow_loss_scaled = Severity::Info;
  Severity sqnr = Severity::Warning;    // SQNR below nominal - RiskOptions::sqnr_margin_db
  Severity subnormal = Severity::Info;  // risk rows only: subnormal >= RiskOptions::subnormal_info
  // Risk rows only: FP8 counts taken unscaled are at most this level (real FP8 recipes scale;
  // the FP8 what-if judges FP8 under scaling). The findings leave such counts out altogether.
  Severity unscaled_fp8_max = Severity::Info;
  Severity loss_scale_collapse = Severity::Error;
  // A collapse is one fact, not a measured fraction: a fixed magnitude that ranks it above the
  // Error findings of realistic overflow fractions (magnitude 900 = fraction ~0.2).
  int loss_scale_collapse_magnitude = 900;
  Severity master_not_fp32 = Severity::Error;
  // Optimizer state (Adam moments, momentum) in BF16/FP16: the probe's PyTorch integration sees it.
  Severity optimizer_state_low_precision = Severity::Warning;
  // FP16 master weights (the parameter's own dtype) whose elements a step left unchanged:
  // reported when the unchanged fraction >= master_loss_report.
  Severity fp16_master_stagnant = Severity::Error;
  Severity drift = Severity::Info;  // within-run change points: a hint, not a defect
  Severity baseline_drift = Severity::Warning;

  // --- Magnitudes.
  double fraction_decades = 7.0;       // fraction_magnitude: 10^-7 -> 1, 1 -> 999
  double sqnr_deficit_full_db = 60.0;  // SQNR this far below nominal -> 999 (linear)
  // Change strength (drift, baseline_drift), in [0, 1] then scored with fraction_magnitude:
  // |log2 of the amax factor| / change_amax_octaves, |SQNR change| / change_sqnr_db.
  double change_amax_octaves = 20.0;
  double change_sqnr_db = 60.0;
  // baseline_drift: the amax ratio scored when the trace's is 0, negative or not finite.
  double baseline_unknown_ratio = 1e7;

  // --- Thresholds of the finding families whose thresholds RiskOptions does not hold.
  // FP8 what-if (a hypothetical recipe, so never above Warning): saturation fraction Warning at
  // or above, Info below; underflow Info at RiskOptions::underflow_warn, Warning at
  // underflow_error.
  double fp8_saturation_warn = 1e-3;
  double skipped_steps_warn = 0.01;  // skipped / loss-scale records: Warning at or above, else Info
  // A dynamic loss scaler is "probing" (doing its job) when its trace has records, it did not
  // collapse, it grew at least once and at least as often as it backed off minus one (the scale
  // oscillates around a level instead of falling), and it skipped fewer than this fraction of
  // the steps. Then skipped steps are skipped_steps_probing, NaN/Inf confined to them
  // nonfinite_in_probing, and FP16 overflow it can back off from overflow_loss_scaled.
  double probing_skipped_max = 0.25;
  Severity skipped_steps_probing = Severity::Info;
  // master_weight_loss: reported when max(BF16 stagnant, BF16 lost mass) >= master_loss_report;
  // Warning when stagnant >= master_stagnant_warn or lost mass >= master_lost_mass_warn.
  double master_loss_report = 0.01;
  double master_stagnant_warn = 0.5;
  double master_lost_mass_warn = 0.1;

  // --- Cross-rank findings (findings_ranks.cpp; a rank set of data-parallel replicas).
  Severity rank_first_nonfinite = Severity::Critical;  // NaN/Inf, first on some rank
  Severity rank_first_overflow = Severity::Warning;    // a BF16/FP16 overflow starting on a rank
                                                       // before the others
  Severity rank_skew = Severity::Warning;
  // rank_skew: a rank's amax of an op at a step at least this many times the median of the
  // other ranks' (the same op on other data shards differs by a few x at most).
  double rank_skew_ratio = 64.0;
  double rank_skew_full_decades = 8.0;        // log10 of the ratio scored 999 (linear)
  Severity rank_desync = Severity::Critical;  // replicas' weights differ: training is broken
  Severity rank_loss_scale = Severity::Error;

  // --- Block-scaled formats (block_loss, findings_blocks.cpp; traces with block statistics).
  // A block format's loss on a tensor = (flushed + saturated) / elements of its blocks with a
  // finite scale: a finding at or above block_loss_info (Info), Warning at or above
  // block_loss_warn (a hypothetical recipe: never above Warning). A format "holds" the tensor
  // when its loss is at most format_hold_loss and the SQNR of its cast is at least the element
  // format's nominal SQNR (6.02 (mantissa bits + 1) + 5 dB) minus block_hold_sqnr_margin_db (the
  // one rule of format_choice.h, for block and per-tensor FP8 formats alike: the FP8 what-if's
  // format comparison and the block_loss recommendation); the recommendation names the cheapest
  // measured format that holds. format_hold_loss is block_loss_info's 1%: a format holds when
  // its loss would not even be a finding. Not the what-if's 0.1% saturation warning: OCP MX's
  // scale (floor(log2 block amax) - emax) saturates the largest element of many blocks by design
  // (~0.3% of a Gaussian tensor's elements in MXFP8), so at 0.1% no MX format would ever hold a
  // real tensor and every recommendation would read "keep BF16".
  double block_loss_info = 0.01;
  double block_loss_warn = 0.10;
  double block_hold_sqnr_margin_db = 10.0;
  double format_hold_loss = 0.01;

  // --- Evidence text: skipped steps / change points listed before "; ... N more".
  size_t evidence_list_max = 5;
};

// level * kScorePerLevel + magnitude.
constexpr int level_score(Severity level, int magnitude) {
  return static_cast<int>(level) * kScorePerLevel + magnitude;
}
// 0 for frac <= 0 (or NaN); else log10 scale over opt.fraction_decades, clamped to [1, 999].
int fraction_magnitude(double frac, const FindingOptions& opt);
// x / full * 999 rounded, clamped to [1, 999] (callers pass x > 0).
int linear_magnitude(double x, double full);

}  // namespace fpscope::analysis
