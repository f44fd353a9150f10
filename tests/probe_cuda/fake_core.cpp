// TEST DOUBLE of the probe core (probe/src), used only to build tests/probe_cuda's stand-in
// preload library while libfpscope_probe.so does not exist yet. It records nothing: Recorder::get()
// is always nullptr, so the CUDA hooks pass every call through after counting it. Any recorder
// method reached anyway aborts (it would mean the test no longer tests what it says).
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "../../probe/src/log.h"
#include "../../probe/src/recorder.h"

namespace fpscope::probe {
namespace {
thread_local int t_depth = 0;
[[noreturn]] void unreachable() {
  std::abort();
}
}  // namespace

bool log_enabled(LogLevel level) {
  static const bool debug = [] {
    const char* v = std::getenv("FPSCOPE_LOG");
    return v != nullptr && v[0] == 'd';
  }();
  return level <= LogLevel::Warn || debug;
}
void log(LogLevel, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "[fpscope] %.*s\n", n, buf);
}

Recorder* Recorder::get() {
  return nullptr;
}
GemmTicket Recorder::begin_gemm(const GemmDesc&) {
  unreachable();
}
void Recorder::complete(const GemmTicket&, int, const TensorStats&) {
  unreachable();
}
void Recorder::abandon(const GemmTicket&, int) {
  unreachable();
}
void Recorder::mark_step(trace::StepSource) {
  unreachable();
}
uint64_t Recorder::current_step() const {
  unreachable();
}
uint64_t Recorder::now_ns() const {
  unreachable();
}
void Recorder::loss_scale(double, bool, double, trace::LossScaleSource) {
  unreachable();
}
void Recorder::loss_scale_at(uint64_t, double, bool, double, trace::LossScaleSource) {
  unreachable();
}
void Recorder::add_shutdown_hook(void (*)()) {}  // never runs: there is no recorder to shut down
void Recorder::add_step_hook(StepHook) {}        // never runs: no recorder marks steps
bool Recorder::define_watch(const std::string&, uint64_t, Format, int32_t, uint32_t*) {
  unreachable();
}
void Recorder::weight_update_at(uint64_t, uint32_t, Format, uint64_t, const UpdateLoss&) {
  unreachable();
}
void Recorder::event(trace::EventLevel, const std::string&) {
  unreachable();
}
void Recorder::scope_push(const char*) {
  unreachable();
}
void Recorder::scope_pop() {
  unreachable();
}

HookGuard::HookGuard() : outermost_(t_depth++ == 0) {}
HookGuard::~HookGuard() {
  --t_depth;
}
bool HookGuard::active() {
  return t_depth > 0;
}

}  // namespace fpscope::probe
