// The report model as GitHub-issue-ready Markdown (GFM tables, no raw HTML: ticket trackers
// strip it); plots are files the text references. First the verdict and at most
// kCausesBeforeFold causes, then the run facts, then an appendix with everything else. Every
// piece of someone else's text (tensor ids and names, titles that quote them, paths, metadata)
// goes through md_text() (text_escape.h), which also makes it safe inside a table cell: names are
// plain escaped text, not code spans (a backtick in a name would end the span).
#include <fmt/format.h>

#include "fpscope/analysis/ranks.h"
#include "fpscope/analysis/report.h"
#include "fpscope/analysis/text_escape.h"
#include "report_model.h"

namespace fpscope::analysis {

namespace {

using Plots = std::vector<std::pair<std::string, std::string>>;

void head(const detail::ReportModel& m, std::string& md) {
  md += fmt::format("## {}\n\n", md_text(m.title));
  const Verdict& v = m.causes.verdict;
  md += fmt::format("**Verdict: {}.**", md_text(v.headline));
  for (const auto& s : v.why) md += " " + md_text(s);
  md += fmt::format("\n\n**Next action:** {}\n", md_text(v.next_action));
}

void cause_table(const std::vector<Cause>& cs, size_t from, size_t to, std::string& md) {
  md += "| # | severity | cause | first step |\n|--:|---|---|--:|\n";
  for (size_t i = from; i < to; ++i) {
    const Cause& c = cs[i];
    md += fmt::format("| {} | {} | {} | {} |\n", i + 1, severity_name(c.severity), md_text(c.title),
                      c.first_step >= 0 ? std::to_string(c.first_step) : "-");
  }
}

void causes(const detail::ReportModel& m, std::string& md) {
  const auto& cs = m.causes.causes;
  md += fmt::format("\n### Causes ({}, from {})\n\n", cs.size(),
                    plural(m.findings.all.size(), "finding"));
  if (cs.empty()) {
    md += "No problems found.\n";
    return;
  }
  cause_table(cs, 0, m.causes_first, md);
  if (m.causes_first < cs.size())
    md += fmt::format("\n{} more causes in the appendix.\n", cs.size() - m.causes_first);
}

void facts(const detail::ReportModel& m, std::string& md) {
  md += "\n### Run\n\n| | |\n|---|---|\n";
  for (const auto& [k, v] : m.facts) md += fmt::format("| {} | {} |\n", k, md_text(v));
}

void appendix_causes(const detail::ReportModel& m, std::string& md) {
  const auto& cs = m.causes.causes;
  if (cs.empty()) return;
  md += "\n### Causes in detail\n\n";
  for (size_t i = 0; i < cs.size(); ++i) {
    const Cause& c = cs[i];
    md += fmt::format("{}. **[{}]** {}  \n   Evidence: {}  \n   Do: {}\n", i + 1,
                      severity_name(c.severity), md_text(c.title), md_text(c.evidence),
                      md_text(c.recommendation));
  }
}

void findings(const detail::ReportFindings& fs, std::string& md) {
  md += fmt::format("\n### All findings ({}), one per tensor and format\n\n", fs.all.size());
  if (fs.all.empty()) md += "No problems found.\n";
  for (size_t n = 0; n < fs.listed.size(); ++n) {
    const Finding& f = fs.all[fs.listed[n]];
    md += fmt::format("{}. **[{}]** {}  \n   Evidence: {}  \n   Recommendation: {}\n", n + 1,
                      severity_name(f.severity), md_text(f.title), md_text(f.evidence),
                      md_text(f.recommendation));
  }
  // The note is ours (a command line in a code span); only the trace path in it is foreign.
  if (!fs.left_note.empty()) md += "\n" + printable(fs.left_note) + "\n";
}

// References the plot and hands its file over; without a plot list (Markdown to stdout)
// neither.
void plot(const detail::ReportPlot& p, const std::string& dir, Plots* plots, std::string& md) {
  if (p.svg.empty() || !plots) return;
  plots->emplace_back(p.file, p.svg);
  md += fmt::format("\n![{}]({}/{})\n", md_text(p.alt), dir, p.file);
}

void tensor_table(const detail::ReportTensorTable& tt, std::string& md) {
  md +=
      "\n### Per-tensor table\n\n| tensor | severity | role | dtype | shape | obs | amax | "
      "NaN/Inf |";
  for (int i = 0; i < kNumTargets; ++i)
    md += fmt::format(" {0} ovf / unf / SQNR |", spec(kTargets[i]).name);
  md += "\n|---|---|---|---|---|--:|--:|--:|";
  for (int i = 0; i < kNumTargets; ++i) md += "--:|";
  md += "\n";
  for (const TensorRisk* rp : tt.rows) {
    const TensorRisk& r = *rp;
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |", md_text(r.id),
                      severity_name(r.severity), trace::role_name(r.role), spec(r.dtype).name,
                      detail::shape_str(r), r.observations, fmt_num(r.amax),
                      detail::nonfinite_str(r));
    for (const auto& f : r.formats)
      md += fmt::format(" {} / {} / {} |", fmt_pct(f.overflow_frac), fmt_pct(f.underflow_frac),
                        detail::sqnr_str(f.sqnr_db));
    md += "\n";
  }
  if (tt.left > 0)
    md += fmt::format("\n... {} more tensors (fpscope summary --json: .tensors).\n", tt.left);
}

void block_table(const detail::ReportBlocks& b, std::string& md) {
  md += fmt::format("\n### Block-scaled formats\n\n{}\n\n| tensor |", detail::kBlockTableNote);
  for (int f : b.formats)
    md += fmt::format(" {0} loss | {0} SQNR |", detail::block_format_display_name(f));
  md += "\n|---|";
  for (size_t i = 0; i < b.formats.size(); ++i) md += "--:|--:|";
  md += "\n";
  for (const auto& r : b.rows) {
    md += fmt::format("| {} |", md_text(r.id));
    for (int f : b.formats)
      md += fmt::format(" {} | {} |", detail::block_loss_str(r.totals, f),
                        detail::block_sqnr_str(r.totals, f));
    md += "\n";
  }
  if (b.left > 0)
    md += fmt::format("\n... {} more tensors (fpscope summary --json: .tensors[].block_formats).\n",
                      b.left);
}

void weights_left_out(const detail::ReportModel& m, std::string& md) {
  if (m.weights_left_out.empty()) return;
  md += fmt::format("\n{} parameters were not watched:\n\n", m.weights_left_out.size());
  for (const auto& l : m.weights_left_out)
    md += fmt::format("- {}: {}\n", md_text(l.name), md_text(l.reason));
}

void weights(const detail::ReportModel& m, const std::string& dir, Plots* plots, std::string& md) {
  if (m.weights.empty()) {
    if (!m.weights_left_out.empty()) md += "\n### Watched master weights\n";
    return weights_left_out(m, md);
  }
  md +=
      "\n### Watched master weights\n\n| weight | master | updates | watched | bf16 stagnant | "
      "bf16 lost mass | fp16 stagnant | fp16 lost mass | below BF16 half-ulp | below FP16 "
      "half-ulp |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const WeightLoss* wp : m.weights) {
    const WeightLoss& w = *wp;
    md += fmt::format(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", md_text(w.name),
        detail::master_str(w), w.updates, detail::watched_str(w),
        stagnant_text(w.bf16_stagnant, w.bf16_stagnant_lo, w.bf16_stagnant_hi, w.sampled),
        fmt_pct(w.bf16_lost_mass),
        stagnant_text(w.fp16_stagnant, w.fp16_stagnant_lo, w.fp16_stagnant_hi, w.sampled),
        fmt_pct(w.fp16_lost_mass), fmt_pct(w.below_bf16_half_ulp), fmt_pct(w.below_fp16_half_ulp));
  }
  if (const std::string note = detail::sampled_note(m.weights); !note.empty())
    md += "\n" + note + "\n";
  for (const auto& p : m.weight_plots) plot(p, dir, plots, md);
  weights_left_out(m, md);
}

void format_choices(const detail::ReportFormatChoices& s, std::string& md) {
  md += fmt::format("\n#### Format comparison\n\n{}\n\n| tensor | covers |", md_text(s.note));
  std::string rule = "|---|---|";
  for (int c : s.columns) {
    md += fmt::format(" {} |", kFormatCandidates[c].display);
    rule += "--:|";
  }
  md += " recommended |\n" + rule + "---|\n";
  for (const FormatChoice* ch : s.rows) {
    md += fmt::format("| {} | {} |", md_text(ch->id), detail::format_choice_covers(*ch));
    for (int c : s.columns) md += fmt::format(" {} |", detail::format_choice_cell(ch->result[c]));
    md += fmt::format(" {} |\n", kFormatCandidates[ch->recommended].display);
  }
  if (s.left > 0)
    md += fmt::format("\n... {} more rows (fpscope summary --json: .tensors[].format_choice).\n",
                      s.left);
}

void whatif(const detail::ReportWhatIf& s, std::string& md) {
  md += fmt::format(
      "\n### FP8 what-if (delayed scaling: {})\n\n| tensor | format | replayed steps | "
      "saturating steps | first | overflow | underflow | counts |\n"
      "|---|---|--:|--:|--:|--:|--:|---|\n",
      md_text(s.policy));
  for (const WhatIfTensor* wp : s.rows) {
    const WhatIfTensor& w = *wp;
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", md_text(w.id),
                      spec(w.format).name, w.steps.size(), w.saturate_steps,
                      detail::first_saturate_str(w), fmt_pct(w.overflow_frac),
                      fmt_pct(w.underflow_frac), detail::counts_name(w));
  }
  if (s.rows.empty()) md += "| (none saturates or underflows) | | | | | | | |\n";
  if (s.left > 0)
    md += fmt::format("\n... {} more rows (fpscope summary --json: .fp8_whatif).\n", s.left);
  if (s.choices) format_choices(*s.choices, md);
}

void drift(const detail::ReportDrift& s, std::string& md) {
  md += fmt::format(
      "\n### Change points within the run\n\n{}\n\n| tensor | step | series | before "
      "(median) | after |\n|---|--:|---|--:|--:|\n",
      md_text(s.rule));
  for (const auto& [id, c] : s.rows)
    md += fmt::format("| {} | {} | {} | {} | {} |\n", md_text(id), c->step, c->series,
                      detail::change_value(*c, c->before), detail::change_value(*c, c->after));
  if (s.left > 0)
    md += fmt::format("\n... {} more change points (fpscope summary --json: .drift).\n", s.left);
}

void baseline(const detail::ReportBaseline& b, std::string& md) {
  md += fmt::format(
      "\n### Compared with baseline {}\n\n| tensor | amax base | amax run | ratio "
      "| first step beyond |\n|---|--:|--:|--:|---|\n",
      md_text(b.path));
  for (const auto& d : b.tensors)
    md += fmt::format("| {} | {} | {} | {} | {} |\n", md_text(d.id), fmt_num(d.base_amax),
                      fmt_num(d.other_amax), fmt_num(d.amax_ratio), detail::first_beyond_str(d));
}

// A rank set: the cross-rank verdict, findings and ranks, before the focus rank's own report.
void ranks(const detail::ReportRanks& r, const std::string& dir, Plots* plots, std::string& md) {
  const RankSet& set = *r.set;
  const Verdict& v = r.causes.verdict;
  md += fmt::format("\n## Ranks: {} traces of one run\n\n**Verdict across ranks: {}.**",
                    set.ranks.size(), md_text(v.headline));
  for (const auto& w : v.why) md += " " + md_text(w);
  md += fmt::format("\n\n**Next action:** {}\n", md_text(v.next_action));
  if (!set.findings.empty()) {
    md +=
        "\n| severity | kind | tensor | ranks | first step | finding "
        "|\n|---|---|---|---|--:|---|\n";
    for (const auto& f : set.findings) {
      std::string rs;
      for (int64_t x : f.ranks) rs += (rs.empty() ? "" : ", ") + std::to_string(x);
      md += fmt::format(
          "| {} | {} | {} | {} | {} | **{}** {} _{}_ |\n", severity_name(f.finding.severity),
          kind_name(f.finding.kind), md_text(f.finding.tensor_id), rs,
          f.finding.first_step >= 0 ? std::to_string(f.finding.first_step) : std::string("-"),
          md_text(f.finding.title), md_text(f.finding.evidence), md_text(f.finding.recommendation));
    }
  }
  md += "\n| rank | steps | findings | verdict | trace |\n|--:|---|--:|---|---|\n";
  for (const auto& x : set.ranks)
    md += fmt::format("| {}{} | {} | {} | {} | {} |\n", x.identity.rank,
                      x.identity.rank == r.focus_rank ? " (below)" : "",
                      x.steps ? fmt::format("{}..{}", x.first_step, x.last_step) : std::string("-"),
                      x.findings, md_text(x.verdict), md_text(x.identity.path));
  for (const auto& p : r.heatmaps) plot(p, dir, plots, md);
  md += fmt::format("\nThe rest of this report is rank {}'s own.\n", r.focus_rank);
}

}  // namespace

std::string render_markdown(const trace::TraceModel& model, const RunAnalysis& a,
                            const ReportOptions& opt, const std::string& plot_dir_rel,
                            Plots* plots) {
  const detail::ReportModel m = detail::build_report_model(model, a, opt);
  std::string md;
  head(m, md);
  if (m.ranks) ranks(*m.ranks, plot_dir_rel, plots, md);
  causes(m, md);
  facts(m, md);
  md += "\n---\n\n## Appendix\n";
  appendix_causes(m, md);
  findings(m.findings, md);
  if (m.loss_scale) {
    md += "\n### Loss scale\n";
    plot(*m.loss_scale, plot_dir_rel, plots, md);
  }
  if (!m.tensor_plots.empty()) md += "\n### Tensors\n";
  for (const auto& p : m.tensor_plots) {
    md += fmt::format("\n#### {}\n", md_text(p.label));
    plot(p.amax_sqnr, plot_dir_rel, plots, md);
    plot(p.exponents, plot_dir_rel, plots, md);
  }
  tensor_table(m.tensor_table, md);
  if (m.blocks) block_table(*m.blocks, md);
  weights(m, plot_dir_rel, plots, md);
  if (m.whatif) whatif(*m.whatif, md);
  if (m.drift) drift(*m.drift, md);
  if (m.baseline) baseline(*m.baseline, md);
  md += fmt::format("\n_Generated by {}. Definitions: docs/metrics.md._\n", m.generator);
  return md;
}

}  // namespace fpscope::analysis
