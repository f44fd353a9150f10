// A host Backend for the stats pipeline tests: it stands in for the device. Enqueued work goes into
// per-stream FIFO queues (like CUDA streams) and runs only when the test says so (run()), so tests
// control completion order. "Stats" here is a trivial reduction (count, amax of FP32 data) done by
// the test double itself: enough to check that the right result reaches the right observation.
// A job with block formats also gets its block section, from compute_stats (block_pass).
// Watches (create_watch/enqueue_watch) keep their snapshot in host memory; a WatchJob runs on the
// program's stream queue (the device's fork/join onto the watch's stream orders it exactly so),
// reads the weights when it RUNS, and computes the update loss with update_loss.h's per-element
// step (as the kernel does), widening BF16/FP16 with numerics.h's decode.
#pragma once

#include <cmath>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "fpscope/host_stats.h"
#include "fpscope/numerics.h"
#include "fpscope/update_loss.h"
#include "stats_pipeline.h"

namespace fpscope::cuda::testing {

class HostBackend : public Backend {
 public:
  // `slots` per device at first; add_slots grows a device's ring up to `max_slots` (default: no
  // growth). Storage for max_slots is made up front, so slots never move.
  explicit HostBackend(int slots, int devices = 2, int max_slots = 0)
      : slots_(slots), max_slots_(max_slots > slots ? max_slots : slots) {
    stats_.resize(static_cast<size_t>(devices * max_slots_));
    updates_.resize(static_cast<size_t>(devices * max_slots_));
    scalars_.resize(static_cast<size_t>(devices * max_slots_ * kScalarsPerSlot));
    state_.assign(static_cast<size_t>(devices * max_slots_), State::Idle);
    total_.assign(static_cast<size_t>(devices), slots);
  }
  int slots_per_device() const override { return slots_; }
  int add_slots(int device, int count, std::string* error) override {
    std::lock_guard<std::mutex> l(mu_);
    ++add_slots_calls;
    int& total = total_[static_cast<size_t>(device)];
    if (fail_add_slots || total + count > max_slots_) {
      *error = "no memory for more slots";
      return -1;
    }
    const int first = total;
    total += count;
    return first;
  }
  int add_slots_calls = 0;
  bool fail_add_slots = false;
  bool ensure_device(int device, std::string* error) override {
    std::lock_guard<std::mutex> l(mu_);
    ++ensure_attempts[device];
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
      if (job.block_formats != 0) block_pass(job, &s);
      stats_[i] = s;
      state_[i] = fail_on_run ? State::Failed : State::Done;
    });
    return true;
  }
  // The device's block pass (launch_block_stats) on the host: the matrices block_pass_of(job)
  // names, each measured by compute_stats with the job's mask and axis (the one source of the
  // per-block math), NVFP4's tensor scale from the slot's amax as the kernel takes it. FP32 data.
  static void block_pass(const StatsJob& job, TensorStats* s) {
    const BlockPass bp = block_pass_of(job);
    StatsOptions opt;
    opt.block_formats = job.block_formats;
    opt.block_axis = job.block_axis;
    opt.tensor_amax = s->amax;
    TensorStats part;
    for (uint64_t b = 0; b < bp.batch; ++b) {
      const auto* x = static_cast<const float*>(job.data) + b * bp.batch_stride;
      compute_stats(x, Format::FP32, job.rows, job.cols, job.ld, opt, &part);
      if (b == 0) {
        s->blocks.axis = part.blocks.axis;
        s->blocks.nvfp4_tensor_scale = part.blocks.nvfp4_tensor_scale;
      }
      s->blocks.merge(part.blocks);
    }
  }
  bool enqueue_scalar(int slot, const ScalarCopy& c, std::string* error) override {
    std::lock_guard<std::mutex> l(mu_);
    if (fail_scalar_copy) {
      *error = "scalar copy refused";
      return false;
    }
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

  int create_watch(int device, uint64_t count, Format dtype, std::string* error) override {
    std::lock_guard<std::mutex> l(mu_);
    ++create_watch_calls;
    if (fail_create_watch) {
      *error = "out of memory (host backend)";
      return -1;
    }
    Watch w;
    w.live = true;
    w.device = device;
    w.snapshot.assign(count, 0.0f);
    if (dtype != Format::FP32) w.scratch.assign(count, 0.0f);
    watches_.push_back(std::move(w));
    return static_cast<int>(watches_.size() - 1);
  }
  void destroy_watch(int, int watch) override {
    std::lock_guard<std::mutex> l(mu_);
    if (watch < 0 || static_cast<size_t>(watch) >= watches_.size()) return;
    Watch& w = watches_[static_cast<size_t>(watch)];
    // The device frees stream-ordered: work already queued for the watch still runs; the
    // memory stays (test double) but the handle is dead for new work.
    w.live = false;
  }
  bool enqueue_watch(int slot, const WatchJob& job, std::string* error) override {
    std::lock_guard<std::mutex> l(mu_);
    if (fail_enqueue) {
      *error = "enqueue refused";
      return false;
    }
    if (job.watch < 0 || static_cast<size_t>(job.watch) >= watches_.size() ||
        !watches_[static_cast<size_t>(job.watch)].live) {
      *error = "unknown watch";
      return false;
    }
    ++watch_jobs;
    const size_t i = slot >= 0 ? idx(job.device, slot) : 0;
    if (slot >= 0) state_[i] = State::Recorded;
    queues_[job.stream].push_back([this, i, job] {
      Watch& w = watches_[static_cast<size_t>(job.watch)];
      std::vector<float> cur(job.count);
      const auto* h = static_cast<const uint16_t*>(job.data);
      for (uint64_t k = 0; k < job.count; ++k)
        cur[k] = job.dtype == Format::FP32   ? static_cast<const float*>(job.data)[k]
                 : job.dtype == Format::BF16 ? decode_storage_t<Format::BF16>(h[k])
                                             : decode_storage_t<Format::FP16>(h[k]);
      if (job.measure) {
        UpdateLoss u;
        for (uint64_t k = 0; k < job.count; ++k) {
          const UpdateLossStep st = update_loss_step(w.snapshot[k], cur[k]);
          u.changed += st.changed;
          accumulate_update_loss(u.bf16, st, 0);
          accumulate_update_loss(u.fp16, st, 1);
          if (st.ratio_bin >= 0) ++u.ratio_hist[st.ratio_bin];
        }
        updates_[i] = u;
        state_[i] = fail_on_run ? State::Failed : State::Done;
      }
      if (job.snapshot) w.snapshot = cur;
    });
    return true;
  }
  const UpdateLoss& update_loss(int device, int slot) const override {
    return updates_[idx(device, slot)];
  }
  // Watches whose resources are held (created, not destroyed).
  int live_watches() {
    std::lock_guard<std::mutex> l(mu_);
    int n = 0;
    for (const Watch& w : watches_) n += w.live ? 1 : 0;
    return n;
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
  std::map<int, int> ensure_calls;     // successful set-ups per device
  std::map<int, int> ensure_attempts;  // every ensure_device call per device
  bool fail_enqueue = false;
  bool fail_scalar_copy = false;  // enqueue_scalar refuses
  bool fail_on_run = false;
  bool fail_create_watch = false;
  uint64_t polls = 0;
  int create_watch_calls = 0;
  int watch_jobs = 0;

 private:
  enum class State { Idle, Recorded, Done, Failed };
  size_t idx(int device, int slot) const { return static_cast<size_t>(device * max_slots_ + slot); }
  int slots_;
  int max_slots_;
  std::vector<int> total_;  // per device: slots in its ring
  std::mutex mu_;
  struct Watch {
    bool live = false;
    int device = 0;
    std::vector<float> snapshot;
    std::vector<float> scratch;
  };
  std::vector<TensorStats> stats_;
  std::vector<UpdateLoss> updates_;
  std::vector<Watch> watches_;
  std::vector<float> scalars_;
  std::vector<State> state_;
  std::map<void*, std::deque<std::function<void()>>> queues_;
};

}  // namespace fpscope::cuda::testing
