// Step-indexed plots: the replay timeline with the loss-scale track, the exponent heatmap with
// format bands and the what-if scale, format drift across runs, master-weight loss.
// Size: ~850 lines, four plot panels that share the step axis, hover and selection helpers; the
// next panel added moves each into its own file (panels_timeline.cpp, panels_heatmap.cpp, ...).
#include <GL/gl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "app.h"
#include "fpscope/gui/layout.h"

namespace fpscope::gui {

namespace {

constexpr ImU32 kCurStep = IM_COL32(255, 255, 255, 200);
constexpr ImU32 kSkipped = IM_COL32(255, 70, 70, 255);
constexpr ImU32 kNonFinite = IM_COL32(255, 40, 40, 255);
constexpr ImU32 kAmax = IM_COL32(255, 255, 255, 230);
constexpr ImU32 kLossScale = IM_COL32(120, 200, 255, 255);
constexpr ImU32 kLabel = IM_COL32(200, 204, 212, 255);
constexpr ImU32 kDim = IM_COL32(150, 156, 168, 255);

ImVec4 v4(Rgb c) {
  return ImGui::ColorConvertU32ToFloat4(col32(c));
}

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

// "65504", "448", "3.39e+38", "2^-14": how a format threshold is written on the heatmap.
std::string threshold_text(double v) {
  int e = 0;
  if (v > 0 && std::frexp(v, &e) == 0.5) {
    char b[32];
    std::snprintf(b, sizeof b, "2^%d", e - 1);
    return b;
  }
  return fmt_g(v, 3);
}

// Marks, one per pixel column, for the steps of `steps` (ascending) where flag(i) holds: the
// min/max rule for events, so one flagged step among thousands stays visible and costs one line.
template <class Flag>
void event_ticks(const Plot& pl, const std::vector<uint64_t>& steps, Flag flag, float y0, float y1,
                 ImU32 col) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const int w = pl.columns();
  int last = -1;
  auto it = std::lower_bound(steps.begin(), steps.end(),
                             static_cast<uint64_t>(std::max(0.0, std::floor(pl.x0))));
  for (; it != steps.end() && static_cast<double>(*it) <= pl.x1; ++it) {
    const auto i = static_cast<size_t>(it - steps.begin());
    if (!flag(i)) continue;
    const int c =
        std::clamp(static_cast<int>(pl.px(static_cast<double>(*it)) - pl.r.Min.x), 0, w - 1);
    if (c == last) continue;
    last = c;
    const float xx = pl.r.Min.x + static_cast<float>(c) + 0.5f;
    dl->AddLine(ImVec2(xx, y0), ImVec2(xx, y1), col, 2.0f);
  }
}

}  // namespace

// ---- timeline ----------------------------------------------------------------------------------

void App::timeline_panel(ImVec2 size) {
  const Run* p = primary();
  ImGui::BeginChild("timeline", size, true,
                    ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
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
  ImGui::SliderFloat("##speed", &play_speed_, 1.0f, 500.0f, "%.0f steps/s",
                     ImGuiSliderFlags_Logarithmic);
  ImGui::SameLine();
  int idx = static_cast<int>(step_index_);
  char label[64];
  std::snprintf(label, sizeof label, "step %llu", static_cast<unsigned long long>(cur_step()));
  ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x - 330);
  if (ImGui::SliderInt("##scrub", &idx, 0, static_cast<int>(std::max<int64_t>(0, n - 1)), label))
    set_step_index(idx);
  ImGui::SameLine();
  const auto& la = p->analysis.loss_scale;
  const bool has_ls = !la.series.empty();
  const trace::LossScaleRecord* rec = nullptr;
  {
    const auto it =
        std::lower_bound(la.series.begin(), la.series.end(), cur_step(),
                         [](const trace::LossScaleRecord& r, uint64_t s) { return r.step < s; });
    if (it != la.series.end() && it->step == cur_step()) rec = &*it;
  }
  if (rec) {
    ImGui::Text("loss scale %.6g", rec->scale);
    if (rec->found_inf) {
      ImGui::SameLine();
      ImGui::TextColored(ImVec4(1, 0.35f, 0.35f, 1), "SKIPPED (Inf/NaN grads)");
    }
  } else if (has_ls) {
    ImGui::TextDisabled("no loss-scale record at this step");
  } else {
    ImGui::NewLine();  // the legend line below says that the trace has none
  }

  // Legend: what every mark on the track means.
  const TensorData* td = tdata_.current() ? tdata_.value().get() : nullptr;
  const std::string sel_id = td ? p->model->tensor(td->tensor).id : std::string("the selection");
  if (has_ls) {
    legend_item(kLossScale, "loss scale", Swatch::Line);
    legend_item(kSkipped, "skipped step (Inf/NaN grads)", Swatch::TriangleDown);
  }
  legend_item(col32(format_color(Format::FP16)), ("fp16 overflow in " + sel_id).c_str(),
              Swatch::Tick);
  legend_item(kNonFinite, ("NaN/Inf in " + sel_id).c_str(), Swatch::Tick);
  legend_item(kCurStep, "current step", Swatch::Tick);
  if (!has_ls) {
    ImGui::TextDisabled(
        "|  no loss-scale records in this trace (fpscope.loss_scale() or the AMP scaler kernel "
        "record them)");
    fact("timeline_message", "no loss-scale records in this trace");
  } else {
    ImGui::NewLine();
  }

  // The track: log2(scale) as stairs with the skipped steps; without loss-scale records, a thin
  // strip with the selected tensor's events only.
  if (ls_cache_for_ != p) {
    ls_x_.clear();
    ls_y_.clear();
    for (const auto& r : la.series) {
      ls_x_.push_back(static_cast<double>(r.step));
      ls_y_.push_back(r.scale > 0 ? std::log2(r.scale) : -std::numeric_limits<double>::infinity());
    }
    ls_lo_ = 0;
    ls_hi_ = 1;
    bool any = false;
    for (double v : ls_y_)
      if (std::isfinite(v)) {
        ls_lo_ = any ? std::min(ls_lo_, v) : v;
        ls_hi_ = any ? std::max(ls_hi_, v) : v;
        any = true;
      }
    if (any) ls_lo_ -= 1, ls_hi_ += 1;
    ls_cache_for_ = p;
  }
  double clicked = -1;
  PlotOpts po;
  po.clicked_x = &clicked;
  po.y_ticks = has_ls;
  po.x_label = "step";
  const Plot pl = begin_plot("##lstrack", ImVec2(0, 0), &xview_, ls_lo_, ls_hi_, YFmt::Pow2, po);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  // Where the selected tensor went wrong: FP16 overflow (its format colour, bottom) and NaN/Inf
  // (red, above it); one mark per pixel column.
  if (td) {
    const auto& d = td->drift;
    const auto& st = td->steps;
    const auto& ovf = d.overflow_frac[static_cast<size_t>(target_index(Format::FP16))];
    const float h = std::min(8.0f, pl.r.GetHeight() * 0.5f);
    event_ticks(
        pl, d.steps, [&](size_t i) { return ovf[i] > 0; }, pl.r.Max.y - h, pl.r.Max.y,
        col32(format_color(Format::FP16)));
    event_ticks(
        pl, st.steps, [&](size_t i) { return st.nonfinite[i] > 0; }, pl.r.Max.y - 2 * h,
        pl.r.Max.y - h, kNonFinite);
  }
  if (has_ls) plot_series(pl, ls_x_, ls_y_, kLossScale, {2.0f, false, true});
  // Skipped steps: a triangle per pixel column that holds one; the full-height line too while
  // they are few enough to tell apart (else the track would turn red).
  {
    std::vector<float> xs;
    int last = -1;
    for (const auto& s : la.skipped) {
      const double sx = static_cast<double>(s.step);
      if (sx < pl.x0 || sx > pl.x1) continue;
      const int c = static_cast<int>(pl.px(sx) - pl.r.Min.x);
      if (c == last) continue;
      last = c;
      xs.push_back(pl.r.Min.x + static_cast<float>(c) + 0.5f);
    }
    const bool lines = xs.size() * 8 < static_cast<size_t>(pl.columns());
    for (float xx : xs) {
      if (lines)
        dl->AddRectFilled(ImVec2(xx - 0.5f, pl.r.Min.y), ImVec2(xx + 0.5f, pl.r.Max.y),
                          IM_COL32(255, 70, 70, 150));
      triangle(dl, ImVec2(xx, pl.r.Min.y + 8), false, 5.0f, kSkipped);
    }
  }
  if (la.collapsed && la.collapse_step >= 0) {
    const float xx = pl.px(static_cast<double>(la.collapse_step));
    dl->AddText(ImVec2(xx + 3, pl.r.Min.y + 2), kSkipped, "collapse");
  }
  vline(pl, static_cast<double>(cur_step()), kCurStep, 2.0f);
  end_plot(pl);
  regions_["timeline_plot"] = ImVec4(pl.r.Min.x, pl.r.Min.y, pl.r.GetWidth(), pl.r.GetHeight());
  if (pl.hovered && pl.r.Contains(pl.mouse)) {
    const int64_t i = nearest(ts, pl.x_at(pl.mouse.x));
    if (i >= 0) {
      const uint64_t s = ts[static_cast<size_t>(i)];
      std::string tip = "step " + std::to_string(s);
      const auto it =
          std::lower_bound(la.series.begin(), la.series.end(), s,
                           [](const trace::LossScaleRecord& r, uint64_t v) { return r.step < v; });
      if (it != la.series.end() && it->step == s)
        tip += "\nloss scale " + fmt_g(it->scale, 8) +
               (it->found_inf ? "  -> SKIPPED, scale backed off" : "");
      for (const auto& k : la.skipped)
        if (k.step == s && k.offender_tensor >= 0)
          tip += "\nfirst offender: " + k.offender_id + " (" + k.reason + ", seq " +
                 std::to_string(k.offender_seq) + ")";
      if (td) {
        const int64_t di = td->steps.index_of(s);
        if (di >= 0) {
          const auto& d = td->drift;
          const auto j = std::lower_bound(d.steps.begin(), d.steps.end(), s) - d.steps.begin();
          tip += "\n" + sel_id + ": amax " + fmt_g(td->steps.amax[static_cast<size_t>(di)], 5);
          if (static_cast<size_t>(j) < d.steps.size() && d.steps[static_cast<size_t>(j)] == s)
            tip += ", fp16 overflow " + pct(d.overflow_frac[static_cast<size_t>(
                                            target_index(Format::FP16))][static_cast<size_t>(j)]);
          if (td->steps.nonfinite[static_cast<size_t>(di)])
            tip += ", " + std::to_string(td->steps.nonfinite[static_cast<size_t>(di)]) + " NaN/Inf";
        }
      }
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
  ImGui::BeginChild("heatmap", size, true,
                    ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
  const TensorData* td = tdata_.current() ? tdata_.value().get() : nullptr;
  if (td) {
    const auto& info = primary()->model->tensor(td->tensor);
    ImGui::Text("Exponent histogram of %s", info.id.c_str());
    if (!info.name.empty() && info.name != info.id) {
      ImGui::SameLine();
      ImGui::TextDisabled("%s", info.name.c_str());
    }
  } else {
    ImGui::TextUnformatted("Exponent histogram");
  }
  ImGui::SameLine(0, 18);
  for (int t = 0; t < kNumTargets; ++t) {
    ImGui::PushID(t);
    format_toggle(kTargets[t], &show_fmt_[t]);
    ImGui::PopID();
    ImGui::SameLine();
  }
  ImGui::Checkbox("amax", &show_amax_);
  const char* why = nullptr;
  if (no_data(&why)) {
    ImGui::TextDisabled("%s", why);
    fact("heatmap_message", why);
    ImGui::EndChild();
    region("heatmap");
    return;
  }
  const TensorSteps& st = td->steps;
  // Legend: line styles, then the colour scale as a horizontal bar.
  {
    const ImU32 g = IM_COL32(210, 210, 210, 255);
    legend_item(g, "max finite", Swatch::Line);
    legend_item(g, "min normal", Swatch::Dashed);
    legend_item(IM_COL32(210, 210, 210, 70), "subnormal range", Swatch::Band);
    legend_item(kAmax, "amax", Swatch::Line);
    legend_item(kNonFinite, "NaN/Inf", Swatch::TriangleDown);
    ImGui::TextDisabled("fraction of elements");
    ImGui::SameLine();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImVec2 c = ImGui::GetCursorScreenPos();
    const float lh = ImGui::GetTextLineHeight();
    const float tw = ImGui::CalcTextSize("1e-6").x;
    dl->AddText(ImVec2(c.x, c.y), kLabel, "1e-6");
    const float bx0 = c.x + tw + 4, bx1 = bx0 + 110;
    const int nseg = 44;
    for (int k = 0; k < nseg; ++k) {
      const float a = bx0 + (bx1 - bx0) * static_cast<float>(k) / nseg;
      const float b = bx0 + (bx1 - bx0) * static_cast<float>(k + 1) / nseg;
      dl->AddRectFilled(ImVec2(a, c.y + 3), ImVec2(b + 0.5f, c.y + lh - 3),
                        col32(heat_color((static_cast<float>(k) + 0.5f) / nseg)));
    }
    dl->AddText(ImVec2(bx1 + 4, c.y), kLabel, "1");
    ImGui::Dummy(ImVec2(bx1 + 4 + ImGui::CalcTextSize("1").x - c.x, lh));
    regions_["heat_colorbar"] = ImVec4(bx0, c.y + 3, bx1 - bx0, lh - 6);
  }

  // y range (octaves): the data +-2, and at least FP16's whole range, unless zoomed.
  if (heat_y1_ <= heat_y0_) {
    double lo = -26, hi = 17;
    if (st.bin_hi >= st.bin_lo) {
      lo = std::min(lo, std::floor(bin_coord(st.bin_lo)) - 2);
      hi = std::max(hi, std::ceil(bin_coord(st.bin_hi + 1)) + 2);
    }
    heat_y0_ = std::max(kOctaveMin, lo);
    heat_y1_ = std::min(128.0, hi);
  }
  const WhatIfSeries* ws =
      (whatif_.current() && whatif_.value()->config == wcfg_) ? whatif_.value().get() : nullptr;
  const size_t cur_i = static_cast<size_t>(std::max<int64_t>(0, st.index_at_or_before(cur_step())));

  // The labels of the right margin: each format's max finite and min normal, and amax at the
  // current step. The what-if format is drawn at the what-if scale (x overflows when |x| * s >
  // max, i.e. above max / s).
  struct Label {
    double y;  // octave coordinate
    std::string text;
    ImU32 col;
  };
  std::vector<Label> labels;
  const float fh = ImGui::GetFontSize();
  for (int t = 0; t < kNumTargets; ++t) {
    if (!show_fmt_[t]) continue;
    const Format f = kTargets[t];
    const bool scaled = f == wcfg_.format;
    double s = 1.0;
    std::string suffix;
    if (scaled && wcfg_.mode == ScaleMode::Delayed) {
      if (!ws || ws->scale.empty()) continue;
      s = ws->scale[std::min(cur_i, ws->scale.size() - 1)];
      suffix = " /s";
    } else if (scaled && wcfg_.pow2 != 0) {
      s = pow2f(clamp_scale_exponent(wcfg_.pow2));
      suffix = " /2^" + std::to_string(wcfg_.pow2);
    }
    const ImU32 c = col32(format_color(f));
    labels.push_back({octave_coord(max_finite(f) / s),
                      std::string(spec(f).name) + " max " + threshold_text(max_finite(f)) + suffix,
                      c});
    labels.push_back(
        {octave_coord(min_normal(f) / s),
         std::string(spec(f).name) + " min normal " + threshold_text(min_normal(f)) + suffix, c});
  }
  if (show_amax_ && cur_i < st.size() && st.amax[cur_i] > 0)
    labels.push_back({octave_coord(st.amax[cur_i]), "amax " + fmt_g(st.amax[cur_i], 4), kAmax});
  float label_w = 0;
  for (const auto& l : labels) label_w = std::max(label_w, ImGui::CalcTextSize(l.text.c_str()).x);
  const float arrow_w = 14.0f;

  PlotOpts po;
  double clicked = -1;
  po.clicked_x = &clicked;
  po.y_label = "|x|  (log2 magnitude)";
  po.x_label = "step";
  po.right_margin = std::min(230.0f, label_w + arrow_w + 16.0f);
  const int row_lo =
      std::clamp(static_cast<int>(std::floor(coord_bin(heat_y0_))), 0, kHistBins - 1);
  const int row_hi =
      std::clamp(static_cast<int>(std::ceil(coord_bin(heat_y1_))) - 1, row_lo, kHistBins - 1);
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const Plot pl = begin_plot("##heat", avail, &xview_, heat_y0_, heat_y1_, YFmt::Pow2, po);
  if (pl.hovered && ImGui::GetIO().KeyCtrl && ImGui::GetIO().MouseWheel != 0.0f) {
    const double at = pl.y_at(pl.mouse.y), f = std::pow(0.85, ImGui::GetIO().MouseWheel);
    heat_y0_ = std::max(kOctaveMin, at - (at - heat_y0_) * f);
    heat_y1_ = std::min(128.0, at + (heat_y1_ - at) * f);
    if (heat_y1_ - heat_y0_ < 2) heat_y1_ = heat_y0_ + 2;
  }
  ImDrawList* dl = ImGui::GetWindowDrawList();
  // The heat raster, one texel per pixel column and histogram bin (min/max: max fraction),
  // computed off the UI thread: at most one job in flight, for the newest view; until it lands,
  // the previous raster is drawn at the step/bin range it was made for.
  const HeatKey key{tdata_.generation(), pl.x0, pl.x1, pl.columns(), row_lo, row_hi};
  if (!(key == heat_requested_) && !heat_job_.busy()) {
    heat_requested_ = key;
    auto data = tdata_.value();
    heat_job_.request([data, key] {
      return heat_image(data->steps, key.x0, key.x1, key.width, key.row_lo, key.row_hi,
                        kPlotBackground);
    });
  }
  if (heat_tex_ && heat_shown_.gen == tdata_.generation()) {
    const auto& k = heat_shown_;
    dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(heat_tex_)),
                 ImVec2(pl.px(k.x0), pl.py(bin_coord(k.row_hi + 1))),
                 ImVec2(pl.px(k.x1), pl.py(bin_coord(k.row_lo))));
  }

  // Format overlays.
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
        const bool r = ws->replayed[i] != 0;  // seed steps: no line (not replayed)
        ymax[i] = r ? octave_coord(mx / s) : std::nan("");
        ynorm[i] = r ? octave_coord(mn / s) : std::nan("");
        ysub[i] = r ? octave_coord(ms / s) : std::nan("");
      }
      plot_series(pl, st.step_x, ymax, c, {2.0f, false, true, false});
      plot_series(pl, st.step_x, ynorm, c, {1.0f, true, true, false});
      plot_series(pl, st.step_x, ysub, col32(format_color(f), 0.6f), {1.0f, true, true, false});
      continue;
    }
    const double s = scaled ? pow2f(clamp_scale_exponent(wcfg_.pow2)) : 1.0;
    const double ymax = octave_coord(mx / s), ynorm = octave_coord(mn / s),
                 ysub = octave_coord(ms / s);
    dl->AddRectFilled(ImVec2(pl.r.Min.x, pl.py(ynorm)), ImVec2(pl.r.Max.x, pl.py(ysub)), band);
    hline(pl, ymax, c, 2.0f);
    hline(pl, ynorm, c, 1.0f, true);
  }
  if (show_amax_) {
    std::vector<double> ya(st.size());
    for (size_t i = 0; i < st.size(); ++i)
      ya[i] = st.amax[i] > 0 ? octave_coord(st.amax[i]) : std::nan("");
    plot_series(pl, st.step_x, ya, kAmax, {1.5f});
  }
  // NaN/Inf in the data: red marks on the top edge, one per pixel column that holds one.
  {
    const int w = pl.columns();
    int last = -1;
    for (size_t i = 0; i < st.size(); ++i) {
      if (!st.nonfinite[i] || st.step_x[i] < pl.x0 || st.step_x[i] > pl.x1) continue;
      const int c = std::clamp(static_cast<int>(pl.px(st.step_x[i]) - pl.r.Min.x), 0, w - 1);
      if (c == last) continue;
      last = c;
      triangle(dl, ImVec2(pl.r.Min.x + static_cast<float>(c) + 0.5f, pl.r.Min.y + 9.0f), false,
               5.0f, kNonFinite);
    }
  }
  vline(pl, static_cast<double>(cur_step()), kCurStep, 1.5f);
  end_plot(pl);

  // Right-margin labels, spread so that none overlaps, each joined to its line; thresholds off
  // the visible range sit at the edge with an arrow pointing where they are.
  {
    std::vector<float> want(labels.size());
    std::vector<int> off(labels.size(), 0);
    for (size_t i = 0; i < labels.size(); ++i) {
      const double y = labels[i].y;
      off[i] = y > pl.y1 ? 1 : (y < pl.y0 ? -1 : 0);
      want[i] = off[i] > 0 ? pl.r.Min.y : (off[i] < 0 ? pl.r.Max.y : pl.py(y));
    }
    const auto pos = spread_labels(want, pl.r.Min.y + fh * 0.5f, pl.r.Max.y - fh * 0.5f, fh + 1.0f);
    const float x_arrow = pl.r.Max.x + 10.0f, x_text = pl.r.Max.x + arrow_w + 6.0f;
    for (size_t i = 0; i < labels.size(); ++i) {
      const auto& l = labels[i];
      if (off[i] == 0) {
        dl->AddLine(ImVec2(pl.r.Max.x, want[i]), ImVec2(x_arrow - 2.0f, want[i]), l.col, 1.0f);
        dl->AddLine(ImVec2(x_arrow - 2.0f, want[i]), ImVec2(x_text - 3.0f, pos[i]), l.col, 1.0f);
      } else {
        triangle(dl, ImVec2(x_arrow, off[i] > 0 ? pos[i] - 5.0f : pos[i] + 5.0f), off[i] > 0, 4.5f,
                 l.col);
      }
      dl->AddText(ImVec2(x_text, pos[i] - fh * 0.5f), l.col, l.text.c_str());
      regions_["heat_label:" + l.text] =
          ImVec4(x_text, pos[i] - fh * 0.5f, ImGui::CalcTextSize(l.text.c_str()).x, fh);
    }
  }
  if (pl.hovered && pl.r.Contains(pl.mouse)) {
    const int64_t i =
        st.index_at_or_before(static_cast<uint64_t>(std::max(0.0, pl.x_at(pl.mouse.x))));
    const int b = static_cast<int>(std::floor(coord_bin(pl.y_at(pl.mouse.y))));
    if (i >= 0 && b >= 0 && b < kHistBins) {
      const auto k = static_cast<size_t>(i);
      uint64_t cnt = 0;
      const auto bins = st.step_bins(k);
      const auto counts = st.step_counts(k);
      for (size_t j = 0; j < bins.size(); ++j)
        if (bins[j] == b) cnt = counts[j];
      const double frac =
          st.eligible[k] ? static_cast<double>(cnt) / static_cast<double>(st.eligible[k]) : 0;
      ImGui::SetTooltip(
          "step %llu\n|x| in [%.6g, %.6g)\n%llu of %llu elements (%s)\namax %.6g%s",
          static_cast<unsigned long long>(st.steps[k]), static_cast<double>(hist_bin_low(b)),
          static_cast<double>(hist_bin_high(b)), static_cast<unsigned long long>(cnt),
          static_cast<unsigned long long>(st.eligible[k]), pct(frac).c_str(),
          static_cast<double>(st.amax[k]),
          st.nonfinite[k] ? ("\nNaN/Inf elements: " + std::to_string(st.nonfinite[k])).c_str()
                          : "");
    }
  }
  if (clicked >= 0) {
    const int64_t i = nearest(primary()->timeline_steps, clicked);
    if (i >= 0) set_step_index(i);
  }
  ImGui::EndChild();
  region("heatmap");
  regions_["heatmap_plot"] = ImVec4(pl.r.Min.x, pl.r.Min.y, pl.r.GetWidth(), pl.r.GetHeight());
}

// ---- drift -------------------------------------------------------------------------------------

void App::drift_panel(ImVec2 size) {
  ImGui::BeginChild("drift", size, true,
                    ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
  const TensorData* td = tdata_.current() ? tdata_.value().get() : nullptr;
  ImGui::Text("Format drift: SQNR%s%s", td ? " of " : "",
              td ? primary()->model->tensor(td->tensor).id.c_str() : "");
  ImGui::SameLine(0, 12);
  for (int t = 0; t < kNumTargets; ++t) {
    ImGui::PushID(t + 40);
    format_toggle(kTargets[t], &drift_fmt_[t]);
    ImGui::PopID();
    ImGui::SameLine();
  }
  ImGui::NewLine();
  const char* why = nullptr;
  if (no_data(&why)) {
    ImGui::TextDisabled("%s", why);
    fact("drift_message", why);
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
  std::vector<Series> series{
      {&td->drift, "Run " + std::string(1, static_cast<char>('A' + primary_)), false}};
  for (const auto& o : td->others)
    series.push_back({&o.drift, "Run " + std::string(1, static_cast<char>('A' + o.run)), true});
  for (const auto& s : series)
    legend_item(IM_COL32(210, 210, 210, 255), s.label.c_str(),
                s.dashed ? Swatch::Dashed : Swatch::Line);
  if (td->others.empty() && runs_.size() > 1) {
    ImGui::TextDisabled("(no match in the other runs)");
    ImGui::SameLine();
  }
  ImGui::TextDisabled("higher is better; gaps: the format overflows (SQNR n/a)");

  // What is plotted: shown_sqnr per step (n/a where the format overflows at that step), cached
  // per tensor data and format selection.
  if (drift_cache_gen_ != tdata_.generation()) {
    drift_x_.assign(series.size() * kNumTargets, {});
    drift_y_.assign(series.size() * kNumTargets, {});
    for (size_t k = 0; k < series.size(); ++k) {
      const auto& d = *series[k].d;
      for (int t = 0; t < kNumTargets; ++t) {
        auto& x = drift_x_[k * kNumTargets + static_cast<size_t>(t)];
        auto& y = drift_y_[k * kNumTargets + static_cast<size_t>(t)];
        const auto& v = d.sqnr_db[static_cast<size_t>(t)];
        const auto& o = d.overflow_frac[static_cast<size_t>(t)];
        for (size_t i = 0; i < v.size(); ++i) {
          x.push_back(static_cast<double>(d.steps[i]));
          y.push_back(shown_sqnr(v[i], o[i]).plot_value());  // NaN: a gap, never a high point
        }
      }
    }
    drift_cache_gen_ = tdata_.generation();
  }
  double lo = 1e300, hi = -1e300;
  for (size_t k = 0; k < series.size(); ++k)
    for (int t = 0; t < kNumTargets; ++t)
      if (drift_fmt_[t])
        for (double v : drift_y_[k * kNumTargets + static_cast<size_t>(t)])
          if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (lo > hi) lo = 0, hi = 100;
  lo = std::floor(lo / 10) * 10 - 5;
  hi = std::ceil(hi / 10) * 10 + 5;
  const float fh = ImGui::GetFontSize();
  const float bars_h = std::floor(fh * 3.7f);
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  double clicked = -1;
  PlotOpts po;
  po.clicked_x = &clicked;
  po.left_margin = 52.0f;  // the ticks say "dB"; the legend line says higher is better
  po.x_label = "step";
  const Plot pl = begin_plot("##drift", ImVec2(avail.x, std::max(60.0f, avail.y - bars_h)), &xview_,
                             lo, hi, YFmt::Db, po);
  for (size_t k = 0; k < series.size(); ++k) {
    for (int t = 0; t < kNumTargets; ++t) {
      if (!drift_fmt_[t]) continue;
      std::vector<double> y = drift_y_[k * kNumTargets + static_cast<size_t>(t)];
      for (double& v : y)
        if (std::isinf(v)) v = hi;  // exact cast: pinned to the top
      plot_series(
          pl, drift_x_[k * kNumTargets + static_cast<size_t>(t)], y,
          col32(format_color(kTargets[t]), series[k].dashed ? 0.75f : 1.0f),
          {series[k].dashed ? 1.2f : 1.8f, series[k].dashed, false, /*mark_nonfinite=*/false});
    }
  }
  vline(pl, static_cast<double>(cur_step()), kCurStep, 1.5f);
  end_plot(pl);
  regions_["drift_plot"] = ImVec4(pl.r.Min.x, pl.r.Min.y, pl.r.GetWidth(), pl.r.GetHeight());
  if (pl.hovered && pl.r.Contains(pl.mouse)) {
    std::string tip;
    for (const auto& s : series) {
      const int64_t i = nearest(s.d->steps, pl.x_at(pl.mouse.x));
      if (i < 0) continue;
      tip += s.label + ", step " + std::to_string(s.d->steps[static_cast<size_t>(i)]) + ":";
      for (int t = 0; t < kNumTargets; ++t) {
        const auto q =
            shown_sqnr(s.d->sqnr_db[static_cast<size_t>(t)][static_cast<size_t>(i)],
                       s.d->overflow_frac[static_cast<size_t>(t)][static_cast<size_t>(i)]);
        tip += std::string("  ") + spec(kTargets[t]).name + " " + sqnr_text(q) +
               (q.kind == SqnrKind::Value ? " dB" : "");
      }
      tip += "\n";
    }
    if (tip.find("n/a") != std::string::npos) tip += std::string("n/a: ") + kSqnrUndefinedHelp;
    if (!tip.empty()) ImGui::SetTooltip("%s", tip.c_str());
  }
  if (clicked >= 0) {
    const int64_t i = nearest(primary()->timeline_steps, clicked);
    if (i >= 0) set_step_index(i);
  }
  // Side-by-side bars for the current step: one group per format, one bar per run, each with
  // its value; n/a where the format overflows at this step.
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 o = ImGui::GetCursorScreenPos();
  dl->AddText(ImVec2(o.x, o.y + 2), kLabel, ("step " + std::to_string(cur_step())).c_str());
  dl->AddText(ImVec2(o.x, o.y + 2 + fh), kDim, "SQNR dB");
  const float gx = o.x + 84, gw = (avail.x - 90) / kNumTargets;
  const float base = o.y + bars_h - fh - 4, top = o.y + fh + 4;
  const double bmax = std::max(1.0, hi);
  dl->AddLine(ImVec2(gx - 4, base), ImVec2(o.x + avail.x - 4, base), IM_COL32(255, 255, 255, 60));
  for (int t = 0; t < kNumTargets; ++t) {
    const float x0 = gx + gw * static_cast<float>(t);
    const ImU32 fc = col32(format_color(kTargets[t]));
    dl->AddText(ImVec2(x0, base + 2), fc, spec(kTargets[t]).name);
    const float bw = std::min(34.0f, (gw - 12) / static_cast<float>(series.size()));
    for (size_t k = 0; k < series.size(); ++k) {
      const auto& d = *series[k].d;
      const auto it = std::lower_bound(d.steps.begin(), d.steps.end(), cur_step());
      if (it == d.steps.end() || *it != cur_step()) continue;
      const auto i = static_cast<size_t>(it - d.steps.begin());
      const auto q = shown_sqnr(d.sqnr_db[static_cast<size_t>(t)][i],
                                d.overflow_frac[static_cast<size_t>(t)][i]);
      const float bx = x0 + bw * static_cast<float>(k);
      const std::string txt = sqnr_text(q);
      float by = base;
      if (q.kind == SqnrKind::Value || q.kind == SqnrKind::Exact) {
        const double vv = q.kind == SqnrKind::Exact ? bmax : std::clamp(q.db, 0.0, bmax);
        by = base - static_cast<float>(vv / bmax) * (base - top);
        dl->AddRectFilled(ImVec2(bx, by), ImVec2(bx + bw - 4, base),
                          col32(format_color(kTargets[t]), series[k].dashed ? 0.55f : 1.0f));
        if (k == 0)
          regions_[std::string("drift_bar:") + spec(kTargets[t]).name] =
              ImVec4(bx, by, bw - 4, base - by);
      }
      const ImVec2 ts = ImGui::CalcTextSize(txt.c_str());
      const bool undef = q.kind == SqnrKind::Undefined || q.kind == SqnrKind::NoSignal;
      dl->AddText(ImVec2(bx + (bw - 4 - ts.x) * 0.5f, by - ts.y - 1), undef ? kDim : kLabel,
                  txt.c_str());
      if (ImGui::IsMouseHoveringRect(ImVec2(bx, top - fh), ImVec2(bx + bw - 4, base)))
        ImGui::SetTooltip(
            "%s, %s at step %llu: %s%s", series[k].label.c_str(), spec(kTargets[t]).name,
            static_cast<unsigned long long>(cur_step()), txt.c_str(),
            q.kind == SqnrKind::Undefined ? (std::string(" (") + kSqnrUndefinedHelp + ")").c_str()
            : q.kind == SqnrKind::Value   ? " dB"
                                          : "");
    }
  }
  ImGui::Dummy(ImVec2(avail.x, bars_h));
  ImGui::EndChild();
  region("drift");
}

// ---- master weights ----------------------------------------------------------------------------

void App::weights_panel(ImVec2 size) {
  const Run* p = primary();
  ImGui::BeginChild("weights", size, true,
                    ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
  ImGui::TextUnformatted("Master weights");
  const auto& ws = p->analysis.weights;
  if (ws.empty()) {
    ImGui::SameLine();
    ImGui::TextDisabled(
        "none watched in this trace: fpscope.watch(name, tensor) shows how much of each update");
    ImGui::TextDisabled("BF16/FP16 master copies would lose (stagnant updates, lost update mass).");
    fact("weights_message", "none watched in this trace");
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
      if (ImGui::Selectable(ws[i].name.c_str(), static_cast<int>(i) == weight_sel_))
        weight_sel_ = static_cast<int>(i);
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  ImGui::Text("stagnant over the run: ");
  ImGui::SameLine(0, 0);
  ImGui::TextColored(v4(format_color(Format::BF16)), "bf16 %s", pct(w.bf16_stagnant).c_str());
  ImGui::SameLine();
  ImGui::TextColored(v4(format_color(Format::FP16)), "fp16 %s", pct(w.fp16_stagnant).c_str());
  if (w.not_fp32) {
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "master weights are %s, not fp32!",
                       spec(w.master_dtype).name);
  }
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float half = std::floor(avail.x * 0.5f);
  // Left: stagnant fraction per update over steps.
  if (w_cache_for_ != &w || w_cache_run_ != p) {
    w_x_.clear();
    w_yb_.clear();
    w_yf_.clear();
    w_steps_.clear();
    for (const auto& pt : w.series) {
      w_x_.push_back(static_cast<double>(pt.step));
      w_steps_.push_back(pt.step);
      w_yb_.push_back(pt.bf16_stagnant);
      w_yf_.push_back(pt.fp16_stagnant);
    }
    w_cache_for_ = &w;
    w_cache_run_ = p;
  }
  double clicked = -1;
  PlotOpts po;
  po.clicked_x = &clicked;
  po.y_label = "stagnant fraction of the update";
  po.x_label = "step";
  po.left_margin = 48.0f;
  const Plot pl = begin_plot("##stag", ImVec2(half - 4, avail.y), &xview_, 0.0, 1.0, YFmt::Pct, po);
  plot_series(pl, w_x_, w_yb_, col32(format_color(Format::BF16)), {1.8f});
  plot_series(pl, w_x_, w_yf_, col32(format_color(Format::FP16)), {1.8f});
  vline(pl, static_cast<double>(cur_step()), kCurStep, 1.5f);
  end_plot(pl);
  regions_["weights_plot"] = ImVec4(pl.r.Min.x, pl.r.Min.y, pl.r.GetWidth(), pl.r.GetHeight());
  if (pl.hovered && pl.r.Contains(pl.mouse) && !w.series.empty()) {
    const int64_t i = nearest(w_steps_, pl.x_at(pl.mouse.x));
    const auto& pt = w.series[static_cast<size_t>(i)];
    ImGui::SetTooltip(
        "update at step %llu (%llu elements changed)\nbf16: %s stagnant, %s of the update mass "
        "lost\n"
        "fp16: %s stagnant, %s lost",
        static_cast<unsigned long long>(pt.step), static_cast<unsigned long long>(pt.changed),
        pct(pt.bf16_stagnant).c_str(), pct(pt.bf16_lost_mass).c_str(),
        pct(pt.fp16_stagnant).c_str(), pct(pt.fp16_lost_mass).c_str());
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
  uint64_t total = 0;
  if (!w.ratio_hist.empty()) {
    blo = w.ratio_hist.front().first;
    bhi = w.ratio_hist.back().first;
  }
  double fmax = 0.0;
  for (const auto& [b, c] : w.ratio_hist) total += c;
  for (const auto& [b, c] : w.ratio_hist)
    fmax = std::max(fmax, total ? static_cast<double>(c) / static_cast<double>(total) : 0.0);
  blo = std::min(blo, analysis::kFp16HalfUlpLog2 - 3);
  bhi = std::max(bhi, analysis::kBf16HalfUlpLog2 + 2);
  ratio_view_.set_bounds(blo - 1, bhi + 2);
  if (!ratio_view_init_ || ratio_view_.x0 < ratio_view_.lo - 100) {
    ratio_view_.reset();
    ratio_view_init_ = true;
  }
  PlotOpts ph_o;
  ph_o.y_label = "fraction of updates";
  ph_o.x_label = "log2 |dw|/|w|";
  ph_o.left_margin = 48.0f;
  const double ytop = std::min(1.0, std::max(0.05, fmax * 1.15));
  const Plot ph =
      begin_plot("##ratio", ImVec2(0, avail.y), &ratio_view_, 0.0, ytop, YFmt::Pct, ph_o);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  for (const auto& [b, c] : w.ratio_hist) {
    const double frac = total ? static_cast<double>(c) / static_cast<double>(total) : 0;
    dl->AddRectFilled(ImVec2(ph.px(b) + 1, ph.py(frac)), ImVec2(ph.px(b + 1) - 1, ph.py(0)),
                      IM_COL32(150, 170, 220, 230));
  }
  // Half-ulp lines: BF16's label right of its line, FP16's (further left) left of its line.
  for (Format f : {Format::BF16, Format::FP16}) {
    const int edge = f == Format::BF16 ? analysis::kBf16HalfUlpLog2 : analysis::kFp16HalfUlpLog2;
    const ImU32 c = col32(format_color(f));
    dl->AddRectFilled(ImVec2(ph.px(edge), ph.r.Min.y), ImVec2(ph.px(edge + 1), ph.r.Max.y),
                      col32(format_color(f), 0.14f));
    vline(ph, edge, c, 2.0f);
    char lab[48];
    std::snprintf(lab, sizeof lab, "%s half-ulp", spec(f).name);
    const float tw = ImGui::CalcTextSize(lab).x;
    const float xx = ph.px(edge);
    dl->AddText(ImVec2(f == Format::BF16 ? xx + 4 : xx - tw - 4, ph.r.Min.y + 2), c, lab);
  }
  end_plot(ph);
  if (ph.hovered && ph.r.Contains(ph.mouse)) {
    const int b = static_cast<int>(std::floor(ph.x_at(ph.mouse.x)));
    uint64_t c = 0;
    for (const auto& [bb, cc] : w.ratio_hist)
      if (bb == b) c = cc;
    ImGui::SetTooltip(
        "|update| / |weight| in [2^%d, 2^%d): %llu updates (%s)\nleft of the bf16 line: always "
        "lost in a bf16 "
        "master copy (%s of all updates)\nleft of the fp16 line: always lost in fp16 (%s)",
        b, b + 1, static_cast<unsigned long long>(c),
        pct(total ? static_cast<double>(c) / static_cast<double>(total) : 0).c_str(),
        pct(w.below_bf16_half_ulp).c_str(), pct(w.below_fp16_half_ulp).c_str());
  }
  ImGui::EndChild();
  region("weights");
}

}  // namespace fpscope::gui
