// CPU model of tensor_stats_kernel (see stats_sim.h). Mirrors stats_kernels.cu step by step.
#include "fpscope/stats_sim.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "fpscope/numerics.h"
#include "fpscope/stats_reduce.h"

namespace fpscope {
namespace {

// Sequential stand-ins for the device atomics (same semantics, one block at a time).
struct HostAtomics {
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
void run_blocks(const T* data, const ViewIndex& view, uint64_t n, const ScaleSet& sc, unsigned grid,
                TensorStats* slot) {
  constexpr unsigned kWarps = kStatsThreads / 32;
  std::vector<StatsScalars> threads(kStatsThreads);
  std::vector<uint32_t> hist(kHistBins);
  HostAtomics at;
  const uint64_t stride = static_cast<uint64_t>(grid) * kStatsThreads;
  for (unsigned blk = 0; blk < grid; ++blk) {
    std::fill(hist.begin(), hist.end(), 0u);
    for (unsigned t = 0; t < kStatsThreads; ++t) {
      StatsScalars s;
      for (uint64_t k = static_cast<uint64_t>(blk) * kStatsThreads + t; k < n; k += stride) {
        const float x = decode_storage_t<F>(static_cast<uint32_t>(data[view.offset(k)]));
        const int bin = accumulate_scalars(s, x, sc);
        if (bin >= 0) ++hist[static_cast<size_t>(bin)];
      }
      threads[t] = s;
    }
    // warp_reduce: each round, lane l merges what lane l + off held before the round.
    StatsScalars warp_part[kWarps];
    for (unsigned w = 0; w < kWarps; ++w) {
      StatsScalars lanes[32];
      for (unsigned l = 0; l < 32; ++l) lanes[l] = threads[w * 32 + l];
      for (unsigned off = 16; off > 0; off >>= 1) {
        StatsScalars before[32];
        std::copy(lanes, lanes + 32, before);
        for (unsigned l = 0; l + off < 32; ++l) lanes[l].merge_scalars(before[l + off]);
      }
      warp_part[w] = lanes[0];
    }
    StatsScalars block = warp_part[0];
    for (unsigned w = 1; w < kWarps; ++w) block.merge_scalars(warp_part[w]);
    merge_partial_into_slot(slot, block, at);
    for (int b = 0; b < kHistBins; ++b) slot->hist[b] += hist[static_cast<size_t>(b)];
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
  const uint64_t nb = batch < 1 ? 1 : batch;
  const uint64_t n = rows * cols * nb;
  if (n > 0 && data != nullptr) {
    const ViewIndex view = make_view_index(rows, cols, ld, nb, batch_stride);
    const unsigned g = grid == 0 ? stats_blocks(n) : grid;
    switch (dtype) {
      case Format::FP32:
        run_blocks<Format::FP32>(static_cast<const uint32_t*>(data), view, n, sc, g, slot);
        break;
      case Format::BF16:
        run_blocks<Format::BF16>(static_cast<const uint16_t*>(data), view, n, sc, g, slot);
        break;
      case Format::FP16:
        run_blocks<Format::FP16>(static_cast<const uint16_t*>(data), view, n, sc, g, slot);
        break;
      case Format::E4M3:
        run_blocks<Format::E4M3>(static_cast<const uint8_t*>(data), view, n, sc, g, slot);
        break;
      case Format::E5M2:
        run_blocks<Format::E5M2>(static_cast<const uint8_t*>(data), view, n, sc, g, slot);
        break;
    }
  }
  finalize_slot_scalars(*slot);  // finalize_slot_kernel
}

}  // namespace fpscope
