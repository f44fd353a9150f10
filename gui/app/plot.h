// Small ImDrawList plotting kit (no ImPlot in Debian): axes with ticks, min/max-per-column lines,
// step-shared x view with zoom/pan, hover position.
#pragma once

#include <imgui.h>
#include <imgui_internal.h>  // ImRect

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fpscope/gui/colors.h"

namespace fpscope::gui {

inline ImU32 col32(Rgb c, float alpha = 1.0f) {
  return IM_COL32(c.r, c.g, c.b, static_cast<int>(alpha * 255.0f + 0.5f));
}

// Shared x range (steps) of every step-indexed plot: wheel zooms at the mouse, drag pans,
// double-click resets to the whole run.
struct XView {
  double x0 = 0, x1 = 1;  // visible
  double lo = 0, hi = 1;  // whole run
  void reset() {
    x0 = lo;
    x1 = hi;
  }
  void set_bounds(double a, double b) {
    lo = a;
    hi = b > a ? b : a + 1;
  }
  void zoom(double at, double factor);
  void pan(double dx);
};

// Log10Pct: y holds log10 of a fraction (a log-scale axis), ticked at whole decades and labelled
// as percentages ("0.1%", "1%", "10%").
enum class YFmt { Plain, Pow2, Db, Pct, Log10Pct };

// The data area's background colour (also what the heat raster is drawn on).
inline constexpr ImU32 kPlotBackground = IM_COL32(18, 20, 26, 255);

// Data-area backgrounds are not drawn as triangles: begin_plot queues its data area (clipped to
// the window), and the frame clears the queued rectangles to kPlotBackground (scissored
// glClear) before it renders the draw data, under everything else. On software OpenGL a filled
// rectangle costs as much as any other shaded, blended pixel; a scissored clear almost nothing.
// Returns this frame's rectangles (ImGui display coordinates) and empties the queue.
std::vector<ImRect> take_plot_backgrounds();

struct Plot {
  ImRect frame;  // whole reserved area
  ImRect r;      // data area
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  bool hovered = false;
  ImVec2 mouse{};
  float px(double x) const {
    return r.Min.x + static_cast<float>((x - x0) / (x1 - x0)) * r.GetWidth();
  }
  float py(double y) const {
    return r.Max.y - static_cast<float>((y - y0) / (y1 - y0)) * r.GetHeight();
  }
  double x_at(float p) const { return x0 + (p - r.Min.x) / r.GetWidth() * (x1 - x0); }
  double y_at(float p) const { return y0 + (r.Max.y - p) / r.GetHeight() * (y1 - y0); }
  int columns() const {
    return static_cast<int>(r.GetWidth()) < 1 ? 1 : static_cast<int>(r.GetWidth());
  }
};

struct PlotOpts {
  // Axis titles. The y title sits above the data area at its left edge (never on the tick
  // labels); the x title sits at the right end of the x tick row, and the x tick labels that
  // would collide with it are left out.
  const char* y_label = nullptr;
  const char* x_label = nullptr;
  float left_margin = 58.0f;  // room for the y tick labels
  float right_margin = 8.0f;  // room right of the data area (the heatmap's line labels)
  bool y_ticks = true;
  bool x_ticks = true;
  double* clicked_x = nullptr;  // receives the x of a click without drag (for "go to step")
};

// Reserves `size` in the current window, queues the background, draws grid, ticks and labels, and
// handles the x interaction against `view` (when not null). Returns the plot; draw into
// ImGui::GetWindowDrawList() with the plot's clip rect pushed (begin_plot pushes, end_plot pops).
Plot begin_plot(const char* id, ImVec2 size, XView* view, double y0, double y1, YFmt yfmt,
                const PlotOpts& opts);
void end_plot(const Plot& p);

// A series drawn min/max per pixel column: a vertical bar from min to max in every column that
// holds points, joined to the next column like the full-resolution line (neighbouring columns by
// stretching the bar, farther ones by a line). Unless mark_nonfinite is off, NaN points draw a
// magenta tick at the bottom edge, +Inf a red triangle at the top edge, -Inf one at the bottom,
// so a single non-finite value among millions stays visible; with it off, a NaN/Inf-only column
// is just a gap. `stairs`: hold each value until the next x (loss scale). Values outside [y0, y1]
// are clamped to the edges.
struct SeriesStyle {
  float thickness = 1.5f;
  bool dashed = false;
  bool stairs = false;
  bool mark_nonfinite = true;
};
void plot_series(const Plot& p, std::span<const double> x, std::span<const double> y, ImU32 col,
                 const SeriesStyle& style = {});
void dashed_line(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col, float thickness, float dash = 6.0f,
                 float gap = 4.0f);
void vline(const Plot& p, double x, ImU32 col, float thickness = 1.0f);
void hline(const Plot& p, double y, ImU32 col, float thickness = 1.0f, bool dashed = false);

// Legend entry: a coloured swatch and a label, on the current line (SameLine after it).
enum class Swatch { Line, Dashed, Box, Band, Tick, TriangleDown, TriangleUp };
void legend_item(ImU32 col, const char* label, Swatch kind = Swatch::Line);
// A small triangle pointing up (or down) with its tip at `tip`.
void triangle(ImDrawList* dl, ImVec2 tip, bool up, float size, ImU32 col);

std::string fmt_value(double v, YFmt f);
std::string fmt_g(double v, int digits = 4);

}  // namespace fpscope::gui
