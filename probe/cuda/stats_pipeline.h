// Host-side bookkeeping of the CUDA stats path: per-device rings of result slots, submission of
// device work through a Backend, and a drain that hands finished results to a Sink.
//
// Contract:
//  - The hot path (submit_*) never blocks on the device, never allocates device or pinned memory
//    after a device's resources exist, and never synchronizes a stream: it takes a free slot, asks
//    the backend to enqueue work + an event on the caller's stream, and returns. A full ring, a
//    capturing stream (unless graphs are allowed) or a backend failure skips the observation and
//    is counted (Counters), never retried.
//  - drain() polls the in-flight slots in submission order and delivers each finished one exactly
//    once, then frees its slot. Results of one stream are delivered in submission order (events of
//    a stream complete in order); different streams may interleave.
//  - Per-device resources are created by the backend at the first submission for that device.
//  - Thread-safe: submissions from any thread, one drain at a time (the drain thread or flush()).
//  - Master-weight watches (device_watch.h) use the same slots: submit_watch() enqueues the
//    update-loss pass of a watched tensor on the watch's own stream, ordered after the program's
//    stream, and the drain delivers the slot's UpdateLoss to Sink::on_update_loss(). Their skips
//    are the submitter's to count (Counters' skip fields are GEMM operands only).
// The CUDA backend (cuda_backend.cu) does the device work; tests use a host backend.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/stats.h"
#include "fpscope/update_loss.h"
#include "fpscope/value_scale.h"

namespace fpscope::cuda {

// What to compute: statistics of one operand (a column-major rows x cols matrix with leading
// dimension ld, elements of dtype), `batch` times at `batch_stride` elements apart.
struct StatsJob {
  int device = 0;
  void* stream = nullptr;  // cudaStream_t
  const void* data = nullptr;
  Format dtype = Format::FP32;
  uint64_t rows = 0;
  uint64_t cols = 0;
  uint64_t ld = 0;
  uint64_t batch = 1;
  int64_t batch_stride = 0;
  float scales[kNumTargets] = {1.0f, 1.0f, 1.0f, 1.0f};
  // The codes' per-tensor scale in device memory (cuBLASLt FP8 scale pointer, value_scale.h): the
  // kernel reads it on `stream` and measures the values the GEMM used. None: codes as stored.
  ValueScale value_scale;
  // Block-scaled formats (bit f: kBlockFormats[f]; 0: none) measured after the statistics into
  // the same slot (TensorStats::blocks), blocks along `block_axis` of each matrix of the batch.
  // The submitter clears it for codes the block pass cannot read as they are (gemm_engine.h).
  uint32_t block_formats = 0;
  BlockAxis block_axis = BlockAxis::Rows;
};

// The matrices a job's block pass reads: every matrix of the batch on its own (a block never spans
// two of them, whichever axis), except a stride-0 batch: one matrix, measured once as the tensor
// statistics measure it. Jobs with a negative stride are refused before this (enqueue_stats).
struct BlockPass {
  uint64_t batch = 1;
  uint64_t batch_stride = 0;  // elements
};
BlockPass block_pass_of(const StatsJob& job);

// Loss scaler state read after PyTorch's amp_update_scale kernel: device float scalars.
struct ScalarCopy {
  int device = 0;
  void* stream = nullptr;
  const void* src = nullptr;  // device address of one float
  int index = 0;              // destination in the slot's scalar area (0..kScalarsPerSlot-1)
};
inline constexpr int kScalarsPerSlot = 4;

// One step boundary of a master-weight watch (device_watch.h): after the work enqueued so far on
// `stream` (the program's stream that updates the weights), optionally the update loss between
// the watch's snapshot and the current weights into a slot (`measure`), then optionally the
// current weights into the snapshot (`snapshot`). `watch` is a handle from create_watch().
struct WatchJob {
  int device = 0;
  int watch = -1;
  void* stream = nullptr;      // cudaStream_t of the program (nullptr: the legacy default stream)
  const void* data = nullptr;  // the watched tensor (device memory, dtype elements)
  Format dtype = Format::FP32;
  uint64_t count = 0;
  bool measure = false;
  bool snapshot = false;
};

enum class Poll { Pending, Ready, Failed };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual int slots_per_device() const = 0;
  // Creates the device's slots, pinned buffers and events (first use). Idempotent.
  virtual bool ensure_device(int device, std::string* error) = 0;
  // Adds `count` slots to a ready device's ring, numbered after the existing ones; returns the
  // first new slot number, or -1 with *error (the ring is unchanged). Called by the pipeline's
  // drain thread only (Pipeline::grow_rings). Slots that exist keep their storage.
  virtual int add_slots(int device, int count, std::string* error) {
    (void)device;
    (void)count;
    *error = "this backend's rings do not grow";
    return -1;
  }
  // True when `stream` is being captured into a CUDA graph (work must not be enqueued).
  virtual bool stream_capturing(void* stream) = 0;
  // Zeroes the slot, enqueues the stats kernel(s) on job.stream, then (job.block_formats != 0)
  // the block pass over block_pass_of(job) into the same slot (it takes NVFP4's tensor scale from
  // the slot's amax), the copy of the whole TensorStats (blocks included) into the slot's pinned
  // memory and the slot's event.
  virtual bool enqueue_stats(int slot, const StatsJob& job, std::string* error) = 0;
  // Enqueues a 4-byte copy into the slot's pinned scalar area (no event).
  virtual bool enqueue_scalar(int slot, const ScalarCopy& copy, std::string* error) = 0;
  // Records the slot's event on `stream` after the copies enqueued so far.
  virtual bool enqueue_event(int device, int slot, void* stream, std::string* error) = 0;
  virtual Poll poll(int device, int slot) = 0;
  virtual const TensorStats& stats(int device, int slot) const = 0;
  virtual const float* scalars(int device, int slot) const = 0;

  // ---- master-weight watches (device_watch.h) ----
  // Allocates what a watch of `count` dtype elements needs on `device` (all of it now: nothing is
  // allocated per step): an FP32 snapshot, an FP32 scratch for BF16/FP16 weights (widened before
  // the FP32 update-loss kernel), the watch's own stream and events. Returns a handle >= 0, or -1
  // with *error.
  virtual int create_watch(int device, uint64_t count, Format dtype, std::string* error) = 0;
  // Releases the watch's resources, stream-ordered after the work enqueued for it (no wait).
  virtual void destroy_watch(int device, int watch) = 0;
  // Enqueues one WatchJob: the watch's stream waits for the work on job.stream so far; with
  // job.measure, the update-loss pass into the slot, its copy into pinned memory and the slot's
  // event (slot is -1 otherwise); with job.snapshot, current -> snapshot; then job.stream's later
  // work waits for the watch's stream (the next update must not race the snapshot). No host wait.
  virtual bool enqueue_watch(int slot, const WatchJob& job, std::string* error) = 0;
  virtual const UpdateLoss& update_loss(int device, int slot) const = 0;
};

// Who the result belongs to; carried through untouched.
struct ObsMeta {
  uint64_t cookie = 0;  // the submitter's key (gemm_engine: its ticket table)
  int operand = 0;      // operand index within the submitter's call
  uint32_t tensor = 0;
  uint64_t step = 0;
  uint64_t seq = 0;
  uint64_t stream = 0;
  uint64_t time_ns = 0;
  int device = 0;
  // Watches (submit_watch): the watched tensor's dtype and element count.
  Format dtype = Format::FP32;
  uint64_t elements = 0;
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void on_stats(const ObsMeta& meta, const TensorStats& stats) = 0;
  // scalars[0..kScalarsPerSlot) as copied (meaning defined by the submitter, see cupti_hooks).
  virtual void on_scalars(const ObsMeta& meta, const float* scalars) = 0;
  // A watch's update loss (submit_watch with job.measure).
  virtual void on_update_loss(const ObsMeta& meta, const UpdateLoss& loss) = 0;
  virtual void on_failed(const ObsMeta& meta, const std::string& what) = 0;
};

struct Counters {
  uint64_t submitted = 0;
  uint64_t delivered = 0;
  uint64_t skipped_ring_full = 0;
  uint64_t skipped_capture = 0;
  uint64_t failed = 0;  // backend refused or the device work failed
  uint64_t in_flight = 0;
  uint64_t failed_devices = 0;  // devices whose result slots could not be set up (tried once)
  uint64_t slots_added = 0;     // slots the rings grew by (grow_rings), all devices
  uint64_t grow_failed = 0;     // rings that could not grow (not retried)
  uint64_t max_slots = 0;       // the largest ring, in slots
};

enum class Submit { Ok, RingFull, Capturing, Failed };

class Pipeline {
 public:
  // Work on a stream being captured into a CUDA graph is always skipped and counted: a captured
  // stats launch would write into its result slot at every replay, long after the slot was
  // delivered and reused (issue 16 item 3; FPSCOPE_CUDA_GRAPHS=1, which allowed it, is gone).
  struct Options {
    int max_slots = 4096;  // per device, for grow_rings (the ring never shrinks)
  };
  Pipeline(Backend* backend, Sink* sink, Options options);
  ~Pipeline();  // stops the drain thread (does not wait for in-flight work)
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  Submit submit_stats(const StatsJob& job, const ObsMeta& meta, std::string* error = nullptr);

  // Creates the device's slots now if they do not exist (what the first submission would do):
  // false (with *error) when the backend cannot.
  bool prepare_device(int device, std::string* error);
  // One watch step boundary (WatchJob). With job.measure it takes a slot (RingFull: nothing was
  // enqueued); the result reaches Sink::on_update_loss. Capturing: nothing was enqueued.
  Submit submit_watch(const WatchJob& job, const ObsMeta& meta, std::string* error = nullptr);

  // Scalar group: open() takes a slot, copy() enqueues copies, close() records the event.
  // open() returns -1 when skipped (counted like submit_stats).
  int open_scalars(int device, void* stream, const ObsMeta& meta, Submit* why = nullptr);
  bool copy_scalar(int ticket, const ScalarCopy& copy);
  void close_scalars(int ticket, void* stream);

  // Delivers everything finished now; returns how many were delivered.
  size_t drain();
  // Ring growth (issue 16 item 9: a step with more operands than slots skipped most of them at
  // --every 1). A device whose free slots fall below a quarter of its ring is marked; this doubles
  // each marked ring through Backend::add_slots, up to max_slots (Options). The drain thread calls
  // it after each drain: submissions never allocate. A ring that fails to grow stays as it is and
  // is not tried again (counted). Returns the slots added.
  size_t grow_rings();
  // Drains until nothing is in flight or `timeout` passes; true when nothing is left.
  bool flush(std::chrono::milliseconds timeout);

  // The drain thread is the probe's own: a backend may bind it to a slot's device
  // (on_drain_thread()), which it must never do to a program's thread.
  void start_drain_thread(std::chrono::microseconds period);
  void stop_drain_thread();

  Counters counters() const;

 private:
  struct InFlight {
    bool scalars = false;
    bool update = false;       // a watch's UpdateLoss
    bool open = false;         // scalar group not closed yet: not pollable
    bool copy_failed = false;  // a copy of the group was refused: dropped once its event passed
    int device = 0;
    int slot = -1;
    ObsMeta meta;
  };
  int acquire(int device, std::string* error);  // slot or -1; caller holds mu_
  void release(int device, int slot);           // caller holds mu_

  Backend* backend_;
  Sink* sink_;
  Options options_;
  mutable std::mutex mu_;
  std::vector<std::vector<int>> free_;  // per device: free slot stack (empty until first use)
  std::vector<bool> device_ready_;
  // Per device: why its set-up failed (empty: not failed). A failed device is never retried:
  // every later submission fails at once with this message.
  std::vector<std::string> device_failed_;
  std::vector<int> total_;           // per device: slots in its ring
  std::vector<char> grow_wanted_;    // per device: free slots ran low (grow_rings acts on it)
  std::vector<char> grow_failed_;    // per device: growth failed once, never tried again
  std::vector<InFlight> in_flight_;  // submission order
  Counters counters_;
  std::mutex drain_mu_;
  std::thread thread_;
  std::mutex thread_mu_;
  std::condition_variable thread_cv_;
  bool stop_ = false;
};

// True on a Pipeline's drain thread (start_drain_thread), false on every other thread.
bool on_drain_thread();

}  // namespace fpscope::cuda
