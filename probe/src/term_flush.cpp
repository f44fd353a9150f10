#include "term_flush.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

#include "log.h"
#include "recorder.h"

namespace fpscope::probe {
namespace {

std::mutex g_mu;                       // arming
std::atomic<pid_t> g_armed_pid{0};     // the process whose flusher thread exists
std::atomic<int> g_wake_fd{-1};        // write end of the flusher's pipe
std::atomic<bool> g_requested{false};  // a SIGTERM is being handled
std::atomic<bool> g_flushed{false};    // ... and its trace is closed

void default_and_raise() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGTERM, &dfl, nullptr);
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ::pthread_sigmask(SIG_UNBLOCK, &term, nullptr);
  ::kill(::getpid(), SIGTERM);
}

// Async-signal-safe: getpid, write, sigaction, kill.
void on_sigterm(int) {
  const int saved = errno;
  const int fd = g_wake_fd.load();
  if (g_armed_pid.load() != ::getpid() || fd < 0 || g_requested.exchange(true)) {
    default_and_raise();  // not armed in this process, or a second SIGTERM: the default now
  } else {
    const char c = 't';
    if (::write(fd, &c, 1) != 1) default_and_raise();
  }
  errno = saved;
}

void* flusher(void* arg) {
  const int fd = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  char c = 0;
  while (::read(fd, &c, 1) < 0 && errno == EINTR) {
  }
  // The footer, as at exit. shutdown() itself, not shutdown_before_exit(): it waits for a close
  // another thread (exit, _exit) has begun, so that the re-raise never cuts that close short.
  Recorder::shutdown();
  g_flushed.store(true);
  default_and_raise();
  return nullptr;
}

}  // namespace

void arm_sigterm_flush() {
  std::lock_guard<std::mutex> lock(g_mu);
  const pid_t me = ::getpid();
  if (g_armed_pid.load() == me) return;
  struct sigaction cur {};
  if (::sigaction(SIGTERM, nullptr, &cur) != 0) return;
  // Ours, inherited through fork (re-armed here), or the default: anything else is the program's.
  const bool ours = (cur.sa_flags & SA_SIGINFO) == 0 && cur.sa_handler == on_sigterm;
  if (!ours && cur.sa_handler != SIG_DFL) return;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return;
  // The flusher blocks every signal: they go to the program's threads as before.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  const int rc =
      ::pthread_create(&t, &attr, flusher, reinterpret_cast<void*>(static_cast<intptr_t>(p[0])));
  pthread_attr_destroy(&attr);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    ::close(p[0]);
    ::close(p[1]);
    return;
  }
  const int previous = g_wake_fd.exchange(p[1]);
  if (previous >= 0) ::close(previous);  // a forked child's copy of its parent's pipe
  g_requested.store(false);
  g_flushed.store(false);
  g_armed_pid.store(me);
  struct sigaction sa {};
  sa.sa_handler = on_sigterm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  FPSCOPE_LOG(Debug, "SIGTERM closes the trace before the process ends");
}

void wait_for_sigterm_flush() {
  if (g_armed_pid.load() != ::getpid() || !g_requested.load()) return;
  // Bounded: a flush that hangs (a stuck file system) must not keep the process alive forever.
  for (int i = 0; i < 30000 && !g_flushed.load(); ++i) ::usleep(1000);
}

}  // namespace fpscope::probe
