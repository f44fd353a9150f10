// What the recorder keeps for the step labeler (step_labeler.h) while steps are unknown: the held
// calls, the statistics that arrive for them meanwhile, and the held records; then, once a held
// call is released, where its statistics still to come (device path) go. Not thread-safe (the
// recorder's lock).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fpscope/stats.h"
#include "fpscope/trace_types.h"
#include "recorder.h"

namespace fpscope::probe {

// A loss-scale record or event made while calls are held: written when released.
struct HeldRecord {
  bool is_event = false;
  trace::LossScaleRecord loss_scale;
  trace::EventRecord event;
};

// Where the statistics of one operand of a labelled call go.
struct StatsTarget {
  uint32_t tensor = kUnresolved;
  uint64_t step = 0;
  uint64_t seq = 0;
  uint64_t stream = 0;
  uint64_t time_ns = 0;
};

class HeldCalls {
 public:
  // Holds call `seq` as the next held call; statistics are awaited for the `measured` operands.
  void hold(uint64_t seq, uint64_t time_ns, const GemmDesc& d, const bool measured[kMaxOperands]);
  size_t size() const { return held_.size(); }
  uint64_t seq(size_t index) const { return held_[index].seq; }
  uint64_t time_ns(size_t index) const { return held_[index].time_ns; }
  const GemmDesc& desc(size_t index) const { return held_[index].desc; }

  // Statistics (and the value sketch, empty when none) of operand `i` of call `seq`: true when
  // the call is held (kept until released).
  bool keep(uint64_t seq, int i, const TensorStats& stats, std::span<const float> sketch);
  // Held call `index` is labelled: `tensor` per operand (kUnresolved: not sampled) in `step`.
  // emit() gets the statistics already here; the awaited ones will go through take_late().
  using Emit =
      std::function<void(const StatsTarget&, const TensorStats&, std::span<const float> sketch)>;
  void release(size_t index, const uint32_t tensor[kMaxOperands], uint64_t step, const Emit& emit);
  // Where statistics of operand `i` of released call `seq` go, if they are awaited.
  std::optional<StatsTarget> take_late(uint64_t seq, int i);
  // Operand `i` of call `seq` (held or released) will never have statistics.
  void abandon(uint64_t seq, int i);
  // Call `seq`, if still held, is one op of `batch` calls (Recorder::end_batch).
  void set_batch(uint64_t seq, int64_t batch);

  void hold_record(HeldRecord r) { records_.push_back(std::move(r)); }
  HeldRecord& record(size_t index) { return records_[index]; }

  void clear_held();  // every held call and record was released
  void clear_late();
  void clear() {
    clear_held();
    clear_late();
  }

 private:
  // Compact statistics (the dense histogram is 8 KiB; most bins are empty).
  struct CompactStats {
    StatsScalars scalars;
    std::vector<std::pair<uint16_t, uint64_t>> hist;
    trace::BlockStatsRecord blocks;  // block-scaled formats, sparse (mask 0: none)
    std::vector<float> sketch;       // the value sketch (empty: none)
  };
  struct Held {
    uint64_t seq = 0;
    uint64_t time_ns = 0;
    GemmDesc desc;
    bool have[kMaxOperands] = {};
    bool pending[kMaxOperands] = {};  // sampled, statistics not delivered yet
    CompactStats stats[kMaxOperands];
  };
  struct Late {  // released, statistics still to come
    uint32_t tensor[kMaxOperands] = {kUnresolved, kUnresolved, kUnresolved, kUnresolved};
    uint64_t step = 0;
    uint64_t stream = 0;
    uint64_t time_ns = 0;
    int pending = 0;
  };
  Held* find(uint64_t seq);

  std::vector<Held> held_;
  uint64_t base_ = 0;  // seq of held_[0]
  std::vector<HeldRecord> records_;
  std::unordered_map<uint64_t, Late> late_;
  std::unique_ptr<TensorStats> expanded_;  // statistics of a released call, expanded
};

}  // namespace fpscope::probe
