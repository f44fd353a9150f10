// Shared pieces of the fpscope CLI: trace loading with one-line errors, exit codes, progress.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "fpscope/analysis/findings.h"
#include "fpscope/trace_io.h"

namespace fpscope::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRegression = 1;
inline constexpr int kExitError = 2;

// Prints "fpscope: <message>" on stderr and ends the command with exit code 2.
[[noreturn]] void fail(const std::string& message);

// Reads `path`; on failure fail()s with the reader's one-line message (it names the file). A
// truncated trace is not an error: one warning line on stderr says what was dropped.
void load_trace(const std::string& path, trace::Trace* out);

// Looks up a tensor by id or name; fail()s "<file>: no tensor '<x>'" when absent.
uint32_t find_tensor(const trace::Trace& t, const std::string& id_or_name);

// Progress indication on stderr for long work: prints nothing for the first ~1 s, and only when
// stderr is a terminal; then one self-overwriting line "[fpscope] <task>: <phase> 42% 1.3s".
class Progress {
 public:
  explicit Progress(std::string task);
  ~Progress();
  void phase(const std::string& name, double fraction = -1.0);
  void fraction(double f);
  // Stops and erases the line (call before printing results). Idempotent.
  void done();

 private:
  void run();
  std::string task_;
  std::mutex mu_;
  std::string phase_;
  double fraction_ = -1.0;
  std::atomic<bool> stop_{false};
  bool shown_ = false;
  bool tty_ = false;
  std::chrono::steady_clock::time_point start_;
  std::thread thread_;
};

// --fp8-history/--fp8-margin/--fp8-amax/--no-whatif: the FP8 what-if's delayed-scaling recipe.
void add_whatif_options(CLI::App* cmd, analysis::AnalysisOptions* opt);

// Registration of the subcommands (each callback throws CLI::RuntimeError(code) to set the exit
// code, like `record`).
void register_summary_command(CLI::App& app);
void register_report_command(CLI::App& app);
void register_diff_command(CLI::App& app);
void register_export_command(CLI::App& app);

// SQLite export (export_sqlite.cpp). Returns false with *error on failure.
bool export_sqlite(const trace::Trace& t, const std::string& path, Progress* progress,
                   std::string* error);

}  // namespace fpscope::cli
