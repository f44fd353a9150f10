// _exit/_Exit hooks: a process that leaves through _exit (Python's os._exit, as forked workers
// do) runs no atexit handler, so the probe would lose what it still holds (calls held by the step
// detection, the writer's unflushed chunk). The hook closes the trace first, then calls the real
// function. No <unistd.h> here: our definitions must not clash with its declarations.
#include "recorder.h"
#include "resolve.h"
#include "term_flush.h"

#define FPSCOPE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
using exit_fn = void (*)(int);
[[noreturn]] void leave(const char* name, int status) {
  fpscope::probe::wait_for_sigterm_flush();  // a SIGTERM's flush closes the trace: let it finish
  fpscope::probe::Recorder::shutdown_before_exit();
  auto real = reinterpret_cast<exit_fn>(fpscope::probe::resolve_real(name));
  if (real != nullptr) real(status);
  __builtin_trap();  // no libc _exit: cannot happen in a process that runs
}
}  // namespace

// glibc declares both noexcept and noreturn; the definitions match.
FPSCOPE_EXPORT [[noreturn]] void _exit(int status) noexcept {
  leave("_exit", status);
}
FPSCOPE_EXPORT [[noreturn]] void _Exit(int status) noexcept {
  leave("_Exit", status);
}
