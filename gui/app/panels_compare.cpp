// Several runs aligned on the reference (the primary run): the comparison job (run_compare.h:
// compare_runs once per pair, cached), the drift panel's "difference to <reference>" plot of the
// selected tensor, and the timeline's loss curves, one per run in the run's colour.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "app.h"
#include "panels_common.h"

namespace fpscope::gui {

using namespace panels;

namespace {
std::string run_name(size_t i) {
  return std::string("Run ") + static_cast<char>('A' + i);
}
constexpr ImU32 kLine1 = IM_COL32(255, 255, 255, 110);   // the 1 % reference line
constexpr ImU32 kLine10 = IM_COL32(255, 110, 110, 170);  // the 10 % one
}  // namespace

size_t App::other_runs() const {
  size_t n = 0;
  for (size_t i = 0; i < runs_.size(); ++i)
    n += i != primary_ && runs_[i].run && runs_[i].run->ok && !in_rank_set(i);
  return n;
}

void App::request_comparison() {
  const Run* p = primary();
  if (!p || other_runs() == 0) {
    cmp_.reset();
    cmp_wanted_ = false;
    return;
  }
  std::shared_ptr<const Run> base = runs_[primary_].run;
  std::vector<std::pair<size_t, std::shared_ptr<const Run>>> others;
  for (size_t i = 0; i < runs_.size(); ++i)
    if (i != primary_ && runs_[i].run && runs_[i].run->ok && !in_rank_set(i))
      others.emplace_back(i, runs_[i].run);
  cmp_wanted_ = true;
  DiffCache* cache = &diffs_;
  cmp_.request([base, others, cache] {
    std::vector<Comparison::Other> o;
    for (const auto& [i, run] : others) o.push_back({i, cache->get(base, run)});
    return combine_runs(base->model->num_tensors(), std::move(o));
  });
}

const Comparison* App::comparison() const {
  return cmp_wanted_ && cmp_.current() ? cmp_.value().get() : nullptr;
}

namespace panels {

void divergence_cell(const Comparison& c, uint32_t tensor) {
  if (tensor >= c.combined.size() || !c.combined[tensor].has_rel_diff()) {
    ImGui::TextDisabled("-");
    return;
  }
  const analysis::CrossRunDrift& m = c.combined[tensor];
  if (m.first_step_rel_10pct >= 0)
    ImGui::TableSetBgColor(ImGuiTableBgTarget_CellBg,
                           pack(severity_color(analysis::Severity::Warning)));
  else if (m.first_step_rel_1pct >= 0)
    ImGui::TableSetBgColor(ImGuiTableBgTarget_CellBg,
                           pack(severity_color(analysis::Severity::Info)));
  if (m.first_step_rel_1pct >= 0)
    ImGui::Text("%s @%lld", analysis::fmt_rel_diff(m.max_rel_diff).c_str(),
                static_cast<long long>(m.first_step_rel_1pct));
  else
    ImGui::TextUnformatted(analysis::fmt_rel_diff(m.max_rel_diff).c_str());
  if (!ImGui::IsItemHovered()) return;
  std::string tip = "difference to the reference (@: first step above 1 %)";
  for (const auto& o : c.others) {
    const analysis::CrossRunDrift* d = o.diff->find(tensor);
    tip += std::string("\nRun ") + static_cast<char>('A' + o.run) + ": ";
    if (!d || !d->has_rel_diff()) {
      tip += "not measurable";
      continue;
    }
    tip += "max " + analysis::fmt_rel_diff(d->max_rel_diff) + ", > 1 % from " +
           (d->first_step_rel_1pct < 0 ? std::string("never")
                                       : "step " + std::to_string(d->first_step_rel_1pct)) +
           ", > 10 % from " +
           (d->first_step_rel_10pct < 0 ? std::string("never")
                                        : "step " + std::to_string(d->first_step_rel_10pct));
  }
  ImGui::SetTooltip("%s", tip.c_str());
}

}  // namespace panels

void App::difference_plot(uint32_t tensor, float height) {
  const Comparison* c = comparison();
  const std::string ref = run_name(primary_) + " (" + primary()->label + ")";
  const float y_start = ImGui::GetCursorPosY();
  if (!c) {
    ImGui::TextDisabled("Difference to %s: computing...", ref.c_str());
    return;
  }
  if (!c->measurable()) {
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyleColorVec4(ImGuiCol_TextDisabled));
    ImGui::TextWrapped(
        "No value difference to the reference %s: the traces carry no value sketches (recorded "
        "without --sketch / --emulate)",
        ref.c_str());
    ImGui::PopStyleColor();
    fact("difference_message", "no value sketches");
    return;
  }
  struct Line {
    size_t run;
    const analysis::CrossRunDrift* d;
  };
  std::vector<Line> lines;
  std::string missing;
  for (const auto& o : c->others) {
    const analysis::CrossRunDrift* d = o.diff->find(tensor);
    if (d && d->has_rel_diff()) {
      lines.push_back({o.run, d});
    } else {
      missing += (missing.empty() ? "" : ", ") + run_name(o.run);
    }
  }
  ImGui::Text("Difference to %s", ref.c_str());
  if (ImGui::IsItemHovered())
    ImGui::SetTooltip(
        "||run - reference|| / ||reference|| of this tensor per common step, estimated from the\n"
        "value sketches (trace format 1.4); the reference is the primary run: click another\n"
        "run's chip to compare against it");
  ImGui::SameLine(0, 12);
  std::string shown;
  for (const auto& l : lines) {
    legend_item(col32(run_color(l.run)), run_name(l.run).c_str(), Swatch::Line);
    shown += (shown.empty() ? "" : ",") + run_name(l.run);
  }
  legend_item(kLine1, "1 %", Swatch::Dashed);
  legend_item(kLine10, "10 %", Swatch::Dashed);
  legend_item(kLabel, "first step above", Swatch::TriangleDown);
  if (!missing.empty())
    ImGui::TextDisabled("(%s: not measurable here)", missing.c_str());
  else
    ImGui::NewLine();
  fact("difference_runs", shown);
  fact("difference_ref", run_name(primary_));

  // log10 of the difference; 0 pinned to the bottom, +inf to the top, NaN a gap. The axis keeps
  // both reference lines in view.
  double lo = 1e300, hi = -1e300;
  for (const auto& l : lines)
    for (double v : l.d->rel_diff_series)
      if (v > 0 && std::isfinite(v))
        lo = std::min(lo, std::log10(v)), hi = std::max(hi, std::log10(v));
  if (lo > hi) lo = hi = -2;
  lo = std::clamp(std::floor(lo), -8.0, -3.0);
  hi = std::max(std::ceil(hi + 0.05), -0.5);
  double clicked = -1;
  PlotOpts po;
  po.clicked_x = &clicked;
  po.left_margin = 52.0f;
  po.x_label = "step";
  // The plot takes what the header line left of `height`.
  const float h = std::max(
      50.0f, height - (ImGui::GetCursorPosY() - y_start) - ImGui::GetStyle().ItemSpacing.y);
  const Plot pl = begin_plot("##reldiff", ImVec2(ImGui::GetContentRegionAvail().x, h), &xview_, lo,
                             hi, YFmt::Log10Pct, po);
  hline(pl, -2.0, kLine1, 1.0f, true);
  hline(pl, -1.0, kLine10, 1.0f, true);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  std::string firsts;
  for (const auto& l : lines) {
    std::vector<double> x, y;
    for (size_t i = 0; i < l.d->steps.size(); ++i) {
      const double v = l.d->rel_diff_series[i];
      x.push_back(static_cast<double>(l.d->steps[i]));
      y.push_back(std::isnan(v) ? v : v <= 0 ? lo : std::isinf(v) ? hi : std::log10(v));
    }
    const ImU32 col = col32(run_color(l.run));
    plot_series(pl, x, y, col, {1.8f, false, false, /*mark_nonfinite=*/false});
    // Where it first went above 1 % and 10 %: a triangle on the reference line.
    for (const auto& [step, at] :
         {std::pair{l.d->first_step_rel_1pct, -2.0}, std::pair{l.d->first_step_rel_10pct, -1.0}}) {
      if (step < 0) continue;
      triangle(dl, ImVec2(pl.px(static_cast<double>(step)), pl.py(at)), false, 6.0f, col);
    }
    firsts += (firsts.empty() ? "" : ";") + run_name(l.run) + ":" +
              std::to_string(l.d->first_step_rel_1pct) + "," +
              std::to_string(l.d->first_step_rel_10pct);
  }
  fact("difference_first_steps", firsts);  // "Run B:1pct,10pct;..." (-1: never)
  vline(pl, static_cast<double>(cur_step()), kCurStep, 1.5f);
  end_plot(pl);
  regions_["difference_plot"] = ImVec4(pl.r.Min.x, pl.r.Min.y, pl.r.GetWidth(), pl.r.GetHeight());
  if (pl.hovered && pl.r.Contains(pl.mouse)) {
    std::string tip;
    for (const auto& l : lines) {
      const int64_t i = nearest(l.d->steps, pl.x_at(pl.mouse.x));
      if (i < 0) continue;
      const auto k = static_cast<size_t>(i);
      tip += run_name(l.run) + ", step " + std::to_string(l.d->steps[k]) + ": " +
             analysis::fmt_rel_diff(l.d->rel_diff_series[k]) + " (max " +
             analysis::fmt_rel_diff(l.d->max_rel_diff) + ", first > 1 %: " +
             (l.d->first_step_rel_1pct < 0 ? std::string("never")
                                           : "step " + std::to_string(l.d->first_step_rel_1pct)) +
             ")\n";
    }
    if (!tip.empty()) ImGui::SetTooltip("%s", tip.c_str());
  }
  if (clicked >= 0) {
    const int64_t i = nearest(primary()->timeline_steps, clicked);
    if (i >= 0) set_step_index(i);
  }
}

void App::loss_curves(const Plot& pl) {
  // Every run's curve on one loss axis (its range: all the runs'), drawn over the loss-scale
  // track with its own scale, written at the right edge.
  std::vector<size_t> runs;
  double lo = 1e300, hi = -1e300;
  for (size_t i = 0; i < runs_.size(); ++i) {
    const auto& r = runs_[i].run;
    if (!r || !r->ok || r->loss.empty() || (in_rank_set(i) && i != primary_)) continue;
    runs.push_back(i);
    for (double v : r->loss.loss)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (runs.empty()) return;
  if (lo > hi) lo = 0, hi = 1;
  const double pad = std::max(1e-12, (hi - lo) * 0.08);
  Plot lp = pl;
  lp.y0 = lo - pad;
  lp.y1 = hi + pad;
  for (size_t i : runs)
    plot_series(lp, runs_[i].run->loss.steps, runs_[i].run->loss.loss, col32(run_color(i)),
                {i == primary_ ? 2.0f : 1.6f, false, false, /*mark_nonfinite=*/true});
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const std::string top = "loss " + fmt_g(hi, 4), bottom = fmt_g(lo, 4);
  const float fh = ImGui::GetFontSize();
  dl->AddText(ImVec2(pl.r.Max.x - ImGui::CalcTextSize(top.c_str()).x - 4, pl.r.Min.y + 2), kLabel,
              top.c_str());
  dl->AddText(ImVec2(pl.r.Max.x - ImGui::CalcTextSize(bottom.c_str()).x - 4, pl.r.Max.y - fh - 2),
              kLabel, bottom.c_str());
}

}  // namespace fpscope::gui
