#include "cuda_backend.h"

#include <cuda_runtime_api.h>

#include <atomic>
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

// One block of result slots. A device's ring is one chunk at first (FPSCOPE_CUDA_SLOTS slots) and
// grows by whole chunks (add_slots: each as large as the ring so far, i.e. doubling). Chunks are
// never freed or moved, so a slot's storage stays where it was while the drain reads it.
struct SlotChunk {
  int first = 0;  // the chunk's first slot number
  int count = 0;
  TensorStats* d_stats = nullptr;  // device
  TensorStats* h_stats = nullptr;  // pinned
  float* h_scalars = nullptr;      // pinned, kScalarsPerSlot per slot
  UpdateLoss* d_update = nullptr;  // device, a watch's update loss per slot
  UpdateLoss* h_update = nullptr;  // pinned
  std::vector<cudaEvent_t> events;
};

inline constexpr int kMaxChunks = 16;  // doubling from 1 slot reaches 2^15 > kMaxGrownCudaSlots

struct DeviceSlots {
  bool ready = false;
  SlotChunk chunks[kMaxChunks];
  // Chunks in use. Written (release) after the chunk is complete, under the backend's mutex; a
  // slot number only reaches another thread through the pipeline's lock after that.
  std::atomic<int> n_chunks{0};
  int total = 0;  // slots over all chunks (under the backend's mutex)

  // The chunk holding `slot` and the slot's index in it.
  const SlotChunk& at(int slot, size_t* i) const {
    const int n = n_chunks.load(std::memory_order_acquire);
    int c = 0;
    while (c + 1 < n && slot >= chunks[c + 1].first) ++c;
    *i = static_cast<size_t>(slot - chunks[c].first);
    return chunks[c];
  }
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
    const cudaError_t e = on.ok() ? alloc_chunk(&d, slots_) : on.error();
    if (e != cudaSuccess) {
      *error = cuda_error("creating result slots on the device", e);
      (void)cudaGetLastError();
      return false;  // alloc_chunk released what it made: the pipeline never retries
    }
    d.ready = true;
    register_exit_drain();  // the runtime may have registered exit work while creating these
    return true;
  }

  // Called by the pipeline's drain thread only (the probe's own thread: it may make the device
  // current, and it never captures). Relaxed capture interaction, as for its event queries: in
  // the default global mode an allocation while another thread captures in global mode is a
  // "potentially unsafe API call" (CUDA runtime API, cudaThreadExchangeStreamCaptureMode).
  int add_slots(int device, int count, std::string* error) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (device < 0 || static_cast<size_t>(device) >= devs_.size() || count <= 0) {
      *error = "no such device or slot count";
      return -1;
    }
    DeviceSlots& d = devs_[static_cast<size_t>(device)];
    if (!d.ready || d.n_chunks.load(std::memory_order_relaxed) >= kMaxChunks) {
      *error = "the device's result ring cannot grow further";
      return -1;
    }
    if (!on_drain_thread() || cudaSetDevice(device) != cudaSuccess) {
      (void)cudaGetLastError();
      *error = "result slots can only be added on the drain thread";
      return -1;
    }
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    const bool exchanged = cudaThreadExchangeStreamCaptureMode(&mode) == cudaSuccess;
    const int first = d.total;
    const cudaError_t e = alloc_chunk(&d, count);
    if (exchanged) (void)cudaThreadExchangeStreamCaptureMode(&mode);
    if (e != cudaSuccess) {
      *error = cuda_error("adding result slots on the device", e);
      (void)cudaGetLastError();
      return -1;
    }
    return first;
  }

  // Allocates the next chunk of `count` slots on the current device and publishes it; on failure
  // releases what it made and leaves the ring as it was. Caller holds mu_.
  static cudaError_t alloc_chunk(DeviceSlots* d, int count) {
    const int k = d->n_chunks.load(std::memory_order_relaxed);
    SlotChunk& c = d->chunks[k];
    const auto n = static_cast<size_t>(count);
    cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&c.d_stats), n * sizeof(TensorStats));
    if (e == cudaSuccess)
      e = cudaHostAlloc(reinterpret_cast<void**>(&c.h_stats), n * sizeof(TensorStats),
                        cudaHostAllocPortable);
    if (e == cudaSuccess)
      e = cudaHostAlloc(reinterpret_cast<void**>(&c.h_scalars), n * kScalarsPerSlot * sizeof(float),
                        cudaHostAllocPortable);
    if (e == cudaSuccess)
      e = cudaMalloc(reinterpret_cast<void**>(&c.d_update), n * sizeof(UpdateLoss));
    if (e == cudaSuccess)
      e = cudaHostAlloc(reinterpret_cast<void**>(&c.h_update), n * sizeof(UpdateLoss),
                        cudaHostAllocPortable);
    c.events.assign(n, nullptr);
    for (size_t i = 0; e == cudaSuccess && i < n; ++i)
      e = cudaEventCreateWithFlags(&c.events[i], cudaEventDisableTiming);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      release_partial(&c);  // nothing may leak: a failed device is never retried
      return e;
    }
    c.first = d->total;
    c.count = count;
    d->total += count;
    d->n_chunks.store(k + 1, std::memory_order_release);
    return cudaSuccess;
  }

  // Frees what a failed alloc_chunk created (on the device current there), nulls the pointers.
  static void release_partial(SlotChunk* c) {
    for (cudaEvent_t& ev : c->events)
      if (ev != nullptr) (void)cudaEventDestroy(ev);
    c->events.clear();
    if (c->d_stats != nullptr) (void)cudaFree(c->d_stats);
    if (c->d_update != nullptr) (void)cudaFree(c->d_update);
    if (c->h_stats != nullptr) (void)cudaFreeHost(c->h_stats);
    if (c->h_scalars != nullptr) (void)cudaFreeHost(c->h_scalars);
    if (c->h_update != nullptr) (void)cudaFreeHost(c->h_update);
    c->d_stats = nullptr;
    c->d_update = nullptr;
    c->h_stats = nullptr;
    c->h_scalars = nullptr;
    c->h_update = nullptr;
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
    size_t i = 0;
    const SlotChunk& d = devs_[static_cast<size_t>(job.device)].at(slot, &i);
    auto stream = static_cast<cudaStream_t>(job.stream);
    TensorStats* dst = d.d_stats + i;
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
      e = launch_tensor_stats(job.data, job.dtype, job.rows, cols, job.ld, job.scales, dst, stream,
                              job.value_scale);
    } else if (job.batch_stride > 0) {
      e = launch_tensor_stats_batched(job.data, job.dtype, job.rows, job.cols, job.ld, job.batch,
                                      static_cast<uint64_t>(job.batch_stride), job.scales, dst,
                                      stream, job.value_scale);
    } else {
      *error = "negative batch stride";
      return false;
    }
    // Block-scaled formats: after the statistics, into the same slot (NVFP4's tensor scale is
    // the slot's amax by then). Each matrix of a batch has its own blocks (block_pass_of).
    if (e == cudaSuccess && job.block_formats != 0) {
      const BlockPass bp = block_pass_of(job);
      e = launch_block_stats(job.data, job.dtype, job.rows, job.cols, job.ld, bp.batch,
                             bp.batch_stride, job.block_formats, job.block_axis, dst, stream);
    }
    // The whole TensorStats, its block section included.
    if (e == cudaSuccess)
      e = cudaMemcpyAsync(d.h_stats + i, dst, sizeof(TensorStats), cudaMemcpyDeviceToHost, stream);
    if (e == cudaSuccess) e = cudaEventRecord(d.events[i], stream);
    if (e != cudaSuccess) {
      *error = cuda_error("enqueueing tensor statistics", e);
      (void)cudaGetLastError();
      return false;
    }
    return true;
#endif
  }

  bool enqueue_scalar(int slot, const ScalarCopy& c, std::string* error) override {
    size_t i = 0;
    const SlotChunk& d = devs_[static_cast<size_t>(c.device)].at(slot, &i);
    float* dst = d.h_scalars + i * kScalarsPerSlot + c.index;
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
    size_t i = 0;
    const SlotChunk& d = devs_[static_cast<size_t>(device)].at(slot, &i);
    const cudaError_t e = cudaEventRecord(d.events[i], static_cast<cudaStream_t>(stream));
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
    size_t i = 0;
    const cudaError_t e = cudaEventQuery(devs_[static_cast<size_t>(device)].at(slot, &i).events[i]);
    if (exchanged) (void)cudaThreadExchangeStreamCaptureMode(&mode);
    if (e == cudaSuccess) return Poll::Ready;
    if (e == cudaErrorNotReady) return Poll::Pending;
    (void)cudaGetLastError();
    return Poll::Failed;
  }

  const TensorStats& stats(int device, int slot) const override {
    size_t i = 0;
    return devs_[static_cast<size_t>(device)].at(slot, &i).h_stats[i];
  }
  const float* scalars(int device, int slot) const override {
    size_t i = 0;
    return devs_[static_cast<size_t>(device)].at(slot, &i).h_scalars + i * kScalarsPerSlot;
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
      size_t i = 0;
      const SlotChunk& d = devs_[static_cast<size_t>(job.device)].at(slot, &i);
      e = launch_update_loss(w.snapshot, cur, job.count, d.d_update + i, w.stream);
      if (e == cudaSuccess)
        e = cudaMemcpyAsync(d.h_update + i, d.d_update + i, sizeof(UpdateLoss),
                            cudaMemcpyDeviceToHost, w.stream);
      if (e == cudaSuccess) e = cudaEventRecord(d.events[i], w.stream);
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
    size_t i = 0;
    return devs_[static_cast<size_t>(device)].at(slot, &i).h_update[i];
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
