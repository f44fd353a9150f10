// CUDA statistics kernels' launchers (kernels/src/stats_launch.cpp, target fpscope_kernels_cuda):
// plain host C++. They link no CUDA library: every launch, copy and memset goes through the
// KernelQueue the caller gives them (the probe's is one stream of one context on the driver API,
// probe/cuda/cuda_backend.cpp; tests give one over the kernels' CPU model).
//
// Each launch_* call only ENQUEUES work on the queue's stream: no allocation, no
// synchronization, no other stream touched. Results land in a device slot that the caller owns
// (the layout is the host type, so a copy of sizeof(slot) brings it back as is). The per-element
// math is numerics.h / update_loss.h, the reduction steps stats_reduce.h: both also run on the
// CPU in tests (kernels/src/stats_sim.cpp models the kernel's grid, warps and atomics).
// Every launcher returns CUDA_SUCCESS or the first error the queue returned
// (CUDA_ERROR_INVALID_VALUE for a dtype the kernels do not read).
#pragma once

#include <cuda.h>  // CUresult only: a header, no library

#include <cstddef>
#include <cstdint>

#include "fpscope/formats.h"
#include "fpscope/stats.h"
#include "fpscope/stats_kernel_abi.h"
#include "fpscope/update_loss.h"
#include "fpscope/value_scale.h"

namespace fpscope {

// One stream of one context: what the launchers enqueue work through.
class KernelQueue {
 public:
  virtual ~KernelQueue() = default;
  // Zero `bytes` of device memory at d_dst (stream-ordered).
  virtual CUresult memset_zero(void* d_dst, size_t bytes) = 0;
  // Device-to-device copy (stream-ordered).
  virtual CUresult copy_device(void* d_dst, const void* d_src, size_t bytes) = 0;
  // Launches entry k with grid x block threads; `args` points to its argument block
  // (stats_kernel_abi.h), passed as the entry's one parameter.
  virtual CUresult launch(StatsKernel k, unsigned grid, unsigned block, const void* args) = 0;
  // Blocks of entry k (kStatsThreads threads each) resident on the whole device at once; 0 when
  // unknown (the launcher then uses kStatsMaxBlocks).
  virtual unsigned resident_blocks(StatsKernel k) = 0;
};

// Statistics of the column-major view (element (i, j) at i + j * ld, i < rows, j < cols) of
// dtype storage (FP32, BF16, FP16, E4M3, E5M2) into *d_slot (device memory): the slot is reset
// first (memset + a 1-thread init kernel), then one grid-stride pass with a block reduction
// merges into it with atomics, then a 1-thread kernel finalizes min/max.
// value_scale (value_scale.h): the codes' per-tensor FP32 scale in DEVICE memory (cuBLASLt's FP8
// A/B/C scale: Multiply; D's: Divide), read by the kernel itself on the stream; every element is
// measured as the value it stands for. Default: the decoded elements as they are.
CUresult launch_tensor_stats(KernelQueue& q, const void* data, Format dtype, uint64_t rows,
                             uint64_t cols, uint64_t ld, const float scales[kNumTargets],
                             TensorStats* d_slot, ValueScale value_scale = {});

// The same over `batch` matrices batch_stride ELEMENTS apart (strided-batched GEMM operands),
// all into one slot. Use this rather than several launch_tensor_stats calls: each of those
// resets the slot.
CUresult launch_tensor_stats_batched(KernelQueue& q, const void* data, Format dtype, uint64_t rows,
                                     uint64_t cols, uint64_t ld, uint64_t batch,
                                     uint64_t batch_stride, const float scales[kNumTargets],
                                     TensorStats* d_slot, ValueScale value_scale = {});

// Block-scaled formats (stats.h BlockStatsSet; bit f of `mask`: kBlockFormats[f]) of the same
// view (batched like launch_tensor_stats_batched) into d_slot->blocks, blocks along `axis`, with
// block_numerics.h's per-block math (the host pass's). Enqueue it right after
// launch_tensor_stats(_batched) on the same stream and slot: it adds to the reset slot and takes
// NVFP4's tensor scale from the slot's amax. A separate read of the data (not fused into the
// statistics kernel yet). Nothing is enqueued for mask 0.
// It reads the codes as they are (no ValueScale): the probe's CUDA backend enqueues it only for
// operands without a cuBLASLt scale (gemm_engine.h reading_of).
CUresult launch_block_stats(KernelQueue& q, const void* data, Format dtype, uint64_t rows,
                            uint64_t cols, uint64_t ld, uint64_t batch, uint64_t batch_stride,
                            uint32_t mask, BlockAxis axis, TensorStats* d_slot);

// Master-weight update loss of n FP32 elements between two device copies of the weights (same
// math as compute_update_loss) into *d_slot (reset first).
CUresult launch_update_loss(KernelQueue& q, const float* d_w_prev, const float* d_w_cur, uint64_t n,
                            UpdateLoss* d_slot);

// n weights of dtype FP32, BF16 or FP16 at d_src widened to FP32 at d_dst (exact: numerics.h's
// decode_storage_t; FP32 is a device-to-device copy). The device master-weight watch measures
// BF16/FP16 weights through this (probe/cuda/device_watch.h). CUDA_ERROR_INVALID_VALUE for
// another dtype.
CUresult launch_widen_to_fp32(KernelQueue& q, const void* d_src, Format dtype, uint64_t n,
                              float* d_dst);

}  // namespace fpscope
