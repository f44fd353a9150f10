// Tensor browser (sortable, filterable, severity-coloured table) and the selected tensor's
// details with the live what-if readout.
// Size: ~660 lines: the table's column model, its two header rows and its cells belong together
// (the block-format cells live in panels_blocks.cpp).
#include <imgui.h>
#include <imgui_internal.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "app.h"
#include "panels_common.h"

namespace fpscope::gui {

namespace {

struct ColDesc {
  const char* name;  // header text (per-format columns: the metric; the format is the group)
  Col col;
  int target;   // kTargets index of a per-format column, -1 otherwise
  float width;  // minimum content width; widened to fit the header
  const char* help;
  int block = -1;  // kBlockFormats index of a block-format column, -1 otherwise
  // The format group a column belongs to (-1: none): targets first, then block formats.
  int group() const { return target >= 0 ? target : (block >= 0 ? kNumTargets + block : -1); }
};

// FP16 first: it is the format most runs are asked about; then BF16, E4M3, E5M2.
constexpr Format kOrder[kNumTargets] = {Format::FP16, Format::BF16, Format::E4M3, Format::E5M2};

const std::vector<ColDesc>& base_columns() {
  static const std::vector<ColDesc> c = [] {
    std::vector<ColDesc> v = {
        {"Sev", Col::Severity, -1, 58, "worst problem the analysis found (sortable by its score)"},
        {"Tensor", Col::Id, -1, 150, "tensor id (gemm#k.role or scope) and name"},
        {"Role", Col::Role, -1, 20, "GEMM operand: A, B, C, D (output), W (watched weight)"},
        {"Op", Col::Op, -1, 46, "intercepted call"},
        {"Dtype", Col::Dtype, -1, 30, "storage type"},
        {"Shape", Col::Shape, -1, 64, "rows x cols as stored"},
        {"amax", Col::Amax, -1, 72, "largest finite |x| over all observations"},
        {"NaN/Inf", Col::NonFinite, -1, 20, "NaN and Inf elements in the data itself"},
    };
    static const char* kMetric[4] = {"ovf", "unf", "sub", "SQNR"};
    static const Col kCols[4] = {Col::Overflow, Col::Underflow, Col::Subnormal, Col::Sqnr};
    static const char* kHelp[4] = {
        "overflow: fraction of elements that would become Inf/NaN in this format",
        "underflow: fraction of nonzero elements that would flush to zero in this format",
        "subnormal: fraction that would land in this format's subnormal range (precision lost)",
        "signal-to-quantization-noise ratio of the cast, dB (higher is better);\n"
        "n/a: the format overflows, so the SQNR is undefined"};
    for (Format f : kOrder)
      for (int m = 0; m < 4; ++m)
        v.push_back({kMetric[m], kCols[m], target_index(f), m == 3 ? 40.0f : 44.0f, kHelp[m]});
    return v;
  }();
  return c;
}

// The columns of a run: the base columns, then a loss and an SQNR column per block format the
// trace measured (none when it has no block statistics); with other runs whose value difference
// is measurable, the divergence column right after the tensor's (visible without scrolling).
// Rebuilt only when that changes.
const std::vector<ColDesc>& columns(const std::vector<int>& block_formats, bool divergence) {
  static std::vector<int> for_formats{-1};
  static bool for_divergence = false;
  static std::vector<ColDesc> v;
  if (for_formats != block_formats || for_divergence != divergence) {
    for_formats = block_formats;
    for_divergence = divergence;
    v = base_columns();
    if (divergence)
      v.insert(v.begin() + 2,
               {"diverge", Col::Divergence, -1, 96,
                "largest ||run - reference|| / ||reference|| over the other runs (value "
                "sketches) and the first step above 1 %;\nsorts earliest divergence first "
                "(first step > 1 %, then > 10 %, then the size)"});
    for (int f : block_formats) {
      v.push_back({"loss", Col::BlockLoss, -1, 44,
                   "loss: fraction of the elements that the block-scaled cast flushes to zero or "
                   "saturates, over the run",
                   f});
      v.push_back({"SQNR", Col::BlockSqnr, -1, 40,
                   "SQNR of the block-scaled cast over the run, dB (higher is better)", f});
    }
  }
  return v;
}

// First column of each format group (the group label row draws the format name there).
bool group_start(const std::vector<ColDesc>& c, size_t i) {
  return c[i].group() >= 0 && (i == 0 || c[i - 1].group() != c[i].group());
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
    legend_item(col32(severity_color(sev)), analysis::severity_name(sev), Swatch::Box);
  }
  ImGui::NewLine();

  const Comparison* cmp = comparison();
  const bool divergence = cmp && cmp->measurable();
  const auto& cols = columns(p->blocks.formats, divergence);
  // A trace with block columns has another column count: a table of its own (ImGui keeps the
  // widths, order and sort per table id).
  std::string table_id = divergence ? "tensor_table_div" : "tensor_table";
  fact("table_divergence", divergence ? "shown" : "");
  fact("table_first", rows_.empty() ? "" : p->analysis.risks[rows_.front()].id);
  std::string block_names;  // for the tests (facts): the block-format column groups
  for (int f : p->blocks.formats) {
    table_id += "_" + std::to_string(f);
    block_names += (block_names.empty() ? "" : ", ") + block_format_label(f);
  }
  fact("table_block_formats", block_names);
  const ImGuiTableFlags flags = ImGuiTableFlags_Sortable | ImGuiTableFlags_SortMulti |
                                ImGuiTableFlags_ScrollX | ImGuiTableFlags_ScrollY |
                                ImGuiTableFlags_BordersInnerH | ImGuiTableFlags_BordersInnerV |
                                ImGuiTableFlags_Resizable | ImGuiTableFlags_Hideable |
                                ImGuiTableFlags_Reorderable | ImGuiTableFlags_SizingFixedFit;
  const ImGuiStyle& st = ImGui::GetStyle();
  // Header text plus the sort arrow ImGui reserves, so that no title is ever cut ("Dty...").
  const float arrow = std::floor(ImGui::GetFontSize() * 0.65f + st.FramePadding.x) + 2.0f;
  // The Tensor column fits "id name" of the longest row (ImGui takes a fixed column's width when
  // the table is first created; resizable afterwards).
  if (tensor_col_w_ <= 0.0f) {
    for (const auto& r : p->analysis.risks) {
      float w = ImGui::CalcTextSize(r.id.c_str()).x;
      if (!r.name.empty() && r.name != r.id)
        w += st.ItemSpacing.x + ImGui::CalcTextSize(r.name.c_str()).x;
      tensor_col_w_ = std::max(tensor_col_w_, w);
    }
    tensor_col_w_ = std::clamp(tensor_col_w_, 150.0f, 300.0f);
  }
  if (ImGui::BeginTable(table_id.c_str(), static_cast<int>(cols.size()), flags)) {
    ImGui::TableSetupScrollFreeze(2, 2);
    for (size_t i = 0; i < cols.size(); ++i) {
      ImGuiTableColumnFlags cf = ImGuiTableColumnFlags_WidthFixed;
      // Default order: severity; with other runs to compare, the earliest divergence.
      if (cols[i].col == (divergence ? Col::Divergence : Col::Severity))
        cf |= ImGuiTableColumnFlags_DefaultSort | ImGuiTableColumnFlags_PreferSortDescending;
      if (cols[i].col >= Col::Amax) cf |= ImGuiTableColumnFlags_PreferSortDescending;
      if (i == 1) cf |= ImGuiTableColumnFlags_NoHide;
      float w = std::max(i == 1 ? tensor_col_w_ : cols[i].width,
                         ImGui::CalcTextSize(cols[i].name).x + arrow);
      // A block format's name ("MXFP8 E4M3") sits in its group's first cell: room for it.
      if (cols[i].block >= 0 && group_start(cols, i))
        w = std::max(w, ImGui::CalcTextSize(block_format_label(cols[i].block).c_str()).x + 2.0f);
      ImGui::TableSetupColumn(cols[i].name, cf, w, static_cast<ImGuiID>(i));
    }
    // Row 1: the format groups, each name in its format colour over its columns (four per cast
    // target, two per block format), with a rule in that colour under them. Row 2: the sortable
    // column titles with tooltips.
    ImGui::TableNextRow(ImGuiTableRowFlags_Headers);
    for (int i = 0; i < static_cast<int>(cols.size()); ++i) {
      const auto& d = cols[static_cast<size_t>(i)];
      if (d.group() < 0 || !ImGui::TableSetColumnIndex(i)) continue;
      const ImU32 fc = d.block >= 0 ? col32(block_format_color(d.block))
                                    : col32(format_color(kTargets[d.target]));
      if (group_start(cols, static_cast<size_t>(i))) {
        ImGui::PushStyleColor(ImGuiCol_Text, fc);
        if (d.block >= 0) {
          const std::string name = block_format_label(d.block);
          ImGui::TextUnformatted(name.c_str());
          const FormatSpec& bs = *kBlockFormats[d.block];
          if (ImGui::IsItemHovered())
            ImGui::SetTooltip(
                "%s (%s elements, blocks of %d, %s scale): what a block-scaled cast would lose\n"
                "(flushed + saturated elements) and its SQNR; recorded by the probe (format 1.3)",
                name.c_str(), bs.name, bs.block_size, bs.block_scale->name);
          regions_["block_group:" + name] =
              ImVec4(ImGui::GetItemRectMin().x, ImGui::GetItemRectMin().y,
                     ImGui::GetItemRectSize().x, ImGui::GetItemRectSize().y);
        } else {
          const Format f = kTargets[d.target];
          ImGui::TextUnformatted(spec(f).name);
          if (ImGui::IsItemHovered())
            ImGui::SetTooltip(
                "%s: overflow, underflow, subnormal fractions and SQNR of a cast to %s",
                spec(f).name, spec(f).name);
        }
        ImGui::PopStyleColor();
      } else {
        ImGui::Dummy(ImVec2(1, ImGui::GetTextLineHeight()));
      }
      const ImVec2 c = ImGui::GetCursorScreenPos();
      const float x0 = c.x - st.CellPadding.x,
                  x1 = c.x + ImGui::GetContentRegionAvail().x + st.CellPadding.x;
      const float y = c.y - st.ItemSpacing.y + 1.0f;
      ImGui::GetWindowDrawList()->AddLine(ImVec2(x0, y), ImVec2(x1, y), fc, 2.0f);
    }
    ImGui::TableNextRow(ImGuiTableRowFlags_Headers);
    float header_bottom = 0.0f;
    for (int i = 0; i < static_cast<int>(cols.size()); ++i) {
      if (!ImGui::TableSetColumnIndex(i)) continue;
      const auto& d = cols[static_cast<size_t>(i)];
      ImGui::TableHeader(d.name);
      header_bottom = std::max(header_bottom, ImGui::GetItemRectMax().y + st.CellPadding.y);
      if (ImGui::IsItemHovered()) {
        if (d.block >= 0) {
          ImGui::SetTooltip("%s %s\n%s", block_format_label(d.block).c_str(), d.name, d.help);
        } else if (d.target >= 0) {
          ImGui::SetTooltip("%s %s\n%s", spec(kTargets[d.target]).name, d.name, d.help);
        } else {
          ImGui::SetTooltip("%s", d.help);
        }
      }
    }
    if (ImGuiTableSortSpecs* ss = ImGui::TableGetSortSpecs(); ss && ss->SpecsDirty) {
      sort_.clear();
      for (int i = 0; i < ss->SpecsCount; ++i) {
        const auto& s = ss->Specs[i];
        const auto& d = cols[static_cast<size_t>(s.ColumnUserID)];
        sort_.push_back({d.col, d.block >= 0 ? d.block : std::max(0, d.target),
                         s.SortDirection == ImGuiSortDirection_Descending});
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
        if (sel_ >= 0 && risks[rows_[i]].tensor == static_cast<uint32_t>(sel_))
          sel_pos = static_cast<int>(i);
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
          const auto& f = r.formats[static_cast<size_t>(std::max(0, d.target))];
          // The cell's content box, for the tests' pixel checks (--regions).
          const ImVec2 c0 = ImGui::GetCursorScreenPos();
          const float cw = ImGui::GetContentRegionAvail().x;
          auto cell_rect = [&](const std::string& name) {
            regions_[name] = ImVec4(c0.x, c0.y, cw, ImGui::GetItemRectMax().y - c0.y);
          };
          switch (d.col) {
            case Col::Severity:
              cell_bg(r.severity);
              if (ImGui::Selectable(
                      analysis::severity_name(r.severity), selected,
                      ImGuiSelectableFlags_SpanAllColumns | ImGuiSelectableFlags_AllowItemOverlap))
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
            case Col::BlockLoss:
            case Col::BlockSqnr:
              panels::block_table_cell(p->blocks, r, d.col, d.block, p->analysis.options.findings);
              if (d.col == Col::BlockLoss)
                cell_rect("cell:" + r.id + ":" + block_format_label(d.block) + ".loss");
              break;
            case Col::Divergence:
              panels::divergence_cell(*cmp, r.tensor);
              cell_rect("cell:" + r.id + ":diverge");
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
              if (d.col == Col::Sqnr) {
                const SqnrShown q = shown_sqnr(f.sqnr_db, static_cast<double>(f.overflow));
                const std::string s = sqnr_text(q);
                if (q.kind == SqnrKind::Undefined || q.kind == SqnrKind::NoSignal) {
                  ImGui::TextDisabled("%s", s.c_str());
                } else {
                  ImGui::TextUnformatted(s.c_str());
                }
                if (ImGui::IsItemHovered()) {
                  if (q.kind == SqnrKind::Undefined) {
                    ImGui::SetTooltip("%s: %s (%s of the elements overflow)", spec(f.format).name,
                                      kSqnrUndefinedHelp,
                                      panels::table_pct(f.overflow_frac).c_str());
                  } else {
                    ImGui::SetTooltip("%s: SQNR %s dB (nominal %.1f dB)%s%s", spec(f.format).name,
                                      s.c_str(), analysis::nominal_sqnr_db(f.format),
                                      why.empty() ? "" : "\n", why.c_str());
                  }
                }
                break;
              }
              const double v = d.col == Col::Overflow    ? f.overflow_frac
                               : d.col == Col::Underflow ? f.underflow_frac
                                                         : f.subnormal_frac;
              if (v == 0.0) {
                ImGui::TextDisabled("0");
              } else {
                ImGui::TextUnformatted(panels::table_pct(v).c_str());
              }
              if (ImGui::IsItemHovered()) {
                const uint64_t n = d.col == Col::Overflow    ? f.overflow
                                   : d.col == Col::Underflow ? f.underflow
                                                             : f.subnormal;
                ImGui::SetTooltip("%s: %llu of %llu elements (%.6g)%s%s%s", spec(f.format).name,
                                  static_cast<unsigned long long>(n),
                                  static_cast<unsigned long long>(f.eligible), v,
                                  f.scaled ? "  [recorded at a scale != 1]" : "",
                                  why.empty() ? "" : "\n", why.c_str());
              }
              if (d.col == Col::Overflow)
                cell_rect("cell:" + r.id + ":" + spec(f.format).name + ".ovf");
            }
          }
          if (ci == 1) cell_rect("row:" + r.id);
        }
        ImGui::PopID();
      }
    }
    // Where data rows are visible: below the frozen header rows (a row scrolled partly under them
    // is clipped there; the tests look at cells inside this rectangle only).
    if (const ImGuiTable* t = ImGui::GetCurrentTable()) {
      const ImRect& b = t->InnerClipRect;
      const float top = std::clamp(header_bottom, b.Min.y, b.Max.y);
      regions_["table_body"] = ImVec4(b.Min.x, top, b.GetWidth(), b.Max.y - top);
    }
    ImGui::EndTable();
  }
  ImGui::EndChild();
  region("table");
}

void App::detail_panel(ImVec2 size) {
  const Run* p = primary();
  ImGui::BeginChild("detail", size, true);
  const char* why = nullptr;
  if (p->trace->observations.empty() || sel_ < 0 ||
      static_cast<uint32_t>(sel_) >= p->model->num_tensors()) {
    no_data(&why);
    no_data_message(why ? why : "Select a tensor in the table.");
    fact("detail_message", why ? why : "");
    ImGui::EndChild();
    region("detail");
    return;
  }
  const auto& info = p->model->tensor(static_cast<uint32_t>(sel_));
  const analysis::TensorRisk* risk = nullptr;
  for (const auto& r : p->analysis.risks)
    if (r.tensor == static_cast<uint32_t>(sel_)) risk = &r;
  const uint64_t step = cur_step();
  ImGui::Text("%s", info.id.c_str());
  if (!info.name.empty() && info.name != info.id) {
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
    fact("detail_message", "computing...");
    ImGui::EndChild();
    region("detail");
    return;
  }
  const auto& ds = td->drift;
  const auto it = std::lower_bound(ds.steps.begin(), ds.steps.end(), step);
  const int64_t di = (it != ds.steps.end() && *it == step) ? it - ds.steps.begin() : -1;
  const int64_t si = td->steps.index_of(step);

  // Two fixed-width columns, each its own child so that wrapped text wraps inside it: left, what
  // the trace recorded at this step and the tensor's findings; right, the what-if cast.
  const ImGuiStyle& st = ImGui::GetStyle();
  const float avail_w = ImGui::GetContentRegionAvail().x;
  const float whatif_w = std::clamp(avail_w * 0.55f, std::min(avail_w, 330.0f), 440.0f);
  const float left_w = std::max(120.0f, avail_w - whatif_w - st.ItemSpacing.x);
  ImGui::BeginChild("recorded", ImVec2(left_w, 0), false);
  if (di >= 0) {
    ImGui::Text("Step %llu", static_cast<unsigned long long>(step));
    ImGui::SameLine();
    ImGui::TextDisabled("recorded, amax %.3g",
                        static_cast<double>(ds.amax[static_cast<size_t>(di)]));
  } else {
    ImGui::Text("Step %llu: not observed", static_cast<unsigned long long>(step));
  }
  if (ImGui::BeginTable("at_step", 4,
                        ImGuiTableFlags_BordersInnerH | ImGuiTableFlags_SizingStretchProp)) {
    ImGui::TableSetupColumn("format", ImGuiTableColumnFlags_WidthStretch, 1.0f);
    ImGui::TableSetupColumn("overflow", ImGuiTableColumnFlags_WidthStretch, 1.3f);
    ImGui::TableSetupColumn("underflow", ImGuiTableColumnFlags_WidthStretch, 1.3f);
    ImGui::TableSetupColumn("SQNR dB", ImGuiTableColumnFlags_WidthStretch, 1.2f);
    ImGui::TableHeadersRow();
    for (Format f : kOrder) {
      const int t = target_index(f);
      ImGui::TableNextRow();
      ImGui::TableSetColumnIndex(0);
      ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(col32(format_color(f))), "%s",
                         spec(f).name);
      if (di < 0) continue;
      const auto i = static_cast<size_t>(di);
      const double ovf = ds.overflow_frac[static_cast<size_t>(t)][i];
      ImGui::TableSetColumnIndex(1);
      ImGui::TextUnformatted(panels::table_pct(ovf).c_str());
      ImGui::TableSetColumnIndex(2);
      ImGui::TextUnformatted(
          panels::table_pct(ds.underflow_frac[static_cast<size_t>(t)][i]).c_str());
      ImGui::TableSetColumnIndex(3);
      const SqnrShown q = shown_sqnr(ds.sqnr_db[static_cast<size_t>(t)][i], ovf);
      if (q.kind == SqnrKind::Undefined) {
        ImGui::TextDisabled("n/a");
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", kSqnrUndefinedHelp);
      } else {
        ImGui::TextUnformatted(sqnr_text(q).c_str());
      }
    }
    ImGui::EndTable();
  }
  // This tensor's findings (hover: evidence and recommendation).
  int shown = 0;
  for (const auto& fnd : p->analysis.findings) {
    if (fnd.tensor != sel_ || shown >= 6) continue;
    ++shown;
    legend_item(col32(severity_color(fnd.severity)), "", Swatch::Box);
    ImGui::TextWrapped("%s", fnd.title.c_str());
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("%s\n\n%s", fnd.evidence.c_str(), fnd.recommendation.c_str());
  }
  ImGui::EndChild();

  ImGui::SameLine();
  ImGui::PushStyleColor(ImGuiCol_ChildBg, IM_COL32(255, 255, 255, 10));
  ImGui::BeginChild("whatif", ImVec2(0, 0), true);
  ImGui::PopStyleColor();
  whatif_controls(td, si, step);
  ImGui::EndChild();
  region("whatif");
  ImGui::EndChild();
  region("detail");
}

void App::whatif_controls(const TensorData* td, int64_t si, uint64_t step) {
  ImGui::TextUnformatted("What-if cast to");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(80);
  static const Format kWhatIfFormats[4] = {Format::E4M3, Format::E5M2, Format::FP16, Format::BF16};
  ImGui::PushStyleColor(ImGuiCol_Text, col32(format_color(wcfg_.format)));
  if (ImGui::BeginCombo("##wfmt", spec(wcfg_.format).name)) {
    for (Format f : kWhatIfFormats)
      if (ImGui::Selectable(spec(f).name, f == wcfg_.format)) wcfg_.format = f;
    ImGui::EndCombo();
  }
  ImGui::PopStyleColor();
  int mode = static_cast<int>(wcfg_.mode);
  ImGui::RadioButton("scale 2^k", &mode, 0);
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("one power-of-two scale for every step");
  ImGui::SameLine();
  ImGui::RadioButton("FP8 delayed scaling", &mode, 1);
  if (ImGui::IsItemHovered())
    ImGui::SetTooltip(
        "Transformer Engine DelayedScaling: s = (fp8_max / amax_ref) / 2^margin,\n"
        "amax_ref = max (or most recent) of the last H amaxes of this tensor");
  wcfg_.mode = static_cast<ScaleMode>(mode);
  // Both rows always shown; the one not in use is greyed out (and still editable: editing it
  // switches the mode).
  {
    const bool off = wcfg_.mode != ScaleMode::Pow2;
    if (off) ImGui::PushStyleVar(ImGuiStyleVar_Alpha, 0.45f);
    ImGui::SetNextItemWidth(std::max(80.0f, ImGui::GetContentRegionAvail().x - 84.0f));
    if (ImGui::SliderInt("##pow2", &wcfg_.pow2, -40, 40, "scale 2^%d"))
      wcfg_.mode = ScaleMode::Pow2;
    region("whatif_slider");
    ImGui::SameLine();
    if (ImGui::Button("fit amax", ImVec2(76, 0)) && si >= 0) {
      // Largest power of two that keeps this step's amax within the format.
      const float a = td->steps.amax[static_cast<size_t>(si)];
      if (a > 0) wcfg_.pow2 = static_cast<int>(std::floor(std::log2(max_finite(wcfg_.format) / a)));
      wcfg_.mode = ScaleMode::Pow2;
    }
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("scale = largest 2^k with amax * 2^k <= max (this step)");
    if (off) ImGui::PopStyleVar();
  }
  {
    const bool off = wcfg_.mode != ScaleMode::Delayed;
    if (off) ImGui::PushStyleVar(ImGuiStyleVar_Alpha, 0.45f);
    ImGui::TextUnformatted("history");
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("H: how many past amaxes of this tensor the scale looks at");
    ImGui::SameLine();
    ImGui::SetNextItemWidth(56);
    if (ImGui::InputInt("##hist", &wcfg_.history_len, 0, 0)) wcfg_.mode = ScaleMode::Delayed;
    region("whatif_delayed");
    ImGui::SameLine();
    ImGui::TextUnformatted("margin");
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("m: the scale is divided by 2^m (headroom)");
    ImGui::SameLine();
    ImGui::SetNextItemWidth(36);
    if (ImGui::InputInt("##margin", &wcfg_.margin, 0, 0)) wcfg_.mode = ScaleMode::Delayed;
    ImGui::SameLine();
    bool recent = wcfg_.algo == AmaxAlgo::MostRecent;
    if (ImGui::Checkbox("recent", &recent)) wcfg_.mode = ScaleMode::Delayed;
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("amax_ref = the most recent amax (else the max over the history)");
    wcfg_.algo = recent ? AmaxAlgo::MostRecent : AmaxAlgo::Max;
    wcfg_.history_len = std::clamp(wcfg_.history_len, 1, 65536);
    wcfg_.margin = std::clamp(wcfg_.margin, -16, 32);
    if (off) ImGui::PopStyleVar();
  }
  ImGui::Separator();
  // Live readout at the current step, straight from the histogram.
  const WhatIfSeries* ws =
      (whatif_.current() && whatif_.value()->config == wcfg_) ? whatif_.value().get() : nullptr;
  float scale = pow2f(clamp_scale_exponent(wcfg_.pow2));
  bool have_scale = wcfg_.mode == ScaleMode::Pow2;
  if (wcfg_.mode == ScaleMode::Delayed && ws && si >= 0) {
    scale = ws->scale[static_cast<size_t>(si)];
    have_scale = true;
  }
  const ImVec4 grey(0.62f, 0.64f, 0.68f, 1.0f);
  const bool seed =
      wcfg_.mode == ScaleMode::Delayed && ws && si >= 0 && !ws->replayed[static_cast<size_t>(si)];
  if (seed) {
    ImGui::TextDisabled("step %llu seeds the amax history: not replayed",
                        static_cast<unsigned long long>(step));
    ImGui::TextDisabled("(TE casts it at its initial scale 1; says nothing");
    ImGui::TextDisabled(" about the recipe)");
  } else if (si >= 0 && have_scale) {
    const auto h = step_whatif(td->steps, static_cast<size_t>(si), wcfg_.format, scale);
    const double n = static_cast<double>(td->steps.eligible[static_cast<size_t>(si)]);
    auto range = [&](uint64_t lo, uint64_t hi) {
      char b[96];
      if (lo == hi) {
        std::snprintf(b, sizeof b, "%s  (%llu)",
                      panels::table_pct(n > 0 ? static_cast<double>(lo) / n : 0).c_str(),
                      static_cast<unsigned long long>(lo));
      } else {
        std::snprintf(b, sizeof b, "%s..%s  (%llu..%llu)",
                      panels::table_pct(n > 0 ? static_cast<double>(lo) / n : 0).c_str(),
                      panels::table_pct(n > 0 ? static_cast<double>(hi) / n : 0).c_str(),
                      static_cast<unsigned long long>(lo), static_cast<unsigned long long>(hi));
      }
      return std::string(b);
    };
    const double l2 = std::log2(static_cast<double>(scale));
    if (l2 == std::floor(l2)) {
      ImGui::Text("step %llu: scale 2^%d = %.6g", static_cast<unsigned long long>(step),
                  static_cast<int>(l2), static_cast<double>(scale));
    } else {
      ImGui::Text("step %llu: scale %.6g (2^%.2f)", static_cast<unsigned long long>(step),
                  static_cast<double>(scale), l2);
    }
    const ImVec4 red(1.0f, 0.45f, 0.4f, 1.0f), blue(0.5f, 0.7f, 1.0f, 1.0f);
    ImGui::TextColored(h.overflow_hi ? red : grey, "overflow   %s",
                       range(h.overflow_lo, h.overflow_hi).c_str());
    ImGui::TextColored(h.underflow_hi ? blue : grey, "underflow  %s",
                       range(h.underflow_lo, h.underflow_hi).c_str());
    ImGui::TextColored(grey, "subnormal  %s", range(h.subnormal_lo, h.subnormal_hi).c_str());
  } else if (si < 0) {
    ImGui::TextDisabled("step %llu: no observation of this tensor",
                        static_cast<unsigned long long>(step));
  } else {
    ImGui::TextDisabled("computing the delayed scales...");
  }
  if (ws) {
    const double n = static_cast<double>(ws->eligible);
    if (ws->first_overflow_step >= 0) {
      ImGui::TextColored(ImVec4(1.0f, 0.55f, 0.45f, 1.0f),
                         "run: %llu of %llu steps saturate, first %lld",
                         static_cast<unsigned long long>(ws->overflow_steps),
                         static_cast<unsigned long long>(ws->scale.size() - ws->seed_steps),
                         static_cast<long long>(ws->first_overflow_step));
    } else {
      ImGui::Text("run: no step saturates (%llu steps)",
                  static_cast<unsigned long long>(ws->scale.size() - ws->seed_steps));
    }
    if (ImGui::IsItemHovered() && ws->seed_steps > 0)
      ImGui::SetTooltip("%llu seed step(s) not replayed: no amax in the history yet",
                        static_cast<unsigned long long>(ws->seed_steps));
    ImGui::TextColored(
        grey, "ovf %s..%s  unf %s..%s of elements",
        panels::table_pct(n > 0 ? static_cast<double>(ws->total.overflow_lo) / n : 0).c_str(),
        panels::table_pct(n > 0 ? static_cast<double>(ws->total.overflow_hi) / n : 0).c_str(),
        panels::table_pct(n > 0 ? static_cast<double>(ws->total.underflow_lo) / n : 0).c_str(),
        panels::table_pct(n > 0 ? static_cast<double>(ws->total.underflow_hi) / n : 0).c_str());
  } else {
    ImGui::TextDisabled("run: computing...");
  }
  ImGui::TextDisabled("from the exponent histogram; a..b: bounds");
}

}  // namespace fpscope::gui
