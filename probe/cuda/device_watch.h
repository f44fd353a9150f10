// Master-weight watch of DEVICE tensors (fpscope_watch_device, fpscope.watch() with a CUDA
// tensor): the device counterpart of Recorder::watch()
// (docs/design.md "Master-weight update loss").
//
// Contract:
//  - watch(): everything is allocated now, on the tensor's device: the pipeline's result slots
//    (Pipeline::prepare_device) and the watch's FP32 snapshot, FP32 scratch (BF16/FP16 weights),
//    stream and events (Backend::create_watch). Then the first snapshot is enqueued (like the host
//    watch, which snapshots at watch time). A device whose slots cannot be created is reported
//    ONCE (stderr + trace event) and every later watch on it is refused without retrying; a
//    snapshot that cannot be allocated refuses that watch (one report). Re-watching a name
//    replaces the old watch.
//  - on_step(ending, next, next_sampled), from the recorder's step hook at each live boundary:
//    per watch, one Pipeline::submit_watch() on the program's stream given at watch time: measure
//    (the update `ending` made, when a snapshot from its start exists) and/or snapshot (when
//    `next` is sampled). The result reaches Sink::on_update_loss with meta.step = ending, the
//    same step labelling as the host watch. A boundary that cannot be recorded (all slots in
//    flight, stream capturing, enqueue failed) is skipped and counted (one report per watch); a
//    snapshot that could not be enqueued means no record at the next boundary.
//  - BF16/FP16 weights are widened to FP32 on the device (exact) before the FP32 update-loss
//    kernel; the recorder flags them ("master weights are not FP32"), as for the host watch.
//  - unwatch(): the watch's resources are released (stream-ordered, no wait); results already
//    in flight are still delivered.
//  - Thread-safe (one mutex; never held while calling the host back from the drain).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "fpscope/formats.h"
#include "stats_pipeline.h"

namespace fpscope::cuda {

// ObsMeta::operand of a watch result.
inline constexpr int kUpdateLossGroup = 2;

enum class WatchStatus : int {
  Ok = 0,
  BadArgument = -1,  // empty name, null pointer, zero count, dtype not FP32/BF16/FP16, device < 0
  Unavailable = -2,  // no device statistics in this process (no CUDA device, probe built without)
  Refused = -3,      // over FPSCOPE_WATCH_MAX_ELEMENTS, device resources failed (reported)
};

// What the watches need from the recorder (the probe: probe::Recorder; tests: a double).
class WatchHost {
 public:
  virtual ~WatchHost() = default;
  // Recorder::define_watch.
  virtual bool define(const std::string& name, uint64_t count, Format dtype, int device,
                      uint32_t* tensor) = 0;
  // One warning: stderr and a trace event.
  virtual void warn(const std::string& text) = 0;
};

struct WatchCounters {
  uint64_t watches = 0;     // live watches
  uint64_t boundaries = 0;  // submissions accepted (measure and/or snapshot)
  uint64_t skipped = 0;     // updates not recorded (ring full, capturing, enqueue failed)
  uint64_t refused = 0;     // watch() calls refused (Refused)
};

class DeviceWatches {
 public:
  DeviceWatches(Pipeline* pipeline, Backend* backend, WatchHost* host)
      : pipeline_(pipeline), backend_(backend), host_(host) {}
  ~DeviceWatches();  // releases every watch's resources
  DeviceWatches(const DeviceWatches&) = delete;
  DeviceWatches& operator=(const DeviceWatches&) = delete;

  // `stream`: the program's stream whose work updates the tensor (nullptr: legacy default).
  WatchStatus watch(const std::string& name, const void* ptr, uint64_t count, Format dtype,
                    int device, void* stream);
  bool unwatch(const std::string& name);  // false when `name` is not watched
  void on_step(uint64_t ending, uint64_t next, bool next_sampled);
  WatchCounters counters() const;

 private:
  struct Entry {
    int device = 0;
    int handle = -1;
    const void* ptr = nullptr;
    uint64_t count = 0;
    Format dtype = Format::FP32;
    void* stream = nullptr;
    uint32_t tensor = 0;
    bool have_prev = false;
    bool skip_reported = false;
  };
  // Submits one boundary of `e` (caller holds mu_); updates e.have_prev.
  void submit_locked(const std::string& name, Entry& e, uint64_t ending, bool measure,
                     bool snapshot);
  void skipped_locked(const std::string& name, Entry& e, uint64_t ending, const std::string& why);

  Pipeline* pipeline_;
  Backend* backend_;
  WatchHost* host_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> watches_;
  std::set<int> failed_devices_;
  WatchCounters counters_;
};

// ---- the process's device watches (over device_runtime.h's pipeline and backend) ----
// Unavailable when the process has no device statistics; Ok (a no-op) when recording is off.
WatchStatus watch_device(const std::string& name, const void* ptr, uint64_t count, Format dtype,
                         int device, void* stream);
bool unwatch_device(const std::string& name);
// Counters of the process's watches (zero when none was ever made).
WatchCounters device_watch_counters();

}  // namespace fpscope::cuda
