#include "cmd_compare.h"

#include <deque>
#include <memory>

#include <fmt/format.h>

#include "cli_common.h"
#include "fpscope/analysis/common.h"
#include "fpscope/analysis/compare.h"
#include "fpscope/analysis/text_escape.h"
#include "fpscope/trace_model.h"

namespace fpscope::cli {

std::string default_compare_label(const std::string& path, const std::string& metadata_json) {
  const analysis::RunMeta m = analysis::parse_run_meta(metadata_json);
  if (!m.emulate.empty()) return m.emulate;
  std::string stem = path.substr(path.find_last_of('/') + 1);  // npos + 1 == 0
  if (const size_t dot = stem.find_last_of('.'); dot != std::string::npos && dot > 0)
    stem.resize(dot);
  return stem.empty() ? path : stem;
}

int write_compare_report(const std::vector<std::string>& paths,
                         const std::vector<std::string>& labels, const CompareCliOptions& opts) {
  if (paths.size() < 2) fail("compare needs a reference trace and at least one other trace");
  if (opts.format != "md" && opts.format != "json")
    fail(fmt::format("--format: '{}' is not md or json", opts.format));
  if (labels.size() > paths.size())
    fail(fmt::format("{} labels for {} traces", labels.size(), paths.size()));
  Progress progress("compare");
  std::deque<trace::Trace> traces;  // stable addresses: the models refer to them
  std::deque<trace::TraceModel> models;
  std::vector<analysis::CompareInput> inputs;
  for (size_t i = 0; i < paths.size(); ++i) {
    load_trace(paths[i], &traces.emplace_back(), &progress);
    const trace::Trace& t = traces.back();
    std::string label = i < labels.size() && !labels[i].empty()
                            ? labels[i]
                            : default_compare_label(paths[i], t.metadata_json);
    for (int n = 2;; ++n) {  // unique labels: the report's columns are named by them
      bool taken = false;
      for (const auto& x : inputs) taken = taken || x.label == label;
      if (!taken) break;
      label = fmt::format("{} ({})",
                          i < labels.size() && !labels[i].empty()
                              ? labels[i]
                              : default_compare_label(paths[i], t.metadata_json),
                          n);
    }
    if (t.sketches.empty())
      progress.message(fmt::format(
          "fpscope: warning: {}: recorded without --sketch: no per-tensor difference; record "
          "with FPSCOPE_SKETCH=1 or --emulate",
          analysis::printable(paths[i])));
    inputs.push_back({label, &t, &models.emplace_back(t)});
  }
  progress.phase("comparing", 0.0);
  const analysis::CompareReport r = analysis::compare_report(inputs);
  const std::string text = opts.format == "json" ? analysis::compare_json(r).dump(2) + "\n"
                                                 : analysis::compare_markdown(r);
  progress.done();
  write_output(opts.out, text);
  return kExitOk;
}

void register_compare_command(CLI::App& app) {
  struct Opts {
    std::vector<std::string> files;
    std::vector<std::string> labels;
    CompareCliOptions cli;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "compare",
      "Runs of one deterministic program (e.g. FP32 and --emulate bf16) compared with the first, "
      "tensor by tensor, from their value sketches");
  cmd->add_option("TRACE", o->files,
                  "The reference trace, then one or more traces of the same program to compare "
                  "with it")
      ->required()
      ->expected(2, -1);
  cmd->add_option("--format", o->cli.format, "md (Markdown) or json")
      ->check(CLI::IsMember({"md", "json"}))
      ->capture_default_str();
  cmd->add_option("-o,--output", o->cli.out, "Write the report here (- = stdout)")
      ->capture_default_str();
  cmd->add_option("--label", o->labels,
                  "The runs' labels, in TRACE order (repeat or comma separate; default: the "
                  "trace's emulation spec, else its file name)")
      ->delimiter(',');
  cmd->footer(
      "Examples:\n"
      "  fpscope compare fp32.fpst bf16.fpst e4m3.fpst -o compare.md\n"
      "  fpscope compare fp32.fpst bf16.fpst --format json | jq '.comparisons[0].tensors[0]'\n"
      "Per-tensor differences need value sketches in the traces: record with FPSCOPE_SKETCH=1\n"
      "(on by default under --emulate).");
  cmd->callback([o]() {
    const int rc = write_compare_report(o->files, o->labels, o->cli);
    if (rc != kExitOk) throw CLI::RuntimeError(rc);
  });
}

}  // namespace fpscope::cli
