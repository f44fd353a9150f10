// Reports: ranked findings with evidence and recommendations, plus plots.
//  - HTML: one self-contained file, inline SVG plots (amax and SQNR over steps, exponent heatmap
//    with each format's normal/subnormal band, loss-scale track with skipped steps).
//  - Markdown: GitHub-issue-ready; the SVG plots are written beside it in "<stem>_files/" and
//    referenced by relative path.
// Deterministic: the same inputs give byte-identical files (no clock, no absolute paths beyond
// the trace path given, numbers printed with fixed formats).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fpscope/analysis/findings.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace fpscope::analysis {

struct RankSet;

enum class ReportFormat : uint8_t { Html = 0, Markdown = 1 };

// ".html"/".htm" -> Html, ".md"/".markdown" -> Markdown; false for anything else.
bool report_format_from_path(const std::string& path, ReportFormat* out);

struct ReportOptions {
  std::string title;                            // default: "fpscope report: <trace file name>"
  const trace::TraceModel* baseline = nullptr;  // adds a "compared with baseline" section
  int max_findings = 30;        // findings listed (then one line says how many more, where)
  int max_whatif_findings = 5;  // ... of which FP8 what-if findings
  int max_drift_findings = 5;   // ... of which within-run drift findings
  int max_whatif_rows = 30;     // rows of the FP8 what-if table
  int max_drift_rows = 30;      // rows of the change-point table
  int max_tensor_rows = 50;     // rows of the per-tensor table (worst first), HTML and Markdown
  int max_tensor_plots = 6;     // tensors (worst first) that get amax/SQNR/heatmap plots
  // A rank set's report (ranks.h): the report of one rank (`focus_rank`, whose trace `model` is)
  // with a "Ranks" section: the cross-rank verdict, findings and one row per rank.
  const RankSet* ranks = nullptr;
  int64_t focus_rank = -1;
};

// One SVG document per plot, deterministic. Exposed so the GUI can export the same pictures.
std::string svg_amax_sqnr(const trace::TraceModel& model, uint32_t tensor);
std::string svg_exponent_heatmap(const trace::TraceModel& model, uint32_t tensor);
std::string svg_loss_scale(const RunAnalysis& a);  // empty string when no loss-scale records
// Update/weight ratio histogram of a watched weight with the BF16 (2^-9) and FP16 (2^-12)
// half-ulp lines.
std::string svg_weight_ratio(const WeightLoss& w);

std::string render_html(const trace::TraceModel& model, const RunAnalysis& a,
                        const ReportOptions& opt);

// Markdown text; `plot_dir_rel` is how the text references the plot folder (e.g.
// "report_files"); *plots receives (file name, SVG content) pairs to write there. plots ==
// nullptr: no plots and no references to them (Markdown written to stdout).
std::string render_markdown(const trace::TraceModel& model, const RunAnalysis& a,
                            const ReportOptions& opt, const std::string& plot_dir_rel,
                            std::vector<std::pair<std::string, std::string>>* plots);

// Writes the report in the format the extension names (Markdown also writes <stem>_files/).
// path "-": to stdout, in `format_for_stdout` (Markdown without plots). Returns false with a
// one-line *error naming the path and the system's reason on failure.
bool write_report(const trace::TraceModel& model, const RunAnalysis& a, const std::string& path,
                  const ReportOptions& opt, std::string* error,
                  ReportFormat format_for_stdout = ReportFormat::Html);

// "Copy summary for a bug ticket": a Markdown snippet about the selected tensors (all findings
// when empty) and step range [step_begin, step_end] (-1: open), no plots.
struct Selection {
  std::vector<uint32_t> tensors;
  int64_t step_begin = -1;
  int64_t step_end = -1;
};
std::string markdown_summary(const trace::TraceModel& model, const RunAnalysis& a,
                             const Selection& sel);

}  // namespace fpscope::analysis
