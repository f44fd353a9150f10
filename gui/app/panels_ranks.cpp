// The ranks x steps heatmap of a rank set: one row per rank, one column per step, for the selected
// tensor and a metric (amax, overflow fraction in a format, NaN/Inf fraction), so the rank that
// breaks first stands out. Clicking a cell shows that rank's trace at that step in every panel.
// The raster itself is display-free (gui/core rank_view.h); this draws it.
#include <GL/gl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "app.h"
#include "panels_common.h"

namespace fpscope::gui {

using namespace panels;

void App::ranks_panel(ImVec2 size) {
  ImGui::BeginChild("ranks", size, true,
                    ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
  const Run* p = primary();
  const std::string tensor =
      p && sel_ >= 0 ? p->model->tensor(static_cast<uint32_t>(sel_)).id : std::string();
  ImGui::Text("Ranks x steps%s%s", tensor.empty() ? "" : ": ", tensor.c_str());
  ImGui::SameLine(0, 14);
  ImGui::SetNextItemWidth(ImGui::CalcTextSize("overflow fraction").x + ImGui::GetFrameHeight() +
                          10);
  if (ImGui::BeginCombo("##metric", rank_metric_name(rank_metric_))) {
    for (RankMetric m : {RankMetric::Amax, RankMetric::Overflow, RankMetric::NonFinite})
      if (ImGui::Selectable(rank_metric_name(m), m == rank_metric_)) rank_metric_ = m;
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  ImGui::TextDisabled("overflow in");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(ImGui::CalcTextSize("bf16").x + ImGui::GetFrameHeight() + 14);
  if (ImGui::BeginCombo("##rankfmt", spec(kTargets[rank_format_]).name)) {
    for (int t = 0; t < kNumTargets; ++t)
      if (ImGui::Selectable(spec(kTargets[t]).name, t == rank_format_)) rank_format_ = t;
    ImGui::EndCombo();
  }
  fact("rank_metric", rank_metric_name(rank_metric_));
  if (tensor.empty()) {
    ImGui::TextDisabled("Select a tensor in the table.");
    fact("ranks_message", "Select a tensor in the table.");
    ImGui::EndChild();
    region("ranks");
    return;
  }
  const RankHeatKey key{rankset_.get(), tensor, rank_metric_, rank_format_};
  if (!(key == rank_heat_for_)) {
    rank_heat_ = build_rank_heat(*rankset_, tensor, rank_metric_, kTargets[rank_format_]);
    rank_heat_for_ = key;
  }
  const RankHeat& h = rank_heat_;
  // Which rank broke first: the headline of the panel.
  ImGui::SameLine(0, 14);
  std::string first;
  if (h.first_step >= 0) {
    for (int64_t r : h.first_ranks) first += (first.empty() ? "" : ", ") + std::to_string(r);
    ImGui::TextColored(ImVec4(1.0f, 0.45f, 0.4f, 1.0f), "first broken: rank%s %s at step %lld",
                       h.first_ranks.size() > 1 ? "s" : "", first.c_str(),
                       static_cast<long long>(h.first_step));
    ImGui::SameLine();
    ImGui::TextDisabled("(NaN/Inf or %s overflow)", spec(h.format).name);
  } else {
    ImGui::TextDisabled("no rank has NaN/Inf or %s overflow here", spec(h.format).name);
  }
  fact("ranks_first_step", std::to_string(h.first_step));
  fact("ranks_first_ranks", first);
  legend_item(col32(kRankNonFinite), "NaN/Inf", Swatch::Box);
  legend_item(col32(heat_color(1.0f)), "", Swatch::Box);
  ImGui::SameLine(0, 0);
  ImGui::TextDisabled(
      h.metric == RankMetric::Amax ? "high: log2 amax %s" : "colour: the fraction, log scale%s",
      h.metric == RankMetric::Amax ? fmt_g(h.hi, 3).c_str() : "");
  ImGui::SameLine(0, 12);
  legend_item(IM_COL32(255, 255, 255, 230), "current rank / step", Swatch::Box);
  // The most severe cross-rank finding about this tensor (replicas out of sync, a skewed rank).
  bool line_open = true;  // legend_item leaves the line open
  for (const auto& rf : rankset_->findings) {
    if (rf.finding.tensor_id != tensor || rf.finding.kind == analysis::FindingKind::RankFirstFault)
      continue;
    ImGui::SameLine(0, 18);
    ImGui::TextColored(ImVec4(1.0f, 0.78f, 0.3f, 1.0f), "%s", rf.finding.title.c_str());
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("%s\n%s", rf.finding.evidence.c_str(), rf.finding.recommendation.c_str());
    fact("ranks_finding", analysis::kind_name(rf.finding.kind));
    line_open = false;
    break;
  }
  if (line_open) ImGui::NewLine();

  double clicked = -1;
  PlotOpts po;
  po.clicked_x = &clicked;
  po.y_ticks = false;
  po.x_ticks = true;
  po.left_margin = 58.0f;
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const auto rows = static_cast<double>(std::max<size_t>(1, h.rows()));
  const Plot pl =
      begin_plot("##rankheat", ImVec2(avail.x, avail.y), &xview_, 0.0, rows, YFmt::Plain, po);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const int width = pl.columns();
  const RankTexKey tk{key, pl.x0, pl.x1, width};
  if (!(tk == rank_tex_for_) && h.rows() > 0) {
    const RankRaster img = rank_raster(h, pl.x0, pl.x1, width);
    if (!rank_tex_) glGenTextures(1, &rank_tex_);
    glBindTexture(GL_TEXTURE_2D, rank_tex_);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 4);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, img.width, img.rows, 0, GL_RGBA, GL_UNSIGNED_BYTE,
                 img.rgba.data());
    rank_tex_for_ = tk;
  }
  // Row r (rank h.ranks[r]) spans y in [rows - r - 1, rows - r): rank 0 on top.
  auto row_y0 = [&](size_t r) { return pl.py(rows - static_cast<double>(r)); };
  auto row_y1 = [&](size_t r) { return pl.py(rows - static_cast<double>(r) - 1.0); };
  if (rank_tex_ && h.rows() > 0) {
    // Texture row 0 is rank row 0, drawn at the top.
    dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(rank_tex_)), pl.r.Min,
                 pl.r.Max, ImVec2(0, 0), ImVec2(1, 1));
  }
  // Row separators when the rows are tall enough to see them.
  const float row_px = pl.r.GetHeight() / static_cast<float>(rows);
  if (row_px >= 8.0f)
    for (size_t r = 1; r < h.rows(); ++r)
      dl->AddLine(ImVec2(pl.r.Min.x, row_y0(r)), ImVec2(pl.r.Max.x, row_y0(r)),
                  IM_COL32(18, 20, 26, 255), 1.0f);
  const int64_t cur_rank = runs_[primary_].rank;
  const int64_t cur_row = h.row_of(cur_rank);
  // Rank labels in the left margin (every k-th when the rows are thin), the current one bright.
  const float lh = ImGui::GetTextLineHeight();
  const size_t every = static_cast<size_t>(std::max(1.0f, std::ceil(lh / std::max(1.0f, row_px))));
  dl->PopClipRect();  // begin_plot clips to the data area; the labels go in the margin
  dl->PushClipRect(pl.frame.Min, pl.frame.Max, true);
  for (size_t r = 0; r < h.rows(); ++r) {
    const auto ri = static_cast<int64_t>(r);
    // Every k-th label, and the shown rank's, which the others near it make room for.
    if (ri != cur_row &&
        (r % every != 0 || (cur_row >= 0 && std::abs(ri - cur_row) < static_cast<int64_t>(every))))
      continue;
    char lab[32];
    std::snprintf(lab, sizeof lab, "rank %lld", static_cast<long long>(h.ranks[r]));
    const float ty = (row_y0(r) + row_y1(r)) * 0.5f - lh * 0.5f;
    const float tw = ImGui::CalcTextSize(lab).x;
    dl->AddText(ImVec2(pl.r.Min.x - tw - 6, ty),
                static_cast<int64_t>(r) == cur_row ? IM_COL32(255, 255, 255, 255) : kDim, lab);
  }
  dl->PopClipRect();
  dl->PushClipRect(pl.r.Min, pl.r.Max, true);
  // The first broken cell(s): a white-ringed mark so one cell among thousands is found.
  if (h.first_step >= 0) {
    const float x0 = pl.px(static_cast<double>(h.first_step));
    const float x1 = std::max(x0 + 3.0f, pl.px(static_cast<double>(h.first_step) + 1.0));
    for (int64_t rk : h.first_ranks) {
      const auto r = static_cast<size_t>(h.row_of(rk));
      dl->AddRect(ImVec2(x0 - 2, row_y0(r) - 1), ImVec2(x1 + 2, row_y1(r) + 1),
                  IM_COL32(255, 80, 70, 255), 0.0f, 0, 2.0f);
    }
  }
  // The current rank's row and the current step.
  if (cur_row >= 0) {
    const auto r = static_cast<size_t>(cur_row);
    dl->AddRect(ImVec2(pl.r.Min.x, row_y0(r)), ImVec2(pl.r.Max.x, row_y1(r)),
                IM_COL32(255, 255, 255, 150), 0.0f, 0, 1.0f);
  }
  vline(pl, static_cast<double>(cur_step()), kCurStep, 1.5f);
  end_plot(pl);
  regions_["ranks_plot"] = ImVec4(pl.r.Min.x, pl.r.Min.y, pl.r.GetWidth(), pl.r.GetHeight());
  // Hover: the cell's rank, step and value.
  auto cell_at = [&](ImVec2 m, size_t* r, int64_t* c) {
    const double y = pl.y_at(m.y);
    const auto rr = static_cast<int64_t>(std::floor(rows - y));
    if (rr < 0 || rr >= static_cast<int64_t>(h.rows())) return false;
    *r = static_cast<size_t>(rr);
    const double x = std::floor(pl.x_at(m.x));
    *c = x < 0 ? -1 : h.col_of(static_cast<uint64_t>(x));
    return true;
  };
  size_t hr = 0;
  int64_t hc = -1;
  if (pl.hovered && pl.r.Contains(pl.mouse) && cell_at(pl.mouse, &hr, &hc)) {
    if (hc >= 0) {
      const CellState s = h.state_at(hr, static_cast<size_t>(hc));
      const double v = h.at(hr, static_cast<size_t>(hc));
      const std::string val = s == CellState::Missing        ? "no record"
                              : h.metric == RankMetric::Amax ? "amax 2^" + fmt_g(v, 4)
                                                             : pct(v) + " of the elements";
      ImGui::SetTooltip("rank %lld, step %llu: %s%s\nclick: show rank %lld at this step",
                        static_cast<long long>(h.ranks[hr]),
                        static_cast<unsigned long long>(h.steps[static_cast<size_t>(hc)]),
                        val.c_str(),
                        s == CellState::NonFinite  ? "  (NaN/Inf)"
                        : s == CellState::Overflow ? "  (overflows)"
                                                   : "",
                        static_cast<long long>(h.ranks[hr]));
    } else {
      ImGui::SetTooltip("rank %lld: no record at this step", static_cast<long long>(h.ranks[hr]));
    }
  }
  if (clicked >= 0) {
    size_t r = 0;
    int64_t c = -1;
    if (cell_at(ImGui::GetIO().MouseClickedPos[0], &r, &c)) {
      const int64_t step = c >= 0 ? static_cast<int64_t>(h.steps[static_cast<size_t>(c)])
                                  : static_cast<int64_t>(std::floor(clicked));
      if (h.ranks[r] != cur_rank) {
        select_rank(h.ranks[r], step);
      } else {
        const int64_t i = nearest(p->timeline_steps, static_cast<double>(step));
        if (i >= 0) set_step_index(i);
      }
    }
  }
  ImGui::EndChild();
  region("ranks");
}

}  // namespace fpscope::gui
