#include "cuda_backend.h"

#include <atomic>
#include <mutex>
#include <vector>

#include "../src/log.h"
#include "device_runtime.h"
#include "driver_api.h"
#include "fpscope/stats_cuda.h"
#include "fpscope/stats_kernel_images.h"
#include "kernel_module.h"

namespace fpscope::cuda {

namespace {

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
  std::vector<CUevent> events;
};

inline constexpr int kMaxChunks = 16;  // doubling from 1 slot reaches 2^15 > kMaxGrownCudaSlots

struct DeviceSlots {
  bool ready = false;
  CUcontext ctx = nullptr;  // the context the program used the device through (first submission)
  DeviceKernels kernels;
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

// One master-weight watch: stream-ordered allocations (cuMemAllocAsync on its own stream), so
// that destroy_watch frees them after the watch's last work without any synchronization (cuMemFree
// would synchronize the device).
struct WatchRes {
  bool live = false;
  int device = 0;
  CUstream stream = nullptr;  // the watch's own (non-blocking) stream
  CUevent after_app = nullptr;
  CUevent after_watch = nullptr;
  float* snapshot = nullptr;  // FP32
  float* scratch = nullptr;   // FP32 widened BF16/FP16 weights (nullptr for FP32)
};

template <class T>
CUresult alloc_device(const DriverApi& d, T** p, size_t bytes) {
  CUdeviceptr a = 0;
  const CUresult e = d.cuMemAlloc(&a, bytes);
  *p = e == CUDA_SUCCESS ? reinterpret_cast<T*>(a) : nullptr;
  return e;
}
template <class T>
CUresult alloc_pinned(const DriverApi& d, T** p, size_t bytes) {
  void* a = nullptr;
  const CUresult e = d.cuMemHostAlloc(&a, bytes, CU_MEMHOSTALLOC_PORTABLE);
  *p = e == CUDA_SUCCESS ? static_cast<T*>(a) : nullptr;
  return e;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(const DriverApi& d, int slots) : d_(d), slots_(slots) {}
  ~CudaBackend() override = default;  // resources live until exit (drain may still poll them)

  int slots_per_device() const override { return slots_; }

  // On the program's thread at its first submission for `device`: that thread's current context
  // is the one the program uses the device through (the GEMM's device is the current one,
  // gemm_engine.cpp). The slots and the kernels' module live in it.
  bool ensure_device(int device, std::string* error) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (device < 0 || static_cast<size_t>(device) >= devs_.size()) {
      *error = "device " + std::to_string(device) + " is beyond the probe's device table";
      return false;
    }
    DeviceSlots& d = devs_[static_cast<size_t>(device)];
    if (d.ready) return true;
    CUcontext ctx = nullptr;
    if (!context_of(device, &ctx, error)) return false;
    const ScopedContext on(d_, ctx);
    if (!on.ok()) {
      *error = driver_error("making the device's context current", on.error());
      return false;
    }
    const RelaxedCapture relaxed(d_);
    std::string which;
    CUresult e = load_kernels(d_, static_cast<CUdevice>(device), &d.kernels, &which);
    if (e != CUDA_SUCCESS) {
      *error = driver_error("loading the statistics kernels", e);
      return false;  // the pipeline marks the device failed and never retries
    }
    e = alloc_chunk(&d, slots_);
    if (e != CUDA_SUCCESS) {
      *error = driver_error("creating result slots on the device", e);
      unload_kernels(d_, &d.kernels);  // alloc_chunk released what it made: nothing stays
      return false;
    }
    d.ctx = ctx;
    d.ready = true;
    FPSCOPE_LOG(Info, "cuda: device %d: statistics kernels loaded from the %s", device,
                which.c_str());
    register_exit_drain();  // the program's runtime may have registered exit work meanwhile
    return true;
  }

  // The context the program uses `device` through: the calling thread's current one when it is
  // that device's (a GEMM's thread), else the device's primary context if the program made it
  // active (a watch of a tensor on another device than the current one). Never a new context: a
  // device whose primary context is inactive is one the program has not used.
  bool context_of(int device, CUcontext* ctx, std::string* error) {
    CUcontext cur = nullptr;
    CUdevice cur_dev = -1;
    if (d_.cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur != nullptr &&
        d_.cuCtxGetDevice(&cur_dev) == CUDA_SUCCESS && cur_dev == device) {
      *ctx = cur;
      return true;
    }
    CUdevice dev = 0;
    unsigned flags = 0;
    int active = 0;
    CUresult e = d_.cuDeviceGet(&dev, device);
    if (e == CUDA_SUCCESS) e = d_.cuDevicePrimaryCtxGetState(dev, &flags, &active);
    if (e == CUDA_SUCCESS && active == 0) {
      *error = "device " + std::to_string(device) + " has no active context in this process";
      return false;
    }
    // Retained for the process's lifetime: the slots live in it until exit.
    if (e == CUDA_SUCCESS) e = d_.cuDevicePrimaryCtxRetain(ctx, dev);
    if (e != CUDA_SUCCESS) {
      *error = driver_error("finding the device's context", e);
      return false;
    }
    return true;
  }

  // Called by the pipeline's drain thread only (the probe's own thread: it may make the device's
  // context current, and it never captures).
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
    if (!on_drain_thread()) {
      *error = "result slots can only be added on the drain thread";
      return -1;
    }
    const ScopedContext on(d_, d.ctx);
    if (!on.ok()) {
      *error = driver_error("making the device's context current", on.error());
      return -1;
    }
    const RelaxedCapture relaxed(d_);
    const int first = d.total;
    const CUresult e = alloc_chunk(&d, count);
    if (e != CUDA_SUCCESS) {
      *error = driver_error("adding result slots on the device", e);
      return -1;
    }
    return first;
  }

  // Allocates the next chunk of `count` slots in the current context and publishes it; on failure
  // releases what it made and leaves the ring as it was. Caller holds mu_.
  CUresult alloc_chunk(DeviceSlots* d, int count) {
    const int k = d->n_chunks.load(std::memory_order_relaxed);
    SlotChunk& c = d->chunks[k];
    const auto n = static_cast<size_t>(count);
    CUresult e = alloc_device(d_, &c.d_stats, n * sizeof(TensorStats));
    if (e == CUDA_SUCCESS) e = alloc_pinned(d_, &c.h_stats, n * sizeof(TensorStats));
    if (e == CUDA_SUCCESS) e = alloc_pinned(d_, &c.h_scalars, n * kScalarsPerSlot * sizeof(float));
    if (e == CUDA_SUCCESS) e = alloc_device(d_, &c.d_update, n * sizeof(UpdateLoss));
    if (e == CUDA_SUCCESS) e = alloc_pinned(d_, &c.h_update, n * sizeof(UpdateLoss));
    c.events.assign(n, nullptr);
    for (size_t i = 0; e == CUDA_SUCCESS && i < n; ++i)
      e = d_.cuEventCreate(&c.events[i], CU_EVENT_DISABLE_TIMING);
    if (e != CUDA_SUCCESS) {
      release_partial(&c);  // nothing may leak: a failed device is never retried
      return e;
    }
    c.first = d->total;
    c.count = count;
    d->total += count;
    d->n_chunks.store(k + 1, std::memory_order_release);
    return CUDA_SUCCESS;
  }

  // Frees what a failed alloc_chunk created (in the context current there), nulls the pointers.
  void release_partial(SlotChunk* c) {
    for (CUevent& ev : c->events)
      if (ev != nullptr) (void)d_.cuEventDestroy(ev);
    c->events.clear();
    if (c->d_stats != nullptr) (void)d_.cuMemFree(dptr(c->d_stats));
    if (c->d_update != nullptr) (void)d_.cuMemFree(dptr(c->d_update));
    if (c->h_stats != nullptr) (void)d_.cuMemFreeHost(c->h_stats);
    if (c->h_scalars != nullptr) (void)d_.cuMemFreeHost(c->h_scalars);
    if (c->h_update != nullptr) (void)d_.cuMemFreeHost(c->h_update);
    c->d_stats = nullptr;
    c->d_update = nullptr;
    c->h_stats = nullptr;
    c->h_scalars = nullptr;
    c->h_update = nullptr;
  }

  bool stream_capturing(void* stream) override {
    CUstreamCaptureStatus s = CU_STREAM_CAPTURE_STATUS_NONE;
    if (d_.cuStreamIsCapturing(static_cast<CUstream>(stream), &s) != CUDA_SUCCESS)
      return true;  // cannot tell: do not risk invalidating a capture
    return s != CU_STREAM_CAPTURE_STATUS_NONE;
  }

  // On the program's thread, whose current context is the job's device's (the GEMM's device is
  // the current one): the launches go to that context's module.
  bool enqueue_stats(int slot, const StatsJob& job, std::string* error) override {
    size_t i = 0;
    const DeviceSlots& dev = devs_[static_cast<size_t>(job.device)];
    const SlotChunk& d = dev.at(slot, &i);
    auto stream = static_cast<CUstream>(job.stream);
    DriverQueue q(d_, dev.kernels, stream);
    TensorStats* dst = d.d_stats + i;
    // The launchers reset the slot themselves. One matrix, or a batch stored as one contiguous
    // block (stride == ld * cols: one matrix of batch * cols columns), or the same matrix every
    // time (stride 0: measured once); any other stride goes through the batched launcher, which
    // accumulates every matrix into the one slot.
    CUresult e = CUDA_SUCCESS;
    const bool one_block = job.batch <= 1 || job.batch_stride == 0 ||
                           job.batch_stride == static_cast<int64_t>(job.ld * job.cols);
    if (one_block) {
      const uint64_t cols =
          job.batch <= 1 || job.batch_stride == 0 ? job.cols : job.cols * job.batch;
      e = launch_tensor_stats(q, job.data, job.dtype, job.rows, cols, job.ld, job.scales, dst,
                              job.value_scale);
    } else if (job.batch_stride > 0) {
      e = launch_tensor_stats_batched(q, job.data, job.dtype, job.rows, job.cols, job.ld, job.batch,
                                      static_cast<uint64_t>(job.batch_stride), job.scales, dst,
                                      job.value_scale);
    } else {
      *error = "negative batch stride";
      return false;
    }
    // Block-scaled formats: after the statistics, into the same slot (NVFP4's tensor scale is
    // the slot's amax by then). Each matrix of a batch has its own blocks (block_pass_of).
    if (e == CUDA_SUCCESS && job.block_formats != 0) {
      const BlockPass bp = block_pass_of(job);
      e = launch_block_stats(q, job.data, job.dtype, job.rows, job.cols, job.ld, bp.batch,
                             bp.batch_stride, job.block_formats, job.block_axis, dst);
    }
    // The whole TensorStats, its block section included.
    if (e == CUDA_SUCCESS)
      e = d_.cuMemcpyDtoHAsync(d.h_stats + i, dptr(dst), sizeof(TensorStats), stream);
    if (e == CUDA_SUCCESS) e = d_.cuEventRecord(d.events[i], stream);
    if (e != CUDA_SUCCESS) {
      *error = driver_error("enqueueing tensor statistics", e);
      return false;
    }
    return true;
  }

  bool enqueue_scalar(int slot, const ScalarCopy& c, std::string* error) override {
    size_t i = 0;
    const SlotChunk& d = devs_[static_cast<size_t>(c.device)].at(slot, &i);
    float* dst = d.h_scalars + i * kScalarsPerSlot + c.index;
    const CUresult e =
        d_.cuMemcpyDtoHAsync(dst, dptr(c.src), sizeof(float), static_cast<CUstream>(c.stream));
    if (e != CUDA_SUCCESS) {
      *error = driver_error("enqueueing a scalar copy", e);
      return false;
    }
    return true;
  }

  bool enqueue_event(int device, int slot, void* stream, std::string* error) override {
    size_t i = 0;
    const SlotChunk& d = devs_[static_cast<size_t>(device)].at(slot, &i);
    const CUresult e = d_.cuEventRecord(d.events[i], static_cast<CUstream>(stream));
    if (e != CUDA_SUCCESS) {
      *error = driver_error("recording a slot event", e);
      return false;
    }
    return true;
  }

  Poll poll(int device, int slot) override {
    const DeviceSlots& dev = devs_[static_cast<size_t>(device)];
    // The probe's drain thread has no current context of its own, and an event query needs one.
    // It makes the slot's device's context current (the one the slot was created in), never a new
    // one. Program threads are never switched: an event of another context can be queried from
    // any current context (CUDA C++ Programming Guide, "Stream and Event Behavior").
    thread_local CUcontext t_bound = nullptr;
    if (on_drain_thread() && t_bound != dev.ctx && d_.cuCtxSetCurrent(dev.ctx) == CUDA_SUCCESS)
      t_bound = dev.ctx;
    // Relaxed: an event query is a potentially unsafe call during a global-mode capture of any
    // thread. Our events are never recorded inside a capture (enqueues skip capturing streams),
    // so the query itself is legal.
    const RelaxedCapture relaxed(d_);
    size_t i = 0;
    const CUresult e = d_.cuEventQuery(dev.at(slot, &i).events[i]);
    if (e == CUDA_SUCCESS) return Poll::Ready;
    if (e == CUDA_ERROR_NOT_READY) return Poll::Pending;
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
    if (device < 0 || static_cast<size_t>(device) >= devs_.size() ||
        !devs_[static_cast<size_t>(device)].ready) {
      *error = "device " + std::to_string(device) + " has no statistics resources";
      return -1;
    }
    const DeviceSlots& dev = devs_[static_cast<size_t>(device)];
    const ScopedContext on(d_, dev.ctx);
    CUresult e = on.ok() ? CUDA_SUCCESS : on.error();
    int pools = 0;
    if (e == CUDA_SUCCESS)
      e = d_.cuDeviceGetAttribute(&pools, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, device);
    if (e == CUDA_SUCCESS && pools == 0) {
      *error = "device " + std::to_string(device) +
               " has no stream-ordered allocator (CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED is 0)";
      return -1;
    }
    const RelaxedCapture relaxed(d_);
    WatchRes w;
    w.device = device;
    const size_t bytes = static_cast<size_t>(count) * sizeof(float);
    if (e == CUDA_SUCCESS) e = d_.cuStreamCreate(&w.stream, CU_STREAM_NON_BLOCKING);
    if (e == CUDA_SUCCESS) e = d_.cuEventCreate(&w.after_app, CU_EVENT_DISABLE_TIMING);
    if (e == CUDA_SUCCESS) e = d_.cuEventCreate(&w.after_watch, CU_EVENT_DISABLE_TIMING);
    CUdeviceptr a = 0;
    if (e == CUDA_SUCCESS && (e = d_.cuMemAllocAsync(&a, bytes, w.stream)) == CUDA_SUCCESS)
      w.snapshot = reinterpret_cast<float*>(a);
    if (e == CUDA_SUCCESS && dtype != Format::FP32 &&
        (e = d_.cuMemAllocAsync(&a, bytes, w.stream)) == CUDA_SUCCESS)
      w.scratch = reinterpret_cast<float*>(a);
    if (e != CUDA_SUCCESS) {
      *error = driver_error("allocating a watched tensor's snapshot on the device", e);
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
    const ScopedContext on(d_, devs_[static_cast<size_t>(w.device)].ctx);
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
    const DeviceSlots& dev = devs_[static_cast<size_t>(job.device)];
    auto app = static_cast<CUstream>(job.stream);
    // The watch's device's context is current while its work is enqueued (issue 16 item 6): its
    // kernels launch in the current context, and a null stream is the current context's legacy
    // stream. A boundary may fire on a thread whose current context is another device's.
    const ScopedContext on(d_, dev.ctx);
    if (!on.ok()) {
      *error = driver_error("making the watched tensor's context current", on.error());
      return false;
    }
    DriverQueue q(d_, dev.kernels, w.stream);
    // Fork: the watch's stream waits for the program's work on its stream so far (the update).
    CUresult e = d_.cuEventRecord(w.after_app, app);
    if (e == CUDA_SUCCESS) e = d_.cuStreamWaitEvent(w.stream, w.after_app, 0);
    const float* cur = static_cast<const float*>(job.data);
    if (e == CUDA_SUCCESS && job.dtype != Format::FP32) {
      e = launch_widen_to_fp32(q, job.data, job.dtype, job.count, w.scratch);
      cur = w.scratch;
    }
    if (e == CUDA_SUCCESS && job.measure) {
      size_t i = 0;
      const SlotChunk& d = dev.at(slot, &i);
      e = launch_update_loss(q, w.snapshot, cur, job.count, d.d_update + i);
      if (e == CUDA_SUCCESS)
        e = d_.cuMemcpyDtoHAsync(d.h_update + i, dptr(d.d_update + i), sizeof(UpdateLoss),
                                 w.stream);
      if (e == CUDA_SUCCESS) e = d_.cuEventRecord(d.events[i], w.stream);
    }
    if (e == CUDA_SUCCESS && job.snapshot)
      e = d_.cuMemcpyDtoDAsync(dptr(w.snapshot), dptr(cur),
                               static_cast<size_t>(job.count) * sizeof(float), w.stream);
    // Join: the program's later work (the next update) waits for the reads above.
    if (e == CUDA_SUCCESS) e = d_.cuEventRecord(w.after_watch, w.stream);
    if (e == CUDA_SUCCESS) e = d_.cuStreamWaitEvent(app, w.after_watch, 0);
    if (e != CUDA_SUCCESS) {
      *error = driver_error("enqueueing a watched tensor's update loss", e);
      return false;
    }
    return true;
  }

  const UpdateLoss& update_loss(int device, int slot) const override {
    size_t i = 0;
    return devs_[static_cast<size_t>(device)].at(slot, &i).h_update[i];
  }

 private:
  // Frees what create_watch made (caller holds mu_, in the watch's device's context).
  void release(WatchRes& w) {
    if (w.stream != nullptr) {
      if (w.snapshot != nullptr) (void)d_.cuMemFreeAsync(dptr(w.snapshot), w.stream);
      if (w.scratch != nullptr) (void)d_.cuMemFreeAsync(dptr(w.scratch), w.stream);
      (void)d_.cuStreamDestroy(w.stream);  // returns at once; pending work still completes
    }
    if (w.after_app != nullptr) (void)d_.cuEventDestroy(w.after_app);
    if (w.after_watch != nullptr) (void)d_.cuEventDestroy(w.after_watch);
  }

  const DriverApi& d_;
  int slots_;
  std::mutex mu_;
  std::vector<WatchRes> watches_;  // handles index it; guarded by mu_
  // Fixed size: entries never move while the drain thread reads them.
  std::vector<DeviceSlots> devs_ = std::vector<DeviceSlots>(64);
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int slots, std::string* why) {
  const DriverApi* d = driver(why);
  if (d == nullptr) return nullptr;
  int n = 0;
  const CUresult e = d->cuDeviceGetCount(&n);
  if (e != CUDA_SUCCESS || n == 0) {
    *why = e != CUDA_SUCCESS ? driver_error("no usable CUDA device", e) : "no CUDA device";
    return nullptr;
  }
  return std::make_unique<CudaBackend>(*d, slots);
}

}  // namespace fpscope::cuda
