// `fpscope summary`'s text form (docs/cli.md "summary"), from the same RunAnalysis as the JSON
// (summary.cpp): run facts, findings, the per-tensor table and its per-format cells, the
// block-scaled formats table, losses, steps and warnings.
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "block_totals.h"
#include "fpscope/analysis/causes.h"
#include "fpscope/analysis/summary.h"
#include "fpscope/analysis/text_escape.h"

namespace fpscope::analysis {

using detail::BlockTotals;
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
