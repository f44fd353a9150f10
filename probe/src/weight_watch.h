// Master weights in host memory, watched across step boundaries (Recorder::watch; docs/design.md
// "Master-weight update loss"): a snapshot when a sampled step begins, and at its end the update
// it made, as the trace's weight-update record. The device watch (probe/cuda/device_watch.h)
// computes the same update on the GPU; Recorder::weight_update_at() writes it with
// weight_update_record() too.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/trace_types.h"
#include "fpscope/update_loss.h"

namespace fpscope::probe {

// The weight-update record of `tensor` for `step` (the step that made the update).
trace::WeightUpdateRecord weight_update_record(uint64_t step, uint32_t tensor, Format dtype,
                                               uint64_t elements, const UpdateLoss& loss);

class HostWatch {
 public:
  HostWatch() = default;
  // `ptr`: `count` elements of `dtype` (FP32, BF16 or FP16), valid while watched.
  HostWatch(uint32_t tensor, const void* ptr, uint64_t count, Format dtype)
      : tensor_(tensor), ptr_(ptr), count_(count), dtype_(dtype) {}
  uint32_t tensor() const { return tensor_; }
  // Copies the weights now (widened to FP32: BF16 and FP16 widen exactly).
  void snapshot();
  // The update since the snapshot, for `step`, and the snapshot is gone; false when none was
  // taken.
  bool take_update(uint64_t step, trace::WeightUpdateRecord* out);
  // A forked child measures from its own snapshots.
  void forget_snapshot() { have_prev_ = false; }

 private:
  uint32_t tensor_ = 0;
  const void* ptr_ = nullptr;
  uint64_t count_ = 0;
  Format dtype_ = Format::FP32;
  bool have_prev_ = false;
  std::vector<float> prev_;
  std::vector<float> cur_;
};

// The host watches of a recorder, by name.
class HostWatches {
 public:
  // Watches `w` as `name` (replacing one of that name), from a snapshot taken now: the next step
  // boundary records the update of the current step.
  void add(const std::string& name, HostWatch w);
  void remove(const std::string& name) { watches_.erase(name); }
  // At the boundary between step `ending` and the next one: the update each watch received
  // during `ending` (if it was snapshotted at its start) goes to `write`; snapshots are taken
  // again if the next step is sampled.
  void boundary(uint64_t ending, bool next_sampled,
                const std::function<void(const trace::WeightUpdateRecord&)>& write);
  void forget_snapshots();  // a forked child

 private:
  std::map<std::string, HostWatch> watches_;
};

}  // namespace fpscope::probe
