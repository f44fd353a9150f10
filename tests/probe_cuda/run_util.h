// Runs a command line under /bin/sh for the tests of tests/probe_cuda: exit code, stdout and
// stderr captured separately (stderr through a temporary file).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace fpscope::cuda::proc {

struct Output {
  int exit_code = -1;  // -1: did not exit normally (signal)
  std::string out;
  std::string err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// `env` is prepended as is ("A=1 B=2"); LD_PRELOAD and NVTX_INJECTION64_PATH of the test's own
// environment never leak into the command.
inline Output run(const std::string& env, const std::string& command) {
  char tmpl[] = "/tmp/fpscope-probe-cuda-err-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd >= 0) close(fd);
  const std::string cmd =
      "env -u LD_PRELOAD -u NVTX_INJECTION64_PATH " + env + " " + command + " 2>" + tmpl;
  Output r;
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) r.out.append(buf, n);
  const int st = pclose(f);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.err = slurp(tmpl);
  std::remove(tmpl);
  return r;
}

// `text` without the lines that start with "[fpscope]" (the probe's log).
inline std::string without_probe_lines(const std::string& text) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line))
    if (line.rfind("[fpscope]", 0) != 0) out += line + "\n";
  return out;
}

}  // namespace fpscope::cuda::proc
