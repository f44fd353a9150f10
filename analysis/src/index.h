// Internal: per-step merges of one tensor's observations (TraceModel::series gives the order).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "fpscope/trace_io.h"

namespace fpscope::analysis::detail {

// One tensor's observations of one step, merged.
struct StepStats {
  uint64_t step = 0;
  uint64_t first_seq = 0;
  StatsScalars s;
  uint32_t first_obs = 0;  // index into Trace::observations
  uint32_t nobs = 0;
  uint32_t pos = 0;  // position of the first of them in the span given to per_step
};

// Merges consecutive observations of the same step (obs sorted by step, as TraceModel::series).
std::vector<StepStats> per_step(const trace::Trace& t, std::span<const uint32_t> obs);

}  // namespace fpscope::analysis::detail
