// A CPU model of the CUDA statistics kernel (kernels/cuda/stats_kernels.cu): the same grid /
// block / warp / chunk decomposition, the same per-lane element order, the same per-chunk fast
// or generic path (stats_reduce.h, per-element code numerics.h), warp tree merge
// (StatsPartial::merge in shuffle order) and slot protocol, with sequential stand-ins for the
// atomics and warp reductions. Tests compare it with
// compute_stats: the kernel's reduction logic is exercised without a GPU.
#pragma once

#include <cstdint>

#include "fpscope/formats.h"
#include "fpscope/numerics.h"
#include "fpscope/stats.h"
#include "fpscope/stats_reduce.h"
#include "fpscope/value_scale.h"

namespace fpscope {

// As launch_tensor_stats_batched; grid = 0 picks stats_chunk_blocks(n, kStatsMaxBlocks)
// (the device launches what fits resident, which changes only the order of the sums).
// value_scale.ptr is a HOST address here, read once per modelled block as the kernel reads it.
void simulate_tensor_stats_kernel(const void* data, Format dtype, uint64_t rows, uint64_t cols,
                                  uint64_t ld, uint64_t batch, uint64_t batch_stride,
                                  const float scales[kNumTargets], TensorStats* slot,
                                  unsigned grid = 0, ValueScale value_scale = {});

// The statistics pass alone, as ONE launch of the kernel (its entry's arguments: the problem,
// the value scale, the scale set) merges into an already initialized slot with `grid` blocks
// (>= 1). What the kernels' CPU model (stats_kernel_host.h) runs for a tensor-statistics launch.
// Returns false for a dtype the kernel does not read (nothing is touched).
bool simulate_tensor_stats_pass(const void* data, Format dtype, const StatsProblem& p,
                                const ValueScale& value_scale, const ScaleSet& sc, unsigned grid,
                                TensorStats* slot);

}  // namespace fpscope
