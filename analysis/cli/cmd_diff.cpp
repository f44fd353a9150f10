#include <fmt/format.h>

#include "cli_common.h"
#include "fpscope/analysis/diff.h"
#include "fpscope/analysis/findings.h"
#include "fpscope/analysis/report.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

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
                  "skipped, amax[=factor] (default 10), all, none. Default: all");
  cmd->add_option("-o,--output", o->out, "Also write the diff as Markdown (.md)");
  cmd->add_flag("--json", o->json, "Print the result as JSON");
  cmd->footer(
      "Examples:\n"
      "  fpscope diff base.fpst new.fpst\n"
      "  fpscope diff base.fpst new.fpst --fail-on overflow,skipped\n"
      "  fpscope diff base.fpst new.fpst --fail-on sqnr=3,amax=4 -o diff.md\n"
      "Exit codes: 0 no regression, 1 regression, 2 error (bad input).");
  cmd->callback([o]() {
    analysis::DiffRules rules;
    std::string err;
    if (!o->fail_on.empty() && !analysis::parse_fail_on(o->fail_on, &rules, &err)) fail(err);
    Progress progress("diff");
    trace::Trace b, n;
    progress.phase("reading " + o->base);
    load_trace(o->base, &b);
    progress.phase("reading " + o->neu);
    load_trace(o->neu, &n);
    progress.phase("analysing");
    analysis::AnalysisOptions ao;
    ao.run_whatif = false;
    const trace::TraceModel bm(b), nm(n);
    const auto ba = analysis::analyze(bm, ao);
    const auto na = analysis::analyze(nm, ao);
    const auto d = analysis::diff_runs(bm, ba, nm, na, rules);
    progress.done();
    if (!o->out.empty()) {
      std::ofstream f(o->out, std::ios::binary | std::ios::trunc);
      f << analysis::diff_markdown(d, b, n);
      f.close();
      if (!f) fail(fmt::format("{}: cannot write", o->out));
    }
    if (o->json) {
      nlohmann::ordered_json j;
      j["base"] = b.path;
      j["new"] = n.path;
      j["matched"] = d.drift.size();
      j["only_base"] = d.only_base;
      j["only_new"] = d.only_new;
      j["base_skipped"] = d.base_skipped;
      j["new_skipped"] = d.new_skipped;
      auto regs = nlohmann::ordered_json::array();
      for (const auto& r : d.regressions)
        regs.push_back({{"rule", r.rule}, {"tensor", r.tensor_id}, {"message", r.message}});
      j["regressions"] = regs;
      fmt::print("{}\n", j.dump(2));
    } else {
      fmt::print("{}", analysis::diff_text(d, b, n));
    }
    if (!d.regressions.empty()) throw CLI::RuntimeError(kExitRegression);
  });
}

}  // namespace fpscope::cli
