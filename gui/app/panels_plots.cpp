// Step-indexed plots: the replay timeline with the loss-scale track, the exponent heatmap with
// format bands and the what-if scale, format drift across runs, master-weight loss.
#include <GL/gl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "app.h"

namespace fpscope::gui {

namespace {

constexpr ImU32 kCurStep = IM_COL32(255, 255, 255, 200);
constexpr ImU32 kSkipped = IM_COL32(255, 70, 70, 255);
constexpr ImU32 kAmax = IM_COL32(255, 255, 255, 230);

ImVec4 v4(Rgb c) { return ImGui::ColorConvertU32ToFloat4(col32(c)); }

// A checkbox drawn in the format's colour.
bool format_toggle(Format f, bool* v) {
  ImGui::PushStyleColor(ImGuiCol_Text, v4(format_color(f)));
  ImGui::PushStyleColor(ImGuiCol_CheckMark, v4(format_color(f)));
  const bool r = ImGui::Checkbox(spec(f).name, v);
  ImGui::PopStyleColor(2);
  return r;
}

// Nearest index in an ascending vector to x (-1 when empty).
int64_t nearest(const std::vector<uint64_t>& v, double x) {
  if (v.empty()) return -1;
  const auto it = std::lower_bound(v.begin(), v.end(), static_cast<uint64_t>(std::max(0.0, x)));
  if (it == v.end()) return static_cast<int64_t>(v.size()) - 1;
  const int64_t i = it - v.begin();
  if (i > 0 && std::abs(static_cast<double>(v[static_cast<size_t>(i - 1)]) - x) <
                   std::abs(static_cast<double>(*it) - x))
    return i - 1;
  return i;
}

std::string pct(double f) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g%%", f * 100.0);
  return b;
}

}  // namespace

// ---- timeline ----------------------------------------------------------------------------------

void App::timeline_panel(ImVec2 size) {
  const Run* p = primary();
  ImGui::BeginChild("timeline", size, true, ImGuiWindowFlags_NoScrollbar);
  const auto& ts = p->timeline_steps;
  const auto n = static_cast<int64_t>(ts.size());
  ImGui::TextUnformatted("Replay");
  ImGui::SameLine();
  if (ImGui::Button("|<")) set_step_index(0);
  ImGui::SameLine();
  if (ImGui::Button("<")) set_step_index(step_index_ - 1);
  ImGui::SameLine();
  if (ImGui::Button(playing_ ? "Pause" : "Play", ImVec2(58, 0))) {
    if (!playing_ && step_index_ + 1 >= n) set_step_index(0);
    playing_ = !playing_;
  }
  ImGui::SameLine();
  if (ImGui::Button(">")) set_step_index(step_index_ + 1);
  ImGui::SameLine();
  if (ImGui::Button(">|")) set_step_index(n - 1);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(130);
  ImGui::SliderFloat("##speed", &play_speed_, 1.0f, 500.0f, "%.0f steps/s", ImGuiSliderFlags_Logarithmic);
  ImGui::SameLine();
  int idx = static_cast<int>(step_index_);
  char label[64];
  std::snprintf(label, sizeof label, "step %llu", static_cast<unsigned long long>(cur_step()));
  ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x - 330);
  if (ImGui::SliderInt("##scrub", &idx, 0, static_cast<int>(std::max<int64_t>(0, n - 1)), label))
    set_step_index(idx);
  ImGui::SameLine();
  const auto& la = p->analysis.loss_scale;
  const trace::LossScaleRecord* rec = nullptr;
  for (const auto& r : la.series)
    if (r.step == cur_step()) rec = &r;
  if (rec) {
    ImGui::Text("loss scale %.6g", rec->scale);
    if (rec->found_inf) {
      ImGui::SameLine();
      ImGui::TextColored(ImVec4(1, 0.35f, 0.35f, 1), "SKIPPED (Inf/NaN grads)");
    }
  } else {
    ImGui::TextDisabled(la.present ? "no loss-scale record at this step" : "no loss-scale records");
  }

  // Loss-scale track: log2(scale) as stairs, skipped steps in red.
  std::vector<double> x, y;
  double lo = 0, hi = 1;
  for (const auto& r : la.series) {
    x.push_back(static_cast<double>(r.step));
    y.push_back(r.scale > 0 ? std::log2(r.scale) : -std::numeric_limits<double>::infinity());
  }
  if (!y.empty()) {
    lo = hi = std::isfinite(y[0]) ? y[0] : 0;
    for (double v : y)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    lo -= 1;
    hi += 1;
  }
  double clicked = -1;
  const Plot pl = begin_plot("##lstrack", ImVec2(0, 0), &xview_, lo, hi, YFmt::Pow2, "scale", &clicked);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  // Where the selected tensor went wrong: overflow (its format colour) and NaN/Inf (red) ticks.
  if (tdata_.current()) {
    const auto& d = tdata_.value()->drift;
    const auto& st = tdata_.value()->steps;
    const int f16 = target_index(Format::FP16);
    for (size_t i = 0; i < d.steps.size(); ++i) {
      const double sx = static_cast<double>(d.steps[i]);
      if (sx < pl.x0 || sx > pl.x1) continue;
      const float xx = pl.px(sx);
      if (d.overflow_frac[static_cast<size_t>(f16)][i] > 0)
        dl->AddLine(ImVec2(xx, pl.r.Max.y - 7), ImVec2(xx, pl.r.Max.y), col32(format_color(Format::FP16)), 2);
    }
    for (size_t i = 0; i < st.size(); ++i)
      if (st.nonfinite[i] > 0) {
        const float xx = pl.px(st.step_x[i]);
        dl->AddLine(ImVec2(xx, pl.r.Max.y - 14), ImVec2(xx, pl.r.Max.y - 7), kSkipped, 2);
      }
  }
  plot_series(pl, x, y, IM_COL32(120, 200, 255, 255), 2.0f, false, true);
  for (const auto& s : la.skipped) {
    const double sx = static_cast<double>(s.step);
    vline(pl, sx, IM_COL32(255, 70, 70, 150), 1.0f);
    const float xx = pl.px(sx);
    dl->AddTriangleFilled(ImVec2(xx - 5, pl.r.Min.y), ImVec2(xx + 5, pl.r.Min.y), ImVec2(xx, pl.r.Min.y + 8),
                          kSkipped);
  }
  if (la.collapsed && la.collapse_step >= 0) {
    const float xx = pl.px(static_cast<double>(la.collapse_step));
    dl->AddText(ImVec2(xx + 3, pl.r.Min.y + 2), kSkipped, "collapse");
  }
  vline(pl, static_cast<double>(cur_step()), kCurStep, 2.0f);
  if (x.empty()) {
    dl->AddText(ImVec2(pl.r.Min.x + 8, pl.r.Min.y + 6), IM_COL32(160, 160, 170, 255),
                "no loss-scale records (fpscope.loss_scale() or the AMP scaler kernel records them)");
  }
  end_plot(pl);
  if (pl.hovered && pl.r.Contains(pl.mouse)) {
    const int64_t i = nearest(ts, pl.x_at(pl.mouse.x));
    if (i >= 0) {
      const uint64_t s = ts[static_cast<size_t>(i)];
      std::string tip = "step " + std::to_string(s);
      for (const auto& r : la.series)
        if (r.step == s) tip += "\nloss scale " + fmt_g(r.scale, 8) + (r.found_inf ? "  -> SKIPPED, scale backed off" : "");
      for (const auto& k : la.skipped)
        if (k.step == s && k.offender_tensor >= 0)
          tip += "\nfirst offender: " + k.offender_id + " (" + k.reason + ", seq " + std::to_string(k.offender_seq) + ")";
      ImGui::SetTooltip("%s", tip.c_str());
    }
  }
  if (clicked >= 0) {
    const int64_t i = nearest(ts, clicked);
    if (i >= 0) set_step_index(i);
  }
  ImGui::EndChild();
  region("timeline");
}

// ---- heatmap -----------------------------------------------------------------------------------

void App::heatmap_panel(ImVec2 size) {
  ImGui::BeginChild("heatmap", size, true, ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
  const TensorData* td = tdata_.current() ? tdata_.value().get() : nullptr;
  ImGui::Text("Exponent histogram%s%s", td ? " of " : "",
              td ? primary()->model->tensor(td->tensor).id.c_str() : "");
  ImGui::SameLine();
  ImGui::TextDisabled("(colour: fraction of elements per quarter octave)");
  ImGui::SameLine(0, 14);
  for (int t = 0; t < kNumTargets; ++t) {
    ImGui::PushID(t);
    format_toggle(kTargets[t], &show_fmt_[t]);
    ImGui::PopID();
    ImGui::SameLine();
  }
  ImGui::Checkbox("amax", &show_amax_);
  if (!td) {
    ImGui::TextDisabled(sel_ < 0 ? "Select a tensor." : "computing...");
    ImGui::EndChild();
    region("heatmap");
    return;
  }
  const TensorSteps& st = td->steps;
  ImGui::TextDisabled("lines: max finite (solid), smallest normal (dashed), shaded: subnormal band; %s x scale shown for the what-if format",
                      spec(wcfg_.format).name);

  // y range (octaves): the data +-2, and at least FP16's whole range, unless zoomed.
  if (heat_y1_ <= heat_y0_) {
    double lo = -26, hi = 17;
    if (st.bin_hi >= st.bin_lo) {
      lo = std::min(lo, std::floor(bin_coord(st.bin_lo)) - 2);
      hi = std::max(hi, std::ceil(bin_coord(st.bin_hi + 1)) + 2);
    }
    heat_y0_ = std::max(-127.0, lo);
    heat_y1_ = std::min(128.0, hi);
  }
  const float bar_w = 74.0f;
  ImVec2 avail = ImGui::GetContentRegionAvail();
  double clicked = -1;
  const Plot pl = begin_plot("##heat", ImVec2(avail.x - bar_w, avail.y), &xview_, heat_y0_, heat_y1_,
                             YFmt::Pow2, "|x|", &clicked);
  if (pl.hovered && ImGui::GetIO().KeyCtrl && ImGui::GetIO().MouseWheel != 0.0f) {
    const double at = pl.y_at(pl.mouse.y), f = std::pow(0.85, ImGui::GetIO().MouseWheel);
    heat_y0_ = std::max(-127.0, at - (at - heat_y0_) * f);
    heat_y1_ = std::min(128.0, at + (heat_y1_ - at) * f);
    if (heat_y1_ - heat_y0_ < 2) heat_y1_ = heat_y0_ + 2;
  }
  ImDrawList* dl = ImGui::GetWindowDrawList();
  // The heat raster, one texel per pixel column and histogram bin (min/max: max fraction).
  const int row_lo = std::clamp(static_cast<int>(std::floor((heat_y0_ + 127.0) * 4)), 0, 1019);
  const int row_hi = std::clamp(static_cast<int>(std::ceil((heat_y1_ + 127.0) * 4)) - 1, row_lo, 1019);
  HeatKey key{tdata_.generation(), pl.x0, pl.x1, pl.columns(), row_lo, row_hi};
  if (!(key == heat_key_)) {
    const HeatRaster r = rasterize(st, pl.x0, pl.x1, key.width, row_lo, row_hi);
    const auto px = raster_rgba(r, IM_COL32(18, 20, 26, 255));
    if (!heat_tex_) glGenTextures(1, &heat_tex_);
    glBindTexture(GL_TEXTURE_2D, heat_tex_);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 4);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, r.width, r.rows, 0, GL_RGBA, GL_UNSIGNED_BYTE, px.data());
    heat_key_ = key;
  }
  dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(heat_tex_)),
               ImVec2(pl.r.Min.x, pl.py(bin_coord(row_hi + 1))), ImVec2(pl.r.Max.x, pl.py(bin_coord(row_lo))));

  // Format overlays. The what-if format is drawn at the what-if scale (x overflows when
  // |x| * s > max, i.e. above max / s); the others unscaled.
  const WhatIfSeries* ws =
      (whatif_.current() && whatif_.value()->config == wcfg_) ? whatif_.value().get() : nullptr;
  for (int t = 0; t < kNumTargets; ++t) {
    if (!show_fmt_[t]) continue;
    const Format f = kTargets[t];
    const ImU32 c = col32(format_color(f)), band = col32(format_color(f), 0.16f);
    const bool scaled = f == wcfg_.format;
    const double mx = max_finite(f), mn = min_normal(f), ms = min_subnormal(f);
    if (scaled && wcfg_.mode == ScaleMode::Delayed) {
      if (!ws) continue;
      std::vector<double> ymax(st.size()), ynorm(st.size()), ysub(st.size());
      for (size_t i = 0; i < st.size(); ++i) {
        const double s = ws->scale[i];
        ymax[i] = octave_coord(mx / s);
        ynorm[i] = octave_coord(mn / s);
        ysub[i] = octave_coord(ms / s);
      }
      plot_series(pl, st.step_x, ymax, c, 2.0f, false, true);
      plot_series(pl, st.step_x, ynorm, c, 1.0f, true, true);
      plot_series(pl, st.step_x, ysub, col32(format_color(f), 0.6f), 1.0f, true, true);
      continue;
    }
    const double s = scaled ? pow2f(std::clamp(wcfg_.pow2, -126, 127)) : 1.0;
    const double ymax = octave_coord(mx / s), ynorm = octave_coord(mn / s), ysub = octave_coord(ms / s);
    dl->AddRectFilled(ImVec2(pl.r.Min.x, pl.py(ynorm)), ImVec2(pl.r.Max.x, pl.py(ysub)), band);
    hline(pl, ymax, c, 2.0f);
    hline(pl, ynorm, c, 1.0f, true);
    char lab[48];
    std::snprintf(lab, sizeof lab, scaled && s != 1.0 ? "%s max (x2^%d)" : "%s max", spec(f).name, wcfg_.pow2);
    dl->AddText(ImVec2(pl.r.Min.x + 4 + static_cast<float>(t) * 4, pl.py(ymax) - ImGui::GetFontSize() - 1), c, lab);
  }
  if (show_amax_) {
    std::vector<double> ya(st.size());
    for (size_t i = 0; i < st.size(); ++i) ya[i] = st.amax[i] > 0 ? octave_coord(st.amax[i]) : std::nan("");
    plot_series(pl, st.step_x, ya, kAmax, 1.5f);
  }
  // NaN/Inf in the data: red marks on the top edge (min/max columns keep a single one visible).
  {
    std::vector<double> xs, ys;
    for (size_t i = 0; i < st.size(); ++i)
      if (st.nonfinite[i] > 0) {
        xs.push_back(st.step_x[i]);
        ys.push_back(std::numeric_limits<double>::infinity());
      }
    if (!xs.empty()) plot_series(pl, xs, ys, kSkipped, 1.0f);
  }
  vline(pl, static_cast<double>(cur_step()), kCurStep, 1.5f);
  end_plot(pl);
  if (pl.hovered && pl.r.Contains(pl.mouse)) {
    const int64_t i = st.index_at_or_before(static_cast<uint64_t>(std::max(0.0, pl.x_at(pl.mouse.x))));
    const int b = static_cast<int>(std::floor((pl.y_at(pl.mouse.y) + 127.0) * 4));
    if (i >= 0 && b >= 0 && b < 1020) {
      const auto k = static_cast<size_t>(i);
      uint64_t cnt = 0;
      const auto bins = st.step_bins(k);
      const auto counts = st.step_counts(k);
      for (size_t j = 0; j < bins.size(); ++j)
        if (bins[j] == b) cnt = counts[j];
      const double frac = st.eligible[k] ? static_cast<double>(cnt) / static_cast<double>(st.eligible[k]) : 0;
      ImGui::SetTooltip("step %llu\n|x| in [%.6g, %.6g)\n%llu of %llu elements (%s)\namax %.6g%s",
                        static_cast<unsigned long long>(st.steps[k]), static_cast<double>(hist_bin_low(b)),
                        static_cast<double>(hist_bin_high(b)), static_cast<unsigned long long>(cnt),
                        static_cast<unsigned long long>(st.eligible[k]), pct(frac).c_str(),
                        static_cast<double>(st.amax[k]),
                        st.nonfinite[k] ? ("\nNaN/Inf elements: " + std::to_string(st.nonfinite[k])).c_str() : "");
    }
  }
  if (clicked >= 0) {
    const int64_t i = nearest(primary()->timeline_steps, clicked);
    if (i >= 0) set_step_index(i);
  }
  // Colour bar.
  ImGui::SameLine(0, 0);
  const ImVec2 bp = ImGui::GetCursorScreenPos();
  const float top = pl.r.Min.y, bot = pl.r.Max.y, x0 = bp.x + 10, x1 = bp.x + 24;
  const int steps = 64;
  for (int k = 0; k < steps; ++k) {
    const float a = top + (bot - top) * static_cast<float>(k) / steps;
    const float b = top + (bot - top) * static_cast<float>(k + 1) / steps;
    const float t = 1.0f - (static_cast<float>(k) + 0.5f) / steps;
    dl->AddRectFilled(ImVec2(x0, a), ImVec2(x1, b + 1), col32(heat_color(t)));
  }
  for (int e = 0; e <= 6; e += 2) {
    const float yy = top + (bot - top) * static_cast<float>(e) / 6.0f;
    char lab[16];
    std::snprintf(lab, sizeof lab, e == 0 ? "1" : "1e-%d", e);
    dl->AddLine(ImVec2(x1, yy), ImVec2(x1 + 4, yy), IM_COL32(200, 200, 200, 255));
    dl->AddText(ImVec2(x1 + 6, yy - ImGui::GetFontSize() * 0.5f), IM_COL32(200, 204, 212, 255), lab);
  }
  dl->AddText(ImVec2(x0 - 4, bot + 2), IM_COL32(150, 156, 168, 255), "frac");
  ImGui::Dummy(ImVec2(bar_w, 1));
  ImGui::EndChild();
  region("heatmap");
  regions_["heatmap_plot"] = ImVec4(pl.r.Min.x, pl.r.Min.y, pl.r.GetWidth(), pl.r.GetHeight());
}

// ---- drift -------------------------------------------------------------------------------------

void App::drift_panel(ImVec2 size) {
  ImGui::BeginChild("drift", size, true, ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
  ImGui::TextUnformatted("Format drift: SQNR");
  ImGui::SameLine(0, 12);
  for (int t = 0; t < kNumTargets; ++t) {
    ImGui::PushID(t + 40);
    format_toggle(kTargets[t], &drift_fmt_[t]);
    ImGui::PopID();
    ImGui::SameLine();
  }
  ImGui::NewLine();
  const TensorData* td = tdata_.current() ? tdata_.value().get() : nullptr;
  if (!td) {
    ImGui::TextDisabled("computing...");
    ImGui::EndChild();
    region("drift");
    return;
  }
  // Runs: the primary solid, others dashed; legend.
  struct Series {
    const analysis::DriftSeries* d;
    std::string label;
    bool dashed;
  };
  std::vector<Series> series{{&td->drift, "Run " + std::string(1, static_cast<char>('A' + primary_)), false}};
  for (const auto& o : td->others)
    series.push_back({&o.drift, "Run " + std::string(1, static_cast<char>('A' + o.run)), true});
  for (const auto& s : series) legend_item(IM_COL32(210, 210, 210, 255), s.label.c_str(), false, s.dashed);
  if (td->others.empty() && runs_.size() > 1) ImGui::TextDisabled("(no match in the other runs)");
  if (runs_.size() <= 1) ImGui::TextDisabled("open more runs to overlay them");
  ImGui::NewLine();

  double lo = 1e300, hi = -1e300;
  for (const auto& s : series)
    for (int t = 0; t < kNumTargets; ++t)
      if (drift_fmt_[t])
        for (double v : s.d->sqnr_db[static_cast<size_t>(t)])
          if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (lo > hi) lo = 0, hi = 100;
  lo = std::floor(lo / 10) * 10 - 5;
  hi = std::ceil(hi / 10) * 10 + 5;
  const float bars_h = 64.0f;
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  double clicked = -1;
  const Plot pl = begin_plot("##drift", ImVec2(avail.x, avail.y - bars_h), &xview_, lo, hi, YFmt::Db, "dB", &clicked);
  for (const auto& s : series) {
    for (int t = 0; t < kNumTargets; ++t) {
      if (!drift_fmt_[t]) continue;
      std::vector<double> x, y;
      const auto& v = s.d->sqnr_db[static_cast<size_t>(t)];
      for (size_t i = 0; i < v.size(); ++i) {
        if (std::isnan(v[i])) continue;  // no signal at that step: a gap, not a value
        x.push_back(static_cast<double>(s.d->steps[i]));
        y.push_back(std::isinf(v[i]) ? hi : v[i]);  // exact cast: pinned to the top
      }
      plot_series(pl, x, y, col32(format_color(kTargets[t]), s.dashed ? 0.75f : 1.0f), s.dashed ? 1.2f : 1.8f,
                  s.dashed);
    }
  }
  vline(pl, static_cast<double>(cur_step()), kCurStep, 1.5f);
  end_plot(pl);
  if (pl.hovered && pl.r.Contains(pl.mouse)) {
    std::string tip;
    for (const auto& s : series) {
      const int64_t i = nearest(s.d->steps, pl.x_at(pl.mouse.x));
      if (i < 0) continue;
      tip += s.label + ", step " + std::to_string(s.d->steps[static_cast<size_t>(i)]) + ":";
      for (int t = 0; t < kNumTargets; ++t) {
        const double v = s.d->sqnr_db[static_cast<size_t>(t)][static_cast<size_t>(i)];
        tip += std::string("  ") + spec(kTargets[t]).name + " " +
               (std::isinf(v) ? "exact" : std::isnan(v) ? "-" : fmt_g(v, 5) + " dB");
      }
      tip += "\n";
    }
    if (!tip.empty()) ImGui::SetTooltip("%s", tip.c_str());
  }
  if (clicked >= 0) {
    const int64_t i = nearest(primary()->timeline_steps, clicked);
    if (i >= 0) set_step_index(i);
  }
  // Side-by-side bars for the current step: one group per format, one bar per run.
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 o = ImGui::GetCursorScreenPos();
  const float fh = ImGui::GetFontSize();
  dl->AddText(ImVec2(o.x, o.y + 2), IM_COL32(200, 204, 212, 255),
              ("step " + std::to_string(cur_step())).c_str());
  const float gx = o.x + 80, gw = (avail.x - 90) / kNumTargets;
  const float base = o.y + bars_h - fh - 4, top = o.y + 4;
  const double bmax = std::max(1.0, hi);
  for (int t = 0; t < kNumTargets; ++t) {
    const float x0 = gx + gw * static_cast<float>(t);
    dl->AddText(ImVec2(x0, base + 1), col32(format_color(kTargets[t])), spec(kTargets[t]).name);
    const float bw = std::min(26.0f, (gw - 20) / static_cast<float>(series.size()));
    for (size_t k = 0; k < series.size(); ++k) {
      const auto& d = *series[k].d;
      const auto it = std::lower_bound(d.steps.begin(), d.steps.end(), cur_step());
      if (it == d.steps.end() || *it != cur_step()) continue;
      const double v = d.sqnr_db[static_cast<size_t>(t)][static_cast<size_t>(it - d.steps.begin())];
      if (std::isnan(v)) continue;
      const double vv = std::isinf(v) ? bmax : std::clamp(v, 0.0, bmax);
      const float bx = x0 + 44 + bw * static_cast<float>(k);
      const float by = base - static_cast<float>(vv / bmax) * (base - top);
      dl->AddRectFilled(ImVec2(bx, by), ImVec2(bx + bw - 3, base), col32(format_color(kTargets[t]), series[k].dashed ? 0.55f : 1.0f));
      if (ImGui::IsMouseHoveringRect(ImVec2(bx, top), ImVec2(bx + bw - 3, base)))
        ImGui::SetTooltip("%s, %s at step %llu: %s", series[k].label.c_str(), spec(kTargets[t]).name,
                          static_cast<unsigned long long>(cur_step()),
                          std::isinf(v) ? "exact" : (fmt_g(v, 5) + " dB").c_str());
    }
  }
  ImGui::Dummy(ImVec2(avail.x, bars_h));
  ImGui::EndChild();
  region("drift");
}

// ---- master weights ----------------------------------------------------------------------------

void App::weights_panel(ImVec2 size) {
  const Run* p = primary();
  ImGui::BeginChild("weights", size, true, ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
  ImGui::TextUnformatted("Master weights");
  const auto& ws = p->analysis.weights;
  if (ws.empty()) {
    ImGui::TextDisabled("No watched weights in this trace. Register them with fpscope.watch(name, tensor)");
    ImGui::TextDisabled("to see how much of each update BF16/FP16 master copies would lose.");
    ImGui::EndChild();
    region("weights");
    return;
  }
  weight_sel_ = std::clamp(weight_sel_, 0, static_cast<int>(ws.size()) - 1);
  const auto& w = ws[static_cast<size_t>(weight_sel_)];
  ImGui::SameLine();
  ImGui::SetNextItemWidth(160);
  if (ImGui::BeginCombo("##weight", w.name.c_str())) {
    for (size_t i = 0; i < ws.size(); ++i)
      if (ImGui::Selectable(ws[i].name.c_str(), static_cast<int>(i) == weight_sel_)) weight_sel_ = static_cast<int>(i);
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  ImGui::Text("stagnant: ");
  ImGui::SameLine(0, 0);
  ImGui::TextColored(v4(format_color(Format::BF16)), "bf16 %s", pct(w.bf16_stagnant).c_str());
  ImGui::SameLine();
  ImGui::TextColored(v4(format_color(Format::FP16)), "fp16 %s", pct(w.fp16_stagnant).c_str());
  if (w.not_fp32) {
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "master weights are %s, not fp32!", spec(w.master_dtype).name);
  }
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float half = std::floor(avail.x * 0.5f);
  // Left: stagnant fraction per update over steps.
  std::vector<double> x, yb, yf;
  for (const auto& pt : w.series) {
    x.push_back(static_cast<double>(pt.step));
    yb.push_back(pt.bf16_stagnant);
    yf.push_back(pt.fp16_stagnant);
  }
  double clicked = -1;
  const Plot pl = begin_plot("##stag", ImVec2(half - 4, avail.y), &xview_, 0.0, 1.0, YFmt::Pct, "stagnant", &clicked, 48.0f);
  plot_series(pl, x, yb, col32(format_color(Format::BF16)), 1.8f);
  plot_series(pl, x, yf, col32(format_color(Format::FP16)), 1.8f);
  vline(pl, static_cast<double>(cur_step()), kCurStep, 1.5f);
  end_plot(pl);
  if (pl.hovered && pl.r.Contains(pl.mouse) && !w.series.empty()) {
    std::vector<uint64_t> steps;
    for (const auto& pt : w.series) steps.push_back(pt.step);
    const int64_t i = nearest(steps, pl.x_at(pl.mouse.x));
    const auto& pt = w.series[static_cast<size_t>(i)];
    ImGui::SetTooltip("update at step %llu (%llu elements changed)\nbf16: %s stagnant, %s of the update mass lost\n"
                      "fp16: %s stagnant, %s lost",
                      static_cast<unsigned long long>(pt.step), static_cast<unsigned long long>(pt.changed),
                      pct(pt.bf16_stagnant).c_str(), pct(pt.bf16_lost_mass).c_str(), pct(pt.fp16_stagnant).c_str(),
                      pct(pt.fp16_lost_mass).c_str());
  }
  if (clicked >= 0) {
    const int64_t i = nearest(p->timeline_steps, clicked);
    if (i >= 0) set_step_index(i);
  }
  // Right: histogram of floor(log2(|update| / |weight|)) with each format's half-ulp zone: an
  // update below 2^-(m+2) of its weight (m mantissa bits) always rounds away; between 2^-(m+2)
  // and 2^-(m+1) it depends on the weight's mantissa.
  ImGui::SameLine(0, 8);
  int blo = 0, bhi = 0;
  uint64_t cmax = 1, total = 0;
  if (!w.ratio_hist.empty()) {
    blo = w.ratio_hist.front().first;
    bhi = w.ratio_hist.back().first;
  }
  for (const auto& [b, c] : w.ratio_hist) cmax = std::max(cmax, c), total += c;
  blo = std::min(blo, -(spec(Format::FP16).man_bits + 3));
  bhi = std::max(bhi, -(spec(Format::BF16).man_bits));
  ratio_view_.set_bounds(blo - 1, bhi + 2);
  if (!ratio_view_init_ || ratio_view_.x0 < ratio_view_.lo - 100) {
    ratio_view_.reset();
    ratio_view_init_ = true;
  }
  const Plot ph = begin_plot("##ratio", ImVec2(0, avail.y), &ratio_view_, 0.0, 1.05, YFmt::Pct, "log2 |dw|/|w|", nullptr, 48.0f);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  for (Format f : {Format::BF16, Format::FP16}) {
    const int m = spec(f).man_bits;
    const ImU32 c = col32(format_color(f));
    dl->AddRectFilled(ImVec2(ph.px(-(m + 2)), ph.r.Min.y), ImVec2(ph.px(-(m + 1)), ph.r.Max.y), col32(format_color(f), 0.14f));
    vline(ph, -(m + 2), c, 2.0f);
    char lab[48];
    std::snprintf(lab, sizeof lab, "%s half-ulp", spec(f).name);
    dl->AddText(ImVec2(ph.px(-(m + 2)) + 3, ph.r.Min.y + 2 + (f == Format::FP16 ? ImGui::GetFontSize() : 0.0f)), c, lab);
  }
  for (const auto& [b, c] : w.ratio_hist) {
    const double frac = total ? static_cast<double>(c) / static_cast<double>(total) : 0;
    dl->AddRectFilled(ImVec2(ph.px(b) + 1, ph.py(frac)), ImVec2(ph.px(b + 1) - 1, ph.py(0)), IM_COL32(150, 170, 220, 230));
  }
  end_plot(ph);
  if (ph.hovered && ph.r.Contains(ph.mouse)) {
    const int b = static_cast<int>(std::floor(ph.x_at(ph.mouse.x)));
    uint64_t c = 0;
    for (const auto& [bb, cc] : w.ratio_hist)
      if (bb == b) c = cc;
    ImGui::SetTooltip("|update| / |weight| in [2^%d, 2^%d): %llu updates (%s)\nbelow the bf16 line: always lost in a bf16 "
                      "master copy (%s of all updates)",
                      b, b + 1, static_cast<unsigned long long>(c),
                      pct(total ? static_cast<double>(c) / static_cast<double>(total) : 0).c_str(),
                      pct(w.below_bf16_half_ulp).c_str());
  }
  ImGui::EndChild();
  region("weights");
}

}  // namespace fpscope::gui
