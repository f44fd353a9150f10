// CUDA statistics kernels. Structure (kept small on purpose: it cannot run in CI):
//   init_slot_kernel    1 thread: scales and min/max identities (after a cudaMemsetAsync)
//   tensor_stats_kernel one wave of resident blocks; each warp takes chunks of kChunkElems
//                       elements grid-stride, then a block reduction into the slot. Every step is
//                       a stats_reduce.h function (make_target_bounds, process_warp, warp_reduce,
//                       merge_warp_partials, merge_partial_into_slot, flush_block_hist) that the
//                       CPU model (kernels/src/stats_sim.cpp) runs too; this file adds only the
//                       device policies (atomics, warp reductions and shuffles) and the barriers.
//   finalize_slot_kernel 1 thread: min/max of an all-non-finite tensor.
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
#include <cuda_runtime.h>

#include <cstring>
#include <type_traits>

#include "fpscope/block_numerics.h"
#include "fpscope/numerics.h"
#include "fpscope/stats_cuda.h"
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

__global__ void init_slot_kernel(TensorStats* slot, ScaleSet sc) {
  init_slot_scalars(*slot, sc.scale);
}
__global__ void finalize_slot_kernel(TensorStats* slot) {
  finalize_slot_scalars(*slot);
}

template <Format F, class T>
__global__ void __launch_bounds__(kStatsThreads, FPSCOPE_STATS_MIN_BLOCKS)
    tensor_stats_kernel(const T* __restrict__ data, StatsProblem p, ValueScale vs, ScaleSet sc,
                        bool vec, TensorStats* slot) {
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

// Resident blocks of the kernel on the current device (at least 1).
template <class K>
unsigned resident_blocks(K kernel) {
  int dev = 0, sms = 0, per_sm = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kStatsThreads, 0) !=
          cudaSuccess ||
      sms * per_sm < 1) {
    cudaGetLastError();  // a failed query only costs the grid size
    return kStatsMaxBlocks;
  }
  return static_cast<unsigned>(sms * per_sm);
}

template <Format F, class T>
cudaError_t launch_typed(const void* data, const StatsProblem& p, const ValueScale& vs,
                         const ScaleSet& sc, TensorStats* slot, cudaStream_t stream) {
  auto kernel = tensor_stats_kernel<F, T>;
  const bool vec = reinterpret_cast<uintptr_t>(data) % 16 == 0;
  kernel<<<stats_chunk_blocks(p.n, resident_blocks(kernel)), kStatsThreads, 0, stream>>>(
      static_cast<const T*>(data), p, vs, sc, vec, slot);
  return cudaGetLastError();
}

// ---- update loss ---------------------------------------------------------------------------

__global__ void __launch_bounds__(kStatsThreads)
    update_loss_kernel(const float* __restrict__ prev, const float* __restrict__ cur, uint64_t n,
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
__global__ void __launch_bounds__(kStatsThreads)
    widen_kernel(const uint16_t* __restrict__ src, uint64_t n, float* __restrict__ dst) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t k = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += stride)
    dst[k] = decode_storage_t<F>(src[k]);
}

// ---- block-scaled formats (block_numerics.h, the host pass's math) ---------------------------
// One thread per group of 32 consecutive elements of a line (MX: one block, NVFP4: two),
// grid-stride over every line of every matrix of the batch; each block's statistics are
// block_stats_of's, exactly as the host's scalar path computes them. Runs after
// tensor_stats_kernel on the same stream: NVFP4's tensor scale comes from the slot's amax.
// Counts are summed per thread, then per warp (shuffles), then one atomic per warp and field.
struct BlockLane {
  uint64_t v[kNumBlockFormats][8];
  double d[kNumBlockFormats][2];
};

__device__ void add_block(BlockLane& l, int f, const BlockStats& b, int n) {
  l.v[f][0] += 1;
  l.v[f][1] += b.nan_scale ? 0u : static_cast<uint32_t>(n);
  l.v[f][2] += b.flushed;
  l.v[f][3] += b.saturated;
  l.v[f][4] += b.zero_block;
  l.v[f][5] += b.scale_underflow;
  l.v[f][6] += b.scale_overflow;
  l.v[f][7] += b.nan_scale;
  l.d[f][0] += b.sum_err2;
  l.d[f][1] += b.sum_x2;
}

template <Format F, class T>
__global__ void __launch_bounds__(kStatsThreads)
    block_stats_kernel(const T* __restrict__ data, uint64_t rows, uint64_t cols, uint64_t ld,
                       uint64_t batch, uint64_t batch_stride, uint32_t mask, BlockAxis axis,
                       TensorStats* slot) {
  const bool rows_axis = axis == BlockAxis::Rows;
  const uint64_t lines = rows_axis ? cols : rows, len = rows_axis ? rows : cols;
  const uint64_t groups = (len + 31) / 32, total = batch * lines * groups;
  const float s_enc = nvfp4_tensor_scale(slot->amax);
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    slot->blocks.mask = mask;
    slot->blocks.axis = axis;
    slot->blocks.nvfp4_tensor_scale = (mask >> (kNumBlockFormats - 1) & 1u) ? s_enc : 1.0f;
  }
  BlockLane acc = {};
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t g = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += stride) {
    const uint64_t b = g / (lines * groups), r = g % (lines * groups);
    const uint64_t line = r / groups, k0 = (r % groups) * 32;
    const int n = static_cast<int>(len - k0 < 32 ? len - k0 : 32);
    float x[32];
    const T* base = data + b * batch_stride;
    for (int k = 0; k < n; ++k) {
      const uint64_t i = rows_axis ? k0 + k : line, j = rows_axis ? line : k0 + k;
      if constexpr (F == Format::FP32)
        x[k] = __uint_as_float(base[i + j * ld]);
      else
        x[k] = decode_storage_t<F>(base[i + j * ld]);
    }
    for (int f = 0; f < kNumBlockFormats; ++f) {
      if (!(mask >> f & 1u)) continue;
      const int bs = block_size_of(f);
      for (int k = 0; k < n; k += bs) {
        const int m = n - k < bs ? n - k : bs;
        const BlockStats st = block_stats_of(f, x + k, m, s_enc);
        add_block(acc, f, st, m);
        atomicAdd(reinterpret_cast<ull*>(&slot->blocks.scale_hist[f][block_scale_bin(st.scale)]),
                  1ull);
      }
    }
  }
  for (unsigned off = kWarpSize / 2; off > 0; off /= 2) {
    const BlockLane o = shfl_down_words(acc, off);
    for (int f = 0; f < kNumBlockFormats; ++f) {
      for (int k = 0; k < 8; ++k) acc.v[f][k] += o.v[f][k];
      acc.d[f][0] += o.d[f][0];
      acc.d[f][1] += o.d[f][1];
    }
  }
  if (threadIdx.x % kWarpSize != 0) return;
  DeviceAtomics at;
  for (int f = 0; f < kNumBlockFormats; ++f) {
    if (!(mask >> f & 1u)) continue;
    BlockFormatCounts& c = slot->blocks.fmt[f];
    uint64_t* dst[8] = {&c.blocks,      &c.elements,        &c.flushed,        &c.saturated,
                        &c.zero_blocks, &c.scale_underflow, &c.scale_overflow, &c.nan_scale};
    for (int k = 0; k < 8; ++k) at.add(dst[k], acc.v[f][k]);
    at.add(&c.sum_err2, acc.d[f][0]);
    at.add(&c.sum_x2, acc.d[f][1]);
  }
}

template <Format F, class T>
cudaError_t launch_blocks_typed(const void* data, uint64_t rows, uint64_t cols, uint64_t ld,
                                uint64_t batch, uint64_t batch_stride, uint32_t mask,
                                BlockAxis axis, TensorStats* d_slot, cudaStream_t stream) {
  const uint64_t lines = axis == BlockAxis::Rows ? cols : rows;
  const uint64_t len = axis == BlockAxis::Rows ? rows : cols;
  const uint64_t total = batch * lines * ((len + 31) / 32);
  const uint64_t want = (total + kStatsThreads - 1) / kStatsThreads;
  const unsigned grid = static_cast<unsigned>(want < 4096 ? want : 4096);
  block_stats_kernel<F, T><<<grid, kStatsThreads, 0, stream>>>(
      static_cast<const T*>(data), rows, cols, ld, batch, batch_stride, mask, axis, d_slot);
  return cudaGetLastError();
}

// The one dtype -> (format, storage type) dispatch of the stored operand formats: calls
// fn(std::integral_constant<Format, F>{}, Storage{}); cudaErrorInvalidValue for other dtypes.
template <class Fn>
cudaError_t with_storage(Format dtype, Fn&& fn) {
  switch (dtype) {
    case Format::FP32:
      return fn(std::integral_constant<Format, Format::FP32>{}, uint32_t{});
    case Format::BF16:
      return fn(std::integral_constant<Format, Format::BF16>{}, uint16_t{});
    case Format::FP16:
      return fn(std::integral_constant<Format, Format::FP16>{}, uint16_t{});
    case Format::E4M3:
      return fn(std::integral_constant<Format, Format::E4M3>{}, uint8_t{});
    case Format::E5M2:
      return fn(std::integral_constant<Format, Format::E5M2>{}, uint8_t{});
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t launch_block_stats(const void* data, Format dtype, uint64_t rows, uint64_t cols,
                               uint64_t ld, uint64_t batch, uint64_t batch_stride, uint32_t mask,
                               BlockAxis axis, TensorStats* d_slot, cudaStream_t stream) {
  mask &= kAllBlockFormats;
  if (mask == 0 || data == nullptr || rows == 0 || cols == 0 || batch == 0) return cudaSuccess;
  if (cols == 1) ld = rows;
  return with_storage(dtype, [&](auto fmt, auto storage) {
    return launch_blocks_typed<decltype(fmt)::value, decltype(storage)>(
        data, rows, cols, ld, batch, batch_stride, mask, axis, d_slot, stream);
  });
}

cudaError_t launch_tensor_stats_batched(const void* data, Format dtype, uint64_t rows,
                                        uint64_t cols, uint64_t ld, uint64_t batch,
                                        uint64_t batch_stride, const float scales[kNumTargets],
                                        TensorStats* d_slot, cudaStream_t stream,
                                        ValueScale value_scale) {
  cudaError_t e = cudaMemsetAsync(d_slot, 0, sizeof(TensorStats), stream);
  if (e != cudaSuccess) return e;
  const ScaleSet sc = make_scale_set(scales);
  init_slot_kernel<<<1, 1, 0, stream>>>(d_slot, sc);
  if ((e = cudaGetLastError()) != cudaSuccess) return e;
  const StatsProblem p = make_stats_problem(rows, cols, ld, batch, batch_stride);
  if (p.n > 0 && data != nullptr) {
    e = with_storage(dtype, [&](auto fmt, auto storage) {
      return launch_typed<decltype(fmt)::value, decltype(storage)>(data, p, value_scale, sc, d_slot,
                                                                   stream);
    });
    if (e != cudaSuccess) return e;
  }
  finalize_slot_kernel<<<1, 1, 0, stream>>>(d_slot);
  return cudaGetLastError();
}

cudaError_t launch_tensor_stats(const void* data, Format dtype, uint64_t rows, uint64_t cols,
                                uint64_t ld, const float scales[kNumTargets], TensorStats* d_slot,
                                cudaStream_t stream, ValueScale value_scale) {
  return launch_tensor_stats_batched(data, dtype, rows, cols, ld, 1, 0, scales, d_slot, stream,
                                     value_scale);
}

cudaError_t launch_update_loss(const float* d_w_prev, const float* d_w_cur, uint64_t n,
                               UpdateLoss* d_slot, cudaStream_t stream) {
  cudaError_t e = cudaMemsetAsync(d_slot, 0, sizeof(UpdateLoss), stream);
  if (e != cudaSuccess || n == 0) return e;
  update_loss_kernel<<<stats_blocks(n), kStatsThreads, 0, stream>>>(d_w_prev, d_w_cur, n, d_slot);
  return cudaGetLastError();
}

cudaError_t launch_widen_to_fp32(const void* d_src, Format dtype, uint64_t n, float* d_dst,
                                 cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (dtype) {
    case Format::FP32:
      return cudaMemcpyAsync(d_dst, d_src, n * sizeof(float), cudaMemcpyDeviceToDevice, stream);
    case Format::BF16:
      widen_kernel<Format::BF16><<<stats_blocks(n), kStatsThreads, 0, stream>>>(
          static_cast<const uint16_t*>(d_src), n, d_dst);
      break;
    case Format::FP16:
      widen_kernel<Format::FP16><<<stats_blocks(n), kStatsThreads, 0, stream>>>(
          static_cast<const uint16_t*>(d_src), n, d_dst);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace fpscope
