// One background thread that measures host GEMM operands for the BLAS hooks while the program
// goes on (gemm_runs.h: the hooks hand it copies of the operands and the completion of each op,
// in call order). On a machine where the program leaves a core idle (PyTorch's CPU training at
// one or a few threads), a sampled step then costs the copies instead of a statistics pass about
// as long as its GEMMs; the CPU time spent is not lower (the copies add to it; docs/benchmarks.md,
// "The statistics helper"). FPSCOPE_STATS_HELPER=0 measures on the calling thread, as before.
//
// Contract:
//  - jobs run one at a time, in the order they were posted (by any thread), except that an urgent
//    job runs before every job that is not (the copies of a call's inputs, made while the call
//    runs: gemm_runs.h); a job must not throw and must not take a lock that a thread waiting on
//    the helper may hold;
//  - each job has an owner (any address: the posting thread's state) and a size in bytes (the
//    copy it holds); reserve() waits until the bytes of the queued and running jobs plus the new
//    job's fit the budget (or none is left), so that copies in flight stay bounded;
//  - wait(owner) returns once no job of that owner is queued or running; wait_all() once none at
//    all is. Whoever reads what a job writes waits first: the only synchronization needed;
//  - fork: nothing waits; a forked child drops the parent's queue (the owners forget what the
//    jobs were writing) and starts a thread of its own on its first post. The thread blocks every
//    signal (the program's handlers run on the program's threads) and is never joined.
//    The buffer pool is dropped in the child too (its lock may be held by the parent's helper).
#pragma once

#include <cstdint>
#include <functional>

namespace fpscope::probe {

class StatsHelper {
 public:
  // The process's helper; its thread starts on the first post. nullptr once a thread could not
  // be started (one warning; the hooks then measure on the calling thread).
  static StatsHelper* get();

  // Bytes of copies the queued and running jobs may hold together.
  static constexpr uint64_t kBudgetBytes = uint64_t{256} << 20;

  // Waits until `bytes` more fit the budget (or the queue is empty).
  void reserve(uint64_t bytes);
  // Queues fn (holding `bytes` of copies until it has run), after the queued urgent jobs when
  // `urgent`, else after every queued job. False when no thread could be started: nothing was
  // queued.
  bool post(const void* owner, uint64_t bytes, std::function<void()> fn, bool urgent = false);
  void wait(const void* owner);
  // Every job of every owner; returns at once when the helper was never used.
  static void wait_all();

  // Jobs run so far in this process (0 when the helper was never used): the probe's info log.
  static unsigned long long jobs_run();

  // Buffers for the jobs' copies, reused (a fresh allocation of a large copy is mmapped and
  // page-faulted in again each time): capacities are powers of two from 64 KiB; at most
  // kKeepBytes are kept free. take_buffer: at least `bytes` (capacity in *cap), nullptr when none
  // can be allocated; give_buffer from any thread.
  static constexpr uint64_t kKeepBytes = uint64_t{64} << 20;
  static unsigned char* take_buffer(uint64_t bytes, uint64_t* cap);
  static void give_buffer(unsigned char* p, uint64_t cap);

 private:
  StatsHelper() = default;
};

// A buffer of the pool (StatsHelper::take_buffer) owned by one object at a time, given back when
// destroyed (by whichever thread); empty when it could not be allocated.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  explicit PooledBuffer(uint64_t bytes) { p_ = StatsHelper::take_buffer(bytes, &cap_); }
  PooledBuffer(PooledBuffer&& o) noexcept : p_(o.p_), cap_(o.cap_) { o.p_ = nullptr; }
  PooledBuffer& operator=(PooledBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = o.p_;
      cap_ = o.cap_;
      o.p_ = nullptr;
    }
    return *this;
  }
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;
  ~PooledBuffer() { reset(); }
  void reset() {
    if (p_ != nullptr) StatsHelper::give_buffer(p_, cap_);
    p_ = nullptr;
  }
  float* floats() const { return reinterpret_cast<float*>(p_); }  // new[]: aligned for float
  bool empty() const { return p_ == nullptr; }

 private:
  unsigned char* p_ = nullptr;
  uint64_t cap_ = 0;
};

}  // namespace fpscope::probe
