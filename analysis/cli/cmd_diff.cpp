#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "fpscope/analysis/diff.h"
#include "fpscope/analysis/findings.h"

namespace fpscope::cli {

void register_diff_command(CLI::App& app) {
  struct Opts {
    std::string base, neu, fail_on, out;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "diff", "Regressions between two runs (a CI gate): exit 0 clean, 1 regression, 2 error");
  cmd->add_option("BASE", o->base, "Baseline trace")->required();
  cmd->add_option("NEW", o->neu, "New trace")->required();
  cmd->add_option("--fail-on", o->fail_on,
                  "Rules that fail the diff, comma separated: overflow, sqnr[=dB] (default 6), "
                  "skipped, amax[=factor] (default 10), truncated (NEW truncated or with fewer "
                  "steps than BASE), all, none. Default: all");
  cmd->add_option("-o,--output", o->out,
                  "Also write the diff as Markdown (.md); - writes the Markdown to stdout instead "
                  "of the text");
  cmd->add_flag("--json", o->json, "Print the result as JSON");
  cmd->footer(
      "Examples:\n"
      "  fpscope diff base.fpst new.fpst\n"
      "  fpscope diff base.fpst new.fpst --fail-on overflow,skipped,truncated\n"
      "  fpscope diff base.fpst new.fpst --fail-on sqnr=3,amax=4 -o diff.md\n"
      "A truncated NEW trace (a crashed run), or one with fewer steps than BASE, is a regression\n"
      "(rule truncated, on by default).\n"
      "Exit codes: 0 no regression, 1 regression, 2 error (bad input).");
  cmd->callback([o]() {
    analysis::DiffRules rules;
    std::string err;
    if (!o->fail_on.empty() && !analysis::parse_fail_on(o->fail_on, &rules, &err)) fail(err);
    if (o->json && o->out == "-") fail("-o - and --json both write to stdout: pick one");
    Progress progress("diff");
    trace::Trace b, n;
    load_trace(o->base, &b, &progress);
    load_trace(o->neu, &n, &progress);
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
