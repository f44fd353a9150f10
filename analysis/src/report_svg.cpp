// The report's plots as SVG documents (deterministic: fixed number formats, no clock). The same
// documents are inline in the HTML report and files beside the Markdown one.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>

#include <fmt/format.h>

#include "fpscope/analysis/drift.h"
#include "fpscope/analysis/palette.h"
#include "fpscope/analysis/report.h"
#include "fpscope/analysis/text_escape.h"
#include "report_model.h"
#include "svg.h"

namespace fpscope::analysis {

namespace detail {
// One escaping for HTML and SVG (text_escape.h): controls become visible escapes (a raw ESC or
// NUL would make the XML ill-formed), invalid UTF-8 U+FFFD, then & < > " ' as entities.
std::string xml_escape(const std::string& s) {
  return html_text(s);
}
}  // namespace detail

namespace {

using detail::Svg;

// One colour per FP target format, in kTargets order.

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

// Column 0..ncol-1 of a step offset in [0, span] with ncol equal-width step ranges. Exact integer
// arithmetic while off * (ncol - 1) fits in 64 bits; beyond that (spans near 2^64) a double
// ratio, clamped, is precise enough for a pixel column.
int step_column(uint64_t off, uint64_t span, int ncol) {
  if (span == 0 || ncol <= 1) return 0;
  const auto k = static_cast<uint64_t>(ncol - 1);
  if (span <= UINT64_MAX / k) return static_cast<int>(off * k / span);
  const double f = static_cast<double>(off) / static_cast<double>(span);
  return std::clamp(static_cast<int>(f * static_cast<double>(k)), 0, ncol - 1);
}

// Labels from the integer steps: a double of a step near 2^64 does not convert back.
void x_axis(Svg& s, uint64_t x0, uint64_t x1, double px0, double pw, double py) {
  s.line(px0, py, px0 + pw, py, "#999");
  s.text(px0, py + 14, fmt::format("step {}", x0), 10, "start");
  s.text(px0 + pw, py + 14, fmt::format("{}", x1), 10, "end");
}

}  // namespace

std::string svg_amax_sqnr(const trace::TraceModel& model, uint32_t tensor) {
  const auto& trace = model.trace();
  const auto d = drift_series(model, tensor);
  const int W = 640, H = 330;
  const double px0 = 60, pw = 500;
  Svg s(W, H);
  s.text(W / 2.0, 16, detail::tensor_label(trace, tensor) + ": amax and SQNR over steps", 13,
         "middle");
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
    s.line(px0, y, px0 + pw, y, format_hex(kTargets[i]), 1.0, "4,3");
    s.text(px0 + pw + 4, y + 4, fmt::format("{} max", spec(kTargets[i]).name), 10, "start",
           format_hex(kTargets[i]));
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
               format_hex(kTargets[i]), 1.2);
    s.text(px0 + pw + 4, p2y + 12 + 14 * i, spec(kTargets[i]).name, 10, "start",
           format_hex(kTargets[i]));
  }
  s.text(px0 - 4, p2y + 10, fmt::format("{:.0f} dB", shi), 10, "end");
  s.text(px0 - 4, p2y + p2h, fmt::format("{:.0f} dB", slo), 10, "end");
  s.text(8, p2y + p2h / 2, "SQNR", 11, "start");
  x_axis(s, d.steps.front(), d.steps.back(), px0, pw, p2y + p2h);
  return s.str();
}

std::string svg_exponent_heatmap(const trace::TraceModel& model, uint32_t tensor) {
  const int W = 640, H = 330;
  const double px0 = 60, pw = 440, py0 = 30, ph = 260;
  const auto& trace = model.trace();
  Svg s(W, H);
  s.text(W / 2.0, 16, detail::tensor_label(trace, tensor) + ": exponent histogram over steps", 13,
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
  // Steps may span 0..2^64-1: span + 1 and (step - s0) * (ncol - 1) must not wrap.
  const uint64_t s0 = cells.begin()->first, s1 = cells.rbegin()->first;
  const uint64_t span = s1 - s0;  // cells is ordered, so s1 >= s0
  const auto max_cols = static_cast<uint64_t>(pw / 2);
  const int ncol = static_cast<int>(span >= max_cols - 1 ? max_cols : span + 1);
  std::vector<std::map<int, uint64_t>> cols(static_cast<size_t>(ncol));
  for (const auto& [step, col] : cells) {
    const int c = step_column(step - s0, span, ncol);
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
    s.rect(bx, ey(top), 12, ey(nlo) - ey(top) + ch, format_hex(kTargets[i]), 0.8);
    s.rect(bx, ey(nlo - 1), 12, ey(slo) - ey(nlo - 1) + ch, format_hex(kTargets[i]), 0.3);
    s.text(bx + 6, py0 + ph + 14, sp.name, 9, "middle", format_hex(kTargets[i]));
  }
  s.text(px0 + pw + 10, py0 - 6, "formats: normal | subnormal", 9, "start");
  // FP16 limits across the map.
  const auto& f16 = spec(Format::FP16);
  s.line(px0, py0 + (emax - max_exp(f16)) * ch, px0 + pw, py0 + (emax - max_exp(f16)) * ch,
         format_hex(kTargets[fp16]), 1.0, "4,3");
  s.line(px0, py0 + (emax - min_subnormal_exp(f16) + 1) * ch, px0 + pw,
         py0 + (emax - min_subnormal_exp(f16) + 1) * ch, format_hex(kTargets[fp16]), 1.0, "4,3");
  s.text(px0 - 4, py0 + 10, fmt::format("2^{}", emax), 10, "end");
  s.text(px0 - 4, py0 + ph, fmt::format("2^{}", emin), 10, "end");
  s.text(px0 - 4, py0 + ph / 2, "|x|", 11, "end");
  x_axis(s, s0, s1, px0, pw, py0 + ph);
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
  x_axis(s, ls.series.front().step, ls.series.back().step, px0, pw, py0 + ph);
  return s.str();
}

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
  } lines[] = {{kBf16HalfUlpLog2, "BF16", format_hex(Format::BF16)},
               {kFp16HalfUlpLog2, "FP16", format_hex(Format::FP16)}};
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

}  // namespace fpscope::analysis
