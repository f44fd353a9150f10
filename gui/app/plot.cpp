#include "plot.h"

#include <imgui_internal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "fpscope/gui/downsample.h"

namespace fpscope::gui {

void XView::zoom(double at, double factor) {
  const double span = std::clamp((x1 - x0) * factor, 4.0, std::max(4.0, (hi - lo) * 1.05));
  const double t = (x1 > x0) ? (at - x0) / (x1 - x0) : 0.5;
  x0 = at - t * span;
  x1 = x0 + span;
  pan(0.0);
}

void XView::pan(double dx) {
  const double span = x1 - x0;
  x0 += dx;
  x1 += dx;
  const double margin = span * 0.5;
  if (x0 < lo - margin) {
    x0 = lo - margin;
    x1 = x0 + span;
  }
  if (x1 > hi + margin) {
    x1 = hi + margin;
    x0 = x1 - span;
  }
}

std::string fmt_g(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string fmt_value(double v, YFmt f) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  switch (f) {
    case YFmt::Pow2:
      if (v == std::floor(v)) {
        std::snprintf(buf, sizeof buf, "2^%d", static_cast<int>(v));
      } else {
        std::snprintf(buf, sizeof buf, "2^%.1f", v);
      }
      return buf;
    case YFmt::Db:
      std::snprintf(buf, sizeof buf, "%.0f dB", v);
      return buf;
    case YFmt::Pct:
      std::snprintf(buf, sizeof buf, "%.0f%%", v * 100.0);
      return buf;
    case YFmt::Log10Pct:
      std::snprintf(buf, sizeof buf, "%g%%", std::pow(10.0, v) * 100.0);
      return buf;
    case YFmt::Plain:
      break;
  }
  return fmt_g(v, 4);
}

namespace {

// "Nice" tick step for a span and a maximum number of ticks.
double nice_step(double span, int max_ticks, bool integer) {
  if (!(span > 0)) return 1;
  const double raw = span / std::max(1, max_ticks);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  if (integer) step = std::max(1.0, std::round(step));
  return step;
}

}  // namespace

namespace {
std::vector<ImRect>& plot_backgrounds() {
  static std::vector<ImRect> rects;  // UI thread only
  return rects;
}
}  // namespace

std::vector<ImRect> take_plot_backgrounds() {
  std::vector<ImRect> out;
  out.swap(plot_backgrounds());
  return out;
}

Plot begin_plot(const char* id, ImVec2 size, XView* view, double y0, double y1, YFmt yfmt,
                const PlotOpts& o) {
  Plot p;
  ImGuiWindow* win = ImGui::GetCurrentWindow();
  const ImVec2 pos = ImGui::GetCursorScreenPos();
  if (size.x <= 0) size.x = ImGui::GetContentRegionAvail().x;
  if (size.y <= 0) size.y = ImGui::GetContentRegionAvail().y;
  const float fh = ImGui::GetFontSize();
  const bool has_ylabel = o.y_label && *o.y_label;
  const float top_pad = has_ylabel ? fh + 3.0f : 4.0f;
  const float bottom_pad = o.x_ticks || (o.x_label && *o.x_label) ? fh + 6.0f : 4.0f;
  size.x = std::max(size.x, o.left_margin + o.right_margin + 40.0f);
  size.y = std::max(size.y, top_pad + bottom_pad + 12.0f);
  p.frame = ImRect(pos, ImVec2(pos.x + size.x, pos.y + size.y));
  p.r = ImRect(ImVec2(pos.x + o.left_margin, pos.y + top_pad),
               ImVec2(pos.x + size.x - o.right_margin, pos.y + size.y - bottom_pad));
  p.x0 = view ? view->x0 : 0.0;
  p.x1 = view ? view->x1 : 1.0;
  if (!(p.x1 > p.x0)) p.x1 = p.x0 + 1;
  p.y0 = y0;
  p.y1 = y1 > y0 ? y1 : y0 + 1;

  ImGui::InvisibleButton(id, size);
  p.hovered = ImGui::IsItemHovered();
  p.mouse = ImGui::GetIO().MousePos;
  if (view) {
    if (p.hovered && ImGui::GetIO().MouseWheel != 0.0f && !ImGui::GetIO().KeyCtrl) {
      view->zoom(p.x_at(p.mouse.x), std::pow(0.85, ImGui::GetIO().MouseWheel));
    }
    if (ImGui::IsItemActive() && ImGui::IsMouseDragging(ImGuiMouseButton_Left, 2.0f)) {
      const float dx = ImGui::GetIO().MouseDelta.x;
      view->pan(-dx / p.r.GetWidth() * (view->x1 - view->x0));
    }
    if (p.hovered && ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) view->reset();
    if (o.clicked_x && ImGui::IsItemDeactivated() && p.r.Contains(p.mouse) &&
        !ImGui::IsMouseDragPastThreshold(ImGuiMouseButton_Left, 2.0f)) {
      *o.clicked_x = p.x_at(p.mouse.x);
    }
  }

  ImDrawList* dl = win->DrawList;
  {
    ImRect bg = p.r;
    bg.ClipWithFull(ImRect(dl->GetClipRectMin(), dl->GetClipRectMax()));
    if (bg.GetWidth() > 0 && bg.GetHeight() > 0) plot_backgrounds().push_back(bg);
  }
  const ImU32 grid = IM_COL32(255, 255, 255, 22), text = IM_COL32(200, 204, 212, 255);
  const ImU32 title = IM_COL32(160, 166, 178, 255);
  if (o.y_ticks) {
    const int ny = std::max(2, static_cast<int>(p.r.GetHeight() / (fh * 1.7f)));
    const double ys = nice_step(p.y1 - p.y0, ny, yfmt == YFmt::Pow2 || yfmt == YFmt::Log10Pct);
    for (double y = std::ceil(p.y0 / ys) * ys; y <= p.y1 + 1e-9; y += ys) {
      const float yy = p.py(y);
      dl->AddLine(ImVec2(p.r.Min.x, yy), ImVec2(p.r.Max.x, yy), grid);
      const std::string s = fmt_value(std::abs(y) < 1e-12 ? 0.0 : y, yfmt);
      const ImVec2 ts = ImGui::CalcTextSize(s.c_str());
      const float ty =
          std::clamp(yy - ts.y * 0.5f, p.r.Min.y - ts.y * 0.5f, p.r.Max.y - ts.y * 0.5f);
      dl->AddText(ImVec2(p.r.Min.x - ts.x - 4.0f, ty), text, s.c_str());
    }
  }
  // x title first: the tick labels keep clear of it.
  float xlabel_left = p.r.Max.x + 1e6f;
  if (o.x_label && *o.x_label) {
    const ImVec2 ts = ImGui::CalcTextSize(o.x_label);
    xlabel_left = p.r.Max.x - ts.x;
    dl->AddText(ImVec2(xlabel_left, p.r.Max.y + 2.0f), title, o.x_label);
  }
  if (o.x_ticks) {
    const int nx = std::max(2, static_cast<int>(p.r.GetWidth() / (fh * 5.0f)));
    const double xs = nice_step(p.x1 - p.x0, nx, true);
    for (double x = std::ceil(p.x0 / xs) * xs; x <= p.x1 + 1e-9; x += xs) {
      const float xx = p.px(x);
      dl->AddLine(ImVec2(xx, p.r.Min.y), ImVec2(xx, p.r.Max.y), grid);
      const std::string s = fmt_g(x, 10);
      const ImVec2 ts = ImGui::CalcTextSize(s.c_str());
      const float tx = xx - ts.x * 0.5f;
      if (tx + ts.x + 8.0f > xlabel_left) continue;
      dl->AddText(ImVec2(tx, p.r.Max.y + 2.0f), text, s.c_str());
    }
  }
  if (has_ylabel) dl->AddText(ImVec2(p.r.Min.x, pos.y), title, o.y_label);
  dl->AddRect(p.r.Min, p.r.Max, IM_COL32(255, 255, 255, 60));
  dl->PushClipRect(p.r.Min, p.r.Max, true);
  return p;
}

void end_plot(const Plot& p) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  dl->PopClipRect();
  if (p.hovered && p.r.Contains(p.mouse)) {
    dl->AddLine(ImVec2(p.mouse.x, p.r.Min.y), ImVec2(p.mouse.x, p.r.Max.y),
                IM_COL32(255, 255, 255, 70));
  }
}

void dashed_line(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col, float thickness, float dash,
                 float gap) {
  const float dx = b.x - a.x, dy = b.y - a.y;
  const float len = std::sqrt(dx * dx + dy * dy);
  if (len < 1e-3f) return;
  const float ux = dx / len, uy = dy / len;
  for (float t = 0; t < len; t += dash + gap) {
    const float e = std::min(len, t + dash);
    dl->AddLine(ImVec2(a.x + ux * t, a.y + uy * t), ImVec2(a.x + ux * e, a.y + uy * e), col,
                thickness);
  }
}

void vline(const Plot& p, double x, ImU32 col, float thickness) {
  const float xx = p.px(x);
  ImGui::GetWindowDrawList()->AddLine(ImVec2(xx, p.r.Min.y), ImVec2(xx, p.r.Max.y), col, thickness);
}

void hline(const Plot& p, double y, ImU32 col, float thickness, bool dashed) {
  const float yy = p.py(y);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  if (dashed) {
    dashed_line(dl, ImVec2(p.r.Min.x, yy), ImVec2(p.r.Max.x, yy), col, thickness);
  } else {
    dl->AddLine(ImVec2(p.r.Min.x, yy), ImVec2(p.r.Max.x, yy), col, thickness);
  }
}

void plot_series(const Plot& p, std::span<const double> x, std::span<const double> y, ImU32 col,
                 const SeriesStyle& style) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const int w = p.columns();
  const float t = style.thickness;
  // One column per pixel over the visible range, widened by a column each side so that lines
  // leave the plot through its edges instead of stopping short.
  const double cw = (p.x1 - p.x0) / w;
  const auto cols = minmax_columns(x, y, p.x0 - cw, p.x1 + cw, w + 2);
  auto clampy = [&](double v) { return std::clamp(p.py(v), p.r.Min.y - 2.0f, p.r.Max.y + 2.0f); };
  auto seg = [&](ImVec2 a, ImVec2 b) {
    if (style.dashed) {
      dashed_line(dl, a, b, col, t);
    } else {
      dl->AddLine(a, b, col, t);
    }
  };
  // A vertical run of pixels [y_top, y_bot] in column centre cx: an axis-aligned rectangle (two
  // triangles, no anti-aliasing fringe: the cheapest primitive for a software rasteriser).
  auto vbar = [&](float cx, float y_top, float y_bot) {
    dl->AddRectFilled(ImVec2(cx - t * 0.5f, y_top - t * 0.5f),
                      ImVec2(cx + t * 0.5f, y_bot + t * 0.5f), col);
  };
  // Stairs: the value before the visible range holds into it.
  bool have_prev = false;
  ImVec2 prev{};
  int prev_c = -10;
  if (style.stairs && !x.empty()) {
    const auto it = std::lower_bound(x.begin(), x.end(), p.x0 - cw);
    if (it != x.begin()) {
      const size_t i = static_cast<size_t>(it - x.begin()) - 1;
      if (std::isfinite(y[i])) {
        prev = ImVec2(p.r.Min.x - 2.0f, clampy(y[i]));
        have_prev = true;
      }
    }
  }
  for (int c = 0; c < w + 2; ++c) {
    const Column& k = cols[static_cast<size_t>(c)];
    if (k.empty()) continue;
    const float cx = p.r.Min.x + (static_cast<float>(c) - 0.5f);
    if (k.finite > 0) {
      const float first = clampy(k.y_first), last = clampy(k.y_last);
      float ytop = clampy(k.y_max), ybot = clampy(k.y_min);
      if (have_prev) {
        if (c == prev_c + 1 && !style.dashed) {
          // Neighbouring pixel columns: the join (a step or a slope one pixel wide) is the same
          // pixels as stretching this column's bar to the previous value.
          ytop = std::min(ytop, prev.y);
          ybot = std::max(ybot, prev.y);
        } else if (style.stairs) {
          seg(prev, ImVec2(cx, prev.y));
          seg(ImVec2(cx, prev.y), ImVec2(cx, first));
        } else {
          seg(prev, ImVec2(cx, first));
        }
      }
      vbar(cx, ytop, ybot);
      prev = ImVec2(cx, last);
      prev_c = c;
      have_prev = true;
    }
    const float s = 5.0f;
    if (style.mark_nonfinite && k.pos_inf) {
      dl->AddTriangleFilled(ImVec2(cx - s, p.r.Min.y + s * 1.6f),
                            ImVec2(cx + s, p.r.Min.y + s * 1.6f), ImVec2(cx, p.r.Min.y),
                            IM_COL32(255, 60, 60, 255));
    }
    if (style.mark_nonfinite && k.neg_inf) {
      dl->AddTriangleFilled(ImVec2(cx - s, p.r.Max.y - s * 1.6f),
                            ImVec2(cx + s, p.r.Max.y - s * 1.6f), ImVec2(cx, p.r.Max.y),
                            IM_COL32(255, 60, 60, 255));
    }
    if (style.mark_nonfinite && k.nan) {
      dl->AddRectFilled(ImVec2(cx - 1.0f, p.r.Max.y - 10.0f), ImVec2(cx + 1.0f, p.r.Max.y),
                        IM_COL32(255, 0, 255, 255));
    }
    if (!k.finite) have_prev = false;  // a gap: NaN/Inf-only column
  }
  if (style.stairs && have_prev)
    seg(prev, ImVec2(std::min(p.px(x.empty() ? 0 : x.back() + 1), p.r.Max.x + 2.0f), prev.y));
}

void triangle(ImDrawList* dl, ImVec2 tip, bool up, float size, ImU32 col) {
  const float h = size * 1.2f, d = up ? h : -h;
  dl->AddTriangleFilled(tip, ImVec2(tip.x + size, tip.y + d), ImVec2(tip.x - size, tip.y + d), col);
}

void legend_item(ImU32 col, const char* label, Swatch kind) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 pos = ImGui::GetCursorScreenPos();
  const float h = ImGui::GetTextLineHeight();
  const float w = kind == Swatch::Tick || kind == Swatch::TriangleDown || kind == Swatch::TriangleUp
                      ? 10.0f
                      : 18.0f;
  const float mid = pos.y + h * 0.5f;
  switch (kind) {
    case Swatch::Box:
      dl->AddRectFilled(ImVec2(pos.x, pos.y + 2.0f), ImVec2(pos.x + w, pos.y + h - 2.0f), col);
      break;
    case Swatch::Band:
      dl->AddRectFilled(ImVec2(pos.x, pos.y + 3.0f), ImVec2(pos.x + w, pos.y + h - 3.0f), col);
      break;
    case Swatch::Dashed:
      dashed_line(dl, ImVec2(pos.x, mid), ImVec2(pos.x + w, mid), col, 2.0f, 4.0f, 3.0f);
      break;
    case Swatch::Tick:
      dl->AddLine(ImVec2(pos.x + w * 0.5f, pos.y + 2.0f),
                  ImVec2(pos.x + w * 0.5f, pos.y + h - 2.0f), col, 3.0f);
      break;
    case Swatch::TriangleDown:
      triangle(dl, ImVec2(pos.x + w * 0.5f, mid + 4.0f), false, 5.0f, col);
      break;
    case Swatch::TriangleUp:
      triangle(dl, ImVec2(pos.x + w * 0.5f, mid - 4.0f), true, 5.0f, col);
      break;
    case Swatch::Line:
      dl->AddLine(ImVec2(pos.x, mid), ImVec2(pos.x + w, mid), col, 2.5f);
      break;
  }
  ImGui::Dummy(ImVec2(w, h));
  ImGui::SameLine(0.0f, 4.0f);
  ImGui::TextUnformatted(label);
  ImGui::SameLine(0.0f, 14.0f);
}

}  // namespace fpscope::gui
