// A CUDA program for the strict mock driver (tests/mock_cuda): the GPU path end to end in CI.
// Driver API + the computing mock cuBLAS (mock_cublas.c); the fpscope API is looked up at run time
// (a no-op without the probe). Each step: upload A and B (mock_gpu_data.h), one cublasSgemm_v2
// (scope "fc_fp32") and one BF16 cublasGemmEx (scope "fc_bf16") on the program's stream, copy D
// back, print its checksum, fpscope_step(). Output is the same with and without the probe.
//   --steps N        steps (default 4)
//   --device D       the device to use (default 0; MOCK_CUDA_DEVICES must be larger)
//   --capture        a second thread captures another stream in GLOBAL mode for the whole run
//                    and prints whether its capture survived ("capture: ok" / "capture: ...")
//   --capture-gemms  the FP32 GEMM of every step is issued inside a GLOBAL-mode capture of its
//                    own stream (as torch.cuda.graph does); prints "captured: ok" per step when
//                    the capture ends valid. The probe must leave captured GEMMs alone (skip and
//                    count them): nothing of its own may enter the graph.
//   --two-devices    the FP32 GEMM on device 0, the BF16 GEMM on device 1 (each with its own
//                    context, stream and handle; device 0's context is current between them)
//   --watch          fpscope_watch_device of the BF16 GEMM's B (on its device), made and stepped
//                    with device 0's context current: the probe must switch to the watch's own
//                    context for its work and restore the caller's. B changes at the end of each
//                    step (the "update", before fpscope_step), so step t's record is B(t) ->
//                    B(t+1).
//   --counters       print the mock's counters at the end (mock_control.h), after the program freed
//                    its own memory: what is still allocated then is the probe's (mock only:
//                    mock_cuda_counters is looked up at run time, so that the same source links
//                    against the real driver as tests/gpu's gpu_path_prog)
//   --dump-dir DIR   write each step's D as copied back, FP32 bytes, to DIR/fc_fp32.D.<step>.bin
//                    and DIR/fc_bf16.D.<step>.bin: a real cuBLAS sums in its own order, so a
//                    checker measures the D it produced (tests/gpu/gpu_path_check.cpp)
#include <cublas_v2.h>
#include <cuda.h>
#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "mock_control.h"
#include "mock_gpu_data.h"
#include "mock_prog_util.h"

namespace {

using mock_prog::api;

// The program's own synchronous calls (copies, synchronization) are "potentially unsafe" while
// another thread captures in global mode: it makes them in relaxed mode, as a careful program
// does (cuThreadExchangeStreamCaptureMode). The GEMMs and the probe's work in them run in the
// thread's default (global) mode.
struct Relaxed {
  explicit Relaxed(bool on) : on_(on) {
    if (on_) (void)cuThreadExchangeStreamCaptureMode(&mode_);
  }
  ~Relaxed() {
    if (on_) (void)cuThreadExchangeStreamCaptureMode(&mode_);
  }
  bool on_;
  CUstreamCaptureMode mode_ = CU_STREAM_CAPTURE_MODE_RELAXED;
};

// The mock's counters as "mock_cuda <name> <value>" lines (test_mock_gpu.cpp reads them).
void print_counters() {
  const auto counters = api<void (*)(MockCudaCounters*)>("mock_cuda_counters");
  if (counters == nullptr) {
    std::fprintf(stderr, "mock_gpu_prog: --counters needs the mock driver (tests/mock_cuda)\n");
    std::exit(64);
  }
  MockCudaCounters c;
  counters(&c);
  for (int d = 0; d < 2; ++d)
    std::printf("mock_cuda contexts_device%d %llu\n", d, c.contexts_created[d]);
  std::printf("mock_cuda unsafe_calls %llu\n", c.unsafe_calls);
  std::printf("mock_cuda invalidated_captures %llu\n", c.invalidated_captures);
  std::printf("mock_cuda pageable_async_copies %llu\n", c.pageable_async_copies);
  std::printf("mock_cuda live_device_allocations %llu\n", c.live_device_allocations);
  std::printf("mock_cuda live_host_allocations %llu\n", c.live_host_allocations);
  std::printf("mock_cuda allocation_calls %llu\n", c.allocation_calls);
  std::printf("mock_cuda kernels_run %llu\n", c.kernels_run);
  std::printf("mock_cuda live_modules %llu\n", c.live_modules);
  std::printf("mock_cuda captured_operations %llu\n", c.captured_operations);
}

// D's bytes as copied back, to DIR/NAME.STEP.bin (--dump-dir).
void dump(const std::string& dir, const char* name, int step, const std::vector<float>& d) {
  if (dir.empty()) return;
  const std::string path = dir + "/" + name + "." + std::to_string(step) + ".bin";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(d.data(), sizeof(float), d.size(), f) != d.size() ||
      std::fclose(f) != 0) {
    std::fprintf(stderr, "mock_gpu_prog: cannot write %s\n", path.c_str());
    std::exit(4);
  }
}

double checksum(const std::vector<float>& d) {
  double s = 0.0;
  for (size_t i = 0; i < d.size(); ++i)
    s += static_cast<double>(d[i]) * static_cast<double>(i % 7 + 1);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 4, device = 0;
  bool capture = false, watch = false, counters = false, two = false, capture_gemms = false;
  std::string dump_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc)
      steps = std::atoi(argv[++i]);
    else if (a == "--device" && i + 1 < argc)
      device = std::atoi(argv[++i]);
    else if (a == "--capture")
      capture = true;
    else if (a == "--capture-gemms")
      capture_gemms = true;
    else if (a == "--watch")
      watch = true;
    else if (a == "--counters")
      counters = true;
    else if (a == "--two-devices")
      two = true;
    else if (a == "--dump-dir" && i + 1 < argc)
      dump_dir = argv[++i];
    else {
      std::fprintf(stderr, "mock_gpu_prog: unknown argument %s\n", a.c_str());
      return 64;
    }
  }
  auto step = api<void (*)()>("fpscope_step");
  auto push = api<void (*)(const char*)>("fpscope_scope_push");
  auto pop = api<void (*)()>("fpscope_scope_pop");
  auto watch_device =
      api<int (*)(const char*, const void*, uint64_t, int, int, uint64_t)>("fpscope_watch_device");
  using namespace mock_gpu;

  // One context, stream, cuBLAS handle and set of buffers per device used.
  struct Dev {
    int ordinal = 0;
    CUcontext ctx = nullptr;
    CUstream s = nullptr;
    cublasHandle_t h = nullptr;
    CUdeviceptr a = 0, b = 0, d = 0;
  };
  CHECK_CU(cuInit(0));
  std::vector<Dev> devs(two ? 2 : 1);
  for (size_t k = 0; k < devs.size(); ++k) {
    Dev& v = devs[k];
    v.ordinal = two ? static_cast<int>(k) : device;
    CUdevice dev = 0;
    CHECK_CU(cuDeviceGet(&dev, v.ordinal));
    CHECK_CU(cuDevicePrimaryCtxRetain(&v.ctx, dev));
    CHECK_CU(cuCtxSetCurrent(v.ctx));
    CHECK_CU(cuStreamCreate(&v.s, CU_STREAM_NON_BLOCKING));
    CHECK_BLAS(cublasCreate(&v.h));
    CHECK_BLAS(cublasSetStream(v.h, v.s));
  }
  // GEMM 0 (FP32) on devs[0], GEMM 1 (BF16) on the last device.
  Dev& d32 = devs.front();
  Dev& d16 = devs.back();
  CHECK_CU(cuCtxSetCurrent(d32.ctx));
  CHECK_CU(cuMemAlloc(&d32.a, sizeof(float) * kM * kK));
  CHECK_CU(cuMemAlloc(&d32.b, sizeof(float) * kK * kN));
  CHECK_CU(cuMemAlloc(&d32.d, sizeof(float) * kM * kN));
  CHECK_CU(cuCtxSetCurrent(d16.ctx));
  CUdeviceptr ab = 0, bb = 0, db = 0;
  CHECK_CU(cuMemAlloc(&ab, sizeof(uint16_t) * kM * kK));
  CHECK_CU(cuMemAlloc(&bb, sizeof(uint16_t) * kK * kN));
  CHECK_CU(cuMemAlloc(&db, sizeof(float) * kM * kN));
  CHECK_CU(cuCtxSetCurrent(d32.ctx));
  std::vector<float> ha(kM * kK), hb(kK * kN), hd(kM * kN);
  std::vector<uint16_t> hab(kM * kK), hbb(kK * kN);
  const float one = 1.0f, zero = 0.0f;

  // The capturing thread: begins a global-mode capture and holds it until the GEMMs are done.
  std::atomic<int> phase{0};
  std::thread capturer;
  CUresult capture_end = CUDA_SUCCESS;
  if (capture) {
    capturer = std::thread([&] {
      CHECK_CU(cuCtxSetCurrent(d32.ctx));
      CUstream cs = nullptr;
      CHECK_CU(cuStreamCreate(&cs, CU_STREAM_NON_BLOCKING));
      CHECK_CU(cuStreamBeginCapture(cs, CU_STREAM_CAPTURE_MODE_GLOBAL));
      phase = 1;
      while (phase.load() != 2) std::this_thread::yield();
      CUgraph g = nullptr;
      capture_end = cuStreamEndCapture(cs, &g);
      if (g != nullptr) (void)cuGraphDestroy(g);
      (void)cuStreamDestroy(cs);
    });
    while (phase.load() != 1) std::this_thread::yield();
  }

  // Uploads step t's operands (synchronous copies, each in its device's context).
  auto upload = [&](uint32_t t) {
    const Relaxed r(capture);
    for (uint32_t i = 0; i < ha.size(); ++i) ha[i] = value(0, i, t), hab[i] = bf16_value(0, i, t);
    for (uint32_t i = 0; i < hb.size(); ++i) hb[i] = value(1, i, t), hbb[i] = bf16_value(1, i, t);
    CHECK_CU(cuMemcpyHtoD(d32.a, ha.data(), ha.size() * sizeof(float)));
    CHECK_CU(cuMemcpyHtoD(d32.b, hb.data(), hb.size() * sizeof(float)));
    CHECK_CU(cuCtxSetCurrent(d16.ctx));
    CHECK_CU(cuMemcpyHtoD(ab, hab.data(), hab.size() * sizeof(uint16_t)));
    CHECK_CU(cuMemcpyHtoD(bb, hbb.data(), hbb.size() * sizeof(uint16_t)));
    CHECK_CU(cuCtxSetCurrent(d32.ctx));
  };
  upload(0);
  if (watch && watch_device != nullptr)  // with devs[0]'s context current
    std::printf("watch %d\n",
                watch_device("fc_bf16.weight", reinterpret_cast<const void*>(bb),
                             static_cast<uint64_t>(kK) * kN, 1, d16.ordinal,
                             static_cast<uint64_t>(reinterpret_cast<uintptr_t>(d16.s))));
  for (int t = 0; t < steps; ++t) {
    if (capture_gemms) CHECK_CU(cuStreamBeginCapture(d32.s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    if (push != nullptr) push("fc_fp32");
    CHECK_BLAS(cublasSgemm(
        d32.h, CUBLAS_OP_N, CUBLAS_OP_N, kM, kN, kK, &one, reinterpret_cast<const float*>(d32.a),
        kM, reinterpret_cast<const float*>(d32.b), kK, &zero, reinterpret_cast<float*>(d32.d), kM));
    if (pop != nullptr) pop();
    if (capture_gemms) {
      CUgraph g = nullptr;
      const CUresult e = cuStreamEndCapture(d32.s, &g);
      std::printf("captured: %s\n", e == CUDA_SUCCESS ? "ok" : "invalidated");
      if (g != nullptr) CHECK_CU(cuGraphDestroy(g));
    }
    CHECK_CU(cuCtxSetCurrent(d16.ctx));
    if (push != nullptr) push("fc_bf16");
    CHECK_BLAS(cublasGemmEx(
        d16.h, CUBLAS_OP_N, CUBLAS_OP_N, kM, kN, kK, &one, reinterpret_cast<const void*>(ab),
        CUDA_R_16BF, kM, reinterpret_cast<const void*>(bb), CUDA_R_16BF, kK, &zero,
        reinterpret_cast<void*>(db), CUDA_R_32F, kM, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (pop != nullptr) pop();
    {
      const Relaxed r(capture);
      CHECK_CU(cuStreamSynchronize(d16.s));
      CHECK_CU(cuMemcpyDtoH(hd.data(), db, hd.size() * sizeof(float)));
      const double bf16 = checksum(hd);
      dump(dump_dir, "fc_bf16.D", t, hd);
      CHECK_CU(cuCtxSetCurrent(d32.ctx));
      CHECK_CU(cuStreamSynchronize(d32.s));
      CHECK_CU(cuMemcpyDtoH(hd.data(), d32.d, hd.size() * sizeof(float)));
      dump(dump_dir, "fc_fp32.D", t, hd);
      std::printf("step %d fp32 %.17g bf16 %.17g\n", t, checksum(hd), bf16);
    }
    upload(static_cast<uint32_t>(t + 1));  // the "optimizer update" of the weights
    if (step != nullptr) step();           // with devs[0]'s context current
  }
  if (capture) {
    phase = 2;
    capturer.join();
    std::printf("capture: %s\n", capture_end == CUDA_SUCCESS ? "ok" : "invalidated");
  }
  CHECK_CU(cuCtxSetCurrent(d16.ctx));
  for (CUdeviceptr p : {ab, bb, db}) CHECK_CU(cuMemFree(p));
  CHECK_CU(cuCtxSetCurrent(d32.ctx));
  for (CUdeviceptr p : {d32.a, d32.b, d32.d}) CHECK_CU(cuMemFree(p));
  for (Dev& v : devs) {
    CHECK_CU(cuCtxSetCurrent(v.ctx));
    CHECK_BLAS(cublasDestroy(v.h));
    CHECK_CU(cuStreamDestroy(v.s));
  }
  if (counters) print_counters();
  return 0;
}
