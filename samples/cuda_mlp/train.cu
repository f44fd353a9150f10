// cuda_mlp: a small CUDA C++ mixed-precision training program to record with fpscope.
//
// 2-layer MLP (ReLU) on a synthetic regression task. FP32 master weights; every step casts them to
// the compute type (BF16 or FP16), runs the forward and backward GEMMs with cublasGemmEx (FP32
// accumulation), unscales the gradients into FP32 with an Inf/NaN check and applies SGD unless the
// check fired. Dynamic loss scaling: backoff x0.5 on overflow (step skipped), growth x2 after
// --growth-interval clean steps. --plant-overflow S multiplies the loss scale of step S by 2^20 so
// that the FP16 backward pass overflows there (BF16 has the range to absorb it).
//
// NVTX ranges (header-only nvtx3; no-ops unless a tool is attached): each step runs inside a range
// "step" and each GEMM inside a range naming it (fc1.fwd, fc2.fwd, fc2.dW, fc2.dX, fc1.dW), so that
// under `fpscope record` the tensors carry those names and the steps come from NVTX.
//
// Usage: cuda_mlp [--dtype bf16|fp16] [--steps N] [--batch B] [--plant-overflow S] [--seed X]
// Prints one line per step: "step S loss L scale K found_inf F" (%.9g: all float bits; the loss is
// reduced in a fixed order, so two runs print the same bits). Exit 2 when there is no GPU.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <nvtx3/nvToolsExt.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#define CK(x)                                                                        \
  do {                                                                               \
    cudaError_t e_ = (x);                                                            \
    if (e_ != cudaSuccess) {                                                         \
      std::fprintf(stderr, "cuda_mlp: %s failed: %s\n", #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                  \
    }                                                                                \
  } while (0)
#define CB(x)                                                                             \
  do {                                                                                    \
    cublasStatus_t s_ = (x);                                                              \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                    \
      std::fprintf(stderr, "cuda_mlp: %s failed: status %d\n", #x, static_cast<int>(s_)); \
      std::exit(1);                                                                       \
    }                                                                                     \
  } while (0)

template <typename T>
__device__ T from_f(float x);
template <>
__device__ __half from_f<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
__device__ float to_f(__half x) {
  return __half2float(x);
}
__device__ float to_f(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

template <typename T>
__global__ void cast_kernel(const float* in, T* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = from_f<T>(in[i]);
}
template <typename T>
__global__ void relu_kernel(T* h, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n && !(to_f(h[i]) > 0.0f)) h[i] = from_f<T>(0.0f);
}
template <typename T>
__global__ void relu_backward_kernel(T* g, const T* h, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n && !(to_f(h[i]) > 0.0f)) g[i] = from_f<T>(0.0f);
}
// dY = scale * 2 (y - t) / n; sq[i] = (y - t)^2 / n (summed by loss_sum_kernel in a fixed order,
// so that the printed loss is the same bits in every run: no atomics).
template <typename T>
__global__ void mse_kernel(const T* y, const float* t, T* dy, float scale, int n, float* sq) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float d = to_f(y[i]) - t[i];
  dy[i] = from_f<T>(scale * 2.0f * d / static_cast<float>(n));
  sq[i] = d * d / static_cast<float>(n);
}
// One block of kSumThreads: thread j sums sq[j], sq[j + kSumThreads], ... in order, then a
// shared-memory tree in a fixed pairing. Deterministic (independent of scheduling).
constexpr int kSumThreads = 256;
__global__ void loss_sum_kernel(const float* sq, int n, float* loss) {
  __shared__ float part[kSumThreads];
  const int j = static_cast<int>(threadIdx.x);
  float acc = 0.0f;
  for (int i = j; i < n; i += kSumThreads) acc += sq[i];
  part[j] = acc;
  __syncthreads();
  for (int w = kSumThreads / 2; w > 0; w /= 2) {
    if (j < w) part[j] += part[j + w];
    __syncthreads();
  }
  if (j == 0) *loss = part[0];
}
template <typename T>
__global__ void unscale_kernel(const T* g, float* g32, int n, float inv_scale, float* found_inf) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = to_f(g[i]);
  if (!isfinite(v)) *found_inf = 1.0f;
  g32[i] = v * inv_scale;
}
__global__ void sgd_kernel(float* w, const float* g, int n, float lr, const float* found_inf) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n && *found_inf == 0.0f) w[i] -= lr * g[i];
}

static int blocks(int n) {
  return (n + 255) / 256;
}

struct Options {
  std::string dtype = "bf16";
  int steps = 50;
  int batch = 256;
  int plant = -1;
  int growth_interval = 20;
  unsigned seed = 1;
};

template <typename T>
static int train(const Options& o, cudaDataType ctype) {
  const int in = 64, hid = 256, out = 16, B = o.batch;
  cublasHandle_t h;
  CB(cublasCreate(&h));
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  CB(cublasSetStream(h, stream));
  // Host data: inputs, a fixed random teacher, FP32 master weights.
  std::srand(o.seed);
  auto rnd = [] { return static_cast<float>(std::rand()) / RAND_MAX * 2.0f - 1.0f; };
  std::vector<float> x(in * B), w1(hid * in), w2(out * hid), teacher(out * in), t(out * B, 0.0f);
  for (auto& v : x) v = rnd();
  for (auto& v : w1) v = rnd() * 0.125f;
  for (auto& v : w2) v = rnd() * 0.0625f;
  for (auto& v : teacher) v = rnd();
  for (int b = 0; b < B; ++b)
    for (int r = 0; r < out; ++r)
      for (int c = 0; c < in; ++c) t[r + b * out] += teacher[r + c * out] * x[c + b * in] * 0.125f;
  float *dx32, *dw1, *dw2, *dt, *g1_32, *g2_32, *dsq, *dloss, *dinf;
  T *dx, *w1c, *w2c, *hact, *y, *dy, *dh, *g1, *g2;
  CK(cudaMalloc(&dx32, x.size() * 4));
  CK(cudaMalloc(&dw1, w1.size() * 4));
  CK(cudaMalloc(&dw2, w2.size() * 4));
  CK(cudaMalloc(&dt, t.size() * 4));
  CK(cudaMalloc(&g1_32, w1.size() * 4));
  CK(cudaMalloc(&g2_32, w2.size() * 4));
  CK(cudaMalloc(&dsq, t.size() * 4));
  CK(cudaMalloc(&dloss, 4));
  CK(cudaMalloc(&dinf, 4));
  CK(cudaMalloc(&dx, x.size() * sizeof(T)));
  CK(cudaMalloc(&w1c, w1.size() * sizeof(T)));
  CK(cudaMalloc(&w2c, w2.size() * sizeof(T)));
  CK(cudaMalloc(&hact, static_cast<size_t>(hid) * B * sizeof(T)));
  CK(cudaMalloc(&dh, static_cast<size_t>(hid) * B * sizeof(T)));
  CK(cudaMalloc(&y, static_cast<size_t>(out) * B * sizeof(T)));
  CK(cudaMalloc(&dy, static_cast<size_t>(out) * B * sizeof(T)));
  CK(cudaMalloc(&g1, w1.size() * sizeof(T)));
  CK(cudaMalloc(&g2, w2.size() * sizeof(T)));
  CK(cudaMemcpy(dx32, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw1, w1.data(), w1.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dw2, w2.data(), w2.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dt, t.data(), t.size() * 4, cudaMemcpyHostToDevice));
  cast_kernel<T><<<blocks(in * B), 256, 0, stream>>>(dx32, dx, in * B);

  const float one = 1.0f, zero = 0.0f;
  auto gemm = [&](const char* name, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                  const T* A, int lda, const T* Bm, int ldb, T* C, int ldc) {
    nvtxRangePushA(name);
    CB(cublasGemmEx(h, ta, tb, m, n, k, &one, A, ctype, lda, Bm, ctype, ldb, &zero, C, ctype, ldc,
                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    nvtxRangePop();
  };
  float scale = 65536.0f;
  int good = 0;
  const float lr = 0.05f;
  for (int s = 0; s < o.steps; ++s) {
    nvtxRangePushA("step");
    const float step_scale = s == o.plant ? scale * 1048576.0f : scale;
    cast_kernel<T><<<blocks(hid * in), 256, 0, stream>>>(dw1, w1c, hid * in);
    cast_kernel<T><<<blocks(out * hid), 256, 0, stream>>>(dw2, w2c, out * hid);
    // H = W1 X
    gemm("fc1.fwd", CUBLAS_OP_N, CUBLAS_OP_N, hid, B, in, w1c, hid, dx, in, hact, hid);
    relu_kernel<T><<<blocks(hid * B), 256, 0, stream>>>(hact, hid * B);
    // Y = W2 H
    gemm("fc2.fwd", CUBLAS_OP_N, CUBLAS_OP_N, out, B, hid, w2c, out, hact, hid, y, out);
    CK(cudaMemsetAsync(dinf, 0, 4, stream));
    mse_kernel<T><<<blocks(out * B), 256, 0, stream>>>(y, dt, dy, step_scale, out * B, dsq);
    loss_sum_kernel<<<1, kSumThreads, 0, stream>>>(dsq, out * B, dloss);
    // dW2 = dY H^T
    gemm("fc2.dW", CUBLAS_OP_N, CUBLAS_OP_T, out, hid, B, dy, out, hact, hid, g2, out);
    // dH = W2^T dY
    gemm("fc2.dX", CUBLAS_OP_T, CUBLAS_OP_N, hid, B, out, w2c, out, dy, out, dh, hid);
    relu_backward_kernel<T><<<blocks(hid * B), 256, 0, stream>>>(dh, hact, hid * B);
    // dW1 = dH X^T
    gemm("fc1.dW", CUBLAS_OP_N, CUBLAS_OP_T, hid, in, B, dh, hid, dx, in, g1, hid);
    unscale_kernel<T>
        <<<blocks(hid * in), 256, 0, stream>>>(g1, g1_32, hid * in, 1.0f / step_scale, dinf);
    unscale_kernel<T>
        <<<blocks(out * hid), 256, 0, stream>>>(g2, g2_32, out * hid, 1.0f / step_scale, dinf);
    sgd_kernel<<<blocks(hid * in), 256, 0, stream>>>(dw1, g1_32, hid * in, lr, dinf);
    sgd_kernel<<<blocks(out * hid), 256, 0, stream>>>(dw2, g2_32, out * hid, lr, dinf);
    float loss = 0, found = 0;
    CK(cudaMemcpyAsync(&loss, dloss, 4, cudaMemcpyDeviceToHost, stream));
    CK(cudaMemcpyAsync(&found, dinf, 4, cudaMemcpyDeviceToHost, stream));
    CK(cudaStreamSynchronize(stream));
    nvtxRangePop();
    // %.9g: every float bit shows, so runs with and without the probe compare bit for bit.
    std::printf("step %d loss %.9g scale %.9g found_inf %d\n", s, loss, step_scale, found != 0.0f);
    if (found != 0.0f) {
      scale *= 0.5f;  // backoff (the step was skipped by sgd_kernel)
      good = 0;
    } else if (++good == o.growth_interval) {
      scale *= 2.0f;  // growth
      good = 0;
    }
  }
  cublasDestroy(h);
  cudaStreamDestroy(stream);
  return 0;
}

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "cuda_mlp: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--dtype")
      o.dtype = next();
    else if (a == "--steps")
      o.steps = std::atoi(next());
    else if (a == "--batch")
      o.batch = std::atoi(next());
    else if (a == "--plant-overflow")
      o.plant = std::atoi(next());
    else if (a == "--growth-interval")
      o.growth_interval = std::atoi(next());
    else if (a == "--seed")
      o.seed = static_cast<unsigned>(std::atoi(next()));
    else {
      std::fprintf(stderr,
                   "usage: cuda_mlp [--dtype bf16|fp16] [--steps N] [--batch B] "
                   "[--plant-overflow STEP] [--growth-interval N] [--seed X]\n");
      return 2;
    }
  }
  if (o.dtype != "bf16" && o.dtype != "fp16") {
    std::fprintf(stderr, "cuda_mlp: --dtype must be bf16 or fp16\n");
    return 2;
  }
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    std::fprintf(stderr, "cuda_mlp: no CUDA GPU available (%s): nothing to train\n",
                 e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return 2;
  }
  return o.dtype == "bf16" ? train<__nv_bfloat16>(o, CUDA_R_16BF) : train<__half>(o, CUDA_R_16F);
}
