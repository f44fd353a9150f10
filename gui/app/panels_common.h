// Shared helpers of the plot panels (panels_*.cpp): colours, the format checkbox, nearest-step
// lookup, number formatting and event ticks. Internal to fpscope-gui's frame code.
#pragma once

#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "fpscope/gui/colors.h"
#include "fpscope/gui/view_model.h"
#include "plot.h"

namespace fpscope::gui::panels {

inline constexpr ImU32 kCurStep = IM_COL32(255, 255, 255, 200);
inline constexpr ImU32 kSkipped = IM_COL32(255, 70, 70, 255);
inline constexpr ImU32 kNonFinite = IM_COL32(255, 40, 40, 255);
inline constexpr ImU32 kAmax = IM_COL32(255, 255, 255, 230);
inline constexpr ImU32 kLossScale = IM_COL32(120, 200, 255, 255);
inline constexpr ImU32 kLabel = IM_COL32(200, 204, 212, 255);
inline constexpr ImU32 kDim = IM_COL32(150, 156, 168, 255);

inline ImVec4 v4(Rgb c) {
  return ImGui::ColorConvertU32ToFloat4(col32(c));
}

// A checkbox drawn in the format's colour.
inline bool format_toggle(Format f, bool* v) {
  ImGui::PushStyleColor(ImGuiCol_Text, v4(format_color(f)));
  ImGui::PushStyleColor(ImGuiCol_CheckMark, v4(format_color(f)));
  const bool r = ImGui::Checkbox(spec(f).name, v);
  ImGui::PopStyleColor(2);
  return r;
}

// Nearest index in an ascending vector to x (-1 when empty).
inline int64_t nearest(const std::vector<uint64_t>& v, double x) {
  if (v.empty()) return -1;
  const auto it = std::lower_bound(v.begin(), v.end(), static_cast<uint64_t>(std::max(0.0, x)));
  if (it == v.end()) return static_cast<int64_t>(v.size()) - 1;
  const int64_t i = it - v.begin();
  if (i > 0 && std::abs(static_cast<double>(v[static_cast<size_t>(i - 1)]) - x) <
                   std::abs(static_cast<double>(*it) - x))
    return i - 1;
  return i;
}

inline std::string pct(double f) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g%%", f * 100.0);
  return b;
}

// The tensor table's fractions: "0", "<.01%", "3.25%", "12.5%".
inline std::string table_pct(double f) {
  if (!(f > 0)) return "0";
  char b[32];
  if (f < 1e-4) return "<.01%";
  std::snprintf(b, sizeof b, f < 0.1 ? "%.2f%%" : "%.1f%%", f * 100.0);
  return b;
}

// One block-format cell of the tensor table (panels_blocks.cpp): the run's loss of tensor r in
// kBlockFormats[f] (col BlockLoss, coloured with the block_loss finding's thresholds) or its
// SQNR (BlockSqnr); "-" where the tensor has no measurement in that format.
void block_table_cell(const BlockColumns& blocks, const analysis::TensorRisk& r, Col col, int f,
                      const analysis::FindingOptions& opt);

// The tensor table's divergence cell (panels_compare.cpp): the largest difference to the
// reference over the other runs and the first step above 1 % (background: info above 1 %,
// warning above 10 %); the tooltip has each run's numbers. "-": not measurable.
void divergence_cell(const Comparison& c, uint32_t tensor);

// "65504", "448", "3.39e+38", "2^-14": how a format threshold is written on the heatmap.
inline std::string threshold_text(double v) {
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

}  // namespace fpscope::gui::panels
