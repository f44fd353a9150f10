#include "cmd_compare.h"

#include <cstdio>
#include <deque>
#include <memory>

#include <fmt/format.h>

#include "cli_common.h"
#include "compare_record.h"
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

namespace {

// `fpscope compare --emulate LIST [-o DIR] -- CMD`: one recording per setting, then the report
// of those traces (DIR/report.md and DIR/report.json).
int record_and_compare(const CompareRecordOptions& ro) {
  if (ro.command.empty())
    fail("compare --emulate: no command given (... --emulate fp32,bf16 -- CMD)");
  if (const std::string why = compare_settings_error(ro.settings); !why.empty())
    fail("compare --emulate: " + why);
  std::string error;
  const std::vector<RecordedRun> runs = record_each_setting(ro, &error);
  if (!error.empty()) fail("compare: " + error);
  std::vector<std::string> paths, labels;
  for (const RecordedRun& r : runs) {
    if (!r.has_trace) {
      std::fprintf(stderr, "[fpscope] compare: %s left no trace; it is not in the report\n",
                   r.label.c_str());
      continue;
    }
    paths.push_back(r.path);
    labels.push_back(r.label);
  }
  if (paths.empty() || paths[0] != runs[0].path)
    fail("compare: the reference run (" + ro.settings[0] +
         ") left no trace: nothing to compare with");
  if (paths.size() < 2) fail("compare: only the reference run left a trace: nothing to compare");
  const std::string md = ro.out_dir + "/report.md", js = ro.out_dir + "/report.json";
  CompareCliOptions c;
  c.format = "md";
  c.out = md;
  write_compare_report(paths, labels, c);
  c.format = "json";
  c.out = js;
  write_compare_report(paths, labels, c);
  std::fprintf(stderr, "[fpscope] compare: report written to %s (and %s)\n", md.c_str(),
               js.c_str());
  int worst = 0;
  for (const RecordedRun& r : runs) worst = r.exit_code != 0 ? r.exit_code : worst;
  return worst;
}

}  // namespace

void register_compare_command(CLI::App& app) {
  struct Opts {
    std::vector<std::string> args;
    std::vector<std::string> labels;
    CompareCliOptions cli;
    CompareRecordOptions rec;
    bool out_given = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "compare",
      "Runs of one deterministic program (e.g. FP32 and --emulate bf16) compared with the first, "
      "tensor by tensor, from their value sketches; with --emulate, makes the runs first");
  cmd->add_option("TRACE_OR_CMD", o->args,
                  "Without --emulate: the reference trace, then one or more traces of the same "
                  "program. With --emulate: the command to run (after --)")
      ->required();
  cmd->add_option("--emulate", o->rec.settings,
                  "Run the command once per setting, comma-separated, the first the reference: "
                  "fp32 or an --emulate SPEC of `fpscope record` (bf16, fp16, e4m3, e5m2, "
                  "hybrid, with :current or :delayed...), e.g. fp32,bf16,e4m3")
      ->delimiter(',');
  cmd->add_option("--every", o->rec.every,
                  "With --emulate: record every N-th step (FPSCOPE_EVERY; default the probe's)");
  cmd->add_option("--watch", o->rec.watch, "With --emulate: as `fpscope record --watch`");
  cmd->add_option("--emulate-skip", o->rec.emulate_skip,
                  "With --emulate: ops kept in FP32 in every emulated run (as `fpscope record "
                  "--emulate-skip`)");
  cmd->add_flag("--no-python-hooks", o->rec.no_python_hooks,
                "With --emulate: do not load the PyTorch integration");
  cmd->add_option("--format", o->cli.format, "md (Markdown) or json (without --emulate)")
      ->check(CLI::IsMember({"md", "json"}))
      ->capture_default_str();
  cmd->add_option("-o,--output", o->cli.out,
                  "Without --emulate: write the report here (- = stdout, the default). With "
                  "--emulate: the directory for the traces and report.md/report.json (default "
                  "fpscope-compare)");
  cmd->add_option("--label", o->labels,
                  "The runs' labels, in TRACE order (repeat or comma separate; default: the "
                  "trace's emulation spec, else its file name)")
      ->delimiter(',');
  cmd->positionals_at_end();  // from CMD on, everything belongs to CMD, options included
  cmd->footer(
      "Examples:\n"
      "  fpscope compare --emulate fp32,bf16,e4m3 -o cmp -- python3 train.py --steps 50\n"
      "  fpscope compare fp32.fpst bf16.fpst e4m3.fpst -o compare.md\n"
      "  fpscope compare fp32.fpst bf16.fpst --format json | jq '.comparisons[0].tensors[0]'\n"
      "Per-tensor differences need value sketches in the traces: --emulate records with them;\n"
      "for traces of your own, record with --sketch (FPSCOPE_SKETCH=1; on by default under\n"
      "--emulate).");
  cmd->callback([o]() {
    int rc = kExitOk;
    if (!o->rec.settings.empty()) {
      if (!o->labels.empty())
        fail("compare --emulate: the runs are labelled by their settings; drop --label");
      o->rec.out_dir = o->cli.out == "-" ? "fpscope-compare" : o->cli.out;
      o->rec.command = o->args;
      rc = record_and_compare(o->rec);
    } else {
      if (!o->rec.every.empty() || !o->rec.watch.empty() || !o->rec.emulate_skip.empty() ||
          o->rec.no_python_hooks)
        fail("compare: --every, --watch, --emulate-skip and --no-python-hooks need --emulate");
      if (o->args.size() < 2)
        fail(
            "compare needs a reference trace and at least one other trace (or --emulate LIST -- "
            "CMD)");
      rc = write_compare_report(o->args, o->labels, o->cli);
    }
    if (rc != kExitOk) throw CLI::RuntimeError(rc);
  });
}

}  // namespace fpscope::cli
