// The trace's metadata JSON (traces/FORMAT.md "Metadata"): the probe and its version, the pid,
// host and rank (run_env.h's rules), the command line, the start time and the configuration.
#pragma once

#include <string>

#include "config.h"

namespace fpscope::probe {

std::string trace_metadata(const Config& cfg, long pid);

}  // namespace fpscope::probe
