#include "cmd_record.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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

#include "fpscope/run_env.h"
#include "fpscope/trace_io.h"

namespace {

struct RecordOptions {
  std::string output = "fpscope.fpst";
  std::string every;
  std::string formats;
  std::string ops;
  std::string log;
  bool no_python_hooks = false;
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

// One line about a trace: where, how much, and whether it was cut short.
void describe_trace(const std::string& path, const char* what) {
  fpscope::trace::Trace tr;
  fpscope::trace::ReadError err;
  if (!fpscope::trace::read_trace(path, &tr, &err)) {
    std::fprintf(stderr, "[fpscope] trace %s: %s\n", path.c_str(), err.message.c_str());
    return;
  }
  std::fprintf(stderr, "[fpscope] %s %s (%zu observations, %zu steps, steps from %s%s)\n", what,
               path.c_str(), tr.observations.size(), tr.steps.size(),
               fpscope::trace::step_source_name(tr.step_source), tr.truncated ? ", truncated" : "");
  if (tr.truncated) std::fprintf(stderr, "[fpscope]   %s\n", tr.truncation_reason.c_str());
}

// "<dir>/<stem>.<digits><ext>" files beside `path` modified since `since`, sorted.
std::vector<std::string> sibling_traces(const std::string& path,
                                        std::filesystem::file_time_type since) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  const fs::path p(path);
  const std::string stem = p.stem().string(), ext = p.extension().string();
  std::error_code ec;
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= stem.size() + 1 + ext.size() || name.compare(0, stem.size(), stem) != 0 ||
        name[stem.size()] != '.' || name.compare(name.size() - ext.size(), ext.size(), ext) != 0)
      continue;
    const std::string mid =
        name.substr(stem.size() + 1, name.size() - stem.size() - 1 - ext.size());
    if (mid.empty() || mid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code tec;
    if (e.last_write_time(tec) < since || tec) continue;
    out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The Python integration (probe/python/fpscope_hooks: a sitecustomize that activates when torch
// is imported) beside the probe: <probe dir>/python/fpscope_hooks. Put first on PYTHONPATH so that
// its sitecustomize is the one Python imports (it runs the one that would have been found). No
// directory there: one note, the run goes on without it.
void inject_python_hooks(const std::string& probe) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(probe).parent_path() / "python" / "fpscope_hooks";
  std::error_code ec;
  if (!fs::is_regular_file(dir / "sitecustomize.py", ec)) {
    std::fprintf(stderr,
                 "[fpscope] note: no Python integration at %s; PyTorch steps and names come from "
                 "the GEMM sequence\n",
                 dir.string().c_str());
    return;
  }
  std::string path = fs::absolute(dir, ec).lexically_normal().string();
  if (const char* old = std::getenv("PYTHONPATH"); old != nullptr && old[0] != '\0')
    path += std::string(":") + old;
  ::setenv("PYTHONPATH", path.c_str(), 1);
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
  // NVTX v3 finds its tool through this variable: the same, already loaded probe (NVTX ranges
  // name tensors and mark steps). One the user set already is kept.
  ::setenv("NVTX_INJECTION64_PATH", probe.c_str(), 0);
  ::setenv("FPSCOPE_OUTPUT", output.c_str(), 1);
  set("FPSCOPE_EVERY", o.every);
  set("FPSCOPE_FORMATS", o.formats);
  set("FPSCOPE_OPS", o.ops);
  set("FPSCOPE_LOG", o.log);
  if (!o.no_python_hooks) inject_python_hooks(probe);

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

  const std::filesystem::file_time_type started = std::filesystem::file_time_type::clock::now();
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

  // The probe's own expansion (run_env.h): the same rank and host rules, so the same file.
  const std::string where = fpscope::trace::expand_output_path(output, static_cast<long>(pid));
  if (::access(where.c_str(), F_OK) != 0) {
    std::fprintf(stderr, "[fpscope] no trace at %s%s\n", where.c_str(),
                 has_pid ? " (%p is the pid of each recording process)" : "");
  } else {
    describe_trace(where, "trace written to");
  }
  // Other processes of the run that found the path taken record beside it (probe: "<stem>.<pid>
  // <ext>"): list those written during this run.
  if (!has_pid) {
    for (const std::string& other : sibling_traces(where, started)) describe_trace(other, "also");
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
  sub->add_flag("--no-python-hooks", opts->no_python_hooks,
                "Do not load the PyTorch integration (steps from optimizer steps, tensor names "
                "from module paths, losses) through PYTHONPATH");
  sub->add_option("command", opts->command, "The command to run (after --)");
  sub->positionals_at_end();  // from CMD on, everything belongs to CMD, options included
  sub->footer(
      "CMD runs with the probe preloaded (LD_PRELOAD, appended to one already set) and the "
      "FPSCOPE_*\n"
      "settings of the options; its exit code is fpscope's. Processes CMD starts inherit the "
      "probe:\n"
      "one that records while the trace path is in use records to <stem>.<pid><ext> beside it.\n\n"
      "Examples:\n"
      "  fpscope record -o run.fpst -- /usr/bin/python3 train.py --epochs 1\n"
      "  fpscope record -o run.fpst --every 1 -- ./my_training_binary\n"
      "  fpscope record -o 'run-%r.fpst' -- torchrun --nproc-per-node 2 train.py   # a trace per "
      "rank");
  sub->callback([opts] {
    const int code = run_record(*opts);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}
