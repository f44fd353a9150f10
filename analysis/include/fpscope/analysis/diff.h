// `fpscope diff`: regressions between a base and a new run: a CI gate (docs/cli.md "diff").
//
// Default rules (all on):
//   overflow       a matched tensor overflows FP16 or FP8 (E4M3/E5M2, scaled counts only, or
//                  any count when the trace's FP8 counts are scaled) in NEW but not in BASE; also
//                  NaN/Inf appearing in a tensor's data.
//   sqnr           a matched tensor's SQNR in some format fell by more than sqnr_drop_db (6 dB).
//   skipped        NEW has more loss-scale-skipped steps than BASE.
//   amax           a matched tensor's amax grew by more than amax_growth (10x).
// --fail-on takes a comma list of rule names, optionally with a threshold: "sqnr=3,amax=4",
// "all", or "none" (report only, exit 0).
#pragma once

#include <string>
#include <vector>

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
};

// Parses a --fail-on value. Returns false with *error on an unknown rule or a bad threshold.
bool parse_fail_on(const std::string& spec, DiffRules* rules, std::string* error);

struct Regression {
  std::string rule;       // "overflow", "sqnr", "skipped", "amax"
  std::string tensor_id;  // "" for run-level rules
  std::string message;    // one line with the numbers
};

struct DiffResult {
  std::vector<Regression> regressions;  // sorted by rule, then tensor id
  std::vector<CrossRunDrift> drift;     // matched tensors
  std::vector<std::string> only_base;   // ids of unmatched tensors
  std::vector<std::string> only_new;
  uint64_t base_skipped = 0;
  uint64_t new_skipped = 0;
};

DiffResult diff_runs(const trace::TraceModel& base, const RunAnalysis& base_a,
                     const trace::TraceModel& neu, const RunAnalysis& new_a,
                     const DiffRules& rules);

std::string diff_text(const DiffResult& d, const trace::Trace& base, const trace::Trace& neu);
std::string diff_markdown(const DiffResult& d, const trace::Trace& base, const trace::Trace& neu);

}  // namespace fpscope::analysis
