// Internal: per-tensor totals of a trace's block-scaled-format statistics (trace format 1.3,
// recorded only when FPSCOPE_FORMATS names block formats). The one aggregation of
// BlockStatsRecords per tensor, shared by the summary (JSON and text), the block_loss findings,
// the report's "Block-scaled formats" table and diff, so their numbers cannot disagree.
// Definitions: docs/metrics.md "Block-scaled formats".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fpscope/analysis/risk.h"
#include "fpscope/stats.h"
#include "fpscope/trace_io.h"

namespace fpscope::analysis::detail {

// One tensor's block statistics summed (BlockFormatCounts::add) over its observations that carry
// a block section. A format's counts are summed only from the sections that measured it (bit f
// of their mask).
struct BlockTotals {
  uint64_t observations = 0;  // observations with a block section
  uint32_t mask = 0;          // union of their masks: bit f, kBlockFormats[f] measured
  int axis = -1;              // -1: none yet, 0: rows, 1: cols, 2: mixed
  BlockFormatCounts fmt[kNumBlockFormats];
  std::map<int, uint64_t> scale_hist[kNumBlockFormats];  // scale bin -> blocks
  // First / last step with flushed + saturated > 0 in that format, or -1.
  int64_t first_loss_step[kNumBlockFormats];
  int64_t last_loss_step[kNumBlockFormats];

  BlockTotals() {
    for (int f = 0; f < kNumBlockFormats; ++f) first_loss_step[f] = last_loss_step[f] = -1;
  }
  // Format f was measured on this tensor and saw elements.
  bool measured(int f) const { return (mask >> f & 1u) && fmt[f].elements > 0; }
};

// Empty when the trace has no block statistics; else one entry per tensor (index = tensor index;
// observations == 0 for tensors without any). Records naming an observation or tensor out of
// range are skipped.
std::vector<BlockTotals> block_totals(const trace::Trace& t);

// Union of the formats measured (BlockTotals::measured) over all tensors: bit f.
uint32_t measured_block_formats(const std::vector<BlockTotals>& totals);

// (flushed + saturated) / elements; 0 with no elements.
double block_loss_frac(const BlockFormatCounts& c);
// SQNR of the block-scaled cast, 10 log10(sum_x2 / sum_err2): NaN with no signal, +inf exact.
double block_sqnr_db(const BlockFormatCounts& c);
// "MXFP8 E4M3" for kBlockFormats[f] ("mxfp8_e4m3").
std::string block_format_display_name(int f);

// What a block-format table shows (summary text, report): the measured formats (kBlockFormats
// order) and the tensors with block statistics in `risks` order (worst first), at most max_rows
// (< 0: all); `left` counts the others. Empty formats when nothing was measured.
struct BlockTableRows {
  std::vector<int> formats;
  std::vector<const TensorRisk*> rows;
  size_t left = 0;
};
BlockTableRows block_table_rows(const std::vector<TensorRisk>& risks,
                                const std::vector<BlockTotals>& totals, int max_rows);

}  // namespace fpscope::analysis::detail
