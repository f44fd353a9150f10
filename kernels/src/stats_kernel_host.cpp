// The statistics kernels' CPU model, entry by entry (stats_kernel_host.h). Each entry runs the
// same steps as its kernel in kernels/cuda/stats_kernels.cu over host memory: block by block,
// thread (or warp) in index order, with sequential stand-ins for the atomics and shuffles. Only
// the threads' order and the barriers are written again here; the per-element and per-block math
// is the kernels' headers' (stats_reduce.h via stats_sim.cpp, block_stats_pass.h, update_loss.h,
// numerics.h).
#include "fpscope/stats_kernel_host.h"

#include <cstdint>
#include <cstring>
#include <memory>

#include "fpscope/block_stats_pass.h"
#include "fpscope/numerics.h"
#include "fpscope/stats_reduce.h"
#include "fpscope/stats_sim.h"
#include "fpscope/update_loss.h"

namespace fpscope {
namespace {

// Sequential stand-in for the device atomics block_stats_pass.h uses.
struct SequentialAdd {
  void add(uint64_t* p, uint64_t v) { *p += v; }
  void add(double* p, double v) { *p += v; }
};

template <class Args>
const Args& args_of(const void* args) {
  return *static_cast<const Args*>(args);
}

CUresult tensor_stats(Format dtype, unsigned grid, const TensorStatsArgs& a) {
  // The kernel reads its data only where p.n > 0 (the launcher launches it only then).
  if (a.p.n == 0) return CUDA_SUCCESS;
  return simulate_tensor_stats_pass(a.data, dtype, a.p, a.vs, a.sc, grid, a.slot)
             ? CUDA_SUCCESS
             : CUDA_ERROR_INVALID_VALUE;
}

// block_stats_kernel: each warp's 32 threads take their groups (grid-stride), then the warp's
// shuffle tree (lane l adds lane l + off's value from before the step, its own beyond the warp)
// and lane 0's flush.
template <Format F, class T>
CUresult block_stats(unsigned grid, const BlockStatsArgs& a) {
  const BlockPassGeometry geo = make_block_pass_geometry(a.rows, a.cols, a.batch, a.axis);
  const auto* data = static_cast<const T*>(a.data);
  const float s_enc = nvfp4_tensor_scale(a.slot->amax);
  write_block_header(a.slot, a.mask, a.axis, s_enc);  // block 0, thread 0
  SequentialAdd at;
  auto lanes = std::make_unique<BlockLane[]>(kWarpSize);
  const uint64_t stride = uint64_t{grid} * kStatsThreads;
  for (unsigned blk = 0; blk < grid; ++blk) {
    for (unsigned w = 0; w < kStatsWarps; ++w) {
      for (unsigned l = 0; l < kWarpSize; ++l) {
        BlockLane& acc = lanes[l];
        acc = BlockLane{};
        for (uint64_t g = uint64_t{blk} * kStatsThreads + w * kWarpSize + l; g < geo.total;
             g += stride)
          block_group_stats<F>(data, geo, a.ld, a.batch_stride, a.mask, s_enc, g, acc, a.slot, at);
      }
      for (unsigned off = kWarpSize / 2; off > 0; off /= 2)
        for (unsigned l = 0; l < kWarpSize; ++l) {
          // Lane l + off > l is not updated yet in this step: the value the shuffle reads.
          const BlockLane received = l + off < kWarpSize ? lanes[l + off] : lanes[l];
          merge_block_lane(lanes[l], received);
        }
      flush_block_lane(a.slot, a.mask, lanes[0], at);
    }
  }
  return CUDA_SUCCESS;
}

// update_loss_kernel: per block, each thread's counts added into the block's partial (thread
// order), then thread 0 adds the partial into the slot, then the block's ratio histogram.
CUresult update_loss(unsigned grid, const UpdateLossArgs& a) {
  const uint64_t stride = uint64_t{grid} * kStatsThreads;
  for (unsigned blk = 0; blk < grid; ++blk) {
    uint32_t hist[kRatioBins] = {};
    UpdateLoss part;
    for (unsigned t = 0; t < kStatsThreads; ++t) {
      UpdateLossCounts c[2];
      uint64_t changed = 0;
      for (uint64_t k = uint64_t{blk} * kStatsThreads + t; k < a.n; k += stride) {
        const UpdateLossStep st = update_loss_step(a.prev[k], a.cur[k]);
        changed += st.changed;
        accumulate_update_loss(c[0], st, 0);
        accumulate_update_loss(c[1], st, 1);
        if (st.ratio_bin >= 0) ++hist[st.ratio_bin];
      }
      part.changed += changed;
      UpdateLossCounts* pc[2] = {&part.bf16, &part.fp16};
      for (int f = 0; f < 2; ++f) {
        pc[f]->stagnant += c[f].stagnant;
        pc[f]->lost_abs += c[f].lost_abs;
        pc[f]->delta_abs += c[f].delta_abs;
      }
    }
    a.slot->changed += part.changed;
    UpdateLossCounts* sc[2] = {&a.slot->bf16, &a.slot->fp16};
    const UpdateLossCounts* pc[2] = {&part.bf16, &part.fp16};
    for (int f = 0; f < 2; ++f) {
      sc[f]->stagnant += pc[f]->stagnant;
      sc[f]->lost_abs += pc[f]->lost_abs;
      sc[f]->delta_abs += pc[f]->delta_abs;
    }
    for (int b = 0; b < kRatioBins; ++b) a.slot->ratio_hist[b] += hist[b];
  }
  return CUDA_SUCCESS;
}

// widen_kernel: every element once whatever the grid (grid-stride), exact.
template <Format F>
CUresult widen(const WidenArgs& a) {
  const auto* src = static_cast<const uint16_t*>(a.src);
  for (uint64_t k = 0; k < a.n; ++k) a.dst[k] = decode_storage_t<F>(src[k]);
  return CUDA_SUCCESS;
}

// The block size entry k's kernel runs with (0: unknown entry).
unsigned entry_block_size(StatsKernel k) {
  switch (k) {
    case StatsKernel::InitSlot:
    case StatsKernel::FinalizeSlot:
      return 1;
    case StatsKernel::kCount:
      return 0;
    default:
      return kStatsThreads;
  }
}

}  // namespace

CUresult run_stats_kernel_on_host(StatsKernel k, unsigned grid, unsigned block, const void* args) {
  const unsigned want = entry_block_size(k);
  if (want == 0 || block != want || grid == 0 || args == nullptr) return CUDA_ERROR_INVALID_VALUE;
  switch (k) {
    case StatsKernel::InitSlot: {
      const auto& a = args_of<InitSlotArgs>(args);
      init_slot_scalars(*a.slot, a.sc.scale);  // every 1-thread block writes the same values
      return CUDA_SUCCESS;
    }
    case StatsKernel::FinalizeSlot:
      finalize_slot_scalars(*args_of<FinalizeSlotArgs>(args).slot);
      return CUDA_SUCCESS;
    case StatsKernel::TensorStatsFP32:
      return tensor_stats(Format::FP32, grid, args_of<TensorStatsArgs>(args));
    case StatsKernel::TensorStatsBF16:
      return tensor_stats(Format::BF16, grid, args_of<TensorStatsArgs>(args));
    case StatsKernel::TensorStatsFP16:
      return tensor_stats(Format::FP16, grid, args_of<TensorStatsArgs>(args));
    case StatsKernel::TensorStatsE4M3:
      return tensor_stats(Format::E4M3, grid, args_of<TensorStatsArgs>(args));
    case StatsKernel::TensorStatsE5M2:
      return tensor_stats(Format::E5M2, grid, args_of<TensorStatsArgs>(args));
    case StatsKernel::BlockStatsFP32:
      return block_stats<Format::FP32, uint32_t>(grid, args_of<BlockStatsArgs>(args));
    case StatsKernel::BlockStatsBF16:
      return block_stats<Format::BF16, uint16_t>(grid, args_of<BlockStatsArgs>(args));
    case StatsKernel::BlockStatsFP16:
      return block_stats<Format::FP16, uint16_t>(grid, args_of<BlockStatsArgs>(args));
    case StatsKernel::BlockStatsE4M3:
      return block_stats<Format::E4M3, uint8_t>(grid, args_of<BlockStatsArgs>(args));
    case StatsKernel::BlockStatsE5M2:
      return block_stats<Format::E5M2, uint8_t>(grid, args_of<BlockStatsArgs>(args));
    case StatsKernel::UpdateLossFP32:
      return update_loss(grid, args_of<UpdateLossArgs>(args));
    case StatsKernel::WidenBF16:
      return widen<Format::BF16>(args_of<WidenArgs>(args));
    case StatsKernel::WidenFP16:
      return widen<Format::FP16>(args_of<WidenArgs>(args));
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

}  // namespace fpscope
