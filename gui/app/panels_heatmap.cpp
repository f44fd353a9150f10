// The exponent heatmap of the selected tensor: per-step log2 magnitude histogram, format bands,
// amax line and the what-if scale; with block statistics (format 1.3) a bracket at the current
// step for the octaves one block covers below amax, and the block-scale strip under the plot
// (panels_blocks.cpp).
#include <GL/gl.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>

#include "app.h"
#include "fpscope/gui/layout.h"
#include "panels_common.h"

namespace fpscope::gui {

using namespace panels;

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
    no_data_message(why);
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
  // Block formats: the strip under the plot (at most a third of the panel).
  const float strip_h =
      st.blocks.empty() ? 0.0f : std::min(std::floor(fh * 7.0f), std::floor(avail.y / 3.0f));
  const Plot pl = begin_plot(
      "##heat",
      ImVec2(avail.x, strip_h > 0 ? avail.y - strip_h - ImGui::GetStyle().ItemSpacing.y : avail.y),
      &xview_, heat_y0_, heat_y1_, YFmt::Pow2, po);
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
  if (!st.blocks.empty() && (block_fmt_ < 0 || !(st.blocks.mask >> block_fmt_ & 1u)))
    block_fmt_ = std::countr_zero(st.blocks.mask);  // the first measured format
  // One block of the strip's format at the current step: a bracket from amax down by the
  // element format's range (what one shared scale can hold below the block's largest |x|).
  if (!st.blocks.empty() && block_fmt_ >= 0 && cur_i < st.size() && st.amax[cur_i] > 0 &&
      st.index_of(cur_step()) >= 0 && st.blocks.measured(cur_i, block_fmt_)) {
    const double top = octave_coord(st.amax[cur_i]);
    const double bot = top - block_range_octaves(block_fmt_);
    const float bx = pl.px(static_cast<double>(cur_step())) + 7.0f;
    const ImU32 c = col32(block_format_color(block_fmt_));
    dl->AddLine(ImVec2(bx, pl.py(top)), ImVec2(bx, pl.py(bot)), c, 2.0f);
    dl->AddLine(ImVec2(bx - 4, pl.py(top)), ImVec2(bx + 4, pl.py(top)), c, 2.0f);
    dl->AddLine(ImVec2(bx - 4, pl.py(bot)), ImVec2(bx + 4, pl.py(bot)), c, 2.0f);
    dl->AddText(ImVec2(bx + 6, pl.py(bot) - fh), c, "1 block");
    regions_["block_bracket"] =
        ImVec4(bx - 4, pl.py(top), 8, std::max(1.0f, pl.py(bot) - pl.py(top)));
  }
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
  if (strip_h > 0) block_scale_strip(st, strip_h);
  ImGui::EndChild();
  region("heatmap");
  regions_["heatmap_plot"] = ImVec4(pl.r.Min.x, pl.r.Min.y, pl.r.GetWidth(), pl.r.GetHeight());
}

}  // namespace fpscope::gui
