// CUDA statistics kernels. Structure (kept small on purpose: it cannot run in CI):
//   init_slot_kernel   1 thread: scales and min/max identities (after a cudaMemsetAsync)
//   tensor_stats_kernel grid-stride over the elements; each thread folds its elements into a
//                      StatsScalars with numerics.h's accumulate_scalars (the host's exact
//                      per-element code) and the block's shared-memory histogram; warps merge
//                      their threads' partials by shuffles + StatsScalars::merge_scalars; warp
//                      leaders' partials are merged by thread 0 and folded into the slot with
//                      stats_reduce.h's merge_partial_into_slot (atomics).
//   finalize_slot_kernel 1 thread: min/max of an all-non-finite tensor.
// kernels/src/stats_sim.cpp runs the same steps on the CPU for the tests.
#include <cuda_runtime.h>

#include "fpscope/numerics.h"
#include "fpscope/stats_cuda.h"
#include "fpscope/stats_reduce.h"
#include "fpscope/update_loss.h"

namespace fpscope {
namespace {

using ull = unsigned long long;
static_assert(sizeof(uint64_t) == sizeof(ull), "64-bit counters");

struct DeviceAtomics {
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

__device__ ull shfl_down(ull v, int off) {
  return __shfl_down_sync(0xffffffffu, v, off);
}
__device__ double shfl_down(double v, int off) {
  return __shfl_down_sync(0xffffffffu, v, off);
}
__device__ float shfl_down(float v, int off) {
  return __shfl_down_sync(0xffffffffu, v, off);
}
__device__ uint64_t shfl_down_u64(uint64_t v, int off) {
  return static_cast<uint64_t>(shfl_down(static_cast<ull>(v), off));
}

// Lane 0 ends with the merge of the warp's 32 partials (tree order: lane l takes l + off).
__device__ void warp_reduce(StatsScalars& s) {
  for (int off = 16; off > 0; off >>= 1) {
    StatsScalars o;
    o.count = shfl_down_u64(s.count, off);
    o.nan = shfl_down_u64(s.nan, off);
    o.pos_inf = shfl_down_u64(s.pos_inf, off);
    o.neg_inf = shfl_down_u64(s.neg_inf, off);
    o.zero = shfl_down_u64(s.zero, off);
    o.amax = shfl_down(s.amax, off);
    o.min = shfl_down(s.min, off);
    o.max = shfl_down(s.max, off);
    o.sum = shfl_down(s.sum, off);
    o.sum_sq = shfl_down(s.sum_sq, off);
    for (int i = 0; i < kNumTargets; ++i) {
      o.fmt[i].overflow = shfl_down_u64(s.fmt[i].overflow, off);
      o.fmt[i].underflow = shfl_down_u64(s.fmt[i].underflow, off);
      o.fmt[i].subnormal = shfl_down_u64(s.fmt[i].subnormal, off);
      o.fmt[i].sum_err2 = shfl_down(s.fmt[i].sum_err2, off);
    }
    if ((threadIdx.x & 31) + off < 32) s.merge_scalars(o);
  }
}

__global__ void init_slot_kernel(TensorStats* slot, ScaleSet sc) {
  init_slot_scalars(*slot, sc.scale);
}
__global__ void finalize_slot_kernel(TensorStats* slot) {
  finalize_slot_scalars(*slot);
}

template <Format F, class T>
__global__ void __launch_bounds__(kStatsThreads)
    tensor_stats_kernel(const T* __restrict__ data, ViewIndex view, uint64_t n, ScaleSet sc,
                        TensorStats* slot) {
  __shared__ uint32_t hist[kHistBins];
  // Raw storage: __shared__ variables cannot have StatsScalars' member initializers.
  __shared__ alignas(
      StatsScalars) unsigned char warp_raw[sizeof(StatsScalars) * (kStatsThreads / 32)];
  auto* warp_part = reinterpret_cast<StatsScalars*>(warp_raw);
  for (unsigned b = threadIdx.x; b < kHistBins; b += blockDim.x) hist[b] = 0;
  __syncthreads();

  StatsScalars s;
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t k = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += stride) {
    const float x = decode_storage_t<F>(static_cast<uint32_t>(data[view.offset(k)]));
    const int bin = accumulate_scalars(s, x, sc);
    if (bin >= 0) atomicAdd(&hist[bin], 1u);
  }

  warp_reduce(s);
  if ((threadIdx.x & 31) == 0) warp_part[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    StatsScalars block = warp_part[0];
    for (unsigned w = 1; w < blockDim.x / 32; ++w) block.merge_scalars(warp_part[w]);
    DeviceAtomics at;
    merge_partial_into_slot(slot, block, at);
  }
  for (unsigned b = threadIdx.x; b < kHistBins; b += blockDim.x)
    if (hist[b]) atomicAdd(reinterpret_cast<ull*>(&slot->hist[b]), static_cast<ull>(hist[b]));
}

template <Format F, class T>
cudaError_t launch_typed(const void* data, const ViewIndex& view, uint64_t n, const ScaleSet& sc,
                         TensorStats* slot, cudaStream_t stream) {
  tensor_stats_kernel<F, T><<<stats_blocks(n), kStatsThreads, 0, stream>>>(
      static_cast<const T*>(data), view, n, sc, slot);
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
  const uint64_t nb = batch < 1 ? 1 : batch;
  const uint64_t n = rows * cols * nb;
  if (n > 0 && data != nullptr) {
    const ViewIndex view = make_view_index(rows, cols, ld, nb, batch_stride);
    switch (dtype) {
      case Format::FP32:
        e = launch_typed<Format::FP32, uint32_t>(data, view, n, sc, d_slot, stream);
        break;
      case Format::BF16:
        e = launch_typed<Format::BF16, uint16_t>(data, view, n, sc, d_slot, stream);
        break;
      case Format::FP16:
        e = launch_typed<Format::FP16, uint16_t>(data, view, n, sc, d_slot, stream);
        break;
      case Format::E4M3:
        e = launch_typed<Format::E4M3, uint8_t>(data, view, n, sc, d_slot, stream);
        break;
      case Format::E5M2:
        e = launch_typed<Format::E5M2, uint8_t>(data, view, n, sc, d_slot, stream);
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

}  // namespace fpscope
