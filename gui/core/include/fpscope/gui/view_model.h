// The viewer's state that needs no display: loaded runs, the tensor browser's filter/sort and
// per-cell severities, and a "latest result wins" slot for work done off the UI thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fpscope/analysis/analysis.h"
#include "fpscope/gui/block_view.h"
#include "fpscope/gui/run_compare.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace fpscope::gui {

// One opened trace. Loading never throws: a file that is not a trace, has another major version,
// or cannot be read gives ok == false and a one-line error naming the file. A truncated trace is
// loaded (ok == true) and trace->truncated says so.
struct Run {
  std::string path;
  std::string label;  // file name
  bool ok = false;
  std::string error;
  std::unique_ptr<trace::Trace> trace;
  std::unique_ptr<trace::TraceModel> model;  // refers to *trace
  analysis::RunAnalysis analysis;
  BlockColumns blocks;  // block-scaled formats per tensor (empty formats: the trace has none)
  // Steps the timeline walks through: steps with observations or loss-scale records, ascending.
  std::vector<uint64_t> timeline_steps;
  LossCurve loss;               // mean LOSS per step (the timeline overlays every run's)
  std::string no_observations;  // what the panels say when the trace has no observation
  double load_seconds = 0.0;
  double analysis_seconds = 0.0;
};

// The step axis of a run: from its first to one past its last step with observations, loss-scale
// records or losses ([0, 1) when it has none). Losses count: with --every 10 a 20-step run is
// sampled at steps 0 and 10, and its loss curve goes on to step 19.
struct StepExtent {
  double lo = 0.0, hi = 1.0;
};
StepExtent step_extent(const Run& run);

// What the panels say about a trace without observations: why, where the PyTorch integration
// said so (CPU autocast: "no observations in this trace: CPU autocast to bfloat16 was on ...").
std::string no_observations_text(const analysis::RunAnalysis& a);
std::shared_ptr<const Run> load_run(const std::string& path);

// Chip labels of the open runs, one per path: the file name, or, where two runs share a file name,
// as many parent folders as make them differ ("fp16/run.fpst", "bf16/run.fpst").
std::vector<std::string> run_labels(const std::vector<std::string>& paths);

// ---- SQNR as the viewer shows it ------------------------------------------------------------
// SQNR is undefined for a format in which some of the elements overflow: the error sum leaves the
// overflowed elements out (their error is infinite under a non-saturating cast), so the quotient
// would overstate the quality ("E4M3 76 dB" on a tensor that mostly overflows). The analysis
// library returns NaN there (analysis::sqnr_db); a library that still returns a number is
// corrected HERE, the one place every panel goes through, by looking at the overflow count.
enum class SqnrKind : uint8_t {
  Value,      // finite dB
  Exact,      // +inf: the cast is exact
  NoSignal,   // NaN without overflow: nothing to measure (all zero)
  Undefined,  // the format overflows: "n/a"
};
struct SqnrShown {
  SqnrKind kind = SqnrKind::NoSignal;
  double db = 0.0;  // valid for Value
  // The value to plot or sort by: db, +inf (exact) or NaN (no point).
  double plot_value() const;
};
// `overflow`: how many (or what fraction of) elements of the same set overflowed the format.
SqnrShown shown_sqnr(double sqnr_db, double overflow);
// "73.6", "exact", "-" (no signal), "n/a" (undefined).
std::string sqnr_text(const SqnrShown& s);
inline constexpr const char* kSqnrUndefinedHelp = "format overflows: SQNR undefined";

// ---- tensor browser -------------------------------------------------------------------------
enum class Col : int {
  Severity = 0,
  Id,
  Role,
  Op,
  Dtype,
  Shape,
  Amax,
  NonFinite,
  Overflow,  // per target format (SortSpec::target)
  Underflow,
  Subnormal,
  Sqnr,
  BlockLoss,  // per block format (SortSpec::target: index into kBlockFormats), BlockColumns
  BlockSqnr,
  // Cross-run value difference against the reference run (run_compare.h): sorts in
  // analysis::rank_by_divergence's order (descending: the earliest divergence first).
  Divergence,
};
struct SortSpec {
  Col col = Col::Severity;
  int target = 0;  // index into kTargets (kBlockFormats for the block columns)
  bool descending = true;
};

// Case-insensitive; whitespace-separated terms must all match. A term matches when it is a
// substring of the id, name, op, role ("A".."D", "W") or dtype name; "sev:warning" (or any
// severity name) keeps rows at that severity or worse; "!term" excludes rows matching term.
bool matches_filter(const analysis::TensorRisk& r, std::string_view filter);
// Indices into `rows` that pass the filter, ordered by the sort specs (first spec first; ties by
// the analysis's own order, i.e. stable). SQNR sorts by shown_sqnr(); undefined and NaN SQNRs sort
// after every number either way. The block columns sort by block_loss / block_sqnr of `blocks`
// (exact = +inf); a tensor without a measurement in that format sorts after every number too.
// The divergence column sorts by `divergence_rank` (tensor -> position in rank_by_divergence's
// order, -1: not measurable; Comparison::rank): descending = that order; tensors without a
// measurable difference (or without the vector) after every other either way.
std::vector<uint32_t> filter_sort(const std::vector<analysis::TensorRisk>& rows,
                                  std::string_view filter, const std::vector<SortSpec>& sort,
                                  const BlockColumns* blocks = nullptr,
                                  const std::vector<int64_t>* divergence_rank = nullptr);

// Severity of ONE metric of one format (overflow, underflow, subnormal or SQNR column), judged
// by the analysis library's format_severity on a copy of the risk with the other metrics
// cleared, so the table's cell colours use exactly the analysis thresholds. An undefined SQNR
// (shown_sqnr) has no severity of its own: the overflow cell next to it carries it.
analysis::Severity metric_severity(const analysis::FormatRisk& r, Col metric,
                                   const analysis::RiskOptions& opt, std::string* reason);

std::string shape_text(uint64_t rows, uint64_t cols);  // "512x256"

// ---- off the UI thread ----------------------------------------------------------------------
// Runs jobs on their own threads; only the result of the most recently requested job is kept
// (a generation counter drops stale ones). poll() from the UI thread each frame.
template <class T>
class Latest {
 public:
  Latest() = default;
  Latest(const Latest&) = delete;
  Latest& operator=(const Latest&) = delete;
  ~Latest() { wait_all(); }

  // Returns the generation of this request.
  uint64_t request(std::function<T()> fn) {
    const uint64_t g = ++gen_;
    pending_.push_back({g, std::async(std::launch::async, std::move(fn))});
    return g;
  }
  // Moves a finished newest result in; drops finished stale ones. True when a result arrived.
  bool poll() {
    bool got = false;
    for (size_t i = 0; i < pending_.size();) {
      auto& p = pending_[i];
      if (p.fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        ++i;
        continue;
      }
      if (p.gen == gen_) {
        value_ = std::make_shared<T>(p.fut.get());
        ready_gen_ = p.gen;
        got = true;
      } else {
        p.fut.get();
      }
      pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    return got;
  }
  // Invalidate the current value and any job in flight.
  void reset() {
    ++gen_;
    value_.reset();
  }
  bool busy() const { return !pending_.empty() && ready_gen_ != gen_; }
  bool current() const { return value_ && ready_gen_ == gen_; }
  std::shared_ptr<const T> value() const { return value_; }
  uint64_t generation() const { return gen_; }
  void wait_all() {
    for (auto& p : pending_) p.fut.wait();
    poll();
  }

 private:
  struct Pending {
    uint64_t gen;
    std::future<T> fut;
  };
  uint64_t gen_ = 0;
  uint64_t ready_gen_ = 0;
  std::vector<Pending> pending_;
  std::shared_ptr<const T> value_;
};

}  // namespace fpscope::gui
