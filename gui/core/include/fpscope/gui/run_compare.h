// Several runs of one program, aligned on a reference run (the viewer's primary run): the
// cross-run value difference of every matched tensor (analysis::compare_runs, trace format 1.4
// value sketches), computed once per (reference, run) pair and cached; the tensor browser's
// divergence column and order (analysis::rank_by_divergence over the runs); and each run's loss
// curve (mean of a step's LOSS records, as `fpscope compare` defines it, analysis/compare.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "fpscope/analysis/drift.h"
#include "fpscope/gui/colors.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace fpscope::gui {

struct Run;

// One run against the reference: compare_runs(reference, run), indexed by reference tensor.
struct RunDiff {
  std::vector<analysis::CrossRunDrift> drift;  // compare_runs(ref, other), every matched tensor
  std::vector<int64_t> of_tensor;              // reference tensor -> index into drift; -1 none
  bool measurable = false;  // some tensor has a measurable rel diff (both traces carry sketches)
  // The drift of reference tensor `t`, or null when it has no match in the run.
  const analysis::CrossRunDrift* find(uint32_t t) const;
};
RunDiff diff_runs(const trace::TraceModel& ref, const trace::TraceModel& other);

// (reference, run) -> RunDiff, each pair computed once (compare_runs walks every observation of
// both traces: far too slow per frame). Thread-safe; the cache keeps both runs alive.
class DiffCache {
 public:
  std::shared_ptr<const RunDiff> get(const std::shared_ptr<const Run>& ref,
                                     const std::shared_ptr<const Run>& other);
  size_t computed() const;  // pairs computed so far (the tests count them)

 private:
  struct Entry {
    std::shared_ptr<const Run> ref, other;
    std::shared_ptr<const RunDiff> diff;
  };
  mutable std::mutex mu_;
  std::map<std::pair<const Run*, const Run*>, Entry> pairs_;
  size_t computed_ = 0;
};

// Every other run against the reference, and what the tensor browser shows of it.
struct Comparison {
  struct Other {
    size_t run = 0;  // the viewer's run index (its colour: run_color(run))
    std::shared_ptr<const RunDiff> diff;
  };
  std::vector<Other> others;
  // One per reference tensor, over the other runs: the earliest first step > 1 % and > 10 %
  // and the largest max_rel_diff (NaN: no run measurable for it). match.base = the tensor.
  std::vector<analysis::CrossRunDrift> combined;
  // Reference tensors with a measurable difference, rank_by_divergence(combined)'s order.
  std::vector<uint32_t> order;
  // Reference tensor -> its position in `order`; -1: not measurable (the browser's sort key).
  std::vector<int64_t> rank;
  bool measurable() const { return !order.empty(); }
};
Comparison combine_runs(size_t ref_tensors, std::vector<Comparison::Other> others);

// A run's loss per step: the mean of the step's LOSS records (trace.losses), steps ascending.
struct LossCurve {
  std::vector<double> steps;
  std::vector<double> loss;
  bool empty() const { return steps.empty(); }
};
LossCurve loss_curve(const trace::Trace& t);

// The colour of run k (its chip, loss curve and difference line): run 0 yellow, then
// vermillion, blue, green, ... (Okabe-Ito, apart from the format colours), cycling.
Rgb run_color(size_t k);

}  // namespace fpscope::gui
