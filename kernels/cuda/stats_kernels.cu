// CUDA statistics kernels. Structure (kept small on purpose: it cannot run in CI):
//   init_slot_kernel    1 thread: scales and min/max identities (after a cudaMemsetAsync)
//   tensor_stats_kernel grid-stride over the elements, then a block reduction into the slot.
//                       Every step is a stats_reduce.h function (accumulate_thread, warp_reduce,
//                       merge_warp_partials, merge_partial_into_slot, flush_block_hist) that the
//                       CPU model (kernels/src/stats_sim.cpp) runs too; this file adds only the
//                       device policies (atomics, lane exchange by shuffles) and the barriers.
//   finalize_slot_kernel 1 thread: min/max of an all-non-finite tensor.
#include <cuda_runtime.h>

#include <cstring>
#include <type_traits>

#include "fpscope/numerics.h"
#include "fpscope/stats_cuda.h"
#include "fpscope/stats_reduce.h"
#include "fpscope/update_loss.h"

namespace fpscope {
namespace {

using ull = unsigned long long;
static_assert(sizeof(uint64_t) == sizeof(ull), "64-bit counters");

struct DeviceAtomics {
  __device__ void add(uint32_t* p, uint32_t v) { atomicAdd(p, v); }
  __device__ void add(uint64_t* p, uint64_t v) {
    if (v) atomicAdd(reinterpret_cast<ull*>(p), static_cast<ull>(v));
  }
  __device__ void add(double* p, double v) { atomicAdd(p, v); }
  // Non-negative floats order like their bit patterns as signed ints.
  __device__ void max_nonneg(float* p, float v) {
    atomicMax(reinterpret_cast<int*>(p), __float_as_int(v));
  }
  __device__ void min(float* p, float v) {
    int* ip = reinterpret_cast<int*>(p);
    int old = *ip;
    while (v < __int_as_float(old)) {
      const int seen = atomicCAS(ip, old, __float_as_int(v));
      if (seen == old) break;
      old = seen;
    }
  }
  __device__ void max(float* p, float v) {
    int* ip = reinterpret_cast<int*>(p);
    int old = *ip;
    while (v > __int_as_float(old)) {
      const int seen = atomicCAS(ip, old, __float_as_int(v));
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

// stats_reduce.h's lane exchange on the device: the calling thread is one lane.
struct ShuffleLanes {
  StatsScalars& own;
  StatsScalars received;
  __device__ void shuffle_down(unsigned off) { received = shfl_down_words(own, off); }
  template <class Fn>
  __device__ void for_each_lane(Fn f) {
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
__global__ void __launch_bounds__(kStatsThreads)
    tensor_stats_kernel(const T* __restrict__ data, StatsProblem p, ScaleSet sc,
                        TensorStats* slot) {
  __shared__ uint32_t hist[kHistBins];
  // Raw storage: __shared__ variables cannot have StatsScalars' member initializers.
  __shared__ alignas(StatsScalars) unsigned char warp_raw[sizeof(StatsScalars) * kStatsWarps];
  auto* warp_part = reinterpret_cast<StatsScalars*>(warp_raw);
  DeviceAtomics at;
  clear_block_hist(hist, threadIdx.x, blockDim.x);
  __syncthreads();

  StatsScalars s;
  accumulate_thread<F>(data, p, static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x,
                       static_cast<uint64_t>(gridDim.x) * blockDim.x, sc, s, hist, at);
  ShuffleLanes lanes{s, StatsScalars{}};
  warp_reduce(lanes);
  if (threadIdx.x % kWarpSize == 0) warp_part[threadIdx.x / kWarpSize] = s;
  __syncthreads();  // warp partials and the block's histogram are complete
  if (threadIdx.x == 0)
    merge_partial_into_slot(slot, merge_warp_partials(warp_part, blockDim.x / kWarpSize), at);
  flush_block_hist(slot, hist, threadIdx.x, blockDim.x, at);
}

template <Format F, class T>
cudaError_t launch_typed(const void* data, const StatsProblem& p, const ScaleSet& sc,
                         TensorStats* slot, cudaStream_t stream) {
  tensor_stats_kernel<F, T>
      <<<stats_blocks(p.n), kStatsThreads, 0, stream>>>(static_cast<const T*>(data), p, sc, slot);
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

}  // namespace

cudaError_t launch_tensor_stats_batched(const void* data, Format dtype, uint64_t rows,
                                        uint64_t cols, uint64_t ld, uint64_t batch,
                                        uint64_t batch_stride, const float scales[kNumTargets],
                                        TensorStats* d_slot, cudaStream_t stream) {
  cudaError_t e = cudaMemsetAsync(d_slot, 0, sizeof(TensorStats), stream);
  if (e != cudaSuccess) return e;
  const ScaleSet sc = make_scale_set(scales);
  init_slot_kernel<<<1, 1, 0, stream>>>(d_slot, sc);
  if ((e = cudaGetLastError()) != cudaSuccess) return e;
  const StatsProblem p = make_stats_problem(rows, cols, ld, batch, batch_stride);
  if (p.n > 0 && data != nullptr) {
    switch (dtype) {
      case Format::FP32:
        e = launch_typed<Format::FP32, uint32_t>(data, p, sc, d_slot, stream);
        break;
      case Format::BF16:
        e = launch_typed<Format::BF16, uint16_t>(data, p, sc, d_slot, stream);
        break;
      case Format::FP16:
        e = launch_typed<Format::FP16, uint16_t>(data, p, sc, d_slot, stream);
        break;
      case Format::E4M3:
        e = launch_typed<Format::E4M3, uint8_t>(data, p, sc, d_slot, stream);
        break;
      case Format::E5M2:
        e = launch_typed<Format::E5M2, uint8_t>(data, p, sc, d_slot, stream);
        break;
      default:
        return cudaErrorInvalidValue;
    }
    if (e != cudaSuccess) return e;
  }
  finalize_slot_kernel<<<1, 1, 0, stream>>>(d_slot);
  return cudaGetLastError();
}

cudaError_t launch_tensor_stats(const void* data, Format dtype, uint64_t rows, uint64_t cols,
                                uint64_t ld, const float scales[kNumTargets], TensorStats* d_slot,
                                cudaStream_t stream) {
  return launch_tensor_stats_batched(data, dtype, rows, cols, ld, 1, 0, scales, d_slot, stream);
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
