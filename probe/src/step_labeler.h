// Step labeling: which step each GEMM call belongs to, and its name within the step. The labeler
// decides; its Listener (the recorder) writes. It knows a call only by its signatures and scope,
// so it is tested without a trace writer (tests/probe/test_step_labeler.cpp).
//
// Step sources (trace::StepSource), as docs/design.md describes them:
//  - explicit: mark(source). The first explicit source owns the steps; Api always wins over the
//    others; other sources are then ignored. FPSCOPE_STEPS=api takes Api only; none and period
//    take none. An NVTX step range before any call starts step 0 (it marks step starts).
//  - the GEMM period (FPSCOPE_STEPS=auto|period, while no explicit source came): calls are HELD
//    while PeriodSearch (period.h) looks for the period. Once it decides (or the window fills, or
//    the run ends: finish()), every held call is released once, in order, with its final step and
//    name, the step boundaries between them, and the records held meanwhile (hold_record()). Later
//    calls are labelled at once by a StepTracker; too many calls out of the period: held again.
//  - with explicit steps or FPSCOPE_STEPS=none|api: labelled at once, step from mark().
// Names: the innermost scope, "<scope>#j" for its j-th call in a step; else "gemm#<ordinal>" (the
// position in the period, or in the step), "gemm#x<k>" for the k-th call of a step out of the
// period, "gemm#w<i>" for warm-up calls before the first period.
//
// Not thread-safe (the recorder calls it under its lock). A Listener may call hold_record() from
// warning(); nothing else re-enters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "config.h"
#include "fpscope/trace_types.h"
#include "period.h"
#include "recorder.h"

namespace fpscope::probe {

// What identifies a call for the period search: full (op, transposes, m, n, k, batch, layout,
// operand dtypes and roles, scope) and coarse (the sizes left out: the fallback for programs whose
// shapes change from step to step, dynamic batch or sequence length, where the full one never
// repeats).
struct CallSignature {
  uint64_t full = 0;
  uint64_t coarse = 0;
};
CallSignature call_signature(const GemmDesc& d, const std::string& scope);

class StepLabeler {
 public:
  struct Options {
    StepMode mode = StepMode::Auto;
    size_t window = 4096;  // FPSCOPE_PERIOD_WINDOW: calls held at most while detecting
  };

  // A step begins.
  struct StepStart {
    enum class At {
      Live,      // now, at call `first_seq` (fed or, for mark(), the next one): a live boundary
      HeldCall,  // at held call `held`, decided afterwards (no live boundary)
      RunStart,  // step 0 of explicit steps: at time 0, before the first call
    };
    At at = At::Live;
    uint64_t step = 0;                                   // the step that begins
    trace::StepSource source = trace::StepSource::None;  // the source in force
    uint64_t first_seq = 0;                              // Live
    size_t held = 0;                                     // HeldCall
  };

  class Listener {
   public:
    virtual ~Listener() = default;
    // The call being fed is held, as held call `index` (0, 1, ... since holding began): keep
    // what recording it needs until call_released(index).
    virtual void call_held(size_t index) = 0;
    virtual void step_begins(const StepStart& s) = 0;
    // Held call `index` belongs to `step` and is named `name`; `scope` as it was fed.
    virtual void call_released(size_t index, uint64_t step, const std::string& name,
                               const std::string& scope) = 0;
    // The `index`-th record held by hold_record() since holding began belongs to `step`.
    virtual void record_released(size_t index, uint64_t step) = 0;
    // Every held call and record was released (in order, before this): forget them.
    virtual void released_all() = 0;
    // What the trace should say (a lost period; no period in a full window).
    virtual void warning(const std::string& text) = 0;
  };

  // The label of a fed call.
  struct Label {
    bool held = false;  // decided later, by call_released()
    uint64_t step = 0;  // the step (the current step, provisional, when held)
    std::string name;   // "" when held
  };

  explicit StepLabeler(Options o);

  // A GEMM call, the `seq`-th of the run.
  Label feed(const CallSignature& sig, const std::string& scope, uint64_t seq, Listener& l);
  // An explicit step boundary from `source`; `next_seq`: the seq of the next call. Returns
  // whether a live step boundary was made (the source is in force).
  bool mark(trace::StepSource source, uint64_t next_seq, Listener& l);
  // Whether a record made now (loss scale, event) must wait for the held calls before it: then
  // it is counted and released by record_released() with the step of the call before it.
  bool hold_record();
  // True while a record made now would be held (hold_record() would hold it); no side effect.
  bool holding() const { return phase_ == Phase::Detect && !held_.empty(); }
  // A framework claims the steps before its first boundary (fpscope_framework_claim_steps): the
  // period detection stops, what was recorded so far stays where it is, and the steps are
  // explicit from now on. False when steps are explicit already or the step mode refuses source.
  bool claim(trace::StepSource source, Listener& l);
  // The run ends: held calls are released with what can be decided now.
  void finish(Listener& l);
  // In a forked child: held calls and records are dropped (the parent records them); the period
  // is searched again when `recording` (the child records on), else nothing changes.
  void after_fork(bool recording);
  // Recording stopped: held calls and records are dropped.
  void drop_held();

  uint64_t step() const { return step_; }
  // The explicit step source in force (None while none is: period detection, FPSCOPE_STEPS=none).
  trace::StepSource source() const { return explicit_ ? source_ : trace::StepSource::None; }
  // Whether steps are unknown (calls are being held, or will be).
  bool detecting() const { return phase_ == Phase::Detect; }

 private:
  enum class Phase { Detect, Tracking, Off };
  std::string name(const std::string& scope, long ordinal);
  void begin_live(uint64_t first_seq, Listener& l);
  void commit(const PeriodDecision& d, Listener& l);
  void release_records(size_t calls, size_t* next, Listener& l);
  void take_over(trace::StepSource source, Listener& l);

  Options opt_;
  Phase phase_;
  uint64_t step_ = 0;
  trace::StepSource source_ = trace::StepSource::None;  // in force
  bool explicit_ = false;
  PeriodSearch search_;
  bool coarse_ = false;  // the period in force was found on coarse signatures
  bool no_period_warned_ = false;
  std::vector<std::string> held_;      // scopes of the held calls
  std::vector<size_t> records_after_;  // per held record: held calls before it
  StepTracker tracker_;
  uint64_t ordinal_ = 0;  // next ordinal when steps are explicit / off / no period
  uint64_t extras_ = 0;   // calls out of the period in this step
  std::unordered_map<std::string, uint32_t> scope_counts_;  // per step
};

}  // namespace fpscope::probe
