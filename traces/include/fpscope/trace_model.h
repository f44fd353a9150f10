// fpscope trace model: the per-tensor / per-step views every consumer (CLI, analysis, GUI) queries.
//
// Contract:
//  - Built in ONE pass over a Trace (plus sorts only where the file order is not already sorted);
//    keeps a reference to it: the Trace must outlive the model and must not be modified.
//  - All "observation indices" are indices into trace().observations (uint32_t).
//  - series(t): every observation of tensor t, sorted by (step, seq, file order).
//  - steps(): the distinct steps that have at least one observation, ascending.
//    step_observations(s): every observation of step s (all tensors), sorted by (seq, file order).
//  - totals(t): StatsScalars::merge_scalars over all observations of t (file order), except that
//    the integer counts saturate at 2^64-1 instead of wrapping (histogram sums too).
//  - first_overflow/underflow/subnormal(t, target): the first step (by step number) in which an
//    observation of t had a nonzero count for kTargets[target], or kNoStep. A first step of
//    2^64-1 (a valid step value) is indistinguishable from kNoStep.
//  - histograms are dense arrays of kHistBins counts (same binning as TensorStats::hist).
//  - Observations whose tensor index is >= tensors.size() (only possible in a hand-built Trace;
//    the reader drops them) are ignored by the per-tensor views but listed in the per-step views.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "fpscope/trace_io.h"

namespace fpscope::trace {

using DenseHist = std::array<uint64_t, kHistBins>;

class TraceModel {
 public:
  static constexpr uint64_t kNoStep = std::numeric_limits<uint64_t>::max();

  explicit TraceModel(const Trace& trace);

  const Trace& trace() const { return *t_; }
  uint32_t num_tensors() const { return static_cast<uint32_t>(t_->tensors.size()); }
  const TensorInfo& tensor(uint32_t t) const { return t_->tensors[t]; }
  // Index of the first tensor whose TensorInfo::id equals `id`, or -1.
  int64_t find_tensor(std::string_view id) const;

  // ---- per tensor --------------------------------------------------------------------------
  std::span<const uint32_t> series(uint32_t tensor) const;
  // The part of series(tensor) with step_lo <= step <= step_hi (binary search).
  std::span<const uint32_t> series_range(uint32_t tensor, uint64_t step_lo, uint64_t step_hi) const;
  const StatsScalars& totals(uint32_t tensor) const { return totals_[tensor]; }
  uint64_t first_overflow(uint32_t tensor, int target) const {
    return first_[tensor][target].overflow;
  }
  uint64_t first_underflow(uint32_t tensor, int target) const {
    return first_[tensor][target].underflow;
  }
  uint64_t first_subnormal(uint32_t tensor, int target) const {
    return first_[tensor][target].subnormal;
  }
  // First step in which the tensor itself held a NaN or an Inf, or kNoStep.
  uint64_t first_nonfinite(uint32_t tensor) const { return first_nonfinite_[tensor]; }

  // ---- per step ----------------------------------------------------------------------------
  bool empty() const { return steps_.empty(); }  // no observations at all
  uint64_t first_step() const { return steps_.empty() ? 0 : steps_.front(); }
  uint64_t last_step() const { return steps_.empty() ? 0 : steps_.back(); }
  std::span<const uint64_t> steps() const { return steps_; }
  // Empty when the step has no observations.
  std::span<const uint32_t> step_observations(uint64_t step) const;

  // ---- histograms --------------------------------------------------------------------------
  // Dense histogram of one observation (index into trace().observations).
  DenseHist histogram(uint32_t observation) const;
  // Adds one observation's sparse histogram into `out` (no clearing).
  void add_histogram(uint32_t observation, DenseHist& out) const;
  // Sum of the histograms of tensor's observations with step_lo <= step <= step_hi.
  DenseHist histogram_range(uint32_t tensor, uint64_t step_lo, uint64_t step_hi) const;

 private:
  struct First {
    uint64_t overflow = kNoStep;
    uint64_t underflow = kNoStep;
    uint64_t subnormal = kNoStep;
  };
  const Trace* t_;
  std::vector<uint32_t> series_off_;  // CSR offsets, num_tensors + 1
  std::vector<uint32_t> series_;      // observation indices grouped by tensor
  std::vector<StatsScalars> totals_;
  std::vector<std::array<First, kNumTargets>> first_;
  std::vector<uint64_t> first_nonfinite_;
  std::vector<uint64_t> steps_;     // distinct steps, ascending
  std::vector<uint32_t> step_off_;  // CSR offsets, steps_.size() + 1
  std::vector<uint32_t> by_step_;   // observation indices sorted by (step, seq, file order)
};

}  // namespace fpscope::trace
