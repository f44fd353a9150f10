// The fpscope C API (probe/include/fpscope.h) and the probe's load-time initialization.
#include "fpscope.h"

#include "log.h"
#include "recorder.h"

#define FPSCOPE_EXPORT extern "C" __attribute__((visibility("default")))

using fpscope::Format;
using fpscope::probe::HookGuard;
using fpscope::probe::Recorder;
namespace trace = fpscope::trace;

namespace {
// Reads the configuration and registers the exit/fork handlers when the probe is loaded, so that
// a program that never calls BLAS still gets its (empty) trace at exit.
__attribute__((constructor)) void fpscope_probe_init() {
  HookGuard guard;
  (void)Recorder::get();
}
}  // namespace

FPSCOPE_EXPORT int fpscope_active(void) {
  return Recorder::get() != nullptr ? 1 : 0;
}

FPSCOPE_EXPORT void fpscope_step(void) {
  HookGuard guard;
  if (Recorder* r = Recorder::get()) r->mark_step(trace::StepSource::Api);
}

FPSCOPE_EXPORT void fpscope_scope_push(const char* name) {
  Recorder::scope_push(name);
}
FPSCOPE_EXPORT void fpscope_scope_pop(void) {
  Recorder::scope_pop();
}

FPSCOPE_EXPORT void fpscope_loss_scale(double scale, int found_inf) {
  HookGuard guard;
  if (Recorder* r = Recorder::get())
    r->loss_scale(scale, found_inf != 0, 0.0, trace::LossScaleSource::Api);
}

FPSCOPE_EXPORT int fpscope_watch(const char* name, const void* ptr, uint64_t count, int dtype) {
  if (name == nullptr || name[0] == '\0' || ptr == nullptr || count == 0) return -1;
  if (dtype != FPSCOPE_DTYPE_FP32 && dtype != FPSCOPE_DTYPE_BF16 && dtype != FPSCOPE_DTYPE_FP16)
    return -1;
  HookGuard guard;
  if (Recorder* r = Recorder::get()) r->watch(name, ptr, count, static_cast<Format>(dtype));
  return 0;
}

FPSCOPE_EXPORT void fpscope_unwatch(const char* name) {
  if (name == nullptr) return;
  if (Recorder* r = Recorder::get()) r->unwatch(name);
}

FPSCOPE_EXPORT void fpscope_event(const char* text) {
  if (text == nullptr) return;
  HookGuard guard;
  if (Recorder* r = Recorder::get()) r->event(trace::EventLevel::Info, text);
}

FPSCOPE_EXPORT void fpscope_flush(void) {
  HookGuard guard;
  if (Recorder* r = Recorder::get()) r->flush();
}
