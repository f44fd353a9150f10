#include "fpscope/analysis/summary.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace fpscope::analysis {

namespace {

using json = nlohmann::ordered_json;

json num(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}
json step_or_null(int64_t s) {
  return s >= 0 ? json(s) : json(nullptr);
}

json finding_json(const Finding& f) {
  json j;
  j["severity"] = severity_name(f.severity);
  j["score"] = f.score;
  j["kind"] = f.kind;
  j["tensor"] = f.tensor_id.empty() ? json(nullptr) : json(f.tensor_id);
  j["format"] = f.format ? json(spec(*f.format).name) : json(nullptr);
  j["first_step"] = step_or_null(f.first_step);
  j["last_step"] = step_or_null(f.last_step);
  j["title"] = f.title;
  j["evidence"] = f.evidence;
  j["recommendation"] = f.recommendation;
  return j;
}

}  // namespace

nlohmann::ordered_json summary_json(const trace::Trace& t, const RunAnalysis& a) {
  json j;
  j["summary_version"] = kSummaryVersion;
  json tr;
  tr["path"] = t.path;
  tr["version"] = fmt::format("{}.{}", t.version_major, t.version_minor);
  tr["truncated"] = t.truncated;
  tr["truncation_reason"] = t.truncation_reason;
  tr["clean_close"] = t.clean_close;
  tr["file_bytes"] = t.file_bytes;
  tr["dropped_bytes"] = t.dropped_bytes;
  tr["steps"] = a.steps;
  tr["first_step"] = a.steps ? json(a.first_step) : json(nullptr);
  tr["last_step"] = a.steps ? json(a.last_step) : json(nullptr);
  tr["step_source"] = trace::step_source_name(t.step_source);
  tr["observations"] = t.observations.size();
  tr["gemm_calls"] = a.gemm_calls;
  tr["tensors"] = a.risks.size();
  j["trace"] = std::move(tr);

  json tensors = json::array();
  for (const auto& r : a.risks) {
    json x;
    x["id"] = r.id;
    x["name"] = r.name;
    x["op"] = r.op;
    x["role"] = trace::role_name(r.role);
    x["dtype"] = spec(r.dtype).name;
    x["shape"] = json::array({r.rows, r.cols});
    x["observations"] = r.observations;
    x["steps"] = r.steps;
    x["elements"] = r.elements;
    x["amax"] = static_cast<double>(r.amax);
    x["nan"] = r.nan;
    x["pos_inf"] = r.pos_inf;
    x["neg_inf"] = r.neg_inf;
    x["zero"] = r.zero;
    x["first_step"] = r.first_step;
    x["last_step"] = r.last_step;
    x["first_nonfinite_step"] = step_or_null(r.first_nonfinite_step);
    json fm;
    for (int i = 0; i < kNumTargets; ++i) {
      const auto& f = r.formats[i];
      json y;
      y["overflow"] = f.overflow;
      y["underflow"] = f.underflow;
      y["subnormal"] = f.subnormal;
      y["sqnr_db"] = num(f.sqnr_db);
      y["eligible"] = f.eligible;
      y["overflow_frac"] = f.overflow_frac;
      y["underflow_frac"] = f.underflow_frac;
      y["subnormal_frac"] = f.subnormal_frac;
      y["first_overflow_step"] = step_or_null(f.first_overflow_step);
      y["first_underflow_step"] = step_or_null(f.first_underflow_step);
      y["first_subnormal_step"] = step_or_null(f.first_subnormal_step);
      y["scaled"] = f.scaled;
      y["trend"] = trend_name(f.trend);
      fm[spec(kTargets[i]).name] = std::move(y);
    }
    x["formats"] = std::move(fm);
    x["severity"] = severity_name(r.severity);
    x["score"] = r.score;
    x["severity_format"] =
        r.severity == Severity::None ? json(nullptr) : json(spec(r.severity_format).name);
    x["severity_reason"] = r.severity_reason;
    tensors.push_back(std::move(x));
  }
  j["tensors"] = std::move(tensors);

  json ls = json::array();
  for (const auto& r : a.loss_scale.series) {
    json x;
    x["step"] = r.step;
    x["scale"] = num(r.scale);
    x["found_inf"] = r.found_inf;
    x["next_scale"] = r.next_scale > 0.0 ? num(r.next_scale) : json(nullptr);
    ls.push_back(std::move(x));
  }
  j["loss_scale"] = std::move(ls);

  const auto& la = a.loss_scale;
  json lsum;
  lsum["records"] = la.series.size();
  lsum["skipped_steps"] = la.skipped.size();
  lsum["backoffs"] = la.backoffs;
  lsum["growths"] = la.growths;
  lsum["min_scale"] = la.present ? num(la.min_scale) : json(nullptr);
  lsum["max_scale"] = la.present ? num(la.max_scale) : json(nullptr);
  lsum["final_scale"] = la.present ? num(la.final_scale) : json(nullptr);
  lsum["steps_at_min"] = la.steps_at_min;
  lsum["collapsed"] = la.collapsed;
  lsum["collapse_step"] = step_or_null(la.collapse_step);
  lsum["collapse_reason"] = la.collapse_reason;
  json sk = json::array();
  for (const auto& s : la.skipped) {
    json x;
    x["step"] = s.step;
    x["scale"] = num(s.scale);
    x["first_offender"] = s.offender_tensor >= 0 ? json(s.offender_id) : json(nullptr);
    x["offender_seq"] = s.offender_tensor >= 0 ? json(s.offender_seq) : json(nullptr);
    x["reason"] = s.reason;
    sk.push_back(std::move(x));
  }
  lsum["skipped"] = std::move(sk);
  j["loss_scale_summary"] = std::move(lsum);

  json ws = json::array();
  for (const auto& w : a.weights) {
    json x;
    x["name"] = w.name;
    x["updates"] = w.updates;
    x["bf16"] = {{"stagnant", w.bf16_stagnant}, {"lost_mass", w.bf16_lost_mass}};
    x["fp16"] = {{"stagnant", w.fp16_stagnant}, {"lost_mass", w.fp16_lost_mass}};
    x["master_dtype"] = spec(w.master_dtype).name;
    x["not_fp32"] = w.not_fp32;
    x["elements"] = w.elements;
    x["changed"] = w.changed;
    x["below_bf16_half_ulp"] = w.below_bf16_half_ulp;
    ws.push_back(std::move(x));
  }
  j["weights"] = std::move(ws);

  json wi = json::array();
  for (const auto& w : a.whatif) {
    json x;
    x["tensor"] = w.id;
    x["format"] = spec(w.format).name;
    x["steps"] = w.steps.size();
    x["saturate_steps"] = w.saturate_steps;
    x["underflow_steps"] = w.underflow_steps;
    x["first_saturate_step"] = step_or_null(w.first_saturate_step);
    x["first_underflow_step"] = step_or_null(w.first_underflow_step);
    x["eligible"] = w.eligible;
    x["overflow"] = {w.overflow_lo, w.overflow_hi};
    x["underflow"] = {w.underflow_lo, w.underflow_hi};
    x["overflow_frac"] = w.overflow_frac;
    x["underflow_frac"] = w.underflow_frac;
    x["exact_steps"] = w.exact_steps;
    x["histogram_steps"] = w.histogram_steps;
    wi.push_back(std::move(x));
  }
  j["fp8_whatif_available"] = a.options.run_whatif;
  j["fp8_whatif"] = std::move(wi);

  json fs = json::array();
  for (const auto& f : a.findings) fs.push_back(finding_json(f));
  j["findings"] = std::move(fs);
  return j;
}

std::string summary_text(const trace::Trace& t, const RunAnalysis& a, int max_rows, int width) {
  std::string o;
  o += fmt::format("trace      {}  (format {}.{}, {} bytes)\n", t.path, t.version_major,
                   t.version_minor, t.file_bytes);
  if (t.truncated)
    o += fmt::format("TRUNCATED  {}; {} bytes dropped; everything before was read\n",
                     t.truncation_reason.empty() ? "no footer" : t.truncation_reason,
                     t.dropped_bytes);
  o += fmt::format("steps      {}{}  (source: {})\n", a.steps,
                   a.steps ? fmt::format(" [{}..{}]", a.first_step, a.last_step) : "",
                   trace::step_source_name(t.step_source));
  o += fmt::format("gemms      {} calls, {} observations, {} tensors\n", a.gemm_calls,
                   t.observations.size(), a.risks.size());

  // Tensor table: worst first. Wide layout (one row per tensor, every format side by side) when
  // it fits `width` (0 = unlimited); else each format on its own line under the tensor.
  o += "\n";
  auto pct = [](double f) -> std::string {  // at most 5 characters
    const double p = f * 100.0;
    if (f == 0.0) return "0";
    if (p < 0.01) return "<.01%";
    if (p < 1.0) return fmt::format("{:.2f}%", p);
    if (p < 9.95) return fmt::format("{:.1f}%", p);
    return fmt::format("{:.0f}%", p);
  };
  auto sq = [](double v) -> std::string {
    if (std::isnan(v)) return "-";
    if (std::isinf(v)) return "exact";
    return fmt::format("{:.1f}", v);
  };
  const char* kRowFmt = "{:<8} {:<22} {:<1} {:<5} {:>11} {:>6} {:>8} {:>7}";
  const std::string head = fmt::format(fmt::runtime(kRowFmt), "SEVERITY", "TENSOR", "R", "DTYPE",
                                       "SHAPE", "OBS", "AMAX", "NaN/Inf");
  const int wide_width = static_cast<int>(head.size()) + kNumTargets * 26;
  const bool wide = width <= 0 || width >= wide_width;
  if (wide) {
    std::string h = head;
    for (int i = 0; i < kNumTargets; ++i)
      h += fmt::format(" |{:^23}", fmt::format("{} ovf/unf/sub/SQNR", spec(kTargets[i]).name));
    o += h + "\n";
  } else {
    o += head +
         fmt::format(" | {:<4} {:>5} {:>5} {:>5} {:>5}\n", "FMT", "OVF", "UNF", "SUB", "SQNR");
  }
  int shown = 0;
  for (const auto& r : a.risks) {
    if (shown == max_rows) {
      o += fmt::format("... {} more tensors (--rows N, or --json for all)\n",
                       a.risks.size() - shown);
      break;
    }
    ++shown;
    std::string id = r.id;
    if (id.size() > 22) id = id.substr(0, 21) + "~";
    const std::string line =
        fmt::format(fmt::runtime(kRowFmt), severity_name(r.severity), id, trace::role_name(r.role),
                    spec(r.dtype).name, fmt::format("{}x{}", r.rows, r.cols), r.observations,
                    fmt_num(r.amax), r.nan + r.pos_inf + r.neg_inf);
    if (wide) {
      std::string l = line;
      for (const auto& f : r.formats)
        l += fmt::format(" |{:>5} {:>5} {:>5} {:>5}", pct(f.overflow_frac), pct(f.underflow_frac),
                         pct(f.subnormal_frac), sq(f.sqnr_db));
      o += l + "\n";
    } else {
      for (int i = 0; i < kNumTargets; ++i) {
        const auto& f = r.formats[i];
        o += (i == 0 ? line : std::string(line.size(), ' ')) +
             fmt::format(" | {:<4} {:>5} {:>5} {:>5} {:>5}\n", spec(kTargets[i]).name,
                         pct(f.overflow_frac), pct(f.underflow_frac), pct(f.subnormal_frac),
                         sq(f.sqnr_db));
      }
    }
    if (r.severity >= Severity::Warning) {
      std::string why = "         -> " + r.severity_reason;
      if (width > 0 && static_cast<int>(why.size()) > width) why = why.substr(0, width - 1) + "~";
      o += why + "\n";
    }
  }

  const auto& ls = a.loss_scale;
  o += "\n";
  if (!ls.present) {
    o += "loss scale none recorded\n";
  } else {
    o += fmt::format(
        "loss scale {} records, {} skipped steps, {} backoffs, {} growths; scale "
        "min {} max {} final {} ({} records at min)\n",
        ls.series.size(), ls.skipped.size(), ls.backoffs, ls.growths, fmt_num(ls.min_scale),
        fmt_num(ls.max_scale), fmt_num(ls.final_scale), ls.steps_at_min);
    if (ls.collapsed) o += fmt::format("           COLLAPSED: {}\n", ls.collapse_reason);
    size_t n = 0;
    for (const auto& s : ls.skipped) {
      if (n++ == 10) {
        o += fmt::format("           ... {} more skipped steps\n", ls.skipped.size() - 10);
        break;
      }
      o += s.offender_tensor >= 0
               ? fmt::format("           skipped step {} (scale {}): first {} in {} (seq {})\n",
                             s.step, fmt_num(s.scale), s.reason, s.offender_id, s.offender_seq)
               : fmt::format("           skipped step {} (scale {}): no offending op recorded\n",
                             s.step, fmt_num(s.scale));
    }
  }
  if (a.weights.empty()) {
    o += "weights    none watched\n";
  } else {
    o += fmt::format("weights    {:<24} {:>7} {:>14} {:>14} {:>14} {:>14}  master\n", "NAME",
                     "UPDATES", "bf16 stagnant", "bf16 lost", "fp16 stagnant", "fp16 lost");
    for (const auto& w : a.weights) {
      o += fmt::format("           {:<24} {:>7} {:>14} {:>14} {:>14} {:>14}  {}{}\n", w.name,
                       w.updates, fmt_pct(w.bf16_stagnant), fmt_pct(w.bf16_lost_mass),
                       fmt_pct(w.fp16_stagnant), fmt_pct(w.fp16_lost_mass),
                       spec(w.master_dtype).name, w.not_fp32 ? " (NOT FP32!)" : "");
    }
  }
  if (!a.whatif.empty()) {
    uint64_t sat = 0, unf = 0;
    for (const auto& w : a.whatif) {
      sat += w.saturate_steps > 0;
      unf += w.underflow_frac >= 0.01;
    }
    o += fmt::format(
        "fp8 what-if  delayed scaling (history {}, margin {}, {}): {} tensor/format pairs would "
        "saturate, {} underflow >= 1%\n",
        a.options.whatif.history_len, a.options.whatif.margin,
        amax_algo_name(a.options.whatif.algo), sat, unf);
  }
  if (!a.findings.empty()) {
    o += "\ntop findings (fpscope report for all, with evidence and recommendations):\n";
    for (size_t i = 0; i < a.findings.size() && i < 5; ++i)
      o += fmt::format("  {}. [{}] {}\n", i + 1, severity_name(a.findings[i].severity),
                       a.findings[i].title);
  }
  return o;
}

}  // namespace fpscope::analysis
