#include "cli_common.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace fpscope::cli {

void fail(const std::string& message) {
  fmt::print(stderr, "fpscope: {}\n", message);
  throw CLI::RuntimeError(kExitError);
}

void load_trace(const std::string& path, trace::Trace* out) {
  trace::ReadError err;
  if (!trace::read_trace(path, out, &err)) {
    fail(err.message.empty() ? fmt::format("{}: cannot read trace", path) : err.message);
  }
  if (out->truncated) {
    fmt::print(stderr,
               "fpscope: warning: {}: trace is truncated ({}); {} bytes dropped, read {} "
               "observations before it\n",
               path, out->truncation_reason.empty() ? "no footer" : out->truncation_reason,
               out->dropped_bytes, out->observations.size());
  }
}

uint32_t find_tensor(const trace::Trace& t, const std::string& x) {
  for (const auto& info : t.tensors)
    if (info.id == x) return info.index;
  for (const auto& info : t.tensors)
    if (!info.name.empty() && info.name == x) return info.index;
  fail(fmt::format("{}: no tensor '{}' (ids look like '{}'; see fpscope summary)", t.path, x,
                   t.tensors.empty() ? std::string("gemm#0.D") : t.tensors.front().id));
}

void add_whatif_options(CLI::App* cmd, analysis::AnalysisOptions* opt) {
  cmd->add_option("--fp8-history", opt->whatif.history_len,
                  "FP8 what-if: delayed-scaling amax history length")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--fp8-margin", opt->whatif.margin, "FP8 what-if: margin (powers of two)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  cmd->add_option_function<std::string>(
         "--fp8-amax",
         [opt](const std::string& v) {
           opt->whatif.algo = v == "max" ? analysis::AmaxAlgo::Max : analysis::AmaxAlgo::MostRecent;
         },
         "FP8 what-if: amax_compute_algo, max or most_recent (default max)")
      ->check(CLI::IsMember({"max", "most_recent"}));
  cmd->add_flag(
      "--no-whatif", [opt](int64_t) { opt->run_whatif = false; }, "Skip the FP8 what-if");
}

Progress::Progress(std::string task) : task_(std::move(task)) {
  tty_ = isatty(STDERR_FILENO) == 1;
  start_ = std::chrono::steady_clock::now();
  if (tty_) thread_ = std::thread([this] { run(); });
}

Progress::~Progress() {
  done();
}

void Progress::done() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (shown_) fmt::print(stderr, "\r\033[K");
  shown_ = false;
}

void Progress::phase(const std::string& name, double f) {
  std::lock_guard<std::mutex> lock(mu_);
  phase_ = name;
  fraction_ = f;
}

void Progress::fraction(double f) {
  std::lock_guard<std::mutex> lock(mu_);
  fraction_ = f;
}

void Progress::run() {
  using namespace std::chrono;
  while (!stop_) {
    std::this_thread::sleep_for(milliseconds(100));
    const double s = duration<double>(steady_clock::now() - start_).count();
    if (s < 1.0 || stop_) continue;
    std::string line;
    {
      std::lock_guard<std::mutex> lock(mu_);
      line = fmt::format("[fpscope] {}: {}", task_, phase_);
      if (fraction_ >= 0.0) {
        const int width = 20;
        const int filled = static_cast<int>(fraction_ * width);
        line +=
            fmt::format(" [{}{}] {:3.0f}%", std::string(static_cast<size_t>(filled), '#'),
                        std::string(static_cast<size_t>(width - filled), ' '), fraction_ * 100.0);
      }
      line += fmt::format(" {:.1f}s", s);
    }
    fmt::print(stderr, "\r\033[K{}", line);
    std::fflush(stderr);
    shown_ = true;
  }
}

}  // namespace fpscope::cli
