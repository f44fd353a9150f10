#include "device_watch.h"

#include <atomic>
#include <memory>
#include <utility>

#include "../src/log.h"
#include "../src/recorder.h"
#include "cuda_backend.h"
#include "device_runtime.h"

namespace fpscope::cuda {

DeviceWatches::~DeviceWatches() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, e] : watches_) backend_->destroy_watch(e.device, e.handle);
  watches_.clear();
}

WatchStatus DeviceWatches::watch(const std::string& name, const void* ptr, uint64_t count,
                                 Format dtype, int device, void* stream) {
  if (name.empty() || ptr == nullptr || count == 0 || device < 0 ||
      (dtype != Format::FP32 && dtype != Format::BF16 && dtype != Format::FP16))
    return WatchStatus::BadArgument;
  std::lock_guard<std::mutex> lock(mu_);
  if (failed_devices_.count(device) != 0) {  // reported once already: no retry
    ++counters_.refused;
    return WatchStatus::Refused;
  }
  std::string err;
  if (!pipeline_->prepare_device(device, &err)) {
    failed_devices_.insert(device);
    ++counters_.refused;
    host_->warn("cuda: watch('" + name + "'): device " + std::to_string(device) +
                " has no result slots (" + err + "); device watches on it are off");
    return WatchStatus::Refused;
  }
  Entry e;
  if (!host_->define(name, count, dtype, device, &e.tensor)) {
    ++counters_.refused;
    return WatchStatus::Refused;
  }
  e.handle = backend_->create_watch(device, count, dtype, &err);
  if (e.handle < 0) {
    ++counters_.refused;
    host_->warn("cuda: watch('" + name + "'): " + err + "; not watched");
    return WatchStatus::Refused;
  }
  e.device = device;
  e.ptr = ptr;
  e.count = count;
  e.dtype = dtype;
  e.stream = stream;
  auto old = watches_.find(name);
  if (old != watches_.end()) {
    backend_->destroy_watch(old->second.device, old->second.handle);
    watches_.erase(old);
  }
  Entry& w = watches_.emplace(name, e).first->second;
  // First snapshot now: the next boundary records the update of the current step.
  submit_locked(name, w, 0, false, true);
  return WatchStatus::Ok;
}

bool DeviceWatches::unwatch(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = watches_.find(name);
  if (it == watches_.end()) return false;
  backend_->destroy_watch(it->second.device, it->second.handle);
  watches_.erase(it);
  return true;
}

void DeviceWatches::on_step(uint64_t ending, uint64_t /*next*/, bool next_sampled) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, e] : watches_) {
    if (!e.have_prev && !next_sampled) continue;
    submit_locked(name, e, ending, e.have_prev, next_sampled);
  }
}

void DeviceWatches::submit_locked(const std::string& name, Entry& e, uint64_t ending, bool measure,
                                  bool snapshot) {
  WatchJob job;
  job.device = e.device;
  job.watch = e.handle;
  job.stream = e.stream;
  job.data = e.ptr;
  job.dtype = e.dtype;
  job.count = e.count;
  job.measure = measure;
  job.snapshot = snapshot;
  ObsMeta meta;
  meta.operand = kUpdateLossGroup;
  meta.tensor = e.tensor;
  meta.step = ending;
  meta.stream = reinterpret_cast<uint64_t>(e.stream);
  meta.device = e.device;
  meta.dtype = e.dtype;
  meta.elements = e.count;
  std::string err;
  Submit r = pipeline_->submit_watch(job, meta, &err);
  if (r == Submit::RingFull) {  // no slot for the result: keep the snapshot going at least
    skipped_locked(name, e, ending, "all result slots in flight (raise FPSCOPE_CUDA_SLOTS)");
    job.measure = false;
    r = snapshot ? pipeline_->submit_watch(job, meta, &err) : Submit::Ok;
  } else if (r != Submit::Ok && measure) {
    skipped_locked(name, e, ending,
                   r == Submit::Capturing ? "the stream was capturing a CUDA graph" : err);
  }
  if (r == Submit::Ok && (measure || snapshot)) ++counters_.boundaries;
  e.have_prev = r == Submit::Ok && snapshot;
}

void DeviceWatches::skipped_locked(const std::string& name, Entry& e, uint64_t ending,
                                   const std::string& why) {
  ++counters_.skipped;
  if (e.skip_reported) return;
  e.skip_reported = true;
  host_->warn("cuda: watch('" + name + "'): the update of step " + std::to_string(ending) +
              " was not recorded: " + why + " (later ones are counted at exit)");
}

WatchCounters DeviceWatches::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  WatchCounters c = counters_;
  c.watches = watches_.size();
  return c;
}

// ---------------------------------------------------------------------------------------------

namespace {

class RecorderHost final : public WatchHost {
 public:
  bool define(const std::string& name, uint64_t count, Format dtype, int device,
              uint32_t* tensor) override {
    probe::Recorder* rec = probe::Recorder::get();
    return rec != nullptr && rec->define_watch(name, count, dtype, device, tensor);
  }
  void warn(const std::string& text) override {
    FPSCOPE_LOG(Warn, "%s", text.c_str());
    if (probe::Recorder* rec = probe::Recorder::get()) rec->event(trace::EventLevel::Warning, text);
  }
};

std::once_flag g_once;
std::atomic<DeviceWatches*> g_watches{nullptr};

void on_step_boundary(uint64_t ending, uint64_t next, bool next_sampled) {
  DeviceWatches* w = g_watches.load(std::memory_order_acquire);
  // pipeline(): nullptr in a forked child and after the exit drain began: no device work then.
  if (w != nullptr && pipeline() != nullptr) w->on_step(ending, next, next_sampled);
}

// The process's watches, created with the first device watch (nullptr: no device statistics).
DeviceWatches* watches() {
  Pipeline* p = pipeline();
  if (p == nullptr) return nullptr;
  std::call_once(g_once, [p] {
    static RecorderHost host;
    // Lives until exit: the step hook and the drain may use it late.
    g_watches.store(new DeviceWatches(p, backend(), &host), std::memory_order_release);
    probe::Recorder::add_step_hook(on_step_boundary);
  });
  return g_watches.load(std::memory_order_acquire);
}

}  // namespace

WatchStatus watch_device(const std::string& name, const void* ptr, uint64_t count, Format dtype,
                         int device, void* stream) {
  if (name.empty() || ptr == nullptr || count == 0 || device < 0 ||
      (dtype != Format::FP32 && dtype != Format::BF16 && dtype != Format::FP16))
    return WatchStatus::BadArgument;
  if (probe::Recorder::get() == nullptr) return WatchStatus::Ok;  // recording off: a no-op
  probe::HookGuard guard;  // the snapshot's device work is not the program's
  DeviceWatches* w = watches();
  if (w == nullptr) return WatchStatus::Unavailable;
  return w->watch(name, ptr, count, dtype, device, stream);
}

bool unwatch_device(const std::string& name) {
  DeviceWatches* w = g_watches.load(std::memory_order_acquire);
  if (w == nullptr || pipeline() == nullptr) return false;
  probe::HookGuard guard;
  return w->unwatch(name);
}

WatchCounters device_watch_counters() {
  DeviceWatches* w = g_watches.load(std::memory_order_acquire);
  return w != nullptr ? w->counters() : WatchCounters{};
}

}  // namespace fpscope::cuda
