// The FPSCOPE_* settings read by the probe's CUDA path (probe/cuda/), parsed in one place.
//
// Contract: each parser takes the raw environment value (nullptr or "" = unset) and returns the
// value in force. A value that is malformed or out of range gives ONE warning on stderr
// ("[fpscope] ...") naming the variable, the value and what is used instead; it never fails.
//  - FPSCOPE_CUDA_SLOTS   (default 256): result slots per device at first, clamped to
//    [1, kMaxCudaSlots]; the ring grows to kMaxGrownCudaSlots when a step needs more.
//  - FPSCOPE_CUDA_GRAPHS  removed: 0/false/off/no accepted silently, anything else warns (captured
//    GEMMs are always skipped and counted).
//  - FPSCOPE_CUDA_DRAIN_MS (default 2000): milliseconds, 0 allowed (do not wait), <= 600000.
//  - FPSCOPE_CUPTI       (default on): 0/false/off/no keeps the probe off CUPTI entirely (a
//  profiler
//    then keeps its subscription; loss-scale kernels and kernel step marks are not recorded).
//  - FPSCOPE_STEP_RANGE   (default "step"): NVTX range message that marks a step (nvtx_inject.h).
#pragma once

#include <string>

namespace fpscope::cuda {

inline constexpr int kDefaultCudaSlots = 256;
// Each slot holds one TensorStats on the device and one in pinned host memory (~21 KiB each since
// the block-format statistics of format 1.3), per device: 16384 slots are ~330 MiB of each. Also
// far below the 2^20 of the pipeline's ticket encoding (stats_pipeline.cpp).
inline constexpr int kMaxCudaSlots = 16384;
// The ring starts at FPSCOPE_CUDA_SLOTS and doubles (on the drain thread) while a step needs more,
// up to this many slots per device (~83 MiB of device and of pinned memory) or the start, if
// larger.
inline constexpr int kMaxGrownCudaSlots = 4096;
inline constexpr long kDefaultDrainMs = 2000;
inline constexpr long kMaxDrainMs = 600000;
inline constexpr const char* kDefaultStepRange = "step";

int parse_cuda_slots(const char* value);
bool parse_cuda_graphs(const char* value);  // always false: the option is gone (warns if set)
long parse_drain_ms(const char* value);
bool parse_cupti(const char* value);  // FPSCOPE_CUPTI: true unless 0/false/off/no
std::string parse_step_range(const char* value);

// Parsed on first use from the environment (thread-safe, read once).
int cuda_slots_setting();
bool cuda_graphs_setting();
long drain_ms_setting();
bool cupti_setting();
const std::string& step_range_setting();

}  // namespace fpscope::cuda
