#include "recorder.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "fpscope/numerics.h"
#include "fpscope/trace_io.h"
#include "fpscope/update_loss.h"
#include "log.h"
#include "period.h"

namespace fpscope::probe {

using trace::Role;
using trace::StepSource;

namespace {

thread_local int t_guard_depth = 0;
thread_local std::vector<std::string> t_scopes;

std::atomic<Recorder*> g_recorder{nullptr};
std::once_flag g_init_once;

// Step hooks (Recorder::add_step_hook).
constexpr int kMaxStepHooks = 4;
std::atomic<Recorder::StepHook> g_step_hooks[kMaxStepHooks];
std::atomic<bool> g_have_step_hooks{false};
thread_local bool t_in_step_hooks = false;

struct Boundary {
  uint64_t ending = 0;
  uint64_t next = 0;
  bool next_sampled = false;
};

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}
uint64_t hash_str(const char* s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ull;
  return h;
}

// Signature of a call for the period detection: op, transposes, m, n, k, batch, dtypes (+ scope).
// Without the sizes (with_sizes false): the fallback for programs whose shapes change from step
// to step (dynamic batch or sequence length), where the full signature never repeats.
uint64_t signature(const GemmDesc& d, const std::string& scope, bool with_sizes = true) {
  uint64_t h = hash_str(d.op);
  h = mix(h, static_cast<uint64_t>(d.sig.transa));
  h = mix(h, static_cast<uint64_t>(d.sig.transb));
  if (with_sizes) {
    h = mix(h, static_cast<uint64_t>(d.sig.m));
    h = mix(h, static_cast<uint64_t>(d.sig.n));
    h = mix(h, static_cast<uint64_t>(d.sig.k));
    h = mix(h, static_cast<uint64_t>(d.sig.batch));
  }
  h = mix(h, static_cast<uint64_t>(d.layout));
  for (int i = 0; i < d.num_operands; ++i)
    h = mix(h, static_cast<uint64_t>(d.operands[i].dtype) * 8 +
                   static_cast<uint64_t>(d.operands[i].role));
  if (!scope.empty()) h = mix(h, hash_str(scope.c_str()));
  return h;
}
uint64_t coarse_signature(const GemmDesc& d, const std::string& scope) {
  return signature(d, scope, false);
}

// A prefix period is taken only once the sequence is this long: a step that begins with a few
// calls of one shape (separate q/k/v projections) is not a period of 1.
constexpr size_t kMinCallsForPrefixPeriod = 16;

// Compact statistics of a held call (the dense histogram is 8 KiB; most bins are empty).
struct CompactStats {
  StatsScalars scalars;
  std::vector<std::pair<uint16_t, uint64_t>> hist;
  void set(const TensorStats& s) {
    scalars = s;
    hist.clear();
    for (int b = 0; b < kHistBins; ++b)
      if (s.hist[b] != 0) hist.emplace_back(static_cast<uint16_t>(b), s.hist[b]);
  }
  void expand(TensorStats* out) const {
    static_cast<StatsScalars&>(*out) = scalars;
    std::memset(out->hist, 0, sizeof out->hist);
    for (const auto& [b, c] : hist) out->hist[b] = c;
  }
};

// A call whose step/ordinal is not known yet (period detection in progress).
struct Held {
  uint64_t seq = 0;
  uint64_t time_ns = 0;
  GemmDesc desc;
  std::string scope;
  bool have[kMaxOperands] = {};
  bool pending[kMaxOperands] = {};  // sampled, statistics not delivered yet
  CompactStats stats[kMaxOperands];
};

// A loss-scale record or event that arrived while the step of the calls around it is not known
// yet (period detection): written once they are labelled, with the step of the call before it.
struct PendingRecord {
  size_t after = 0;  // held calls before it
  bool is_event = false;
  trace::LossScaleRecord loss_scale;
  trace::EventRecord event;
};

struct LateLabel {  // labelled after commit, statistics still to come (device path)
  uint32_t tensor[kMaxOperands] = {kUnresolved, kUnresolved, kUnresolved, kUnresolved};
  uint64_t step = 0;
  uint64_t stream = 0;
  uint64_t time_ns = 0;
  int pending = 0;
};

struct Watch {
  uint32_t tensor = 0;
  const void* ptr = nullptr;
  uint64_t count = 0;
  Format dtype = Format::FP32;
  bool have_prev = false;
  std::vector<float> prev;
  std::vector<float> cur;
};

// Widens a watched tensor to FP32 (BF16 and FP16 widen exactly; numerics.h's decode).
void widen(const void* src, Format dtype, uint64_t n, float* dst) {
  if (dtype == Format::FP32) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  const auto* h = static_cast<const uint16_t*>(src);
  if (dtype == Format::BF16) {
    for (uint64_t i = 0; i < n; ++i) dst[i] = decode_storage_t<Format::BF16>(h[i]);
  } else {
    for (uint64_t i = 0; i < n; ++i) dst[i] = decode_storage_t<Format::FP16>(h[i]);
  }
}

std::string read_cmdline() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s;
}

}  // namespace

struct Recorder::Impl {
  Config cfg;
  std::mutex mu;
  std::unique_ptr<trace::TraceWriter> writer;
  bool open_attempted = false;
  bool closed = false;
  bool failed_warned = false;
  std::string path;
  long pid = 0;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  // What the output path looked like at start (to tell a stale trace from a sibling's one).
  bool path_existed = false;
  struct stat path_stat {};

  uint64_t next_seq = 0;

  // Steps.
  uint64_t step = 0;
  StepSource source = StepSource::None;  // in force
  bool explicit_steps = false;
  enum class Phase { Detect, Tracking, Off } phase = Phase::Detect;
  PeriodDetector detector;
  PeriodDetector coarse_detector;  // sizes left out (see coarse_signature)
  bool coarse = false;             // the period in force was found on coarse signatures
  bool no_period_warned = false;
  std::vector<Held> held;
  std::vector<PendingRecord> pending_records;  // during detection, in arrival order
  uint64_t held_base = 0;
  StepTracker tracker;
  uint64_t ordinal = 0;  // next ordinal when steps are explicit / off
  uint64_t extras = 0;   // extra calls in this step (period mode)
  std::unordered_map<std::string, uint32_t> scope_counts;  // per step

  std::unordered_map<std::string, uint32_t> tensors;
  // Delayed FP8 scaling: per tensor, the scalers of E4M3 and E5M2 (fed by every emitted amax).
  std::unordered_map<uint32_t, std::pair<Fp8Scaler, Fp8Scaler>> fp8;
  std::unordered_map<uint64_t, LateLabel> late;
  std::map<std::string, Watch> watches;
  // Live step boundaries for the step hooks, queued under mu and run after it is released.
  std::vector<Boundary> boundaries;
  std::atomic<bool> boundaries_pending{false};
  std::mutex hooks_mu;  // serializes hook runs: boundaries reach the hooks in order

  uint64_t now() const {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count());
  }
  bool sampled(uint64_t s) const { return s % cfg.every == 0; }

  void event_locked(trace::EventLevel level, const std::string& text);

  // ---- output ownership (callers hold mu) ----
  // A trace path belongs to the first process that records to it: an flock on it, held until
  // exit, tells later processes (a subprocess inheriting LD_PRELOAD and FPSCOPE_OUTPUT) that a
  // live process writes there. The lock belongs to this process's open file description: a
  // forked child closing its copy does not release it; exec closes it (O_CLOEXEC).
  int claim_fd = -1;
  std::string claimed;
  // false: another live process holds `p`. Errors opening it are left for the writer to report.
  bool claim(const std::string& p) {
    if (claim_fd >= 0 && claimed == p) return true;
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return true;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return errno != EWOULDBLOCK;
    }
    if (claim_fd >= 0) ::close(claim_fd);
    claim_fd = fd;
    claimed = p;
    return true;
  }
  // "<dir>/run.fpst" -> "<dir>/run.<pid>.fpst".
  static std::string sibling_path(const std::string& p, long id) {
    const size_t slash = p.rfind('/');
    const size_t dot = p.rfind('.');
    const bool ext = dot != std::string::npos && (slash == std::string::npos || dot > slash + 1);
    const std::string tag = "." + std::to_string(id);
    return ext ? p.substr(0, dot) + tag + p.substr(dot) : p + tag;
  }

  // ---- writer lifecycle (callers hold mu) ----
  bool ensure_writer() {
    if (closed) return false;
    if (writer) return true;
    if (open_attempted) return false;
    open_attempted = true;
    path = expand_output(cfg.output, pid);
    if (!claim(path)) {
      const std::string own = sibling_path(path, pid);
      log(LogLevel::Warn, "another process is recording to %s; process %ld records to %s",
          path.c_str(), pid, own.c_str());
      path = own;
      if (!claim(path)) {
        log(LogLevel::Warn, "%s is in use too; recording disabled, the program runs on",
            path.c_str());
        disable_locked();
        return false;
      }
    }
    std::string err;
    trace::WriterOptions wo;
    wo.flush_bytes = cfg.flush_bytes;
    wo.flush_ms = cfg.flush_ms;
    wo.zstd = cfg.zstd;
    writer = trace::TraceWriter::open(path, metadata(), wo, &err);
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
  void disable_locked() {
    closed = true;
    g_recorder.store(nullptr, std::memory_order_release);
    held.clear();
    pending_records.clear();
    late.clear();
  }

  std::string metadata() const {
    nlohmann::json j;
    j["probe"] = "libfpscope_probe";
    j["probe_version"] = "0.1.0";
    j["pid"] = pid;
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) == 0) j["host"] = host;
    for (const char* name : {"RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"})
      if (const char* r = std::getenv(name)) {
        j["rank"] = r;
        break;
      }
    auto argv = nlohmann::json::array();
    const std::string cl = read_cmdline();
    for (size_t b = 0; b < cl.size();) {
      size_t e = cl.find('\0', b);
      if (e == std::string::npos) e = cl.size();
      argv.push_back(cl.substr(b, e - b));
      b = e + 1;
    }
    j["command_line"] = argv;
    j["start_time_unix_ns"] =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    j["config"] = nlohmann::json::parse(config_json(cfg));
    j["host_blas"] = true;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  // ---- labels (callers hold mu) ----
  std::string label(const std::string& scope, long ord) {
    if (!scope.empty()) {
      const uint32_t j = scope_counts[scope]++;
      return j == 0 ? scope : scope + "#" + std::to_string(j);
    }
    if (ord >= 0) return "gemm#" + std::to_string(ord);
    return "gemm#x" + std::to_string(extras++);
  }

  uint32_t tensor_index(const std::string& lab, const std::string& scope, const GemmDesc& d,
                        const OperandDesc& o) {
    std::string key = lab;
    key += '\x1f';
    key += static_cast<char>('0' + static_cast<int>(o.role));
    key += static_cast<char>('0' + static_cast<int>(o.dtype));
    key += std::to_string(o.rows);
    key += 'x';
    key += std::to_string(o.cols);
    key += d.op;
    auto it = tensors.find(key);
    if (it != tensors.end()) return it->second;
    trace::TensorInfo info;
    info.id = lab + "." + trace::role_name(o.role);
    info.name = scope;
    info.op = d.op;
    info.role = o.role;
    info.dtype = o.dtype;
    info.rows = o.rows;
    info.cols = o.cols;
    info.ld = o.ld;
    info.device = d.device;
    info.gemm = d.sig;
    const uint32_t idx = writer->define_tensor(info);
    tensors.emplace(std::move(key), idx);
    return idx;
  }

  // Fills ticket tensors for a labelled call; returns whether anything is sampled.
  bool resolve(const std::string& lab, const std::string& scope, const GemmDesc& d, uint64_t s,
               GemmTicket* t) {
    t->step = s;
    t->any = false;
    if (!sampled(s)) return false;
    for (int i = 0; i < d.num_operands; ++i) {
      const OperandDesc& o = d.operands[i];
      if (!cfg.role_enabled(o.role) || o.rows == 0 || o.cols == 0) continue;
      t->sampled[i] = true;
      t->tensor[i] = tensor_index(lab, scope, d, o);
      t->any = true;
    }
    return t->any;
  }

  std::pair<Fp8Scaler, Fp8Scaler>& fp8_of(uint32_t tensor) {
    auto it = fp8.find(tensor);
    if (it == fp8.end()) {
      auto make = [this](Format f) {
        return Fp8Scaler(f, cfg.fp8_policy, cfg.fp8_history, cfg.fp8_margin, cfg.fp8_algo);
      };
      it = fp8.emplace(tensor, std::make_pair(make(Format::E4M3), make(Format::E5M2))).first;
    }
    return it->second;
  }

  void emit(uint32_t tensor, uint64_t s, uint64_t seq, uint64_t stream, uint64_t time_ns,
            const TensorStats& stats) {
    if (cfg.fp8_policy == ScalingPolicy::Delayed) {
      auto& sc = fp8_of(tensor);
      sc.first.observe(stats.amax);
      sc.second.observe(stats.amax);
    }
    trace::Observation obs;
    obs.tensor = tensor;
    obs.step = s;
    obs.seq = seq;
    obs.stream = stream;
    obs.time_ns = time_ns;
    obs.stats = stats;
    writer->observe(obs);
  }

  void emit_mark(uint64_t s, uint64_t time_ns, uint64_t first_seq) {
    trace::StepMark m;
    m.step = s;
    m.source = source;
    m.time_ns = time_ns;
    m.first_seq = first_seq;
    writer->step(m);
  }

  // A new step begins now (live boundary): marks, per-step state, watched weights.
  void begin_step_live(uint64_t first_seq) {
    sample_watches(step, step + 1);  // the update the ending step made
    if (g_have_step_hooks.load(std::memory_order_acquire)) {
      boundaries.push_back(Boundary{step, step + 1, sampled(step + 1)});
      boundaries_pending.store(true, std::memory_order_release);
    }
    ++step;
    ordinal = 0;
    extras = 0;
    scope_counts.clear();
    emit_mark(step, now(), first_seq);
  }

  // Writes the pending records that came after `calls` held calls, with the current step.
  void flush_pending_records(size_t calls, size_t* next) {
    for (; *next < pending_records.size() && pending_records[*next].after <= calls; ++*next) {
      PendingRecord& p = pending_records[*next];
      if (p.is_event) {
        p.event.step = step;
        writer->event(p.event);
      } else {
        p.loss_scale.step = step;
        writer->loss_scale(p.loss_scale);
      }
    }
  }
  // While calls are held (steps unknown), a record "at the current step" waits for them.
  bool hold_record() const { return phase == Phase::Detect && !held.empty(); }

  // Labels every held call with the detected period (or none) and emits what is complete.
  void commit(PeriodResult r) {
    const size_t n = held.size();
    size_t next_pending = 0;
    auto tmp = std::make_unique<TensorStats>();
    if (r.period > 0) {
      source = StepSource::GemmPeriod;
      if (step == 0 && !held.empty()) emit_mark(0, held.front().time_ns, held.front().seq);
    }
    for (size_t i = 0; i < n; ++i) {
      Held& h = held[i];
      long ord = static_cast<long>(i);
      std::string lab;
      if (r.period > 0 && i < r.offset) {
        lab = "gemm#w" + std::to_string(i);  // warm-up calls before the first step
      } else if (r.period > 0) {
        const size_t pos = (i - r.offset) % r.period;
        ord = static_cast<long>(pos);
        // Warm-up calls share step 0 with the first period, so that step k is the k-th
        // iteration of the program's loop.
        if (pos == 0 && i > r.offset) {
          ++step;
          extras = 0;
          scope_counts.clear();
          emit_mark(step, h.time_ns, h.seq);
        }
      } else if (r.period == 0) {
        ord = static_cast<long>(ordinal++);
      }
      if (lab.empty() || !h.scope.empty()) lab = label(h.scope, ord);
      GemmTicket t;
      t.seq = h.seq;
      resolve(lab, h.scope, h.desc, step, &t);
      LateLabel late_label;
      for (int k = 0; k < h.desc.num_operands; ++k) {
        if (!t.sampled[k]) continue;
        if (h.have[k]) {
          h.stats[k].expand(tmp.get());
          emit(t.tensor[k], step, h.seq, h.desc.stream, h.time_ns, *tmp);
        } else if (h.pending[k]) {
          late_label.tensor[k] = t.tensor[k];
          ++late_label.pending;
        }
      }
      if (late_label.pending > 0) {
        late_label.step = step;
        late_label.stream = h.desc.stream;
        late_label.time_ns = h.time_ns;
        late.emplace(h.seq, late_label);
      }
      flush_pending_records(i + 1, &next_pending);
    }
    flush_pending_records(SIZE_MAX, &next_pending);
    pending_records.clear();
    if (r.period > 0) {
      const auto& sq = coarse ? coarse_detector.sequence() : detector.sequence();
      std::vector<uint64_t> pattern(sq.begin() + static_cast<long>(r.offset),
                                    sq.begin() + static_cast<long>(r.offset + r.period));
      tracker = StepTracker(std::move(pattern), (n - r.offset) % r.period);
      phase = Phase::Tracking;
      FPSCOPE_LOG(Info, "steps: GEMM period %zu calls (after %zu warm-up calls)%s", r.period,
                  r.offset, coarse ? " from op sequence (shapes vary)" : "");
    } else {
      FPSCOPE_LOG(Info, "steps: no repeating GEMM sequence in %zu calls; still looking", n);
    }
    held.clear();
    detector.reset();
    coarse_detector.reset();
    check_writer();
  }

  // Explicit step source takes over from the period detection.
  void take_over(StepSource src) {
    explicit_steps = true;
    source = src;
    if (phase == Phase::Detect && !held.empty()) commit(PeriodResult{});
    phase = Phase::Off;
    if (step == 0 && writer) emit_mark(0, 0, 0);
  }

  bool define_watch_locked(const std::string& name, uint64_t count, Format dtype, int32_t device,
                           uint32_t* tensor);

  // The weight-update record of one watched tensor for `s`, the step that made the update.
  void write_weight_update(uint64_t s, uint32_t tensor, Format dtype, uint64_t elements,
                           const UpdateLossCounts& bf16, const UpdateLossCounts& fp16,
                           uint64_t changed, const uint64_t hist[kRatioBins]) {
    trace::WeightUpdateRecord rec;
    rec.step = s;
    rec.tensor = tensor;
    rec.master_dtype = dtype;
    rec.elements = elements;
    rec.bf16 = bf16;
    rec.fp16 = fp16;
    rec.changed = changed;
    for (int b = 0; b < kRatioBins; ++b)
      if (hist[b] != 0)
        rec.ratio_hist.emplace_back(static_cast<int16_t>(b + kRatioLog2Min), hist[b]);
    writer->weight_update(rec);
  }

  // At the boundary between step `ending` and step `next`: records the update each watched
  // tensor received during `ending` (if it was snapshotted at its start), and snapshots it again
  // if `next` is sampled.
  void sample_watches(uint64_t ending, uint64_t next) {
    if (watches.empty()) return;
    uint64_t hist[kRatioBins];
    for (auto& [name, w] : watches) {
      if (w.have_prev) {
        w.cur.resize(w.count);
        widen(w.ptr, w.dtype, w.count, w.cur.data());
        UpdateLossCounts bf16, fp16;
        uint64_t changed = 0;
        compute_update_loss(w.prev.data(), w.cur.data(), w.count, &bf16, &fp16, &changed, hist);
        write_weight_update(ending, w.tensor, w.dtype, w.count, bf16, fp16, changed, hist);
        w.have_prev = false;
      }
      if (sampled(next)) {
        w.prev.resize(w.count);
        widen(w.ptr, w.dtype, w.count, w.prev.data());
        w.have_prev = true;
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------

namespace {

// Runs the step hooks for the boundaries queued so far (call without holding mu). One thread at a
// time (hooks_mu), in queue order; a hook that ends a step itself queues the boundary for the
// loop below instead of re-entering.
void run_step_hooks(Recorder::Impl& m) {
  if (!m.boundaries_pending.load(std::memory_order_acquire) || t_in_step_hooks) return;
  HookGuard guard;  // the hooks' own device work is not the program's
  std::lock_guard<std::mutex> order(m.hooks_mu);
  t_in_step_hooks = true;
  for (;;) {
    std::vector<Boundary> due;
    {
      std::lock_guard<std::mutex> lock(m.mu);
      due.swap(m.boundaries);
      m.boundaries_pending.store(false, std::memory_order_release);
    }
    if (due.empty()) break;
    for (const Boundary& b : due)
      for (auto& h : g_step_hooks)
        if (Recorder::StepHook fn = h.load(std::memory_order_acquire))
          fn(b.ending, b.next, b.next_sampled);
  }
  t_in_step_hooks = false;
}

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
    auto* impl = new Impl();
    impl->cfg = std::move(cfg);
    impl->pid = static_cast<long>(getpid());
    impl->detector = PeriodDetector(3);
    impl->coarse_detector = PeriodDetector(3);
    if (impl->cfg.steps == StepMode::None || impl->cfg.steps == StepMode::Api)
      impl->phase = Impl::Phase::Off;
    const std::string p = expand_output(impl->cfg.output, impl->pid);
    impl->path_existed = ::stat(p.c_str(), &impl->path_stat) == 0;
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
  if (impl->claim_fd >= 0) {  // the parent keeps its claim (never LOCK_UN here)
    ::close(impl->claim_fd);
    impl->claim_fd = -1;
    impl->claimed.clear();
  }
  impl->held.clear();
  impl->pending_records.clear();
  impl->late.clear();
  impl->tensors.clear();
  impl->fp8.clear();
  for (auto& [name, w] : impl->watches) w.have_prev = false;
  impl->boundaries.clear();
  impl->boundaries_pending.store(false);
  // Another thread of the parent may have held it while running hooks: the child starts afresh.
  new (&impl->hooks_mu) std::mutex();
  impl->detector.reset();
  impl->coarse_detector.reset();
  impl->pid = static_cast<long>(getpid());
  impl->t0 = std::chrono::steady_clock::now();
  if (!impl->closed && impl->cfg.output.find("%p") != std::string::npos) {
    impl->open_attempted = false;  // the child opens its own trace on its first record
    impl->path_existed = false;
    if (impl->phase == Recorder::Impl::Phase::Tracking ||
        impl->phase == Recorder::Impl::Phase::Detect)
      impl->phase = Recorder::Impl::Phase::Detect;
  } else if (!impl->closed) {
    impl->closed = true;
    g_recorder.store(nullptr, std::memory_order_release);
    FPSCOPE_LOG(Info, "forked child %ld: not recording (FPSCOPE_OUTPUT has no %%p)", impl->pid);
  }
  impl->mu.unlock();
}
}  // namespace

namespace {
GemmTicket begin_gemm_locked(Recorder::Impl& m, const GemmDesc& d);
void mark_step_locked(Recorder::Impl& m, StepSource source);
}  // namespace

GemmTicket Recorder::begin_gemm(const GemmDesc& d) {
  GemmTicket t = begin_gemm_locked(*impl_, d);
  run_step_hooks(*impl_);  // a new period of the GEMM sequence may have ended a step
  return t;
}

namespace {
GemmTicket begin_gemm_locked(Recorder::Impl& m, const GemmDesc& d) {
  GemmTicket t;
  if (!m.cfg.op_enabled(d.op)) return t;
  const std::string scope = Recorder::current_scope();
  std::lock_guard<std::mutex> lock(m.mu);
  if (!m.ensure_writer()) return t;
  t.seq = m.next_seq++;
  t.time_ns = m.now();
  t.stream = d.stream;
  switch (m.phase) {
    case Recorder::Impl::Phase::Off:
      t.step = m.step;
      m.resolve(m.label(scope, static_cast<long>(m.ordinal++)), scope, d, m.step, &t);
      return t;
    case Recorder::Impl::Phase::Tracking: {
      const StepTracker::Label l =
          m.tracker.next(m.coarse ? coarse_signature(d, scope) : signature(d, scope));
      if (l.new_step) m.begin_step_live(t.seq);
      if (l.lost) {
        m.event_locked(trace::EventLevel::Warning,
                       "step period lost (too many calls out of the pattern); re-detecting");
        m.phase = Recorder::Impl::Phase::Detect;
        m.held_base = t.seq;
        break;  // held below
      }
      t.step = m.step;
      m.resolve(m.label(scope, l.ordinal), scope, d, m.step, &t);
      return t;
    }
    case Recorder::Impl::Phase::Detect:
      break;
  }
  // Detecting: hold the call; every operand is measured until the sampling is known.
  if (m.held.empty()) m.held_base = t.seq;
  Held h;
  h.seq = t.seq;
  h.time_ns = t.time_ns;
  h.desc = d;
  h.scope = scope;
  t.step = m.step;
  for (int i = 0; i < d.num_operands; ++i) {
    const OperandDesc& o = d.operands[i];
    if (!m.cfg.role_enabled(o.role) || o.rows == 0 || o.cols == 0) continue;
    t.sampled[i] = true;
    h.pending[i] = true;
    t.any = true;
  }
  m.held.push_back(std::move(h));
  m.coarse_detector.feed(coarse_signature(d, scope));
  if (m.detector.feed(signature(d, scope)) && m.held.size() >= kMinCallsForPrefixPeriod) {
    m.coarse = false;
    m.commit(PeriodResult{0, m.detector.prefix_period()});
  } else if (m.held.size() >= m.cfg.period_window) {
    PeriodResult r = m.detector.decide(2);
    m.coarse = false;
    if (r.period == 0) {  // shapes that change every step: the sequence of ops may still repeat
      r = m.coarse_detector.decide(3);
      m.coarse = r.period > 0;
    }
    if (r.period == 0 && !m.no_period_warned) {
      m.no_period_warned = true;
      m.event_locked(trace::EventLevel::Warning,
                     "no repeating GEMM sequence in " + std::to_string(m.held.size()) +
                         " calls: steps are unknown and every call is measured; mark steps "
                         "with fpscope.step() or an NVTX range (FPSCOPE_STEP_RANGE)");
      log(LogLevel::Warn, "no repeating GEMM sequence in %zu calls; see the trace's events",
          m.held.size());
    }
    m.commit(r);
  } else if (m.held.size() % 8 == 0) {  // steps after warm-up calls (see period.h)
    const PeriodResult r = m.detector.decide(3, m.held.size() / 2);
    if (r.period > 0) {
      m.coarse = false;
      m.commit(r);
    }
  }
  return t;
}
}  // namespace

void Recorder::complete(const GemmTicket& t, int i, const TensorStats& stats) {
  if (i < 0 || i >= kMaxOperands || !t.sampled[i]) return;
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.closed || !m.writer) return;
  if (t.tensor[i] != kUnresolved) {
    m.emit(t.tensor[i], t.step, t.seq, t.stream, t.time_ns, stats);
  } else if (!m.held.empty() && t.seq >= m.held_base && t.seq - m.held_base < m.held.size()) {
    Held& h = m.held[t.seq - m.held_base];
    if (h.seq == t.seq && h.pending[i]) {
      h.pending[i] = false;
      h.have[i] = true;
      h.stats[i].set(stats);
    }
    return;
  } else {
    auto it = m.late.find(t.seq);
    if (it == m.late.end() || it->second.tensor[i] == kUnresolved) return;
    m.emit(it->second.tensor[i], it->second.step, t.seq, it->second.stream, it->second.time_ns,
           stats);
    it->second.tensor[i] = kUnresolved;
    if (--it->second.pending == 0) m.late.erase(it);
  }
  m.check_writer();
}

void Recorder::abandon(const GemmTicket& t, int i) {
  if (i < 0 || i >= kMaxOperands || t.tensor[i] != kUnresolved) return;
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (!m.held.empty() && t.seq >= m.held_base && t.seq - m.held_base < m.held.size()) {
    m.held[t.seq - m.held_base].pending[i] = false;
    return;
  }
  auto it = m.late.find(t.seq);
  if (it != m.late.end() && it->second.tensor[i] != kUnresolved) {
    it->second.tensor[i] = kUnresolved;
    if (--it->second.pending == 0) m.late.erase(it);
  }
}

void Recorder::mark_step(StepSource source) {
  mark_step_locked(*impl_, source);
  run_step_hooks(*impl_);
}

namespace {
void mark_step_locked(Recorder::Impl& m, StepSource source) {
  std::lock_guard<std::mutex> lock(m.mu);
  if (!m.ensure_writer()) return;
  const StepMode mode = m.cfg.steps;
  if (mode == StepMode::None || mode == StepMode::Period) return;
  if (mode == StepMode::Api && source != StepSource::Api) return;
  if (!m.explicit_steps) {
    m.take_over(source);
    // NVTX step ranges mark step STARTS: the first one, with nothing recorded before it, starts
    // step 0 (so that step k is the program's k-th iteration, as with fpscope_step() at the end
    // of each iteration).
    if (source == StepSource::Nvtx && m.next_seq == 0) return;
  } else if (source != m.source) {
    if (source != StepSource::Api) return;  // the first explicit source owns the steps ...
    m.source = StepSource::Api;             // ... except the API, which always wins
    FPSCOPE_LOG(Info, "steps now come from fpscope_step()");
  }
  m.begin_step_live(m.next_seq);
  m.check_writer();
}
}  // namespace

bool Recorder::fp8_needs_amax() const {
  return impl_->cfg.fp8_policy == ScalingPolicy::Current;
}

void Recorder::stats_scales(const GemmTicket& t, int i, float amax, float* out) const {
  for (int k = 0; k < kNumTargets; ++k) out[k] = 1.0f;
  Impl& m = *impl_;
  const int e4 = target_index(Format::E4M3), e5 = target_index(Format::E5M2);
  switch (m.cfg.fp8_policy) {
    case ScalingPolicy::None:
      return;
    case ScalingPolicy::Current:
      out[e4] = Fp8Scaler::current_scale(Format::E4M3, amax, m.cfg.fp8_margin);
      out[e5] = Fp8Scaler::current_scale(Format::E5M2, amax, m.cfg.fp8_margin);
      return;
    case ScalingPolicy::Delayed: {
      if (i < 0 || i >= kMaxOperands || t.tensor[i] == kUnresolved) return;
      std::lock_guard<std::mutex> lock(m.mu);
      auto& sc = m.fp8_of(t.tensor[i]);
      out[e4] = sc.first.scale();
      out[e5] = sc.second.scale();
      return;
    }
  }
}

uint64_t Recorder::current_step() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->step;
}

bool Recorder::step_sampled(uint64_t s) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->phase != Impl::Phase::Detect && impl_->sampled(s);
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
  r.step = step == UINT64_MAX ? m.step : step;
  r.scale = scale;
  r.found_inf = found_inf;
  r.next_scale = next_scale;
  r.source = source;
  r.time_ns = m.now();
  if (step == UINT64_MAX && m.hold_record()) {
    PendingRecord p;
    p.after = m.held.size();
    p.loss_scale = r;
    m.pending_records.push_back(std::move(p));
    return;
  }
  m.writer->loss_scale(r);
  m.check_writer();
}

void Recorder::Impl::event_locked(trace::EventLevel level, const std::string& text) {
  trace::EventRecord e;
  e.step = step;
  e.time_ns = now();
  e.level = level;
  e.text = text;
  if (hold_record()) {
    PendingRecord p;
    p.after = held.size();
    p.is_event = true;
    p.event = std::move(e);
    pending_records.push_back(std::move(p));
    return;
  }
  writer->event(e);
}

void Recorder::event(trace::EventLevel level, const std::string& text) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (!m.ensure_writer()) return;
  m.event_locked(level, text);
  m.check_writer();
}

bool Recorder::Impl::define_watch_locked(const std::string& name, uint64_t count, Format dtype,
                                         int32_t device, uint32_t* tensor) {
  if (!ensure_writer()) return false;
  if (count > cfg.watch_max_elements) {
    const std::string why = "watch('" + name + "'): " + std::to_string(count) +
                            " elements is over FPSCOPE_WATCH_MAX_ELEMENTS (" +
                            std::to_string(cfg.watch_max_elements) + "); not watched";
    log(LogLevel::Warn, "%s", why.c_str());
    event_locked(trace::EventLevel::Warning, why);
    return false;
  }
  trace::TensorInfo info;
  info.id = name;
  info.name = name;
  info.op = "watch";
  info.role = Role::Weight;
  info.dtype = dtype;
  info.rows = count;
  info.cols = 1;
  info.ld = count;
  info.device = device;
  std::string key = "watch\x1f" + name + "\x1f" + std::to_string(static_cast<int>(dtype)) + "\x1f" +
                    std::to_string(count);
  if (device >= 0) key += "\x1f" + std::to_string(device);
  auto it = tensors.find(key);
  *tensor = it != tensors.end() ? it->second : writer->define_tensor(info);
  tensors[key] = *tensor;
  if (dtype != Format::FP32)
    event_locked(
        trace::EventLevel::Warning,
        "watched tensor '" + name + "' is " + spec(dtype).name + ": master weights are not FP32");
  return true;
}

void Recorder::watch(const std::string& name, const void* ptr, uint64_t count, Format dtype) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  Watch w;
  w.ptr = ptr;
  w.count = count;
  w.dtype = dtype;
  if (!m.define_watch_locked(name, count, dtype, -1, &w.tensor)) return;
  // First snapshot now: the next step boundary records the update of the current step.
  w.prev.resize(count);
  widen(ptr, dtype, count, w.prev.data());
  w.have_prev = true;
  m.watches[name] = std::move(w);
}

void Recorder::unwatch(const std::string& name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->watches.erase(name);
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
  m.write_weight_update(step, tensor, master_dtype, elements, loss.bf16, loss.fp16, loss.changed,
                        loss.ratio_hist);
  m.check_writer();
}

uint64_t Recorder::now_ns() const {
  return impl_->now();
}
unsigned Recorder::stats_threads() const {
  return impl_->cfg.stats_threads;
}

void Recorder::flush() {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.closed || !m.writer) return;
  m.writer->flush(false);
  m.check_writer();
}

namespace {
std::atomic<void (*)()> g_shutdown_hooks[4];
std::atomic<bool> g_shutdown_started{false};
}  // namespace

void Recorder::add_step_hook(StepHook fn) {
  if (fn == nullptr) return;
  for (auto& h : g_step_hooks) {
    StepHook expected = nullptr;
    if (h.compare_exchange_strong(expected, fn) || expected == fn) {
      g_have_step_hooks.store(true, std::memory_order_release);
      return;
    }
  }
  log(LogLevel::Error, "more than %d step hooks; one is ignored", kMaxStepHooks);
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
  g_recorder.store(nullptr, std::memory_order_release);
  std::lock_guard<std::mutex> lock(impl->mu);
  if (impl->closed) return;
  if (impl->writer) {
    // The last period: label what is still held with what can be decided now.
    if (impl->phase == Impl::Phase::Detect && !impl->held.empty()) {
      PeriodResult r = impl->detector.decide(2);
      impl->coarse = false;
      if (r.period == 0) {  // shapes that changed every step: the op sequence may repeat
        r = impl->coarse_detector.decide(3);
        impl->coarse = r.period > 0;
      }
      impl->commit(r);
    }
    impl->late.clear();
    const bool ok = impl->writer->close();
    if (!ok && !impl->failed_warned) {
      impl->failed_warned = true;
      log(LogLevel::Warn, "writing the trace failed (%s)", impl->writer->error().c_str());
    } else if (ok) {
      FPSCOPE_LOG(Info, "trace written to %s (%llu records)", impl->path.c_str(),
                  static_cast<unsigned long long>(impl->writer->records_written()));
    }
  } else if (!impl->open_attempted) {
    // Nothing was recorded: still leave a valid, empty trace, unless another process (a child
    // that exec'd under the same FPSCOPE_OUTPUT) records there now, or wrote one since this
    // process started.
    const std::string p = expand_output(impl->cfg.output, impl->pid);
    struct stat now {};
    const bool exists = ::stat(p.c_str(), &now) == 0;
    bool stale = !exists || (impl->path_existed && now.st_ino == impl->path_stat.st_ino &&
                             now.st_mtim.tv_sec == impl->path_stat.st_mtim.tv_sec &&
                             now.st_mtim.tv_nsec == impl->path_stat.st_mtim.tv_nsec);
    if (stale && !impl->claim(p)) stale = false;  // a live process holds it
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
  if (!m.ensure_writer()) return;
  if (step == UINT64_MAX && m.hold_record()) {
    // The step of a value "now" is not known while the GEMM period is being detected.
    static std::atomic<bool> said{false};
    if (!said.exchange(true))
      FPSCOPE_LOG(Info, "loss values are not recorded while steps come from the GEMM period");
    return;
  }
  trace::LossRecord r;
  r.step = step == UINT64_MAX ? m.step : step;
  r.value = value;
  r.time_ns = m.now();
  m.writer->loss(r);
  m.check_writer();
}

// ---- a framework's claim on the steps (kept apart, like loss_at) --------------------------
void Recorder::claim_steps(StepSource source) {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (!m.ensure_writer() || m.explicit_steps) return;
    const StepMode mode = m.cfg.steps;
    if (mode == StepMode::None || mode == StepMode::Period) return;
    if (mode == StepMode::Api && source != StepSource::Api) return;
    m.take_over(source);  // what was recorded so far (held or labelled) stays where it is
    m.check_writer();
  }
  run_step_hooks(m);
}

HookGuard::HookGuard() : outermost_(t_guard_depth++ == 0) {}
HookGuard::~HookGuard() {
  --t_guard_depth;
}
bool HookGuard::active() {
  return t_guard_depth > 0;
}

}  // namespace fpscope::probe
