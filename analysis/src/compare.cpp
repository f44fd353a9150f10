#include "fpscope/analysis/compare.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>

#include "fpscope/analysis/common.h"
#include "fpscope/analysis/findings.h"
#include "fpscope/analysis/text_escape.h"
#include "json_utf8.h"

namespace fpscope::analysis {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string display_name(const trace::TensorInfo& t) {
  return t.name.empty() ? t.id : t.name;
}

// Mean loss per step of one run.
std::map<uint64_t, double> mean_losses(const trace::Trace& t) {
  std::map<uint64_t, std::pair<double, uint64_t>> acc;
  for (const auto& l : t.losses) {
    auto& [sum, n] = acc[l.step];
    sum += l.value;
    ++n;
  }
  std::map<uint64_t, double> out;
  for (const auto& [step, a] : acc) out[step] = a.first / static_cast<double>(a.second);
  return out;
}

// (other - ref) / |ref|; 0 when equal (both 0 included), NaN when ref is 0 or either is missing.
double loss_rel(double ref, double other) {
  if (std::isnan(ref) || std::isnan(other)) return kNaN;
  if (other == ref) return 0.0;
  return ref != 0.0 ? (other - ref) / std::fabs(ref) : kNaN;
}

// The reference's last GEMM output: the role-D tensor of the latest observation of the last step.
int64_t last_output_tensor(const trace::TraceModel& m) {
  const auto& t = m.trace();
  for (auto it = m.steps().rbegin(); it != m.steps().rend(); ++it) {
    const auto obs = m.step_observations(*it);
    for (auto o = obs.rbegin(); o != obs.rend(); ++o) {
      const uint32_t k = t.observations[*o].tensor;
      if (k < t.tensors.size() && t.tensors[k].role == trace::Role::D) return k;
    }
  }
  return -1;
}

// The observations of `tensor` in `step`, merged (counts only: what (d) shows).
struct StepCounts {
  uint64_t count = 0, nonfinite = 0, zero = 0;
  std::array<uint64_t, kNumTargets> overflow{}, underflow{};
};
StepCounts step_counts(const trace::TraceModel& m, uint32_t tensor, uint64_t step) {
  StepCounts c;
  for (uint32_t o : m.series_range(tensor, step, step)) {
    const auto& s = m.trace().observations[o].stats;
    c.count += s.count;
    c.nonfinite += s.nan + s.pos_inf + s.neg_inf;
    c.zero += s.zero;
    for (int f = 0; f < kNumTargets; ++f) {
      c.overflow[f] += s.fmt[f].overflow;
      c.underflow[f] += s.fmt[f].underflow;
    }
  }
  return c;
}

DivergenceEvidence evidence(const trace::TraceModel& ref, const trace::TraceModel& run,
                            const std::string& emulate, const CompareRunResult& r) {
  DivergenceEvidence e;
  if (r.ranked.empty()) return e;
  const int64_t step = r.drift[r.ranked.front().drift].first_step_rel_1pct;
  if (step < 0) return e;
  // Where the divergence starts: at the earliest step any tensor exceeds 1 %, the one whose op ran
  // first in that step (smallest seq in the reference), not the one that differs most: an FP16
  // overflow in a forward op turns every later gradient into NaN, and the cause is the forward op.
  uint64_t first_seq = ~uint64_t{0};
  for (const RankedTensor& t : r.ranked) {
    const CrossRunDrift& c = r.drift[t.drift];
    if (c.first_step_rel_1pct != step) continue;
    for (uint32_t o :
         ref.series_range(c.match.base, static_cast<uint64_t>(step), static_cast<uint64_t>(step)))
      if (ref.trace().observations[o].seq < first_seq) {
        first_seq = ref.trace().observations[o].seq;
        e.drift = t.drift;
      }
  }
  if (first_seq == ~uint64_t{0}) e.drift = r.ranked.front().drift;
  const CrossRunDrift& d = r.drift[e.drift];
  e.present = true;
  e.step = static_cast<uint64_t>(step);
  const auto at = std::find(d.steps.begin(), d.steps.end(), e.step);
  e.rel_diff = d.rel_diff_series[static_cast<size_t>(at - d.steps.begin())];
  const StepCounts c = step_counts(run, d.match.other, e.step);
  const StepCounts b = step_counts(ref, d.match.base, e.step);
  e.target = emulated_target(emulate);
  e.target_emulated = e.target >= 0;
  if (e.target < 0) {  // the format with the most values out of its range; ties: kTargets order
    e.target = 0;
    for (int f = 1; f < kNumTargets; ++f)
      if (c.overflow[f] + c.underflow[f] > c.overflow[e.target] + c.underflow[e.target])
        e.target = f;
  }
  e.count = c.count;
  e.nonfinite = c.nonfinite;
  e.overflow = c.overflow[e.target];
  e.underflow = c.underflow[e.target];
  e.ref_count = b.count;
  e.ref_nonfinite = b.nonfinite;
  e.ref_overflow = b.overflow[e.target];
  e.ref_underflow = b.underflow[e.target];
  e.zero = c.zero;
  e.ref_zero = b.zero;
  return e;
}

// The reference's FP8 what-if findings (computed once per report) held against one run.
WhatIfAgreement whatif_agreement(const std::vector<Finding>& ref_findings, int target,
                                 const CompareRunResult& r) {
  WhatIfAgreement w;
  if (target != static_cast<int>(target_index(Format::E4M3)) &&
      target != static_cast<int>(target_index(Format::E5M2)))
    return w;
  w.applies = true;
  w.target = target;
  for (const Finding& f : ref_findings) {
    if ((f.kind != FindingKind::Fp8Saturation && f.kind != FindingKind::Fp8Underflow) ||
        !f.format || static_cast<int>(target_index(*f.format)) != target || f.tensor_id.empty())
      continue;
    if (std::find(w.flagged.begin(), w.flagged.end(), f.tensor_id) != w.flagged.end()) continue;
    w.flagged.push_back(f.tensor_id);
    if (f.first_step >= 0 && (w.first_flagged_step < 0 || f.first_step < w.first_flagged_step))
      w.first_flagged_step = f.first_step;
  }
  for (const CrossRunDrift& d : r.drift) {
    if (std::find(w.flagged.begin(), w.flagged.end(), d.id) == w.flagged.end()) continue;
    if (!d.has_rel_diff()) continue;
    ++w.flagged_measurable;
    w.flagged_over_10pct += d.first_step_rel_10pct >= 0;
  }
  if (r.first.present) {
    const std::string& id = r.drift[r.first.drift].id;
    w.first_divergence_flagged =
        std::find(w.flagged.begin(), w.flagged.end(), id) != w.flagged.end();
  }
  return w;
}

// (e) in Markdown: the what-if against the run's first divergence `first_id`.
std::string whatif_text(const WhatIfAgreement& w, const std::string& first_id) {
  if (!w.applies) return "";
  const FormatSpec& f = spec(kTargets[w.target]);
  const std::string rounding = fmt::format(
      "{} keeps {} mantissa bits (up to 2^-{} relative error per element), so a run in it differs "
      "wherever it merely rounds, which the what-if does not count",
      f.name, f.man_bits, f.man_bits + 1);
  if (w.flagged.empty())
    return fmt::format(
        "\nFP8 what-if: the reference's what-if (delayed scaling) flags no tensor in {}; {}.\n",
        f.name, rounding);
  std::string names;
  for (size_t i = 0; i < w.flagged.size() && i < 3; ++i)
    names += (i ? ", " : "") + md_text(w.flagged[i]);
  if (w.flagged.size() > 3) names += fmt::format(" and {} more", w.flagged.size() - 3);
  std::string s = fmt::format(
      "\nFP8 what-if: the reference's what-if (delayed scaling) flags {} tensors in {} (from step "
      "{}: {}); {} of the {} measured here differ by more than 10% in this run. ",
      w.flagged.size(), f.name, w.first_flagged_step, names, w.flagged_over_10pct,
      w.flagged_measurable);
  if (w.first_divergence_flagged)
    s += fmt::format("The first divergence, {}, is one of them.\n", md_text(first_id));
  else
    s += fmt::format(
        "The first divergence, {}, is not one of them: the what-if flags where delayed scaling "
        "saturates or flushes beyond its thresholds; {}.\n",
        md_text(first_id), rounding);
  return s;
}

// The row indices Markdown shows: all when few, else max_rows evenly spaced plus the last.
std::vector<size_t> sampled_rows(size_t n, size_t max_rows) {
  std::vector<size_t> out;
  if (n <= max_rows + 1 || max_rows == 0) {
    for (size_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  for (size_t i = 0; i < max_rows; ++i) out.push_back(i * (n - 1) / max_rows);
  out.push_back(n - 1);
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string step_or_dash(int64_t s) {
  return s >= 0 ? fmt::format("{}", s) : std::string("-");
}

// "+1.2%" / "-0.3%" / "0%" / "-".
std::string signed_pct(double v) {
  if (std::isnan(v)) return "-";
  return v > 0 ? "+" + fmt_pct(v) : v < 0 ? "-" + fmt_pct(-v) : "0%";
}

std::string value_or_dash(double v) {
  return std::isnan(v) ? std::string("-") : fmt_num(v);
}

// "3 of 4096 (0.0732%)"
std::string count_of(uint64_t n, uint64_t of) {
  return fmt::format("{} of {} ({})", n, of, fmt_pct(fraction(n, of)));
}

nlohmann::ordered_json num_or_null(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json step_or_null(int64_t s) {
  return s >= 0 ? nlohmann::ordered_json(s) : nlohmann::ordered_json(nullptr);
}

}  // namespace

int emulated_target(const std::string& emulate) {
  const std::string mode = emulate.substr(0, emulate.find(':'));
  if (mode == "bf16") return target_index(Format::BF16);
  if (mode == "fp16") return target_index(Format::FP16);
  if (mode == "e4m3" || mode == "hybrid") return target_index(Format::E4M3);
  if (mode == "e5m2") return target_index(Format::E5M2);
  return -1;
}

CompareReport compare_report(const std::vector<CompareInput>& in, const CompareOptions& opt) {
  if (in.size() < 2) throw std::invalid_argument("compare_report: needs at least 2 runs");
  CompareReport r;
  std::vector<std::string> emulate;
  for (const auto& x : in) {
    CompareRunFacts f;
    f.label = x.label;
    f.path = x.trace->path;
    f.emulate = parse_run_meta(x.trace->metadata_json).emulate;
    f.steps = x.model->steps().size();
    f.last_step = x.model->last_step();
    f.sketches = !x.trace->sketches.empty();
    f.losses = x.trace->losses.size();
    r.losses = r.losses || f.losses > 0;
    emulate.push_back(f.emulate);
    r.runs.push_back(std::move(f));
  }
  const trace::TraceModel& ref = *in[0].model;
  std::optional<std::vector<Finding>> ref_findings;
  for (size_t k = 1; k < in.size(); ++k) {
    CompareRunResult o;
    o.run = k;
    o.drift = compare_runs(ref, *in[k].model, opt.cross);
    const std::vector<size_t> ranked = rank_by_divergence(o.drift);
    o.measurable = ranked.size();
    for (size_t i : ranked) o.diverging += o.drift[i].first_step_rel_1pct >= 0;
    for (size_t n = 0; n < ranked.size(); ++n) {
      const CrossRunDrift& d = o.drift[ranked[n]];
      const auto& info = ref.tensor(d.match.base);
      RankedTensor t;
      t.drift = ranked[n];
      t.name = display_name(info);
      t.role = trace::role_name(info.role);
      t.last_step = d.steps.empty() ? 0 : d.steps.back();
      t.last_rel_diff = d.rel_diff_series.empty() ? kNaN : d.rel_diff_series.back();
      o.ranked.push_back(std::move(t));
    }
    o.first = evidence(ref, *in[k].model, emulate[k], o);
    if (emulated_target(emulate[k]) >= 0) {
      if (!ref_findings) ref_findings = analyze(ref).findings;  // once: the what-if is not free
      o.whatif = whatif_agreement(*ref_findings, emulated_target(emulate[k]), o);
    }
    r.others.push_back(std::move(o));
  }
  // (b) loss curves, or the last GEMM output's value difference.
  const size_t n = in.size();
  if (r.losses) {
    std::vector<std::map<uint64_t, double>> loss;
    std::map<uint64_t, bool> steps;
    for (const auto& x : in) {
      loss.push_back(mean_losses(*x.trace));
      for (const auto& [s, v] : loss.back()) steps[s] = true;
    }
    for (const auto& [s, unused] : steps) {
      LossRow row;
      row.step = s;
      for (size_t k = 0; k < n; ++k) {
        const auto it = loss[k].find(s);
        row.value.push_back(it != loss[k].end() ? it->second : kNaN);
      }
      row.rel_diff.push_back(kNaN);
      for (size_t k = 1; k < n; ++k) row.rel_diff.push_back(loss_rel(row.value[0], row.value[k]));
      r.loss_rows.push_back(std::move(row));
    }
  } else if (const int64_t t = last_output_tensor(ref); t >= 0) {
    r.fallback_tensor = ref.tensor(static_cast<uint32_t>(t)).id;
    std::map<uint64_t, std::vector<double>> rows;
    for (size_t k = 1; k < n; ++k)
      for (const auto& d : r.others[k - 1].drift) {
        if (d.match.base != static_cast<uint32_t>(t)) continue;
        for (size_t i = 0; i < d.steps.size(); ++i) {
          auto& v = rows[d.steps[i]];
          v.resize(n, kNaN);
          v[k] = d.rel_diff_series[i];
        }
      }
    bool any = false;  // some step measurable: else the table would be all n/a
    for (auto& [s, v] : rows) {
      for (double x : v) any = any || !std::isnan(x);
      LossRow row;
      row.step = s;
      row.value.assign(n, kNaN);
      row.rel_diff = std::move(v);
      r.loss_rows.push_back(std::move(row));
    }
    if (!any) {
      r.loss_rows.clear();
      r.fallback_tensor.clear();
    }
  }
  return r;
}

std::string compare_markdown(const CompareReport& r, const CompareOptions& opt) {
  const size_t n = r.runs.size();
  const std::string& ref = r.runs.empty() ? std::string() : r.runs[0].label;
  std::string m = fmt::format(
      "## fpscope compare\n\nReference: {}. Value difference: ||run - "
      "reference|| / ||reference|| per tensor and step, estimated from "
      "the value sketches (docs/metrics.md \"Cross-run difference\").\n",
      md_text(ref));
  // (a)
  m += "\n### Runs\n\n| run | trace | emulate | steps | last step | sketches | loss records "
       "|\n|---|---|---|--:|--:|---|--:|\n";
  for (const auto& f : r.runs)
    m += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", md_text(f.label), md_text(f.path),
                     f.emulate.empty() ? std::string("off") : md_text(f.emulate), f.steps,
                     f.steps ? fmt::format("{}", f.last_step) : std::string("-"),
                     f.sketches ? "yes" : "no", f.losses);
  for (const auto& f : r.runs)
    if (!f.sketches)
      m += fmt::format(
          "\n{} was recorded without value sketches: no per-tensor difference; "
          "record with `FPSCOPE_SKETCH=1` or `--emulate`.\n",
          md_text(f.label));
  // (b)
  const auto rows = sampled_rows(r.loss_rows.size(), opt.max_loss_rows);
  const std::string shown =
      rows.size() < r.loss_rows.size()
          ? fmt::format(" ({} of {} steps shown, evenly spaced, and the last)", rows.size(),
                        r.loss_rows.size())
          : std::string();
  if (r.losses) {
    m += fmt::format(
        "\n### Loss\n\nMean of the step's recorded losses; difference: (run - "
        "reference) / |reference|{}.\n\n| step |",
        shown);
    for (const auto& f : r.runs) m += fmt::format(" {} |", md_text(f.label));
    for (size_t k = 1; k < n; ++k)
      m += fmt::format(" {} vs {} |", md_text(r.runs[k].label), md_text(ref));
    m += "\n|--:|";
    for (size_t k = 0; k < 2 * n - 1; ++k) m += "--:|";
    m += "\n";
    for (size_t i : rows) {
      const LossRow& row = r.loss_rows[i];
      m += fmt::format("| {} |", row.step);
      for (size_t k = 0; k < n; ++k) m += fmt::format(" {} |", value_or_dash(row.value[k]));
      for (size_t k = 1; k < n; ++k) m += fmt::format(" {} |", signed_pct(row.rel_diff[k]));
      m += "\n";
    }
  } else {
    m += "\n### Loss\n\nNo loss recorded in any run";
    if (r.fallback_tensor.empty()) {
      m += ", and no value sketches to compare the last GEMM output with instead.\n";
    } else {
      m += fmt::format(
          ": instead, the value difference of the reference's last GEMM output, {}, "
          "per step{}.\n\n| step |",
          md_text(r.fallback_tensor), shown);
      for (size_t k = 1; k < n; ++k)
        m += fmt::format(" {} vs {} |", md_text(r.runs[k].label), md_text(ref));
      m += "\n|--:|";
      for (size_t k = 1; k < n; ++k) m += "--:|";
      m += "\n";
      for (size_t i : rows) {
        const LossRow& row = r.loss_rows[i];
        m += fmt::format("| {} |", row.step);
        for (size_t k = 1; k < n; ++k) m += fmt::format(" {} |", fmt_rel_diff(row.rel_diff[k]));
        m += "\n";
      }
    }
  }
  // (c), (d)
  for (const auto& o : r.others) {
    const auto& f = r.runs[o.run];
    m += fmt::format("\n### {} vs {}\n\n", md_text(f.label), md_text(ref));
    if (o.measurable == 0) {
      m += fmt::format("No per-tensor difference: {}.\n",
                       !f.sketches || !r.runs[0].sketches
                           ? "a trace has no value sketches"
                           : "no matched tensor has sketches in both runs at a common step");
      continue;
    }
    const size_t top = std::min(o.ranked.size(), opt.top_tensors);
    m += fmt::format(
        "{} of {} matched tensors differ by more than 1% at some step; earliest "
        "first{}.\n\n",
        o.diverging, o.measurable,
        top < o.measurable ? fmt::format(" (top {} of {})", top, o.measurable) : std::string());
    m += "| # | tensor | role | first step > 1% | first step > 10% | max rel diff | last step | "
         "rel diff there |\n|--:|---|---|--:|--:|--:|--:|--:|\n";
    for (size_t i = 0; i < top; ++i) {
      const RankedTensor& t = o.ranked[i];
      const CrossRunDrift& d = o.drift[t.drift];
      m += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", i + 1, md_text(d.id), t.role,
                       step_or_dash(d.first_step_rel_1pct), step_or_dash(d.first_step_rel_10pct),
                       fmt_rel_diff(d.max_rel_diff), t.last_step, fmt_rel_diff(t.last_rel_diff));
    }
    const DivergenceEvidence& e = o.first;
    if (!e.present) {
      m += "\nNo tensor differs by more than 1% at any step.\n";
      continue;
    }
    const std::string fmt_name = spec(kTargets[e.target]).name;
    // The reference's counts say what the cast does to the values; an emulated run's own values
    // are already cast, so what it flushed shows as zeros, not as underflow.
    m += fmt::format(
        "\nFirst divergence: {} at step {} ({}). There, the reference's ({}) values cast to {} "
        "({}) "
        "would underflow {} and overflow {}; the {} run's values: zeros {} against the "
        "reference's {}, NaN/Inf {} (reference {}), and in {} underflow {}, overflow {}.\n",
        md_text(o.drift[e.drift].id), e.step, fmt_rel_diff(e.rel_diff), md_text(ref), fmt_name,
        e.target_emulated ? "the format the run emulates"
                          : "the format with the most out-of-range values",
        count_of(e.ref_underflow, e.ref_count), count_of(e.ref_overflow, e.ref_count),
        md_text(f.label), count_of(e.zero, e.count), count_of(e.ref_zero, e.ref_count), e.nonfinite,
        e.ref_nonfinite, fmt_name, count_of(e.underflow, e.count), count_of(e.overflow, e.count));
    m += whatif_text(o.whatif, o.drift[e.drift].id);
  }
  return m;
}

nlohmann::ordered_json compare_json(const CompareReport& r) {
  using json = nlohmann::ordered_json;
  json j;
  json runs = json::array();
  for (const auto& f : r.runs)
    runs.push_back({{"label", f.label},
                    {"path", f.path},
                    {"emulate", f.emulate.empty() ? json(nullptr) : json(f.emulate)},
                    {"steps", f.steps},
                    {"last_step", f.steps ? json(f.last_step) : json(nullptr)},
                    {"sketches", f.sketches},
                    {"loss_records", f.losses}});
  j["runs"] = std::move(runs);
  json loss;
  loss["recorded"] = r.losses;
  loss["fallback_tensor"] = r.fallback_tensor.empty() ? json(nullptr) : json(r.fallback_tensor);
  json rows = json::array();
  for (const auto& row : r.loss_rows) {
    json v = json::array(), d = json::array();
    for (size_t k = 0; k < row.value.size(); ++k) v.push_back(num_or_null(row.value[k]));
    for (size_t k = 1; k < row.rel_diff.size(); ++k) d.push_back(num_or_null(row.rel_diff[k]));
    json x;
    x["step"] = row.step;
    if (r.losses) x["loss"] = std::move(v);
    x["rel_diff"] = std::move(d);  // per run after the reference
    rows.push_back(std::move(x));
  }
  loss["rows"] = std::move(rows);
  j["loss"] = std::move(loss);
  json others = json::array();
  for (const auto& o : r.others) {
    json x;
    x["run"] = r.runs[o.run].label;
    x["measurable"] = o.measurable;
    x["diverging"] = o.diverging;
    json ts = json::array();
    for (const auto& t : o.ranked) {
      const CrossRunDrift& d = o.drift[t.drift];
      json series = json::array();
      for (double v : d.rel_diff_series) series.push_back(num_or_null(v));
      ts.push_back({{"tensor", d.id},
                    {"name", t.name},
                    {"role", t.role},
                    {"first_step_rel_1pct", step_or_null(d.first_step_rel_1pct)},
                    {"first_step_rel_10pct", step_or_null(d.first_step_rel_10pct)},
                    {"max_rel_diff", num_or_null(d.max_rel_diff)},
                    {"last_step", t.last_step},
                    {"last_rel_diff", num_or_null(t.last_rel_diff)},
                    {"steps", d.steps},
                    {"rel_diff", series}});
    }
    x["tensors"] = std::move(ts);
    const DivergenceEvidence& e = o.first;
    if (e.present) {
      x["first_divergence"] = {{"tensor", o.drift[e.drift].id},
                               {"step", e.step},
                               {"rel_diff", num_or_null(e.rel_diff)},
                               {"format", spec(kTargets[e.target]).name},
                               {"format_emulated", e.target_emulated},
                               {"count", e.count},
                               {"overflow", e.overflow},
                               {"underflow", e.underflow},
                               {"nonfinite", e.nonfinite},
                               {"zero", e.zero},
                               {"ref_count", e.ref_count},
                               {"ref_zero", e.ref_zero},
                               {"ref_overflow", e.ref_overflow},
                               {"ref_underflow", e.ref_underflow},
                               {"ref_nonfinite", e.ref_nonfinite}};
    } else {
      x["first_divergence"] = nullptr;
    }
    if (o.whatif.applies)
      x["fp8_whatif"] = {{"format", spec(kTargets[o.whatif.target]).name},
                         {"flagged", o.whatif.flagged},
                         {"first_flagged_step", step_or_null(o.whatif.first_flagged_step)},
                         {"flagged_measurable", o.whatif.flagged_measurable},
                         {"flagged_over_10pct", o.whatif.flagged_over_10pct},
                         {"first_divergence_flagged", o.whatif.first_divergence_flagged}};
    others.push_back(std::move(x));
  }
  j["comparisons"] = std::move(others);
  detail::make_utf8(j);
  return j;
}

}  // namespace fpscope::analysis
