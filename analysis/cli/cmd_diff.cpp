#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "fpscope/analysis/diff.h"
#include "fpscope/analysis/findings.h"

namespace fpscope::cli {

namespace {

struct Opts {
  std::string base, neu, fail_on, out;
  bool json = false;
};

// One rank's two traces: read, analysed and compared, then dropped.
analysis::DiffResult diff_pair(const std::string& base, const std::string& neu,
                               const analysis::DiffRules& rules) {
  trace::Trace b, n;
  load_trace(base, &b);
  load_trace(neu, &n);
  analysis::AnalysisOptions ao;
  ao.run_whatif = false;
  ao.run_drift = false;
  const trace::TraceModel bm(b), nm(n);
  return analysis::diff_runs(bm, analysis::analyze(bm, ao), nm, analysis::analyze(nm, ao), rules);
}

// BASE and NEW are rank sets (ranks.h): matched by rank id, then compared rank by rank, a few
// ranks at a time (each worker holds two traces), results in rank order.
void diff_rank_sets(const Opts& o, const analysis::DiffRules& rules,
                    const std::vector<std::string>& base_paths,
                    const std::vector<std::string>& new_paths) {
  std::vector<analysis::RankIdentity> base, neu;
  std::string err;
  if (!analysis::identify_rank_paths(base_paths, &base, &err)) fail(err);
  if (!analysis::identify_rank_paths(new_paths, &neu, &err)) fail(err);
  if (!analysis::match_rank_sets(base, neu, &err)) fail(err);
  Progress progress("diff");
  const size_t n = base.size();
  const size_t workers =
      std::min<size_t>({n, std::max(1u, std::thread::hardware_concurrency()), size_t{4}});
  std::vector<analysis::RankDiff> diffs(n);
  std::vector<std::exception_ptr> errors(n);
  std::atomic<size_t> next{0}, done{0};
  std::atomic<bool> failed{false};  // the first error stops the others taking more ranks
  auto work = [&] {
    for (size_t i; !failed.load() && (i = next.fetch_add(1)) < n;) {
      try {
        diffs[i] = {base[i].rank, diff_pair(base[i].path, neu[i].path, rules)};
      } catch (...) {
        errors[i] = std::current_exception();
        failed = true;
      }
      progress.phase(fmt::format("comparing {} ranks", n),
                     static_cast<double>(++done) / static_cast<double>(n));
    }
  };
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);  // the first failing rank's one-line error
  progress.done();
  bool regressed = false;
  for (const auto& d : diffs) regressed |= !d.diff.regressions.empty();
  if (!o.out.empty()) write_output(o.out, analysis::rank_set_diff_markdown(diffs));
  if (o.json)
    fmt::print("{}\n", analysis::rank_set_diff_json(diffs, rules).dump(2));
  else if (o.out != "-")
    fmt::print("{}", analysis::rank_set_diff_text(diffs));
  if (regressed) throw CLI::RuntimeError(kExitRegression);
}

}  // namespace

void register_diff_command(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "diff", "Regressions between two runs (a CI gate): exit 0 clean, 1 regression, 2 error");
  cmd->add_option("BASE", o->base,
                  "Baseline trace; or a run of many ranks: a directory or a quoted glob of its "
                  "per-rank traces")
      ->required();
  cmd->add_option("NEW", o->neu, "New trace; or a run of many ranks, as BASE")->required();
  cmd->add_option(
      "--fail-on", o->fail_on,
      "Rules that fail the diff, comma separated: overflow, sqnr[=dB] (default 6), "
      "skipped, amax[=factor] (default 10), truncated (NEW truncated or with fewer "
      "steps than BASE), all, none; also divergence[=fraction] (default 0.1: a tensor's "
      "values differ from BASE by more than 10 % at some step; needs value sketches "
      "in both traces; not part of all). Default: all");
  cmd->add_option("-o,--output", o->out,
                  "Also write the diff as Markdown (.md); - writes the Markdown to stdout instead "
                  "of the text");
  cmd->add_flag("--json", o->json, "Print the result as JSON");
  cmd->footer(
      "Examples:\n"
      "  fpscope diff base.fpst new.fpst\n"
      "  fpscope diff base.fpst new.fpst --fail-on overflow,skipped,truncated\n"
      "  fpscope diff base.fpst new.fpst --fail-on sqnr=3,amax=4 -o diff.md\n"
      "  fpscope diff 'base/run-*.fpst' new/      # two runs of many ranks, rank by rank\n"
      "Rank sets: the traces of BASE and NEW are matched by rank id (metadata, else file name)\n"
      "and each rank's two traces are compared as two single traces; the sets must hold the\n"
      "same ranks and world size. Exit 1 when any rank regresses.\n"
      "A truncated NEW trace (a crashed run), or one with fewer steps than BASE, is a regression\n"
      "(rule truncated, on by default).\n"
      "Exit codes: 0 no regression, 1 regression, 2 error (bad input).");
  cmd->callback([o]() {
    analysis::DiffRules rules;
    std::string err;
    if (!o->fail_on.empty() && !analysis::parse_fail_on(o->fail_on, &rules, &err)) fail(err);
    if (o->json && o->out == "-") fail("-o - and --json both write to stdout: pick one");
    const std::vector<std::string> base_paths = trace_paths({o->base});
    const std::vector<std::string> new_paths = trace_paths({o->neu});
    if (base_paths.size() > 1 || new_paths.size() > 1) {
      diff_rank_sets(*o, rules, base_paths, new_paths);
      return;
    }
    Progress progress("diff");
    trace::Trace b, n;
    load_trace(base_paths.front(), &b, &progress);
    load_trace(new_paths.front(), &n, &progress);
    progress.phase("analysing", 0.0);
    analysis::AnalysisOptions ao;
    ao.run_whatif = false;
    ao.run_drift = false;
    const trace::TraceModel bm(b), nm(n);
    const auto ba = analysis::analyze(bm, ao, [&](double f) { progress.fraction(0.45 * f); });
    const auto na =
        analysis::analyze(nm, ao, [&](double f) { progress.fraction(0.45 + 0.45 * f); });
    const auto d = analysis::diff_runs(bm, ba, nm, na, rules);
    progress.done();
    if (!o->out.empty()) write_output(o->out, analysis::diff_markdown(d, b, n));
    if (o->json)
      fmt::print("{}\n", analysis::diff_json(d, rules).dump(2));
    else if (o->out != "-")
      fmt::print("{}", analysis::diff_text(d, b, n));
    if (!d.regressions.empty()) throw CLI::RuntimeError(kExitRegression);
  });
}

}  // namespace fpscope::cli
