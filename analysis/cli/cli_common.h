// Shared pieces of the fpscope CLI: trace loading with one-line errors, exit codes, progress.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "fpscope/analysis/findings.h"
#include "fpscope/analysis/ranks.h"
#include "fpscope/trace_io.h"

namespace fpscope::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRegression = 1;
inline constexpr int kExitError = 2;

// Prints "fpscope: <message>" on stderr and ends the command with exit code 2.
[[noreturn]] void fail(const std::string& message);

class Progress;

// Reads `path`; on failure fail()s with the reader's one-line message (it names the file). A
// truncated trace is not an error: one warning line on stderr says what was dropped (through
// `progress`, so that it never shares a line with the progress bar). With a visible progress
// bar, the file is first read through once in 4 MiB pieces ("reading", bar = bytes read; it
// also brings the file into the page cache for the reader's mmap), then decoded ("decoding").
void load_trace(const std::string& path, trace::Trace* out, Progress* progress = nullptr);

// The trace paths of FILE arguments (paths, globs, directories: expand_trace_args); fail()s with
// its message when an argument matches nothing.
std::vector<std::string> trace_paths(const std::vector<std::string>& args);

// The traces of one multi-rank run, read one at a time (each is analysed with `opt`, reduced to
// its bounded RankSummary and dropped), matched by rank and compared. fail()s on an unreadable
// trace or two traces of one rank.
analysis::RankSet load_rank_set(const std::vector<std::string>& paths,
                                const analysis::AnalysisOptions& opt, Progress* progress,
                                const analysis::RankOptions& rank_opt = {});

// Looks up a tensor by id or name; fail()s "<file>: no tensor '<x>'" when absent, with a hint
// naming a steady-state tensor id (not a warm-up gemm#w<k> or extra gemm#x<j> one).
uint32_t find_tensor(const trace::Trace& t, const std::string& id_or_name);

// Progress on stderr for long work: only when stderr is a terminal, nothing for the first ~1 s,
// then one self-overwriting line (format_progress: task, phase, bar with the fraction done when
// known, elapsed time) redrawn every 100 ms. message() prints a line of its own (a warning)
// without mixing it into the bar.
class Progress {
 public:
  explicit Progress(std::string task);
  ~Progress();
  void phase(const std::string& name, double fraction = -1.0);
  void fraction(double f);
  bool visible_possible() const { return tty_; }  // stderr is a terminal
  // Prints `line` + newline on stderr: erases the bar first (it comes back on the next redraw).
  void message(const std::string& line);
  // Stops and erases the line (call before printing results). Idempotent.
  void done();

 private:
  void run();
  void draw_locked(double elapsed_s);
  std::string task_;
  std::mutex mu_;  // guards phase_, fraction_, shown_ and every write to stderr of this object
  std::string phase_;
  double fraction_ = -1.0;
  std::atomic<bool> stop_{false};
  bool shown_ = false;
  bool tty_ = false;
  std::chrono::steady_clock::time_point start_;
  std::thread thread_;
};

// Columns of the terminal on `fd`, 0 when it is not a terminal.
int terminal_columns(int fd);

// A file that appears at `path` whole or not at all (a failed or interrupted export never leaves
// a partial file a ticket reader could mistake for the whole one): writes go to
// "<path>.tmp.<pid>" in the same directory (same file system, so the rename is atomic); commit()
// renames it over `path` or fail()s; destroyed uncommitted (an error, fail()'s exception) it
// removes the temporary file.
class AtomicOutput {
 public:
  explicit AtomicOutput(std::string path);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;
  const std::string& tmp_path() const { return tmp_; }
  void commit();

 private:
  std::string path_, tmp_;
  bool committed_ = false;
};

// Writes `content` to `path` ("-" = stdout) through AtomicOutput, or fail()s with
// "<path>: cannot write: <reason>".
void write_output(const std::string& path, const std::string& content);

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
