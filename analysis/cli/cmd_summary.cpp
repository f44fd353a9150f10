#include <unistd.h>

#include <memory>

#include <fmt/format.h>

#include "cli_common.h"
#include "fpscope/analysis/findings.h"
#include "fpscope/analysis/ranks.h"
#include "fpscope/analysis/summary.h"

namespace fpscope::cli {

void register_summary_command(CLI::App& app) {
  struct Opts {
    std::vector<std::string> files;
    std::string file;
    bool json = false;
    bool wide = false;
    int width = -1;
    int rows = 40;
    std::string tensor;
    std::string baseline;
    analysis::AnalysisOptions analysis;
  };
  auto o = std::make_shared<Opts>();
  // Several traces: one run of many ranks (ranks.h).
  auto summarize_ranks = [](const Opts& opts, const std::vector<std::string>& paths) {
    if (!opts.baseline.empty()) fail("--baseline compares one trace with another: give one trace");
    Progress progress("summary");
    analysis::RankOptions ro;
    ro.keep_summary_json = opts.json;  // the text prints one line per rank
    analysis::RankSet set = load_rank_set(paths, opts.analysis, &progress, ro);
    if (!opts.tensor.empty())
      std::erase_if(set.findings, [&](const auto& f) {
        return !f.finding.tensor_id.empty() && f.finding.tensor_id != opts.tensor;
      });
    int width = opts.wide ? 0 : opts.width;
    if (width < 0) {
      width = terminal_columns(STDOUT_FILENO);
      if (width == 0) width = 80;
    }
    const std::string out = opts.json ? analysis::rank_set_json(set).dump(2) + "\n"
                                      : analysis::rank_set_text(set, width);
    progress.done();
    fmt::print("{}", out);
  };
  auto* cmd = app.add_subcommand(
      "summary", "Run facts, per-tensor format risk (worst first), loss scale, watched weights");
  cmd->add_option("FILE", o->files,
                  "Trace file (.fpst); several traces of one multi-rank run (paths, a glob, a "
                  "directory) are matched by rank and summarized as one run")
      ->required();
  cmd->add_flag("--json", o->json, "Print the stable JSON summary (docs/summary-json.md)");
  cmd->add_option("--rows", o->rows, "Rows of the tensor table (human output)")
      ->capture_default_str();
  cmd->add_option("--width", o->width,
                  "Columns of the human output (default: the terminal's, 80 when not a terminal; "
                  "0 = unlimited)")
      ->check(CLI::Range(0, 100000));
  cmd->add_flag("--wide", o->wide,
                "One line per tensor with every format side by side (~200 "
                "columns; same as --width 0)");
  cmd->add_option("--tensor", o->tensor, "Only this tensor (id or name)");
  cmd->add_option("--baseline", o->baseline,
                  "Also compare with this trace of the same model: adds its baseline_drift "
                  "findings (as report --baseline does)");
  add_whatif_options(cmd, &o->analysis);
  cmd->footer(
      "Examples:\n"
      "  fpscope summary run.fpst\n"
      "  fpscope summary run.fpst --json | jq '.tensors[0]'\n"
      "  fpscope summary run.fpst --tensor gemm#3.D\n"
      "  fpscope summary fp16.fpst --baseline bf16.fpst --json | jq '.findings'\n"
      "  fpscope summary 'runs/run-*.fpst'            # every rank of a run: cross-rank findings\n"
      "  fpscope summary runs/ --json | jq '.findings'");
  cmd->callback([o, summarize_ranks]() {
    const std::vector<std::string> paths = trace_paths(o->files);
    if (paths.size() > 1) {
      summarize_ranks(*o, paths);
      return;
    }
    o->file = paths.front();
    trace::Trace t, base;
    Progress progress("summary");
    load_trace(o->file, &t, &progress);
    int64_t only = -1;
    if (!o->tensor.empty()) only = find_tensor(t, o->tensor);
    std::unique_ptr<trace::TraceModel> base_model;
    if (!o->baseline.empty()) {
      load_trace(o->baseline, &base, &progress);
      base_model = std::make_unique<trace::TraceModel>(base);
    }
    progress.phase("analysing " + o->file, 0.0);
    const trace::TraceModel model(t);
    auto a = analysis::analyze(model, o->analysis, [&](double f) { progress.fraction(f); });
    if (base_model) analysis::add_baseline_findings(*base_model, model, &a);
    if (only >= 0) {
      std::erase_if(a.risks, [&](const auto& r) { return r.tensor != only; });
      std::erase_if(a.findings, [&](const auto& f) { return f.tensor >= 0 && f.tensor != only; });
      std::erase_if(a.whatif, [&](const auto& w) { return w.tensor != only; });
      std::erase_if(a.drift, [&](const auto& d) { return d.tensor != only; });
    }
    int width = o->width;
    if (o->wide) width = 0;
    if (width < 0) {
      width = terminal_columns(STDOUT_FILENO);
      if (width == 0) width = 80;  // piped / redirected: an 80-column layout
    }
    const std::string out =
        o->json ? analysis::summary_json(t, a, base_model ? &base : nullptr).dump(2) + "\n"
                : analysis::summary_text(t, a, o->rows, width);
    progress.done();
    fmt::print("{}", out);
  });
}

}  // namespace fpscope::cli
