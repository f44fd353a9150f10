#include "cmd_record.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cmd_record.h"
#include "fpscope/formats.h"
#include "fpscope/run_env.h"
#include "fpscope/trace_io.h"

// Why `spec` is not an --emulate SPEC ("" when it is): off | bf16 | fp16 |
// (e4m3|e5m2|hybrid)[:current[:MARGIN] | :delayed[:HISTORY[:MARGIN[:max|most_recent]]]] | mxfp8 |
// mxfp8_e4m3 | mxfp8_e5m2 | mxfp6_e3m2 | mxfp6_e2m3 | mxfp4 | nvfp4, case-insensitive: the probe's
// grammar (probe/src/config.h parse_emulate_spec; the probe checks it again).
std::string emulate_spec_error(const std::string& spec_as_given) {
  std::string spec = spec_as_given;
  for (char& ch : spec) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::vector<std::string> p;
  size_t at = 0;
  for (size_t c; (c = spec.find(':', at)) != std::string::npos; at = c + 1)
    p.push_back(spec.substr(at, c - at));
  p.push_back(spec.substr(at));
  auto number = [](const std::string& s, unsigned long lo, unsigned long hi) {
    if (s.empty() || s.size() > 8 || s.find_first_not_of("0123456789") != std::string::npos)
      return false;
    const unsigned long v = std::stoul(s);
    return v >= lo && v <= hi;
  };
  const std::string usage =
      "off, bf16, fp16, e4m3|e5m2|hybrid with an optional :current[:MARGIN] or "
      ":delayed[:HISTORY[:MARGIN[:max|most_recent]]], or a block-scaled format: mxfp8 "
      "(mxfp8_e4m3), mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4, nvfp4";
  const bool fp8 = p[0] == "e4m3" || p[0] == "e5m2" || p[0] == "hybrid";
  bool block = p[0] == "mxfp8";
  for (const fpscope::FormatSpec* f : fpscope::kBlockFormats) block = block || p[0] == f->name;
  if (p.size() == 1 && (fp8 || block || p[0] == "off" || p[0] == "bf16" || p[0] == "fp16"))
    return "";
  if (!fp8) return usage;
  bool ok = false;
  if (p[1] == "current")
    ok = p.size() == 2 || (p.size() == 3 && number(p[2], 0, 64));
  else if (p[1] == "delayed")
    ok = p.size() <= 5 && (p.size() < 3 || number(p[2], 1, 1 << 20)) &&
         (p.size() < 4 || number(p[3], 0, 64)) &&
         (p.size() < 5 || p[4] == "max" || p[4] == "most_recent");
  return ok ? "" : usage;
}

namespace {

// ---- signals (issue 17) -------------------------------------------------------------------
// CMD runs in fpscope's process group, so job control, Ctrl-C, `kill -- -PGID` and supervisors
// that signal the group (or every process: systemd) reach it directly. A signal sent to fpscope
// alone (kill PID, subprocess.terminate(), a container's stop) must be forwarded; one sent to the
// whole group must not be (CMD would get it twice: a program that traps the first and cleans up is
// interrupted again). The two look the same from here (same si_code and si_pid), so a witness
// process tells them apart: a fork of fpscope in the same group that blocks these signals, so that
// one sent to the group stays pending there, visible in /proc/<witness>/status. A signal is
// forwarded unless it came from the kernel (the terminal signals the whole foreground group),
// or it is pending in the witness (it was sent to the group); and always when CMD left fpscope's
// group (setsid/setpgid: then nothing sent to the group reaches it).
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
constexpr int kNumForwarded = 4;

volatile sig_atomic_t g_received[kNumForwarded] = {};  // 1: sent by a process, 2: by the kernel

void on_signal(int sig, siginfo_t* info, void*) {
  for (int i = 0; i < kNumForwarded; ++i)
    if (kForwarded[i] == sig)
      g_received[i] = (info != nullptr && info->si_code > 0) ? 2 : (g_received[i] == 2 ? 2 : 1);
}

class GroupWitness {
 public:
  // Forks the witness (before CMD: it must not inherit CMD's pipes). Without one (fork failed),
  // every signal a process sent is forwarded, as before issue 17.
  void start() {
    int to[2], from[2];
    if (::pipe2(to, O_CLOEXEC) != 0) return;
    if (::pipe2(from, O_CLOEXEC) != 0) {
      ::close(to[0]);
      ::close(to[1]);
      return;
    }
    // A grandchild (the middle process exits at once): CMD stays fpscope's only child, and the
    // witness is no zombie of ours when it ends.
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) report[0] = report[1] = -1;
    const pid_t middle = ::fork();
    if (middle == 0) {
      const pid_t w = ::fork();
      if (w == 0) run(to[0], from[1], to[1], from[0], report[1]);
      (void)!::write(report[1], &w, sizeof w);
      ::_exit(0);
    }
    ::close(to[0]);
    ::close(from[1]);
    if (report[1] >= 0) ::close(report[1]);
    pid_t pid = -1;
    if (middle > 0) {
      while (::waitpid(middle, nullptr, 0) < 0 && errno == EINTR) {
      }
      if (report[0] < 0 || ::read(report[0], &pid, sizeof pid) != sizeof pid) pid = -1;
    }
    if (report[0] >= 0) ::close(report[0]);
    if (pid <= 0) {
      ::close(to[1]);
      ::close(from[0]);
      return;
    }
    pid_ = pid;
    ask_ = to[1];
    ack_ = from[0];
  }
  // Whether `sig` was sent to fpscope's process group (it is pending in the witness).
  bool saw(int sig) const {
    if (pid_ <= 0) return false;
    std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    unsigned long long pending = 0;
    while (std::getline(f, line))
      if (line.rfind("ShdPnd:", 0) == 0 || line.rfind("SigPnd:", 0) == 0)
        pending |= std::strtoull(line.c_str() + 7, nullptr, 16);
    return (pending >> (sig - 1)) & 1u;
  }
  // Consumes what the witness holds, so that the next signal is judged on its own.
  void clear() const {
    if (pid_ <= 0) return;
    const char c = 'c';
    if (::write(ask_, &c, 1) != 1) return;
    pollfd p{ack_, POLLIN, 0};
    char done = 0;
    if (::poll(&p, 1, 1000) == 1) (void)!::read(ack_, &done, 1);
  }
  void stop() {
    if (pid_ <= 0) return;
    ::close(ask_);  // EOF: the witness exits (not our child: nothing to reap)
    ::close(ack_);
    pid_ = 0;
  }

 private:
  [[noreturn]] static void run(int ask, int ack, int unused1, int unused2, int unused3) {
    ::close(unused1);
    ::close(unused2);
    ::close(unused3);
    sigset_t set;
    sigemptyset(&set);
    for (int s : kForwarded) sigaddset(&set, s);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    ::prctl(PR_SET_NAME, "fpscope-witnes", 0, 0, 0);
    const int null = ::open("/dev/null", O_RDWR);  // holds none of fpscope's output open
    for (int fd = 0; fd < 3 && null >= 0; ++fd) ::dup2(null, fd);
    char c = 0;
    for (;;) {
      const ssize_t n = ::read(ask, &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ::_exit(0);  // fpscope is gone
      const timespec zero{0, 0};
      while (::sigtimedwait(&set, nullptr, &zero) > 0) {
      }
      (void)!::write(ack, &c, 1);
    }
  }
  pid_t pid_ = 0;
  int ask_ = -1;
  int ack_ = -1;
};

// Forwards what was received since the last call and must reach `child` (see above).
void forward_received(pid_t child, const GroupWitness& witness) {
  bool any = false;
  bool by_process[kNumForwarded] = {};
  for (int i = 0; i < kNumForwarded; ++i) {
    const sig_atomic_t r = g_received[i];
    g_received[i] = 0;
    by_process[i] = r == 1;
    any = any || r != 0;
  }
  if (!any) return;
  const bool same_group = ::getpgid(child) == ::getpgrp();
  // A group signal reaches every member before kill(2) returns; a sender may signal fpscope first
  // and the group right after (timeout(1) does): give that a moment to land.
  if (same_group) ::usleep(20 * 1000);
  for (int i = 0; i < kNumForwarded; ++i)
    if (by_process[i] && !(same_group && witness.saw(kForwarded[i]))) ::kill(child, kForwarded[i]);
  witness.clear();
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

// Whether a live process holds the probe's lock on `path` (flock, probe/src/output_claim.h).
bool locked_by_live_process(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  const bool locked = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases our lock, if we got it
  return locked;
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

}  // namespace

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
  // never unlink /dev/full, a FIFO or a symbolic link). A trace that a live process is writing
  // (it holds the probe's lock, probe/src/output_claim.h) is left alone: CMD records beside it.
  bool live_elsewhere = false;
  struct stat st {};
  if (output.find('%') == std::string::npos && ::lstat(output.c_str(), &st) == 0 &&
      S_ISREG(st.st_mode)) {
    live_elsewhere = locked_by_live_process(output);
    if (live_elsewhere)
      std::fprintf(stderr,
                   "[fpscope] %s is being written by another live process: left as is; this "
                   "run records beside it (<stem>.<pid><ext>)\n",
                   output.c_str());
    else
      ::unlink(output.c_str());
  }

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
  set("FPSCOPE_WATCH", o.watch);
  set("FPSCOPE_EMULATE", o.emulate);
  set("FPSCOPE_EMULATE_SKIP", o.emulate_skip);
  if (o.sketch) ::setenv("FPSCOPE_SKETCH", "1", 1);
  if (!o.emulate.empty() && o.emulate != "off")
    std::fprintf(stderr,
                 "[fpscope] emulating %s: every host GEMM runs on operands rounded to %s%s%s, so "
                 "the program's results differ from its own precision's (--emulate)\n",
                 o.emulate.c_str(), o.emulate.c_str(),
                 o.emulate_skip.empty() ? "" : ", except ops named ", o.emulate_skip.c_str());
  if (!o.no_python_hooks) inject_python_hooks(probe);

  std::vector<char*> argv;
  for (const auto& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  struct sigaction sa {};
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO;  // no SA_RESTART: waitpid returns, the loop below forwards
  sigemptyset(&sa.sa_mask);
  struct sigaction old[kNumForwarded];
  for (int i = 0; i < kNumForwarded; ++i) ::sigaction(kForwarded[i], &sa, &old[i]);
  // Race-free waiting: these signals and SIGCHLD are blocked except inside sigsuspend().
  struct sigaction chld {
  }, old_chld{};
  chld.sa_handler = [](int) {};
  sigemptyset(&chld.sa_mask);
  ::sigaction(SIGCHLD, &chld, &old_chld);
  sigset_t waiting, orig_mask;
  sigemptyset(&waiting);
  for (int s : kForwarded) sigaddset(&waiting, s);
  sigaddset(&waiting, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &waiting, &orig_mask);
  GroupWitness witness;
  witness.start();

  const std::filesystem::file_time_type started = std::filesystem::file_time_type::clock::now();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  auto restore_signals = [&] {
    witness.stop();
    for (int i = 0; i < kNumForwarded; ++i) ::sigaction(kForwarded[i], &old[i], nullptr);
    ::sigaction(SIGCHLD, &old_chld, nullptr);
    ::sigprocmask(SIG_SETMASK, &orig_mask, nullptr);
  };
  if (pid < 0) {
    const int e = errno;
    restore_signals();
    std::fprintf(stderr, "fpscope record: fork failed: %s\n", std::strerror(e));
    return 2;
  }
  if (pid == 0) {
    for (int i = 0; i < kNumForwarded; ++i) ::sigaction(kForwarded[i], &old[i], nullptr);
    ::sigaction(SIGCHLD, &old_chld, nullptr);
    ::sigprocmask(SIG_SETMASK, &orig_mask, nullptr);
    ::execvp(argv[0], argv.data());
    const int e = errno;
    std::fprintf(stderr, "fpscope record: cannot run '%s': %s\n", argv[0], std::strerror(e));
    ::_exit(e == ENOENT ? 127 : 126);
  }
  int status = 0;
  for (;;) {
    forward_received(pid, witness);
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (r == 0) ::sigsuspend(&orig_mask);  // returns after a handler ran (SIGCHLD included)
  }
  restore_signals();
  const int code =
      WIFEXITED(status) ? WEXITSTATUS(status) : (WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1);

  // The probe's own expansion (run_env.h): the same rank and host rules, so the same file.
  const std::string where = fpscope::trace::expand_output_path(output, static_cast<long>(pid));
  struct stat wst {};
  const bool there = ::lstat(where.c_str(), &wst) == 0;
  if (live_elsewhere) {
    // not this run's trace: its own is among the siblings below
  } else if (there && (S_ISLNK(wst.st_mode) || S_ISFIFO(wst.st_mode) || S_ISSOCK(wst.st_mode) ||
                       S_ISDIR(wst.st_mode))) {
    // Never read either (a FIFO would block): the probe did not write there (probe/src/
    // output_claim.h); with a link, its trace is among the siblings below.
    std::fprintf(stderr, "[fpscope] no trace at %s (%s)\n", where.c_str(),
                 S_ISLNK(wst.st_mode) ? "a symbolic link, never followed"
                                      : "not a regular file, never written");
  } else if (!there) {
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

void register_record_command(CLI::App& app) {
  auto opts = std::make_shared<RecordOptions>();
  CLI::App* sub = app.add_subcommand(
      "record", "Run a command with the fpscope probe preloaded and record a trace");
  sub->add_option("-o,--output", opts->output,
                  "Trace file; %p pid, %r rank, %h host (default: fpscope.fpst)");
  sub->add_option("--every", opts->every, "Record every N-th step (FPSCOPE_EVERY)");
  sub->add_option(
      "--formats", opts->formats,
      "Formats of interest: bf16,fp16,e4m3,e5m2; block-scaled formats mxfp8_e4m3,mxfp8_e5m2,"
      "mxfp6_e3m2,mxfp6_e2m3,mxfp4,nvfp4 are measured only when named (blocks: all six; "
      "all: everything) (FPSCOPE_FORMATS)");
  sub->add_option("--ops", opts->ops, "Roles (A,B,C,D) and ops to record (FPSCOPE_OPS)");
  sub->add_option("--log", opts->log, "Probe log level: off|error|warn|info|debug (FPSCOPE_LOG)");
  sub->add_option("--watch", opts->watch,
                  "Master weights the PyTorch integration watches: all (default, within "
                  "FPSCOPE_WATCH_BUDGET), none, or comma-separated name patterns such as "
                  "'encoder.*.weight' (FPSCOPE_WATCH)");
  sub->add_option("--emulate", opts->emulate,
                  "Run every host (CPU BLAS) GEMM in this precision: off, bf16, fp16 (operands "
                  "and output rounded), e4m3, e5m2, hybrid (FP8 with per-tensor scaling, "
                  "':current' (default) or ':delayed[:HISTORY[:MARGIN[:max|most_recent]]]', "
                  "BF16 output), or block-scaled mxfp8 (mxfp8_e4m3), mxfp8_e5m2, mxfp6_e3m2, "
                  "mxfp6_e2m3, mxfp4, nvfp4 (blocks along k, BF16 output); the program trains "
                  "on the results (FPSCOPE_EMULATE; default "
                  "off; stamped in the trace)")
      ->check(CLI::Validator(emulate_spec_error, "SPEC", "emulate spec"));
  sub->add_option("--emulate-skip", opts->emulate_skip,
                  "Ops kept in FP32 under --emulate: comma-separated shell patterns of names "
                  "(module paths of the PyTorch integration; <path> covers its backward "
                  "<path>.bwd too), e.g. '0,fc_out' (FPSCOPE_EMULATE_SKIP)");
  sub->add_flag("--sketch", opts->sketch,
                "Give each observation a value sketch, from which `fpscope compare` and `fpscope "
                "diff` estimate how far two runs' tensors differ (FPSCOPE_SKETCH=1; on by "
                "default under --emulate)");
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
