// `fpscope diff`: regressions between a base and a new run: a CI gate (docs/cli.md "diff").
//
// Default rules (all on):
//   overflow       a matched tensor overflows FP16 or FP8 (E4M3/E5M2, scaled counts only, or
//                  any count when the trace's FP8 counts are scaled) in NEW but not in BASE; also
//                  NaN/Inf appearing in a tensor's data.
//   sqnr           a matched tensor's SQNR in some format fell by more than sqnr_drop_db (6 dB).
//   skipped        NEW has more loss-scale-skipped steps than BASE.
//   amax           a matched tensor's amax grew by more than amax_growth (10x).
//   truncated      NEW is truncated (the run crashed or its trace was cut: everything after the
//                  tear is missing, so "no regressions" would mean nothing), or NEW went through
//                  fewer steps than BASE (run_steps: step marks, observations, loss-scale records).
// Off by default (not part of "all"):
//   divergence     a matched tensor's value difference (drift.h rel_diff, from the value sketches;
//                  only when both traces carry them) exceeded divergence_max (0.1 = 10 %) at some
//                  common step.
// --fail-on takes a comma list of rule names, optionally with a threshold: "sqnr=3,amax=4",
// "all", or "none" (report only, exit 0).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fpscope/analysis/drift.h"
#include "fpscope/analysis/findings.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace fpscope::analysis {

struct DiffRules {
  bool overflow = true;
  bool sqnr = true;
  double sqnr_drop_db = 6.0;
  bool skipped = true;
  bool amax = true;
  double amax_growth = 10.0;
  bool truncated = true;
  bool divergence = false;
  double divergence_max = 0.10;
};

// Parses a --fail-on value. Returns false with *error on an unknown rule or a bad threshold.
bool parse_fail_on(const std::string& spec, DiffRules* rules, std::string* error);

struct Regression {
  std::string rule;       // "overflow", "sqnr", "skipped", "amax", "truncated"
  std::string tensor_id;  // "" for run-level rules
  std::string message;    // one line with the numbers
};

// What the diff says about each run as a whole.
struct RunFacts {
  std::string path;
  bool truncated = false;
  std::string truncation_reason;
  uint64_t dropped_bytes = 0;
  uint64_t run_steps = 0;      // RunAnalysis::run_steps
  uint64_t sampled_steps = 0;  // RunAnalysis::sampled_steps
  uint64_t last_step = 0;      // RunAnalysis::run_last_step
  uint64_t observations = 0;
  // Loss scale (present = the trace has loss-scale records).
  bool loss_scale = false;
  uint64_t skipped = 0, backoffs = 0, growths = 0;
  double min_scale = 0.0, final_scale = 0.0;
  bool collapsed = false;
};

// A matched tensor's loss in one block-scaled format (trace format 1.3), present only when both
// runs measured that format on that tensor (block_totals.h; docs/metrics.md "Block-scaled
// formats"). Informational: no --fail-on rule reads it.
struct BlockLossChange {
  std::string tensor_id;
  int format = 0;          // index into kBlockFormats
  double base_loss = 0.0;  // (flushed + saturated) / elements, summed over the run
  double new_loss = 0.0;
  double base_sqnr_db = 0.0;  // SQNR of the block-scaled cast: NaN no signal, +inf exact
  double new_sqnr_db = 0.0;
};

struct DiffResult {
  std::vector<Regression> regressions;  // sorted by rule, then tensor id
  std::vector<CrossRunDrift> drift;     // matched tensors
  std::vector<std::string> only_base;   // ids of unmatched tensors (with observations), by index
  std::vector<std::string> only_new;
  RunFacts base, neu;
  uint64_t base_skipped = 0;  // = base.skipped
  uint64_t new_skipped = 0;   // = neu.skipped
  // Matched tensors' order (drift), then kBlockFormats order; empty unless both traces carry
  // block statistics for some matched tensor (and then only the outputs below gain a section).
  std::vector<BlockLossChange> block_changes;
  // Both traces carry value sketches (format 1.4): the outputs below gain the per-tensor value
  // difference (drift's rel_diff fields; docs/metrics.md "Cross-run difference"). Informational
  // unless the divergence rule is on.
  bool sketches = false;
};

DiffResult diff_runs(const trace::TraceModel& base, const RunAnalysis& base_a,
                     const trace::TraceModel& neu, const RunAnalysis& new_a,
                     const DiffRules& rules);

// Outputs. Unmatched tensors are listed up to `max_list` each (then "... N more"); JSON lists all.
// With sketches: text lists the tensors whose values differ by more than 1 % (earliest first, up
// to max_list), Markdown a "Value difference" table (up to max_list rows, same order), JSON all
// matched tensors as "value_difference".
// With block_changes: text lists the pairs whose loss changed (up to max_list), Markdown a
// "Block-scaled formats" table (up to max_list rows), JSON all of them as "block_formats".
std::string diff_text(const DiffResult& d, const trace::Trace& base, const trace::Trace& neu,
                      size_t max_list = 10);
std::string diff_markdown(const DiffResult& d, const trace::Trace& base, const trace::Trace& neu,
                          size_t max_list = 50);
nlohmann::ordered_json diff_json(const DiffResult& d, const DiffRules& rules);

// Rank sets (ranks.h): two runs of many ranks compared rank by rank, the traces matched by rank
// id (match_rank_sets refuses sets of other ranks or world sizes). One DiffResult per rank, in
// ascending rank; each is the single-trace diff of that rank's two traces, its RunFacts naming
// both files. The run regresses when any rank does.
struct RankDiff {
  int64_t rank = 0;
  DiffResult diff;
};
// Text: one line per rank (its regressions and the rules that fired), the total, then each rank's
// diff_text as a section "rank N" indented by two spaces.
std::string rank_set_diff_text(const std::vector<RankDiff>& ranks, size_t max_list = 10);
// Markdown: the same table, then each rank's diff_markdown under "### rank N" (its headings one
// level down).
std::string rank_set_diff_markdown(const std::vector<RankDiff>& ranks, size_t max_list = 50);
// {"rank_set": {"ranks": [int]}, "rules": {...}, "regressions": [{"rank", "rule", "tensor",
//  "message"}], "ranks": [{"rank": int, then diff_json's keys but "rules"}]}
nlohmann::ordered_json rank_set_diff_json(const std::vector<RankDiff>& ranks,
                                          const DiffRules& rules);

}  // namespace fpscope::analysis
