// The statistics kernels' CPU model, entry by entry (stats_kernel_abi.h): what one launch of an
// entry computes, run on the CPU over HOST memory (every pointer in the argument block is a host
// address). The strict mock driver (tests/mock_cuda) runs it for each cuLaunchKernel of an entry,
// so the probe's whole GPU path runs in CI with the kernels' own math: the tensor statistics
// through simulate_tensor_stats_kernel (stats_sim.h, the kernel's grid/warp/atomic order), the
// other entries through the same per-element and per-block functions the kernels call.
// Never shipped in the probe (target fpscope_kernels_host_model).
#pragma once

#include <cuda.h>  // CUresult only

#include "fpscope/stats_kernel_abi.h"

namespace fpscope {

// Runs entry k as a launch of `grid` blocks of `block` threads with the argument block `args`
// would. CUDA_ERROR_INVALID_VALUE for an unknown entry or a block size the kernel cannot run with
// (the statistics entries need kStatsThreads, the 1-thread entries 1).
CUresult run_stats_kernel_on_host(StatsKernel k, unsigned grid, unsigned block, const void* args);

}  // namespace fpscope
