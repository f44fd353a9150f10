#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "cli_common.h"
#include "fpscope/analysis/findings.h"
#include "fpscope/analysis/summary.h"

namespace fpscope::cli {

namespace {
// Columns of the terminal on stdout; 0 (unlimited) when stdout is not a terminal.
int terminal_width() {
  winsize ws{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 0;
}
}  // namespace

void register_summary_command(CLI::App& app) {
  struct Opts {
    std::string file;
    bool json = false;
    int rows = 40;
    std::string tensor;
    analysis::AnalysisOptions analysis;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "summary", "Run facts, per-tensor format risk (worst first), loss scale, watched weights");
  cmd->add_option("FILE", o->file, "Trace file (.fpst)")->required();
  cmd->add_flag("--json", o->json, "Print the stable JSON summary (docs/summary-json.md)");
  cmd->add_option("--rows", o->rows, "Rows of the tensor table (human output)")
      ->capture_default_str();
  cmd->add_option("--tensor", o->tensor, "Only this tensor (id or name)");
  add_whatif_options(cmd, &o->analysis);
  cmd->footer(
      "Examples:\n"
      "  fpscope summary run.fpst\n"
      "  fpscope summary run.fpst --json | jq '.tensors[0]'\n"
      "  fpscope summary run.fpst --tensor gemm#3.D");
  cmd->callback([o]() {
    trace::Trace t;
    Progress progress("summary");
    progress.phase("reading " + o->file);
    load_trace(o->file, &t);
    int64_t only = -1;
    if (!o->tensor.empty()) only = find_tensor(t, o->tensor);
    progress.phase("analysing");
    const trace::TraceModel model(t);
    auto a = analysis::analyze(model, o->analysis);
    if (only >= 0) {
      std::erase_if(a.risks, [&](const auto& r) { return r.tensor != only; });
      std::erase_if(a.findings, [&](const auto& f) { return f.tensor >= 0 && f.tensor != only; });
      std::erase_if(a.whatif, [&](const auto& w) { return w.tensor != only; });
    }
    const std::string out = o->json ? analysis::summary_json(t, a).dump(2) + "\n"
                                    : analysis::summary_text(t, a, o->rows, terminal_width());
    progress.done();
    fmt::print("{}", out);
  });
}

}  // namespace fpscope::cli
