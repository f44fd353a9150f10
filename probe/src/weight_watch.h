// Master weights in host memory, watched across step boundaries (Recorder::watch; docs/design.md
// "Master-weight update loss"): a snapshot when a sampled step begins, and at its end the update
// it made, as the trace's weight-update record. The device watch (probe/cuda/device_watch.h)
// computes the same update on the GPU; Recorder::weight_update_at() writes it with
// weight_update_record() too.
//
// Budget instead of a cliff (issue 21): a host watch follows `watched` <= `count` positions, a
// fixed, deterministic, stratified uniform sample (position j is drawn from the j-th of `watched`
// equal strata by a hash of j), so the per-element fractions and sums it records estimate the
// whole tensor's without bias; watched == count watches every element. Each followed position
// costs kWatchBytesPerElement (two FP32 copies); HostWatches counts them against
// FPSCOPE_WATCH_BUDGET (config.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/trace_types.h"
#include "fpscope/update_loss.h"
#include "stats_helper.h"

namespace fpscope::probe {

inline constexpr uint64_t kWatchBytesPerElement = 2 * sizeof(float);

// The weight-update record of `tensor` for `step` (the step that made the update); `watched`:
// the positions followed (format 1.2's field; `elements` when the whole tensor is watched).
trace::WeightUpdateRecord weight_update_record(uint64_t step, uint32_t tensor, Format dtype,
                                               uint64_t elements, uint64_t watched,
                                               const UpdateLoss& loss);

// The j-th followed position of a sample of `watched` out of `count` (j < watched <= count):
// in [floor(j*count/watched), floor((j+1)*count/watched)), chosen by a hash of j. Increasing in j.
uint64_t sample_position(uint64_t j, uint64_t watched, uint64_t count);

// How many positions a watch of `count` elements follows given `requested` (0: as many as
// allowed), the budget bytes left and FPSCOPE_WATCH_MAX_ELEMENTS: the least of them; 0 when not
// even one position fits.
uint64_t watch_sample_size(uint64_t count, uint64_t requested, uint64_t budget_left,
                           uint64_t max_elements);

// What one watch's update needs once the weights may change again: the snapshot and a copy of
// the followed positions now (both FP32), and the record's fields. measure() is the update-loss
// pass, run where the caller likes (the statistics helper, stats_helper.h, or at once).
struct PendingUpdate {
  uint64_t step = 0;
  uint32_t tensor = 0;
  Format dtype = Format::FP32;
  uint64_t elements = 0;
  uint64_t watched = 0;
  PooledBuffer prev, cur;  // `watched` FP32 values each
  trace::WeightUpdateRecord measure() const;
};

class HostWatch {
 public:
  HostWatch() = default;
  // `ptr`: `count` elements of `dtype` (FP32, BF16 or FP16), valid while watched; `watched`
  // positions of them followed (1..count).
  HostWatch(uint32_t tensor, const void* ptr, uint64_t count, Format dtype, uint64_t watched)
      : tensor_(tensor), ptr_(ptr), count_(count), watched_(watched), dtype_(dtype) {}
  uint32_t tensor() const { return tensor_; }
  uint64_t watched() const { return watched_; }
  uint64_t bytes() const { return watched_ * kWatchBytesPerElement; }
  // Copies the weights now (widened to FP32: BF16 and FP16 widen exactly).
  void snapshot();
  // The update since the snapshot, for `step`, and the snapshot is gone; false when none was
  // taken.
  bool take_update(uint64_t step, trace::WeightUpdateRecord* out);
  // The same, measured later: the snapshot moves into *out with a copy of the current weights
  // (the one copy more costs ~1/5 of the pass); false when none was taken.
  bool take_pending(uint64_t step, PendingUpdate* out);
  // A forked child measures from its own snapshots.
  void forget_snapshot() { have_prev_ = false; }

 private:
  uint32_t tensor_ = 0;
  const void* ptr_ = nullptr;
  uint64_t count_ = 0;
  uint64_t watched_ = 0;
  Format dtype_ = Format::FP32;
  bool have_prev_ = false;
  PooledBuffer prev_;       // the snapshot: `watched_` FP32 values (reused across sampled steps)
  std::vector<float> cur_;  // a block of the current weights, when they are not read in place
};

// The host watches of a recorder, by name.
class HostWatches {
 public:
  // Watches `w` as `name` (replacing one of that name), from a snapshot taken now: the next step
  // boundary records the update of the current step.
  void add(const std::string& name, HostWatch w);
  void remove(const std::string& name) { watches_.erase(name); }
  // Budget bytes the watches hold (kWatchBytesPerElement per followed position).
  uint64_t bytes() const;
  // The same without the watch named `name` (it is being replaced).
  uint64_t bytes_except(const std::string& name) const;
  // At the boundary between step `ending` and the next one: the update each watch received
  // during `ending` (if it was snapshotted at its start) goes to `write`, or, when `defer` is
  // given, to `defer` to be measured later (it returns false when it cannot: measured now);
  // snapshots are taken again if the next step is sampled.
  void boundary(uint64_t ending, bool next_sampled,
                const std::function<void(const trace::WeightUpdateRecord&)>& write,
                const std::function<bool(PendingUpdate&&)>& defer = nullptr);
  void forget_snapshots();  // a forked child

 private:
  std::map<std::string, HostWatch> watches_;
};

}  // namespace fpscope::probe
