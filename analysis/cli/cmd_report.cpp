#include <filesystem>
#include <memory>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cli_common.h"
#include "fpscope/analysis/findings.h"
#include "fpscope/analysis/ranks.h"
#include "fpscope/analysis/report.h"

namespace fpscope::cli {

void register_report_command(CLI::App& app) {
  struct Opts {
    std::vector<std::string> files;
    std::string file;
    std::string out = "report.html";
    std::string format;
    std::string baseline;
    std::string title;
    int max_findings = 30;
    int plots = 6;
    analysis::AnalysisOptions analysis;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "report", "Findings ranked by severity with evidence, recommendations and plots");
  cmd->add_option("FILE", o->files,
                  "Trace file (.fpst); several traces of one multi-rank run (paths, a glob, a "
                  "directory): a Ranks section, then the report of the first rank to fail")
      ->required();
  cmd->add_option("-o,--output", o->out,
                  "Report path: .html (one self-contained file, inline SVG) or .md (plots in "
                  "<name>_files/ beside it); - writes to stdout (HTML, or --format md without "
                  "plots)")
      ->capture_default_str();
  cmd->add_option("--format", o->format, "html | md: the report type for -o - (default html)")
      ->check(CLI::IsMember({"html", "md"}));
  cmd->add_option("--baseline", o->baseline, "Another trace of the same model to compare with");
  cmd->add_option("--title", o->title, "Report title");
  cmd->add_option("--max-findings", o->max_findings, "Findings listed")->capture_default_str();
  add_whatif_options(cmd, &o->analysis);
  cmd->add_option("--plots", o->plots, "Tensors (worst first) that get plots")
      ->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  fpscope report run.fpst -o report.html\n"
      "  fpscope report run.fpst -o issue.md          # + issue_files/*.svg for the ticket\n"
      "  fpscope report run.fpst -o - --format md     # Markdown on stdout, no plots\n"
      "  fpscope report fp16.fpst --baseline bf16.fpst -o cmp.html\n"
      "  fpscope report 'runs/run-*.fpst' -o ranks.html   # every rank of a run");
  cmd->callback([o]() {
    analysis::ReportFormat rf = analysis::ReportFormat::Html;
    if (o->out == "-") {
      if (o->format == "md") rf = analysis::ReportFormat::Markdown;
    } else if (!analysis::report_format_from_path(o->out, &rf)) {
      fail(fmt::format("{}: unknown report type (use .html or .md)", o->out));
    } else if (!o->format.empty() &&
               (o->format == "md") != (rf == analysis::ReportFormat::Markdown)) {
      fail(fmt::format("{}: --format {} does not match the file's extension", o->out, o->format));
    }
    Progress progress("report");
    const std::vector<std::string> paths = trace_paths(o->files);
    o->file = paths.front();
    analysis::ReportOptions ro;
    // Several traces: the rank set first (one trace in memory at a time), then the focus rank's
    // trace again: the first rank of the earliest first fault, else of the top cross-rank
    // finding, else the lowest rank.
    analysis::RankSet set;
    if (paths.size() > 1) {
      if (!o->baseline.empty()) fail("--baseline compares one trace with another: give one trace");
      analysis::RankOptions rank_opt;
      rank_opt.keep_summary_json = false;  // the report shows one row per rank
      set = load_rank_set(paths, o->analysis, &progress, rank_opt);
      // The earliest first fault (NaN/Inf or overflow) says which rank broke first.
      const analysis::RankFinding* lead = set.findings.empty() ? nullptr : &set.findings.front();
      for (const auto& f : set.findings)
        if (f.finding.kind == analysis::FindingKind::RankFirstFault &&
            (lead->finding.kind != analysis::FindingKind::RankFirstFault ||
             f.finding.first_step < lead->finding.first_step))
          lead = &f;
      const analysis::RankSummary* focus = &set.ranks.front();
      if (lead && !lead->ranks.empty())
        for (const auto& r : set.ranks)
          if (r.identity.rank == lead->ranks.front()) focus = &r;
      o->file = focus->identity.path;
      ro.ranks = &set;
      ro.focus_rank = focus->identity.rank;
      if (o->title.empty())
        o->title = fmt::format("fpscope report: {} ranks (rank {} in detail)", set.ranks.size(),
                               focus->identity.rank);
    }
    trace::Trace t, base;
    load_trace(o->file, &t, &progress);
    ro.title = o->title;
    ro.max_findings = o->max_findings;
    ro.max_tensor_plots = o->plots;
    std::unique_ptr<trace::TraceModel> base_model;
    if (!o->baseline.empty()) {
      load_trace(o->baseline, &base, &progress);
      base_model = std::make_unique<trace::TraceModel>(base);
      ro.baseline = base_model.get();
    }
    progress.phase("analysing " + o->file, 0.0);
    const trace::TraceModel model(t);
    const auto a = analysis::analyze(model, o->analysis, [&](double f) { progress.fraction(f); });
    progress.phase("writing " + o->out);
    if (o->out == "-") {
      std::string err;
      if (!analysis::write_report(model, a, o->out, ro, &err, rf)) fail(err);
    } else if (rf == analysis::ReportFormat::Html) {
      write_output(o->out, analysis::render_html(model, a, ro));  // whole or not at all
    } else {
      // As write_report, each file through write_output (whole or not at all): plots in
      // <stem>_files/ first, the Markdown that references them last.
      const std::filesystem::path p(o->out);
      const std::string dir_name = p.stem().string() + "_files";
      std::vector<std::pair<std::string, std::string>> plots;
      const std::string md = analysis::render_markdown(model, a, ro, dir_name, &plots);
      if (!plots.empty()) {
        std::error_code ec;
        const std::filesystem::path dir = p.parent_path() / dir_name;
        std::filesystem::create_directories(dir, ec);
        if (ec) fail(fmt::format("{}: cannot create directory: {}", dir.string(), ec.message()));
        for (const auto& [name, svg] : plots) write_output((dir / name).string(), svg);
      }
      write_output(o->out, md);
    }
    progress.done();
    if (o->out != "-") fmt::print("wrote {} ({} findings)\n", o->out, a.findings.size());
  });
}

}  // namespace fpscope::cli
