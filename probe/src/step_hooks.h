// Step hooks (Recorder::add_step_hook): functions called at every live step boundary, in boundary
// order, on the thread that ended the step, OUTSIDE the recorder's lock (a hook may call the
// recorder), never re-entered on one thread. The recorder queues boundaries under its lock and
// runs them once it has released it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "recorder.h"

namespace fpscope::probe {

class StepHooks {
 public:
  // At most 4 hooks (one more is ignored with an error on stderr); adding one twice is a no-op.
  static void add(Recorder::StepHook fn);
  static bool any();

  // Queues a boundary (caller holds the recorder's lock `mu`); nothing when no hook exists.
  void queue(uint64_t ending, uint64_t next, bool next_sampled);
  // Runs the queued boundaries (caller does NOT hold `mu`; it is taken to empty the queue). One
  // thread at a time, in queue order; a hook that ends a step itself queues the boundary for
  // this loop instead of re-entering.
  void run(std::mutex& mu);
  // In a forked child: nothing queued, and the order lock a parent thread may have held is new.
  void reset_after_fork();

 private:
  struct Boundary {
    uint64_t ending = 0;
    uint64_t next = 0;
    bool next_sampled = false;
  };
  std::vector<Boundary> boundaries_;
  std::atomic<bool> pending_{false};
  std::mutex order_;  // serializes hook runs: boundaries reach the hooks in order
};

}  // namespace fpscope::probe
