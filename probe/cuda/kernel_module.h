// The driver-API pieces of the CUDA backend (cuda_backend.cpp) that are not about slots: the
// statistics kernels loaded into one context (DeviceKernels, load_kernels), the KernelQueue the
// kernels' launchers enqueue through (DriverQueue), and two scope guards every call into the
// driver on the probe's behalf uses (ScopedContext, RelaxedCapture).
#pragma once

#include <string>

#include "driver_api.h"
#include "fpscope/stats_cuda.h"
#include "fpscope/stats_kernel_abi.h"

namespace fpscope::cuda {

// Makes `target` the calling thread's current context for a scope and restores the caller's
// (which may be none: cuCtxSetCurrent(NULL) unbinds, it creates nothing), only when they differ.
// With the driver API a "device" the probe works on is the context the program used it through
// (ensure_device records it). ok(): the target is current.
class ScopedContext {
 public:
  ScopedContext(const DriverApi& d, CUcontext target) : d_(d) {
    if (d.cuCtxGetCurrent(&prev_) != CUDA_SUCCESS) prev_ = nullptr;
    if (prev_ == target) {
      ok_ = true;
      return;
    }
    error_ = d.cuCtxSetCurrent(target);
    ok_ = switched_ = error_ == CUDA_SUCCESS;
  }
  ~ScopedContext() {
    if (switched_) (void)d_.cuCtxSetCurrent(prev_);
  }
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;
  bool ok() const { return ok_; }
  CUresult error() const { return error_; }

 private:
  const DriverApi& d_;
  CUcontext prev_ = nullptr;
  bool ok_ = false, switched_ = false;
  CUresult error_ = CUDA_SUCCESS;
};

// Relaxed stream-capture interaction for the calling thread for a scope (push-pop, as the CUDA
// driver API documentation of cuThreadExchangeStreamCaptureMode recommends). In the default global
// mode, an allocation or an event query made while ANY thread captures a stream in global mode
// (torch.cuda.graph does) is a "potentially unsafe API call" that invalidates that capture; a
// relaxed thread is not prohibited from them. Every probe call that allocates or queries runs
// under it: the probe's own work never touches a capturing stream (enqueues skip those).
class RelaxedCapture {
 public:
  explicit RelaxedCapture(const DriverApi& d) : d_(d) {
    exchanged_ = d.cuThreadExchangeStreamCaptureMode(&mode_) == CUDA_SUCCESS;
  }
  ~RelaxedCapture() {
    if (exchanged_) (void)d_.cuThreadExchangeStreamCaptureMode(&mode_);
  }
  RelaxedCapture(const RelaxedCapture&) = delete;
  RelaxedCapture& operator=(const RelaxedCapture&) = delete;

 private:
  const DriverApi& d_;
  CUstreamCaptureMode mode_ = CU_STREAM_CAPTURE_MODE_RELAXED;
  bool exchanged_ = false;
};

inline CUdeviceptr dptr(const void* p) {
  return reinterpret_cast<CUdeviceptr>(p);
}

// The statistics kernels loaded into one context: the module and each entry's function and
// resident grid (stats_kernel_abi.h).
struct DeviceKernels {
  CUmodule module = nullptr;
  CUfunction fn[kNumStatsKernels] = {};
  unsigned resident[kNumStatsKernels] = {};
};

// Loads the kernel images into the CURRENT context: the fatbin (cubins of this build's toolkit),
// else the ISA-8.0 PTX for the driver to JIT (a driver older than the toolkit refuses the newer
// cubins; stats_kernel_images.h). *which says which one loaded. On failure nothing stays loaded.
CUresult load_kernels(const DriverApi& d, CUdevice dev, DeviceKernels* k, std::string* which);
// Unloads a loaded module (with its context current) and clears *k.
void unload_kernels(const DriverApi& d, DeviceKernels* k);

// One stream of one context, as the kernels' launchers use it (stats_cuda.h).
class DriverQueue final : public KernelQueue {
 public:
  DriverQueue(const DriverApi& d, const DeviceKernels& k, CUstream s) : d_(d), k_(k), s_(s) {}
  CUresult memset_zero(void* dst, size_t bytes) override {
    return d_.cuMemsetD8Async(dptr(dst), 0, bytes, s_);
  }
  CUresult copy_device(void* dst, const void* src, size_t bytes) override {
    return d_.cuMemcpyDtoDAsync(dptr(dst), dptr(src), bytes, s_);
  }
  CUresult launch(StatsKernel k, unsigned grid, unsigned block, const void* args) override {
    void* params[] = {const_cast<void*>(args)};
    return d_.cuLaunchKernel(k_.fn[static_cast<int>(k)], grid, 1, 1, block, 1, 1, 0, s_, params,
                             nullptr);
  }
  unsigned resident_blocks(StatsKernel k) override { return k_.resident[static_cast<int>(k)]; }

 private:
  const DriverApi& d_;
  const DeviceKernels& k_;
  CUstream s_;
};

}  // namespace fpscope::cuda
