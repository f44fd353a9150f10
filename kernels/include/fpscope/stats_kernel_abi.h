// The statistics kernels' ABI: entry names and argument blocks, shared by the kernels
// (kernels/cuda/stats_kernels.cu), their launchers (kernels/src/stats_launch.cpp, host C++ on the
// driver API through a KernelQueue), the kernels' CPU model (stats_kernel_host.h, which the strict
// mock driver in tests/mock_cuda runs for a launch) and the probe, which looks the entries up by
// name in the module it loads (probe/cuda/cuda_backend.cpp).
//
// Contract:
//  - Every entry is `extern "C" __global__ void <name>(<Args> a)`: ONE parameter, the argument
//    block by value, so a launch passes kernelParams = {&args} and the mock knows each entry's
//    parameter layout from this header alone.
//  - The blocks hold only fixed-width scalars, pointers (device addresses) and the plain structs
//    nvcc and the host compiler lay out alike (static_asserts below pin their sizes).
//  - How to add a kernel: a line in FPSCOPE_STATS_KERNELS (id, entry name, argument block), the
//    entry in stats_kernels.cu, its CPU model in kernels/src/stats_kernel_host.cpp, and a launcher.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "fpscope/numerics.h"
#include "fpscope/stats.h"
#include "fpscope/stats_reduce.h"
#include "fpscope/update_loss.h"
#include "fpscope/value_scale.h"

namespace fpscope {

// One 1-thread launch: the slot's scalars after the launcher zeroed the slot (init_slot_scalars).
struct InitSlotArgs {
  TensorStats* slot;
  ScaleSet sc;
};
// One 1-thread launch: min/max of an all-non-finite tensor (finalize_slot_scalars).
struct FinalizeSlotArgs {
  TensorStats* slot;
};
// The statistics pass of one (batched) view of `data` (storage of the entry's format).
struct TensorStatsArgs {
  const void* data;
  StatsProblem p;
  ValueScale vs;
  ScaleSet sc;
  uint32_t vec;  // 1: data is 16-byte aligned (vector loads)
  TensorStats* slot;
};
// Block-scaled formats (mask bit f: kBlockFormats[f]) of the same view, after the statistics.
struct BlockStatsArgs {
  const void* data;
  uint64_t rows, cols, ld, batch, batch_stride;
  uint32_t mask;
  BlockAxis axis;
  TensorStats* slot;
};
// Master-weight update loss of n FP32 weights (prev -> cur) into a zeroed slot.
struct UpdateLossArgs {
  const float* prev;
  const float* cur;
  uint64_t n;
  UpdateLoss* slot;
};
// n BF16/FP16 weights widened to FP32.
struct WidenArgs {
  const void* src;
  uint64_t n;
  float* dst;
};

// The blocks' layout, pinned (x86-64 / aarch64 host compilers and nvcc's device side agree: only
// 8-byte-aligned pointers and 64-bit scalars, 4-byte fields packed after them). The PTX image
// declares each entry's parameter with this size (tests/kernels/test_kernel_images.cpp).
static_assert(std::is_trivially_copyable<TensorStatsArgs>::value &&
                  std::is_trivially_copyable<BlockStatsArgs>::value &&
                  std::is_trivially_copyable<InitSlotArgs>::value,
              "argument blocks are copied byte for byte");
static_assert(sizeof(void*) == 8, "64-bit device addresses");
static_assert(sizeof(InitSlotArgs) == 56 && sizeof(FinalizeSlotArgs) == 8, "ABI");
static_assert(sizeof(TensorStatsArgs) == 152 && offsetof(TensorStatsArgs, slot) == 144, "ABI");
static_assert(sizeof(BlockStatsArgs) == 64 && sizeof(UpdateLossArgs) == 32, "ABI");
static_assert(sizeof(WidenArgs) == 24, "ABI");

// X(id, entry name, argument block)
#define FPSCOPE_STATS_KERNELS(X)                                   \
  X(InitSlot, "fpscope_init_slot", InitSlotArgs)                   \
  X(FinalizeSlot, "fpscope_finalize_slot", FinalizeSlotArgs)       \
  X(TensorStatsFP32, "fpscope_tensor_stats_fp32", TensorStatsArgs) \
  X(TensorStatsBF16, "fpscope_tensor_stats_bf16", TensorStatsArgs) \
  X(TensorStatsFP16, "fpscope_tensor_stats_fp16", TensorStatsArgs) \
  X(TensorStatsE4M3, "fpscope_tensor_stats_e4m3", TensorStatsArgs) \
  X(TensorStatsE5M2, "fpscope_tensor_stats_e5m2", TensorStatsArgs) \
  X(BlockStatsFP32, "fpscope_block_stats_fp32", BlockStatsArgs)    \
  X(BlockStatsBF16, "fpscope_block_stats_bf16", BlockStatsArgs)    \
  X(BlockStatsFP16, "fpscope_block_stats_fp16", BlockStatsArgs)    \
  X(BlockStatsE4M3, "fpscope_block_stats_e4m3", BlockStatsArgs)    \
  X(BlockStatsE5M2, "fpscope_block_stats_e5m2", BlockStatsArgs)    \
  X(UpdateLossFP32, "fpscope_update_loss", UpdateLossArgs)         \
  X(WidenBF16, "fpscope_widen_bf16", WidenArgs)                    \
  X(WidenFP16, "fpscope_widen_fp16", WidenArgs)

enum class StatsKernel : int {
#define FPSCOPE_X(id, name, args) id,
  FPSCOPE_STATS_KERNELS(FPSCOPE_X)
#undef FPSCOPE_X
      kCount
};
inline constexpr int kNumStatsKernels = static_cast<int>(StatsKernel::kCount);

// The entry's name in the module (what cuModuleGetFunction is given).
inline const char* stats_kernel_name(StatsKernel k) {
  switch (k) {
#define FPSCOPE_X(id, name, args) \
  case StatsKernel::id:           \
    return name;
    FPSCOPE_STATS_KERNELS(FPSCOPE_X)
#undef FPSCOPE_X
    default:
      return nullptr;
  }
}
// The size of the entry's argument block.
inline size_t stats_kernel_args_size(StatsKernel k) {
  switch (k) {
#define FPSCOPE_X(id, name, args) \
  case StatsKernel::id:           \
    return sizeof(args);
    FPSCOPE_STATS_KERNELS(FPSCOPE_X)
#undef FPSCOPE_X
    default:
      return 0;
  }
}

}  // namespace fpscope
