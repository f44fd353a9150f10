// fpscope probe recorder: the one place where intercepted calls become trace records.
// Fed by the host BLAS hooks (probe/src/hooks_blas.cpp) and by the CUDA path (probe/cuda/).
//
// Contract (stable; the CUDA path codes against it):
//  - Recorder::get() returns the process recorder, or nullptr when the probe is disabled
//    (FPSCOPE_DISABLE, bad output, write error, fork child without %p, after exit). Every method
//    is thread-safe and never throws; none of them writes to stdout.
//  - A GEMM is reported in two parts: begin_gemm() at the call site (assigns the global sequence
//    number, the step and the tensor identities "gemm#k.<role>" or "<scope>.<role>", decides
//    sampling) and complete() once the statistics of an operand exist: immediately for the host
//    path, later (from a drain thread) for device statistics. The ticket is a plain value: keep it
//    until every sampled operand is completed or dropped with abandon().
//  - Tensor identity (docs/design.md): (id, role, dtype, shape). The GEMM signature is written
//    once per tensor, with its definition.
//  - Steps: mark_step(source) from any source. The first explicit source owns the steps; Api always
//    wins over the others; other sources are then ignored. With no explicit source, steps come
//    from the period of the GEMM-signature sequence (StepSource::GemmPeriod): calls are held back
//    until the period is known (or the window fills), then labelled. Tickets of held calls carry
//    unresolved tensor indices; complete() resolves them internally, so callers never care. The
//    rules live in step_labeler.h (tested without a writer); the recorder writes what it decides.
//  - Step hooks (add_step_hook): called at every live step boundary (the ones that sample the
//    host watches: fpscope_step(), NVTX, kernels, a new period of the GEMM sequence), in boundary
//    order, on the thread that ended the step, OUTSIDE the recorder's lock (a hook may call the
//    recorder), never re-entered on one thread. The CUDA path's device watches use them.
//  - Names: a thread-local scope stack (fpscope_scope_push/pop, NVTX ranges via scope_push/pop).
//    The innermost scope names a GEMM; the j-th GEMM of that name in a step gets "<name>#j".
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "fpscope/stats.h"
#include "fpscope/trace_types.h"
#include "fpscope/update_loss.h"

namespace fpscope::probe {

// One operand of a GEMM as stored (column-major view: element (i, j) at i + j * ld).
struct OperandDesc {
  trace::Role role = trace::Role::D;
  Format dtype = Format::FP32;
  uint64_t rows = 0;
  uint64_t cols = 0;
  uint64_t ld = 0;
  // Which way block-scaled formats' blocks run in the stored view: along the GEMM's reduction
  // dimension k for A and B, along the rows of C and D (docs/metrics.md "Block-scaled formats").
  BlockAxis block_axis = BlockAxis::Rows;
  // Where it is stored (an identity only, never read by the recorder: backward GEMMs are named
  // after the forward GEMM whose buffers they read, grad_names.h); nullptr when unknown.
  const void* data = nullptr;
};

// The one rule for which way an operand's blocks run in its stored (column-major) view, shared by
// the host hooks (hooks_blas.cpp) and the CUDA path (probe/cuda/gemm_engine.cpp): along the GEMM's
// reduction dimension k for A (op(A)'s columns) and B (op(B)'s rows), along a row of C and D
// (their columns). `stored_transposed`: the stored view's rows are op()'s columns (exactly one of
// a transpose and a row-major layout swaps them).
inline BlockAxis block_axis_of(trace::Role role, bool stored_transposed) {
  const bool along_op_cols = role != trace::Role::B;
  return along_op_cols == stored_transposed ? BlockAxis::Rows : BlockAxis::Cols;
}

inline constexpr int kMaxOperands = 4;  // A, B, C, D
inline constexpr uint32_t kUnresolved = 0xffffffffu;

struct GemmDesc {
  // Static storage (a string literal): kept by pointer while the step period is detected.
  const char* op = "";  // "sgemm", "cblas_sgemm", "sbgemm", "cublasGemmEx", "cublasLtMatmul", ...
  trace::GemmSignature sig;
  int layout = 0;  // extra signature bits the op needs (cblas order, Lt epilogue...); 0 if none
  OperandDesc operands[kMaxOperands];
  int num_operands = 0;
  int32_t device = -1;  // -1 = host
  uint64_t stream = 0;  // 0 = host
  // The host hooks: further calls may merge into this one as one batched op (batch_run.h), whose
  // GEMM signature has batch = the number of calls. Tensors this call would define are defined by
  // end_batch() instead, once that number is known.
  bool batch_open = false;
};

// What begin_gemm() decided. `sampled[i]`: compute stats of operands[i] and complete() them.
struct GemmTicket {
  bool any = false;  // false: record nothing for this call (disabled, unsampled step, filtered)
  bool sampled[kMaxOperands] = {};
  uint64_t seq = 0;
  uint64_t step = 0;  // provisional while the step period is still being detected
  uint32_t tensor[kMaxOperands] = {kUnresolved, kUnresolved, kUnresolved, kUnresolved};
  uint64_t time_ns = 0;
  uint64_t stream = 0;
};

class Recorder {
 public:
  // The process recorder, created on first use from the FPSCOPE_* environment; nullptr when
  // disabled. Cheap (one atomic load) after the first call.
  static Recorder* get();

  // ---- GEMMs ----
  GemmTicket begin_gemm(const GemmDesc& desc);
  // Records the statistics of operand `i` of the ticketed call (any thread, any time later), and
  // its value sketch when there is one (FPSCOPE_SKETCH; kernels value_sketch.h).
  void complete(const GemmTicket& ticket, int i, const TensorStats& stats,
                std::span<const float> sketch = {});
  // The statistics of operand `i` will never come (e.g. a device slot was lost): forget it.
  void abandon(const GemmTicket& ticket, int i);
  // For a call begun with desc.batch_open: it and the `count` - 1 calls after it are one op.
  // Defines the tensors begin_gemm() left undefined, with GEMM signature batch = count, and fills
  // them into *ticket; call before complete(). A held call gets the count in its signature if it
  // is still held (one released before its batch ended keeps batch 1).
  void end_batch(GemmTicket* ticket, uint64_t count);

  // ---- FP8 scaling (FPSCOPE_FP8_SCALING) ----
  // Whether stats_scales() needs the operand's own amax ("current" scaling).
  bool fp8_needs_amax() const;
  // The per-target scales (kTargets order) for the statistics of operand `i` of the ticketed call:
  // 1 for BF16/FP16; for E4M3/E5M2 the policy's scale for that tensor (delayed: from the amaxes
  // of its earlier observations; 1 while the tensor is not known yet, during step detection).
  // `amax` is the operand's own amax, used by "current" scaling only.
  void stats_scales(const GemmTicket& t, int i, float amax, float* out) const;

  // ---- steps ----
  // Ends the current step and begins the next one, if `source` is the step source in force.
  void mark_step(trace::StepSource source);
  uint64_t current_step() const;
  uint64_t gemm_calls() const;  // GEMM calls that reached the hooks so far (fpscope_gemm_calls)
  // Whether the calls of `step` use the scope names (fpscope_scope_push): always, unless the steps
  // are the framework's (StepSource::Framework in force) and emulation is off (its skip patterns,
  // delayed scaling and hybrid E5M2 read the scope of every call); then when FPSCOPE_EVERY
  // samples `step`. A framework integration may leave the other steps unnamed (it costs per call).
  bool scopes_wanted(uint64_t step) const;
  // One step boundary of a framework integration in one call (it runs once per training step, from
  // cold caches: each separate call costs it microseconds): records `n` loss values for the step
  // now ending (as loss_at(UINT64_MAX, v)), then mark_step(Framework); returns the FrameworkState
  // after it. framework_state(): the same without a boundary.
  struct FrameworkState {
    uint64_t step = 0;        // the current step
    bool moved = false;       // the boundary began a new step (framework_boundary)
    bool wanted = true;       // scopes_wanted(step)
    bool wanted_next = true;  // scopes_wanted(step + 1)
  };
  FrameworkState framework_boundary(const double* losses, size_t n);
  FrameworkState framework_state() const;

  // ---- names (thread-local) ----
  static void scope_push(const char* name);
  static void scope_pop();
  static std::string current_scope();  // innermost scope, "" when none

  // ---- other records ----
  // Recorded for every step regardless of FPSCOPE_EVERY; step = the current step.
  void loss_scale(double scale, bool found_inf, double next_scale, trace::LossScaleSource source);
  // The same for an explicit step (device results drained after the step moved on).
  void loss_scale_at(uint64_t step, double scale, bool found_inf, double next_scale,
                     trace::LossScaleSource source);
  void event(trace::EventLevel level, const std::string& text);
  // Master weights: sampled at each step boundary (see docs/design.md "Master-weight update loss").
  // dtype: FP32, BF16 or FP16. The memory must stay valid until unwatch(). Follows `sample`
  // positions (0: all), at most FPSCOPE_WATCH_MAX_ELEMENTS and what FPSCOPE_WATCH_BUDGET has left
  // (weight_watch.h); with no budget left, an event "watch: left out <name>: ..." instead.
  void watch(const std::string& name, const void* ptr, uint64_t count, Format dtype,
             uint64_t sample = 0);
  // Bytes of FPSCOPE_WATCH_BUDGET the host watches do not hold.
  uint64_t watch_budget_left() const;
  void unwatch(const std::string& name);
  // A watch whose snapshots live elsewhere (the device watch, probe/cuda/device_watch.h): what
  // watch() does before its first snapshot. False (nothing defined) when recording is off or
  // count is over FPSCOPE_WATCH_MAX_ELEMENTS (device watches copy whole tensors) (one warning on
  // stderr and in the trace, as watch()); else *tensor is the watch's tensor (role Weight, op
  // "watch", `device`) and a BF16/FP16 dtype gets the "master weights are not FP32" warning event.
  bool define_watch(const std::string& name, uint64_t count, Format dtype, int32_t device,
                    uint32_t* tensor);
  // Writes the weight-update record of `tensor` for `step` (the step that made the update),
  // computed elsewhere: the same record watch() writes.
  void weight_update_at(uint64_t step, uint32_t tensor, Format master_dtype, uint64_t elements,
                        const UpdateLoss& loss);

  // A loss value (a LOSS record, format 1.1) for `step`; UINT64_MAX: the current step. Recorded
  // for every step regardless of FPSCOPE_EVERY. While steps are still being detected from the
  // GEMM period the current step is unknown: such a value is not recorded (one log line).
  void loss_at(uint64_t step, double value);
  // Makes `source` the step source now, without a step boundary, unless one is in force already
  // (a framework integration, before the program's first optimizer step: the GEMMs of the first
  // iteration then stay in step 0 instead of going to the GEMM-period detection). As mark_step
  // for FPSCOPE_STEPS.
  void claim_steps(trace::StepSource source);

  // Nanoseconds since the trace started (the trace's clock).
  uint64_t now_ns() const;
  // Writes everything recorded so far (blocks until written). Calls held while the step period
  // is detected are labelled with the period decided from what is held (as at the end of a run).
  void flush();
  // FPSCOPE_STATS_THREADS: threads for host statistics (StatsOptions::threads).
  unsigned stats_threads() const;
  // Whether the host hooks measure on the statistics helper thread (FPSCOPE_STATS_HELPER,
  // stats_helper.h): never under per-tensor FP8 scaling, whose scales come from the operand's
  // amax and history as the call reads it (measured on the calling thread).
  bool stats_helper() const;
  // FPSCOPE_FORMATS: the block-scaled formats measured per operand (StatsOptions::block_formats).
  uint32_t block_formats() const;
  // FPSCOPE_SKETCH: whether each observation carries a value sketch (kernels value_sketch.h).
  bool sketch() const;
  // FPSCOPE_EMULATE: the format host GEMMs run in (emulate.h); FP32 = off.
  Format emulate() const;

  // Flushes and closes the trace (atexit); afterwards get() returns nullptr.
  static void shutdown();
  // For the program's _exit()/_Exit() (which run no atexit handler: os._exit in a forked worker):
  // shutdown(), when this process has recorded something. A vfork child (which shares the
  // parent's memory and ran no fork handler) and a process that recorded nothing do nothing.
  static void shutdown_before_exit();
  // fn runs at the start of shutdown(), once, outside the recorder's lock and while get() still
  // returns the recorder (the CUDA path drains its in-flight results there). At most 4 hooks.
  static void add_shutdown_hook(void (*fn)());
  // fn(ending, next, next_sampled) at each live step boundary (see the contract above);
  // next_sampled: FPSCOPE_EVERY samples step `next`. At most 4 hooks; adding one twice is a no-op.
  // fn runs at the start of flush(), outside the recorder's lock (the host hooks complete the
  // batched GEMMs still being issued). At most 4 hooks.
  static void add_flush_hook(void (*fn)());
  using StepHook = void (*)(uint64_t ending, uint64_t next, bool next_sampled);
  static void add_step_hook(StepHook fn);

  struct Impl;

 private:
  explicit Recorder(Impl* impl) : impl_(impl) {}
  Impl* impl_;
};

// RAII guard: true while the current thread is inside a hook or the probe itself, so nested BLAS
// calls (cblas_sgemm -> sgemm_, stats code) and the probe's own work are not recorded.
class HookGuard {
 public:
  HookGuard();
  ~HookGuard();
  HookGuard(const HookGuard&) = delete;
  HookGuard& operator=(const HookGuard&) = delete;
  // True when this guard is the outermost one (the call should be recorded).
  bool outermost() const { return outermost_; }
  static bool active();

 private:
  bool outermost_;
};

}  // namespace fpscope::probe
