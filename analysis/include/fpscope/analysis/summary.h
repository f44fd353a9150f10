// `fpscope summary`: the human table and the stable JSON (schema: docs/summary-json.md).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "fpscope/analysis/findings.h"
#include "fpscope/trace_io.h"

namespace fpscope::analysis {

inline constexpr int kSummaryVersion = 1;

// The summary JSON (summary_version 1). Non-finite doubles (SQNR of an exact cast, of an
// all-zero tensor, of a tensor that overflows the format) are written as null. Keys in a fixed
// order; deterministic. `baseline`: the run a's baseline findings were computed against (its path
// goes to "baseline"; null when none).
nlohmann::ordered_json summary_json(const trace::Trace& trace, const RunAnalysis& a,
                                    const trace::Trace* baseline = nullptr);

// Human summary: run facts (command line, host, probe, steps), the per-tensor table (at most
// max_rows rows, worst first), loss-scale events, watched weights, FP8 what-if and drift counts,
// top findings. width: the output's columns; 0 = unlimited. The table puts every format side by
// side (about 200 columns) when that fits, else the tensor on one line and its formats two per
// line under it; every other line is wrapped to `width`. At width 80 no line is longer than 80.
std::string summary_text(const trace::Trace& trace, const RunAnalysis& a, int max_rows = 40,
                         int width = 0);

// One finding as summary --json writes it (docs/summary-json.md "findings[]"): the one writer,
// also used for the cross-rank findings of a rank set (ranks.cpp adds their "ranks").
nlohmann::ordered_json finding_json(const Finding& f);

// "61 steps (0..60), 7 sampled (every 10); source gemm_period": what the run's steps were.
std::string run_steps_text(const trace::Trace& trace, const RunAnalysis& a);

// The trace's warning and error events (EVENT records of level >= Warning: what the probe said
// went wrong while recording, e.g. "cuda: 12 GEMM operand observations skipped: all result slots
// in flight", and the program's own fpscope.event warnings) as one line:
// "3 warnings: <first>; <second> (and more: summary --json .warnings)", the first `shown`
// distinct texts (raw bytes: the caller escapes for its output); "" when there are none. Linear
// in the events, bounded memory.
std::string warnings_text(const trace::Trace& trace, size_t shown = 2);

}  // namespace fpscope::analysis
