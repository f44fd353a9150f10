// The replay timeline: step slider, loss-scale track and event strips.
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
  // Loss curves (mean LOSS per step), one per run in its colour: the runs side by side.
  std::string loss_runs;
  for (size_t i = 0; i < runs_.size(); ++i) {
    const auto& r = runs_[i].run;
    if (!r || !r->ok || r->loss.empty() || (in_rank_set(i) && i != primary_)) continue;
    const std::string name = std::string("Run ") + static_cast<char>('A' + i);
    legend_item(col32(run_color(i)), ("loss " + name).c_str(), Swatch::Line);
    loss_runs += (loss_runs.empty() ? "" : ",") + name;
  }
  fact("timeline_loss_runs", loss_runs);
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
  loss_curves(pl);
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
      for (size_t k = 0; k < runs_.size(); ++k) {
        const auto& r = runs_[k].run;
        if (!r || !r->ok || r->loss.empty() || (in_rank_set(k) && k != primary_)) continue;
        const auto& lc = r->loss;
        const auto j = std::lower_bound(lc.steps.begin(), lc.steps.end(), static_cast<double>(s));
        if (j != lc.steps.end() && *j == static_cast<double>(s))
          tip += std::string("\nloss Run ") + static_cast<char>('A' + k) + " " +
                 fmt_g(lc.loss[static_cast<size_t>(j - lc.steps.begin())], 6);
      }
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

}  // namespace fpscope::gui
