// The run environment of a recording process: its rank and host, as the trace metadata records
// them and as output paths name them (`%p %r %h`). The ONE implementation: the probe (trace
// metadata, FPSCOPE_OUTPUT) and `fpscope record` (which reports where the trace went) both use it,
// so the CLI always names the file the probe wrote.
//
// Rank: the first of RANK, OMPI_COMM_WORLD_RANK, SLURM_PROCID that is set and NON-EMPTY, taken as
// written (a non-numeric value too: the launcher's word, not ours). An empty variable counts as
// unset (a launcher that exports `RANK=` for a single process must not turn `run-%r.fpst` into
// `run-.fpst`, nor hide OMPI_COMM_WORLD_RANK). No rank: the metadata has no "rank" and %r is "0".
// Host: gethostname(); "" when it fails (no "host" in the metadata; %h is "unknown").
// Paths: %p the pid, %r the rank, %h the host, %% a literal %; any other %x and a trailing % are
// kept as written.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace fpscope::trace {

// The variables a rank is read from, in order of precedence.
inline constexpr const char* kRankVariables[] = {"RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"};

struct RunEnv {
  long pid = 0;
  std::optional<std::string> rank;  // nullopt: none of kRankVariables is set and non-empty
  std::string host;                 // "" when unknown
};

// An environment lookup: the value of a variable, nullptr when unset (std::getenv's contract).
using EnvLookup = std::function<const char*(const char*)>;

// The rank by the rule above, from `lookup` (tests pass their own environment).
std::optional<std::string> rank_from(const EnvLookup& lookup);
// This process's rank (std::getenv) and host now, with `pid`.
RunEnv current_run_env(long pid);
// Expands %p %r %h %% of `pattern` with `env`.
std::string expand_path(const std::string& pattern, const RunEnv& env);
// expand_path(pattern, current_run_env(pid)): the path a process `pid` records to.
std::string expand_output_path(const std::string& pattern, long pid);

}  // namespace fpscope::trace
