// The process-wide CUDA stats machinery: one Pipeline over the CUDA backend, its drain thread and
// the Sink that turns finished device results into recorder calls.
//
// Contract:
//  - pipeline() creates everything on first use and returns nullptr (once logged) when device
//    statistics are unavailable: no CUDA driver/device, or the probe was built without the stats
//    kernels. Callers then record signatures only (tickets abandoned).
//  - shutdown() (probe exit) stops the drain thread, drains what is in flight for up to
//    FPSCOPE_CUDA_DRAIN_MS (default 2000 ms) without synchronizing any application stream, and
//    writes the skip counters (capture, ring full, failed, unsupported) as trace events. It is
//    registered when the runtime is first created, both with atexit (so that it runs before the
//    static CUDA runtime's own exit teardown) and as a Recorder shutdown hook (so that it runs
//    before the trace is closed); it runs once. A process that never created the runtime (no GPU
//    work) registers nothing and pays nothing at exit. After shutdown, and in a forked child,
//    pipeline() returns nullptr.
//  - Watch results (ObsMeta::operand kUpdateLossGroup, device_watch.h) become weight-update
//    records (Recorder::weight_update_at) for the step in their meta.
//  - Cookies: register_call() keeps a GemmTicket until each sampled operand is completed or
//    abandoned.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "../src/recorder.h"
#include "stats_pipeline.h"

namespace fpscope::cuda {

Pipeline* pipeline();
// The backend under pipeline() (nullptr when pipeline() is).
Backend* backend();
void shutdown();
// Registers the exit drain with atexit once more (the backend calls it after a device's first
// resources exist, when the CUDA runtime may have registered more exit work of its own).
void register_exit_drain();

// Test seam (tests/probe_cuda): the backend factory pipeline() uses instead of make_cuda_backend.
// Must be set before the first pipeline(); the probe itself never sets it.
using BackendFactory = std::unique_ptr<Backend> (*)(int slots, std::string* why);
void set_backend_factory_for_testing(BackendFactory factory);

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
// FP8 operands with a block scale mode (cuBLASLt VEC16_UE4M3, VEC32_UE8M0, ...): not measured.
void count_block_scaled_operand();
uint64_t block_scaled_operands();

}  // namespace fpscope::cuda
