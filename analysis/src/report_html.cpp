// The report model as one self-contained HTML file: inline CSS and SVG, nothing fetched.
// First screen: title, verdict, at most kCausesBeforeFold causes; run facts and plots follow;
// every long list (all findings, tables, further causes) is a closed <details>. Every piece of
// someone else's text (tensor ids and names, titles that quote them, paths, metadata) goes
// through html_text().
#include <fmt/format.h>

#include "fpscope/analysis/ranks.h"
#include "fpscope/analysis/report.h"
#include "fpscope/analysis/text_escape.h"
#include "report_model.h"
#include "svg.h"

namespace fpscope::analysis {

namespace {

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

const char* verdict_color(VerdictState v) {
  switch (v) {
    case VerdictState::Healthy:
      return "#2ca02c";
    case VerdictState::AtRisk:
      return "#ff7f0e";
    case VerdictState::Broken:
      return "#d62728";
    case VerdictState::Unmeasured:
      return "#777";
  }
  return "#777";
}

void head(const detail::ReportModel& m, std::string& h) {
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += fmt::format("<title>{}</title>\n", html_text(m.title));
  h += "<style>\nbody{font-family:sans-serif;max-width:1000px;margin:1em auto;padding:0 8px;"
       "color:#222;overflow-wrap:anywhere}\nh1{font-size:22px;margin:0.3em 0}"
       "h2{font-size:18px}\n"
       "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px "
       "6px;text-align:right}td:first-child,th:first-child{text-align:left}\n"
       ".wide{overflow-x:auto;max-width:100%}svg{max-width:100%;height:auto}\n"
       ".sev{color:#fff;border-radius:3px;padding:0 5px;font-size:12px}\n"
       ".verdict{border:2px solid;border-radius:6px;padding:0.4em 0.8em;margin:0.5em 0}\n"
       ".verdict p{margin:0.3em 0}.vh{font-size:20px;font-weight:bold}\n"
       ".causes{padding-left:1.6em;margin:0.3em 0}.cause{margin:0.35em 0}\n"
       ".finding{margin:0.8em 0;padding:0.4em 0.8em;border-left:4px solid #ccc}\n"
       ".ev{color:#444;font-size:13px}.rec{font-size:13px}\n"
       "summary{cursor:pointer;font-weight:bold;margin:0.6em 0}\n</style>\n</head>\n<body>\n";
  h += fmt::format("<h1>{}</h1>\n", html_text(m.title));
}

void verdict(const Verdict& v, std::string& h) {
  h += fmt::format(
      "<div class=\"verdict\" id=\"verdict\" style=\"border-color:{0}\"><p class=\"vh\" "
      "style=\"color:{0}\">Verdict: {1}</p>\n<p>",
      verdict_color(v.state), html_text(v.headline));
  for (size_t i = 0; i < v.why.size(); ++i) h += (i ? " " : "") + html_text(v.why[i]);
  h += fmt::format("</p>\n<p><b>Next action:</b> {}</p></div>\n", html_text(v.next_action));
}

void cause_items(const std::vector<Cause>& cs, size_t from, size_t to, std::string& h) {
  h += fmt::format("<ol class=\"causes\" start=\"{}\">\n", from + 1);
  for (size_t i = from; i < to; ++i) {
    const Cause& c = cs[i];
    h += fmt::format(
        "<li class=\"cause\"><span class=\"sev\" style=\"background:{}\">{}</span> {}<div "
        "class=\"ev\">{}</div><div class=\"rec\">Do: {}</div></li>\n",
        severity_color(c.severity), severity_name(c.severity), html_text(c.title),
        html_text(c.evidence), html_text(c.recommendation));
  }
  h += "</ol>\n";
}

void causes(const detail::ReportModel& m, std::string& h) {
  const auto& cs = m.causes.causes;
  h += fmt::format("<h2 id=\"causes\">Causes ({}, from {})</h2>\n", cs.size(),
                   plural(m.findings.all.size(), "finding"));
  if (cs.empty()) h += "<p>No problems found.</p>\n";
  cause_items(cs, 0, m.causes_first, h);
  if (m.causes_first < cs.size()) {
    h += fmt::format("<details><summary>{} more causes</summary>\n", cs.size() - m.causes_first);
    cause_items(cs, m.causes_first, cs.size(), h);
    h += "</details>\n";
  }
}

void facts(const detail::ReportModel& m, std::string& h) {
  h += "<h2>Run</h2>\n<div class=\"wide\"><table>\n";
  for (const auto& [k, v] : m.facts)
    h +=
        fmt::format("<tr><th>{}</th><td style=\"text-align:left\">{}</td></tr>\n", k, html_text(v));
  h += "</table></div>\n";
}

void findings(const detail::ReportFindings& fs, std::string& h) {
  if (fs.all.empty()) return;
  h += fmt::format(
      "<details id=\"findings\"><summary>All findings ({}), one per tensor and "
      "format</summary>\n",
      fs.all.size());
  for (size_t i : fs.listed) {
    const Finding& f = fs.all[i];
    h += fmt::format(
        "<div class=\"finding\" style=\"border-color:{0}\"><span class=\"sev\" "
        "style=\"background:{0}\">{1}</span> <b>{2}</b><div class=\"ev\">Evidence: {3}</div><div "
        "class=\"rec\">Recommendation: {4}</div></div>\n",
        severity_color(f.severity), severity_name(f.severity), html_text(f.title),
        html_text(f.evidence), html_text(f.recommendation));
  }
  if (!fs.left_note.empty()) h += "<p>" + html_text(fs.left_note) + "</p>\n";
  h += "</details>\n";
}

void plots(const detail::ReportModel& m, std::string& h) {
  if (m.loss_scale) h += "<h2>Loss scale</h2>\n" + m.loss_scale->svg;
  if (!m.tensor_plots.empty()) h += "<h2>Tensors</h2>\n";
  for (const auto& p : m.tensor_plots) {
    h += fmt::format("<h3>{}</h3>\n", html_text(p.label));
    h += p.amax_sqnr.svg;
    h += p.exponents.svg;
  }
}

void tensor_table(const detail::ReportTensorTable& tt, std::string& h) {
  h += fmt::format(
      "<details><summary>Per-tensor table ({} tensors)</summary>\n<div "
      "class=\"wide\"><table>\n",
      tt.rows.size() + tt.left);
  h += "<tr><th>tensor</th><th>severity</th><th>role</th>"
       "<th>dtype</th><th>shape</th><th>obs</th><th>amax</th><th>NaN/Inf</th>";
  for (int i = 0; i < kNumTargets; ++i)
    h += fmt::format("<th>{0} ovf</th><th>{0} unf</th><th>{0} SQNR</th>", spec(kTargets[i]).name);
  h += "</tr>\n";
  for (const TensorRisk* rp : tt.rows) {
    const TensorRisk& r = *rp;
    h += fmt::format(
        "<tr><td>{}</td><td style=\"color:{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</"
        "td><td>{}</td><td>{}</td>",
        html_text(r.id), severity_color(r.severity), severity_name(r.severity),
        trace::role_name(r.role), spec(r.dtype).name, detail::shape_str(r), r.observations,
        fmt_num(r.amax), detail::nonfinite_str(r));
    for (const auto& f : r.formats)
      h += fmt::format("<td>{}</td><td>{}</td><td>{}</td>", fmt_pct(f.overflow_frac),
                       fmt_pct(f.underflow_frac), detail::sqnr_str(f.sqnr_db));
    h += "</tr>\n";
  }
  h += "</table></div>\n";
  if (tt.left > 0)
    h += fmt::format("<p>... {} more tensors (fpscope summary --json: .tensors).</p>\n", tt.left);
  h += "</details>\n";
}

void block_table(const detail::ReportBlocks& b, std::string& h) {
  h += fmt::format(
      "<details><summary>Block-scaled formats ({} tensors)</summary>\n<p>{}</p>\n<div "
      "class=\"wide\"><table>\n<tr><th>tensor</th>",
      b.rows.size() + b.left, html_text(detail::kBlockTableNote));
  for (int f : b.formats)
    h += fmt::format("<th>{0} loss</th><th>{0} SQNR</th>", detail::block_format_display_name(f));
  h += "</tr>\n";
  for (const auto& r : b.rows) {
    h += fmt::format("<tr><td>{}</td>", html_text(r.id));
    for (int f : b.formats)
      h += fmt::format("<td>{}</td><td>{}</td>", detail::block_loss_str(r.totals, f),
                       detail::block_sqnr_str(r.totals, f));
    h += "</tr>\n";
  }
  h += "</table></div>\n";
  if (b.left > 0)
    h += fmt::format(
        "<p>... {} more tensors (fpscope summary --json: .tensors[].block_formats).</p>\n", b.left);
  h += "</details>\n";
}

void weights_left_out(const detail::ReportModel& m, std::string& h) {
  if (m.weights_left_out.empty()) return;
  h += fmt::format("<p>{} parameters were not watched:</p>\n<ul>\n", m.weights_left_out.size());
  for (const auto& l : m.weights_left_out)
    h += fmt::format("<li>{}: {}</li>\n", html_text(l.name), html_text(l.reason));
  h += "</ul>\n";
}

void weights(const detail::ReportModel& m, std::string& h) {
  if (m.weights.empty()) {
    if (!m.weights_left_out.empty()) h += "<h2>Watched master weights</h2>\n";
    return weights_left_out(m, h);
  }
  h += "<h2>Watched master weights</h2>\n<div "
       "class=\"wide\"><table>\n<tr><th>weight</th><th>master</th>"
       "<th>updates</th><th>watched</th><th>bf16 stagnant</th><th>bf16 lost mass</th><th>fp16 "
       "stagnant</th>"
       "<th>fp16 lost mass</th><th>below BF16 half-ulp</th><th>below FP16 half-ulp</th></tr>\n";
  for (const WeightLoss* wp : m.weights) {
    const WeightLoss& w = *wp;
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</"
        "td><td>{}</td><td>{}</td></tr>\n",
        html_text(w.name), detail::master_str(w), w.updates, detail::watched_str(w),
        stagnant_text(w.bf16_stagnant, w.bf16_stagnant_lo, w.bf16_stagnant_hi, w.sampled),
        fmt_pct(w.bf16_lost_mass),
        stagnant_text(w.fp16_stagnant, w.fp16_stagnant_lo, w.fp16_stagnant_hi, w.sampled),
        fmt_pct(w.fp16_lost_mass), fmt_pct(w.below_bf16_half_ulp), fmt_pct(w.below_fp16_half_ulp));
  }
  h += "</table></div>\n";
  if (const std::string note = detail::sampled_note(m.weights); !note.empty())
    h += "<p>" + html_text(note) + "</p>\n";
  for (const auto& p : m.weight_plots) h += p.svg;
  weights_left_out(m, h);
}

void format_choices(const detail::ReportFormatChoices& s, std::string& h) {
  h += fmt::format(
      "<h4>Format comparison</h4>\n<p>{}</p>\n<div class=\"wide\"><table>\n<tr><th>"
      "tensor</th><th>covers</th>",
      html_text(s.note));
  for (int c : s.columns) h += fmt::format("<th>{}</th>", kFormatCandidates[c].display);
  h += "<th>recommended</th></tr>\n";
  for (const FormatChoice* ch : s.rows) {
    h += fmt::format("<tr><td>{}</td><td>{}</td>", html_text(ch->id),
                     html_text(detail::format_choice_covers(*ch)));
    for (int c : s.columns)
      h += fmt::format("<td>{}</td>", html_text(detail::format_choice_cell(ch->result[c])));
    h += fmt::format("<td>{}</td></tr>\n", kFormatCandidates[ch->recommended].display);
  }
  h += "</table></div>\n";
  if (s.left > 0)
    h += fmt::format(
        "<p>... {} more rows (fpscope summary --json: .tensors[].format_choice).</p>\n", s.left);
}

void whatif(const detail::ReportWhatIf& s, std::string& h) {
  h += fmt::format(
      "<details><summary>FP8 what-if (delayed scaling: {})</summary>\n<div "
      "class=\"wide\">",
      html_text(s.policy));
  h += "<table>\n<tr><th>tensor</th><th>format</th><th>replayed steps</th><th>saturating "
       "steps</th><th>first</th><th>overflow</th><th>underflow</th><th>counts</th></tr>\n";
  for (const WhatIfTensor* wp : s.rows) {
    const WhatIfTensor& w = *wp;
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}"
        "</td></tr>\n",
        html_text(w.id), spec(w.format).name, w.steps.size(), w.saturate_steps,
        detail::first_saturate_str(w), fmt_pct(w.overflow_frac), fmt_pct(w.underflow_frac),
        detail::counts_name(w));
  }
  if (s.rows.empty()) h += "<tr><td>(none saturates or underflows)</td></tr>\n";
  h += "</table></div>\n";
  if (s.left > 0)
    h += fmt::format("<p>... {} more rows (fpscope summary --json: .fp8_whatif).</p>\n", s.left);
  if (s.choices) format_choices(*s.choices, h);
  h += "</details>\n";
}

void drift(const detail::ReportDrift& s, std::string& h) {
  h += fmt::format(
      "<details><summary>Change points within the run</summary>\n<p>{}</p>\n<div "
      "class=\"wide\"><table>\n<tr><th>tensor</th>"
      "<th>step</th><th>series</th><th>before (median)</th><th>after</th></tr>\n",
      html_text(s.rule));
  for (const auto& [id, c] : s.rows)
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     html_text(id), c->step, c->series, detail::change_value(*c, c->before),
                     detail::change_value(*c, c->after));
  h += "</table></div>\n";
  if (s.left > 0)
    h +=
        fmt::format("<p>... {} more change points (fpscope summary --json: .drift).</p>\n", s.left);
  h += "</details>\n";
}

void baseline(const detail::ReportBaseline& b, std::string& h) {
  h += fmt::format(
      "<details><summary>Compared with baseline {}</summary>\n<div class=\"wide\"><table>\n"
      "<tr><th>tensor</th><th>amax "
      "base</th><th>amax run</th><th>ratio</th><th>first step beyond</th></tr>\n",
      html_text(b.path));
  for (const auto& d : b.tensors)
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     html_text(d.id), fmt_num(d.base_amax), fmt_num(d.other_amax),
                     fmt_num(d.amax_ratio), html_text(detail::first_beyond_str(d)));
  h += "</table></div>\n</details>\n";
}

// A rank set: the cross-rank verdict, findings and ranks, before the focus rank's own report.
void ranks(const detail::ReportRanks& r, std::string& h) {
  const RankSet& set = *r.set;
  h += fmt::format("<h2 id=\"ranks\">Ranks: {} traces of one run</h2>\n", set.ranks.size());
  verdict(r.causes.verdict, h);
  if (!set.findings.empty()) {
    h += "<div class=\"wide\"><table id=\"rank-findings\">\n<tr><th>severity</th><th>kind</th>"
         "<th>tensor</th><th>ranks</th><th>first step</th><th>finding</th></tr>\n";
    for (const auto& f : set.findings) {
      std::string rs;
      for (int64_t x : f.ranks) rs += (rs.empty() ? "" : ", ") + std::to_string(x);
      h += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:"
          "left\"><b>{}</b><br>{}<br><i>{}</i></td></tr>\n",
          severity_name(f.finding.severity), kind_name(f.finding.kind),
          html_text(f.finding.tensor_id), rs,
          f.finding.first_step >= 0 ? std::to_string(f.finding.first_step) : std::string("-"),
          html_text(f.finding.title), html_text(f.finding.evidence),
          html_text(f.finding.recommendation));
    }
    h += "</table></div>\n";
  }
  h += "<div class=\"wide\"><table id=\"rank-table\">\n<tr><th>rank</th><th>steps</th>"
       "<th>findings</th><th>verdict</th><th>trace</th></tr>\n";
  for (const auto& x : set.ranks)
    h += fmt::format("<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     x.identity.rank, x.identity.rank == r.focus_rank ? " (below)" : "",
                     x.steps ? fmt::format("{}..{}", x.first_step, x.last_step) : std::string("-"),
                     x.findings, html_text(x.verdict), html_text(x.identity.path));
  h += "</table></div>\n";
  for (const auto& p : r.heatmaps) h += p.svg;
  h += fmt::format("<p>The rest of this report is rank {}'s own.</p>\n", r.focus_rank);
}

}  // namespace

std::string render_html(const trace::TraceModel& model, const RunAnalysis& a,
                        const ReportOptions& opt) {
  const detail::ReportModel m = detail::build_report_model(model, a, opt);
  std::string h;
  head(m, h);
  if (m.ranks) ranks(*m.ranks, h);
  verdict(m.causes.verdict, h);
  causes(m, h);
  facts(m, h);
  findings(m.findings, h);
  plots(m, h);
  tensor_table(m.tensor_table, h);
  if (m.blocks) block_table(*m.blocks, h);
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
