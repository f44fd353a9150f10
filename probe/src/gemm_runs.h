// How the host BLAS hooks (hooks_blas.cpp) measure the operands of the GEMMs a thread issues:
//  - the batched op being issued (batch_run.h): one ticket, every call's statistics merged per
//    operand, completed when the run ends (the thread's next GEMM that does not continue it,
//    fpscope_flush(), exit);
//  - the reuse of statistics this thread measured lately, by buffer (RecentKey below);
//  - where the measuring runs: on the calling thread, or on the statistics helper
//    (stats_helper.h, Recorder::stats_helper()) from copies, in call order: C copied before the
//    call overwrites it, D after it; A and B copied by the helper while the call runs (urgent
//    jobs, ahead of its measuring), or by the calling thread after the call when the helper has
//    not started the copy by then; the hook returns once A and B are copied, without waiting for
//    their measuring. An operand larger than kMaxHelperCopy is measured on the calling thread
//    (after this thread's queued jobs), as is everything when the helper is off or could not
//    start. Measuring A and B in place while the call runs (the hook waiting for them) was tried:
//    on the MLP sample it cost as much as the copies (the pass over A and B takes about as long
//    as the GEMM; 0.19 against 0.17 ms a call, docs/benchmarks.md); a copy takes a fraction.
// The results are the same either way (the same statistics, merged in the same order); only
// when they reach the recorder differs (late completions, recorder.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "batch_run.h"
#include "fpscope/host_stats.h"
#include "fpscope/value_sketch.h"
#include "recorder.h"

namespace fpscope::probe {

// One op's statistics, merged per operand over the calls of a batched run.
struct OpStats {
  std::unique_ptr<TensorStats> acc[kMaxOperands];
  std::unique_ptr<ValueSketch> sketch[kMaxOperands];  // FPSCOPE_SKETCH: the parts' sketches
  uint64_t parts[kMaxOperands] = {};                  // calls merged into acc[i] so far
  bool have[kMaxOperands] = {};
  bool lost[kMaxOperands] = {};

  void reset();
  void merge(int i, const TensorStats& s, const ValueSketch* sk);
};

// One calling thread's GEMMs. `mu` guards everything; the helper's jobs write an op's OpStats and
// the recent slots they were given, and never take `mu`.
class ThreadRuns {
 public:
  // Operands the helper measures from a copy at most (bytes); larger ones on the calling thread.
  static constexpr uint64_t kMaxHelperCopy = uint64_t{64} << 20;

  static ThreadRuns& this_thread();
  // Completes every thread's run and waits for the helper (flush, exit).
  static void complete_all();
  // A and B reads looked up among the recent statistics, and those found there (all threads,
  // since the process started; logged at exit, FPSCOPE_LOG=info).
  static uint64_t recent_lookups();
  static uint64_t recent_hits();

  std::mutex mu;

  // The ticket of call `d` in `scope` (caller holds mu): the run's, when `d` continues it; else
  // the previous run is completed and a new one started.
  const GemmTicket& begin(Recorder* rec, const GemmDesc& d, const std::string& scope);
  // Before the real call: A and B (measured now, or their copies handed to the helper) and C
  // (when present).
  void before_call(const GemmDesc& d);
  // After it: waits for the copies of A and B (settle_copies), then D.
  void after_call(const GemmDesc& d);
  // Makes or waits for the copies of A and B the helper may still be making; the hook calls it
  // before returning to the program in every case (the program may overwrite them then).
  void settle_copies() noexcept;
  // Writes the run's observations (or hands that to the helper, after its jobs).
  void complete();

  ~ThreadRuns();

 private:
  ThreadRuns();
  friend void runs_child_after_fork();

  struct RecentKey;
  struct RecentSlot;

  // One input's copy into a pooled buffer (packed: ld = rows), made by whichever of the helper
  // and the calling thread takes it first; the measuring job waits for it to be done.
  class CallCopy {
   public:
    CallCopy(const unsigned char* src, unsigned char* dst, uint64_t rows, uint64_t cols,
             uint64_t ld, uint64_t elem);
    void run() noexcept;  // the copy, unless someone took it already
    void wait_done() noexcept;

   private:
    static constexpr int kPending = 0, kTaken = 1, kDone = 2;
    const unsigned char* src_;
    unsigned char* dst_;
    uint64_t rows_, cols_, ld_, elem_;
    std::atomic<int> state_{kPending};
  };

  // Operand i of `d`: measured now, or handed to the helper with a copy.
  void measure(int i, const GemmDesc& d);
  // Measures operand i of `d` read at `data` into `op` (and into `slot`, when not nullptr, as the
  // filling `seq` of its key).
  static void measure_now(OpStats* op, int i, const OperandDesc& o, const StatsOptions& opt,
                          bool sketch, const void* data, RecentSlot* slot, uint64_t seq);
  // The same on the helper: an exception (out of memory) loses the operand's record.
  static void measure_guarded(OpStats* op, int i, const OperandDesc& o, const StatsOptions& opt,
                              bool sketch, const void* data, RecentSlot* slot, uint64_t seq);
  void forget_after_fork();
  void wait_jobs();
  OpStats* take_op();
  void give_back(OpStats* op);

  Recorder* rec_ = nullptr;
  BatchRun run_;
  GemmTicket ticket_;
  bool helper_ = false;     // this run measures on the helper
  bool posted_ = false;     // jobs of this thread may be queued or running
  bool op_posted_ = false;  // ... and some of them merge into op_
  OpStats* op_ = nullptr;

  std::mutex pool_mu_;  // the free OpStats (given back by the helper's completion jobs)
  std::vector<std::unique_ptr<OpStats>> all_ops_;
  std::vector<OpStats*> free_ops_;

  std::unique_ptr<RecentKey[]> keys_;  // decided on the calling thread, in call order
  std::unique_ptr<RecentSlot[]> slots_;
  int next_slot_ = 0;
  uint64_t next_seq_ = 1;

  bool in_call_ = false;  // measure(): an input of the call about to run, copied by the helper
  std::shared_ptr<CallCopy> in_flight_[kMaxOperands];  // copies the helper may be making
  int num_in_flight_ = 0;
};

}  // namespace fpscope::probe
