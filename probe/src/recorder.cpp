// The recorder: the ticket API, the trace writer's lifecycle, fork and exit, and the wiring of its
// parts: step_labeler.h (which step and name each call gets), held_calls.h (what waits for the
// labeler), tensor_table.h (tensor identities), output_claim.h (which process writes a path),
// weight_watch.h (host master weights), step_hooks.h, trace_metadata.h.
// Size: ~810 lines after the split of issue 14, the deferred definitions of batched host calls
// (issue 15), the deferred watch updates (the statistics helper), the one-call framework
// boundary and the exit warning of a run no GEMM reached; what is left is the wiring, which reads
// best in one place (the next part to move out: the writer's lifecycle).
#include "recorder.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config.h"
#include "fp8_scales.h"
#include "fpscope/run_env.h"
#include "fpscope/trace_io.h"
#include "gemm_runs.h"
#include "grad_names.h"
#include "held_calls.h"
#include "log.h"
#include "output_claim.h"
#include "stats_helper.h"
#include "step_hooks.h"
#include "step_labeler.h"
#include "tensor_table.h"
#include "trace_metadata.h"
#include "weight_watch.h"

namespace fpscope::probe {

using trace::StepSource;

namespace {

thread_local int t_guard_depth = 0;
thread_local std::vector<std::string> t_scopes;

std::atomic<Recorder*> g_recorder{nullptr};
std::once_flag g_init_once;

// Whether an operand is measured at all (FPSCOPE_OPS roles, empty matrices).
bool measured(const Config& cfg, const OperandDesc& o) {
  return cfg.role_enabled(o.role) && o.rows != 0 && o.cols != 0;
}

}  // namespace

// The recorder's state; it is the step labeler's listener: what the labeler decides about steps
// becomes step marks, tensor definitions and observations here.
namespace {
std::atomic<bool> g_shutdown_started{false};  // Recorder::shutdown() has begun
}  // namespace

struct Recorder::Impl final : StepLabeler::Listener {
  explicit Impl(Config c) : cfg(std::move(c)), labeler({cfg.steps, cfg.period_window}), fp8(cfg) {}

  Config cfg;
  std::mutex mu;
  std::unique_ptr<trace::TraceWriter> writer;
  bool open_attempted = false;
  bool closed = false;
  bool failed_warned = false;
  std::string path;
  long pid = 0;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  OutputClaim claim;
  PathSnapshot path_at_start;  // to tell a stale trace from a sibling's one at exit

  uint64_t next_seq = 0;
  bool said_not_measured = false;  // a warning event "not measured: ..." (fpscope_warning)

  StepLabeler labeler;
  HeldCalls held;  // the labeler's held calls and records; released calls' late statistics
  struct {
    const GemmDesc* desc = nullptr;
    uint64_t seq = 0;
    uint64_t time_ns = 0;
  } feeding;  // the call being fed to the labeler (call_held)

  TensorTable tensors;
  // Tensors of a batch_open call not defined yet, by seq: defined by end_batch() (recorder.h).
  struct Undefined {
    std::string label, scope;
    GemmDesc desc;
  };
  std::unordered_map<uint64_t, Undefined> undefined;
  // "<path>.dgrad" / ".wgrad" for the backward GEMMs of a module, and "gemm#k.dgrad" /
  // "gemm#k.wgrad" for unscoped ones (numpy, --no-python-hooks), by the buffers they read.
  GradNamer grads{true};
  Fp8Scales fp8;  // fed by every emitted amax
  HostWatches watches;
  StepHooks step_hooks;  // live step boundaries, queued under mu, run after it is released

  uint64_t now() const {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count());
  }
  bool sampled(uint64_t s) const { return s % cfg.every == 0; }
  // Callers hold mu (Recorder::scopes_wanted says what it means).
  bool scopes_wanted(uint64_t s) const {
    if (cfg.emulate != Format::FP32) return true;
    // Only the framework's own steps are the integration's to leave unnamed: under the GEMM
    // period the scope is part of every call's signature, and other sources' boundaries (NVTX,
    // the API) do not fall where the integration turns its hooks on and off.
    if (labeler.source() != trace::StepSource::Framework) return true;
    return sampled(s);
  }
  FrameworkState framework_state(bool moved) const {
    const uint64_t s = labeler.step();
    return FrameworkState{s, moved, scopes_wanted(s), scopes_wanted(s + 1)};
  }
  // Recorder::loss_at, under mu with the writer open.
  void loss_locked(uint64_t step, double value) {
    if (step == UINT64_MAX && labeler.holding()) {
      // The step of a value "now" is not known while the GEMM period is being detected.
      static std::atomic<bool> said{false};
      if (!said.exchange(true))
        FPSCOPE_LOG(Info, "loss values are not recorded while steps come from the GEMM period");
      return;
    }
    trace::LossRecord r;
    r.step = step == UINT64_MAX ? labeler.step() : step;
    r.value = value;
    r.time_ns = now();
    writer->loss(r);
    check_writer();
  }

  void event_locked(trace::EventLevel level, const std::string& text);
  GemmTicket begin_gemm_locked(const GemmDesc& d);

  // ---- writer lifecycle (callers hold mu) ----
  bool ensure_writer() {
    if (closed) return false;
    if (writer) return true;
    if (open_attempted) return false;
    open_attempted = true;
    path = claim.claim_or_sibling(trace::expand_output_path(cfg.output, pid), pid);
    if (path.empty()) {
      disable_locked();
      return false;
    }
    std::string err;
    trace::WriterOptions wo;
    wo.flush_bytes = cfg.flush_bytes;
    wo.flush_ms = cfg.flush_ms;
    wo.zstd = cfg.zstd;
    writer = trace::TraceWriter::open(path, trace_metadata(cfg, pid), wo, &err);
    if (!writer) {
      log(LogLevel::Warn, "cannot write the trace (%s); recording disabled, the program runs on",
          err.c_str());
      disable_locked();
      return false;
    }
    FPSCOPE_LOG(Info, "recording to %s", path.c_str());
    return true;
  }
  void check_writer() {
    if (writer && !writer->ok()) {
      if (!failed_warned) {
        failed_warned = true;
        log(LogLevel::Warn,
            "writing the trace failed (%s); recording disabled, the program runs on",
            writer->error().c_str());
      }
      disable_locked();
    }
  }
  // A step boundary from `source` (mark_step, framework_boundary); the caller runs the step
  // hooks it queued once mu is released.
  void mark_locked(trace::StepSource source) {
    if (ensure_writer() && labeler.mark(source, next_seq, *this)) check_writer();
  }
  // At the end of a run that went through steps with not one GEMM reaching the hooks: say so on
  // stderr and in the trace, for a user would otherwise read an empty trace as a clean run.
  void warn_if_no_gemm_locked() {
    if (next_seq != 0 || labeler.step() == 0 || !writer || said_not_measured) return;
    std::string text =
        "no matrix multiply reached the probe in steps 0.." + std::to_string(labeler.step()) +
        ", so no tensor was measured: the program does none, or runs them where the probe has no "
        "hook (oneDNN/mkldnn, which runs PyTorch's CPU convolutions and bfloat16 CPU matmuls, "
        "torch.autocast(\"cpu\") included; a statically linked BLAS)";
    if (!cfg.ops.empty()) text += ", or FPSCOPE_OPS left them out";
    log(LogLevel::Warn, "%s", text.c_str());
    trace::EventRecord e;
    e.step = labeler.step();
    e.time_ns = now();
    e.level = trace::EventLevel::Warning;
    e.text = std::move(text);
    writer->event(e);
  }
  void disable_locked() {
    closed = true;
    g_recorder.store(nullptr, std::memory_order_release);
    labeler.drop_held();
    held.clear();
    undefined.clear();
  }

  // Fills ticket tensors for a labelled call; returns whether anything is sampled. `defer`: a
  // tensor not defined yet is left kUnresolved for end_batch() to define.
  bool resolve(const std::string& labelled, const std::string& scope, const GemmDesc& d, uint64_t s,
               GemmTicket* t, bool defer = false) {
    t->step = s;
    t->any = false;
    if (!sampled(s)) return false;  // a step is sampled whole: its GradNamer state too
    const std::string lab = grads.name(labelled, scope, d, s);
    for (int i = 0; i < d.num_operands; ++i) {
      const OperandDesc& o = d.operands[i];
      if (!measured(cfg, o)) continue;
      t->sampled[i] = true;
      t->any = true;
      if (!defer) {
        t->tensor[i] = tensors.gemm_operand(*writer, lab, scope, d, o);
      } else if (const std::optional<uint32_t> known = tensors.find_gemm_operand(lab, d, o)) {
        t->tensor[i] = *known;
      } else {
        undefined.insert_or_assign(t->seq, Undefined{lab, scope, d});
      }
    }
    return t->any;
  }

  void emit(const StatsTarget& to, const TensorStats& stats, std::span<const float> sketch) {
    fp8.observe(to.tensor, stats.amax);
    trace::Observation obs;
    obs.tensor = to.tensor;
    obs.step = to.step;
    obs.seq = to.seq;
    obs.stream = to.stream;
    obs.time_ns = to.time_ns;
    obs.stats = stats;
    obs.sketch.assign(sketch.begin(), sketch.end());
    writer->observe(obs);
  }

  // A watch's update-loss pass on the statistics helper (stats_helper.h), written when it is
  // done (a late record: analysis keys weight updates by their step). Under mu: never waits for
  // the helper (its job takes mu). False (p untouched) when the helper cannot take it.
  bool defer_update(PendingUpdate& p) {
    StatsHelper* h = StatsHelper::get();
    if (h == nullptr || g_shutdown_started.load()) return false;  // closing: written now
    auto job = std::make_shared<PendingUpdate>(std::move(p));
    const uint64_t bytes = 2 * job->watched * sizeof(float);
    if (h->post(this, bytes, [this, job] {
          try {
            const trace::WeightUpdateRecord r = job->measure();
            std::lock_guard<std::mutex> lock(mu);
            if (!closed && writer) {
              writer->weight_update(r);
              check_writer();
            }
          } catch (const std::exception& e) {
            log(LogLevel::Error, "weight update of tensor %u, step %llu, lost: %s", job->tensor,
                static_cast<unsigned long long>(job->step), e.what());
          }
        }))
      return true;
    p = std::move(*job);
    return false;
  }

  // ---- the step labeler's decisions (StepLabeler::Listener; called under mu) ----
  void call_held(size_t) override {
    bool awaited[kMaxOperands] = {};  // every operand until the sampling is known
    for (int i = 0; i < feeding.desc->num_operands; ++i)
      awaited[i] = measured(cfg, feeding.desc->operands[i]);
    held.hold(feeding.seq, feeding.time_ns, *feeding.desc, awaited);
  }

  void step_begins(const StepLabeler::StepStart& s) override {
    switch (s.at) {
      case StepLabeler::StepStart::At::Live:  // the update the ending step made, hooks, mark
        watches.boundary(
            s.step - 1, sampled(s.step),
            [this](const trace::WeightUpdateRecord& r) { writer->weight_update(r); },
            cfg.stats_helper ? std::function<bool(PendingUpdate &&)>(
                                   [this](PendingUpdate&& p) { return defer_update(p); })
                             : nullptr);
        step_hooks.queue(s.step - 1, s.step, sampled(s.step));
        writer->step(trace::StepMark{s.step, s.source, now(), s.first_seq});
        return;
      case StepLabeler::StepStart::At::HeldCall:
        writer->step(trace::StepMark{s.step, s.source, held.time_ns(s.held), held.seq(s.held)});
        return;
      case StepLabeler::StepStart::At::RunStart:
        if (writer) writer->step(trace::StepMark{0, s.source, 0, 0});
        return;
    }
  }

  // Emits what is complete of a released call; the rest waits (HeldCalls::take_late).
  void call_released(size_t index, uint64_t step, const std::string& name,
                     const std::string& scope) override {
    GemmTicket t;
    t.seq = held.seq(index);
    resolve(name, scope, held.desc(index), step, &t);
    held.release(index, t.tensor, step,
                 [this](const StatsTarget& to, const TensorStats& stats,
                        std::span<const float> sketch) { emit(to, stats, sketch); });
  }

  void record_released(size_t index, uint64_t step) override {
    HeldRecord& r = held.record(index);
    if (r.is_event) {
      r.event.step = step;
      writer->event(r.event);
    } else {
      r.loss_scale.step = step;
      writer->loss_scale(r.loss_scale);
    }
  }

  void released_all() override {
    held.clear_held();
    check_writer();
  }

  void warning(const std::string& text) override { event_locked(trace::EventLevel::Warning, text); }

  bool define_watch_locked(const std::string& name, uint64_t count, Format dtype, int32_t device,
                           uint32_t* tensor);
};

// ---------------------------------------------------------------------------------------------

namespace {

void at_exit_handler() {
  Recorder::shutdown();
}

Recorder::Impl* g_impl = nullptr;  // never freed: hooks may run during and after exit

void atfork_prepare() {
  if (g_impl) g_impl->mu.lock();
}
void atfork_parent() {
  if (g_impl) g_impl->mu.unlock();
}
void atfork_child();

}  // namespace

Recorder* Recorder::get() {
  std::call_once(g_init_once, [] {
    Config cfg = load_config();
    if (!cfg.enabled) {
      FPSCOPE_LOG(Info, "disabled by FPSCOPE_DISABLE/FPSCOPE_ENABLE");
      return;
    }
    auto* impl = new Impl(std::move(cfg));
    impl->pid = static_cast<long>(getpid());
    impl->path_at_start =
        PathSnapshot::take(trace::expand_output_path(impl->cfg.output, impl->pid));
    g_impl = impl;
    // Never freed (hooks may run during and after exit); g_recorder_object keeps it reachable for
    // LeakSanitizer after shutdown() clears g_recorder.
    static Recorder* g_recorder_object = new Recorder(impl);
    g_recorder.store(g_recorder_object, std::memory_order_release);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    std::atexit(at_exit_handler);
  });
  return g_recorder.load(std::memory_order_acquire);
}

namespace {
void atfork_child() {
  Recorder::Impl* impl = g_impl;
  if (!impl) return;
  // The child must never touch the parent's file or writer thread.
  if (impl->writer) {
    impl->writer->abandon_after_fork();
    (void)impl->writer.release();  // leaked on purpose: its thread does not exist here
  }
  impl->claim.forget_after_fork();  // the parent keeps its claim
  const bool own_trace = !impl->closed && impl->cfg.output.find("%p") != std::string::npos;
  impl->labeler.after_fork(own_trace);
  impl->held.clear();
  impl->undefined.clear();
  impl->tensors.clear();
  impl->fp8.clear();
  impl->watches.forget_snapshots();
  impl->step_hooks.reset_after_fork();
  impl->pid = static_cast<long>(getpid());
  impl->t0 = std::chrono::steady_clock::now();
  if (own_trace) {
    impl->open_attempted = false;  // the child opens its own trace on its first record
    impl->path_at_start.forget();
  } else if (!impl->closed) {
    impl->closed = true;
    g_recorder.store(nullptr, std::memory_order_release);
    FPSCOPE_LOG(Info, "forked child %ld: not recording (FPSCOPE_OUTPUT has no %%p)", impl->pid);
  }
  impl->mu.unlock();
}
}  // namespace

GemmTicket Recorder::begin_gemm(const GemmDesc& d) {
  GemmTicket t = impl_->begin_gemm_locked(d);
  impl_->step_hooks.run(impl_->mu);  // a new period of the GEMM sequence may have ended a step
  return t;
}

GemmTicket Recorder::Impl::begin_gemm_locked(const GemmDesc& d) {
  Impl& m = *this;
  GemmTicket t;
  if (!m.cfg.op_enabled(d.op)) return t;
  const std::string scope = Recorder::current_scope();
  std::lock_guard<std::mutex> lock(m.mu);
  if (!m.ensure_writer()) return t;
  t.seq = m.next_seq++;
  t.time_ns = m.now();
  t.stream = d.stream;
  m.feeding = {&d, t.seq, t.time_ns};
  const StepLabeler::Label l = m.labeler.feed(call_signature(d, scope), scope, t.seq, m);
  t.step = l.step;
  if (!l.held) {
    m.resolve(l.name, scope, d, l.step, &t, d.batch_open);
    return t;
  }
  // Held: every operand is measured until the sampling is known; complete() keeps the statistics.
  for (int i = 0; i < d.num_operands; ++i) {
    if (!measured(m.cfg, d.operands[i])) continue;
    t.sampled[i] = true;
    t.any = true;
  }
  return t;
}

void Recorder::complete(const GemmTicket& t, int i, const TensorStats& stats,
                        std::span<const float> sketch) {
  if (i < 0 || i >= kMaxOperands || !t.sampled[i]) return;
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.closed || !m.writer) return;
  if (t.tensor[i] != kUnresolved) {
    m.emit(StatsTarget{t.tensor[i], t.step, t.seq, t.stream, t.time_ns}, stats, sketch);
  } else if (m.held.keep(t.seq, i, stats, sketch)) {
    return;  // held: written when the labeler releases it
  } else if (const std::optional<StatsTarget> to = m.held.take_late(t.seq, i)) {
    m.emit(*to, stats, sketch);
  } else {
    return;
  }
  m.check_writer();
}

void Recorder::end_batch(GemmTicket* t, uint64_t count) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.closed || !m.writer) return;
  const auto it = m.undefined.find(t->seq);
  if (it == m.undefined.end()) {
    m.held.set_batch(t->seq, static_cast<int64_t>(count));
    return;
  }
  Impl::Undefined u = std::move(it->second);
  m.undefined.erase(it);
  u.desc.sig.batch = static_cast<int64_t>(count);
  for (int i = 0; i < u.desc.num_operands; ++i)
    if (t->sampled[i] && t->tensor[i] == kUnresolved)
      t->tensor[i] =
          m.tensors.gemm_operand(*m.writer, u.label, u.scope, u.desc, u.desc.operands[i]);
  m.check_writer();
}

void Recorder::abandon(const GemmTicket& t, int i) {
  if (i < 0 || i >= kMaxOperands || t.tensor[i] != kUnresolved) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->held.abandon(t.seq, i);
}

void Recorder::mark_step(StepSource source) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->mark_locked(source);
  }
  impl_->step_hooks.run(impl_->mu);
}

bool Recorder::fp8_needs_amax() const {
  return impl_->fp8.needs_amax();
}

void Recorder::stats_scales(const GemmTicket& t, int i, float amax, float* out) const {
  const uint32_t tensor = i >= 0 && i < kMaxOperands ? t.tensor[i] : kUnresolved;
  if (!impl_->fp8.per_tensor() || tensor == kUnresolved) {
    impl_->fp8.scales(kUnresolved, amax, out);  // no per-tensor state: no lock
    return;
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->fp8.scales(tensor, amax, out);
}

uint64_t Recorder::current_step() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->labeler.step();
}

uint64_t Recorder::gemm_calls() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->next_seq;
}

void Recorder::scope_push(const char* name) {
  t_scopes.emplace_back(name ? name : "");
}
void Recorder::scope_pop() {
  if (!t_scopes.empty()) t_scopes.pop_back();
}
std::string Recorder::current_scope() {
  return t_scopes.empty() ? std::string() : t_scopes.back();
}

void Recorder::loss_scale(double scale, bool found_inf, double next_scale,
                          trace::LossScaleSource source) {
  loss_scale_at(UINT64_MAX, scale, found_inf, next_scale, source);
}

void Recorder::loss_scale_at(uint64_t step, double scale, bool found_inf, double next_scale,
                             trace::LossScaleSource source) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (!m.ensure_writer()) return;
  trace::LossScaleRecord r;
  r.step = step == UINT64_MAX ? m.labeler.step() : step;
  r.scale = scale;
  r.found_inf = found_inf;
  r.next_scale = next_scale;
  r.source = source;
  r.time_ns = m.now();
  // "At the current step" while calls are held: it waits for them (the labeler releases it).
  if (step == UINT64_MAX && m.labeler.hold_record()) {
    m.held.hold_record(HeldRecord{.is_event = false, .loss_scale = r, .event = {}});
    return;
  }
  m.writer->loss_scale(r);
  m.check_writer();
}

void Recorder::Impl::event_locked(trace::EventLevel level, const std::string& text) {
  trace::EventRecord e;
  e.step = labeler.step();
  e.time_ns = now();
  e.level = level;
  e.text = text;
  if (labeler.hold_record()) {
    held.hold_record(HeldRecord{.is_event = true, .loss_scale = {}, .event = std::move(e)});
    return;
  }
  writer->event(e);
}

void Recorder::event(trace::EventLevel level, const std::string& text) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (!m.ensure_writer()) return;
  // The PyTorch integration said where matmuls went unseen: the exit warning would repeat it.
  m.said_not_measured |=
      level == trace::EventLevel::Warning && text.rfind(trace::kNotMeasuredPrefix, 0) == 0;
  m.event_locked(level, text);
  m.check_writer();
}

bool Recorder::Impl::define_watch_locked(const std::string& name, uint64_t count, Format dtype,
                                         int32_t device, uint32_t* tensor) {
  if (!ensure_writer()) return false;
  if (device >= 0 && count > cfg.watch_max_elements) {  // the device watch copies whole tensors
    const std::string why = "watch('" + name + "'): " + std::to_string(count) +
                            " elements is over FPSCOPE_WATCH_MAX_ELEMENTS (" +
                            std::to_string(cfg.watch_max_elements) + "); not watched";
    log(LogLevel::Warn, "%s", why.c_str());
    event_locked(trace::EventLevel::Warning, why);
    return false;
  }
  *tensor = tensors.watched(*writer, name, count, dtype, device);
  if (dtype != Format::FP32)
    event_locked(
        trace::EventLevel::Warning,
        "watched tensor '" + name + "' is " + spec(dtype).name + ": master weights are not FP32");
  return true;
}

void Recorder::watch(const std::string& name, const void* ptr, uint64_t count, Format dtype,
                     uint64_t sample) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (!m.ensure_writer()) return;
  // A budget instead of a cliff (weight_watch.h): the positions the budget left allows.
  const uint64_t used = m.watches.bytes_except(name);
  const uint64_t left = m.cfg.watch_budget > used ? m.cfg.watch_budget - used : 0;
  const uint64_t watched = watch_sample_size(count, sample, left, m.cfg.watch_max_elements);
  if (watched == 0) {
    m.event_locked(trace::EventLevel::Info,
                   "watch: left out " + name + ": no FPSCOPE_WATCH_BUDGET left");
    return;
  }
  uint32_t tensor = 0;
  if (!m.define_watch_locked(name, count, dtype, -1, &tensor)) return;
  m.watches.add(name, HostWatch(tensor, ptr, count, dtype, watched));
}

uint64_t Recorder::watch_budget_left() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const uint64_t used = impl_->watches.bytes();
  return impl_->cfg.watch_budget > used ? impl_->cfg.watch_budget - used : 0;
}

void Recorder::unwatch(const std::string& name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->watches.remove(name);
}

bool Recorder::define_watch(const std::string& name, uint64_t count, Format dtype, int32_t device,
                            uint32_t* tensor) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const bool ok = impl_->define_watch_locked(name, count, dtype, device, tensor);
  impl_->check_writer();
  return ok;
}

void Recorder::weight_update_at(uint64_t step, uint32_t tensor, Format master_dtype,
                                uint64_t elements, const UpdateLoss& loss) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.closed || !m.writer) return;
  m.writer->weight_update(
      weight_update_record(step, tensor, master_dtype, elements, elements, loss));
  m.check_writer();
}

uint64_t Recorder::now_ns() const {
  return impl_->now();
}
Format Recorder::emulate() const {
  return impl_->cfg.emulate;
}
bool Recorder::scopes_wanted(uint64_t step) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->scopes_wanted(step);
}

Recorder::FrameworkState Recorder::framework_boundary(const double* losses, size_t n) {
  Impl& m = *impl_;
  FrameworkState s;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (!m.ensure_writer()) return m.framework_state(false);
    for (size_t i = 0; i < n && !m.closed; ++i) m.loss_locked(UINT64_MAX, losses[i]);
    const uint64_t before = m.labeler.step();
    m.mark_locked(trace::StepSource::Framework);  // no-op once a loss closed the writer
    s = m.framework_state(m.labeler.step() != before);
  }
  m.step_hooks.run(m.mu);
  return s;
}

Recorder::FrameworkState Recorder::framework_state() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->framework_state(false);
}

unsigned Recorder::stats_threads() const {
  return impl_->cfg.stats_threads;
}

bool Recorder::stats_helper() const {
  return impl_->cfg.stats_helper && !impl_->fp8.per_tensor() && !impl_->fp8.needs_amax();
}

bool Recorder::sketch() const {
  return impl_->cfg.sketch;
}

uint32_t Recorder::block_formats() const {
  return impl_->cfg.block_formats;
}

namespace {
std::atomic<void (*)()> g_flush_hooks[4];
}  // namespace

void Recorder::add_flush_hook(void (*fn)()) {
  for (auto& h : g_flush_hooks) {
    void (*expected)() = nullptr;
    if (h.load() == fn || h.compare_exchange_strong(expected, fn)) return;
  }
}

void Recorder::flush() {
  for (auto& h : g_flush_hooks)
    if (void (*fn)() = h.load()) fn();
  StatsHelper::wait_all();  // the helper's records (watch updates) are written before the flush
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.closed || !m.writer) return;
  // Held calls are part of "everything recorded so far": the period is decided with what is
  // held now (as at the end of the run), so that they are written too.
  m.labeler.finish(m);
  m.writer->flush(false);
  m.check_writer();
}

namespace {
std::atomic<void (*)()> g_shutdown_hooks[4];
}  // namespace

void Recorder::add_step_hook(StepHook fn) {
  StepHooks::add(fn);
}

void Recorder::add_shutdown_hook(void (*fn)()) {
  for (auto& h : g_shutdown_hooks) {
    void (*expected)() = nullptr;
    if (h.compare_exchange_strong(expected, fn)) return;
  }
}

void Recorder::shutdown_before_exit() {
  Impl* impl = g_impl;
  if (impl == nullptr || static_cast<long>(getpid()) != impl->pid) return;
  if (g_recorder.load(std::memory_order_acquire) == nullptr) return;  // disabled or closed
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    if (!impl->writer) return;
  }
  shutdown();
}

void Recorder::shutdown() {
  Impl* impl = g_impl;
  if (!impl) return;
  HookGuard guard;
  if (!g_shutdown_started.exchange(true)) {
    for (auto& h : g_shutdown_hooks)
      if (void (*fn)() = h.load()) fn();
  }
  StatsHelper::wait_all();  // its jobs write into the trace: before it closes (never under mu)
  g_recorder.store(nullptr, std::memory_order_release);
  std::lock_guard<std::mutex> lock(impl->mu);
  if (impl->closed) return;
  if (impl->writer) {
    impl->labeler.finish(*impl);  // the last period: what is still held, labelled as it can be
    impl->held.clear_late();
    impl->warn_if_no_gemm_locked();
    const bool ok = impl->writer->close();
    if (!ok && !impl->failed_warned) {
      impl->failed_warned = true;
      log(LogLevel::Warn, "writing the trace failed (%s)", impl->writer->error().c_str());
    } else if (ok) {
      FPSCOPE_LOG(Info, "trace written to %s (%llu records)", impl->path.c_str(),
                  static_cast<unsigned long long>(impl->writer->records_written()));
      FPSCOPE_LOG(Info, "statistics helper: %llu jobs", StatsHelper::jobs_run());
      FPSCOPE_LOG(Info, "operands read again, unchanged: %llu of %llu reads of A and B",
                  static_cast<unsigned long long>(ThreadRuns::recent_hits()),
                  static_cast<unsigned long long>(ThreadRuns::recent_lookups()));
    }
  } else if (!impl->open_attempted) {
    // Nothing was recorded: still leave a valid, empty trace, unless another process (a child
    // that exec'd under the same FPSCOPE_OUTPUT) records there now, or wrote one since this
    // process started.
    const std::string p = trace::expand_output_path(impl->cfg.output, impl->pid);
    const bool stale = impl->path_at_start.missing_or_unchanged(p) && impl->claim.claim(p);
    if (stale && impl->ensure_writer()) {
      if (!impl->writer->close() && !impl->failed_warned) {
        impl->failed_warned = true;
        log(LogLevel::Warn, "writing the trace failed (%s)", impl->writer->error().c_str());
      }
    } else if (!stale) {
      FPSCOPE_LOG(Info, "no GEMM recorded; %s was written by another process, left as is",
                  p.c_str());
    }
  }
  impl->closed = true;
}

// ---- loss values (format 1.1; kept apart from the rest of the recorder on purpose) ----------
void Recorder::loss_at(uint64_t step, double value) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.ensure_writer()) m.loss_locked(step, value);
}

// ---- a framework's claim on the steps (kept apart, like loss_at) --------------------------
void Recorder::claim_steps(StepSource source) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->ensure_writer()) return;
    if (impl_->labeler.claim(source, *impl_)) impl_->check_writer();
  }
  impl_->step_hooks.run(impl_->mu);
}

HookGuard::HookGuard() : outermost_(t_guard_depth++ == 0) {}
HookGuard::~HookGuard() {
  --t_guard_depth;
}
bool HookGuard::active() {
  return t_guard_depth > 0;
}

}  // namespace fpscope::probe
