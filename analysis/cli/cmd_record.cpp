#include "cmd_record.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "fpscope/trace_io.h"

namespace {

struct RecordOptions {
  std::string output = "fpscope.fpst";
  std::string every;
  std::string formats;
  std::string ops;
  std::string log;
  std::vector<std::string> command;
};

volatile sig_atomic_t g_child = 0;

// Forwards signals sent to fpscope itself. A signal the terminal sends to the whole foreground
// process group (Ctrl-C) already reached CMD: si_code > 0 (SI_KERNEL), not forwarded twice.
void forward(int sig, siginfo_t* info, void*) {
  const pid_t child = static_cast<pid_t>(g_child);
  if (child > 0 && (info == nullptr || info->si_code <= 0)) ::kill(child, sig);
}

std::string self_dir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path().string();
}

std::string find_probe() {
  if (const char* p = std::getenv("FPSCOPE_PROBE"); p != nullptr && p[0] != '\0') return p;
  return (std::filesystem::path(self_dir()) / ".." / "lib" / "libfpscope_probe.so")
      .lexically_normal()
      .string();
}

std::string host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "unknown";
  return host;
}

// The same substitutions the probe makes (probe/src/config.cpp), for the message.
std::string expand(const std::string& pattern, long pid) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%' || i + 1 == pattern.size()) {
      out += pattern[i];
      continue;
    }
    const char f = pattern[++i];
    if (f == 'p') {
      out += std::to_string(pid);
    } else if (f == 'h') {
      out += host_name();
    } else if (f == 'r') {
      const char* r = nullptr;
      for (const char* name : {"RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"})
        if ((r = std::getenv(name)) != nullptr && r[0] != '\0') break;
      out += (r != nullptr && r[0] != '\0') ? r : "0";
    } else if (f == '%') {
      out += '%';
    } else {
      out += '%';
      out += f;
    }
  }
  return out;
}

void set(const char* name, const std::string& value) {
  if (!value.empty()) ::setenv(name, value.c_str(), 1);
}

int run_record(const RecordOptions& o) {
  if (o.command.empty()) {
    std::fprintf(stderr,
                 "fpscope record: no command given (usage: fpscope record [-o FILE] -- CMD ...)\n");
    return 2;
  }
  const std::string probe = find_probe();
  if (::access(probe.c_str(), R_OK) != 0) {
    std::fprintf(stderr,
                 "fpscope record: probe library %s not found (%s); set FPSCOPE_PROBE to its path\n",
                 probe.c_str(), std::strerror(errno));
    return 2;
  }
  // An absolute output path: CMD may change directory.
  std::string output = o.output;
  if (!output.empty() && output[0] != '/')
    output = (std::filesystem::current_path() / output).lexically_normal().string();
  const bool has_pid = output.find("%p") != std::string::npos;
  // A stale trace from an earlier run must not be mistaken for this run's (regular files only:
  // never unlink /dev/full or a FIFO).
  struct stat st {};
  if (output.find('%') == std::string::npos && ::lstat(output.c_str(), &st) == 0 &&
      S_ISREG(st.st_mode))
    ::unlink(output.c_str());

  std::string preload = probe;
  if (const char* old = std::getenv("LD_PRELOAD"); old != nullptr && old[0] != '\0')
    preload = std::string(old) + ":" + probe;
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  ::setenv("FPSCOPE_OUTPUT", output.c_str(), 1);
  set("FPSCOPE_EVERY", o.every);
  set("FPSCOPE_FORMATS", o.formats);
  set("FPSCOPE_OPS", o.ops);
  set("FPSCOPE_LOG", o.log);

  std::vector<char*> argv;
  for (const auto& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  struct sigaction sa {};
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  struct sigaction old[4];
  for (int i = 0; i < 4; ++i) ::sigaction(sigs[i], &sa, &old[i]);

  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "fpscope record: fork failed: %s\n", std::strerror(errno));
    return 2;
  }
  if (pid == 0) {
    for (int i = 0; i < 4; ++i) ::sigaction(sigs[i], &old[i], nullptr);
    ::execvp(argv[0], argv.data());
    const int e = errno;
    std::fprintf(stderr, "fpscope record: cannot run '%s': %s\n", argv[0], std::strerror(e));
    ::_exit(e == ENOENT ? 127 : 126);
  }
  g_child = pid;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  for (int i = 0; i < 4; ++i) ::sigaction(sigs[i], &old[i], nullptr);
  const int code =
      WIFEXITED(status) ? WEXITSTATUS(status) : (WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1);

  const std::string where = expand(output, static_cast<long>(pid));
  fpscope::trace::Trace tr;
  fpscope::trace::ReadError err;
  if (::access(where.c_str(), F_OK) != 0) {
    std::fprintf(stderr, "[fpscope] no trace at %s%s\n", where.c_str(),
                 has_pid ? " (%p is the pid of each recording process)" : "");
  } else if (!fpscope::trace::read_trace(where, &tr, &err)) {
    std::fprintf(stderr, "[fpscope] trace %s: %s\n", where.c_str(), err.message.c_str());
  } else {
    std::fprintf(
        stderr, "[fpscope] trace written to %s (%zu observations, %zu steps, steps from %s%s)\n",
        where.c_str(), tr.observations.size(), tr.steps.size(),
        fpscope::trace::step_source_name(tr.step_source), tr.truncated ? ", truncated" : "");
    if (tr.truncated) std::fprintf(stderr, "[fpscope]   %s\n", tr.truncation_reason.c_str());
  }
  return code;
}

}  // namespace

void register_record_command(CLI::App& app) {
  auto opts = std::make_shared<RecordOptions>();
  CLI::App* sub = app.add_subcommand(
      "record", "Run a command with the fpscope probe preloaded and record a trace");
  sub->add_option("-o,--output", opts->output,
                  "Trace file; %p pid, %r rank, %h host (default: fpscope.fpst)");
  sub->add_option("--every", opts->every, "Record every N-th step (FPSCOPE_EVERY)");
  sub->add_option("--formats", opts->formats,
                  "Formats of interest: bf16,fp16,e4m3,e5m2 (FPSCOPE_FORMATS)");
  sub->add_option("--ops", opts->ops, "Roles (A,B,C,D) and ops to record (FPSCOPE_OPS)");
  sub->add_option("--log", opts->log, "Probe log level: off|error|warn|info|debug (FPSCOPE_LOG)");
  sub->add_option("command", opts->command, "The command to run (after --)");
  sub->positionals_at_end();  // from CMD on, everything belongs to CMD, options included
  sub->callback([opts] {
    const int code = run_record(*opts);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}
