// Block-scaled formats as the viewer shows them (traces of format 1.3 carry, per observation, a
// BlockStatsRecord: for each measured format of kBlockFormats, MXFP8 E4M3/E5M2, MXFP6 E3M2/E2M3,
// MXFP4 and NVFP4, the counts of a block-scaled cast and a histogram of the block scales).
//
//  - BlockColumns: the tensor table's per-tensor totals. They are the analysis library's
//    (analysis/src/block_totals.h, the one aggregation behind the summary and the report's
//    "Block-scaled formats" table), so the viewer's numbers cannot disagree with them:
//    loss = (flushed + saturated) / elements, SQNR = 10 log10(sum_x2 / sum_err2).
//  - BlockSteps: one tensor's block statistics merged per step (the drift panel's series and
//    the histogram panel's scale distribution), built with TensorSteps (tensor_view.h).
//  - Block coverage: how many octaves one block covers (the element format's dynamic range,
//    log2(max finite / smallest positive), from formats.h) against the octaves the tensor spans
//    at a step (log2 amax - the lower edge of its lowest populated exponent-histogram bin).
// Definitions: docs/metrics.md "Block-scaled formats"; what the viewer shows: docs/gui.md.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fpscope/analysis/finding_options.h"
#include "fpscope/gui/colors.h"
#include "fpscope/stats.h"
#include "fpscope/trace_io.h"

namespace fpscope::gui {

// ---- per tensor (the tensor table) ----------------------------------------------------------
struct BlockCell {
  bool measured = false;     // the format was measured on this tensor and saw elements
  BlockFormatCounts counts;  // summed over the run
};
struct BlockColumns {
  // Formats measured on some tensor (kBlockFormats indices, ascending): one column group each.
  // Empty when the trace has no block statistics (then the table shows no block columns).
  std::vector<int> formats;
  std::vector<std::array<BlockCell, kNumBlockFormats>> tensors;  // index = tensor index
  // The cell of tensor `tensor` in format f, or nullptr when that tensor has no measurement.
  const BlockCell* cell(uint32_t tensor, int f) const;
};
BlockColumns block_columns(const trace::Trace& t);

// The analysis library's definitions (block_totals.h): (flushed + saturated) / elements (0 with
// no elements); SQNR dB of the block-scaled cast (NaN: no signal, +inf: exact).
double block_loss(const BlockFormatCounts& c);
double block_sqnr(const BlockFormatCounts& c);
// The table cell's colour for a loss, with the block_loss finding's thresholds (a what-if, never
// above Warning): Warning at or above block_loss_warn, Info at or above block_loss_info.
analysis::Severity block_loss_severity(double loss, const analysis::FindingOptions& opt);
// "MXFP8 E4M3" for kBlockFormats[f].
std::string block_format_label(int f);
// One colour per block format (lines, bars, column groups): MXFP8 a light tint of its element
// format's colour (E4M3, E5M2), the others colours of their own, none of them a severity red.
Rgb block_format_color(int f);

// ---- per step of one tensor -----------------------------------------------------------------
struct BlockSteps {
  uint32_t mask = 0;                // formats measured at some step (bit f)
  std::vector<uint32_t> step_mask;  // per step: formats measured at that step
  // Only the formats of `mask` are stored, each in its slot (slot[f], -1 for the others), so a
  // tensor measured in one format costs one entry per step. Per step and slot (index
  // i * slots + slot[f]): the counts summed over the step's observations that measured f, and
  // the sparse scale histogram (bins ascending).
  int slots = 0;
  int slot[kNumBlockFormats] = {-1, -1, -1, -1, -1, -1};
  std::vector<BlockFormatCounts> counts;
  std::vector<uint32_t> hist_off;  // steps * slots + 1 offsets into hist_bins / hist_counts
  std::vector<uint8_t> hist_bins;  // FP32 biased exponent of the scale (stats.h kBlockScaleBins)
  std::vector<uint64_t> hist_counts;

  bool empty() const { return mask == 0; }
  bool measured(size_t i, int f) const {
    return f >= 0 && f < kNumBlockFormats && i < step_mask.size() && (step_mask[i] >> f & 1u);
  }
  // measured(i, f) must hold.
  const BlockFormatCounts& at(size_t i, int f) const {
    return counts[i * static_cast<size_t>(slots) + static_cast<size_t>(slot[f])];
  }
  // Empty unless measured(i, f).
  std::span<const uint8_t> scale_bins(size_t i, int f) const;
  std::span<const uint64_t> scale_counts(size_t i, int f) const;
};
// `series`: one tensor's observation indices sorted by step; `steps`: its distinct steps
// (TensorSteps::steps). Empty (mask 0) when none of them has a block section.
BlockSteps build_block_steps(const trace::Trace& t, std::span<const uint32_t> series,
                             std::span<const uint64_t> steps);

// Per-step plot series of format f: y = SQNR dB (plot value: NaN no signal, +inf exact) and
// loss fraction at every step; NaN (a gap) where the step did not measure f.
struct BlockSeries {
  std::vector<double> sqnr_db;
  std::vector<double> loss;
};
BlockSeries block_series(const BlockSteps& b, int f);

// Label of scale-histogram bin b: "2^-3" (2^(b-127)); bin 255 holds NaN scales: "NaN".
std::string scale_bin_label(int b);

// ---- block coverage -------------------------------------------------------------------------
// Octaves one block of format f covers: its element format's log2(max finite / smallest
// positive), e.g. E4M3 log2(448 / 2^-9) = 17.81, E2M1 log2(6 / 0.5) = 3.58.
double block_range_octaves(int f);
// Octaves a tensor spans: log2(amax) - hist_bin_octave(lowest_bin); NaN when amax is not a
// positive finite number or lowest_bin < 0 (no nonzero finite element).
double tensor_range_octaves(float amax, int lowest_bin);
struct BlockCoverage {
  double block_octaves = 0.0;
  double tensor_octaves = 0.0;  // NaN: nothing to span
  // Fraction of the tensor's range one block covers (1 when the block covers it all).
  double fraction() const;
};

}  // namespace fpscope::gui
