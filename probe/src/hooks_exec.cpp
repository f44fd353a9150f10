// exec hooks (issue 17): a process that records and then exec()s closes its trace first, as at
// exit, so that nothing held or buffered is lost and the trace has its footer. The new image finds
// that trace (its metadata names this process: output_claim.h) and records beside it instead of
// truncating it. Only when the exec can succeed (the file exists and is executable): execvp's
// failed tries leave the recording on. Only execve, execv and execvp (what programs and Python's
// os.exec* call); glibc's own callers (posix_spawn, system) start a new process anyway. No
// <unistd.h> here: our definitions must not clash with its declarations.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "log.h"
#include "recorder.h"
#include "resolve.h"

#define FPSCOPE_EXPORT extern "C" __attribute__((visibility("default")))

extern "C" int access(const char* path, int mode) noexcept;

namespace {

constexpr int kXOk = 1;  // X_OK

bool runnable(const char* file, bool search_path) {
  if (file == nullptr || file[0] == '\0') return false;
  if (!search_path || std::strchr(file, '/') != nullptr) return access(file, kXOk) == 0;
  const char* path = std::getenv("PATH");
  const std::string dirs = path != nullptr ? path : "/bin:/usr/bin";
  for (size_t b = 0; b <= dirs.size();) {
    size_t e = dirs.find(':', b);
    if (e == std::string::npos) e = dirs.size();
    const std::string dir = e == b ? "." : dirs.substr(b, e - b);
    if (access((dir + "/" + file).c_str(), kXOk) == 0) return true;
    b = e + 1;
  }
  return false;
}

void before_exec(const char* file, bool search_path) {
  if (!runnable(file, search_path)) return;
  fpscope::probe::Recorder::shutdown_before_exit();
}

template <typename Fn>
Fn real(const char* name) {
  return reinterpret_cast<Fn>(fpscope::probe::resolve_real(name));
}

// The trace may be closed already (the exec looked runnable): the program runs on unrecorded.
int after_failed_exec(const char* file) {
  const int e = errno;
  FPSCOPE_LOG(Info, "exec of %s failed (%s)", file ? file : "(null)", std::strerror(e));
  errno = e;
  return -1;
}

}  // namespace

FPSCOPE_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) noexcept {
  using Fn = int (*)(const char*, char* const[], char* const[]);
  static const Fn fn = real<Fn>("execve");
  before_exec(path, false);
  if (fn == nullptr) return errno = ENOSYS, -1;
  fn(path, argv, envp);
  return after_failed_exec(path);
}

FPSCOPE_EXPORT int execv(const char* path, char* const argv[]) noexcept {
  using Fn = int (*)(const char*, char* const[]);
  static const Fn fn = real<Fn>("execv");
  before_exec(path, false);
  if (fn == nullptr) return errno = ENOSYS, -1;
  fn(path, argv);
  return after_failed_exec(path);
}

FPSCOPE_EXPORT int execvp(const char* file, char* const argv[]) noexcept {
  using Fn = int (*)(const char*, char* const[]);
  static const Fn fn = real<Fn>("execvp");
  before_exec(file, true);
  if (fn == nullptr) return errno = ENOSYS, -1;
  fn(file, argv);
  return after_failed_exec(file);
}
