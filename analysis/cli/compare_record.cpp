#include "compare_record.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <set>
#include <system_error>

#include "cmd_record.h"

namespace {

// Ctrl-C reaches the whole foreground group: the running child's `record` forwards it to CMD and
// returns; this process only notes it and runs no further setting (the report then covers the
// runs that were made). A handler, not SIG_IGN: exec resets handlers, so CMD still gets SIGINT.
volatile std::sig_atomic_t g_interrupted = 0;
void on_interrupt(int) {
  g_interrupted = 1;
}

std::string probe_spec(const std::string& setting) {
  return setting == "fp32" ? "off" : setting;
}

std::string file_label(const std::string& setting) {
  std::string s = setting;
  for (char& c : s)
    if (c == ':' || c == '/') c = '_';
  return s;
}

}  // namespace

std::string compare_settings_error(const std::vector<std::string>& settings) {
  if (settings.size() < 2)
    return "--emulate needs at least two settings, the first the reference (e.g. fp32,bf16)";
  std::set<std::string> seen;
  for (const std::string& s : settings) {
    if (s != "fp32") {
      const std::string why = emulate_spec_error(s);
      if (!why.empty()) return "'" + s + "' is not fp32 or an --emulate SPEC (" + why + ")";
    }
    if (!seen.insert(probe_spec(s)).second) return "'" + s + "' is given twice";
  }
  return "";
}

std::vector<RecordedRun> record_each_setting(const CompareRecordOptions& o, std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec || !fs::is_directory(o.out_dir)) {
    *error = "cannot create the output directory " + o.out_dir + ": " +
             (ec ? ec.message() : std::string("not a directory"));
    return {};
  }
  std::vector<RecordedRun> runs;
  struct sigaction sa {
  }, old_int{}, old_term{};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  for (size_t i = 0; i < o.settings.size() && g_interrupted == 0; ++i) {
    RecordedRun r;
    r.label = o.settings[i];
    r.spec = probe_spec(r.label);
    r.path = (fs::path(o.out_dir) / (file_label(r.label) + ".fpst")).string();
    std::fprintf(stderr, "[fpscope] compare: run %zu of %zu (%s) -> %s\n", i + 1, o.settings.size(),
                 r.label.c_str(), r.path.c_str());
    RecordOptions ro;
    ro.output = r.path;
    ro.every = o.every;
    ro.watch = o.watch;
    ro.emulate = r.spec;
    if (r.spec != "off") ro.emulate_skip = o.emulate_skip;
    ro.sketch = true;
    ro.no_python_hooks = o.no_python_hooks;
    ro.command = o.command;
    const auto t0 = std::chrono::steady_clock::now();
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      r.exit_code = 2;
      std::perror("fpscope compare: fork");
    } else if (pid == 0) {
      std::fflush(nullptr);
      ::_exit(run_record(ro) & 0xff);  // run_record sets this child's environment only
    } else {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status)
                                      : (WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    struct stat st {};
    r.has_trace = ::lstat(r.path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    if (r.exit_code != 0)
      std::fprintf(stderr, "[fpscope] compare: %s exited with %d after %.1f s%s\n", r.label.c_str(),
                   r.exit_code, r.seconds,
                   r.has_trace ? " (its trace is compared as far as it goes)" : "");
    runs.push_back(r);
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  if (g_interrupted != 0 && runs.size() < o.settings.size())
    std::fprintf(stderr, "[fpscope] compare: interrupted; %zu of %zu settings were run\n",
                 runs.size(), o.settings.size());
  return runs;
}
