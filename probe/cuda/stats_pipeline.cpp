#include "stats_pipeline.h"

#include <algorithm>

#include "settings.h"

namespace fpscope::cuda {

BlockPass block_pass_of(const StatsJob& job) {
  BlockPass p;
  if (job.batch > 1 && job.batch_stride > 0) {
    p.batch = job.batch;
    p.batch_stride = static_cast<uint64_t>(job.batch_stride);
  }
  return p;
}

namespace {
constexpr int kTicketShift = 20;  // ticket = device << 20 | slot (slots per device < 2^20)
static_assert(kMaxCudaSlots < (1 << kTicketShift), "FPSCOPE_CUDA_SLOTS' cap breaks the tickets");
thread_local bool t_drain_thread = false;
}  // namespace

bool on_drain_thread() {
  return t_drain_thread;
}

Pipeline::Pipeline(Backend* backend, Sink* sink, Options options)
    : backend_(backend), sink_(sink), options_(options) {}

Pipeline::~Pipeline() {
  stop_drain_thread();
}

int Pipeline::acquire(int device, std::string* error) {
  if (device < 0) return -1;
  const auto d = static_cast<size_t>(device);
  if (d >= device_ready_.size()) {
    device_ready_.resize(d + 1, false);
    free_.resize(d + 1);
    device_failed_.resize(d + 1);
    total_.resize(d + 1, 0);
    grow_wanted_.resize(d + 1, 0);
    grow_failed_.resize(d + 1, 0);
  }
  if (!device_failed_[d].empty()) {
    *error = device_failed_[d];
    return -2;
  }
  if (!device_ready_[d]) {
    if (!backend_->ensure_device(device, error)) {
      device_failed_[d] =
          error->empty() ? "device " + std::to_string(device) + " set-up failed" : *error;
      ++counters_.failed_devices;
      return -2;
    }
    // A backend offering more slots than the tickets can name gets only as many as they can.
    const int n = std::min(backend_->slots_per_device(), (1 << kTicketShift) - 1);
    free_[d].clear();
    for (int s = n - 1; s >= 0; --s) free_[d].push_back(s);
    total_[d] = n;
    counters_.max_slots = std::max<uint64_t>(counters_.max_slots, static_cast<uint64_t>(n));
    device_ready_[d] = true;
  }
  int slot = -1;
  if (!free_[d].empty()) {
    slot = free_[d].back();
    free_[d].pop_back();
  }
  // Low water: a quarter of the ring free (or less) asks the drain thread for more.
  if (free_[d].size() <= static_cast<size_t>(total_[d] / 4) && !grow_failed_[d] &&
      total_[d] < options_.max_slots)
    grow_wanted_[d] = 1;
  return slot;
}

void Pipeline::release(int device, int slot) {
  free_[static_cast<size_t>(device)].push_back(slot);
}

Submit Pipeline::submit_stats(const StatsJob& job, const ObsMeta& meta, std::string* error) {
  std::string err;
  if (backend_->stream_capturing(job.stream)) {
    std::lock_guard<std::mutex> lock(mu_);
    ++counters_.skipped_capture;
    return Submit::Capturing;
  }
  std::lock_guard<std::mutex> lock(mu_);
  const int slot = acquire(job.device, &err);
  if (slot < 0) {
    if (slot == -1) {
      ++counters_.skipped_ring_full;
      return Submit::RingFull;
    }
    ++counters_.failed;
    if (error != nullptr) *error = err;
    return Submit::Failed;
  }
  // Enqueued under the lock so that submission order in in_flight_ matches stream order.
  if (!backend_->enqueue_stats(slot, job, &err)) {
    release(job.device, slot);
    ++counters_.failed;
    if (error != nullptr) *error = err;
    return Submit::Failed;
  }
  in_flight_.push_back({.device = job.device, .slot = slot, .meta = meta});
  ++counters_.submitted;
  return Submit::Ok;
}

bool Pipeline::prepare_device(int device, std::string* error) {
  std::string err;
  std::lock_guard<std::mutex> lock(mu_);
  const int slot = acquire(device, &err);
  if (slot >= 0) {
    release(device, slot);
    return true;
  }
  if (slot == -1 && device >= 0) return true;  // ready, every slot in flight
  if (error != nullptr) *error = device < 0 ? "device " + std::to_string(device) : err;
  return false;
}

Submit Pipeline::submit_watch(const WatchJob& job, const ObsMeta& meta, std::string* error) {
  std::string err;
  if (backend_->stream_capturing(job.stream)) return Submit::Capturing;
  std::lock_guard<std::mutex> lock(mu_);
  int slot = -1;
  if (job.measure) {
    slot = acquire(job.device, &err);
    if (slot == -1) return Submit::RingFull;
    if (slot < 0) {
      if (error != nullptr) *error = err;
      return Submit::Failed;
    }
  }
  if (!backend_->enqueue_watch(slot, job, &err)) {
    if (slot >= 0) release(job.device, slot);
    if (error != nullptr) *error = err;
    return Submit::Failed;
  }
  if (slot >= 0) {
    in_flight_.push_back({.update = true, .device = job.device, .slot = slot, .meta = meta});
    ++counters_.submitted;
  }
  return Submit::Ok;
}

int Pipeline::open_scalars(int device, void* stream, const ObsMeta& meta, Submit* why) {
  std::string err;
  auto say = [&](Submit s) {
    if (why != nullptr) *why = s;
  };
  if (backend_->stream_capturing(stream)) {
    std::lock_guard<std::mutex> lock(mu_);
    ++counters_.skipped_capture;
    say(Submit::Capturing);
    return -1;
  }
  std::lock_guard<std::mutex> lock(mu_);
  const int slot = acquire(device, &err);
  if (slot < 0) {
    if (slot == -1) {
      ++counters_.skipped_ring_full;
      say(Submit::RingFull);
    } else {
      ++counters_.failed;
      say(Submit::Failed);
    }
    return -1;
  }
  in_flight_.push_back(
      {.scalars = true, .open = true, .device = device, .slot = slot, .meta = meta});
  say(Submit::Ok);
  return device << kTicketShift | slot;
}

bool Pipeline::copy_scalar(int ticket, const ScalarCopy& copy) {
  if (ticket < 0) return false;
  const int device = ticket >> kTicketShift;
  const int slot = ticket & ((1 << kTicketShift) - 1);
  std::string err;
  if (backend_->enqueue_scalar(slot, copy, &err)) return true;
  // The slot would keep an earlier group's value at this index: the group must not be delivered.
  // It stays in flight until its event passes (copies already enqueued still write the slot).
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find_if(in_flight_.begin(), in_flight_.end(), [&](const InFlight& f) {
    return f.scalars && f.open && f.device == device && f.slot == slot;
  });
  if (it != in_flight_.end()) it->copy_failed = true;
  return false;
}

void Pipeline::close_scalars(int ticket, void* stream) {
  if (ticket < 0) return;
  const int device = ticket >> kTicketShift;
  const int slot = ticket & ((1 << kTicketShift) - 1);
  std::string err;
  const bool ok = backend_->enqueue_event(device, slot, stream, &err);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find_if(in_flight_.begin(), in_flight_.end(), [&](const InFlight& f) {
    return f.scalars && f.open && f.device == device && f.slot == slot;
  });
  if (it == in_flight_.end()) return;
  if (!ok) {
    release(device, slot);
    in_flight_.erase(it);
    ++counters_.failed;
    return;
  }
  it->open = false;
  ++counters_.submitted;
}

size_t Pipeline::drain() {
  std::lock_guard<std::mutex> drain_lock(drain_mu_);
  std::vector<InFlight> snapshot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot = in_flight_;
  }
  size_t delivered = 0;
  for (const InFlight& f : snapshot) {
    if (f.open) continue;
    const Poll p = backend_->poll(f.device, f.slot);
    if (p == Poll::Pending) continue;
    const bool ok = p == Poll::Ready && !f.copy_failed;
    // The slot stays ours until released below: reading it outside mu_ is safe.
    if (ok) {
      if (f.scalars) {
        sink_->on_scalars(f.meta, backend_->scalars(f.device, f.slot));
      } else if (f.update) {
        sink_->on_update_loss(f.meta, backend_->update_loss(f.device, f.slot));
      } else {
        sink_->on_stats(f.meta, backend_->stats(f.device, f.slot));
      }
    } else {
      sink_->on_failed(f.meta, f.scalars  ? "loss-scale copy failed"
                               : f.update ? "update-loss kernel failed"
                                          : "stats kernel failed");
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(in_flight_.begin(), in_flight_.end(), [&](const InFlight& g) {
      return g.device == f.device && g.slot == f.slot && !g.open;
    });
    if (it != in_flight_.end()) in_flight_.erase(it);
    release(f.device, f.slot);
    if (ok) {
      ++counters_.delivered;
      ++delivered;
    } else {
      ++counters_.failed;
    }
  }
  return delivered;
}

size_t Pipeline::grow_rings() {
  size_t added = 0;
  for (int device = 0;; ++device) {
    int have = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (static_cast<size_t>(device) >= grow_wanted_.size()) break;
      if (!grow_wanted_[static_cast<size_t>(device)]) continue;
      have = total_[static_cast<size_t>(device)];
    }
    // Outside mu_: the allocation may take milliseconds and submissions go on meanwhile.
    const int want = std::min(have, std::min(options_.max_slots, (1 << kTicketShift) - 1) - have);
    std::string err;
    const int first = want > 0 ? backend_->add_slots(device, want, &err) : -1;
    std::lock_guard<std::mutex> lock(mu_);
    const auto d = static_cast<size_t>(device);
    grow_wanted_[d] = 0;
    if (want <= 0) continue;  // at the cap: nothing to add, nothing failed
    if (first < 0) {
      grow_failed_[d] = 1;
      ++counters_.grow_failed;
      continue;
    }
    for (int s = first + want - 1; s >= first; --s) free_[d].push_back(s);
    total_[d] += want;
    counters_.slots_added += static_cast<uint64_t>(want);
    counters_.max_slots = std::max<uint64_t>(counters_.max_slots, static_cast<uint64_t>(total_[d]));
    added += static_cast<size_t>(want);
  }
  return added;
}

bool Pipeline::flush(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    drain();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (in_flight_.empty()) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void Pipeline::start_drain_thread(std::chrono::microseconds period) {
  std::lock_guard<std::mutex> lock(thread_mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this, period] {
    t_drain_thread = true;
    std::unique_lock<std::mutex> l(thread_mu_);
    while (!stop_) {
      l.unlock();
      drain();
      grow_rings();
      l.lock();
      thread_cv_.wait_for(l, period, [this] { return stop_; });
    }
  });
}

void Pipeline::stop_drain_thread() {
  {
    std::lock_guard<std::mutex> lock(thread_mu_);
    stop_ = true;
  }
  thread_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Counters Pipeline::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  Counters c = counters_;
  c.in_flight = in_flight_.size();
  return c;
}

}  // namespace fpscope::cuda
