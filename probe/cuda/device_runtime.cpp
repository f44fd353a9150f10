#include "device_runtime.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>

#include "../src/log.h"
#include "cuda_backend.h"

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

long env_long(const char* name, long def) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return def;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || x <= 0) {
    FPSCOPE_LOG(Warn, "%s=%s is not a positive integer: using %ld", name, v, def);
    return def;
  }
  return x;
}

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

Runtime* g_runtime = nullptr;
std::once_flag g_once;

}  // namespace

Pipeline* pipeline() {
  std::call_once(g_once, [] {
    std::string why;
    auto backend = make_cuda_backend(static_cast<int>(env_long("FPSCOPE_CUDA_SLOTS", 256)), &why);
    if (backend != nullptr && !stats_kernels_built()) {
      FPSCOPE_LOG(Warn,
                  "GPU tensor statistics are off: this probe was built without the CUDA "
                  "stats kernels (GEMM signatures and loss scales are still recorded)");
      if (probe::Recorder* rec = probe::Recorder::get())
        rec->event(trace::EventLevel::Warning, "cuda: probe built without the CUDA stats kernels");
    }
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
    const char* graphs = std::getenv("FPSCOPE_CUDA_GRAPHS");
    opts.allow_capture = graphs != nullptr && graphs[0] == '1';
    rt->pipeline = std::make_unique<Pipeline>(rt->backend.get(), &rt->sink, opts);
    rt->pipeline->start_drain_thread(std::chrono::microseconds(500));
    g_runtime = rt;
  });
  return g_runtime != nullptr ? g_runtime->pipeline.get() : nullptr;
}

void shutdown() {
  if (g_runtime == nullptr) return;
  Pipeline* p = g_runtime->pipeline.get();
  const long ms = env_long("FPSCOPE_CUDA_DRAIN_MS", 2000);
  const bool all = p->flush(std::chrono::milliseconds(ms));
  p->stop_drain_thread();
  const Counters c = p->counters();
  probe::Recorder* rec = probe::Recorder::get();
  if (rec == nullptr) return;
  auto say = [&](uint64_t n, const char* what) {
    if (n == 0) return;
    rec->event(trace::EventLevel::Warning,
               "cuda: " + std::to_string(n) + " GEMM operand observations skipped: " + what);
  };
  say(c.skipped_capture, "stream was capturing a CUDA graph (FPSCOPE_CUDA_GRAPHS=1 records them)");
  say(c.skipped_ring_full, "all result slots in flight (raise FPSCOPE_CUDA_SLOTS)");
  say(c.failed, "device work failed");
  say(g_unsupported.load(), "operand type or layout not readable by the stats kernels");
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

}  // namespace fpscope::cuda
