#include "report_model.h"
#include "fpscope/version.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "fpscope/analysis/drift.h"
#include "fpscope/analysis/ranks.h"
#include "fpscope/analysis/summary.h"

namespace fpscope::analysis::detail {

std::string tensor_label(const trace::Trace& t, uint32_t tensor) {
  if (tensor >= t.tensors.size()) return fmt::format("tensor#{}", tensor);
  const auto& i = t.tensors[tensor];
  return i.name.empty() ? i.id : fmt::format("{} ({})", i.id, i.name);
}

std::string sqnr_str(double db) {
  if (std::isnan(db)) return "n/a";
  if (std::isinf(db)) return "exact";
  return fmt::format("{:.1f} dB", db);
}

std::string shape_str(const TensorRisk& r) {
  return fmt::format("{}x{}", r.rows, r.cols);
}

std::string nonfinite_str(const TensorRisk& r) {
  return std::to_string(r.nan + r.pos_inf + r.neg_inf);
}

std::string first_saturate_str(const WhatIfTensor& w) {
  return w.first_saturate_step >= 0 ? std::to_string(w.first_saturate_step) : "-";
}

std::string block_loss_str(const BlockTotals& b, int f) {
  return b.measured(f) ? fmt_pct(block_loss_frac(b.fmt[f])) : "-";
}

std::string block_sqnr_str(const BlockTotals& b, int f) {
  return b.measured(f) ? sqnr_str(block_sqnr_db(b.fmt[f])) : "-";
}

const char* counts_name(const WhatIfTensor& w) {
  return w.histogram_steps == 0 ? "exact" : w.exact_steps == 0 ? "from histogram" : "mixed";
}

std::string change_value(const ChangePoint& c, double v) {
  return c.series == "amax" ? fmt_num(v) : fmt_sqnr(v);
}

std::string first_beyond_str(const CrossRunDrift& d) {
  return d.first_step_beyond >= 0
             ? fmt::format("{} ({})", d.first_step_beyond, d.first_beyond_reason)
             : "-";
}

std::string master_str(const WeightLoss& w) {
  return fmt::format("{}{}", spec(w.master_dtype).name, w.not_fp32 ? " (not FP32)" : "");
}

std::string watched_str(const WeightLoss& w) {
  return w.sampled ? fmt::format("{} of {}", w.watched, w.elements) : "all";
}

std::string sampled_note(const std::vector<const WeightLoss*>& weights) {
  for (const WeightLoss* w : weights)
    if (w->sampled)
      return "Sampled watches (watched: positions followed of the tensor's elements, the probe's "
             "FPSCOPE_WATCH_BUDGET): each stagnant fraction is an estimate with its 95% interval "
             "in parentheses (the sampling error); lost mass is a point estimate.";
  return "";
}

std::string format_choice_note(const FindingOptions& opt) {
  std::string order;
  for (const FormatCandidate& k : kFormatCandidates)
    if (!k.per_tensor_e4m3 || k.delayed)
      order += fmt::format("{}{} {}", order.empty() ? "" : " < ",
                           k.per_tensor_e4m3 ? "E4M3" : k.display, fmt_num(k.bits));
  return fmt::format(
      "Per tensor, loss / SQNR of each format: loss = elements that flush or saturate. Block "
      "formats over the tensor's observations with block statistics, E4M3 current scaling over "
      "the same observations, E4M3 delayed scaling over those at steps the what-if replayed (its "
      "seed steps have no delayed scale): \"covers\"; \"~\": SQNR estimated from the exponent "
      "histogram; "
      "\"-\": not measured. Recommended: the cheapest format (bits per element with the scale: "
      "{}) whose loss is at most {} and whose SQNR is within {:.0f} dB of its nominal, else BF16. "
      "Definitions: docs/metrics.md \"Format comparison\".",
      order, fmt_pct(opt.format_hold_loss), opt.block_hold_sqnr_margin_db);
}

std::string format_choice_cell(const FormatResult& r) {
  if (!r.measured) return "-";
  return format_loss_str(r) + " / " + format_sqnr_str(r);
}

std::string format_choice_covers(const FormatChoice& ch) {
  const auto steps = [](const FormatResult& r) {
    return r.first_step == r.last_step ? fmt::format("step {}", r.first_step)
                                       : fmt::format("steps {}..{}", r.first_step, r.last_step);
  };
  int cur = 0, del = 0;
  for (int c = 0; c < kNumFormatCandidates; ++c)
    if (kFormatCandidates[c].per_tensor_e4m3) (kFormatCandidates[c].delayed ? del : cur) = c;
  const FormatResult& a = ch.result[cur];
  const FormatResult& d = ch.result[del];
  return fmt::format("{} obs, {}; delayed {}", a.observations, steps(a),
                     d.measured ? steps(d) : "none");
}

namespace {

// The only place the report looks at a finding's kind: which listing cap it counts against.
enum class FindingCap { Other, WhatIf, Drift };
FindingCap finding_cap(const Finding& f) {
  if (f.kind == FindingKind::Fp8Saturation || f.kind == FindingKind::Fp8Underflow) {
    return FindingCap::WhatIf;
  }
  if (f.kind == FindingKind::Drift) return FindingCap::Drift;
  return FindingCap::Other;
}

std::vector<std::pair<std::string, std::string>> run_facts(const trace::Trace& t,
                                                           const RunAnalysis& a) {
  std::vector<std::pair<std::string, std::string>> f;
  if (!a.meta.emulate.empty())  // first: an emulated run must never pass for the program's own
    f.emplace_back("EMULATED", emulation_description(a.meta) + " (fpscope record --emulate)");
  f.emplace_back("trace", t.path);
  f.emplace_back("format", fmt::format("{}.{}", t.version_major, t.version_minor));
  if (!a.meta.command_line.empty())
    f.emplace_back("command", join_command_line(a.meta.command_line));
  if (!a.meta.host.empty()) f.emplace_back("host", a.meta.host);
  if (!a.meta.probe.empty() || !a.meta.probe_version.empty())
    f.emplace_back("probe",
                   fmt::format("{}{}{}", a.meta.probe,
                               a.meta.probe.empty() || a.meta.probe_version.empty() ? "" : " ",
                               a.meta.probe_version));
  f.emplace_back("steps", run_steps_text(t, a));
  f.emplace_back("observations", fmt::format("{} ({} GEMM calls, {} tensors)",
                                             t.observations.size(), a.gemm_calls, a.risks.size()));
  if (const std::string w = warnings_text(t); !w.empty()) f.emplace_back("warnings", w);
  f.emplace_back("truncated", t.truncated ? fmt::format("yes: {} ({} bytes dropped)",
                                                        t.truncation_reason, t.dropped_bytes)
                                          : "no");
  const auto& ls = a.loss_scale;
  f.emplace_back("loss scale",
                 ls.present
                     ? fmt::format("{} records, {} skipped, {} backoffs, {} growths, "
                                   "final {}{}",
                                   ls.series.size(), ls.skipped.size(), ls.backoffs, ls.growths,
                                   fmt_num(ls.final_scale), ls.collapsed ? ", COLLAPSED" : "")
                     : "none recorded");
  f.emplace_back(
      "fp8 what-if",
      !a.options.run_whatif
          ? "not run"
          : fmt::format("delayed scaling, history {}, margin {}, {}", a.options.whatif.history_len,
                        a.options.whatif.margin, amax_algo_name(a.options.whatif.algo)));
  return f;
}

// The findings a report lists: rank order, at most opt.max_findings in all, of which at most
// opt.max_whatif_findings FP8 what-if and opt.max_drift_findings within-run drift findings. The
// note says what was left out and names the command that lists everything.
void list_findings(const trace::Trace& t, const ReportOptions& opt, ReportFindings* r) {
  size_t whatif = 0, drift = 0, left_whatif = 0, left_drift = 0, left_other = 0;
  for (size_t i = 0; i < r->all.size(); ++i) {
    const FindingCap cap = finding_cap(r->all[i]);
    const bool w = cap == FindingCap::WhatIf, d = cap == FindingCap::Drift;
    if (static_cast<int>(r->listed.size()) >= opt.max_findings ||
        (w && static_cast<int>(whatif) >= opt.max_whatif_findings) ||
        (d && static_cast<int>(drift) >= opt.max_drift_findings)) {
      (w ? left_whatif : d ? left_drift : left_other) += 1;
      continue;
    }
    whatif += w;
    drift += d;
    r->listed.push_back(i);
  }
  const size_t left = left_whatif + left_drift + left_other;
  if (left == 0) return;
  std::vector<std::string> parts;
  if (left_whatif) parts.push_back(fmt::format("{} FP8 what-if", left_whatif));
  if (left_drift) parts.push_back(fmt::format("{} drift", left_drift));
  if (left_other) parts.push_back(fmt::format("{} other", left_other));
  std::string what;
  for (size_t i = 0; i < parts.size(); ++i)
    what += (i == 0 ? "" : i + 1 == parts.size() ? " and " : ", ") + parts[i];
  r->left_note = fmt::format(
      "... {} more {} not listed here ({}): fpscope summary {}{} --json lists every finding "
      "(.findings).",
      left, left == 1 ? "finding" : "findings", what, t.path,
      opt.baseline ? " --baseline " + opt.baseline->trace().path : std::string());
}

// Tensors that get plots: the worst with severity >= Warning, else the worst overall.
std::vector<uint32_t> plot_tensors(const RunAnalysis& a, int n) {
  std::vector<uint32_t> v;
  for (const auto& r : a.risks) {
    if (static_cast<int>(v.size()) >= n) break;
    if (r.severity >= Severity::Warning || v.empty()) v.push_back(r.tensor);
  }
  return v;
}

// The block-format table's rows: tensors with block statistics in risk order (worst first), at
// most opt.max_tensor_rows; nullopt when the trace has none.
std::optional<ReportBlocks> block_section(const trace::Trace& t, const RunAnalysis& a,
                                          const ReportOptions& opt) {
  std::vector<BlockTotals> totals = block_totals(t);
  const BlockTableRows table = block_table_rows(a.risks, totals, std::max(0, opt.max_tensor_rows));
  if (table.formats.empty()) return std::nullopt;
  ReportBlocks s;
  s.formats = table.formats;
  s.left = table.left;
  for (const TensorRisk* r : table.rows) s.rows.push_back({r->id, std::move(totals[r->tensor])});
  return s;
}

// The comparison's rows: the most demanding recommendation first (BF16, then the costlier
// formats), ties in the per-tensor table's order (worst first); at most opt.max_whatif_rows.
ReportFormatChoices format_choice_section(const RunAnalysis& a, const ReportOptions& opt) {
  ReportFormatChoices s;
  s.note = format_choice_note(a.options.findings);
  int e4_cur = -1, e4_del = -1;
  for (int c = 0; c < kNumFormatCandidates; ++c)
    if (kFormatCandidates[c].per_tensor_e4m3) (kFormatCandidates[c].delayed ? e4_del : e4_cur) = c;
  s.columns = {e4_cur, e4_del};
  for (int f = 0; f < kNumBlockFormats; ++f) {
    int c = 0;
    while (kFormatCandidates[c].block_format != f) ++c;
    for (const FormatChoice& ch : a.format_choices)
      if (ch.result[c].measured) {
        s.columns.push_back(c);
        break;
      }
  }
  std::vector<size_t> rank(a.format_choices.size(), a.risks.size());
  for (size_t i = 0; i < a.risks.size(); ++i)
    if (const FormatChoice* ch = format_choice_of(a.format_choices, a.risks[i].tensor))
      rank[static_cast<size_t>(ch - a.format_choices.data())] = i;
  std::vector<size_t> order(a.format_choices.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    const int rx = a.format_choices[x].recommended, ry = a.format_choices[y].recommended;
    return rx != ry ? rx > ry : rank[x] < rank[y];
  });
  for (size_t i : order) {
    if (static_cast<int>(s.rows.size()) == opt.max_whatif_rows)
      ++s.left;
    else
      s.rows.push_back(&a.format_choices[i]);
  }
  return s;
}

// Rows of the FP8 what-if table: the tensor/format pairs that saturate or underflow at least
// the warning fraction, at most opt.max_whatif_rows.
ReportWhatIf whatif_section(const RunAnalysis& a, const ReportOptions& opt) {
  const auto& o = a.options;
  ReportWhatIf s;
  s.policy = fmt::format("history {}, margin {}, {}", o.whatif.history_len, o.whatif.margin,
                         amax_algo_name(o.whatif.algo));
  for (const auto& w : a.whatif) {
    if (w.saturate_steps == 0 && w.underflow_frac < o.risk.underflow_warn) continue;
    if (static_cast<int>(s.rows.size()) == opt.max_whatif_rows)
      ++s.left;
    else
      s.rows.push_back(&w);
  }
  if (!a.format_choices.empty()) s.choices = format_choice_section(a, opt);
  return s;
}

// The first opt.max_drift_rows change points in (tensor index, step) order.
ReportDrift drift_section(const RunAnalysis& a, const ReportOptions& opt) {
  const auto& o = a.options;
  ReportDrift s;
  s.rule = fmt::format(
      "A change point is a step whose amax differs from the median of the previous {} steps by a "
      "factor of at least {}, or whose SQNR in some format differs from it by at least {} dB "
      "(docs/metrics.md \"Drift within a run\").",
      o.drift.window, fmt_num(o.drift.amax_factor), fmt_num(o.drift.sqnr_db));
  size_t total = 0;
  for (const auto& d : a.drift)
    for (const auto& c : d.change_points) {
      ++total;
      if (static_cast<int>(s.rows.size()) < opt.max_drift_rows) s.rows.push_back({d.id, &c});
    }
  s.left = total - s.rows.size();
  return s;
}

}  // namespace

ReportModel build_report_model(const trace::TraceModel& model, const RunAnalysis& a,
                               const ReportOptions& opt) {
  const trace::Trace& t = model.trace();
  ReportModel m;
  m.title = !opt.title.empty()
                ? opt.title
                : "fpscope report: " + std::filesystem::path(t.path).filename().string();
  m.facts = run_facts(t, a);

  // Baseline: compared once; its findings join the run's and are ranked with them.
  m.findings.all = a.findings;
  if (opt.baseline) {
    ReportBaseline b;
    b.path = opt.baseline->trace().path;
    b.tensors = compare_runs(*opt.baseline, model, a.options.cross);
    auto bf = baseline_findings(*opt.baseline, b.tensors);
    m.findings.all.insert(m.findings.all.end(), bf.begin(), bf.end());
    rank_findings(&m.findings.all);
    m.baseline = std::move(b);
  }
  list_findings(t, opt, &m.findings);
  m.causes = build_causes(a, m.findings.all);
  m.causes_first = std::min(m.causes.causes.size(), kCausesBeforeFold);

  if (a.loss_scale.present)
    m.loss_scale = ReportPlot{"loss_scale.svg", "loss scale", svg_loss_scale(a)};
  for (uint32_t ti : plot_tensors(a, opt.max_tensor_plots))
    m.tensor_plots.push_back(
        {ti,
         tensor_label(t, ti),
         {fmt::format("tensor{}_amax_sqnr.svg", ti), "amax and SQNR", svg_amax_sqnr(model, ti)},
         {fmt::format("tensor{}_exponents.svg", ti), "exponent heatmap",
          svg_exponent_heatmap(model, ti)}});

  for (const auto& r : a.risks) {
    if (static_cast<int>(m.tensor_table.rows.size()) < opt.max_tensor_rows)
      m.tensor_table.rows.push_back(&r);
    else
      ++m.tensor_table.left;
  }

  m.blocks = block_section(t, a, opt);

  for (const auto& w : a.weights) {
    m.weights.push_back(&w);
    m.weight_plots.push_back({fmt::format("weight{}_update_ratio.svg", w.tensor),
                              "update/weight ratio", svg_weight_ratio(w)});
  }
  m.weights_left_out = left_out_weights(t);
  if (!a.whatif.empty()) m.whatif = whatif_section(a, opt);
  if (!a.drift.empty()) m.drift = drift_section(a, opt);
  if (opt.ranks) {
    ReportRanks r;
    r.set = opt.ranks;
    r.focus_rank = opt.focus_rank;
    RunAnalysis cross;
    for (const auto& f : opt.ranks->findings) cross.findings.push_back(f.finding);
    r.causes = build_causes(cross, cross.findings);
    std::vector<std::string> shown;
    for (const auto& f : opt.ranks->findings) {
      const std::string& id = f.finding.tensor_id;
      if (id.empty() || std::find(shown.begin(), shown.end(), id) != shown.end()) continue;
      shown.push_back(id);
      r.heatmaps.push_back({fmt::format("ranks_heatmap{}.svg", shown.size()),
                            "amax per rank and step: " + id, svg_rank_heatmap(*opt.ranks, id)});
      if (shown.size() == 3) break;
    }
    m.ranks = std::move(r);
  }
  m.generator = "fpscope " FPSCOPE_VERSION;
  return m;
}

}  // namespace fpscope::analysis::detail
