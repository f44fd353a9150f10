// Exports without external dependencies (the SQLite export lives in the CLI, which links SQLite).
// Schemas: docs/cli.md "export".
#pragma once

#include <ostream>

#include "fpscope/trace_io.h"

namespace fpscope::analysis {

// One row per observation: step, seq, tensor id/name/op/role/dtype/rows/cols, the scalars and
// per-format counts/scales/SQNR. Fixed column order, header row first.
void export_csv(const trace::Trace& trace, std::ostream& out);
// One JSON object per line, one per observation, same fields as the CSV.
void export_jsonl(const trace::Trace& trace, std::ostream& out);
// Chrome trace JSON (ui.perfetto.dev, chrome://tracing): counter tracks "amax <id>",
// "overflow_frac <format> <id>" and "loss_scale", timestamps in microseconds from time_ns, plus
// instant events for skipped steps and trace events.
void export_perfetto(const trace::Trace& trace, std::ostream& out);

}  // namespace fpscope::analysis
