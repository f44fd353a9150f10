#include "cli_common.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>

#include <fmt/format.h>

#include "fpscope/analysis/common.h"
#include "progress_format.h"

namespace fpscope::cli {

namespace {
std::atomic<Progress*> g_progress{nullptr};  // the live Progress, erased before an error line
}  // namespace

void fail(const std::string& message) {
  if (Progress* p = g_progress.load()) p->done();
  fmt::print(stderr, "fpscope: {}\n", message);
  throw CLI::RuntimeError(kExitError);
}

namespace {

// Reads the whole file once in 4 MiB pieces, reporting the fraction of bytes read. Errors are
// ignored here: the reader reports them (with its own one-line message).
void preread(const std::string& path, Progress* progress) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (64 << 20)) {
    ::close(fd);
    return;
  }
  const double total = static_cast<double>(st.st_size);
  progress->phase(fmt::format("reading {} ({:.0f} MiB)", path, total / (1 << 20)), 0.0);
  std::vector<char> buf(4u << 20);
  double done = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<double>(n);
    progress->fraction(done / total);
  }
  ::close(fd);
}

}  // namespace

void load_trace(const std::string& path, trace::Trace* out, Progress* progress) {
  if (progress && progress->visible_possible()) preread(path, progress);
  if (progress) progress->phase("decoding " + path);
  trace::ReadError err;
  if (!trace::read_trace(path, out, &err)) {
    if (progress) progress->done();
    fail(err.message.empty() ? fmt::format("{}: cannot read trace", path) : err.message);
  }
  if (out->truncated) {
    const std::string w = fmt::format(
        "fpscope: warning: {}: trace is truncated ({}); {} bytes dropped, read {} observations "
        "before it",
        path, out->truncation_reason.empty() ? "no footer" : out->truncation_reason,
        out->dropped_bytes, out->observations.size());
    if (progress)
      progress->message(w);
    else
      fmt::print(stderr, "{}\n", w);
  }
}

uint32_t find_tensor(const trace::Trace& t, const std::string& x) {
  for (const auto& info : t.tensors)
    if (info.id == x) return info.index;
  for (const auto& info : t.tensors)
    if (!info.name.empty() && info.name == x) return info.index;
  // Hint: a steady-state id (warm-up gemm#w<k> and extra gemm#x<j> calls are not typical).
  std::string example = "gemm#0.D";
  for (const auto& info : t.tensors) {
    if (info.id.rfind("gemm#w", 0) == 0 || info.id.rfind("gemm#x", 0) == 0) continue;
    example = info.id;
    break;
  }
  fail(fmt::format("{}: no tensor '{}' (ids look like '{}'; see fpscope summary)", t.path, x,
                   example));
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

int terminal_columns(int fd) {
  winsize ws{};
  if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 0;
}

AtomicOutput::AtomicOutput(std::string path)
    : path_(std::move(path)), tmp_(fmt::format("{}.tmp.{}", path_, ::getpid())) {}

AtomicOutput::~AtomicOutput() {
  if (!committed_) std::remove(tmp_.c_str());
}

void AtomicOutput::commit() {
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail(fmt::format("{}: cannot write: {}", path_, std::strerror(errno)));
  committed_ = true;
}

void write_output(const std::string& path, const std::string& content) {
  std::string err;
  if (path == "-") {
    if (!analysis::write_file(path, content, &err)) fail(err);
    return;
  }
  AtomicOutput out(path);
  if (!analysis::write_file(out.tmp_path(), content, &err))
    fail(path + err.substr(std::min(err.size(), out.tmp_path().size())));  // name the real path
  out.commit();
}

Progress::Progress(std::string task) : task_(std::move(task)) {
  tty_ = isatty(STDERR_FILENO) == 1;
  start_ = std::chrono::steady_clock::now();
  if (tty_) thread_ = std::thread([this] { run(); });
  g_progress = this;
}

Progress::~Progress() {
  done();
  Progress* self = this;
  g_progress.compare_exchange_strong(self, nullptr);
}

void Progress::done() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (shown_) {
    fmt::print(stderr, "\r\033[K");
    std::fflush(stderr);
  }
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

void Progress::message(const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shown_) fmt::print(stderr, "\r\033[K");
  shown_ = false;
  fmt::print(stderr, "{}\n", line);
  std::fflush(stderr);
}

void Progress::draw_locked(double elapsed_s) {
  const int cols = terminal_columns(STDERR_FILENO);
  const std::string line =
      format_progress(task_, phase_, fraction_, elapsed_s, cols > 1 ? cols - 1 : 79);
  fmt::print(stderr, "\r\033[K{}", line);
  std::fflush(stderr);
  shown_ = true;
}

void Progress::run() {
  using namespace std::chrono;
  while (!stop_) {
    std::this_thread::sleep_for(milliseconds(100));
    const double s = duration<double>(steady_clock::now() - start_).count();
    if (s < 1.0 || stop_) continue;
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_) draw_locked(s);
  }
}

std::vector<std::string> trace_paths(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  std::string err;
  if (!analysis::expand_trace_args(args, &paths, &err)) fail(err);
  return paths;
}

analysis::RankSet load_rank_set(const std::vector<std::string>& paths,
                                const analysis::AnalysisOptions& opt, Progress* progress,
                                const analysis::RankOptions& rank_opt) {
  // A few traces at a time (each worker holds one trace while it reduces it), results kept in
  // path order: memory is `workers` traces plus the bounded summaries; output deterministic.
  const size_t workers = std::min<size_t>(
      {paths.size(), std::max(1u, std::thread::hardware_concurrency()), size_t{4}});
  std::vector<analysis::RankSummary> ranks(paths.size());
  std::vector<std::exception_ptr> errors(paths.size());
  std::atomic<size_t> next{0}, done{0};
  std::atomic<bool> failed{false};  // the first error stops the others taking more traces
  auto work = [&] {
    for (size_t i; !failed.load() && (i = next.fetch_add(1)) < paths.size();) {
      try {
        trace::Trace t;
        load_trace(paths[i], &t, progress && workers == 1 ? progress : nullptr);
        const trace::TraceModel model(t);
        const auto a = analysis::analyze(model, opt);
        ranks[i] =
            analysis::summarize_rank(model, a, analysis::identify_rank(t, paths[i], i), rank_opt);
      } catch (...) {
        errors[i] = std::current_exception();
        failed = true;
      }
      const size_t d = ++done;
      if (progress)
        progress->phase(fmt::format("analysing {} traces", paths.size()),
                        static_cast<double>(d) / static_cast<double>(paths.size()));
    }
  };
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);  // the first failing path's one-line error
  analysis::RankSet set;
  std::string err;
  if (!analysis::build_rank_set(std::move(ranks), opt.findings, &set, &err)) fail(err);
  return set;
}

}  // namespace fpscope::cli
