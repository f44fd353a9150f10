// Tensor browser (sortable, filterable, severity-coloured table) and the selected tensor's
// details with the live what-if readout.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "app.h"

namespace fpscope::gui {

namespace {

struct ColDesc {
  const char* name;
  Col col;
  int target;
  float width;
  const char* help;
};

std::vector<ColDesc> columns() {
  std::vector<ColDesc> c = {
      {"Sev", Col::Severity, 0, 64, "worst problem the analysis found (sortable by its score)"},
      {"Tensor", Col::Id, 0, 190, "tensor id (gemm#k.role or scope) and name"},
      {"Role", Col::Role, 0, 34, "GEMM operand: A, B, C, D (output), W (watched weight)"},
      {"Op", Col::Op, 0, 70, "intercepted call"},
      {"Dtype", Col::Dtype, 0, 44, "storage type"},
      {"Shape", Col::Shape, 0, 76, "rows x cols as stored"},
      {"amax", Col::Amax, 0, 66, "largest finite |x| over all observations"},
      {"NaN/Inf", Col::NonFinite, 0, 52, "NaN and Inf elements in the data itself"},
  };
  static const char* kMetric[4] = {"ovf", "unf", "sub", "SQNR"};
  static const Col kCols[4] = {Col::Overflow, Col::Underflow, Col::Subnormal, Col::Sqnr};
  static const char* kHelp[4] = {"fraction that would overflow (Inf/NaN)",
                                 "fraction that would flush to zero",
                                 "fraction that would become subnormal",
                                 "signal-to-quantization-noise ratio of the cast, dB"};
  static char names[kNumTargets][4][24];
  // FP16 first: it is the format most runs are asked about; then BF16, E4M3, E5M2.
  const Format order[kNumTargets] = {Format::FP16, Format::BF16, Format::E4M3, Format::E5M2};
  for (Format f : order) {
    const int t = target_index(f);
    for (int m = 0; m < 4; ++m) {
      std::snprintf(names[t][m], sizeof names[t][m], "%s %s", spec(f).name, kMetric[m]);
      c.push_back({names[t][m], kCols[m], t, m == 3 ? 58.0f : 54.0f, kHelp[m]});
    }
  }
  return c;
}

std::string pct(double f) {
  if (!(f > 0)) return "0";
  char b[32];
  if (f < 1e-4) return "<.01%";
  std::snprintf(b, sizeof b, f < 0.1 ? "%.2f%%" : "%.1f%%", f * 100.0);
  return b;
}

std::string db(double v) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return "exact";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

void cell_bg(analysis::Severity s) {
  if (s != analysis::Severity::None)
    ImGui::TableSetBgColor(ImGuiTableBgTarget_CellBg, pack(severity_color(s)));
}

}  // namespace

void App::table_panel(ImVec2 size) {
  const Run* p = primary();
  ImGui::BeginChild("tensors", size, true);
  ImGui::TextUnformatted("Tensors");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(280);
  if (ImGui::InputTextWithHint("##filter", "filter: id/name/op  sev:warning  !word", &filter_))
    rows_dirty_ = true;
  ImGui::SameLine(0, 16);
  ImGui::TextDisabled("%zu of %zu", rows_.size(), p->analysis.risks.size());
  ImGui::SameLine(0, 16);
  for (int s = 1; s <= 4; ++s) {
    const auto sev = static_cast<analysis::Severity>(s);
    legend_item(col32(severity_color(sev)), analysis::severity_name(sev), true);
  }
  ImGui::NewLine();

  const auto cols = columns();
  const ImGuiTableFlags flags =
      ImGuiTableFlags_Sortable | ImGuiTableFlags_SortMulti | ImGuiTableFlags_ScrollX |
      ImGuiTableFlags_ScrollY | ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV |
      ImGuiTableFlags_Resizable | ImGuiTableFlags_Hideable | ImGuiTableFlags_Reorderable |
      ImGuiTableFlags_SizingFixedFit;
  if (ImGui::BeginTable("tensor_table", static_cast<int>(cols.size()), flags)) {
    ImGui::TableSetupScrollFreeze(2, 1);
    for (size_t i = 0; i < cols.size(); ++i) {
      ImGuiTableColumnFlags cf = ImGuiTableColumnFlags_WidthFixed;
      if (i == 0) cf |= ImGuiTableColumnFlags_DefaultSort | ImGuiTableColumnFlags_PreferSortDescending;
      if (cols[i].col >= Col::Amax) cf |= ImGuiTableColumnFlags_PreferSortDescending;
      if (i == 1) cf |= ImGuiTableColumnFlags_NoHide;
      ImGui::TableSetupColumn(cols[i].name, cf, cols[i].width, static_cast<ImGuiID>(i));
    }
    // Header row with tooltips.
    ImGui::TableNextRow(ImGuiTableRowFlags_Headers);
    for (int i = 0; i < static_cast<int>(cols.size()); ++i) {
      if (!ImGui::TableSetColumnIndex(i)) continue;
      ImGui::TableHeader(cols[static_cast<size_t>(i)].name);
      if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", cols[static_cast<size_t>(i)].help);
    }
    if (ImGuiTableSortSpecs* ss = ImGui::TableGetSortSpecs(); ss && ss->SpecsDirty) {
      sort_.clear();
      for (int i = 0; i < ss->SpecsCount; ++i) {
        const auto& s = ss->Specs[i];
        const auto& d = cols[static_cast<size_t>(s.ColumnUserID)];
        sort_.push_back({d.col, d.target, s.SortDirection == ImGuiSortDirection_Descending});
      }
      ss->SpecsDirty = false;
      rows_dirty_ = true;
    }
    const auto& risks = p->analysis.risks;
    const analysis::RiskOptions& ropt = p->analysis.options.risk;
    ImGuiListClipper clip;
    clip.Begin(static_cast<int>(rows_.size()));
    int sel_pos = -1;
    if (scroll_to_sel_) {
      for (size_t i = 0; i < rows_.size(); ++i)
        if (sel_ >= 0 && risks[rows_[i]].tensor == static_cast<uint32_t>(sel_)) sel_pos = static_cast<int>(i);
      if (sel_pos >= 0) clip.ForceDisplayRangeByIndices(sel_pos, sel_pos + 1);
    }
    while (clip.Step()) {
      for (int ri = clip.DisplayStart; ri < clip.DisplayEnd; ++ri) {
        const auto& r = risks[rows_[static_cast<size_t>(ri)]];
        const bool selected = sel_ >= 0 && r.tensor == static_cast<uint32_t>(sel_);
        ImGui::TableNextRow();
        ImGui::PushID(ri);
        for (int ci = 0; ci < static_cast<int>(cols.size()); ++ci) {
          if (!ImGui::TableSetColumnIndex(ci)) continue;
          const auto& d = cols[static_cast<size_t>(ci)];
          const auto& f = r.formats[static_cast<size_t>(d.target)];
          switch (d.col) {
            case Col::Severity:
              cell_bg(r.severity);
              if (ImGui::Selectable(analysis::severity_name(r.severity), selected,
                                    ImGuiSelectableFlags_SpanAllColumns |
                                        ImGuiSelectableFlags_AllowItemOverlap))
                select_tensor(r.tensor);
              if (selected && scroll_to_sel_ && ri == sel_pos) {
                ImGui::SetScrollHereY(0.3f);
                scroll_to_sel_ = false;
              }
              if (ImGui::IsItemHovered() && !r.severity_reason.empty())
                ImGui::SetTooltip("%s", r.severity_reason.c_str());
              break;
            case Col::Id:
              ImGui::TextUnformatted(r.id.c_str());
              if (!r.name.empty() && r.name != r.id) {
                ImGui::SameLine();
                ImGui::TextDisabled("%s", r.name.c_str());
              }
              break;
            case Col::Role:
              ImGui::TextUnformatted(trace::role_name(r.role));
              break;
            case Col::Op:
              ImGui::TextUnformatted(r.op.c_str());
              break;
            case Col::Dtype:
              ImGui::TextUnformatted(spec(r.dtype).name);
              break;
            case Col::Shape:
              ImGui::TextUnformatted(shape_text(r.rows, r.cols).c_str());
              break;
            case Col::Amax:
              ImGui::Text("%.4g", static_cast<double>(r.amax));
              break;
            case Col::NonFinite: {
              const uint64_t nf = r.nan + r.pos_inf + r.neg_inf;
              if (nf > 0) cell_bg(analysis::Severity::Critical);
              ImGui::Text("%llu", static_cast<unsigned long long>(nf));
              if (nf > 0 && ImGui::IsItemHovered())
                ImGui::SetTooltip("%llu NaN, %llu +Inf, %llu -Inf; first at step %lld",
                                  static_cast<unsigned long long>(r.nan),
                                  static_cast<unsigned long long>(r.pos_inf),
                                  static_cast<unsigned long long>(r.neg_inf),
                                  static_cast<long long>(r.first_nonfinite_step));
              break;
            }
            default: {
              std::string why;
              const auto sev = metric_severity(f, d.col, ropt, &why);
              cell_bg(sev);
              const double v = d.col == Col::Overflow    ? f.overflow_frac
                               : d.col == Col::Underflow ? f.underflow_frac
                               : d.col == Col::Subnormal ? f.subnormal_frac
                                                         : f.sqnr_db;
              const std::string s = d.col == Col::Sqnr ? db(v) : pct(v);
              if (v == 0.0 && d.col != Col::Sqnr) {
                ImGui::TextDisabled("0");
              } else {
                ImGui::TextUnformatted(s.c_str());
              }
              if (ImGui::IsItemHovered()) {
                const uint64_t n = d.col == Col::Overflow    ? f.overflow
                                   : d.col == Col::Underflow ? f.underflow
                                                             : f.subnormal;
                if (d.col == Col::Sqnr) {
                  ImGui::SetTooltip("%s: SQNR %.3f dB (nominal %.1f dB)%s%s", spec(f.format).name,
                                    f.sqnr_db, analysis::nominal_sqnr_db(f.format),
                                    why.empty() ? "" : "\n", why.c_str());
                } else {
                  ImGui::SetTooltip("%s: %llu of %llu elements (%.6g)%s%s%s", spec(f.format).name,
                                    static_cast<unsigned long long>(n),
                                    static_cast<unsigned long long>(f.eligible), v,
                                    f.scaled ? "  [recorded at a scale != 1]" : "",
                                    why.empty() ? "" : "\n", why.c_str());
                }
              }
            }
          }
        }
        ImGui::PopID();
      }
    }
    ImGui::EndTable();
  }
  ImGui::EndChild();
  region("table");
}

void App::detail_panel(ImVec2 size) {
  const Run* p = primary();
  ImGui::BeginChild("detail", size, true);
  if (sel_ < 0 || static_cast<uint32_t>(sel_) >= p->model->num_tensors()) {
    ImGui::TextDisabled("Select a tensor in the table.");
    ImGui::EndChild();
    return;
  }
  const auto& info = p->model->tensor(static_cast<uint32_t>(sel_));
  const analysis::TensorRisk* risk = nullptr;
  for (const auto& r : p->analysis.risks)
    if (r.tensor == static_cast<uint32_t>(sel_)) risk = &r;
  const uint64_t step = cur_step();
  ImGui::Text("%s", info.id.c_str());
  if (!info.name.empty()) {
    ImGui::SameLine();
    ImGui::TextDisabled("%s", info.name.c_str());
  }
  ImGui::SameLine();
  ImGui::TextDisabled("  %s  %s  %s  %s", info.op.c_str(), trace::role_name(info.role),
                      spec(info.dtype).name, shape_text(info.rows, info.cols).c_str());
  if (risk && risk->severity != analysis::Severity::None) {
    const Rgb c = severity_color(risk->severity);
    ImGui::PushStyleColor(ImGuiCol_Button, col32(c));
    ImGui::PushStyleColor(ImGuiCol_ButtonHovered, col32(c));
    ImGui::SmallButton(analysis::severity_name(risk->severity));
    ImGui::PopStyleColor(2);
    ImGui::SameLine();
    ImGui::TextWrapped("%s", risk->severity_reason.c_str());
  }

  const TensorData* td = tdata_.current() ? tdata_.value().get() : nullptr;
  if (!td) {
    ImGui::TextDisabled("computing...");
    ImGui::EndChild();
    return;
  }
  const auto& ds = td->drift;
  const auto it = std::lower_bound(ds.steps.begin(), ds.steps.end(), step);
  const int64_t di = (it != ds.steps.end() && *it == step) ? it - ds.steps.begin() : -1;
  const int64_t si = td->steps.index_of(step);

  // Left: what the trace recorded at this step. Right: the what-if.
  const float half = ImGui::GetContentRegionAvail().x * 0.44f;
  ImGui::BeginGroup();
  if (di >= 0) {
    ImGui::Text("Recorded at step %llu", static_cast<unsigned long long>(step));
    ImGui::SameLine();
    ImGui::TextDisabled("amax %.4g", static_cast<double>(ds.amax[static_cast<size_t>(di)]));
  } else {
    ImGui::Text("Step %llu: not observed", static_cast<unsigned long long>(step));
  }
  if (ImGui::BeginTable("at_step", 4, ImGuiTableFlags_BordersInnerH | ImGuiTableFlags_SizingFixedFit,
                        ImVec2(half, 0))) {
    ImGui::TableSetupColumn("format");
    ImGui::TableSetupColumn("overflow");
    ImGui::TableSetupColumn("underflow");
    ImGui::TableSetupColumn("SQNR dB");
    ImGui::TableHeadersRow();
    for (int t = 0; t < kNumTargets; ++t) {
      ImGui::TableNextRow();
      ImGui::TableSetColumnIndex(0);
      const Format f = kTargets[t];
      ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(col32(format_color(f))), "%s", spec(f).name);
      if (di < 0) continue;
      const auto i = static_cast<size_t>(di);
      ImGui::TableSetColumnIndex(1);
      ImGui::TextUnformatted(pct(ds.overflow_frac[static_cast<size_t>(t)][i]).c_str());
      ImGui::TableSetColumnIndex(2);
      ImGui::TextUnformatted(pct(ds.underflow_frac[static_cast<size_t>(t)][i]).c_str());
      ImGui::TableSetColumnIndex(3);
      ImGui::TextUnformatted(db(ds.sqnr_db[static_cast<size_t>(t)][i]).c_str());
    }
    ImGui::EndTable();
  }
  // This tensor's findings.
  int shown = 0;
  for (const auto& fnd : p->analysis.findings) {
    if (fnd.tensor != sel_ || shown >= 4) continue;
    ++shown;
    const Rgb c = severity_color(fnd.severity);
    legend_item(col32(c), "", true);
    ImGui::TextWrapped("%s", fnd.title.c_str());
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("%s\n\n%s", fnd.evidence.c_str(), fnd.recommendation.c_str());
  }
  ImGui::EndGroup();

  ImGui::SameLine(0, 20);
  ImGui::BeginGroup();
  ImGui::TextUnformatted("What-if cast");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(80);
  static const Format kWhatIfFormats[4] = {Format::E4M3, Format::E5M2, Format::FP16, Format::BF16};
  if (ImGui::BeginCombo("##wfmt", spec(wcfg_.format).name)) {
    for (Format f : kWhatIfFormats)
      if (ImGui::Selectable(spec(f).name, f == wcfg_.format)) wcfg_.format = f;
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  int mode = static_cast<int>(wcfg_.mode);
  ImGui::RadioButton("x 2^k", &mode, 0);
  ImGui::SameLine();
  ImGui::RadioButton("delayed scaling", &mode, 1);
  wcfg_.mode = static_cast<ScaleMode>(mode);
  if (wcfg_.mode == ScaleMode::Pow2) {
    ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x - 90);
    ImGui::SliderInt("##pow2", &wcfg_.pow2, -40, 40, "scale 2^%d");
    ImGui::SameLine();
    if (ImGui::Button("fit amax") && si >= 0) {
      // Largest power of two that keeps this step's amax within the format.
      const float a = td->steps.amax[static_cast<size_t>(si)];
      if (a > 0) wcfg_.pow2 = static_cast<int>(std::floor(std::log2(max_finite(wcfg_.format) / a)));
    }
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("scale = largest 2^k with amax * 2^k <= max");
  } else {
    ImGui::SetNextItemWidth(90);
    ImGui::InputInt("history", &wcfg_.history_len, 1, 16);
    wcfg_.history_len = std::clamp(wcfg_.history_len, 1, 65536);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(90);
    ImGui::InputInt("margin", &wcfg_.margin);
    wcfg_.margin = std::clamp(wcfg_.margin, -16, 32);
    ImGui::SameLine();
    bool recent = wcfg_.algo == AmaxAlgo::MostRecent;
    ImGui::Checkbox("most recent", &recent);
    wcfg_.algo = recent ? AmaxAlgo::MostRecent : AmaxAlgo::Max;
  }
  // Live readout at the current step, straight from the histogram.
  const WhatIfSeries* ws =
      (whatif_.current() && whatif_.value()->config == wcfg_) ? whatif_.value().get() : nullptr;
  float scale = pow2f(std::clamp(wcfg_.pow2, -126, 127));
  bool have_scale = wcfg_.mode == ScaleMode::Pow2;
  if (wcfg_.mode == ScaleMode::Delayed && ws && si >= 0) {
    scale = ws->scale[static_cast<size_t>(si)];
    have_scale = true;
  }
  if (si >= 0 && have_scale) {
    const auto h = step_whatif(td->steps, static_cast<size_t>(si), wcfg_.format, scale);
    const double n = static_cast<double>(td->steps.eligible[static_cast<size_t>(si)]);
    auto range = [&](uint64_t lo, uint64_t hi) {
      char b[96];
      if (lo == hi) {
        std::snprintf(b, sizeof b, "%llu (%s)", static_cast<unsigned long long>(lo),
                      pct(n > 0 ? static_cast<double>(lo) / n : 0).c_str());
      } else {
        std::snprintf(b, sizeof b, "%llu..%llu (%s..%s)", static_cast<unsigned long long>(lo),
                      static_cast<unsigned long long>(hi),
                      pct(n > 0 ? static_cast<double>(lo) / n : 0).c_str(),
                      pct(n > 0 ? static_cast<double>(hi) / n : 0).c_str());
      }
      return std::string(b);
    };
    ImGui::Text("step %llu: scale %.6g (2^%.2f) of %.0f elements", static_cast<unsigned long long>(step),
                static_cast<double>(scale), std::log2(static_cast<double>(scale)), n);
    const ImVec4 red(1.0f, 0.45f, 0.4f, 1.0f), blue(0.5f, 0.7f, 1.0f, 1.0f);
    ImGui::TextColored(h.overflow_hi ? red : ImVec4(0.7f, 0.7f, 0.7f, 1), "  overflow   %s",
                       range(h.overflow_lo, h.overflow_hi).c_str());
    ImGui::TextColored(h.underflow_hi ? blue : ImVec4(0.7f, 0.7f, 0.7f, 1), "  underflow  %s",
                       range(h.underflow_lo, h.underflow_hi).c_str());
    ImGui::Text("  subnormal  %s", range(h.subnormal_lo, h.subnormal_hi).c_str());
  } else if (si < 0) {
    ImGui::TextDisabled("step %llu: no observation of this tensor", static_cast<unsigned long long>(step));
  } else {
    ImGui::TextDisabled("computing the delayed scales...");
  }
  if (ws) {
    const double n = static_cast<double>(ws->eligible);
    ImGui::Text("whole run: %llu of %zu steps saturate%s", static_cast<unsigned long long>(ws->overflow_steps),
                ws->scale.size(),
                ws->first_overflow_step >= 0
                    ? (", first at step " + std::to_string(ws->first_overflow_step)).c_str()
                    : "");
    ImGui::Text("  overflow %s..%s, underflow %s..%s of elements",
                pct(n > 0 ? static_cast<double>(ws->total.overflow_lo) / n : 0).c_str(),
                pct(n > 0 ? static_cast<double>(ws->total.overflow_hi) / n : 0).c_str(),
                pct(n > 0 ? static_cast<double>(ws->total.underflow_lo) / n : 0).c_str(),
                pct(n > 0 ? static_cast<double>(ws->total.underflow_hi) / n : 0).c_str());
  } else {
    ImGui::TextDisabled("whole run: computing...");
  }
  ImGui::TextDisabled("counts from the exponent histogram: a..b = bounds (exact when equal)");
  ImGui::EndGroup();
  ImGui::EndChild();
  region("detail");
}

}  // namespace fpscope::gui
