// `fpscope summary`: the human table and the stable JSON (schema: docs/summary-json.md).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "fpscope/analysis/findings.h"
#include "fpscope/trace_io.h"

namespace fpscope::analysis {

inline constexpr int kSummaryVersion = 1;

// The summary JSON (summary_version 1). Non-finite doubles (SQNR of an exact cast, of an
// all-zero tensor) are written as null. Keys in a fixed order; deterministic.
nlohmann::ordered_json summary_json(const trace::Trace& trace, const RunAnalysis& a);

// Human summary: run facts, the per-tensor table (at most max_rows rows, worst first), loss-scale
// events, watched weights, top findings. width: the terminal's columns; 0 = unlimited. The table
// puts every format side by side when that fits, else one line per format under each tensor.
std::string summary_text(const trace::Trace& trace, const RunAnalysis& a, int max_rows = 40,
                         int width = 0);

}  // namespace fpscope::analysis
