// Running the built `fpscope` (FPSCOPE_EXE) from a CLI test: one scratch directory per test
// process, shared by every test file of the executable (inline: one instance; emptied once, made
// again whenever a suite's teardown removed it), and stdout/stderr captured to files there.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fpscope::cli_test {

struct Run {
  int rc = -1;
  std::string out, err;
};

inline std::filesystem::path tmpdir() {
  static const std::filesystem::path d = [] {
    std::filesystem::path p =
        std::filesystem::temp_directory_path() / ("fpscope_cli_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(p);
    return p;
  }();
  std::filesystem::create_directories(d);
  return d;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs fpscope with `args` (already shell-quoted where needed); captures stdout and stderr.
inline Run run_cli(const std::string& args) {
  static int n = 0;
  const std::filesystem::path o = tmpdir() / ("out" + std::to_string(n) + ".txt");
  const std::filesystem::path e = tmpdir() / ("err" + std::to_string(n++) + ".txt");
  const std::string cmd = std::string("'") + FPSCOPE_EXE + "' " + args + " >'" + o.string() +
                          "' 2>'" + e.string() + "'";
  const int st = std::system(cmd.c_str());
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(o), slurp(e)};
}

}  // namespace fpscope::cli_test
