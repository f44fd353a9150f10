#include "device_runtime.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>

#include "../src/log.h"
#include "cuda_backend.h"
#include "cupti_hooks.h"
#include "device_watch.h"
#include "settings.h"

namespace fpscope::cuda {
namespace {

struct CallEntry {
  probe::GemmTicket ticket;
  int pending = 0;
};

std::mutex g_calls_mu;
std::unordered_map<uint64_t, CallEntry> g_calls;
uint64_t g_next_cookie = 1;
std::atomic<uint64_t> g_unsupported{0};
std::atomic<uint64_t> g_block_scaled{0};

// Recorder::loss_scale() stamps the CURRENT step; device results arrive later, so the step of the
// kernel launch must be passed explicitly when the recorder offers it (loss_scale_at).
template <typename R>
void record_loss_scale(R* rec, uint64_t step, double scale, bool found_inf, double next) {
  if constexpr (requires(R * r) {
                  r->loss_scale_at(step, scale, found_inf, next, trace::LossScaleSource::Kernel);
                }) {
    rec->loss_scale_at(step, scale, found_inf, next, trace::LossScaleSource::Kernel);
  } else {
    static std::once_flag once;
    std::call_once(once, [&] {
      rec->event(trace::EventLevel::Warning,
                 "cuda: loss-scale records from the kernel carry the step current when they were "
                 "drained, not the step of the kernel (recorder lacks loss_scale_at)");
    });
    rec->loss_scale(scale, found_inf, next, trace::LossScaleSource::Kernel);
  }
}

class RecorderSink : public Sink {
 public:
  void on_stats(const ObsMeta& meta, const TensorStats& stats) override {
    probe::GemmTicket t;
    if (!take(meta.cookie, &t)) return;
    if (probe::Recorder* rec = probe::Recorder::get()) rec->complete(t, meta.operand, stats);
  }
  void on_scalars(const ObsMeta& meta, const float* s) override {
    if (meta.operand != kLossScaleGroup) return;
    if (probe::Recorder* rec = probe::Recorder::get())
      record_loss_scale(rec, meta.step, static_cast<double>(s[0]), s[2] != 0.0f,
                        static_cast<double>(s[1]));
  }
  void on_update_loss(const ObsMeta& meta, const UpdateLoss& loss) override {
    if (meta.operand != kUpdateLossGroup) return;
    if (probe::Recorder* rec = probe::Recorder::get())
      rec->weight_update_at(meta.step, meta.tensor, meta.dtype, meta.elements, loss);
  }
  void on_failed(const ObsMeta& meta, const std::string& what) override {
    FPSCOPE_LOG(Warn, "device statistics lost (step %llu): %s",
                static_cast<unsigned long long>(meta.step), what.c_str());
    if (meta.cookie != 0) abandon_operand(meta.cookie, meta.operand);
  }

  static bool take(uint64_t cookie, probe::GemmTicket* t) {
    std::lock_guard<std::mutex> lock(g_calls_mu);
    auto it = g_calls.find(cookie);
    if (it == g_calls.end()) return false;
    *t = it->second.ticket;
    if (--it->second.pending <= 0) g_calls.erase(it);
    return true;
  }
};

struct Runtime {
  std::unique_ptr<Backend> backend;
  RecorderSink sink;
  std::unique_ptr<Pipeline> pipeline;
};

std::atomic<Runtime*> g_runtime{nullptr};
std::once_flag g_once;
std::atomic<bool> g_shutdown_started{false};
std::atomic<bool> g_forked_child{false};
BackendFactory g_factory = nullptr;

// A forked child has no drain thread (threads do not survive fork) and may not use the parent's
// CUDA state: its CUDA path is off and its exit must not join or poll anything.
void on_fork_child() {
  g_forked_child.store(true, std::memory_order_relaxed);
}

void at_exit_drain() {
  shutdown();
}

}  // namespace

Pipeline* pipeline() {
  if (g_forked_child.load(std::memory_order_relaxed) ||
      g_shutdown_started.load(std::memory_order_acquire))
    return nullptr;
  std::call_once(g_once, [] {
    std::string why;
    auto backend =
        (g_factory != nullptr ? g_factory : make_cuda_backend)(cuda_slots_setting(), &why);
    if (backend == nullptr) {
      FPSCOPE_LOG(Warn, "GPU tensor statistics are off: %s (GEMM signatures are still recorded)",
                  why.c_str());
      if (probe::Recorder* rec = probe::Recorder::get())
        rec->event(trace::EventLevel::Warning, "cuda: tensor statistics off: " + why);
      return;
    }
    auto* rt = new Runtime;  // lives until exit: the drain thread and hooks may use it late
    rt->backend = std::move(backend);
    Pipeline::Options opts;
    opts.max_slots = std::max(kMaxGrownCudaSlots, cuda_slots_setting());
    rt->pipeline = std::make_unique<Pipeline>(rt->backend.get(), &rt->sink, opts);
    rt->pipeline->start_drain_thread(std::chrono::microseconds(500));
    pthread_atfork(nullptr, nullptr, on_fork_child);
    g_runtime.store(rt, std::memory_order_release);
    // The exit drain must run while the program's CUDA contexts still exist and before the
    // recorder closes the trace. atexit handlers run in reverse order of registration, and the
    // program's CUDA runtime registers its teardown (which destroys its primary contexts) during
    // its own initialization, before any GEMM reached us: registered now, ours runs first.
    // register_exit_drain() adds it again after each device's first resources exist (in case the
    // runtime registered more since). The recorder's shutdown hook covers the other order (a
    // recorder created after this has its atexit handler run first): the drain then runs before
    // the trace closes. shutdown() runs once, whichever comes first.
    std::atexit(at_exit_drain);
    probe::Recorder::add_shutdown_hook(at_exit_drain);
  });
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  return rt != nullptr ? rt->pipeline.get() : nullptr;
}

Backend* backend() {
  if (pipeline() == nullptr) return nullptr;
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  return rt != nullptr ? rt->backend.get() : nullptr;
}

void set_backend_factory_for_testing(BackendFactory factory) {
  g_factory = factory;
}

void register_exit_drain() {
  std::atexit(at_exit_drain);
}

void shutdown() {
  Runtime* rt = g_runtime.load(std::memory_order_acquire);
  if (rt == nullptr || g_forked_child.load(std::memory_order_relaxed)) return;
  if (g_shutdown_started.exchange(true, std::memory_order_acq_rel)) return;
  probe::HookGuard guard;  // nothing the exit drain does is application work
  Pipeline* p = rt->pipeline.get();
  // The drain thread stops first: from here on this thread alone polls, until the deadline.
  p->stop_drain_thread();
  const bool all = p->flush(std::chrono::milliseconds(drain_ms_setting()));
  const Counters c = p->counters();
  const CuptiCounters k = cupti_counters();
  FPSCOPE_LOG(Info,
              "cuda exit: %llu observations delivered, %llu skipped (capture), %llu skipped (ring "
              "full), %llu failed, %llu unsupported, %llu still in flight",
              static_cast<unsigned long long>(c.delivered),
              static_cast<unsigned long long>(c.skipped_capture),
              static_cast<unsigned long long>(c.skipped_ring_full),
              static_cast<unsigned long long>(c.failed),
              static_cast<unsigned long long>(g_unsupported.load()),
              static_cast<unsigned long long>(c.in_flight));
  probe::Recorder* rec = probe::Recorder::get();
  if (rec == nullptr) return;
  auto say = [&](uint64_t n, const char* what) {
    if (n == 0) return;
    rec->event(trace::EventLevel::Warning,
               "cuda: " + std::to_string(n) + " GEMM operand observations skipped: " + what);
  };
  say(c.skipped_capture, "stream was capturing a CUDA graph");
  say(c.skipped_ring_full, "all result slots in flight (raise FPSCOPE_CUDA_SLOTS)");
  say(c.failed, "device work failed");
  if (c.failed_devices != 0)
    rec->event(trace::EventLevel::Warning, "cuda: result slots could not be set up on " +
                                               std::to_string(c.failed_devices) +
                                               " device(s): no statistics from them (not retried)");
  say(g_unsupported.load(), "operand type or layout not readable by the stats kernels");
  say(g_block_scaled.load(),
      "block-scaled operand: not measured (FP8 with a cuBLASLt block scale mode)");
  if (c.slots_added != 0)
    rec->event(trace::EventLevel::Info, "cuda: result ring grew to " + std::to_string(c.max_slots) +
                                            " slots (a step needed more than FPSCOPE_CUDA_SLOTS)");
  if (c.grow_failed != 0)
    rec->event(trace::EventLevel::Warning,
               "cuda: the result ring could not grow on " + std::to_string(c.grow_failed) +
                   " device(s) (device or pinned memory): observations beyond it were skipped");
  const WatchCounters w = device_watch_counters();
  if (w.skipped != 0)
    rec->event(trace::EventLevel::Warning,
               "cuda: " + std::to_string(w.skipped) +
                   " master-weight updates of device watches not recorded (see the first "
                   "warning of each watch)");
  if (k.unknown_abi_kernels != 0)
    rec->event(trace::EventLevel::Warning,
               "cuda: " + std::to_string(k.unknown_abi_kernels) +
                   " loss-scale kernels with an unknown signature were not recorded");
  if (!all)
    rec->event(trace::EventLevel::Warning,
               "cuda: " + std::to_string(c.in_flight) + " results still on the device at exit");
}

uint64_t register_call(const probe::GemmTicket& ticket, int operands) {
  std::lock_guard<std::mutex> lock(g_calls_mu);
  const uint64_t cookie = g_next_cookie++;
  g_calls.emplace(cookie, CallEntry{ticket, operands});
  return cookie;
}

void abandon_operand(uint64_t cookie, int operand) {
  probe::GemmTicket t;
  if (!RecorderSink::take(cookie, &t)) return;
  if (probe::Recorder* rec = probe::Recorder::get()) rec->abandon(t, operand);
}

void count_unsupported_operand() {
  g_unsupported.fetch_add(1, std::memory_order_relaxed);
}
uint64_t unsupported_operands() {
  return g_unsupported.load(std::memory_order_relaxed);
}
void count_block_scaled_operand() {
  g_block_scaled.fetch_add(1, std::memory_order_relaxed);
}
uint64_t block_scaled_operands() {
  return g_block_scaled.load(std::memory_order_relaxed);
}

}  // namespace fpscope::cuda
