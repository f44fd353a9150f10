// `fpscope summary`: the one writer of the summary JSON (docs/summary-json.md) and of its text
// form, from one RunAnalysis. Size: ~670 lines: JSON and text share the per-tensor helpers; the
// next section added to the text moves the text form into summary_text.cpp.
#include "fpscope/analysis/summary.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "block_totals.h"
#include "fpscope/analysis/causes.h"
#include "fpscope/analysis/text_escape.h"
#include "json_utf8.h"

namespace fpscope::analysis {

namespace {

using json = nlohmann::ordered_json;

json num(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}
json step_or_null(int64_t s) {
  return s >= 0 ? json(s) : json(nullptr);
}

}  // namespace

nlohmann::ordered_json finding_json(const Finding& f) {
  json j;
  j["severity"] = severity_name(f.severity);
  j["score"] = f.score;
  j["kind"] = kind_name(f.kind);
  j["tensor"] = f.tensor_id.empty() ? json(nullptr) : json(f.tensor_id);
  j["format"] = f.format ? json(spec(*f.format).name) : json(nullptr);
  j["first_step"] = step_or_null(f.first_step);
  j["last_step"] = step_or_null(f.last_step);
  j["title"] = f.title;
  j["evidence"] = f.evidence;
  j["recommendation"] = f.recommendation;
  return j;
}

namespace {

using detail::BlockTotals;

// Block-scaled formats (trace format 1.3): one tensor's totals (block_totals.h).
json block_json(const BlockTotals& b) {
  json j;
  j["observations"] = b.observations;
  j["axis"] = b.axis == 0 ? json("rows") : b.axis == 1 ? json("cols") : json("mixed");
  for (int f = 0; f < kNumBlockFormats; ++f) {
    if (!(b.mask >> f & 1u)) continue;
    const BlockFormatCounts& c = b.fmt[f];
    json y;
    y["blocks"] = c.blocks;
    y["elements"] = c.elements;
    y["flushed"] = c.flushed;
    y["saturated"] = c.saturated;
    y["zero_blocks"] = c.zero_blocks;
    y["scale_underflow"] = c.scale_underflow;
    y["scale_overflow"] = c.scale_overflow;
    y["nan_scale"] = c.nan_scale;
    const double e = static_cast<double>(c.elements);
    y["flushed_frac"] = c.elements ? num(static_cast<double>(c.flushed) / e) : json(nullptr);
    y["saturated_frac"] = c.elements ? num(static_cast<double>(c.saturated) / e) : json(nullptr);
    y["sum_err2"] = num(c.sum_err2);
    y["sum_x2"] = num(c.sum_x2);
    y["sqnr_db"] = num(detail::block_sqnr_db(c));  // null: no signal, or exact
    // Block-scale exponents: floor(log2 scale) -> blocks ("nan": NaN scales; NVFP4's zero
    // scales and MX's 2^-127 under "-127").
    json h = json::object();
    for (const auto& [bin, k] : b.scale_hist[f])
      h[bin == kBlockScaleBins - 1 ? std::string("nan") : std::to_string(bin - 127)] = k;
    y["scale_exponents"] = std::move(h);
    j[kBlockFormats[f]->name] = std::move(y);
  }
  return j;
}

}  // namespace

nlohmann::ordered_json summary_json(const trace::Trace& t, const RunAnalysis& a,
                                    const trace::Trace* baseline) {
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
  tr["run_steps"] = a.run_steps;
  tr["run_first_step"] = a.run_steps ? json(a.run_first_step) : json(nullptr);
  tr["run_last_step"] = a.run_steps ? json(a.run_last_step) : json(nullptr);
  tr["sampled_steps"] = a.sampled_steps;
  tr["sample_every"] = a.meta.sample_every >= 0 ? json(a.meta.sample_every) : json(nullptr);
  tr["step_source"] = trace::step_source_name(t.step_source);
  tr["observations"] = t.observations.size();
  tr["gemm_calls"] = a.gemm_calls;
  tr["tensors"] = a.risks.size();
  tr["command_line"] = a.meta.command_line;
  tr["host"] = a.meta.host.empty() ? json(nullptr) : json(a.meta.host);
  tr["probe"] = a.meta.probe.empty() ? json(nullptr) : json(a.meta.probe);
  tr["probe_version"] = a.meta.probe_version.empty() ? json(nullptr) : json(a.meta.probe_version);
  tr["emulate"] = a.meta.emulate.empty() ? json(nullptr) : json(a.meta.emulate);
  if (!a.meta.emulate.empty())  // only in emulated runs: the other outputs stay as they were
    tr["emulate_skip"] = a.meta.emulate_skip.empty() ? json(nullptr) : json(a.meta.emulate_skip);
  j["trace"] = std::move(tr);
  j["baseline"] = baseline ? json(baseline->path) : json(nullptr);

  const std::vector<BlockTotals> blocks = detail::block_totals(t);
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
    // Only for traces that carry block sections (format 1.3, FPSCOPE_FORMATS).
    if (r.tensor < blocks.size() && blocks[r.tensor].observations > 0)
      x["block_formats"] = block_json(blocks[r.tensor]);
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
    x["bf16"] = {{"stagnant", w.bf16_stagnant},
                 {"stagnant_lo", w.bf16_stagnant_lo},
                 {"stagnant_hi", w.bf16_stagnant_hi},
                 {"lost_mass", w.bf16_lost_mass}};
    x["fp16"] = {{"stagnant", w.fp16_stagnant},
                 {"stagnant_lo", w.fp16_stagnant_lo},
                 {"stagnant_hi", w.fp16_stagnant_hi},
                 {"lost_mass", w.fp16_lost_mass}};
    x["master_dtype"] = spec(w.master_dtype).name;
    x["not_fp32"] = w.not_fp32;
    x["elements"] = w.elements;
    x["watched"] = w.watched;
    x["sampled"] = w.sampled;
    x["changed"] = w.changed;
    x["below_bf16_half_ulp"] = w.below_bf16_half_ulp;
    x["below_fp16_half_ulp"] = w.below_fp16_half_ulp;
    json rh = json::array();
    for (const auto& [bin, n] : w.ratio_hist) rh.push_back({{"log2_ratio", bin}, {"count", n}});
    x["ratio_hist"] = std::move(rh);
    ws.push_back(std::move(x));
  }
  j["weights"] = std::move(ws);
  json left = json::array();
  for (const auto& l : left_out_weights(t))
    left.push_back({{"name", l.name}, {"reason", l.reason}, {"step", l.step}});
  j["weights_left_out"] = std::move(left);

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
    x["counts"] = w.histogram_steps == 0 ? "exact" : w.exact_steps == 0 ? "histogram" : "mixed";
    x["seed_steps"] = w.seed_steps;
    x["first_seed_step"] = step_or_null(w.first_seed_step);
    x["worst_step"] = step_or_null(w.worst_step);
    x["worst_overflow_frac"] = w.worst_overflow_frac;
    x["worst_scale"] = w.worst_step >= 0 ? num(w.worst_scale) : json(nullptr);
    wi.push_back(std::move(x));
  }
  j["fp8_whatif_available"] = a.options.run_whatif;
  j["fp8_whatif"] = std::move(wi);

  json dr = json::array();
  for (const auto& d : a.drift) {
    json x;
    x["tensor"] = d.id;
    json cps = json::array();
    for (const auto& c : d.change_points)
      cps.push_back({{"step", c.step},
                     {"series", c.series},
                     {"before", num(c.before)},
                     {"after", num(c.after)}});
    x["change_points"] = std::move(cps);
    dr.push_back(std::move(x));
  }
  j["drift_available"] = a.options.run_drift;
  j["drift"] = std::move(dr);

  json fs = json::array();
  for (const auto& f : a.findings) fs.push_back(finding_json(f));
  j["findings"] = std::move(fs);
  // At most kMaxWarningsJson of them (a hostile trace can hold millions), with the total.
  constexpr uint64_t kMaxWarningsJson = 1000;
  json warnings = json::array();
  uint64_t n_warnings = 0;
  for (const auto& e : t.events) {
    if (e.level < trace::EventLevel::Warning) continue;
    if (n_warnings++ >= kMaxWarningsJson) continue;
    json w;
    w["step"] = e.step;
    w["level"] = e.level == trace::EventLevel::Error ? "error" : "warning";
    w["text"] = e.text;
    warnings.push_back(std::move(w));
  }
  j["warnings"] = std::move(warnings);
  j["warnings_total"] = n_warnings;
  add_causes_json(a, &j);  // "verdict" and "causes" (causes.h)
  detail::make_utf8(j);    // names are bytes: one replacement rule (text_escape.h)
  return j;
}

namespace {

// Per-format cell of the tensor table, 28 columns: "fp16   1.0%   99%  1.4%  73.6".
std::string pct5(double f) {  // at most 5 characters
  const double p = f * 100.0;
  if (f == 0.0) return "0";
  if (p < 0.01) return "<.01%";
  if (p < 1.0) return fmt::format("{:.2f}%", p);
  if (p < 9.95) return fmt::format("{:.1f}%", p);
  return fmt::format("{:.0f}%", p);
}
std::string sq5(double v) {  // at most 5 characters
  if (std::isnan(v)) return "n/a";
  if (std::isinf(v)) return "exact";
  return fmt::format("{:.1f}", v);
}
std::string cell(const FormatRisk& f) {
  return fmt::format("{:<4} {:>5} {:>5} {:>5} {:>5}", spec(f.format).name, pct5(f.overflow_frac),
                     pct5(f.underflow_frac), pct5(f.subnormal_frac), sq5(f.sqnr_db));
}

std::string rtrim(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// Block-scaled formats (format 1.3): per tensor with block statistics, in the tensor table's
// order (worst first, at most max_rows), each measured format's loss (flushed + saturated of its
// elements, inside their blocks) and SQNR dB; "-" where the tensor did not measure that format.
// As many formats side by side as fit `width` (0: all), the rest in further tables below.
// "" when the trace has no block statistics.
std::string block_table(const RunAnalysis& a, const std::vector<BlockTotals>& blocks, int max_rows,
                        int width) {
  const detail::BlockTableRows table = detail::block_table_rows(a.risks, blocks, max_rows);
  if (table.formats.empty()) return "";
  const std::vector<int>& formats = table.formats;
  const std::vector<const TensorRisk*>& rows = table.rows;
  const size_t left = table.left;
  constexpr int kTensorCol = 22, kCell = 14;  // " | " + "LOSS  SQNR" cell of 11
  const size_t per =
      width <= 0 ? formats.size() : static_cast<size_t>(std::max(1, (width - kTensorCol) / kCell));
  std::string o;
  for (size_t g = 0; g < formats.size(); g += per) {
    const size_t end = std::min(formats.size(), g + per);
    std::string h = fmt::format("{:<22}", "TENSOR"), u = fmt::format("{:<22}", "");
    for (size_t i = g; i < end; ++i) {
      h += fmt::format(" | {:<11}", detail::block_format_display_name(formats[i]));
      u += fmt::format(" | {:>5} {:>5}", "LOSS", "SQNR");
    }
    o += rtrim(h) + "\n" + u + "\n";
    for (const TensorRisk* r : rows) {
      std::string id = printable(r->id);  // escaped before cutting: the column width is kept
      if (id.size() > 22) id = id.substr(0, 21) + "~";
      std::string l = fmt::format("{:<22}", id);
      const BlockTotals& b = blocks[r->tensor];
      for (size_t i = g; i < end; ++i) {
        const int f = formats[i];
        l += b.measured(f) ? fmt::format(" | {:>5} {:>5}", pct5(detail::block_loss_frac(b.fmt[f])),
                                         sq5(detail::block_sqnr_db(b.fmt[f])))
                           : fmt::format(" | {:>5} {:>5}", "-", "-");
      }
      o += l + "\n";
    }
  }
  if (left > 0)
    o += wrap_text(fmt::format("... {} more tensors with block statistics (--rows N, or --json: "
                               "tensors[].block_formats)",
                               left),
                   width, 4);
  return o;
}

// The LOSS records (format 1.1) as two lines: per step, the sum of its values (one per backward
// pass: gradient accumulation sums to the step's loss); none when the trace has none.
std::vector<std::string> loss_lines(const trace::Trace& t) {
  if (t.losses.empty()) return {};
  std::vector<std::pair<uint64_t, double>> per_step;  // (step, sum), ascending steps
  for (const trace::LossRecord& l : t.losses) {
    auto it = std::lower_bound(per_step.begin(), per_step.end(), l.step,
                               [](const auto& e, uint64_t s) { return e.first < s; });
    if (it == per_step.end() || it->first != l.step) it = per_step.insert(it, {l.step, 0.0});
    it->second += l.value;
  }
  const auto lo =
      std::min_element(per_step.begin(), per_step.end(),
                       [](const auto& a, const auto& b) { return a.second < b.second; });
  return {
      fmt::format("{} ({} values), min {} at step {}", plural(per_step.size(), "step"),
                  t.losses.size(), fmt_num(lo->second), lo->first),
      fmt::format("first {} (step {}), last {} (step {})", fmt_num(per_step.front().second),
                  per_step.front().first, fmt_num(per_step.back().second), per_step.back().first)};
}

std::string steps_line(const trace::Trace& t, const RunAnalysis& a) {
  if (a.run_steps == 0) return "none";
  std::string s =
      fmt::format("{} ({}..{})", plural(a.run_steps, "step"), a.run_first_step, a.run_last_step);
  if (a.sampled_steps == a.run_steps && a.meta.sample_every <= 1)
    s += a.sampled_steps == 1 ? "" : ", all sampled";
  else
    s += fmt::format(
        ", {} sampled{}", a.sampled_steps,
        a.meta.sample_every > 1 ? fmt::format(" (every {})", a.meta.sample_every) : std::string());
  return s + fmt::format("; source {}", trace::step_source_name(t.step_source));
}

}  // namespace

std::string run_steps_text(const trace::Trace& t, const RunAnalysis& a) {
  return steps_line(t, a);
}

std::string warnings_text(const trace::Trace& t, size_t shown) {
  // Linear in the events, at most `shown` + 1 distinct texts kept: a trace may hold millions of
  // events (a hostile one does), and this line must cost nothing next to reading it.
  uint64_t n = 0;
  std::vector<const std::string*> distinct;
  bool more = false;
  for (const auto& e : t.events) {
    if (e.level < trace::EventLevel::Warning) continue;
    ++n;
    if (more) continue;
    bool seen = false;
    for (const auto* d : distinct) seen = seen || *d == e.text;
    if (seen) continue;
    if (distinct.size() < shown)
      distinct.push_back(&e.text);
    else
      more = true;
  }
  if (n == 0) return "";
  std::string s = plural(n, "warning") + ": ";
  for (size_t i = 0; i < distinct.size(); ++i) s += (i ? "; " : "") + *distinct[i];
  if (more) s += " (and more: summary --json .warnings)";
  return s;
}

std::string summary_text(const trace::Trace& t, const RunAnalysis& a, int max_rows, int width) {
  std::string o;
  if (!a.meta.emulate.empty())  // an emulated run must never pass for the program's own
    o +=
        "emulated   " +
        wrap_text(printable(emulation_description(a.meta) +
                            " (fpscope record --emulate); this is not the program's own precision"),
                  width > 11 ? width - 11 : 0, 11);
  o += causes_text(a, width);  // the verdict and the causes first (causes.h)
  // Every line goes through emit(): wrapped to `width` (0: unlimited), continuation lines
  // indented under the value column.
  // printable(): names, paths and texts are bytes from someone else's program; an ESC, CR or
  // newline in them must not reach the terminal (issue 17).
  auto emit = [&](const std::string& line, int indent = 11) {
    o += wrap_text(printable(line), width, indent);
  };
  emit(fmt::format("trace      {}  (format {}.{}, {} bytes)", t.path, t.version_major,
                   t.version_minor, t.file_bytes));
  if (!a.meta.command_line.empty())
    emit(fmt::format("command    {}", join_command_line(a.meta.command_line)));
  {
    std::string run;
    if (!a.meta.host.empty()) run += "host " + a.meta.host;
    if (!a.meta.probe.empty() || !a.meta.probe_version.empty())
      run += fmt::format("{}probe {}{}{}", run.empty() ? "" : ", ", a.meta.probe,
                         a.meta.probe.empty() || a.meta.probe_version.empty() ? "" : " ",
                         a.meta.probe_version);
    if (a.meta.pid >= 0) run += fmt::format("{}pid {}", run.empty() ? "" : ", ", a.meta.pid);
    if (a.meta.rank >= 0) run += fmt::format("{}rank {}", run.empty() ? "" : ", ", a.meta.rank);
    if (!run.empty()) emit("run        " + run);
  }
  if (t.truncated)
    emit(fmt::format("TRUNCATED  {}; {} bytes dropped; everything before was read",
                     t.truncation_reason.empty() ? "no footer" : t.truncation_reason,
                     t.dropped_bytes));
  emit("steps      " + steps_line(t, a));
  emit(fmt::format("gemms      {} calls, {} observations, {} tensors", a.gemm_calls,
                   t.observations.size(), a.risks.size()));
  // What went wrong while recording (skipped observations, CUPTI held by a profiler, ...): a
  // summary that hid it would pass an incomplete trace for a complete one.
  if (const std::string w = warnings_text(t); !w.empty()) emit("warnings   " + w);

  // Tensor table, worst first. Wide layout (one row per tensor, every format side by side) when
  // it fits `width` (0 = unlimited); else the tensor on one line and its formats two per line
  // under it (at most 75 columns).
  o += "\n";
  const char* kRowFmt = "{:<8} {:<22} {:<1} {:<5} {:>11} {:>6} {:>8} {:>7}";
  const std::string head = fmt::format(fmt::runtime(kRowFmt), "SEVERITY", "TENSOR", "R", "DTYPE",
                                       "SHAPE", "OBS", "AMAX", "NaN/Inf");
  const int wide_width = static_cast<int>(head.size()) + kNumTargets * 31;
  const bool wide = width <= 0 || width >= wide_width;
  if (wide) {
    std::string h = head;
    for (int i = 0; i < kNumTargets; ++i)
      h += fmt::format(" | {:<4} {:>5} {:>5} {:>5} {:>5}", spec(kTargets[i]).name, "OVF", "UNF",
                       "SUB", "SQNR");
    o += h + "\n";
  } else {
    o += head + "\n";
    o += fmt::format("{:11}{:<4} {:>5} {:>5} {:>5} {:>5}    (ovf/unf/sub fraction, SQNR dB)\n", "",
                     "FMT", "OVF", "UNF", "SUB", "SQNR");
  }
  int shown = 0;
  for (const auto& r : a.risks) {
    if (shown == max_rows) {
      emit(fmt::format("... {} more tensors (--rows N, or --json for all)",
                       a.risks.size() - static_cast<size_t>(shown)));
      break;
    }
    ++shown;
    std::string id = printable(r.id);  // escaped before cutting: the column width is kept
    if (id.size() > 22) id = id.substr(0, 21) + "~";
    const std::string line =
        fmt::format(fmt::runtime(kRowFmt), severity_name(r.severity), id, trace::role_name(r.role),
                    spec(r.dtype).name, fmt::format("{}x{}", r.rows, r.cols), r.observations,
                    fmt_num(r.amax), r.nan + r.pos_inf + r.neg_inf);
    if (wide) {
      std::string l = line;
      for (const auto& f : r.formats) l += " | " + cell(f);
      o += l + "\n";
    } else {
      o += line + "\n";
      for (int i = 0; i < kNumTargets; i += 2) {
        std::string l = fmt::format("{:11}{}", "", cell(r.formats[i]));
        if (i + 1 < kNumTargets) l += "    " + cell(r.formats[i + 1]);
        o += l + "\n";
      }
    }
    if (r.severity >= Severity::Warning) emit("         -> " + r.severity_reason, 12);
  }

  // Only for traces with block statistics: the others' text is unchanged.
  if (const std::string bt = block_table(a, detail::block_totals(t), max_rows, width);
      !bt.empty()) {
    o += "\n";
    emit(
        "block formats: loss = flushed + saturated of the elements inside their blocks; SQNR "
        "dB of the block-scaled cast",
        2);
    o += bt;
  }

  const auto& ls = a.loss_scale;
  o += "\n";
  if (!ls.present) {
    emit("loss scale none recorded");
  } else {
    emit(fmt::format("loss scale {} records, {}, {}, {}", ls.series.size(),
                     plural(ls.skipped.size(), "skipped step"), plural(ls.backoffs, "backoff"),
                     plural(ls.growths, "growth")));
    emit(fmt::format("           scale min {}, max {}, final {} ({} at min)", fmt_num(ls.min_scale),
                     fmt_num(ls.max_scale), fmt_num(ls.final_scale),
                     plural(ls.steps_at_min, "record")));
    if (ls.collapsed) emit(fmt::format("           COLLAPSED: {}", ls.collapse_reason));
    size_t n = 0;
    for (const auto& s : ls.skipped) {
      if (n++ == 10) {
        emit(fmt::format("           ... {} more skipped steps", ls.skipped.size() - 10));
        break;
      }
      emit(s.offender_tensor >= 0
               ? fmt::format("           skipped step {} (scale {}): first {} in {} (seq {})",
                             s.step, fmt_num(s.scale), s.reason, s.offender_id, s.offender_seq)
               : fmt::format("           skipped step {} (scale {}): no offending op recorded",
                             s.step, fmt_num(s.scale)));
    }
  }
  const std::vector<std::string> loss = loss_lines(t);
  for (size_t i = 0; i < loss.size(); ++i) emit((i == 0 ? "loss       " : "           ") + loss[i]);
  if (a.weights.empty()) {
    emit("weights    none watched");
  } else {
    emit(fmt::format("weights    {:<20} {:>7} {:>9} {:>9} {:>9} {:>9}", "NAME", "UPDATES",
                     "bf16 stag", "bf16 lost", "fp16 stag", "fp16 lost"));
    for (const auto& w : a.weights) {
      std::string name = w.name;
      if (name.size() > 20) name = name.substr(0, 19) + "~";
      emit(fmt::format(
          "           {:<20} {:>7} {:>9} {:>9} {:>9} {:>9}{}{}", name, w.updates,
          fmt_pct(w.bf16_stagnant), fmt_pct(w.bf16_lost_mass), fmt_pct(w.fp16_stagnant),
          fmt_pct(w.fp16_lost_mass),
          w.not_fp32 ? fmt::format("  NOT FP32 ({})", spec(w.master_dtype).name) : std::string(),
          w.sampled ? fmt::format("  sampled {} of {}: bf16 stag {}-{}", w.watched, w.elements,
                                  fmt_pct(w.bf16_stagnant_lo), fmt_pct(w.bf16_stagnant_hi))
                    : std::string()));
    }
  }
  if (const auto left = left_out_weights(t); !left.empty()) {
    std::string names;
    for (size_t i = 0; i < left.size() && i < 3; ++i)
      names += fmt::format("{}{} ({})", i ? "; " : "", left[i].name, left[i].reason);
    emit(fmt::format("           left out {} parameters: {}{}", left.size(), names,
                     left.size() > 3 ? "; ... (--json: weights_left_out)" : ""));
  }
  if (a.options.run_whatif && !a.whatif.empty()) {
    uint64_t sat = 0, unf = 0;
    for (const auto& w : a.whatif) {
      sat += w.saturate_steps > 0;
      unf += w.underflow_frac >= a.options.risk.underflow_warn;
    }
    emit(fmt::format("fp8 what-if delayed scaling (history {}, margin {}, {}): {} tensor/format "
                     "pairs would saturate, {} underflow >= {}",
                     a.options.whatif.history_len, a.options.whatif.margin,
                     amax_algo_name(a.options.whatif.algo), sat, unf,
                     fmt_pct(a.options.risk.underflow_warn)),
         12);
  }
  if (a.options.run_drift) {
    size_t ncp = 0;
    for (const auto& d : a.drift) ncp += d.change_points.size();
    if (ncp == 0) {
      emit("drift      no change points");
    } else {
      emit(fmt::format("drift      {} in {} (window {}, amax x{}, SQNR {} dB)",
                       plural(ncp, "change point"), plural(a.drift.size(), "tensor"),
                       a.options.drift.window, fmt_num(a.options.drift.amax_factor),
                       fmt_num(a.options.drift.sqnr_db)));
      size_t shown_d = 0;
      for (const auto& d : a.drift) {
        if (shown_d++ == 3) {
          emit(fmt::format("           ... {} more tensors (--json: drift)", a.drift.size() - 3));
          break;
        }
        const auto& c = d.change_points.front();
        const std::string what =
            c.series == "amax" ? fmt::format("amax {} -> {}", fmt_num(c.before), fmt_num(c.after))
                               : fmt::format("{} {:.1f} -> {:.1f} dB", c.series, c.before, c.after);
        emit(fmt::format("           {} step {}: {}{}", d.id, c.step, what,
                         d.change_points.size() > 1
                             ? fmt::format(" (+{} more)", d.change_points.size() - 1)
                             : std::string()));
      }
    }
  }
  if (!a.findings.empty()) {
    o += "\n";
    emit("top findings (fpscope report for all, with evidence and recommendations):", 2);
    for (size_t i = 0; i < a.findings.size() && i < 5; ++i)
      emit(fmt::format("  {}. [{}] {}", i + 1, severity_name(a.findings[i].severity),
                       a.findings[i].title),
           5);
  }
  return o;
}

}  // namespace fpscope::analysis
