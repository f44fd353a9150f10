// The report model as one self-contained HTML file: inline CSS and SVG, nothing fetched.
#include <fmt/format.h>

#include "fpscope/analysis/report.h"
#include "report_model.h"
#include "svg.h"

namespace fpscope::analysis {

namespace {

using detail::xml_escape;

const char* severity_color(Severity s) {
  switch (s) {
    case Severity::Critical:
      return "#7b0000";
    case Severity::Error:
      return "#d62728";
    case Severity::Warning:
      return "#ff7f0e";
    case Severity::Info:
      return "#1f77b4";
    default:
      return "#777";
  }
}

void head(const detail::ReportModel& m, std::string& h) {
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += fmt::format("<title>{}</title>\n", xml_escape(m.title));
  h += "<style>\nbody{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}\n"
       "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px "
       "6px;text-align:right}td:first-child,th:first-child{text-align:left}\n"
       ".sev{color:#fff;border-radius:3px;padding:0 5px;font-size:12px}\n"
       ".finding{margin:0.8em 0;padding:0.4em 0.8em;border-left:4px solid #ccc}\n"
       ".ev{color:#444;font-size:13px}.rec{font-size:13px}\n</style>\n</head>\n<body>\n";
  h += fmt::format("<h1>{}</h1>\n<table>\n", xml_escape(m.title));
  for (const auto& [k, v] : m.facts)
    h += fmt::format("<tr><th>{}</th><td style=\"text-align:left\">{}</td></tr>\n", k,
                     xml_escape(v));
  h += "</table>\n";
}

void findings(const detail::ReportFindings& fs, std::string& h) {
  h += fmt::format("<h2>Findings ({})</h2>\n", fs.all.size());
  if (fs.all.empty()) h += "<p>No problems found.</p>\n";
  for (size_t i : fs.listed) {
    const Finding& f = fs.all[i];
    h += fmt::format(
        "<div class=\"finding\" style=\"border-color:{0}\"><span class=\"sev\" "
        "style=\"background:{0}\">{1}</span> <b>{2}</b><div class=\"ev\">Evidence: {3}</div><div "
        "class=\"rec\">Recommendation: {4}</div></div>\n",
        severity_color(f.severity), severity_name(f.severity), xml_escape(f.title),
        xml_escape(f.evidence), xml_escape(f.recommendation));
  }
  if (!fs.left_note.empty()) h += "<p>" + xml_escape(fs.left_note) + "</p>\n";
}

void plots(const detail::ReportModel& m, std::string& h) {
  if (m.loss_scale) h += "<h2>Loss scale</h2>\n" + m.loss_scale->svg;
  if (!m.tensor_plots.empty()) h += "<h2>Tensors</h2>\n";
  for (const auto& p : m.tensor_plots) {
    h += fmt::format("<h3>{}</h3>\n", xml_escape(p.label));
    h += p.amax_sqnr.svg;
    h += p.exponents.svg;
  }
}

void tensor_table(const detail::ReportTensorTable& tt, std::string& h) {
  h += "<h2>Per-tensor table</h2>\n<table>\n<tr><th>tensor</th><th>severity</th><th>role</th>"
       "<th>dtype</th><th>shape</th><th>obs</th><th>amax</th><th>NaN/Inf</th>";
  for (int i = 0; i < kNumTargets; ++i)
    h += fmt::format("<th>{0} ovf</th><th>{0} unf</th><th>{0} SQNR</th>", spec(kTargets[i]).name);
  h += "</tr>\n";
  for (const TensorRisk* rp : tt.rows) {
    const TensorRisk& r = *rp;
    h += fmt::format(
        "<tr><td>{}</td><td style=\"color:{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</"
        "td><td>{}</td><td>{}</td>",
        xml_escape(r.id), severity_color(r.severity), severity_name(r.severity),
        trace::role_name(r.role), spec(r.dtype).name, detail::shape_str(r), r.observations,
        fmt_num(r.amax), detail::nonfinite_str(r));
    for (const auto& f : r.formats)
      h += fmt::format("<td>{}</td><td>{}</td><td>{}</td>", fmt_pct(f.overflow_frac),
                       fmt_pct(f.underflow_frac), detail::sqnr_str(f.sqnr_db));
    h += "</tr>\n";
  }
  h += "</table>\n";
  if (tt.left > 0)
    h += fmt::format("<p>... {} more tensors (fpscope summary --json: .tensors).</p>\n", tt.left);
}

void weights(const detail::ReportModel& m, std::string& h) {
  if (m.weights.empty()) return;
  h += "<h2>Watched master weights</h2>\n<table>\n<tr><th>weight</th><th>master</th>"
       "<th>updates</th><th>bf16 stagnant</th><th>bf16 lost mass</th><th>fp16 stagnant</th>"
       "<th>fp16 lost mass</th><th>below BF16 half-ulp</th><th>below FP16 half-ulp</th></tr>\n";
  for (const WeightLoss* wp : m.weights) {
    const WeightLoss& w = *wp;
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</"
        "td><td>{}</td><td>{}</td></tr>\n",
        xml_escape(w.name), detail::master_str(w), w.updates, fmt_pct(w.bf16_stagnant),
        fmt_pct(w.bf16_lost_mass), fmt_pct(w.fp16_stagnant), fmt_pct(w.fp16_lost_mass),
        fmt_pct(w.below_bf16_half_ulp), fmt_pct(w.below_fp16_half_ulp));
  }
  h += "</table>\n";
  for (const auto& p : m.weight_plots) h += p.svg;
}

void whatif(const detail::ReportWhatIf& s, std::string& h) {
  h += fmt::format("<h2>FP8 what-if (delayed scaling: {})</h2>\n", xml_escape(s.policy));
  h += "<table>\n<tr><th>tensor</th><th>format</th><th>replayed steps</th><th>saturating "
       "steps</th><th>first</th><th>overflow</th><th>underflow</th><th>counts</th></tr>\n";
  for (const WhatIfTensor* wp : s.rows) {
    const WhatIfTensor& w = *wp;
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}"
        "</td></tr>\n",
        xml_escape(w.id), spec(w.format).name, w.steps.size(), w.saturate_steps,
        detail::first_saturate_str(w), fmt_pct(w.overflow_frac), fmt_pct(w.underflow_frac),
        detail::counts_name(w));
  }
  if (s.rows.empty()) h += "<tr><td>(none saturates or underflows)</td></tr>\n";
  h += "</table>\n";
  if (s.left > 0)
    h += fmt::format("<p>... {} more rows (fpscope summary --json: .fp8_whatif).</p>\n", s.left);
}

void drift(const detail::ReportDrift& s, std::string& h) {
  h += fmt::format(
      "<h2>Change points within the run</h2>\n<p>{}</p>\n<table>\n<tr><th>tensor</th>"
      "<th>step</th><th>series</th><th>before (median)</th><th>after</th></tr>\n",
      xml_escape(s.rule));
  for (const auto& [id, c] : s.rows)
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     xml_escape(id), c->step, c->series, detail::change_value(*c, c->before),
                     detail::change_value(*c, c->after));
  h += "</table>\n";
  if (s.left > 0)
    h +=
        fmt::format("<p>... {} more change points (fpscope summary --json: .drift).</p>\n", s.left);
}

void baseline(const detail::ReportBaseline& b, std::string& h) {
  h += fmt::format(
      "<h2>Compared with baseline {}</h2>\n<table>\n<tr><th>tensor</th><th>amax "
      "base</th><th>amax run</th><th>ratio</th><th>first step beyond</th></tr>\n",
      xml_escape(b.path));
  for (const auto& d : b.tensors)
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     xml_escape(d.id), fmt_num(d.base_amax), fmt_num(d.other_amax),
                     fmt_num(d.amax_ratio), xml_escape(detail::first_beyond_str(d)));
  h += "</table>\n";
}

}  // namespace

std::string render_html(const trace::TraceModel& model, const RunAnalysis& a,
                        const ReportOptions& opt) {
  const detail::ReportModel m = detail::build_report_model(model, a, opt);
  std::string h;
  head(m, h);
  findings(m.findings, h);
  plots(m, h);
  tensor_table(m.tensor_table, h);
  weights(m, h);
  if (m.whatif) whatif(*m.whatif, h);
  if (m.drift) drift(*m.drift, h);
  if (m.baseline) baseline(*m.baseline, h);
  h += fmt::format(
      "<p style=\"color:#888;font-size:12px\">Generated by {}. Definitions: docs/metrics.md.</p>\n"
      "</body>\n</html>\n",
      m.generator);
  return h;
}

}  // namespace fpscope::analysis
