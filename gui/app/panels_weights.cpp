// Master weights: update rounding loss of the watched parameters.
#include <GL/gl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "app.h"
#include "fpscope/analysis/weights.h"
#include "fpscope/gui/layout.h"
#include "fpscope/gui/weights_view.h"
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
  // Parameters the probe or the integration did not watch, and why (the trace's events).
  if (left_out_for_ != p) {
    left_out_ = analysis::left_out_weights(*p->trace);
    left_out_for_ = p;
  }
  if (!left_out_.empty()) {
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(1.0f, 0.78f, 0.3f, 1.0f), "%zu left out", left_out_.size());
    std::string names, tip;
    for (const auto& l : left_out_) {
      names += (names.empty() ? "" : "|") + l.name;
      if (tip.size() < 4000) tip += l.name + ": " + l.reason + "\n";
    }
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("not watched (the estimates below do not cover them):\n%s", tip.c_str());
    fact("weights_left_out", names);
  }
  if (ws.empty()) {
    ImGui::SameLine();
    ImGui::TextDisabled(
        "none watched in this trace: the PyTorch integration watches the optimizer's parameters "
        "(--watch), or fpscope.watch(name, tensor)");
    ImGui::TextDisabled(
        "shows how much of each update BF16/FP16 master copies would lose (stagnant updates, "
        "lost update mass).");
    fact("weights_message", "none watched in this trace");
    ImGui::EndChild();
    region("weights");
    return;
  }
  if (weight_order_for_ != p || weight_order_.size() != ws.size()) {
    weight_order_ = weight_order(ws);  // by lost mass (bf16), the worst first
    weight_order_for_ = p;
    weight_sel_ = static_cast<int>(weight_order_.front());
  }
  weight_sel_ = std::clamp(weight_sel_, 0, static_cast<int>(ws.size()) - 1);
  const auto& w = ws[static_cast<size_t>(weight_sel_)];
  ImGui::SameLine();
  bool any_sampled = false;
  for (const auto& x : ws) any_sampled = any_sampled || x.sampled;
  ImGui::TextDisabled("%zu watched, by lost update mass%s", ws.size(),
                      any_sampled ? "; sampled watches: estimate (95% interval)" : "");
  if (w.not_fp32) {
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s: master weights are %s, not fp32!",
                       w.name.c_str(), spec(w.master_dtype).name);
  }
  std::string order;
  for (size_t i : weight_order_) order += (order.empty() ? "" : "|") + ws[i].name;
  fact("weights_order", order);
  fact("weight_selected", w.name);
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float table_w = std::floor(avail.x * 0.46f);
  const float plot_w = std::floor((avail.x - table_w - 16.0f) * 0.5f);
  weights_table(ws, ImVec2(table_w, avail.y));
  ImGui::SameLine(0, 8);
  // Middle: stagnant fraction per update over steps, with its 95% band when sampled, and the
  // lost update mass dashed.
  if (w_cache_for_ != &w || w_cache_run_ != p) {
    w_x_.clear();
    w_steps_.clear();
    for (const auto& pt : w.series) {
      w_x_.push_back(static_cast<double>(pt.step));
      w_steps_.push_back(pt.step);
    }
    w_curve_[0] = weight_curve(w, Format::BF16);
    w_curve_[1] = weight_curve(w, Format::FP16);
    w_cache_for_ = &w;
    w_cache_run_ = p;
  }
  double clicked = -1;
  PlotOpts po;
  po.clicked_x = &clicked;
  po.y_label = "stagnant, lost (--)";
  po.x_label = "step";
  po.left_margin = 44.0f;
  const Plot pl = begin_plot("##stag", ImVec2(plot_w, avail.y), &xview_, 0.0, 1.0, YFmt::Pct, po);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  for (int f = 0; f < 2; ++f) {
    const WeightCurve& c = w_curve_[f];
    const Rgb col = format_color(f == 0 ? Format::BF16 : Format::FP16);
    if (w.sampled) {  // the 95% band: one quad per pair of neighbouring updates in view
      for (size_t i = 0; i + 1 < c.step.size(); ++i) {
        if (c.step[i + 1] < pl.x0 || c.step[i] > pl.x1) continue;
        const ImVec2 q[4] = {ImVec2(pl.px(c.step[i]), pl.py(c.hi[i])),
                             ImVec2(pl.px(c.step[i + 1]), pl.py(c.hi[i + 1])),
                             ImVec2(pl.px(c.step[i + 1]), pl.py(c.lo[i + 1])),
                             ImVec2(pl.px(c.step[i]), pl.py(c.lo[i]))};
        dl->AddConvexPolyFilled(q, 4, col32(col, 0.22f));
      }
    }
    plot_series(pl, c.step, c.stagnant, col32(col), {1.8f});
    SeriesStyle dashed;
    dashed.thickness = 1.2f;
    dashed.dashed = true;
    plot_series(pl, c.step, c.lost_mass, col32(col, 0.8f), dashed);
  }
  vline(pl, static_cast<double>(cur_step()), kCurStep, 1.5f);
  end_plot(pl);
  regions_["weights_plot"] = ImVec4(pl.r.Min.x, pl.r.Min.y, pl.r.GetWidth(), pl.r.GetHeight());
  if (pl.hovered && pl.r.Contains(pl.mouse) && !w.series.empty()) {
    const int64_t i = nearest(w_steps_, pl.x_at(pl.mouse.x));
    const auto k = static_cast<size_t>(i);
    const auto& pt = w.series[k];
    auto stag = [&](int f) {
      const WeightCurve& c = w_curve_[f];
      return analysis::stagnant_text(c.stagnant[k], c.lo[k], c.hi[k], w.sampled);
    };
    ImGui::SetTooltip(
        "update at step %llu (%llu of %llu %s positions changed)\nbf16: %s stagnant, %s of the "
        "update mass lost\nfp16: %s stagnant, %s lost%s",
        static_cast<unsigned long long>(pt.step), static_cast<unsigned long long>(pt.changed),
        static_cast<unsigned long long>(w.watched), w.sampled ? "sampled" : "watched",
        stag(0).c_str(), pct(pt.bf16_lost_mass).c_str(), stag(1).c_str(),
        pct(pt.fp16_lost_mass).c_str(),
        w.sampled ? "\n(stagnant: estimate and 95% interval from the sample)" : "");
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
  ph_o.y_label = "of updates";
  ph_o.x_label = "log2 |dw|/|w|";
  ph_o.left_margin = 48.0f;
  const double ytop = std::min(1.0, std::max(0.05, fmax * 1.15));
  const Plot ph =
      begin_plot("##ratio", ImVec2(0, avail.y), &ratio_view_, 0.0, ytop, YFmt::Pct, ph_o);
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
    // Moved to the other side of its line when it would leave the plot (a narrow panel).
    float lx = f == Format::BF16 ? xx + 4 : xx - tw - 4;
    if (lx < ph.r.Min.x) lx = xx + 4;
    if (lx + tw > ph.r.Max.x) lx = xx - tw - 4;
    lx = std::max(lx, ph.r.Min.x + 2);  // a line left of the view: its label at the edge
    dl->AddText(
        ImVec2(lx, ph.r.Min.y + 2 + (f == Format::FP16 ? ImGui::GetTextLineHeight() : 0.0f)), c,
        lab);
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

// The watched parameters, worst first: lost update mass and stagnant fraction per format, with
// the sampling error of a sampled watch. Click a row to plot it.
void App::weights_table(const std::vector<analysis::WeightLoss>& ws, ImVec2 size) {
  const ImGuiTableFlags flags = ImGuiTableFlags_ScrollY | ImGuiTableFlags_RowBg |
                                ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingFixedFit;
  if (!ImGui::BeginTable("weights_table", 3, flags, size)) return;
  ImGui::TableSetupScrollFreeze(0, 1);
  ImGui::TableSetupColumn("parameter", ImGuiTableColumnFlags_WidthStretch);
  ImGui::TableSetupColumn("bf16 lost");
  ImGui::TableSetupColumn("bf16 stagnant");
  ImGui::TableHeadersRow();
  for (size_t i : weight_order_) {
    const auto& x = ws[i];
    ImGui::TableNextRow();
    ImGui::TableNextColumn();
    ImGui::PushID(static_cast<int>(i));
    const std::string label =
        x.name + (x.not_fp32 ? "  [" + std::string(spec(x.master_dtype).name) + " master!]" : "");
    if (ImGui::Selectable(label.c_str(), static_cast<int>(i) == weight_sel_,
                          ImGuiSelectableFlags_SpanAllColumns))
      weight_sel_ = static_cast<int>(i);
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip(
          "%s: %llu updates, %s %llu of %llu elements\nbf16: stagnant %s, lost mass %s\nfp16: "
          "stagnant %s, lost mass %s%s",
          x.name.c_str(), static_cast<unsigned long long>(x.updates),
          x.sampled ? "a uniform sample of" : "all", static_cast<unsigned long long>(x.watched),
          static_cast<unsigned long long>(x.elements),
          analysis::stagnant_text(x.bf16_stagnant, x.bf16_stagnant_lo, x.bf16_stagnant_hi,
                                  x.sampled)
              .c_str(),
          pct(x.bf16_lost_mass).c_str(),
          analysis::stagnant_text(x.fp16_stagnant, x.fp16_stagnant_lo, x.fp16_stagnant_hi,
                                  x.sampled)
              .c_str(),
          pct(x.fp16_lost_mass).c_str(),
          x.sampled ? "\n(sampled: estimates, stagnant with its 95% interval; lost mass is a "
                      "ratio estimate)"
                    : "");
    ImGui::PopID();
    ImGui::TableNextColumn();
    ImGui::TextUnformatted(pct(x.bf16_lost_mass).c_str());
    ImGui::TableNextColumn();
    ImGui::TextUnformatted(
        analysis::stagnant_text(x.bf16_stagnant, x.bf16_stagnant_lo, x.bf16_stagnant_hi, x.sampled)
            .c_str());
  }
  ImGui::EndTable();
  region("weights_table");
}

}  // namespace fpscope::gui
