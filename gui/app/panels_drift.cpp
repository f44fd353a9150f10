// Format drift: SQNR per format of the selected tensor over steps, overlaid across runs; with
// block statistics (trace format 1.3) also each measured block format's SQNR, and where its cast
// loses elements.
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
  // Block formats measured on this tensor (primary run): one compact button opens their toggles
  // (six more checkboxes would not fit the header line).
  const uint32_t bmask = td ? td->steps.blocks.mask : 0u;
  if (bmask != 0) {
    int on = 0;
    for (int f = 0; f < kNumBlockFormats; ++f) on += (bmask >> f & 1u) && drift_block_on_[f];
    const std::string label = "block formats (" + std::to_string(on) + ")";
    if (ImGui::SmallButton(label.c_str())) ImGui::OpenPopup("drift_blocks");
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip(
          "SQNR of the block-scaled casts (MXFP8/MXFP6/MXFP4/NVFP4) of this tensor;\n"
          "ticks along the bottom: steps where a cast loses (flushes or saturates) at least %s\n"
          "of the elements (the block_loss finding's threshold)",
          pct(primary()->analysis.options.findings.block_loss_info).c_str());
    if (ImGui::BeginPopup("drift_blocks")) {
      for (int f = 0; f < kNumBlockFormats; ++f) {
        if (!(bmask >> f & 1u)) continue;
        ImGui::PushID(f + 60);
        const Rgb c = block_format_color(f);
        ImGui::PushStyleColor(ImGuiCol_Text, v4(c));
        ImGui::PushStyleColor(ImGuiCol_CheckMark, v4(c));
        ImGui::Checkbox(block_format_label(f).c_str(), &drift_block_on_[f]);
        ImGui::PopStyleColor(2);
        ImGui::PopID();
      }
      ImGui::EndPopup();
    }
    ImGui::SameLine();
  }
  ImGui::NewLine();
  const char* why = nullptr;
  if (no_data(&why)) {
    no_data_message(why);
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
  std::vector<Series> series{{&td->drift,
                              in_rank_set(primary_)
                                  ? "rank " + std::to_string(runs_[primary_].rank)
                                  : "Run " + std::string(1, static_cast<char>('A' + primary_)),
                              false}};
  for (const auto& o : td->others)
    series.push_back({&o.drift, "Run " + std::string(1, static_cast<char>('A' + o.run)), true});
  for (const auto& s : series)
    legend_item(IM_COL32(210, 210, 210, 255), s.label.c_str(),
                s.dashed ? Swatch::Dashed : Swatch::Line);
  size_t other_runs = 0;  // runs to compare with (the ranks of a rank set are not)
  for (size_t i = 0; i < runs_.size(); ++i) other_runs += i != primary_ && !in_rank_set(i);
  if (td->others.empty() && other_runs > 0) {
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
    for (int f = 0; f < kNumBlockFormats; ++f)
      drift_block_[f] = (bmask >> f & 1u) ? block_series(td->steps.blocks, f) : BlockSeries{};
    drift_cache_gen_ = tdata_.generation();
  }
  const auto block_on = [&](int f) { return (bmask >> f & 1u) && drift_block_on_[f]; };
  double lo = 1e300, hi = -1e300;
  for (size_t k = 0; k < series.size(); ++k)
    for (int t = 0; t < kNumTargets; ++t)
      if (drift_fmt_[t])
        for (double v : drift_y_[k * kNumTargets + static_cast<size_t>(t)])
          if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  for (int f = 0; f < kNumBlockFormats; ++f)
    if (block_on(f))
      for (double v : drift_block_[f].sqnr_db)
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (lo > hi) lo = 0, hi = 100;
  lo = std::floor(lo / 10) * 10 - 5;
  hi = std::ceil(hi / 10) * 10 + 5;
  const float fh = ImGui::GetFontSize();
  // With block formats the bar labels take two lines ("MXFP8" over "E4M3").
  const float bars_h = std::floor(fh * (bmask ? 4.7f : 3.7f));
  ImVec2 avail = ImGui::GetContentRegionAvail();
  // Other runs (not ranks): the difference to the reference under the SQNR plot; one line when
  // there is nothing to plot (no sketches, or still computing).
  float diff_h = 0.0f;
  if (this->other_runs() > 0) {
    const Comparison* c = comparison();
    // Half the plots' room, leaving the SQNR plot at least its minimum (60 px).
    const float room = avail.y - bars_h - ImGui::GetStyle().ItemSpacing.y;
    diff_h = c && c->measurable() ? std::floor(std::min(room * 0.5f, room - 60.0f))
             : c                  ? 2.0f * ImGui::GetTextLineHeightWithSpacing()  // the note
                                  : ImGui::GetTextLineHeightWithSpacing();                         // computing
  }
  double clicked = -1;
  PlotOpts po;
  po.clicked_x = &clicked;
  po.left_margin = 52.0f;  // the ticks say "dB"; the legend line says higher is better
  po.x_label = "step";
  const Plot pl = begin_plot("##drift", ImVec2(avail.x, std::max(60.0f, avail.y - bars_h - diff_h)),
                             &xview_, lo, hi, YFmt::Db, po);
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
  // Block formats (primary run): SQNR lines, and one tick row per format at the bottom edge
  // marking the steps where its cast loses at least block_loss_info of the elements.
  {
    const TensorSteps& st = td->steps;
    const double loss_min = primary()->analysis.options.findings.block_loss_info;
    int row = 0;
    for (int f = 0; f < kNumBlockFormats; ++f) {
      if (!block_on(f)) continue;
      const BlockSeries& b = drift_block_[f];
      std::vector<double> y = b.sqnr_db;
      for (double& v : y)
        if (std::isinf(v)) v = hi;
      const ImU32 c = col32(block_format_color(f));
      plot_series(pl, st.step_x, y, c, {1.4f, false, false, /*mark_nonfinite=*/false});
      const float y1 = pl.r.Max.y - 2.0f - 5.0f * static_cast<float>(row++);
      event_ticks(
          pl, st.steps, [&](size_t i) { return b.loss[i] >= loss_min; }, y1 - 4.0f, y1, c);
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
    if (bmask != 0) {
      const TensorSteps& st = td->steps;
      const int64_t i = nearest(st.steps, pl.x_at(pl.mouse.x));
      if (i >= 0) {
        tip += "block formats, step " + std::to_string(st.steps[static_cast<size_t>(i)]) + ":";
        for (int f = 0; f < kNumBlockFormats; ++f) {
          if (!(bmask >> f & 1u)) continue;
          const auto k = static_cast<size_t>(i);
          const auto q = shown_sqnr(drift_block_[f].sqnr_db[k], 0.0);
          const double loss = drift_block_[f].loss[k];
          tip += "\n  " + block_format_label(f) + "  " + sqnr_text(q) +
                 (q.kind == SqnrKind::Value ? " dB" : "") +
                 (std::isnan(loss) ? std::string() : "  loss " + pct(loss));
        }
        tip += "\n";
      }
    }
    if (tip.find("n/a") != std::string::npos) tip += std::string("n/a: ") + kSqnrUndefinedHelp;
    if (!tip.empty()) ImGui::SetTooltip("%s", tip.c_str());
  }
  if (clicked >= 0) {
    const int64_t i = nearest(primary()->timeline_steps, clicked);
    if (i >= 0) set_step_index(i);
  }
  if (diff_h > 0) difference_plot(td->tensor, diff_h);
  // Side-by-side bars for the current step: one group per format, one bar per run, each with
  // its value; n/a where the format overflows at this step.
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 o = ImGui::GetCursorScreenPos();
  dl->AddText(ImVec2(o.x, o.y + 2), kLabel, ("step " + std::to_string(cur_step())).c_str());
  dl->AddText(ImVec2(o.x, o.y + 2 + fh), kDim, "SQNR dB");
  std::vector<int> bfs;  // block formats shown as bar groups after the cast targets
  for (int f = 0; f < kNumBlockFormats; ++f)
    if (block_on(f)) bfs.push_back(f);
  const float gx = o.x + 84,
              gw = (avail.x - 90) / static_cast<float>(kNumTargets + static_cast<int>(bfs.size()));
  const float base = o.y + bars_h - (bmask ? 2 * fh : fh) - 4, top = o.y + fh + 4;
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
  // Block formats: one bar each (primary run), its SQNR above, its name under it on two lines.
  const int64_t bi = td->steps.index_of(cur_step());
  for (size_t g = 0; g < bfs.size(); ++g) {
    const int f = bfs[g];
    const float x0 = gx + gw * static_cast<float>(kNumTargets + static_cast<int>(g));
    const ImU32 fc = col32(block_format_color(f));
    const std::string name = block_format_label(f);
    const size_t sp = name.find(' ');
    dl->AddText(ImVec2(x0, base + 2), fc, name.substr(0, sp).c_str());
    if (sp != std::string::npos)
      dl->AddText(ImVec2(x0, base + 2 + fh), fc, name.substr(sp + 1).c_str());
    if (bi < 0) continue;
    const auto i = static_cast<size_t>(bi);
    const double loss = drift_block_[f].loss[i];
    if (std::isnan(loss)) continue;  // not measured at this step
    const auto q = shown_sqnr(drift_block_[f].sqnr_db[i], 0.0);
    const float bw = std::min(34.0f, gw - 12);
    const std::string txt = sqnr_text(q);
    float by = base;
    if (q.kind == SqnrKind::Value || q.kind == SqnrKind::Exact) {
      const double vv = q.kind == SqnrKind::Exact ? bmax : std::clamp(q.db, 0.0, bmax);
      by = base - static_cast<float>(vv / bmax) * (base - top);
      dl->AddRectFilled(ImVec2(x0, by), ImVec2(x0 + bw - 4, base), fc);
      regions_["drift_bar:" + name] = ImVec4(x0, by, bw - 4, base - by);
    }
    const ImVec2 ts = ImGui::CalcTextSize(txt.c_str());
    dl->AddText(ImVec2(x0 + (bw - 4 - ts.x) * 0.5f, by - ts.y - 1),
                q.kind == SqnrKind::NoSignal ? kDim : kLabel, txt.c_str());
    if (ImGui::IsMouseHoveringRect(ImVec2(x0, top - fh), ImVec2(x0 + gw - 4, base + 2 * fh)))
      ImGui::SetTooltip("%s at step %llu: SQNR %s%s, loss %s (flushed + saturated elements)",
                        name.c_str(), static_cast<unsigned long long>(cur_step()), txt.c_str(),
                        q.kind == SqnrKind::Value ? " dB" : "", pct(loss).c_str());
  }
  ImGui::Dummy(ImVec2(avail.x, bars_h));
  ImGui::EndChild();
  region("drift");
}

}  // namespace fpscope::gui
