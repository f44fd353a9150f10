// The FP8 what-if's format comparison (issue 19 item 3; docs/metrics.md "Format comparison"):
// per tensor, per-tensor E4M3 with delayed and with current scaling beside every block-scaled
// format the probe measured on it (MXFP8 E4M3/E5M2, MXFP6 E2M3/E3M2, MXFP4, NVFP4), each with its
// loss (elements that flush or saturate) and SQNR, and the cheapest format that holds the tensor.
//
// Contract:
//  - Only for traces with block statistics (Trace::block_stats): empty otherwise, so the outputs
//    of other traces stay as they were. Then one entry per tensor the FP8 what-if replays (dtype
//    not FP8 unless WhatIfOptions::include_fp8_tensors), in tensor index order.
//  - Same data: the block columns sum the tensor's observations whose block section measured
//    that format (block_totals.h); E4M3 current covers the tensor's observations with a block
//    section (all its observations when it has none); E4M3 delayed covers those of them at steps
//    the what-if replayed (its seed steps have no delayed scale). Each column says what it covers
//    (observations, first and last step).
//  - Per-tensor E4M3 counts at a scale s are exact when the observation's E4M3 counts were
//    recorded at exactly s (FormatCounts::scale == s), else bounds from the exponent histogram
//    (histogram.h; overflow 0 when the amax itself does not overflow at s), the squared error then
//    estimated per histogram bin (flushed: the element's square; kept: quantum^2 / 12).
//    Current scaling: s = Fp8Scaler::current_scale(E4M3, observation amax) (no margin). Delayed:
//    the what-if's scale of that step.
//  - A format holds the tensor when its loss (upper bound) is at most
//    FindingOptions::format_hold_loss and its SQNR is not below its element format's nominal minus
//    block_hold_sqnr_margin_db (NaN SQNR: no signal or an overflow, the loss alone decides).
//  - The recommendation is the first format of kFormatCandidates (cheapest first) that was
//    measured on the tensor and holds it, else BF16.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fpscope/analysis/finding_options.h"
#include "fpscope/analysis/whatif.h"
#include "fpscope/trace_model.h"

namespace fpscope::analysis {

// A format the comparison can recommend.
struct FormatCandidate {
  const char* key;      // JSON key: "mxfp4", "e4m3_delayed", "bf16"
  const char* display;  // "MXFP4", "E4M3 delayed", "BF16"
  int block_format;     // index into kBlockFormats; -1 per-tensor (E4M3 or BF16)
  bool per_tensor_e4m3;
  bool delayed;  // per-tensor E4M3: delayed (true) or current (false) scaling
  double bits;   // storage bits per element, the block scale included (per-tensor scales: 0)
};

// THE cost order of the recommendation, cheapest first: bits per element with the scale
// (MXFP4 4 + 8/32, NVFP4 4 + 8/16, MXFP6 6 + 8/32, per-tensor E4M3 8, MXFP8 8 + 8/32, BF16 16);
// formats of equal bits in the order that prefers more mantissa bits (E2M3 before E3M2, MXFP8
// E4M3 before E5M2) and, for per-tensor E4M3, delayed scaling (Transformer Engine's default, no
// extra amax pass) before current. BF16 is last: the fallback, never measured.
inline constexpr int kNumFormatCandidates = 9;
extern const FormatCandidate kFormatCandidates[kNumFormatCandidates];
inline constexpr int kCandidateBf16 = kNumFormatCandidates - 1;

// One format's numbers on one tensor.
struct FormatResult {
  bool measured = false;  // numbers exist (BF16: never)
  uint64_t elements =
      0;  // the loss's denominator: finite elements (blocks: of finite-scale blocks)
  uint64_t lost_lo = 0, lost_hi = 0;  // flushed + saturated (bounds; equal when exact)
  double loss_lo = 0.0, loss_hi = 0.0;
  double sqnr_db = 0.0;  // NaN: no signal (or, per-tensor, a certain overflow); +inf: exact
  bool holds = false;
  // What the column covers.
  uint64_t observations = 0;
  int64_t first_step = -1, last_step = -1;
  // Per-tensor E4M3: observations counted exactly / from the histogram (the SQNR of the latter
  // is an estimate).
  uint64_t exact_observations = 0, histogram_observations = 0;
};

struct FormatChoice {
  uint32_t tensor = 0;
  std::string id;
  FormatResult result[kNumFormatCandidates];  // kFormatCandidates order
  int recommended = kCandidateBf16;           // index into kFormatCandidates
};

// The comparison (the contract above); `whatif` is fp8_whatif's result with `wopt` (its E4M3
// entries give the delayed scales; without them the delayed column is not measured).
std::vector<FormatChoice> format_choices(const trace::TraceModel& model,
                                         const std::vector<WhatIfTensor>& whatif,
                                         const WhatIfOptions& wopt, const FindingOptions& opt);

// Text shared by the findings and the report: the loss ("0.1%", "0.01% to 0.3%" between histogram
// bounds, "-" not measured) and the SQNR ("27.0 dB", "~27.0 dB" when estimated from the
// histogram, "-" not measured).
std::string format_loss_str(const FormatResult& r);
std::string format_sqnr_str(const FormatResult& r);
// What the comparison says for one tensor, as a clause after "...: " ("use NVFP4: the cheapest
// compared format that holds it (...)", "keep it in BF16 (no compared format holds it: ...)"),
// naming MXFP8 E4M3's measured loss when it was measured, else how to measure it.
std::string format_choice_clause(const FormatChoice& ch, const FindingOptions& opt);
// The choice of one tensor in `choices` (format_choices' result, tensor index order), or nullptr.
const FormatChoice* format_choice_of(const std::vector<FormatChoice>& choices, uint32_t tensor);

// The nominal SQNR of candidate c's element format (common.h's rule; BF16's for BF16).
double candidate_nominal_db(int c);
// Whether a format with this loss (upper bound) and SQNR holds a tensor (the contract's rule).
bool format_holds(double loss_hi, double sqnr_db, double nominal_db, const FindingOptions& opt);

}  // namespace fpscope::analysis
