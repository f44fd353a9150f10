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

// Makes `target` the calling thread's current device for a scope and restores the caller's, but
// only when they differ: cudaSetDevice initializes the primary context of the device it is given
// (CUDA runtime API, cudaSetDevice), so an unconditional "restore" on a thread that never chose a
// device (cudaGetDevice then answers 0) would create a context on device 0, which the program may
// not use. ok(): the target is current.
class ScopedDevice {
 public:
  explicit ScopedDevice(int target) {
    if (cudaGetDevice(&prev_) != cudaSuccess) {
      (void)cudaGetLastError();
      prev_ = -1;
    }
    if (prev_ == target) {
      ok_ = true;
      return;
    }
    const cudaError_t e = cudaSetDevice(target);
    ok_ = switched_ = e == cudaSuccess;
    if (!ok_) {
      error_ = e;
      (void)cudaGetLastError();
    }
  }
  ~ScopedDevice() {
    if (switched_ && prev_ >= 0) (void)cudaSetDevice(prev_);
  }
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;
  bool ok() const { return ok_; }
  cudaError_t error() const { return error_; }

 private:
  int prev_ = -1;
  bool ok_ = false, switched_ = false;
  cudaError_t error_ = cudaSuccess;
};

struct DeviceSlots {
  bool ready = false;
  TensorStats* d_stats = nullptr;  // device
  TensorStats* h_stats = nullptr;  // pinned
  float* h_scalars = nullptr;      // pinned, kScalarsPerSlot per slot
  UpdateLoss* d_update = nullptr;  // device, a watch's update loss per slot
  UpdateLoss* h_update = nullptr;  // pinned
  std::vector<cudaEvent_t> events;
};

// One master-weight watch: stream-ordered allocations (cudaMallocAsync on its own stream), so that
// destroy_watch frees them after the watch's last work without any synchronization (cudaFree
// would synchronize the device).
struct WatchRes {
  bool live = false;
  int device = 0;
  cudaStream_t stream = nullptr;  // the watch's own (non-blocking) stream
  cudaEvent_t after_app = nullptr;
  cudaEvent_t after_watch = nullptr;
  float* snapshot = nullptr;  // FP32
  float* scratch = nullptr;   // FP32 widened BF16/FP16 weights (nullptr for FP32)
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
    const ScopedDevice on(device);
    cudaError_t e = on.ok() ? cudaSuccess : on.error();
    const auto n = static_cast<size_t>(slots_);
    if (e == cudaSuccess)
      e = cudaMalloc(reinterpret_cast<void**>(&d.d_stats), n * sizeof(TensorStats));
    if (e == cudaSuccess)
      e = cudaHostAlloc(reinterpret_cast<void**>(&d.h_stats), n * sizeof(TensorStats),
                        cudaHostAllocPortable);
    if (e == cudaSuccess)
      e = cudaHostAlloc(reinterpret_cast<void**>(&d.h_scalars), n * kScalarsPerSlot * sizeof(float),
                        cudaHostAllocPortable);
    if (e == cudaSuccess)
      e = cudaMalloc(reinterpret_cast<void**>(&d.d_update), n * sizeof(UpdateLoss));
    if (e == cudaSuccess)
      e = cudaHostAlloc(reinterpret_cast<void**>(&d.h_update), n * sizeof(UpdateLoss),
                        cudaHostAllocPortable);
    d.events.assign(n, nullptr);
    for (size_t i = 0; e == cudaSuccess && i < n; ++i)
      e = cudaEventCreateWithFlags(&d.events[i], cudaEventDisableTiming);
    if (e != cudaSuccess) {
      *error = cuda_error("creating result slots on the device", e);
      (void)cudaGetLastError();
      release_partial(&d);  // the pipeline never retries a failed device: nothing may leak
      return false;
    }
    d.ready = true;
    register_exit_drain();  // the runtime may have registered exit work while creating these
    return true;
  }

  // Frees what a failed ensure_device created (on the device current there), nulls the pointers.
  static void release_partial(DeviceSlots* d) {
    for (cudaEvent_t& ev : d->events)
      if (ev != nullptr) (void)cudaEventDestroy(ev);
    d->events.clear();
    if (d->d_stats != nullptr) (void)cudaFree(d->d_stats);
    if (d->d_update != nullptr) (void)cudaFree(d->d_update);
    if (d->h_stats != nullptr) (void)cudaFreeHost(d->h_stats);
    if (d->h_scalars != nullptr) (void)cudaFreeHost(d->h_scalars);
    if (d->h_update != nullptr) (void)cudaFreeHost(d->h_update);
    d->d_stats = nullptr;
    d->d_update = nullptr;
    d->h_stats = nullptr;
    d->h_scalars = nullptr;
    d->h_update = nullptr;
    (void)cudaGetLastError();
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
    // The probe's drain thread has no current device of its own: the runtime would initialize
    // device 0's primary context for it (a context on a device the program may not use). It
    // makes the slot's device current first; the device already has a context (the slot was
    // created in it). Program threads are never switched: cudaEventQuery succeeds for an event of
    // another device than the current one (CUDA C++ Programming Guide, "Stream and Event
    // Behavior").
    thread_local int t_bound = -1;
    if (on_drain_thread() && t_bound != device && cudaSetDevice(device) == cudaSuccess)
      t_bound = device;
    // Relaxed capture interaction for the query: in the default global mode an event query made
    // while any thread captures a stream in global mode (torch.cuda.graph does) is a
    // "potentially unsafe API call" that invalidates that capture; the relaxed mode is not
    // prohibited from them (CUDA runtime API, cudaThreadExchangeStreamCaptureMode). Our events are
    // never recorded inside a capture (enqueues skip capturing streams), so the query itself is
    // legal. Push-pop, as that documentation recommends.
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    const bool exchanged = cudaThreadExchangeStreamCaptureMode(&mode) == cudaSuccess;
    const cudaError_t e =
        cudaEventQuery(devs_[static_cast<size_t>(device)].events[static_cast<size_t>(slot)]);
    if (exchanged) (void)cudaThreadExchangeStreamCaptureMode(&mode);
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

  int create_watch(int device, uint64_t count, Format dtype, std::string* error) override {
    std::lock_guard<std::mutex> lock(mu_);
    int pools = 0;
    const ScopedDevice on(device);
    cudaError_t e = on.ok() ? cudaSuccess : on.error();
    if (e == cudaSuccess)
      e = cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device);
    if (e == cudaSuccess && pools == 0) {
      *error = "device " + std::to_string(device) +
               " has no stream-ordered allocator (cudaDevAttrMemoryPoolsSupported is 0)";
      return -1;
    }
    WatchRes w;
    w.device = device;
    const size_t bytes = static_cast<size_t>(count) * sizeof(float);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&w.stream, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&w.after_app, cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&w.after_watch, cudaEventDisableTiming);
    if (e == cudaSuccess)
      e = cudaMallocAsync(reinterpret_cast<void**>(&w.snapshot), bytes, w.stream);
    if (e == cudaSuccess && dtype != Format::FP32)
      e = cudaMallocAsync(reinterpret_cast<void**>(&w.scratch), bytes, w.stream);
    if (e != cudaSuccess) {
      *error = cuda_error("allocating a watched tensor's snapshot on the device", e);
      (void)cudaGetLastError();
      release(w);
      return -1;
    }
    w.live = true;
    for (size_t i = 0; i < watches_.size(); ++i)
      if (!watches_[i].live) {
        watches_[i] = w;
        return static_cast<int>(i);
      }
    watches_.push_back(w);
    return static_cast<int>(watches_.size() - 1);
  }

  void destroy_watch(int, int watch) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (watch < 0 || static_cast<size_t>(watch) >= watches_.size()) return;
    WatchRes& w = watches_[static_cast<size_t>(watch)];
    if (!w.live) return;
    const ScopedDevice on(w.device);
    release(w);
    w = WatchRes{};
  }

  bool enqueue_watch(int slot, const WatchJob& job, std::string* error) override {
    WatchRes w;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (job.watch < 0 || static_cast<size_t>(job.watch) >= watches_.size() ||
          !watches_[static_cast<size_t>(job.watch)].live) {
        *error = "unknown watch";
        return false;
      }
      w = watches_[static_cast<size_t>(job.watch)];
    }
    auto app = static_cast<cudaStream_t>(job.stream);
    // The watch's device is current while its work is enqueued (issue 16 item 6): its kernels
    // launch on the current device, and a null stream is the current device's legacy stream. A
    // boundary may fire on a thread whose current device is another one.
    const ScopedDevice on(job.device);
    if (!on.ok()) {
      *error = cuda_error("making the watched tensor's device current", on.error());
      return false;
    }
    // Fork: the watch's stream waits for the program's work on its stream so far (the update).
    cudaError_t e = cudaEventRecord(w.after_app, app);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(w.stream, w.after_app, 0);
    const float* cur = static_cast<const float*>(job.data);
    if (e == cudaSuccess && job.dtype != Format::FP32) {
#if FPSCOPE_HAVE_STATS_KERNELS
      e = launch_widen_to_fp32(job.data, job.dtype, job.count, w.scratch, w.stream);
      cur = w.scratch;
#else
      e = cudaErrorNotSupported;
#endif
    }
    if (e == cudaSuccess && job.measure) {
#if FPSCOPE_HAVE_STATS_KERNELS
      DeviceSlots& d = devs_[static_cast<size_t>(job.device)];
      e = launch_update_loss(w.snapshot, cur, job.count, d.d_update + slot, w.stream);
      if (e == cudaSuccess)
        e = cudaMemcpyAsync(d.h_update + slot, d.d_update + slot, sizeof(UpdateLoss),
                            cudaMemcpyDeviceToHost, w.stream);
      if (e == cudaSuccess) e = cudaEventRecord(d.events[static_cast<size_t>(slot)], w.stream);
#else
      e = cudaErrorNotSupported;
#endif
    }
    if (e == cudaSuccess && job.snapshot)
      e = cudaMemcpyAsync(w.snapshot, cur, static_cast<size_t>(job.count) * sizeof(float),
                          cudaMemcpyDeviceToDevice, w.stream);
    // Join: the program's later work (the next update) waits for the reads above.
    if (e == cudaSuccess) e = cudaEventRecord(w.after_watch, w.stream);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(app, w.after_watch, 0);
    if (e != cudaSuccess) {
      *error = cuda_error("enqueueing a watched tensor's update loss", e);
      (void)cudaGetLastError();
      return false;
    }
    return true;
  }

  const UpdateLoss& update_loss(int device, int slot) const override {
    return devs_[static_cast<size_t>(device)].h_update[slot];
  }

 private:
  // Frees what create_watch made (caller holds mu_, on the watch's device).
  static void release(WatchRes& w) {
    if (w.stream != nullptr) {
      if (w.snapshot != nullptr) (void)cudaFreeAsync(w.snapshot, w.stream);
      if (w.scratch != nullptr) (void)cudaFreeAsync(w.scratch, w.stream);
      (void)cudaStreamDestroy(w.stream);  // returns at once; pending work still completes
    }
    if (w.after_app != nullptr) (void)cudaEventDestroy(w.after_app);
    if (w.after_watch != nullptr) (void)cudaEventDestroy(w.after_watch);
    (void)cudaGetLastError();
  }

  int slots_;
  std::mutex mu_;
  std::vector<WatchRes> watches_;  // handles index it; guarded by mu_
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
