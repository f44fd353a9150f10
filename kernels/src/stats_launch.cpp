// The statistics kernels' launchers (stats_cuda.h): plain host C++ over a KernelQueue. The grids,
// the slot reset / init / finalize sequence and the early returns are those of the CUDA-runtime
// launchers they replace; the entries and their argument blocks are stats_kernel_abi.h's.
#include <cstdint>

#include "fpscope/block_stats_pass.h"
#include "fpscope/stats_cuda.h"
#include "fpscope/stats_reduce.h"

namespace fpscope {
namespace {

// The one dtype -> entry dispatch of the stored operand formats (kCount: not read by a kernel).
StatsKernel tensor_stats_entry(Format dtype) {
  switch (dtype) {
    case Format::FP32:
      return StatsKernel::TensorStatsFP32;
    case Format::BF16:
      return StatsKernel::TensorStatsBF16;
    case Format::FP16:
      return StatsKernel::TensorStatsFP16;
    case Format::E4M3:
      return StatsKernel::TensorStatsE4M3;
    case Format::E5M2:
      return StatsKernel::TensorStatsE5M2;
    default:
      return StatsKernel::kCount;
  }
}
StatsKernel block_stats_entry(Format dtype) {
  switch (dtype) {
    case Format::FP32:
      return StatsKernel::BlockStatsFP32;
    case Format::BF16:
      return StatsKernel::BlockStatsBF16;
    case Format::FP16:
      return StatsKernel::BlockStatsFP16;
    case Format::E4M3:
      return StatsKernel::BlockStatsE4M3;
    case Format::E5M2:
      return StatsKernel::BlockStatsE5M2;
    default:
      return StatsKernel::kCount;
  }
}

}  // namespace

CUresult launch_tensor_stats_batched(KernelQueue& q, const void* data, Format dtype, uint64_t rows,
                                     uint64_t cols, uint64_t ld, uint64_t batch,
                                     uint64_t batch_stride, const float scales[kNumTargets],
                                     TensorStats* d_slot, ValueScale value_scale) {
  CUresult e = q.memset_zero(d_slot, sizeof(TensorStats));
  if (e != CUDA_SUCCESS) return e;
  const ScaleSet sc = make_scale_set(scales);
  const InitSlotArgs init{d_slot, sc};
  if ((e = q.launch(StatsKernel::InitSlot, 1, 1, &init)) != CUDA_SUCCESS) return e;
  const StatsProblem p = make_stats_problem(rows, cols, ld, batch, batch_stride);
  if (p.n > 0 && data != nullptr) {
    const StatsKernel k = tensor_stats_entry(dtype);
    if (k == StatsKernel::kCount) return CUDA_ERROR_INVALID_VALUE;
    const unsigned resident = q.resident_blocks(k);
    const TensorStatsArgs a{
        data, p, value_scale, sc, reinterpret_cast<uintptr_t>(data) % 16 == 0 ? 1u : 0u, d_slot};
    e = q.launch(k, stats_chunk_blocks(p.n, resident != 0 ? resident : kStatsMaxBlocks),
                 kStatsThreads, &a);
    if (e != CUDA_SUCCESS) return e;
  }
  const FinalizeSlotArgs fin{d_slot};
  return q.launch(StatsKernel::FinalizeSlot, 1, 1, &fin);
}

CUresult launch_tensor_stats(KernelQueue& q, const void* data, Format dtype, uint64_t rows,
                             uint64_t cols, uint64_t ld, const float scales[kNumTargets],
                             TensorStats* d_slot, ValueScale value_scale) {
  return launch_tensor_stats_batched(q, data, dtype, rows, cols, ld, 1, 0, scales, d_slot,
                                     value_scale);
}

CUresult launch_block_stats(KernelQueue& q, const void* data, Format dtype, uint64_t rows,
                            uint64_t cols, uint64_t ld, uint64_t batch, uint64_t batch_stride,
                            uint32_t mask, BlockAxis axis, TensorStats* d_slot) {
  mask &= kAllBlockFormats;
  if (mask == 0 || data == nullptr || rows == 0 || cols == 0 || batch == 0) return CUDA_SUCCESS;
  if (cols == 1) ld = rows;
  const StatsKernel k = block_stats_entry(dtype);
  if (k == StatsKernel::kCount) return CUDA_ERROR_INVALID_VALUE;
  const BlockPassGeometry geo = make_block_pass_geometry(rows, cols, batch, axis);
  const BlockStatsArgs a{data, rows, cols, ld, batch, batch_stride, mask, axis, d_slot};
  return q.launch(k, block_pass_blocks(geo.total, kStatsThreads), kStatsThreads, &a);
}

CUresult launch_update_loss(KernelQueue& q, const float* d_w_prev, const float* d_w_cur, uint64_t n,
                            UpdateLoss* d_slot) {
  const CUresult e = q.memset_zero(d_slot, sizeof(UpdateLoss));
  if (e != CUDA_SUCCESS || n == 0) return e;
  const UpdateLossArgs a{d_w_prev, d_w_cur, n, d_slot};
  return q.launch(StatsKernel::UpdateLossFP32, stats_blocks(n), kStatsThreads, &a);
}

CUresult launch_widen_to_fp32(KernelQueue& q, const void* d_src, Format dtype, uint64_t n,
                              float* d_dst) {
  if (n == 0) return CUDA_SUCCESS;
  const WidenArgs a{d_src, n, d_dst};
  switch (dtype) {
    case Format::FP32:
      return q.copy_device(d_dst, d_src, n * sizeof(float));
    case Format::BF16:
      return q.launch(StatsKernel::WidenBF16, stats_blocks(n), kStatsThreads, &a);
    case Format::FP16:
      return q.launch(StatsKernel::WidenFP16, stats_blocks(n), kStatsThreads, &a);
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

}  // namespace fpscope
