// CPU model of tensor_stats_kernel (see stats_sim.h): the kernel's own steps (stats_reduce.h),
// run block by block, warp by warp (its 32 lanes in order, chunk by chunk), with sequential
// atomics and 32-lane arrays for the warp reductions and shuffles. Only the barriers' ordering is
// written here again (and in stats_kernels.cu).
#include "fpscope/stats_sim.h"

#include <cstring>
#include <memory>
#include <vector>

#include "fpscope/numerics.h"
#include "fpscope/stats_reduce.h"

namespace fpscope {
namespace {

// Sequential stand-ins for the device atomics (same semantics, one block at a time).
struct HostAtomics {
  void add(uint32_t* p, uint32_t v) { *p += v; }
  void add(uint64_t* p, uint64_t v) { *p += v; }
  void add(double* p, double v) { *p += v; }
  void max_bits(float* p, uint32_t bits) {
    if (bits > detail::f2u(*p)) *p = detail::u2f(bits);
  }
  void min_key(float* p, int32_t key) {
    if (key < order_key(detail::f2u(*p))) *p = detail::u2f(static_cast<uint32_t>(order_key(key)));
  }
  void max_key(float* p, int32_t key) {
    if (key > order_key(detail::f2u(*p))) *p = detail::u2f(static_cast<uint32_t>(order_key(key)));
  }
};

// stats_reduce.h's warp W in the model: the kWarpSize lanes of one warp, run in lane order.
struct HostWarp {
  LaneState lane[kWarpSize];
  template <class Fn>
  void for_each_lane(Fn f) {
    for (unsigned l = 0; l < kWarpSize; ++l) f(l, lane[l]);
  }
  uint32_t reduce_max(uint32_t LaneState::*m) const {
    uint32_t r = 0;
    for (const LaneState& l : lane) r = l.*m > r ? l.*m : r;
    return r;
  }
  uint32_t reduce_min(uint32_t LaneState::*m) const {
    uint32_t r = ~0u;
    for (const LaneState& l : lane) r = l.*m < r ? l.*m : r;
    return r;
  }
};

template <Format F, class T>
void run_blocks(const T* data, const StatsProblem& problem, const ValueScale& vs,
                const ScaleSet& sc, unsigned grid, TensorStats* slot) {
  constexpr unsigned kCopies = kStatsWarps;         // the device's per-warp histograms
  std::vector<uint32_t> hist(kCopies * kHistBins);  // the block's __shared__ histograms
  auto warp = std::make_unique<HostWarp>();
  auto lanes = std::make_unique<HostWarpLanes>();
  StatsPartial warp_part[kStatsWarps];  // the block's __shared__ warp partials
  LaunchBounds lb;                      // the block's __shared__ bounds
  for (int i = 0; i < kNumTargets; ++i) lb.t[i] = make_target_bounds(i, sc);
  HostAtomics at;
  // Host memory: scalar loads only (the values are the same).
  const bool vec = false;
  for (unsigned blk = 0; blk < grid; ++blk) {
    StatsProblem p = problem;  // the kernel's by-value argument
    p.vscale = resolve_value_scale(vs);
    clear_block_hist(hist.data(), kCopies, 0, 1);
    // __syncthreads()
    for (unsigned w = 0; w < kStatsWarps; ++w) {
      uint32_t* h = hist.data() + w * kHistBins;
      for (LaneState& l : warp->lane) l.acc = ThreadAcc{};
      process_warp<F>(*warp, data, p, vec, uint64_t{blk} * kStatsWarps + w,
                      uint64_t{grid} * kStatsWarps, sc, lb, h, at);
      for (unsigned l = 0; l < kWarpSize; ++l) {
        finish_thread_hist(h, warp->lane[l].acc, at);
        lanes->lane[l] = to_partial(warp->lane[l].acc);
      }
      warp_reduce(*lanes);
      warp_part[w] = lanes->lane[0];
    }
    // __syncthreads()
    merge_partial_into_slot(slot, merge_warp_partials(warp_part, kStatsWarps), sc, at);
    flush_block_hist(slot, hist.data(), kCopies, 0, 1, at);
  }
}

}  // namespace

bool simulate_tensor_stats_pass(const void* data, Format dtype, const StatsProblem& p,
                                const ValueScale& value_scale, const ScaleSet& sc, unsigned grid,
                                TensorStats* slot) {
  switch (dtype) {
    case Format::FP32:
      run_blocks<Format::FP32>(static_cast<const uint32_t*>(data), p, value_scale, sc, grid, slot);
      return true;
    case Format::BF16:
      run_blocks<Format::BF16>(static_cast<const uint16_t*>(data), p, value_scale, sc, grid, slot);
      return true;
    case Format::FP16:
      run_blocks<Format::FP16>(static_cast<const uint16_t*>(data), p, value_scale, sc, grid, slot);
      return true;
    case Format::E4M3:
      run_blocks<Format::E4M3>(static_cast<const uint8_t*>(data), p, value_scale, sc, grid, slot);
      return true;
    case Format::E5M2:
      run_blocks<Format::E5M2>(static_cast<const uint8_t*>(data), p, value_scale, sc, grid, slot);
      return true;
    default:
      return false;
  }
}

void simulate_tensor_stats_kernel(const void* data, Format dtype, uint64_t rows, uint64_t cols,
                                  uint64_t ld, uint64_t batch, uint64_t batch_stride,
                                  const float scales[kNumTargets], TensorStats* slot, unsigned grid,
                                  ValueScale value_scale) {
  std::memset(static_cast<void*>(slot), 0, sizeof(TensorStats));  // the launcher's memset
  const ScaleSet sc = make_scale_set(scales);
  init_slot_scalars(*slot, sc.scale);  // fpscope_init_slot
  const StatsProblem p = make_stats_problem(rows, cols, ld, batch, batch_stride);
  if (p.n > 0 && data != nullptr)
    simulate_tensor_stats_pass(data, dtype, p, value_scale, sc,
                               grid == 0 ? stats_chunk_blocks(p.n, kStatsMaxBlocks) : grid, slot);
  finalize_slot_scalars(*slot);  // fpscope_finalize_slot
}

}  // namespace fpscope
