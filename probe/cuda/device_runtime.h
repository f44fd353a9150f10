// The process-wide CUDA stats machinery: one Pipeline over the CUDA backend, its drain thread and
// the Sink that turns finished device results into recorder calls.
//
// Contract:
//  - pipeline() creates everything on first use and returns nullptr (once logged) when device
//    statistics are unavailable: no CUDA driver/device, or the probe was built without the stats
//    kernels. Callers then record signatures only (tickets abandoned).
//  - shutdown() (probe exit) drains what is in flight for up to FPSCOPE_CUDA_DRAIN_MS (default
//    2000 ms) without synchronizing any application stream, then stops the drain thread and
//    writes the skip counters as trace events.
//  - Cookies: register_call() keeps a GemmTicket until each sampled operand is completed or
//    abandoned.
#pragma once

#include <cstdint>

#include "../src/recorder.h"
#include "stats_pipeline.h"

namespace fpscope::cuda {

Pipeline* pipeline();
void shutdown();

// Keeps `ticket` for `operands` outstanding completions; returns the cookie for ObsMeta.
uint64_t register_call(const probe::GemmTicket& ticket, int operands);
// One operand of the call will never complete.
void abandon_operand(uint64_t cookie, int operand);

// Kinds of scalar groups (ObsMeta::operand of a scalar group).
enum ScalarGroup : int { kLossScaleGroup = 1 };
// Scalars of kLossScaleGroup: [0] scale before the update, [1] after, [2] found_inf.

// Counters of GEMM operands that got no statistics for a reason other than the pipeline's.
void count_unsupported_operand();
uint64_t unsupported_operands();

}  // namespace fpscope::cuda
