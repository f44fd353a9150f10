#include "fpscope/analysis/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>

#include "fpscope/analysis/drift.h"
#include "fpscope/analysis/summary.h"
#include "index.h"
#include "svg.h"

namespace fpscope::analysis {

namespace detail {
std::string xml_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}
}  // namespace detail

namespace {

using detail::Svg;
using detail::xml_escape;

const char* kFormatColor[kNumTargets] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
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

// Per pixel column min and max (spikes stay visible), as polyline points.
std::string minmax_points(const std::vector<double>& xs, const std::vector<double>& ys, double x0,
                          double x1, double px0, double pw, double y_lo, double y_hi, double py0,
                          double ph) {
  const int cols = std::max(1, static_cast<int>(pw));
  std::vector<double> mn(static_cast<size_t>(cols), INFINITY),
      mx(static_cast<size_t>(cols), -INFINITY);
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!std::isfinite(ys[i])) continue;
    const double fx = x1 > x0 ? (xs[i] - x0) / (x1 - x0) : 0.5;
    const int c = std::clamp(static_cast<int>(fx * (cols - 1) + 0.5), 0, cols - 1);
    mn[static_cast<size_t>(c)] = std::min(mn[static_cast<size_t>(c)], ys[i]);
    mx[static_cast<size_t>(c)] = std::max(mx[static_cast<size_t>(c)], ys[i]);
  }
  auto py = [&](double y) {
    const double f = y_hi > y_lo ? (std::clamp(y, y_lo, y_hi) - y_lo) / (y_hi - y_lo) : 0.5;
    return py0 + ph - f * ph;
  };
  std::string pts;
  for (int c = 0; c < cols; ++c) {
    const size_t k = static_cast<size_t>(c);
    if (!std::isfinite(mn[k])) continue;
    const double x = px0 + (cols == 1 ? pw / 2 : static_cast<double>(c) * pw / (cols - 1));
    pts += fmt::format("{:.1f},{:.1f} ", x, py(mn[k]));
    if (mx[k] != mn[k]) pts += fmt::format("{:.1f},{:.1f} ", x, py(mx[k]));
  }
  if (!pts.empty()) pts.pop_back();
  return pts;
}

void x_axis(Svg& s, double x0, double x1, double px0, double pw, double py) {
  s.line(px0, py, px0 + pw, py, "#999");
  s.text(px0, py + 14, fmt::format("step {}", static_cast<uint64_t>(x0)), 10, "start");
  s.text(px0 + pw, py + 14, fmt::format("{}", static_cast<uint64_t>(x1)), 10, "end");
}

std::string tensor_label(const trace::Trace& t, uint32_t tensor) {
  if (tensor >= t.tensors.size()) return fmt::format("tensor#{}", tensor);
  const auto& i = t.tensors[tensor];
  return i.name.empty() ? i.id : fmt::format("{} ({})", i.id, i.name);
}

std::string sqnr_str(double v) {
  if (std::isnan(v)) return "n/a";
  if (std::isinf(v)) return "exact";
  return fmt::format("{:.1f} dB", v);
}

std::string shape_str(const TensorRisk& r) {
  return fmt::format("{}x{}", r.rows, r.cols);
}

}  // namespace

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

std::string svg_amax_sqnr(const trace::TraceModel& model, uint32_t tensor) {
  const auto& trace = model.trace();
  const auto d = drift_series(model, tensor);
  const int W = 640, H = 330;
  const double px0 = 60, pw = 500;
  Svg s(W, H);
  s.text(W / 2.0, 16, tensor_label(trace, tensor) + ": amax and SQNR over steps", 13, "middle");
  if (d.steps.empty()) {
    s.text(W / 2.0, H / 2.0, "no observations", 12, "middle");
    return s.str();
  }
  std::vector<double> xs(d.steps.begin(), d.steps.end());
  const double x0 = xs.front(), x1 = xs.back();
  // Panel 1: log2(amax) with the formats' max finite values.
  std::vector<double> la;
  double lo = INFINITY, hi = -INFINITY;
  for (float a : d.amax) {
    const double v = a > 0.0f ? std::log2(static_cast<double>(a)) : NAN;
    la.push_back(v);
    if (std::isfinite(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (!std::isfinite(lo)) lo = hi = 0;
  lo = std::floor(lo) - 1;
  hi = std::ceil(hi) + 1;
  const double p1y = 30, p1h = 130;
  s.rect(px0, p1y, pw, p1h, "#f7f7f7");
  for (int i = 0; i < kNumTargets; ++i) {
    const double m = std::log2(static_cast<double>(max_finite(kTargets[i])));
    if (m < lo || m > hi) continue;
    const double y = p1y + p1h - (m - lo) / (hi - lo) * p1h;
    s.line(px0, y, px0 + pw, y, kFormatColor[i], 1.0, "4,3");
    s.text(px0 + pw + 4, y + 4, fmt::format("{} max", spec(kTargets[i]).name), 10, "start",
           kFormatColor[i]);
  }
  s.polyline(minmax_points(xs, la, x0, x1, px0, pw, lo, hi, p1y, p1h), "#000", 1.5);
  s.text(px0 - 4, p1y + 10, fmt::format("2^{:.0f}", hi), 10, "end");
  s.text(px0 - 4, p1y + p1h, fmt::format("2^{:.0f}", lo), 10, "end");
  s.text(8, p1y + p1h / 2, "amax", 11, "start");
  // Panel 2: SQNR per format (dB).
  const double p2y = 185, p2h = 110;
  double slo = INFINITY, shi = -INFINITY;
  for (int i = 0; i < kNumTargets; ++i)
    for (double v : d.sqnr_db[i])
      if (std::isfinite(v)) {
        slo = std::min(slo, v);
        shi = std::max(shi, v);
      }
  if (!std::isfinite(slo)) slo = 0, shi = 100;
  slo = std::floor(slo / 10) * 10;
  shi = std::ceil(shi / 10) * 10;
  if (shi <= slo) shi = slo + 10;
  s.rect(px0, p2y, pw, p2h, "#f7f7f7");
  for (int i = 0; i < kNumTargets; ++i) {
    s.polyline(minmax_points(xs, d.sqnr_db[i], x0, x1, px0, pw, slo, shi, p2y, p2h),
               kFormatColor[i], 1.2);
    s.text(px0 + pw + 4, p2y + 12 + 14 * i, spec(kTargets[i]).name, 10, "start", kFormatColor[i]);
  }
  s.text(px0 - 4, p2y + 10, fmt::format("{:.0f} dB", shi), 10, "end");
  s.text(px0 - 4, p2y + p2h, fmt::format("{:.0f} dB", slo), 10, "end");
  s.text(8, p2y + p2h / 2, "SQNR", 11, "start");
  x_axis(s, x0, x1, px0, pw, p2y + p2h);
  return s.str();
}

std::string svg_exponent_heatmap(const trace::TraceModel& model, uint32_t tensor) {
  const int W = 640, H = 330;
  const double px0 = 60, pw = 440, py0 = 30, ph = 260;
  const auto& trace = model.trace();
  Svg s(W, H);
  s.text(W / 2.0, 16, tensor_label(trace, tensor) + ": exponent histogram over steps", 13,
         "middle");
  // Step -> exponent -> count (exponent = floor(log2|x|) = hist_bin_exponent(bin)).
  std::map<uint64_t, std::map<int, uint64_t>> cells;
  int emin = 1000, emax = -1000;
  const auto series =
      tensor < model.num_tensors() ? model.series(tensor) : std::span<const uint32_t>{};
  for (uint32_t oi : series) {
    const auto& o = trace.observations[oi];
    auto& col = cells[o.step];
    for (uint32_t k = 0; k < o.hist_len; ++k) {
      const size_t idx = static_cast<size_t>(o.hist_begin) + k;
      if (idx >= trace.hist_bins.size() || idx >= trace.hist_counts.size()) break;
      const int e = hist_bin_exponent(trace.hist_bins[idx]);
      col[e] += trace.hist_counts[idx];
      emin = std::min(emin, e);
      emax = std::max(emax, e);
    }
  }
  if (cells.empty() || emin > emax) {
    s.text(W / 2.0, H / 2.0, "no histogram data", 12, "middle");
    return s.str();
  }
  const int fp16 = target_index(Format::FP16);
  emin = std::min(emin, min_subnormal_exp(spec(kTargets[fp16])) - 2);
  emax = std::max(emax, max_exp(spec(kTargets[fp16])) + 2);
  const int ne = emax - emin + 1;
  const double ch = ph / ne;
  // Columns: at most pw/2 columns, steps merged into equal-width step ranges.
  const uint64_t s0 = cells.begin()->first, s1 = cells.rbegin()->first;
  const int ncol = static_cast<int>(std::min<uint64_t>(s1 - s0 + 1, static_cast<uint64_t>(pw / 2)));
  std::vector<std::map<int, uint64_t>> cols(static_cast<size_t>(ncol));
  for (const auto& [step, col] : cells) {
    const int c =
        s1 > s0 ? static_cast<int>((step - s0) * static_cast<uint64_t>(ncol - 1) / (s1 - s0)) : 0;
    for (const auto& [e, n] : col) cols[static_cast<size_t>(c)][e] += n;
  }
  const double cw = pw / ncol;
  s.rect(px0, py0, pw, ph, "#f7f7f7");
  for (int c = 0; c < ncol; ++c) {
    uint64_t tot = 0;
    for (const auto& [e, n] : cols[static_cast<size_t>(c)]) tot += n;
    for (const auto& [e, n] : cols[static_cast<size_t>(c)]) {
      // Shade by log of the column-relative frequency: 1e-6 .. 1.
      const double f = static_cast<double>(n) / static_cast<double>(tot);
      const double v = std::clamp((std::log10(f) + 6.0) / 6.0, 0.05, 1.0);
      const int g = static_cast<int>(255 - v * 220);
      s.rect(px0 + c * cw, py0 + (emax - e) * ch, cw + 0.05, ch + 0.05,
             fmt::format("rgb({},{},255)", g, g));
    }
  }
  // Format bands on the right: normal range solid, subnormal range light.
  for (int i = 0; i < kNumTargets; ++i) {
    const auto& sp = spec(kTargets[i]);
    const double bx = px0 + pw + 10 + i * 24;
    auto ey = [&](int e) { return py0 + (emax - std::clamp(e, emin, emax)) * ch; };
    const int top = max_exp(sp), nlo = min_normal_exp(sp), slo = min_subnormal_exp(sp);
    s.rect(bx, ey(top), 12, ey(nlo) - ey(top) + ch, kFormatColor[i], 0.8);
    s.rect(bx, ey(nlo - 1), 12, ey(slo) - ey(nlo - 1) + ch, kFormatColor[i], 0.3);
    s.text(bx + 6, py0 + ph + 14, sp.name, 9, "middle", kFormatColor[i]);
  }
  s.text(px0 + pw + 10, py0 - 6, "formats: normal | subnormal", 9, "start");
  // FP16 limits across the map.
  const auto& f16 = spec(Format::FP16);
  s.line(px0, py0 + (emax - max_exp(f16)) * ch, px0 + pw, py0 + (emax - max_exp(f16)) * ch,
         kFormatColor[fp16], 1.0, "4,3");
  s.line(px0, py0 + (emax - min_subnormal_exp(f16) + 1) * ch, px0 + pw,
         py0 + (emax - min_subnormal_exp(f16) + 1) * ch, kFormatColor[fp16], 1.0, "4,3");
  s.text(px0 - 4, py0 + 10, fmt::format("2^{}", emax), 10, "end");
  s.text(px0 - 4, py0 + ph, fmt::format("2^{}", emin), 10, "end");
  s.text(px0 - 4, py0 + ph / 2, "|x|", 11, "end");
  x_axis(s, static_cast<double>(s0), static_cast<double>(s1), px0, pw, py0 + ph);
  return s.str();
}

std::string svg_loss_scale(const RunAnalysis& a) {
  const auto& ls = a.loss_scale;
  if (!ls.present) return "";
  const int W = 640, H = 200;
  const double px0 = 60, pw = 520, py0 = 30, ph = 140;
  Svg s(W, H);
  s.text(W / 2.0, 16, "loss scale over steps (red: skipped steps)", 13, "middle");
  std::vector<double> xs, ys;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& r : ls.series) {
    xs.push_back(static_cast<double>(r.step));
    const double v = r.scale > 0 ? std::log2(r.scale) : NAN;
    ys.push_back(v);
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (!std::isfinite(lo)) lo = hi = 0;
  lo = std::floor(lo) - 1;
  hi = std::ceil(hi) + 1;
  const double x0 = xs.front(), x1 = xs.back();
  s.rect(px0, py0, pw, ph, "#f7f7f7");
  if (lo <= 0.0 && hi >= 0.0) {  // scale 1: below it the scaler has collapsed
    const double y1 = py0 + ph - (0 - lo) / (hi - lo) * ph;
    s.line(px0, y1, px0 + pw, y1, "#999", 1.0, "4,3");
    s.text(px0 + pw + 4, y1 + 4, "1", 10);
  }
  s.polyline(minmax_points(xs, ys, x0, x1, px0, pw, lo, hi, py0, ph), "#000", 1.5);
  std::set<int> marked;  // one marker per pixel column
  for (const auto& k : ls.skipped) {
    const double fx = x1 > x0 ? (static_cast<double>(k.step) - x0) / (x1 - x0) : 0.5;
    const int col = static_cast<int>(fx * pw);
    if (!marked.insert(col).second) continue;
    const double v = k.scale > 0 ? std::log2(k.scale) : lo;
    s.circle(px0 + col, py0 + ph - (std::clamp(v, lo, hi) - lo) / (hi - lo) * ph, 2.5, "#d62728");
  }
  s.text(px0 - 4, py0 + 10, fmt::format("2^{:.0f}", hi), 10, "end");
  s.text(px0 - 4, py0 + ph, fmt::format("2^{:.0f}", lo), 10, "end");
  x_axis(s, x0, x1, px0, pw, py0 + ph);
  return s.str();
}

namespace {

std::string default_title(const trace::Trace& t, const ReportOptions& opt) {
  if (!opt.title.empty()) return opt.title;
  return "fpscope report: " + std::filesystem::path(t.path).filename().string();
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

std::vector<std::pair<std::string, std::string>> facts(const trace::Trace& t,
                                                       const RunAnalysis& a) {
  std::vector<std::pair<std::string, std::string>> f;
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

bool is_whatif(const Finding& f) {
  return f.kind == "fp8_saturation" || f.kind == "fp8_underflow";
}

// The findings a report lists: rank order, at most opt.max_findings in all, of which at most
// opt.max_whatif_findings FP8 what-if and opt.max_drift_findings within-run drift findings.
// *note: "" when nothing was left out, else one sentence saying what and where to find it.
std::vector<const Finding*> listed_findings(const std::vector<Finding>& all, const trace::Trace& t,
                                            const ReportOptions& opt, std::string* note) {
  std::vector<const Finding*> out;
  size_t whatif = 0, drift = 0, left_whatif = 0, left_drift = 0, left_other = 0;
  for (const auto& f : all) {
    const bool w = is_whatif(f), d = f.kind == "drift";
    if (static_cast<int>(out.size()) >= opt.max_findings ||
        (w && static_cast<int>(whatif) >= opt.max_whatif_findings) ||
        (d && static_cast<int>(drift) >= opt.max_drift_findings)) {
      (w ? left_whatif : d ? left_drift : left_other) += 1;
      continue;
    }
    whatif += w;
    drift += d;
    out.push_back(&f);
  }
  note->clear();
  const size_t left = left_whatif + left_drift + left_other;
  if (left == 0) return out;
  std::vector<std::string> parts;
  if (left_whatif) parts.push_back(fmt::format("{} FP8 what-if", left_whatif));
  if (left_drift) parts.push_back(fmt::format("{} drift", left_drift));
  if (left_other) parts.push_back(fmt::format("{} other", left_other));
  std::string what;
  for (size_t i = 0; i < parts.size(); ++i)
    what += (i == 0 ? "" : i + 1 == parts.size() ? " and " : ", ") + parts[i];
  *note = fmt::format(
      "... {} more {} not listed here ({}): `fpscope summary {}{} --json` lists every finding "
      "(.findings).",
      left, left == 1 ? "finding" : "findings", what, t.path,
      opt.baseline ? " --baseline " + opt.baseline->trace().path : std::string());
  return out;
}

std::string whatif_policy(const AnalysisOptions& o) {
  return fmt::format("history {}, margin {}, {}", o.whatif.history_len, o.whatif.margin,
                     amax_algo_name(o.whatif.algo));
}

// Rows of the FP8 what-if table (HTML and Markdown): the tensor/format pairs that saturate or
// underflow at least the warning fraction, at most opt.max_whatif_rows; *left counts the rest.
std::vector<const WhatIfTensor*> whatif_rows(const RunAnalysis& a, const ReportOptions& opt,
                                             size_t* left) {
  std::vector<const WhatIfTensor*> rows;
  *left = 0;
  for (const auto& w : a.whatif) {
    if (w.saturate_steps == 0 && w.underflow_frac < a.options.risk.underflow_warn) continue;
    if (static_cast<int>(rows.size()) == opt.max_whatif_rows)
      ++*left;
    else
      rows.push_back(&w);
  }
  return rows;
}

const char* counts_name(const WhatIfTensor& w) {
  return w.histogram_steps == 0 ? "exact" : w.exact_steps == 0 ? "from histogram" : "mixed";
}

std::string drift_rule(const AnalysisOptions& o) {
  return fmt::format(
      "A change point is a step whose amax differs from the median of the previous {} steps by a "
      "factor of at least {}, or whose SQNR in some format differs from it by at least {} dB "
      "(docs/metrics.md \"Drift within a run\").",
      o.drift.window, fmt_num(o.drift.amax_factor), fmt_num(o.drift.sqnr_db));
}

size_t drift_count(const RunAnalysis& a) {
  size_t n = 0;
  for (const auto& d : a.drift) n += d.change_points.size();
  return n;
}

// The first n change points in (tensor index, step) order.
std::vector<std::pair<std::string, const ChangePoint*>> drift_rows(const RunAnalysis& a, int n) {
  std::vector<std::pair<std::string, const ChangePoint*>> rows;
  for (const auto& d : a.drift)
    for (const auto& c : d.change_points) {
      if (static_cast<int>(rows.size()) >= n) return rows;
      rows.emplace_back(d.id, &c);
    }
  return rows;
}

std::string drift_value(const ChangePoint& c, double v) {
  return c.series == "amax" ? fmt_num(v) : fmt_sqnr(v);
}

}  // namespace

std::string svg_weight_ratio(const WeightLoss& w) {
  const int W = 640, H = 230;
  const double px0 = 60, pw = 520, py0 = 30, ph = 150;
  Svg s(W, H);
  s.text(W / 2.0, 16, w.name + ": update/weight ratio |delta|/|w| (share of updates)", 13,
         "middle");
  uint64_t total = 0, peak = 0;
  for (const auto& [bin, n] : w.ratio_hist) {
    total += n;
    peak = std::max(peak, n);
  }
  if (total == 0) {
    s.text(W / 2.0, H / 2.0, "no update records with changed elements", 12, "middle");
    return s.str();
  }
  // x: log2 ratio bins from the smallest to the largest present, always including both half-ulp
  // lines (a bin b covers [2^b, 2^(b+1))).
  int lo = std::min<int>(w.ratio_hist.front().first, kFp16HalfUlpLog2 - 2);
  int hi = std::max<int>(w.ratio_hist.back().first + 1, kBf16HalfUlpLog2 + 2);
  const double bw = pw / (hi - lo);
  auto xb = [&](double b) { return px0 + (b - lo) * bw; };
  s.rect(px0, py0, pw, ph, "#f7f7f7");
  for (const auto& [bin, n] : w.ratio_hist) {
    const double f = static_cast<double>(n) / static_cast<double>(peak);
    const bool lost_bf16 = bin + 1 <= kBf16HalfUlpLog2;
    s.rect(xb(bin) + 0.5, py0 + ph - f * ph, std::max(bw - 1.0, 0.5), f * ph,
           lost_bf16 ? "#d62728" : "#1f77b4", 0.85);
  }
  const struct {
    int at;
    const char* format;
    const char* color;
  } lines[] = {{kBf16HalfUlpLog2, "BF16", "#d62728"}, {kFp16HalfUlpLog2, "FP16", "#9467bd"}};
  for (int i = 0; i < 2; ++i) {
    const double x = xb(lines[i].at);
    s.line(x, py0, x, py0 + ph, lines[i].color, 1.2, "4,3");
    s.text(x + 3, py0 + 12 + 12 * i, fmt::format("{} half-ulp 2^{}", lines[i].format, lines[i].at),
           10, "start", lines[i].color);
  }
  s.line(px0, py0 + ph, px0 + pw, py0 + ph, "#999");
  for (int b = lo; b <= hi; b += std::max(1, (hi - lo) / 8))
    s.text(xb(b), py0 + ph + 14, fmt::format("2^{}", b), 10, "middle");
  s.text(px0 - 4, py0 + 10, fmt_pct(static_cast<double>(peak) / static_cast<double>(total)), 10,
         "end");
  s.text(px0 - 4, py0 + ph, "0", 10, "end");
  s.text(px0, py0 + ph + 32,
         fmt::format("left of a line an update is below half an ulp of its weight and always "
                     "rounds away: BF16 {}, FP16 {} of updates",
                     fmt_pct(w.below_bf16_half_ulp), fmt_pct(w.below_fp16_half_ulp)),
         10, "start");
  return s.str();
}

namespace {}  // namespace

std::string render_html(const trace::TraceModel& model, const RunAnalysis& a,
                        const ReportOptions& opt) {
  const trace::Trace& t = model.trace();
  const std::string title = default_title(t, opt);
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += fmt::format("<title>{}</title>\n", xml_escape(title));
  h += "<style>\nbody{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}\n"
       "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px "
       "6px;text-align:right}td:first-child,th:first-child{text-align:left}\n"
       ".sev{color:#fff;border-radius:3px;padding:0 5px;font-size:12px}\n"
       ".finding{margin:0.8em 0;padding:0.4em 0.8em;border-left:4px solid #ccc}\n"
       ".ev{color:#444;font-size:13px}.rec{font-size:13px}\n</style>\n</head>\n<body>\n";
  h += fmt::format("<h1>{}</h1>\n<table>\n", xml_escape(title));
  for (const auto& [k, v] : facts(t, a))
    h += fmt::format("<tr><th>{}</th><td style=\"text-align:left\">{}</td></tr>\n", k,
                     xml_escape(v));
  h += "</table>\n";

  std::vector<Finding> all = a.findings;
  std::vector<CrossRunDrift> drift;
  if (opt.baseline) {
    drift = compare_runs(*opt.baseline, model, a.options.cross);
    auto bf = baseline_findings(*opt.baseline, model, drift);
    all.insert(all.end(), bf.begin(), bf.end());
    rank_findings(&all);
  }
  h += fmt::format("<h2>Findings ({})</h2>\n", all.size());
  if (all.empty()) h += "<p>No problems found.</p>\n";
  std::string left_note;
  for (const Finding* fp : listed_findings(all, t, opt, &left_note)) {
    const auto& f = *fp;
    h += fmt::format(
        "<div class=\"finding\" style=\"border-color:{0}\"><span class=\"sev\" "
        "style=\"background:{0}\">{1}</span> <b>{2}</b><div class=\"ev\">Evidence: {3}</div><div "
        "class=\"rec\">Recommendation: {4}</div></div>\n",
        severity_color(f.severity), severity_name(f.severity), xml_escape(f.title),
        xml_escape(f.evidence), xml_escape(f.recommendation));
  }
  if (!left_note.empty()) h += "<p>" + xml_escape(left_note) + "</p>\n";

  if (a.loss_scale.present) {
    h += "<h2>Loss scale</h2>\n" + svg_loss_scale(a);
  }
  const auto plots = plot_tensors(a, opt.max_tensor_plots);
  if (!plots.empty()) h += "<h2>Tensors</h2>\n";
  for (uint32_t ti : plots) {
    h += fmt::format("<h3>{}</h3>\n", xml_escape(tensor_label(t, ti)));
    h += svg_amax_sqnr(model, ti);
    h += svg_exponent_heatmap(model, ti);
  }

  h += "<h2>Per-tensor table</h2>\n<table>\n<tr><th>tensor</th><th>severity</th><th>role</th>"
       "<th>dtype</th><th>shape</th><th>obs</th><th>amax</th><th>NaN/Inf</th>";
  for (int i = 0; i < kNumTargets; ++i)
    h += fmt::format("<th>{0} ovf</th><th>{0} unf</th><th>{0} SQNR</th>", spec(kTargets[i]).name);
  h += "</tr>\n";
  for (const auto& r : a.risks) {
    h += fmt::format(
        "<tr><td>{}</td><td style=\"color:{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</"
        "td><td>{}</td><td>{}</td>",
        xml_escape(r.id), severity_color(r.severity), severity_name(r.severity),
        trace::role_name(r.role), spec(r.dtype).name, shape_str(r), r.observations, fmt_num(r.amax),
        r.nan + r.pos_inf + r.neg_inf);
    for (const auto& f : r.formats)
      h += fmt::format("<td>{}</td><td>{}</td><td>{}</td>", fmt_pct(f.overflow_frac),
                       fmt_pct(f.underflow_frac), sqnr_str(f.sqnr_db));
    h += "</tr>\n";
  }
  h += "</table>\n";

  if (!a.weights.empty()) {
    h += "<h2>Watched master weights</h2>\n<table>\n<tr><th>weight</th><th>master</th>"
         "<th>updates</th><th>bf16 stagnant</th><th>bf16 lost mass</th><th>fp16 stagnant</th>"
         "<th>fp16 lost mass</th><th>below BF16 half-ulp</th><th>below FP16 half-ulp</th></tr>\n";
    for (const auto& w : a.weights)
      h += fmt::format(
          "<tr><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</"
          "td><td>{}</td><td>{}</td></tr>\n",
          xml_escape(w.name), spec(w.master_dtype).name, w.not_fp32 ? " (not FP32)" : "", w.updates,
          fmt_pct(w.bf16_stagnant), fmt_pct(w.bf16_lost_mass), fmt_pct(w.fp16_stagnant),
          fmt_pct(w.fp16_lost_mass), fmt_pct(w.below_bf16_half_ulp),
          fmt_pct(w.below_fp16_half_ulp));
    h += "</table>\n";
    for (const auto& w : a.weights) h += svg_weight_ratio(w);
  }
  if (!a.whatif.empty()) {
    h += fmt::format("<h2>FP8 what-if (delayed scaling: {})</h2>\n",
                     xml_escape(whatif_policy(a.options)));
    h += "<table>\n<tr><th>tensor</th><th>format</th><th>replayed steps</th><th>saturating "
         "steps</th><th>first</th><th>overflow</th><th>underflow</th><th>counts</th></tr>\n";
    size_t left_w = 0;
    const auto wrows = whatif_rows(a, opt, &left_w);
    for (const WhatIfTensor* wp : wrows) {
      const WhatIfTensor& w = *wp;
      h += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}"
          "</td></tr>\n",
          xml_escape(w.id), spec(w.format).name, w.steps.size(), w.saturate_steps,
          w.first_saturate_step >= 0 ? std::to_string(w.first_saturate_step) : "-",
          fmt_pct(w.overflow_frac), fmt_pct(w.underflow_frac), counts_name(w));
    }
    if (wrows.empty()) h += "<tr><td>(none saturates or underflows)</td></tr>\n";
    h += "</table>\n";
    if (left_w > 0)
      h += fmt::format("<p>... {} more rows (fpscope summary --json: .fp8_whatif).</p>\n", left_w);
  }
  if (!a.drift.empty()) {
    h += fmt::format(
        "<h2>Change points within the run</h2>\n<p>{}</p>\n<table>\n<tr><th>tensor</th>"
        "<th>step</th><th>series</th><th>before (median)</th><th>after</th></tr>\n",
        xml_escape(drift_rule(a.options)));
    for (const auto& [id, c] : drift_rows(a, opt.max_drift_rows))
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                       xml_escape(id), c->step, c->series, drift_value(*c, c->before),
                       drift_value(*c, c->after));
    h += "</table>\n";
    if (const size_t n = drift_count(a); n > static_cast<size_t>(opt.max_drift_rows))
      h += fmt::format("<p>... {} more change points (fpscope summary --json: .drift).</p>\n",
                       n - static_cast<size_t>(opt.max_drift_rows));
  }
  if (opt.baseline) {
    h += fmt::format(
        "<h2>Compared with baseline {}</h2>\n<table>\n<tr><th>tensor</th><th>amax "
        "base</th><th>amax run</th><th>ratio</th><th>first step beyond</th></tr>\n",
        xml_escape(opt.baseline->trace().path));
    for (const auto& d : drift)
      h += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", xml_escape(d.id),
          fmt_num(d.base_amax), fmt_num(d.other_amax), fmt_num(d.amax_ratio),
          d.first_step_beyond >= 0
              ? xml_escape(fmt::format("{} ({})", d.first_step_beyond, d.first_beyond_reason))
              : "-");
    h += "</table>\n";
  }
  h += "<p style=\"color:#888;font-size:12px\">Generated by fpscope " FPSCOPE_VERSION
       ". Definitions: docs/metrics.md.</p>\n</body>\n</html>\n";
  return h;
}

std::string render_markdown(const trace::TraceModel& model, const RunAnalysis& a,
                            const ReportOptions& opt, const std::string& plot_dir_rel,
                            std::vector<std::pair<std::string, std::string>>* plots) {
  const trace::Trace& t = model.trace();
  const std::string title = default_title(t, opt);
  std::string m = fmt::format("## {}\n\n", title);
  m += "| | |\n|---|---|\n";
  for (const auto& [k, v] : facts(t, a)) m += fmt::format("| {} | {} |\n", k, v);

  std::vector<Finding> all = a.findings;
  std::vector<CrossRunDrift> drift;
  if (opt.baseline) {
    drift = compare_runs(*opt.baseline, model, a.options.cross);
    auto bf = baseline_findings(*opt.baseline, model, drift);
    all.insert(all.end(), bf.begin(), bf.end());
    rank_findings(&all);
  }
  m += fmt::format("\n### Findings ({})\n\n", all.size());
  if (all.empty()) m += "No problems found.\n";
  std::string left_note;
  const auto listed = listed_findings(all, t, opt, &left_note);
  for (size_t i = 0; i < listed.size(); ++i) {
    const auto& f = *listed[i];
    m += fmt::format("{}. **[{}]** {}  \n   Evidence: {}  \n   Recommendation: {}\n", i + 1,
                     severity_name(f.severity), f.title, f.evidence, f.recommendation);
  }
  if (!left_note.empty()) m += "\n" + left_note + "\n";

  auto add_plot = [&](const std::string& name, std::string svg, const std::string& alt) {
    if (svg.empty() || !plots) return;  // no plot files (e.g. Markdown to stdout): no reference
    plots->emplace_back(name, std::move(svg));
    m += fmt::format("\n![{}]({}/{})\n", alt, plot_dir_rel, name);
  };
  if (a.loss_scale.present) {
    m += "\n### Loss scale\n";
    add_plot("loss_scale.svg", svg_loss_scale(a), "loss scale");
  }
  const auto pt = plot_tensors(a, opt.max_tensor_plots);
  if (!pt.empty()) m += "\n### Tensors\n";
  for (uint32_t ti : pt) {
    m += fmt::format("\n#### {}\n", tensor_label(t, ti));
    add_plot(fmt::format("tensor{}_amax_sqnr.svg", ti), svg_amax_sqnr(model, ti), "amax and SQNR");
    add_plot(fmt::format("tensor{}_exponents.svg", ti), svg_exponent_heatmap(model, ti),
             "exponent heatmap");
  }

  m += "\n### Per-tensor table\n\n| tensor | severity | role | dtype | shape | obs | amax | "
       "NaN/Inf |";
  for (int i = 0; i < kNumTargets; ++i)
    m += fmt::format(" {0} ovf / unf / SQNR |", spec(kTargets[i]).name);
  m += "\n|---|---|---|---|---|--:|--:|--:|";
  for (int i = 0; i < kNumTargets; ++i) m += "--:|";
  m += "\n";
  int rows = 0;
  for (const auto& r : a.risks) {
    if (rows++ == 50) {
      m += fmt::format("\n... {} more tensors.\n", a.risks.size() - 50);
      break;
    }
    m += fmt::format("| `{}` | {} | {} | {} | {} | {} | {} | {} |", r.id, severity_name(r.severity),
                     trace::role_name(r.role), spec(r.dtype).name, shape_str(r), r.observations,
                     fmt_num(r.amax), r.nan + r.pos_inf + r.neg_inf);
    for (const auto& f : r.formats)
      m += fmt::format(" {} / {} / {} |", fmt_pct(f.overflow_frac), fmt_pct(f.underflow_frac),
                       sqnr_str(f.sqnr_db));
    m += "\n";
  }
  if (!a.weights.empty()) {
    m += "\n### Watched master weights\n\n| weight | master | updates | bf16 stagnant | bf16 lost "
         "mass | fp16 stagnant | fp16 lost mass | below BF16 half-ulp | below FP16 half-ulp |\n"
         "|---|---|--:|--:|--:|--:|--:|--:|--:|\n";
    for (const auto& w : a.weights)
      m += fmt::format("| {} | {}{} | {} | {} | {} | {} | {} | {} | {} |\n", w.name,
                       spec(w.master_dtype).name, w.not_fp32 ? " (not FP32)" : "", w.updates,
                       fmt_pct(w.bf16_stagnant), fmt_pct(w.bf16_lost_mass),
                       fmt_pct(w.fp16_stagnant), fmt_pct(w.fp16_lost_mass),
                       fmt_pct(w.below_bf16_half_ulp), fmt_pct(w.below_fp16_half_ulp));
    for (const auto& w : a.weights)
      add_plot(fmt::format("weight{}_update_ratio.svg", w.tensor), svg_weight_ratio(w),
               "update/weight ratio");
  }
  if (!a.whatif.empty()) {
    m += fmt::format(
        "\n### FP8 what-if (delayed scaling: {})\n\n| tensor | format | replayed steps | "
        "saturating steps | first | overflow | underflow | counts |\n"
        "|---|---|--:|--:|--:|--:|--:|---|\n",
        whatif_policy(a.options));
    size_t left_w = 0;
    const auto wrows = whatif_rows(a, opt, &left_w);
    for (const WhatIfTensor* wp : wrows) {
      const WhatIfTensor& w = *wp;
      m += fmt::format("| `{}` | {} | {} | {} | {} | {} | {} | {} |\n", w.id, spec(w.format).name,
                       w.steps.size(), w.saturate_steps,
                       w.first_saturate_step >= 0 ? std::to_string(w.first_saturate_step) : "-",
                       fmt_pct(w.overflow_frac), fmt_pct(w.underflow_frac), counts_name(w));
    }
    if (wrows.empty()) m += "| (none saturates or underflows) | | | | | | | |\n";
    if (left_w > 0)
      m += fmt::format("\n... {} more rows (fpscope summary --json: .fp8_whatif).\n", left_w);
  }
  if (!a.drift.empty()) {
    m += fmt::format(
        "\n### Change points within the run\n\n{}\n\n| tensor | step | series | before "
        "(median) | after |\n|---|--:|---|--:|--:|\n",
        drift_rule(a.options));
    for (const auto& [id, c] : drift_rows(a, opt.max_drift_rows))
      m += fmt::format("| `{}` | {} | {} | {} | {} |\n", id, c->step, c->series,
                       drift_value(*c, c->before), drift_value(*c, c->after));
    if (const size_t n = drift_count(a); n > static_cast<size_t>(opt.max_drift_rows))
      m += fmt::format("\n... {} more change points (fpscope summary --json: .drift).\n",
                       n - static_cast<size_t>(opt.max_drift_rows));
  }
  if (opt.baseline) {
    m += fmt::format(
        "\n### Compared with baseline `{}`\n\n| tensor | amax base | amax run | ratio "
        "| first step beyond |\n|---|--:|--:|--:|---|\n",
        opt.baseline->trace().path);
    for (const auto& d : drift)
      m += fmt::format("| `{}` | {} | {} | {} | {} |\n", d.id, fmt_num(d.base_amax),
                       fmt_num(d.other_amax), fmt_num(d.amax_ratio),
                       d.first_step_beyond >= 0
                           ? fmt::format("{} ({})", d.first_step_beyond, d.first_beyond_reason)
                           : "-");
  }
  m += "\n<sub>Generated by fpscope " FPSCOPE_VERSION ". Definitions: docs/metrics.md.</sub>\n";
  return m;
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
  std::string m = fmt::format("**fpscope**: `{}`, {}{}\n\n", t.path, run_steps_text(t, a),
                              t.truncated ? " (trace truncated)" : "");
  if (sel.step_begin >= 0 || sel.step_end >= 0)
    m += fmt::format("Steps {}..{}\n\n", sel.step_begin >= 0 ? std::to_string(sel.step_begin) : "",
                     sel.step_end >= 0 ? std::to_string(sel.step_end) : "");
  int n = 0;
  for (const auto& f : a.findings) {
    if (!in_sel(f.tensor) || (!sel.tensors.empty() && f.tensor < 0) || !in_steps(f.first_step))
      continue;
    m += fmt::format("- **[{}]** {}  \n  {}  \n  -> {}\n", severity_name(f.severity), f.title,
                     f.evidence, f.recommendation);
    ++n;
  }
  if (n == 0) m += "- no findings for this selection\n";
  if (!sel.tensors.empty()) {
    m += "\n| tensor | dtype | shape | obs | amax | NaN/Inf | fp16 ovf / unf | bf16 SQNR |\n"
         "|---|---|---|--:|--:|--:|--:|--:|\n";
    const int i16 = target_index(Format::FP16), ib = target_index(Format::BF16);
    for (const auto& r : a.risks) {
      if (!in_sel(r.tensor)) continue;
      m += fmt::format("| `{}` | {} | {} | {} | {} | {} | {} / {} | {} |\n", r.id,
                       spec(r.dtype).name, shape_str(r), r.observations, fmt_num(r.amax),
                       r.nan + r.pos_inf + r.neg_inf, fmt_pct(r.formats[i16].overflow_frac),
                       fmt_pct(r.formats[i16].underflow_frac), sqnr_str(r.formats[ib].sqnr_db));
    }
  }
  return m;
}

}  // namespace fpscope::analysis
