// Master weights: update rounding loss of the watched parameters.
#include <GL/gl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "app.h"
#include "fpscope/gui/layout.h"
#include "panels_common.h"

namespace fpscope::gui {

using namespace panels;

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
