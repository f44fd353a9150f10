// CPU model of tensor_stats_kernel (see stats_sim.h): the kernel's own steps (stats_reduce.h),
// run block by block, thread by thread, with sequential atomics and a 32-lane array for the warp
// shuffles. Only the barriers' ordering is written here again (and in stats_kernels.cu).
#include "fpscope/stats_sim.h"

#include <cstring>
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
  void max_nonneg(float* p, float v) {
    // atomicMax on the int bits of non-negative floats.
    int32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, &v, 4);
    if (b > a) *p = v;
  }
  void min(float* p, float v) {
    if (v < *p) *p = v;
  }
  void max(float* p, float v) {
    if (v > *p) *p = v;
  }
};

template <Format F, class T>
void run_blocks(const T* data, const StatsProblem& p, const ScaleSet& sc, unsigned grid,
                TensorStats* slot) {
  std::vector<uint32_t> hist(kHistBins);  // the block's __shared__ histogram
  std::vector<HostWarpLanes> warps(kStatsWarps);
  StatsScalars warp_part[kStatsWarps];  // the block's __shared__ warp partials
  HostAtomics at;
  const uint64_t stride = static_cast<uint64_t>(grid) * kStatsThreads;
  for (unsigned blk = 0; blk < grid; ++blk) {
    clear_block_hist(hist.data(), 0, 1);
    // __syncthreads()
    for (unsigned t = 0; t < kStatsThreads; ++t) {
      StatsScalars& s = warps[t / kWarpSize].lane[t % kWarpSize];
      s = StatsScalars{};
      accumulate_thread<F>(data, p, static_cast<uint64_t>(blk) * kStatsThreads + t, stride, sc, s,
                           hist.data(), at);
    }
    for (unsigned w = 0; w < kStatsWarps; ++w) {
      warp_reduce(warps[w]);
      warp_part[w] = warps[w].lane[0];
    }
    // __syncthreads()
    merge_partial_into_slot(slot, merge_warp_partials(warp_part, kStatsWarps), at);
    flush_block_hist(slot, hist.data(), 0, 1, at);
  }
}

}  // namespace

void simulate_tensor_stats_kernel(const void* data, Format dtype, uint64_t rows, uint64_t cols,
                                  uint64_t ld, uint64_t batch, uint64_t batch_stride,
                                  const float scales[kNumTargets], TensorStats* slot,
                                  unsigned grid) {
  std::memset(static_cast<void*>(slot), 0, sizeof(TensorStats));  // cudaMemsetAsync
  const ScaleSet sc = make_scale_set(scales);
  init_slot_scalars(*slot, sc.scale);  // init_slot_kernel
  const StatsProblem p = make_stats_problem(rows, cols, ld, batch, batch_stride);
  if (p.n > 0 && data != nullptr) {
    const unsigned g = grid == 0 ? stats_blocks(p.n) : grid;
    switch (dtype) {
      case Format::FP32:
        run_blocks<Format::FP32>(static_cast<const uint32_t*>(data), p, sc, g, slot);
        break;
      case Format::BF16:
        run_blocks<Format::BF16>(static_cast<const uint16_t*>(data), p, sc, g, slot);
        break;
      case Format::FP16:
        run_blocks<Format::FP16>(static_cast<const uint16_t*>(data), p, sc, g, slot);
        break;
      case Format::E4M3:
        run_blocks<Format::E4M3>(static_cast<const uint8_t*>(data), p, sc, g, slot);
        break;
      case Format::E5M2:
        run_blocks<Format::E5M2>(static_cast<const uint8_t*>(data), p, sc, g, slot);
        break;
    }
  }
  finalize_slot_scalars(*slot);  // finalize_slot_kernel
}

}  // namespace fpscope
