// Report entry points: the report file type from its name, writing a report (HTML, or Markdown
// with its plot folder), and the bug-ticket summary of a selection. The report itself is built
// once in report_model.cpp and serialized by report_html.cpp and report_markdown.cpp; its plots
// are drawn by report_svg.cpp.
#include "fpscope/analysis/report.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "fpscope/analysis/summary.h"
#include "fpscope/analysis/text_escape.h"
#include "report_model.h"

namespace fpscope::analysis {

bool report_format_from_path(const std::string& path, ReportFormat* out) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext == ".html" || ext == ".htm") {
    *out = ReportFormat::Html;
    return true;
  }
  if (ext == ".md" || ext == ".markdown") {
    *out = ReportFormat::Markdown;
    return true;
  }
  return false;
}

bool write_report(const trace::TraceModel& model, const RunAnalysis& a, const std::string& path,
                  const ReportOptions& opt, std::string* error, ReportFormat format_for_stdout) {
  namespace fs = std::filesystem;
  if (path == "-") {
    const std::string text = format_for_stdout == ReportFormat::Html
                                 ? render_html(model, a, opt)
                                 : render_markdown(model, a, opt, "", nullptr);
    return write_file("-", text, error);
  }
  ReportFormat rf;
  if (!report_format_from_path(path, &rf)) {
    if (error) *error = fmt::format("{}: unknown report type (use .html or .md)", path);
    return false;
  }
  if (rf == ReportFormat::Html) return write_file(path, render_html(model, a, opt), error);
  const fs::path p(path);
  const std::string dir_name = p.stem().string() + "_files";
  std::vector<std::pair<std::string, std::string>> plots;
  const std::string md = render_markdown(model, a, opt, dir_name, &plots);
  if (!plots.empty()) {
    std::error_code ec;
    const fs::path dir = p.parent_path() / dir_name;
    fs::create_directories(dir, ec);
    if (ec) {
      if (error)
        *error = fmt::format("{}: cannot create directory: {}", dir.string(), ec.message());
      return false;
    }
    for (const auto& [name, svg] : plots)
      if (!write_file((dir / name).string(), svg, error)) return false;
  }
  return write_file(path, md, error);
}

std::string markdown_summary(const trace::TraceModel& model, const RunAnalysis& a,
                             const Selection& sel) {
  const trace::Trace& t = model.trace();
  auto in_sel = [&](int64_t tensor) {
    if (sel.tensors.empty()) return true;
    return tensor >= 0 && std::find(sel.tensors.begin(), sel.tensors.end(),
                                    static_cast<uint32_t>(tensor)) != sel.tensors.end();
  };
  auto in_steps = [&](int64_t first) {
    if (first < 0) return true;
    if (sel.step_end >= 0 && first > sel.step_end) return false;
    return true;
  };
  // Names, paths and the titles that quote them are someone else's text: md_text().
  std::string m = fmt::format("**fpscope**: {}, {}{}\n\n", md_text(t.path), run_steps_text(t, a),
                              t.truncated ? " (trace truncated)" : "");
  if (sel.step_begin >= 0 || sel.step_end >= 0)
    m += fmt::format("Steps {}..{}\n\n", sel.step_begin >= 0 ? std::to_string(sel.step_begin) : "",
                     sel.step_end >= 0 ? std::to_string(sel.step_end) : "");
  int n = 0;
  for (const auto& f : a.findings) {
    if (!in_sel(f.tensor) || (!sel.tensors.empty() && f.tensor < 0) || !in_steps(f.first_step))
      continue;
    m += fmt::format("- **[{}]** {}  \n  {}  \n  -> {}\n", severity_name(f.severity),
                     md_text(f.title), md_text(f.evidence), md_text(f.recommendation));
    ++n;
  }
  if (n == 0) m += "- no findings for this selection\n";
  if (!sel.tensors.empty()) {
    m += "\n| tensor | dtype | shape | obs | amax | NaN/Inf | fp16 ovf / unf | bf16 SQNR |\n"
         "|---|---|---|--:|--:|--:|--:|--:|\n";
    const int i16 = target_index(Format::FP16), ib = target_index(Format::BF16);
    for (const auto& r : a.risks) {
      if (!in_sel(r.tensor)) continue;
      m += fmt::format("| {} | {} | {} | {} | {} | {} | {} / {} | {} |\n", md_text(r.id),
                       spec(r.dtype).name, detail::shape_str(r), r.observations, fmt_num(r.amax),
                       detail::nonfinite_str(r), fmt_pct(r.formats[i16].overflow_frac),
                       fmt_pct(r.formats[i16].underflow_frac),
                       detail::sqnr_str(r.formats[ib].sqnr_db));
    }
  }
  return m;
}

}  // namespace fpscope::analysis
