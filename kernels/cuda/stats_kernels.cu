// CUDA statistics kernels: device code only (no CUDA runtime, no host launch code). Built by
// kernels/CMakeLists.txt into the images the probe loads through the driver API
// (stats_kernel_images.h); the entries are stats_kernel_abi.h's FPSCOPE_STATS_KERNELS, each
// `extern "C" __global__` taking its argument block by value; their launchers are
// kernels/src/stats_launch.cpp, their CPU model kernels/src/stats_kernel_host.cpp.
// Structure (kept small on purpose: it cannot run in CI):
//   fpscope_init_slot    1 thread: scales and min/max identities (after the launcher's memset)
//   tensor_stats_kernel one wave of resident blocks; each warp takes chunks of kChunkElems
//                       elements grid-stride, then a block reduction into the slot. Every step is
//                       a stats_reduce.h function (make_target_bounds, process_warp, warp_reduce,
//                       merge_warp_partials, merge_partial_into_slot, flush_block_hist) that the
//                       CPU model (kernels/src/stats_sim.cpp) runs too; this file adds only the
//                       device policies (atomics, warp reductions and shuffles) and the barriers.
//   fpscope_finalize_slot 1 thread: min/max of an all-non-finite tensor.
//   block_stats_kernel  block-scaled formats (block_stats_pass.h), update_loss_kernel,
//   widen_kernel.
//
// Design and expected cost (stats_reduce.h has the details). The kernel must stream at DRAM
// speed (H200: ~4.2 TB/s, ~1e12 FP32 elements/s, i.e. ~4 elements per SM per clock, ~32 issue
// slots per element of which at most half integer):
//  - memory-level parallelism: each lane loads its 16 elements of a chunk with 16-byte loads
//    (64 B in flight per lane for FP32) before using any; the grid is exactly what fits resident
//    (occupancy query), so there is no tail wave;
//  - the histogram: one 32-bit copy per warp in shared memory (32 KiB per block), one shared
//    atomic per element without contention between warps (FPSCOPE_STATS_HIST_PER_WARP=0: one
//    copy per block, 4 KiB, for comparison);
//  - no FP64 in the per-element target work: counts are integer compares against per-launch
//    x-space thresholds, and only where the chunk's range makes them possible; the cast error
//    is 2 integer ops + 1 FP32 op where every |y| is a normal of the target (5 + 1 otherwise);
//    d^2 is summed in FP32 (prescaled) and folded into double once per chunk. The input's own
//    sum and sum_sq stay double per element (one F2F, one DADD, one DFMA: 1/4 of the conversion
//    pipe at full speed);
//  - min/max by integer order keys, amax by the chunk's warp-reduced range.
// Per element: ~14 ops for the input's own statistics and histogram, ~6 per target whose chunk
// holds only normals of it, ~12-15 per target with subnormals/overflows: about 40 ops (FP32 data
// within every target's range) to 65 (data spanning 2^-45..2^42, every target under- and
// overflowing) per element.
#include <cstring>
#include <type_traits>

#include "fpscope/block_numerics.h"
#include "fpscope/block_stats_pass.h"
#include "fpscope/numerics.h"
#include "fpscope/stats_kernel_abi.h"
#include "fpscope/stats_reduce.h"
#include "fpscope/update_loss.h"

// Compile-time alternatives, for measuring (the defaults are the shipped choice):
//   FPSCOPE_STATS_HIST_PER_WARP=0: one histogram per block instead of one per warp;
//   FPSCOPE_STATS_MIN_BLOCKS=n: __launch_bounds__ minimum of n resident blocks per SM (register
//   cap 65536 / (256 n)); 0 (default) lets ptxas use what the kernel needs without spilling
//   (~127 registers: 2 blocks, 16 warps per SM, 32 KiB of loads in flight per SM).
#ifndef FPSCOPE_STATS_HIST_PER_WARP
#define FPSCOPE_STATS_HIST_PER_WARP 1
#endif
#ifndef FPSCOPE_STATS_MIN_BLOCKS
#define FPSCOPE_STATS_MIN_BLOCKS 0
#endif

namespace fpscope {
namespace {

using ull = unsigned long long;
static_assert(sizeof(uint64_t) == sizeof(ull), "64-bit counters");

constexpr unsigned kHistCopies = FPSCOPE_STATS_HIST_PER_WARP ? kStatsWarps : 1;

struct DeviceAtomics {
  __device__ void add(uint32_t* p, uint32_t v) { atomicAdd(p, v); }
  __device__ void add(uint64_t* p, uint64_t v) {
    if (v) atomicAdd(reinterpret_cast<ull*>(p), static_cast<ull>(v));
  }
  __device__ void add(double* p, double v) { atomicAdd(p, v); }
  // Non-negative floats order like their bit patterns.
  __device__ void max_bits(float* p, uint32_t bits) {
    atomicMax(reinterpret_cast<unsigned*>(p), bits);
  }
  // min/max of a float slot by order key (order_key: -0 < +0, as the host pass orders them).
  __device__ void min_key(float* p, int32_t key) {
    auto* ip = reinterpret_cast<unsigned*>(p);
    unsigned old = *ip;
    while (key < order_key(old)) {
      const unsigned seen = atomicCAS(ip, old, static_cast<unsigned>(order_key(key)));
      if (seen == old) break;
      old = seen;
    }
  }
  __device__ void max_key(float* p, int32_t key) {
    auto* ip = reinterpret_cast<unsigned*>(p);
    unsigned old = *ip;
    while (key > order_key(old)) {
      const unsigned seen = atomicCAS(ip, old, static_cast<unsigned>(order_key(key)));
      if (seen == old) break;
      old = seen;
    }
  }
};

// Lane l's copy of lane l + off's v (its own beyond the warp), word by word: the whole object
// moves, so no field can be forgotten.
template <class T>
__device__ T shfl_down_words(const T& v, unsigned off) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) % 4 == 0, "word-copyable");
  unsigned w[sizeof(T) / 4];
  memcpy(w, &v, sizeof(T));
  for (unsigned i = 0; i < sizeof(T) / 4; ++i) w[i] = __shfl_down_sync(0xffffffffu, w[i], off);
  T r;
  memcpy(&r, w, sizeof(T));
  return r;
}

// stats_reduce.h's warp W on the device: the calling thread is one lane.
struct DeviceWarp {
  LaneState& own;
  template <class Fn>
  __device__ void for_each_lane(Fn f) {
    f(threadIdx.x % kWarpSize, own);
  }
  __device__ uint32_t reduce_max(uint32_t LaneState::*m) {
    return __reduce_max_sync(0xffffffffu, own.*m);
  }
  __device__ uint32_t reduce_min(uint32_t LaneState::*m) {
    return __reduce_min_sync(0xffffffffu, own.*m);
  }
};
struct ShuffleLanes {
  StatsPartial& own;
  StatsPartial received;
  __device__ void shuffle_down(unsigned off) { received = shfl_down_words(own, off); }
  template <class Fn>
  __device__ void for_each_partial(Fn f) {
    f(threadIdx.x % kWarpSize, own, received);
  }
};

// The entries' bodies: __device__ functions (an entry is extern "C", so not a template), inlined
// into their entries with the parameters the kernels always had.
template <Format F, class T>
__device__ __forceinline__ void tensor_stats_kernel(const T* __restrict__ data, StatsProblem p,
                                                    ValueScale vs, ScaleSet sc, bool vec,
                                                    TensorStats* slot) {
  // The codes' scale (cuBLASLt's FP8 scale pointer), read here on the device after whatever the
  // stream ran before (the GEMM that used it): no host synchronization (value_scale.h).
  p.vscale = resolve_value_scale(vs);
  __shared__ uint32_t hist[kHistCopies * kHistBins];
  // Raw storage: __shared__ variables cannot have member initializers.
  __shared__ alignas(StatsPartial) unsigned char warp_raw[sizeof(StatsPartial) * kStatsWarps];
  __shared__ alignas(LaunchBounds) unsigned char bounds_raw[sizeof(LaunchBounds)];
  auto* warp_part = reinterpret_cast<StatsPartial*>(warp_raw);
  auto& lb = *reinterpret_cast<LaunchBounds*>(bounds_raw);
  DeviceAtomics at;
  const unsigned warp = threadIdx.x / kWarpSize;
  clear_block_hist(hist, kHistCopies, threadIdx.x, blockDim.x);
  if (threadIdx.x < kNumTargets) lb.t[threadIdx.x] = make_target_bounds(threadIdx.x, sc);
  __syncthreads();

  uint32_t* my_hist = hist + (kHistCopies > 1 ? warp * kHistBins : 0);
  LaneState ls;
  DeviceWarp w{ls};
  process_warp<F>(w, data, p, vec, static_cast<uint64_t>(blockIdx.x) * kStatsWarps + warp,
                  static_cast<uint64_t>(gridDim.x) * kStatsWarps, sc, lb, my_hist, at);
  finish_thread_hist(my_hist, ls.acc, at);
  StatsPartial part = to_partial(ls.acc);
  ShuffleLanes lanes{part, StatsPartial{}};
  warp_reduce(lanes);
  if (threadIdx.x % kWarpSize == 0) warp_part[warp] = part;
  __syncthreads();  // warp partials and the block's histograms are complete
  if (threadIdx.x == 0)
    merge_partial_into_slot(slot, merge_warp_partials(warp_part, kStatsWarps), sc, at);
  flush_block_hist(slot, hist, kHistCopies, threadIdx.x, blockDim.x, at);
}

// ---- update loss ---------------------------------------------------------------------------

__device__ __forceinline__ void update_loss_kernel(const float* __restrict__ prev,
                                                   const float* __restrict__ cur, uint64_t n,
                                                   UpdateLoss* slot) {
  __shared__ uint32_t hist[kRatioBins];
  __shared__ alignas(UpdateLoss) unsigned char part_raw[sizeof(UpdateLoss)];
  UpdateLoss& part = *reinterpret_cast<UpdateLoss*>(part_raw);  // the block's counts
  for (unsigned b = threadIdx.x; b < kRatioBins; b += blockDim.x) hist[b] = 0;
  if (threadIdx.x == 0) part = UpdateLoss{};
  __syncthreads();

  UpdateLossCounts c[2];
  uint64_t changed = 0;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t k = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += stride) {
    const UpdateLossStep st = update_loss_step(prev[k], cur[k]);
    changed += st.changed;
    accumulate_update_loss(c[0], st, 0);
    accumulate_update_loss(c[1], st, 1);
    if (st.ratio_bin >= 0) atomicAdd(&hist[st.ratio_bin], 1u);
  }
  atomicAdd(reinterpret_cast<ull*>(&part.changed), static_cast<ull>(changed));
  UpdateLossCounts* pc[2] = {&part.bf16, &part.fp16};
  for (int f = 0; f < 2; ++f) {
    atomicAdd(reinterpret_cast<ull*>(&pc[f]->stagnant), static_cast<ull>(c[f].stagnant));
    atomicAdd(&pc[f]->lost_abs, c[f].lost_abs);
    atomicAdd(&pc[f]->delta_abs, c[f].delta_abs);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    atomicAdd(reinterpret_cast<ull*>(&slot->changed), static_cast<ull>(part.changed));
    UpdateLossCounts* sc[2] = {&slot->bf16, &slot->fp16};
    for (int f = 0; f < 2; ++f) {
      atomicAdd(reinterpret_cast<ull*>(&sc[f]->stagnant), static_cast<ull>(pc[f]->stagnant));
      atomicAdd(&sc[f]->lost_abs, pc[f]->lost_abs);
      atomicAdd(&sc[f]->delta_abs, pc[f]->delta_abs);
    }
  }
  for (unsigned b = threadIdx.x; b < kRatioBins; b += blockDim.x)
    if (hist[b]) atomicAdd(reinterpret_cast<ull*>(&slot->ratio_hist[b]), static_cast<ull>(hist[b]));
}

// ---- widening (device watch of BF16/FP16 weights) -------------------------------------------

template <Format F>
__device__ __forceinline__ void widen_kernel(const uint16_t* __restrict__ src, uint64_t n,
                                             float* __restrict__ dst) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t k = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += stride)
    dst[k] = decode_storage_t<F>(src[k]);
}

// ---- block-scaled formats (block_stats_pass.h: the per-group steps its CPU model runs too) ----
template <Format F, class T>
__device__ __forceinline__ void block_stats_kernel(const T* __restrict__ data, uint64_t rows,
                                                   uint64_t cols, uint64_t ld, uint64_t batch,
                                                   uint64_t batch_stride, uint32_t mask,
                                                   BlockAxis axis, TensorStats* slot) {
  const BlockPassGeometry geo = make_block_pass_geometry(rows, cols, batch, axis);
  const float s_enc = nvfp4_tensor_scale(slot->amax);
  if (blockIdx.x == 0 && threadIdx.x == 0) write_block_header(slot, mask, axis, s_enc);
  DeviceAtomics at;
  BlockLane acc = {};
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t g = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < geo.total;
       g += stride)
    block_group_stats<F>(data, geo, ld, batch_stride, mask, s_enc, g, acc, slot, at);
  for (unsigned off = kWarpSize / 2; off > 0; off /= 2)
    merge_block_lane(acc, shfl_down_words(acc, off));
  if (threadIdx.x % kWarpSize == 0) flush_block_lane(slot, mask, acc, at);
}

}  // namespace

// ---- the entries (stats_kernel_abi.h) -------------------------------------------------------
extern "C" {

__global__ void fpscope_init_slot(InitSlotArgs a) {
  init_slot_scalars(*a.slot, a.sc.scale);
}
__global__ void fpscope_finalize_slot(FinalizeSlotArgs a) {
  finalize_slot_scalars(*a.slot);
}

#define FPSCOPE_TENSOR_STATS_ENTRY(name, F, T)                                                     \
  __global__ void __launch_bounds__(kStatsThreads, FPSCOPE_STATS_MIN_BLOCKS)                       \
      name(TensorStatsArgs a) {                                                                    \
    tensor_stats_kernel<F, T>(static_cast<const T*>(a.data), a.p, a.vs, a.sc, a.vec != 0, a.slot); \
  }
FPSCOPE_TENSOR_STATS_ENTRY(fpscope_tensor_stats_fp32, Format::FP32, uint32_t)
FPSCOPE_TENSOR_STATS_ENTRY(fpscope_tensor_stats_bf16, Format::BF16, uint16_t)
FPSCOPE_TENSOR_STATS_ENTRY(fpscope_tensor_stats_fp16, Format::FP16, uint16_t)
FPSCOPE_TENSOR_STATS_ENTRY(fpscope_tensor_stats_e4m3, Format::E4M3, uint8_t)
FPSCOPE_TENSOR_STATS_ENTRY(fpscope_tensor_stats_e5m2, Format::E5M2, uint8_t)
#undef FPSCOPE_TENSOR_STATS_ENTRY

#define FPSCOPE_BLOCK_STATS_ENTRY(name, F, T)                                              \
  __global__ void __launch_bounds__(kStatsThreads) name(BlockStatsArgs a) {                \
    block_stats_kernel<F, T>(static_cast<const T*>(a.data), a.rows, a.cols, a.ld, a.batch, \
                             a.batch_stride, a.mask, a.axis, a.slot);                      \
  }
FPSCOPE_BLOCK_STATS_ENTRY(fpscope_block_stats_fp32, Format::FP32, uint32_t)
FPSCOPE_BLOCK_STATS_ENTRY(fpscope_block_stats_bf16, Format::BF16, uint16_t)
FPSCOPE_BLOCK_STATS_ENTRY(fpscope_block_stats_fp16, Format::FP16, uint16_t)
FPSCOPE_BLOCK_STATS_ENTRY(fpscope_block_stats_e4m3, Format::E4M3, uint8_t)
FPSCOPE_BLOCK_STATS_ENTRY(fpscope_block_stats_e5m2, Format::E5M2, uint8_t)
#undef FPSCOPE_BLOCK_STATS_ENTRY

__global__ void __launch_bounds__(kStatsThreads) fpscope_update_loss(UpdateLossArgs a) {
  update_loss_kernel(a.prev, a.cur, a.n, a.slot);
}
__global__ void __launch_bounds__(kStatsThreads) fpscope_widen_bf16(WidenArgs a) {
  widen_kernel<Format::BF16>(static_cast<const uint16_t*>(a.src), a.n, a.dst);
}
__global__ void __launch_bounds__(kStatsThreads) fpscope_widen_fp16(WidenArgs a) {
  widen_kernel<Format::FP16>(static_cast<const uint16_t*>(a.src), a.n, a.dst);
}

}  // extern "C"

}  // namespace fpscope
