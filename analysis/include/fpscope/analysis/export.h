// Exports without external dependencies (the SQLite export lives in the CLI, which links SQLite).
// Schemas: docs/cli.md "export".
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

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

// Rank sets (ranks.h, `fpscope export` of several traces of one run): every rank's rows in one
// file, each led by its trace's rank, so that one load gives a table of the whole run. The caller
// writes the ranks one after another in ascending rank.
// CSV: the columns above after a first column `rank`; the header row only when `header`.
void export_csv_rank(const trace::Trace& trace, int64_t rank, bool header, std::ostream& out);
// JSONL: the objects above with "rank" as their first key.
void export_jsonl_rank(const trace::Trace& trace, int64_t rank, std::ostream& out);
// Perfetto: one Chrome trace with one process per rank (pid rank + 1, named "rank <r> <path>"):
// begin (title: the file's "otherData.trace"), one process per rank, end. export_perfetto is
// begin(path), process(pid 1, "fpscope <path>"), end.
void export_perfetto_begin(const std::string& title, std::ostream& out);
void export_perfetto_process(const trace::Trace& trace, int64_t pid, const std::string& name,
                             bool first, std::ostream& out);
void export_perfetto_end(std::ostream& out);

}  // namespace fpscope::analysis
