// A host Backend for the stats pipeline tests: it stands in for the device. Enqueued work goes into
// per-stream FIFO queues (like CUDA streams) and runs only when the test says so (run()), so tests
// control completion order. "Stats" here is a trivial reduction (count, amax of FP32 data) done by
// the test double itself: enough to check that the right result reaches the right observation.
#pragma once

#include <cmath>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "stats_pipeline.h"

namespace fpscope::cuda::testing {

class HostBackend : public Backend {
 public:
  explicit HostBackend(int slots, int devices = 2) : slots_(slots) {
    stats_.resize(static_cast<size_t>(devices * slots));
    scalars_.resize(static_cast<size_t>(devices * slots * kScalarsPerSlot));
    state_.assign(static_cast<size_t>(devices * slots), State::Idle);
  }
  int slots_per_device() const override { return slots_; }
  bool ensure_device(int device, std::string* error) override {
    std::lock_guard<std::mutex> l(mu_);
    if (broken_devices.count(device) != 0) {
      *error = "device " + std::to_string(device) + " is broken";
      return false;
    }
    ++ensure_calls[device];
    return true;
  }
  bool stream_capturing(void* stream) override {
    std::lock_guard<std::mutex> l(mu_);
    return capturing.count(stream) != 0;
  }
  bool enqueue_stats(int slot, const StatsJob& job, std::string* error) override {
    std::lock_guard<std::mutex> l(mu_);
    if (fail_enqueue) {
      *error = "enqueue refused";
      return false;
    }
    const size_t i = idx(job.device, slot);
    state_[i] = State::Recorded;
    queues_[job.stream].push_back([this, i, job] {
      TensorStats s;
      const auto* x = static_cast<const float*>(job.data);
      for (uint64_t c = 0; c < job.cols; ++c)
        for (uint64_t r = 0; r < job.rows; ++r) {
          const float v = x[r + c * job.ld];
          ++s.count;
          s.amax = std::fmax(s.amax, std::fabs(v));
        }
      stats_[i] = s;
      state_[i] = fail_on_run ? State::Failed : State::Done;
    });
    return true;
  }
  bool enqueue_scalar(int slot, const ScalarCopy& c, std::string*) override {
    std::lock_guard<std::mutex> l(mu_);
    const size_t i = idx(c.device, slot);
    queues_[c.stream].push_back([this, i, c] {
      scalars_[i * kScalarsPerSlot + static_cast<size_t>(c.index)] =
          *static_cast<const float*>(c.src);
    });
    return true;
  }
  bool enqueue_event(int device, int slot, void* stream, std::string*) override {
    std::lock_guard<std::mutex> l(mu_);
    const size_t i = idx(device, slot);
    state_[i] = State::Recorded;
    queues_[stream].push_back([this, i] { state_[i] = State::Done; });
    return true;
  }
  Poll poll(int device, int slot) override {
    std::lock_guard<std::mutex> l(mu_);
    ++polls;
    const State s = state_[idx(device, slot)];
    return s == State::Done ? Poll::Ready : (s == State::Failed ? Poll::Failed : Poll::Pending);
  }
  const TensorStats& stats(int device, int slot) const override {
    return stats_[idx(device, slot)];
  }
  const float* scalars(int device, int slot) const override {
    return &scalars_[idx(device, slot) * kScalarsPerSlot];
  }

  // Runs up to n queued operations of `stream` (all when n < 0); returns how many ran.
  int run(void* stream, int n = -1) {
    std::lock_guard<std::mutex> l(mu_);
    auto& q = queues_[stream];
    int done = 0;
    while (!q.empty() && (n < 0 || done < n)) {
      q.front()();
      q.pop_front();
      ++done;
    }
    return done;
  }
  int run_all() {
    std::vector<void*> streams;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto& [s, q] : queues_) streams.push_back(s);
    }
    int n = 0;
    for (void* s : streams) n += run(s);
    return n;
  }

  std::set<void*> capturing;
  std::set<int> broken_devices;
  std::map<int, int> ensure_calls;
  bool fail_enqueue = false;
  bool fail_on_run = false;
  uint64_t polls = 0;

 private:
  enum class State { Idle, Recorded, Done, Failed };
  size_t idx(int device, int slot) const { return static_cast<size_t>(device * slots_ + slot); }
  int slots_;
  std::mutex mu_;
  std::vector<TensorStats> stats_;
  std::vector<float> scalars_;
  std::vector<State> state_;
  std::map<void*, std::deque<std::function<void()>>> queues_;
};

}  // namespace fpscope::cuda::testing
