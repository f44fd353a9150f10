#include "cuda_backend.h"

#include <cuda_runtime_api.h>

#include <mutex>
#include <vector>

#include "device_runtime.h"

// FPSCOPE_HAVE_STATS_KERNELS: set by CMake when target fpscope_kernels_cuda exists.
#if FPSCOPE_HAVE_STATS_KERNELS
#include "fpscope/stats_cuda.h"
#endif

namespace fpscope::cuda {

namespace {

std::string cuda_error(const char* what, cudaError_t e) {
  return std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
}

// Restores the calling thread's current device (ensure_device may switch to create resources).
struct DeviceRestore {
  int prev = -1;
  DeviceRestore() { (void)cudaGetDevice(&prev); }
  ~DeviceRestore() {
    if (prev >= 0) (void)cudaSetDevice(prev);
  }
};

struct DeviceSlots {
  bool ready = false;
  TensorStats* d_stats = nullptr;  // device
  TensorStats* h_stats = nullptr;  // pinned
  float* h_scalars = nullptr;      // pinned, kScalarsPerSlot per slot
  std::vector<cudaEvent_t> events;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int slots) : slots_(slots) {}
  ~CudaBackend() override = default;  // resources live until exit (drain may still poll them)

  int slots_per_device() const override { return slots_; }

  bool ensure_device(int device, std::string* error) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (device < 0 || static_cast<size_t>(device) >= devs_.size()) {
      *error = "device " + std::to_string(device) + " is beyond the probe's device table";
      return false;
    }
    DeviceSlots& d = devs_[static_cast<size_t>(device)];
    if (d.ready) return true;
    DeviceRestore restore;
    cudaError_t e = cudaSetDevice(device);
    const auto n = static_cast<size_t>(slots_);
    if (e == cudaSuccess)
      e = cudaMalloc(reinterpret_cast<void**>(&d.d_stats), n * sizeof(TensorStats));
    if (e == cudaSuccess)
      e = cudaHostAlloc(reinterpret_cast<void**>(&d.h_stats), n * sizeof(TensorStats),
                        cudaHostAllocPortable);
    if (e == cudaSuccess)
      e = cudaHostAlloc(reinterpret_cast<void**>(&d.h_scalars), n * kScalarsPerSlot * sizeof(float),
                        cudaHostAllocPortable);
    d.events.assign(n, nullptr);
    for (size_t i = 0; e == cudaSuccess && i < n; ++i)
      e = cudaEventCreateWithFlags(&d.events[i], cudaEventDisableTiming);
    if (e != cudaSuccess) {
      *error = cuda_error("creating result slots on the device", e);
      (void)cudaGetLastError();
      return false;
    }
    d.ready = true;
    register_exit_drain();  // the runtime may have registered exit work while creating these
    return true;
  }

  bool stream_capturing(void* stream) override {
    cudaStreamCaptureStatus s = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(static_cast<cudaStream_t>(stream), &s) != cudaSuccess) {
      (void)cudaGetLastError();
      return true;  // cannot tell: do not risk invalidating a capture
    }
    return s != cudaStreamCaptureStatusNone;
  }

  bool enqueue_stats(int slot, const StatsJob& job, std::string* error) override {
#if !FPSCOPE_HAVE_STATS_KERNELS
    (void)slot;
    (void)job;
    *error = "built without the CUDA stats kernels";
    return false;
#else
    DeviceSlots& d = devs_[static_cast<size_t>(job.device)];
    auto stream = static_cast<cudaStream_t>(job.stream);
    TensorStats* dst = d.d_stats + slot;
    // The launchers reset the slot themselves. One matrix, or a batch stored as one contiguous
    // block (stride == ld * cols: one matrix of batch * cols columns), or the same matrix every
    // time (stride 0: measured once); any other stride goes through the batched launcher, which
    // accumulates every matrix into the one slot.
    cudaError_t e = cudaSuccess;
    const bool one_block = job.batch <= 1 || job.batch_stride == 0 ||
                           job.batch_stride == static_cast<int64_t>(job.ld * job.cols);
    if (one_block) {
      const uint64_t cols =
          job.batch <= 1 || job.batch_stride == 0 ? job.cols : job.cols * job.batch;
      e = launch_tensor_stats(job.data, job.dtype, job.rows, cols, job.ld, job.scales, dst, stream);
    } else if (job.batch_stride > 0) {
      e = launch_tensor_stats_batched(job.data, job.dtype, job.rows, job.cols, job.ld, job.batch,
                                      static_cast<uint64_t>(job.batch_stride), job.scales, dst,
                                      stream);
    } else {
      *error = "negative batch stride";
      return false;
    }
    if (e == cudaSuccess)
      e = cudaMemcpyAsync(d.h_stats + slot, dst, sizeof(TensorStats), cudaMemcpyDeviceToHost,
                          stream);
    if (e == cudaSuccess) e = cudaEventRecord(d.events[static_cast<size_t>(slot)], stream);
    if (e != cudaSuccess) {
      *error = cuda_error("enqueueing tensor statistics", e);
      (void)cudaGetLastError();
      return false;
    }
    return true;
#endif
  }

  bool enqueue_scalar(int slot, const ScalarCopy& c, std::string* error) override {
    DeviceSlots& d = devs_[static_cast<size_t>(c.device)];
    float* dst = d.h_scalars + static_cast<size_t>(slot) * kScalarsPerSlot + c.index;
    const cudaError_t e = cudaMemcpyAsync(dst, c.src, sizeof(float), cudaMemcpyDeviceToHost,
                                          static_cast<cudaStream_t>(c.stream));
    if (e != cudaSuccess) {
      *error = cuda_error("enqueueing a scalar copy", e);
      (void)cudaGetLastError();
      return false;
    }
    return true;
  }

  bool enqueue_event(int device, int slot, void* stream, std::string* error) override {
    DeviceSlots& d = devs_[static_cast<size_t>(device)];
    const cudaError_t e =
        cudaEventRecord(d.events[static_cast<size_t>(slot)], static_cast<cudaStream_t>(stream));
    if (e != cudaSuccess) {
      *error = cuda_error("recording a slot event", e);
      (void)cudaGetLastError();
      return false;
    }
    return true;
  }

  Poll poll(int device, int slot) override {
    const cudaError_t e =
        cudaEventQuery(devs_[static_cast<size_t>(device)].events[static_cast<size_t>(slot)]);
    if (e == cudaSuccess) return Poll::Ready;
    if (e == cudaErrorNotReady) return Poll::Pending;
    (void)cudaGetLastError();
    return Poll::Failed;
  }

  const TensorStats& stats(int device, int slot) const override {
    return devs_[static_cast<size_t>(device)].h_stats[slot];
  }
  const float* scalars(int device, int slot) const override {
    return devs_[static_cast<size_t>(device)].h_scalars +
           static_cast<size_t>(slot) * kScalarsPerSlot;
  }

 private:
  int slots_;
  std::mutex mu_;
  // Fixed size: entries never move while the drain thread reads them.
  std::vector<DeviceSlots> devs_ = std::vector<DeviceSlots>(64);
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int slots, std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    *why = e != cudaSuccess ? cuda_error("no usable CUDA device", e) : "no CUDA device";
    (void)cudaGetLastError();
    return nullptr;
  }
  return std::make_unique<CudaBackend>(slots);
}

bool stats_kernels_built() {
  return FPSCOPE_HAVE_STATS_KERNELS != 0;
}

}  // namespace fpscope::cuda
