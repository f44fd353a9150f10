// The fpscope C API (probe/include/fpscope.h) and the probe's load-time initialization.
#include "fpscope.h"

#include <exception>

#include "log.h"
#include "recorder.h"

// FPSCOPE_PROBE_WITH_CUDA: set by probe/CMakeLists.txt when the CUDA part is linked in.
#if defined(FPSCOPE_PROBE_WITH_CUDA) && FPSCOPE_PROBE_WITH_CUDA
#define FPSCOPE_CAPI_CUDA 1
#else
#define FPSCOPE_CAPI_CUDA 0
#endif
#if FPSCOPE_CAPI_CUDA
#include "device_watch.h"
#endif

#define FPSCOPE_EXPORT extern "C" __attribute__((visibility("default")))

using fpscope::Format;
using fpscope::probe::HookGuard;
using fpscope::probe::Recorder;
namespace trace = fpscope::trace;

namespace {
// Runs a C API body; nothing escapes into the program (an exception inside the probe, e.g. out of
// memory copying a watched tensor, drops the record with one log line).
template <typename F>
void guarded(const char* what, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    fpscope::probe::log(fpscope::probe::LogLevel::Error, "%s: internal error (%s); not recorded",
                        what, e.what());
  } catch (...) {
    fpscope::probe::log(fpscope::probe::LogLevel::Error, "%s: internal error; not recorded", what);
  }
}

// Reads the configuration and registers the exit/fork handlers when the probe is loaded, so that
// a program that never calls BLAS still gets its (empty) trace at exit.
__attribute__((constructor)) void fpscope_probe_init() {
  HookGuard guard;
  guarded("fpscope init", [] { (void)Recorder::get(); });
}
}  // namespace

FPSCOPE_EXPORT int fpscope_active(void) {
  return Recorder::get() != nullptr ? 1 : 0;
}

FPSCOPE_EXPORT void fpscope_step(void) {
  HookGuard guard;
  guarded("fpscope_step", [] {
    if (Recorder* r = Recorder::get()) r->mark_step(trace::StepSource::Api);
  });
}

FPSCOPE_EXPORT void fpscope_framework_step(void) {
  HookGuard guard;
  guarded("fpscope_framework_step", [] {
    if (Recorder* r = Recorder::get()) r->mark_step(trace::StepSource::Framework);
  });
}

FPSCOPE_EXPORT void fpscope_framework_claim_steps(void) {
  HookGuard guard;
  guarded("fpscope_framework_claim_steps", [] {
    if (Recorder* r = Recorder::get()) r->claim_steps(trace::StepSource::Framework);
  });
}

FPSCOPE_EXPORT uint64_t fpscope_current_step(void) {
  HookGuard guard;
  uint64_t step = 0;
  guarded("fpscope_current_step", [&] {
    if (Recorder* r = Recorder::get()) step = r->current_step();
  });
  return step;
}

FPSCOPE_EXPORT uint64_t fpscope_gemm_calls(void) {
  HookGuard guard;
  uint64_t n = 0;
  guarded("fpscope_gemm_calls", [&] {
    if (Recorder* r = Recorder::get()) n = r->gemm_calls();
  });
  return n;
}

FPSCOPE_EXPORT int fpscope_scopes_wanted(uint64_t step) {
  HookGuard guard;
  int wanted = 1;
  guarded("fpscope_scopes_wanted", [&] {
    if (Recorder* r = Recorder::get()) wanted = r->scopes_wanted(step) ? 1 : 0;
  });
  return wanted;
}

namespace {
uint64_t pack(const Recorder::FrameworkState& s) {
  return (s.step << FPSCOPE_FRAMEWORK_STEP_SHIFT) | (s.wanted ? FPSCOPE_FRAMEWORK_WANTED : 0u) |
         (s.wanted_next ? FPSCOPE_FRAMEWORK_WANTED_NEXT : 0u) |
         (s.moved ? FPSCOPE_FRAMEWORK_MOVED : 0u);
}
}  // namespace

FPSCOPE_EXPORT uint64_t fpscope_framework_boundary(const double* losses, uint64_t n) {
  HookGuard guard;
  uint64_t packed = pack(Recorder::FrameworkState{});
  guarded("fpscope_framework_boundary", [&] {
    if (Recorder* r = Recorder::get())
      packed = pack(r->framework_boundary(losses, losses != nullptr ? n : 0));
  });
  return packed;
}

FPSCOPE_EXPORT uint64_t fpscope_framework_state(void) {
  HookGuard guard;
  uint64_t packed = pack(Recorder::FrameworkState{});
  guarded("fpscope_framework_state", [&] {
    if (Recorder* r = Recorder::get()) packed = pack(r->framework_state());
  });
  return packed;
}

FPSCOPE_EXPORT void fpscope_loss(double value) {
  HookGuard guard;
  guarded("fpscope_loss", [&] {
    if (Recorder* r = Recorder::get()) r->loss_at(UINT64_MAX, value);
  });
}

FPSCOPE_EXPORT void fpscope_loss_at(uint64_t step, double value) {
  if (step == UINT64_MAX) return;  // reserved: "the current step" inside the recorder
  HookGuard guard;
  guarded("fpscope_loss_at", [&] {
    if (Recorder* r = Recorder::get()) r->loss_at(step, value);
  });
}

FPSCOPE_EXPORT void fpscope_scope_push(const char* name) {
  guarded("fpscope_scope_push", [name] { Recorder::scope_push(name); });
}
FPSCOPE_EXPORT void fpscope_scope_pop(void) {
  Recorder::scope_pop();
}

FPSCOPE_EXPORT void fpscope_loss_scale(double scale, int found_inf) {
  HookGuard guard;
  guarded("fpscope_loss_scale", [&] {
    if (Recorder* r = Recorder::get())
      r->loss_scale(scale, found_inf != 0, 0.0, trace::LossScaleSource::Api);
  });
}

FPSCOPE_EXPORT int fpscope_watch(const char* name, const void* ptr, uint64_t count, int dtype) {
  if (name == nullptr || name[0] == '\0' || ptr == nullptr || count == 0) return -1;
  if (dtype != FPSCOPE_DTYPE_FP32 && dtype != FPSCOPE_DTYPE_BF16 && dtype != FPSCOPE_DTYPE_FP16)
    return -1;
  HookGuard guard;
  int rc = 0;
  guarded("fpscope_watch", [&] {
    rc = -1;
    if (Recorder* r = Recorder::get()) r->watch(name, ptr, count, static_cast<Format>(dtype));
    rc = 0;
  });
  return rc;
}

FPSCOPE_EXPORT int fpscope_watch_sampled(const char* name, const void* ptr, uint64_t count,
                                         int dtype, uint64_t sample) {
  if (name == nullptr || name[0] == '\0' || ptr == nullptr || count == 0) return -1;
  if (dtype != FPSCOPE_DTYPE_FP32 && dtype != FPSCOPE_DTYPE_BF16 && dtype != FPSCOPE_DTYPE_FP16)
    return -1;
  HookGuard guard;
  int rc = 0;
  guarded("fpscope_watch_sampled", [&] {
    rc = -1;
    if (Recorder* r = Recorder::get())
      r->watch(name, ptr, count, static_cast<Format>(dtype), sample);
    rc = 0;
  });
  return rc;
}

FPSCOPE_EXPORT uint64_t fpscope_watch_budget_left(void) {
  HookGuard guard;
  uint64_t left = 0;
  guarded("fpscope_watch_budget_left", [&] {
    if (Recorder* r = Recorder::get()) left = r->watch_budget_left();
  });
  return left;
}

FPSCOPE_EXPORT int fpscope_watch_device(const char* name, const void* ptr, uint64_t count,
                                        int dtype, int device, uint64_t stream) {
  if (name == nullptr || name[0] == '\0' || ptr == nullptr || count == 0 || device < 0) return -1;
  if (dtype != FPSCOPE_DTYPE_FP32 && dtype != FPSCOPE_DTYPE_BF16 && dtype != FPSCOPE_DTYPE_FP16)
    return -1;
#if FPSCOPE_CAPI_CUDA
  HookGuard guard;
  int rc = -3;
  guarded("fpscope_watch_device", [&] {
    rc = static_cast<int>(
        fpscope::cuda::watch_device(name, ptr, count, static_cast<Format>(dtype), device,
                                    reinterpret_cast<void*>(static_cast<uintptr_t>(stream))));
  });
  return rc;
#else
  (void)stream;
  return Recorder::get() != nullptr ? -2 : 0;
#endif
}

FPSCOPE_EXPORT void fpscope_unwatch(const char* name) {
  if (name == nullptr) return;
  HookGuard guard;
  guarded("fpscope_unwatch", [name] {
    if (Recorder* r = Recorder::get()) r->unwatch(name);
#if FPSCOPE_CAPI_CUDA
    (void)fpscope::cuda::unwatch_device(name);
#endif
  });
}

FPSCOPE_EXPORT void fpscope_event(const char* text) {
  if (text == nullptr) return;
  HookGuard guard;
  guarded("fpscope_event", [text] {
    if (Recorder* r = Recorder::get()) r->event(trace::EventLevel::Info, text);
  });
}

FPSCOPE_EXPORT void fpscope_warning(const char* text) {
  if (text == nullptr) return;
  HookGuard guard;
  guarded("fpscope_warning", [text] {
    if (Recorder* r = Recorder::get()) r->event(trace::EventLevel::Warning, text);
  });
}

FPSCOPE_EXPORT void fpscope_flush(void) {
  HookGuard guard;
  guarded("fpscope_flush", [] {
    if (Recorder* r = Recorder::get()) r->flush();
  });
}
