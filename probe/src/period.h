// Step detection for unmodified runs: the period of the repeating GEMM-signature sequence.
//
// PeriodDetector (while no period is known) is fed one signature hash per call:
//  - feed() keeps the KMP prefix function of the sequence, so the smallest period P of the whole
//    sequence so far is known in O(1) amortized; the period is decided as soon as the sequence
//    holds `repeats` (default 3) full repetitions of it from its first call.
//  - decide() finds steps after warm-up calls (data preparation, an evaluation pass): the prefix
//    period if it repeats at least `min_repeats` times, otherwise the longest SUFFIX of at least
//    `min_len` calls that repeats `min_repeats` times, or no period. PeriodSearch tries it every
//    8 held calls with min_len = half of them (so a short run of equal calls at the tail, e.g.
//    identical layers, is not taken for the step), and with no minimum when the window is full or
//    the run ends.
// StepTracker (once a period is known) labels each call with its ordinal in the period:
//  - the expected next signature: ordinal = position, a new step after the last one;
//  - the first signature of the period out of turn: a new step begins early (partial step);
//  - anything else is an extra call (eval, a different batch shape): ordinal -1; more than
//    2 * period + 16 extra calls in a row mean the period is lost (detection restarts).
// PeriodSearch is the policy that decides, call by call, when a period is taken (the step labeler,
// step_labeler.h, feeds it its held calls): the one place to change the period algorithm.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace fpscope::probe {

struct PeriodResult {
  size_t offset = 0;  // calls before the first step (warm-up)
  size_t period = 0;  // 0: no period
};

class PeriodDetector {
 public:
  explicit PeriodDetector(int repeats = 3) : repeats_(repeats) {}
  void reset() {
    seq_.clear();
    pi_.clear();
  }
  // Adds a signature; returns true when the prefix period has reached `repeats` repetitions.
  bool feed(uint64_t sig);
  size_t size() const { return seq_.size(); }
  const std::vector<uint64_t>& sequence() const { return seq_; }
  // The smallest period of the whole sequence so far (size() when none).
  size_t prefix_period() const { return seq_.empty() ? 0 : seq_.size() - pi_.back(); }
  PeriodResult decide(int min_repeats, size_t min_len = 0) const;

 private:
  int repeats_;
  std::vector<uint64_t> seq_;
  std::vector<size_t> pi_;
};

// How well `period` calls from `offset` explain the sequence s to its end, followed as
// StepTracker follows it (without the early restart): calls in order, extra calls allowed only
// between iterations.
struct PeriodFit {
  bool contradicted = false;  // a call inside an iteration differs from the period
  size_t steps = 0;           // full repetitions
  size_t matched = 0;         // calls that follow the period
  size_t extras = 0;          // calls between iterations (an evaluation pass)
  size_t extra_runs = 0;      // runs of them
  size_t longest_extra_run = 0;
  size_t period = 0;
  // Never contradicted, at least `min_repeats` full repetitions, extras in no more runs than half
  // the steps, no more than half the matched calls, each run shorter than the period (an eval
  // pass is shorter than a training iteration; a longer run is the rest of the iteration).
  bool explains(size_t min_repeats) const;
};
PeriodFit fit_period(const std::vector<uint64_t>& s, size_t offset, size_t period);
// The period that explains the longest window of s: the smallest offset (at most
// PeriodSearch::kMaxWarmUp and half the calls), then the smallest period whose fit
// explains(min_repeats); period 0 when none. Repeated sub-structure of the iteration (a run of
// identical calls, N identical layers, RNN time steps) leaves the rest of the iteration as extras
// and does not explain it.
PeriodResult best_period(const std::vector<uint64_t>& s, size_t min_repeats);

class StepTracker {
 public:
  struct Label {
    bool new_step = false;  // this call begins a new step
    bool partial = false;   // ... and the previous step ended early
    long ordinal = -1;      // position in the period, -1 = extra call
    bool lost = false;      // too many extras in a row: the caller should re-detect
  };
  StepTracker() = default;
  // pattern: one period of signatures; pos: position of the next expected call.
  StepTracker(std::vector<uint64_t> pattern, size_t pos)
      : pattern_(std::move(pattern)), pos_(pos) {}
  Label next(uint64_t sig);
  size_t period() const { return pattern_.size(); }

 private:
  std::vector<uint64_t> pattern_;
  size_t pos_ = 0;
  size_t extras_in_row_ = 0;
};

// The decision over the held calls: steps from `result` (period 0: none yet), tracked afterwards
// by `pattern` (one period of the signatures that found it: full, or coarse when shapes vary).
struct PeriodDecision {
  PeriodResult result;
  bool coarse = false;       // found on the coarse signatures (sizes left out): track with those
  bool window_full = false;  // made because the window filled up
  std::vector<uint64_t> pattern;
  // Per held call from result.offset on: its position in the period, or -1 for an extra call
  // between iterations (an evaluation pass); and the position the tracker expects next.
  std::vector<long> ordinals;
  size_t next_pos = 0;
};

// When to decide, from the full and the coarse signature of each held call:
//  - the prefix period, once it repeats kEarlyRepeats times and at least kMinCallsForPrefixPeriod
//  calls are
//    held (a step that begins with a few calls of one shape is not a period of 1);
//  - every 8 calls, a period after warm-up calls (decide(kEarlyRepeats, half the calls));
//    both only for a period of at least kMinDistinctEarly distinct signatures, and replaced by
//    best_period(3) when that one needs no more warm-up calls (an eval pass every k steps): a run
//    of identical calls (PyTorch's CPU bmm: one sgemm per batch and head; RNN time steps) is not
//    taken for the iteration before the window fills or the run ends;
//  - when `window` calls are held: best_period(2) (the period that explains the longest window,
//    never one a call inside an iteration contradicts), else the coarse sequence's
//    best_period(3) (shapes that change every step), else decide(2), coarse decide(3), none;
//  - at the end of the run (finish()): the same as a full window.
class PeriodSearch {
 public:
  static constexpr size_t kMinCallsForPrefixPeriod = 16;
  static constexpr size_t kMinDistinctEarly = 2;
  // Repetitions before an early decision: sub-structure that opens the held window (N identical
  // layers) repeats as often as it has copies; fewer than this many is not taken for the step.
  static constexpr int kEarlyRepeats = 8;
  static constexpr size_t kMaxWarmUp = 512;  // warm-up calls best_period() considers at most
  explicit PeriodSearch(size_t window) : window_(window) {}
  // Adds a held call; the decision when one is due.
  std::optional<PeriodDecision> add(uint64_t sig, uint64_t coarse_sig);
  // The decision with what is held now (the run ends).
  PeriodDecision finish() const;
  void reset() {
    full_.reset();
    coarse_.reset();
  }
  size_t size() const { return full_.size(); }

 private:
  PeriodDecision make(PeriodResult r, bool coarse) const;
  bool early_ok(PeriodResult r) const;
  PeriodResult early(PeriodResult r) const;
  PeriodDecision last_resort() const;
  size_t window_;
  PeriodDetector full_{kEarlyRepeats};
  PeriodDetector coarse_{3};  // sizes left out
};

}  // namespace fpscope::probe
