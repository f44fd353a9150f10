// Internal: a report is one document rendered twice. build_report_model() decides everything a
// report says (facts, which findings in which order with the baseline merged once, which rows
// of which tables, which plots, which "N more" notes); report_html.cpp and report_markdown.cpp
// only serialize that model, so the two renderings cannot drift apart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "block_totals.h"
#include "fpscope/analysis/causes.h"
#include "fpscope/analysis/findings.h"
#include "fpscope/analysis/report.h"
#include "fpscope/trace_model.h"

namespace fpscope::analysis::detail {

// One plot: the same SVG document is inline in HTML and a file beside the Markdown.
struct ReportPlot {
  std::string file;  // name in the Markdown's plot folder, e.g. "tensor3_exponents.svg"
  std::string alt;   // Markdown alt text
  std::string svg;   // the SVG document
};

struct ReportTensorPlots {
  uint32_t tensor = 0;
  std::string label;  // "id (name)" or "id"
  ReportPlot amax_sqnr, exponents;
};

// The findings of the run plus, with a baseline, its baseline findings, ranked once.
struct ReportFindings {
  std::vector<Finding> all;
  std::vector<size_t> listed;  // indices into `all`, in rank order, within the report's caps
  std::string left_note;       // "" when nothing was left out, else what and where to find it
};

// Per-tensor table rows: the first ReportOptions::max_tensor_rows, worst first.
struct ReportTensorTable {
  std::vector<const TensorRisk*> rows;
  size_t left = 0;  // rows not shown
};

// The "Block-scaled formats" table (trace format 1.3): per tensor with block statistics, in the
// tensor table's order, each measured format's loss and SQNR (block_totals.h).
struct ReportBlockRow {
  std::string id;
  BlockTotals totals;
};
struct ReportBlocks {
  std::vector<int> formats;          // kBlockFormats indices that some tensor measured
  std::vector<ReportBlockRow> rows;  // at most ReportOptions::max_tensor_rows
  size_t left = 0;                   // rows not shown
};

// The what-if's format comparison (format_choice.h; traces with block statistics): per-tensor
// E4M3 current and delayed, then the measured block formats (kBlockFormats order).
struct ReportFormatChoices {
  std::string note;                       // format_choice_note()
  std::vector<int> columns;               // kFormatCandidates indices
  std::vector<const FormatChoice*> rows;  // the most demanding recommendation first
  size_t left = 0;
};

struct ReportWhatIf {
  std::string policy;  // "history 1024, margin 0, max"
  std::vector<const WhatIfTensor*> rows;
  size_t left = 0;
  std::optional<ReportFormatChoices> choices;  // present when a.format_choices is not empty
};

// The sentence under the format comparison's heading that defines its numbers.
std::string format_choice_note(const FindingOptions& opt);
// "0% / ~27.1 dB" of one cell, "-" when not measured.
std::string format_choice_cell(const FormatResult& r);
// What a row's columns cover: "4 obs, steps 0..3; delayed 1..3" (E4M3 current's observations,
// the same as the block formats'; E4M3 delayed's steps, or "delayed none").
std::string format_choice_covers(const FormatChoice& ch);

struct ReportChangePoint {
  std::string tensor_id;
  const ChangePoint* change = nullptr;
};

struct ReportDrift {
  std::string rule;  // the sentence that defines a change point with this run's options
  std::vector<ReportChangePoint> rows;
  size_t left = 0;
};

struct ReportBaseline {
  std::string path;  // the baseline trace's path as given
  std::vector<CrossRunDrift> tensors;
};

// Causes shown before the fold (the rest: HTML <details>, Markdown appendix).
// A rank set's cross-rank part (ReportOptions::ranks).
struct ReportRanks {
  const RankSet* set = nullptr;
  int64_t focus_rank = -1;
  RunCauses causes;                  // of the cross-rank findings
  std::vector<ReportPlot> heatmaps;  // ranks x steps, the top findings' tensors (at most 3)
};

inline constexpr size_t kCausesBeforeFold = 10;

// Pointers and references are views into the RunAnalysis the model was built from: the model is
// valid while that analysis lives. Optional sections are absent when the report omits them.
struct ReportModel {
  std::string title;
  std::vector<std::pair<std::string, std::string>> facts;  // run info: (name, value) rows
  ReportFindings findings;
  // The verdict and the findings.all grouped by cause (indices into findings.all): the first
  // max_causes_first causes are the first screen, the rest go below the fold.
  RunCauses causes;
  size_t causes_first = 0;
  std::optional<ReportPlot> loss_scale;  // present when the trace has loss-scale records
  std::vector<ReportTensorPlots> tensor_plots;
  ReportTensorTable tensor_table;
  std::optional<ReportBlocks> blocks;           // present when the trace has block statistics
  std::vector<const WeightLoss*> weights;       // watched master weights (table rows)
  std::vector<ReportPlot> weight_plots;         // one update/weight ratio plot per watched weight
  std::vector<LeftOutWeight> weights_left_out;  // parameters not watched, and why
  std::optional<ReportWhatIf> whatif;           // present when the FP8 what-if has results
  std::optional<ReportDrift> drift;             // present when some tensor has change points
  std::optional<ReportBaseline> baseline;       // present with ReportOptions::baseline
  std::optional<ReportRanks> ranks;             // present with ReportOptions::ranks
  std::string generator;                        // "fpscope <version>"
};

ReportModel build_report_model(const trace::TraceModel& model, const RunAnalysis& a,
                               const ReportOptions& opt);

// Words and numbers both renderings print the same way.
std::string tensor_label(const trace::Trace& t, uint32_t tensor);  // "id (name)" or "id"
std::string sqnr_str(double db);                                   // "n/a", "exact", "61.2 dB"
std::string shape_str(const TensorRisk& r);                        // "64x256"
std::string nonfinite_str(const TensorRisk& r);                    // NaN + Inf count
std::string first_saturate_str(const WhatIfTensor& w);             // step or "-"
// A block format's loss ("3.1%") and SQNR ("25.0 dB") of one tensor; "-" when not measured.
std::string block_loss_str(const BlockTotals& b, int f);
std::string block_sqnr_str(const BlockTotals& b, int f);
// The sentence under the table's heading that defines its numbers.
inline constexpr const char* kBlockTableNote =
    "Loss: the fraction of the tensor's elements that flush to zero or saturate inside their "
    "blocks (flushed + saturated, over its observations with block statistics); SQNR of the "
    "block-scaled cast; \"-\": not measured (FPSCOPE_FORMATS). Definitions: docs/metrics.md "
    "\"Block-scaled formats\".";
const char* counts_name(const WhatIfTensor& w);            // "exact", "from histogram", "mixed"
std::string change_value(const ChangePoint& c, double v);  // amax as a number, SQNR in dB
std::string first_beyond_str(const CrossRunDrift& d);      // "12 (reason)" or "-"
std::string master_str(const WeightLoss& w);               // "FP32", "BF16 (not FP32)"
std::string watched_str(const WeightLoss& w);              // "all", "2048 of 65536"
// The note under the weights table when a watch is sampled ("" when none is).
std::string sampled_note(const std::vector<const WeightLoss*>& weights);

}  // namespace fpscope::analysis::detail
