// GPU check of the statistics kernel against the host pass on the same data, and its bandwidth.
// Needs a GPU; built only with the CUDA parts (target stats_kernel_check), run by tests/gpu/run.sh.
//
// For FP32, BF16 and FP16 tensors of random data (normal values spanning many binades, planted
// NaN/+Inf/-Inf, zeros, FP32 subnormals, values beyond FP16/E4M3 range), at unit and odd scales:
//   - every count (count, NaN, +/-Inf, zero, per-target overflow/underflow/subnormal) and every
//     histogram bin, amax, min and max must EQUAL the host pass (compute_stats): they are integer
//     or order-independent results of the same numerics.h math;
//   - sum, sum_sq and each target's sum_err2 are floating-point sums reduced in a different
//     order (atomics on the GPU), so they must agree within a relative 1e-6 (double sums) /
//     1e-5 (stats.h's stated bound for sum_err2).
// FP8 codes through a per-tensor scale read by the kernel from device memory (check_fp8_scaled).
// Then the bandwidth: the median of 20 timed launches (CUDA events) over a 1 GiB FP32 tensor and
// a 1 GiB BF16 tensor, next to a plain read-only sum kernel over the same bytes and a
// device-to-device copy (bytes read + written), in one run. Prints one line per measurement.
// The kernels run as the probe runs them: through the driver API (a KernelQueue over one module
// loaded with cuModuleLoadData in the runtime's primary context, entries looked up by name,
// cuLaunchKernel); the correctness checks run twice, with the module from the embedded fatbin
// and with the one JIT-compiled from the embedded ISA 8.0 PTX (stats_kernel_images.h). The
// program's own memory, copies and timing use the CUDA runtime.
// Exit 0 pass, 1 mismatch, 77 no GPU.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "fpscope/host_stats.h"
#include "fpscope/stats_cuda.h"
#include "fpscope/stats_kernel_images.h"

using namespace fpscope;

// The driver entries this check uses, from the runtime (cudaGetDriverEntryPointByVersion at
// CUDA 12.0's versions, as the probe asks for them): linking libcuda.so.1 would keep the program
// from starting on a machine without a driver, where it must exit 77 (skipped).
namespace drv {
PFN_cuGetErrorName_v6000 cuGetErrorName = nullptr;
PFN_cuInit_v2000 cuInit = nullptr;
PFN_cuModuleLoadData_v2000 cuModuleLoadData = nullptr;
PFN_cuModuleGetFunction_v2000 cuModuleGetFunction = nullptr;
PFN_cuModuleUnload_v2000 cuModuleUnload = nullptr;
PFN_cuCtxGetDevice_v2000 cuCtxGetDevice = nullptr;
PFN_cuDeviceGetAttribute_v2000 cuDeviceGetAttribute = nullptr;
PFN_cuMemsetD8Async_v3020 cuMemsetD8Async = nullptr;
PFN_cuMemcpyDtoDAsync_v3020 cuMemcpyDtoDAsync = nullptr;
PFN_cuLaunchKernel_v4000 cuLaunchKernel = nullptr;
PFN_cuOccupancyMaxActiveBlocksPerMultiprocessor_v6050 cuOccupancyMaxActiveBlocksPerMultiprocessor =
    nullptr;
}  // namespace drv

bool load_driver_entries() {
  bool ok = true;
  auto get = [&](const char* name, void** fn) {
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion(name, fn, 12000, cudaEnableLegacyStream, &q) !=
            cudaSuccess ||
        q != cudaDriverEntryPointSuccess || *fn == nullptr) {
      std::fprintf(stderr, "stats_kernel_check: no driver entry %s\n", name);
      ok = false;
    }
  };
  get("cuGetErrorName", reinterpret_cast<void**>(&drv::cuGetErrorName));
  get("cuInit", reinterpret_cast<void**>(&drv::cuInit));
  get("cuModuleLoadData", reinterpret_cast<void**>(&drv::cuModuleLoadData));
  get("cuModuleGetFunction", reinterpret_cast<void**>(&drv::cuModuleGetFunction));
  get("cuModuleUnload", reinterpret_cast<void**>(&drv::cuModuleUnload));
  get("cuCtxGetDevice", reinterpret_cast<void**>(&drv::cuCtxGetDevice));
  get("cuDeviceGetAttribute", reinterpret_cast<void**>(&drv::cuDeviceGetAttribute));
  get("cuMemsetD8Async", reinterpret_cast<void**>(&drv::cuMemsetD8Async));
  get("cuMemcpyDtoDAsync", reinterpret_cast<void**>(&drv::cuMemcpyDtoDAsync));
  get("cuLaunchKernel", reinterpret_cast<void**>(&drv::cuLaunchKernel));
  get("cuOccupancyMaxActiveBlocksPerMultiprocessor",
      reinterpret_cast<void**>(&drv::cuOccupancyMaxActiveBlocksPerMultiprocessor));
  return ok;
}

#define CK(x)                                                                \
  do {                                                                       \
    cudaError_t e_ = (x);                                                    \
    if (e_ != cudaSuccess) {                                                 \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #x, \
                   cudaGetErrorString(e_));                                  \
      std::exit(1);                                                          \
    }                                                                        \
  } while (0)

#define CKD(x)                                                                               \
  do {                                                                                       \
    CUresult r_ = (x);                                                                       \
    if (r_ != CUDA_SUCCESS) {                                                                \
      const char* s_ = nullptr;                                                              \
      drv::cuGetErrorName(r_, &s_);                                                          \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #x, s_ ? s_ : "?"); \
      std::exit(1);                                                                          \
    }                                                                                        \
  } while (0)

// The statistics kernels through the driver API, as the probe runs them: one module of the
// image in the current (the runtime's primary) context, every entry looked up by name.
class DriverQueue : public KernelQueue {
 public:
  CUstream stream = nullptr;  // the stream the launchers enqueue on (0: the legacy stream)

  explicit DriverQueue(KernelImage image) {
    CKD(drv::cuModuleLoadData(&module_, image.data));
    for (int k = 0; k < kNumStatsKernels; ++k)
      CKD(drv::cuModuleGetFunction(&fn_[k], module_,
                                   stats_kernel_name(static_cast<StatsKernel>(k))));
    CUdevice dev;
    CKD(drv::cuCtxGetDevice(&dev));
    CKD(drv::cuDeviceGetAttribute(&sms_, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
  }
  ~DriverQueue() override { drv::cuModuleUnload(module_); }
  DriverQueue(const DriverQueue&) = delete;
  DriverQueue& operator=(const DriverQueue&) = delete;

  CUresult memset_zero(void* d_dst, size_t bytes) override {
    return drv::cuMemsetD8Async(reinterpret_cast<CUdeviceptr>(d_dst), 0, bytes, stream);
  }
  CUresult copy_device(void* d_dst, const void* d_src, size_t bytes) override {
    return drv::cuMemcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(d_dst),
                                  reinterpret_cast<CUdeviceptr>(d_src), bytes, stream);
  }
  CUresult launch(StatsKernel k, unsigned grid, unsigned block, const void* args) override {
    void* params[] = {const_cast<void*>(args)};
    return drv::cuLaunchKernel(fn_[static_cast<int>(k)], grid, 1, 1, block, 1, 1, 0, stream, params,
                               nullptr);
  }
  unsigned resident_blocks(StatsKernel k) override {
    int per_sm = 0;
    if (drv::cuOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn_[static_cast<int>(k)],
                                                         kStatsThreads, 0) != CUDA_SUCCESS)
      return 0;
    return static_cast<unsigned>(per_sm * sms_);
  }

 private:
  CUmodule module_ = nullptr;
  CUfunction fn_[kNumStatsKernels] = {};
  int sms_ = 0;
};
static DriverQueue* g_q = nullptr;  // the module the checks run with

static int g_fail = 0;

static void expect_eq_u(const char* what, const char* field, uint64_t dev, uint64_t host) {
  if (dev != host) {
    std::printf("  MISMATCH %s %s: device %llu host %llu\n", what, field, (unsigned long long)dev,
                (unsigned long long)host);
    ++g_fail;
  }
}
static void expect_eq_f(const char* what, const char* field, float dev, float host) {
  if (std::memcmp(&dev, &host, 4) != 0) {
    std::printf("  MISMATCH %s %s: device %.9g host %.9g\n", what, field, dev, host);
    ++g_fail;
  }
}
static void expect_close(const char* what, const char* field, double dev, double host, double rel) {
  const double d = std::fabs(dev - host), m = std::max(std::fabs(dev), std::fabs(host));
  if (!(d <= rel * m || d == 0)) {
    std::printf("  MISMATCH %s %s: device %.17g host %.17g (rel %.3g > %.1g)\n", what, field, dev,
                host, d / m, rel);
    ++g_fail;
  }
}

static void compare(const char* what, const TensorStats& d, const TensorStats& h) {
  expect_eq_u(what, "count", d.count, h.count);
  expect_eq_u(what, "nan", d.nan, h.nan);
  expect_eq_u(what, "pos_inf", d.pos_inf, h.pos_inf);
  expect_eq_u(what, "neg_inf", d.neg_inf, h.neg_inf);
  expect_eq_u(what, "zero", d.zero, h.zero);
  expect_eq_f(what, "amax", d.amax, h.amax);
  expect_eq_f(what, "min", d.min, h.min);
  expect_eq_f(what, "max", d.max, h.max);
  expect_close(what, "sum", d.sum, h.sum, 1e-6);
  expect_close(what, "sum_sq", d.sum_sq, h.sum_sq, 1e-6);
  static const char* names[kNumTargets] = {"bf16", "fp16", "e4m3", "e5m2"};
  char f[64];
  for (int i = 0; i < kNumTargets; ++i) {
    std::snprintf(f, sizeof f, "%s.overflow", names[i]);
    expect_eq_u(what, f, d.fmt[i].overflow, h.fmt[i].overflow);
    std::snprintf(f, sizeof f, "%s.underflow", names[i]);
    expect_eq_u(what, f, d.fmt[i].underflow, h.fmt[i].underflow);
    std::snprintf(f, sizeof f, "%s.subnormal", names[i]);
    expect_eq_u(what, f, d.fmt[i].subnormal, h.fmt[i].subnormal);
    std::snprintf(f, sizeof f, "%s.sum_err2", names[i]);
    expect_close(what, f, d.fmt[i].sum_err2, h.fmt[i].sum_err2, 1e-5);
  }
  for (int b = 0; b < kHistBins; ++b) {
    if (d.hist[b] != h.hist[b]) {
      std::printf("  MISMATCH %s hist[%d]: device %llu host %llu\n", what, b,
                  (unsigned long long)d.hist[b], (unsigned long long)h.hist[b]);
      ++g_fail;
    }
  }
}

static std::vector<float> make_data(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_int_distribution<int> ex(-40, 40);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::ldexp(nd(rng), ex(rng));
  for (size_t i = 0; i < n; i += 997) v[i] = 0.f;
  for (size_t i = 5; i < n; i += 1999) v[i] = 7e4f;     // > FP16 max
  for (size_t i = 11; i < n; i += 2003) v[i] = 1e-40f;  // FP32 subnormal
  if (n > 100) {
    v[17] = NAN;
    v[18] = INFINITY;
    v[19] = -INFINITY;
  }
  return v;
}

static void check_one(const char* what, Format dtype, const std::vector<float>& src, uint64_t rows,
                      uint64_t cols, uint64_t ld, const float scales[4]) {
  const size_t n = src.size();
  std::vector<unsigned char> host_bytes;
  size_t esz = dtype == Format::FP32 ? 4 : 2;
  host_bytes.resize(n * esz);
  for (size_t i = 0; i < n; ++i) {
    if (dtype == Format::FP32) {
      std::memcpy(&host_bytes[i * 4], &src[i], 4);
    } else if (dtype == Format::BF16) {
      __nv_bfloat16 b = __float2bfloat16_rn(src[i]);
      std::memcpy(&host_bytes[i * 2], &b, 2);
    } else {
      __half hh = __float2half_rn(src[i]);
      std::memcpy(&host_bytes[i * 2], &hh, 2);
    }
  }
  void* d_data = nullptr;
  TensorStats* d_slot = nullptr;
  CK(cudaMalloc(&d_data, host_bytes.size()));
  CK(cudaMalloc(&d_slot, sizeof(TensorStats)));
  CK(cudaMemcpy(d_data, host_bytes.data(), host_bytes.size(), cudaMemcpyHostToDevice));
  CKD(launch_tensor_stats(*g_q, d_data, dtype, rows, cols, ld, scales, d_slot));
  TensorStats dev;
  CK(cudaMemcpy(&dev, d_slot, sizeof dev, cudaMemcpyDeviceToHost));
  StatsOptions opt;
  for (int i = 0; i < kNumTargets; ++i) opt.scale[i] = scales[i];
  TensorStats host;
  compute_stats(host_bytes.data(), dtype, rows, cols, ld, opt, &host);
  const int before = g_fail;
  compare(what, dev, host);
  std::printf("%s %s (rows %llu cols %llu ld %llu, scales %g %g %g %g)\n",
              g_fail == before ? "ok:  " : "FAIL:", what, (unsigned long long)rows,
              (unsigned long long)cols, (unsigned long long)ld, scales[0], scales[1], scales[2],
              scales[3]);
  CK(cudaFree(d_data));
  CK(cudaFree(d_slot));
}

// FP8 codes read through a per-tensor scale in device memory (issue 16 item 8, value_scale.h):
// the scalar is written by a cudaMemcpyAsync on the launch's stream just before the launch (as a
// program's scale update precedes its GEMM), the kernel reads it there; against compute_stats on
// the values decode(code) * s (or / s) computed in double and rounded once to FP32.
static void check_fp8_scaled(const char* what, Format dtype, float s, ValueScaleOp op,
                             const float scales[4]) {
  const uint64_t rows = 1000, cols = 700, ld = 1024;
  std::vector<uint8_t> codes(ld * cols);
  std::mt19937 rng(7);
  for (auto& c : codes) c = static_cast<uint8_t>(rng());
  std::vector<float> values;
  for (uint64_t j = 0; j < cols; ++j)
    for (uint64_t i = 0; i < rows; ++i) {
      const double x = decode_storage(dtype, codes[j * ld + i]);
      values.push_back(static_cast<float>(op == ValueScaleOp::Divide ? x / s : x * s));
    }
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  void* d_codes = nullptr;
  float* d_scale = nullptr;
  TensorStats* d_slot = nullptr;
  CK(cudaMalloc(&d_codes, codes.size()));
  CK(cudaMalloc(&d_scale, sizeof(float)));
  CK(cudaMalloc(&d_slot, sizeof(TensorStats)));
  CK(cudaMemcpy(d_codes, codes.data(), codes.size(), cudaMemcpyHostToDevice));
  const float stale = 1.0f;
  CK(cudaMemcpy(d_scale, &stale, sizeof(float), cudaMemcpyHostToDevice));
  CK(cudaMemcpyAsync(d_scale, &s, sizeof(float), cudaMemcpyHostToDevice, stream));
  g_q->stream = stream;
  CKD(launch_tensor_stats(*g_q, d_codes, dtype, rows, cols, ld, scales, d_slot,
                          ValueScale{d_scale, op}));
  g_q->stream = nullptr;
  TensorStats dev;
  CK(cudaMemcpyAsync(&dev, d_slot, sizeof dev, cudaMemcpyDeviceToHost, stream));
  CK(cudaStreamSynchronize(stream));
  StatsOptions opt;
  for (int i = 0; i < kNumTargets; ++i) opt.scale[i] = scales[i];
  TensorStats host;
  compute_stats(values.data(), Format::FP32, values.size(), 1, values.size(), opt, &host);
  const int before = g_fail;
  compare(what, dev, host);
  std::printf("%s %s (scale %g, %s)\n", g_fail == before ? "ok:  " : "FAIL:", what, s,
              op == ValueScaleOp::Divide ? "divide" : "multiply");
  CK(cudaFree(d_codes));
  CK(cudaFree(d_scale));
  CK(cudaFree(d_slot));
  CK(cudaStreamDestroy(stream));
}

// Block-scaled formats: launch_block_stats after launch_tensor_stats against compute_stats with
// every block format on, along `axis`. Counts and scale histograms must be equal (the same
// block_numerics.h math per block); sums within the host's FP32-lane bound.
static void check_blocks(const char* what, Format dtype, const std::vector<float>& src,
                         uint64_t rows, uint64_t cols, uint64_t ld, BlockAxis axis) {
  const size_t n = src.size();
  const size_t esz = dtype == Format::FP32 ? 4 : 2;
  std::vector<unsigned char> host_bytes(n * esz);
  for (size_t i = 0; i < n; ++i) {
    if (dtype == Format::FP32) {
      std::memcpy(&host_bytes[i * 4], &src[i], 4);
    } else {
      __nv_bfloat16 b = __float2bfloat16_rn(src[i]);
      std::memcpy(&host_bytes[i * 2], &b, 2);
    }
  }
  void* d_data = nullptr;
  TensorStats* d_slot = nullptr;
  CK(cudaMalloc(&d_data, host_bytes.size()));
  CK(cudaMalloc(&d_slot, sizeof(TensorStats)));
  CK(cudaMemcpy(d_data, host_bytes.data(), host_bytes.size(), cudaMemcpyHostToDevice));
  const float unit[4] = {1, 1, 1, 1};
  CKD(launch_tensor_stats(*g_q, d_data, dtype, rows, cols, ld, unit, d_slot));
  CKD(launch_block_stats(*g_q, d_data, dtype, rows, cols, ld, 1, 0, kAllBlockFormats, axis,
                         d_slot));
  auto dev = std::make_unique<TensorStats>();
  CK(cudaMemcpy(dev.get(), d_slot, sizeof(TensorStats), cudaMemcpyDeviceToHost));
  StatsOptions opt;
  opt.block_formats = kAllBlockFormats;
  opt.block_axis = axis;
  auto host = std::make_unique<TensorStats>();
  compute_stats(host_bytes.data(), dtype, rows, cols, ld, opt, host.get());
  const int before = g_fail;
  const BlockStatsSet &d = dev->blocks, &h = host->blocks;
  expect_eq_u(what, "blocks.mask", d.mask, h.mask);
  expect_eq_u(what, "blocks.axis", static_cast<uint64_t>(d.axis), static_cast<uint64_t>(h.axis));
  expect_eq_f(what, "blocks.nvfp4_tensor_scale", d.nvfp4_tensor_scale, h.nvfp4_tensor_scale);
  for (int f = 0; f < kNumBlockFormats; ++f) {
    char field[96];
    const BlockFormatCounts &a = d.fmt[f], &b = h.fmt[f];
    const uint64_t av[8] = {a.blocks,      a.elements,        a.flushed,        a.saturated,
                            a.zero_blocks, a.scale_underflow, a.scale_overflow, a.nan_scale};
    const uint64_t bv[8] = {b.blocks,      b.elements,        b.flushed,        b.saturated,
                            b.zero_blocks, b.scale_underflow, b.scale_overflow, b.nan_scale};
    for (int k = 0; k < 8; ++k) {
      std::snprintf(field, sizeof field, "%s.count%d", kBlockFormats[f]->name, k);
      expect_eq_u(what, field, av[k], bv[k]);
    }
    std::snprintf(field, sizeof field, "%s.sum_err2", kBlockFormats[f]->name);
    expect_close(what, field, a.sum_err2, b.sum_err2, 1e-4);
    std::snprintf(field, sizeof field, "%s.sum_x2", kBlockFormats[f]->name);
    expect_close(what, field, a.sum_x2, b.sum_x2, 1e-9);
    for (int bin = 0; bin < kBlockScaleBins; ++bin) {
      std::snprintf(field, sizeof field, "%s.scale_hist[%d]", kBlockFormats[f]->name, bin);
      expect_eq_u(what, field, d.scale_hist[f][bin], h.scale_hist[f][bin]);
    }
  }
  std::printf("%s %s (rows %llu cols %llu ld %llu, block axis %s)\n",
              g_fail == before ? "ok:  " : "FAIL:", what, (unsigned long long)rows,
              (unsigned long long)cols, (unsigned long long)ld,
              axis == BlockAxis::Rows ? "rows" : "cols");
  CK(cudaFree(d_data));
  CK(cudaFree(d_slot));
}

__global__ void plain_sum(const float4* p, size_t n4, float* out) {
  float acc = 0.f;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4;
       i += (size_t)gridDim.x * blockDim.x) {
    float4 v = p[i];
    acc += v.x + v.y + v.z + v.w;
  }
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0) atomicAdd(out, acc);
}

template <class F>
static float median_ms(F&& launch, int reps) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  launch();
  CK(cudaDeviceSynchronize());
  std::vector<float> t;
  for (int r = 0; r < reps; ++r) {
    CK(cudaEventRecord(a));
    launch();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  return t[t.size() / 2];
}

int main() {
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    std::printf("stats_kernel_check: no GPU: skipped\n");
    return 77;
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, sm_%d%d, %d SMs\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount);
  const float unit[4] = {1, 1, 1, 1};
  const float odd[4] = {3.0f, 0.37f, 448.f / 3.1f, 1.0f / 1024};
  CK(cudaFree(nullptr));  // the runtime's primary context, current: the modules load into it
  if (!load_driver_entries()) return 1;
  CKD(drv::cuInit(0));
  DriverQueue fatbin(stats_kernels_fatbin());
  DriverQueue ptx(stats_kernels_ptx());
  // Correctness: several shapes, including ld > rows (strided columns) and a non-multiple of 4.
  for (DriverQueue* q : {&fatbin, &ptx}) {
    g_q = q;
    std::printf("module: %s\n", q == &fatbin ? "fatbin" : "PTX ISA 8.0 (JIT)");
    auto v = make_data(1 << 22, 1);
    check_one("fp32 contiguous", Format::FP32, v, 1 << 22, 1, 1 << 22, unit);
    check_one("fp32 contiguous odd scales", Format::FP32, v, 1 << 22, 1, 1 << 22, odd);
    check_one("fp32 1000x4000 ld 1048", Format::FP32, v, 1000, 4000, 1048, unit);
    check_one("bf16 contiguous", Format::BF16, v, 1 << 22, 1, 1 << 22, unit);
    check_one("bf16 1000x4000 ld 1048 odd scales", Format::BF16, v, 1000, 4000, 1048, odd);
    check_one("fp16 contiguous", Format::FP16, v, 1 << 22, 1, 1 << 22, unit);
    auto w = make_data(12345, 2);
    check_one("fp32 12345 (tail)", Format::FP32, w, 12345, 1, 12345, unit);
    // Block formats (issue 19): both axes, padding, partial blocks, NaN/Inf/zero/subnormal
    // elements from make_data, BF16 storage.
    check_blocks("blocks fp32 1000x4000 ld 1048 rows", Format::FP32, v, 1000, 4000, 1048,
                 BlockAxis::Rows);
    check_blocks("blocks fp32 1000x4000 ld 1048 cols", Format::FP32, v, 1000, 4000, 1048,
                 BlockAxis::Cols);
    check_blocks("blocks bf16 contiguous rows", Format::BF16, v, 1 << 22, 1, 1 << 22,
                 BlockAxis::Rows);
    check_blocks("blocks fp32 12345 x 1 cols", Format::FP32, w, 12345, 1, 12345, BlockAxis::Cols);
    check_blocks("blocks fp32 111x100 cols", Format::FP32, w, 111, 100, 123, BlockAxis::Cols);
    // FP8 operands through their cuBLASLt scale (A/B: multiply, D: divide).
    check_fp8_scaled("e4m3 * device scale", Format::E4M3, 0.0371f, ValueScaleOp::Multiply, odd);
    check_fp8_scaled("e5m2 * device scale", Format::E5M2, 1.7e-6f, ValueScaleOp::Multiply, unit);
    check_fp8_scaled("e4m3 / device D scale", Format::E4M3, 37.5f, ValueScaleOp::Divide, odd);
  }
  g_q = &fatbin;
  // Bandwidth over 1 GiB.
  const size_t bytes = size_t(1) << 30;
  void* d = nullptr;
  void* d2 = nullptr;
  float* d_out = nullptr;
  TensorStats* d_slot = nullptr;
  CK(cudaMalloc(&d, bytes));
  CK(cudaMalloc(&d2, bytes));
  CK(cudaMalloc(&d_out, sizeof(float)));
  CK(cudaMalloc(&d_slot, sizeof(TensorStats)));
  {
    auto v = make_data(bytes / 4 / 64, 3);  // 16 MiB pattern, tiled
    for (size_t off = 0; off < bytes; off += v.size() * 4)
      CK(cudaMemcpy((char*)d + off, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
  }
  const float gib = bytes / 1e9f;
  float t_copy =
      median_ms([&] { CK(cudaMemcpyAsync(d2, d, bytes, cudaMemcpyDeviceToDevice)); }, 20);
  float t_sum = median_ms(
      [&] {
        plain_sum<<<prop.multiProcessorCount * 8, 256>>>((const float4*)d, bytes / 16, d_out);
      },
      20);
  float t_f32 = median_ms(
      [&] {
        CKD(launch_tensor_stats(*g_q, d, Format::FP32, bytes / 4, 1, bytes / 4, unit, d_slot));
      },
      20);
  float t_f32s = median_ms(
      [&] {
        CKD(launch_tensor_stats(*g_q, d, Format::FP32, bytes / 4, 1, bytes / 4, odd, d_slot));
      },
      20);
  float t_b16 = median_ms(
      [&] {
        CKD(launch_tensor_stats(*g_q, d, Format::BF16, bytes / 2, 1, bytes / 2, unit, d_slot));
      },
      20);
  std::printf("bandwidth 1 GiB: d2d copy %.0f GB/s (read+write), plain sum %.0f GB/s\n",
              2 * gib / (t_copy / 1e3f), gib / (t_sum / 1e3f));
  std::printf(
      "bandwidth 1 GiB: stats fp32 %.0f GB/s (%.2fx of plain sum), fp32 odd scales %.0f GB/s"
      " (%.2fx), bf16 %.0f GB/s (%.2fx)\n",
      gib / (t_f32 / 1e3f), t_sum / t_f32, gib / (t_f32s / 1e3f), t_sum / t_f32s,
      gib / (t_b16 / 1e3f), t_sum / t_b16);
  std::printf("%s: %d mismatches\n", g_fail ? "FAIL" : "PASS", g_fail);
  return g_fail ? 1 : 0;
}
