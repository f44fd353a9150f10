// Block-scaled formats (trace format 1.3) in the viewer's panels: the tensor table's block cells,
// and the exponent heatmap's strip (the block-scale distribution of one block-scaled format at the
// current step, and how many octaves of the tensor's range one block covers there; block_view.h).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <string>

#include "app.h"
#include "panels_common.h"

namespace fpscope::gui {

using namespace panels;

namespace panels {

void block_table_cell(const BlockColumns& blocks, const analysis::TensorRisk& r, Col col, int f,
                      const analysis::FindingOptions& opt) {
  const BlockCell* b = blocks.cell(r.tensor, f);
  if (!b) {
    ImGui::TextDisabled("-");
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("%s: not measured on this tensor", block_format_label(f).c_str());
    return;
  }
  const BlockFormatCounts& c = b->counts;
  if (col == Col::BlockLoss) {
    const double v = block_loss(c);
    if (const analysis::Severity sev = block_loss_severity(v, opt); sev != analysis::Severity::None)
      ImGui::TableSetBgColor(ImGuiTableBgTarget_CellBg, pack(severity_color(sev)));
    if (v == 0.0) {
      ImGui::TextDisabled("0");
    } else {
      ImGui::TextUnformatted(table_pct(v).c_str());
    }
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip(
          "%s: %llu flushed + %llu saturated of %llu elements (%.6g)\n%llu blocks, %llu all "
          "zero, %llu NaN/Inf; scale underflow %llu, overflow %llu",
          block_format_label(f).c_str(), static_cast<unsigned long long>(c.flushed),
          static_cast<unsigned long long>(c.saturated), static_cast<unsigned long long>(c.elements),
          v, static_cast<unsigned long long>(c.blocks),
          static_cast<unsigned long long>(c.zero_blocks),
          static_cast<unsigned long long>(c.nan_scale),
          static_cast<unsigned long long>(c.scale_underflow),
          static_cast<unsigned long long>(c.scale_overflow));
    return;
  }
  const SqnrShown q = shown_sqnr(block_sqnr(c), 0.0);  // block casts saturate: always defined
  const std::string s = sqnr_text(q);
  if (q.kind == SqnrKind::NoSignal) {
    ImGui::TextDisabled("%s", s.c_str());
  } else {
    ImGui::TextUnformatted(s.c_str());
  }
  if (ImGui::IsItemHovered())
    ImGui::SetTooltip("%s: SQNR %s%s over %llu elements", block_format_label(f).c_str(), s.c_str(),
                      q.kind == SqnrKind::Value ? " dB" : "",
                      static_cast<unsigned long long>(c.elements));
}

}  // namespace panels

int App::block_scale_strip(const TensorSteps& st, float height) {
  const BlockSteps& b = st.blocks;
  if (b.empty()) return -1;
  if (block_fmt_ < 0 || !(b.mask >> block_fmt_ & 1u))
    block_fmt_ = std::countr_zero(b.mask);  // the first measured format
  const int f = block_fmt_;
  const float fh = ImGui::GetFontSize();
  const ImVec2 o = ImGui::GetCursorScreenPos();
  const float w = ImGui::GetContentRegionAvail().x;

  ImGui::TextUnformatted("Block scales of");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(ImGui::CalcTextSize("MXFP8 E4M3").x + fh * 2.2f);
  if (ImGui::BeginCombo("##block_fmt", block_format_label(f).c_str())) {
    for (int g = 0; g < kNumBlockFormats; ++g) {
      if (!(b.mask >> g & 1u)) continue;
      if (ImGui::Selectable(block_format_label(g).c_str(), g == f)) block_fmt_ = g;
    }
    ImGui::EndCombo();
  }
  const uint64_t step = cur_step();
  const int64_t si = st.index_of(step);
  ImGui::SameLine();
  ImGui::Text("at step %llu:", static_cast<unsigned long long>(step));
  ImGui::SameLine();
  const FormatSpec& bs = *kBlockFormats[f];
  const BlockCoverage cov =
      step_block_coverage(st, static_cast<size_t>(std::max<int64_t>(0, si)), f);
  std::string cover;
  char buf[200];
  if (si < 0 || !b.measured(static_cast<size_t>(si), f)) {
    cover = "not measured at this step";
  } else if (std::isnan(cov.tensor_octaves)) {
    std::snprintf(buf, sizeof buf, "one block covers %.1f octaves (%s elements); no nonzero data",
                  cov.block_octaves, bs.name);
    cover = buf;
  } else {
    std::snprintf(buf, sizeof buf,
                  "one block covers %.1f octaves of the tensor's %.1f-octave range (%s)",
                  cov.block_octaves, cov.tensor_octaves,
                  cov.fraction() >= 1.0 ? "all of it" : (pct(cov.fraction()) + " of it").c_str());
    cover = buf;
  }
  ImGui::TextDisabled("%s", cover.c_str());
  if (ImGui::IsItemHovered())
    ImGui::SetTooltip(
        "one block: %s's range, log2(max %s / smallest positive %s) = %.2f octaves\n"
        "the tensor at this step: log2(amax) - the lower edge of its lowest exponent bin\n"
        "blocks of %d elements share one %s scale",
        bs.name, fmt_g(max_finite(bs), 4).c_str(), threshold_text(min_subnormal(bs)).c_str(),
        cov.block_octaves, bs.block_size, bs.block_scale->name);
  fact("block_coverage", cover);
  fact("block_format", block_format_label(f));

  // Bars: one per scale bin over the bins this format used at any step (a stable axis while
  // stepping), the height the fraction of the step's blocks with that scale.
  int lo = kBlockScaleBins, hi = -1;
  for (size_t i = 0; i < st.size(); ++i)
    for (uint8_t bin : b.scale_bins(i, f)) lo = std::min<int>(lo, bin), hi = std::max<int>(hi, bin);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 c = ImGui::GetCursorScreenPos();
  const float ph = std::max(fh * 2.0f, height - (c.y - o.y) - fh - 4.0f);
  const float x0 = c.x + 58.0f, x1 = c.x + w - 8.0f, ybase = c.y + ph;
  dl->AddRectFilled(ImVec2(x0, c.y), ImVec2(x1, ybase), kPlotBackground);
  dl->AddText(ImVec2(c.x, c.y), kDim, "blocks");
  regions_["block_scales"] = ImVec4(x0, c.y, x1 - x0, ph);
  if (hi >= lo && si >= 0) {
    const auto bins = b.scale_bins(static_cast<size_t>(si), f);
    const auto counts = b.scale_counts(static_cast<size_t>(si), f);
    uint64_t total = 0;
    for (uint64_t k : counts) total += k;
    const int nb = hi - lo + 1;
    const float bw = (x1 - x0) / static_cast<float>(nb);
    const ImU32 col = col32(block_format_color(f));
    for (size_t j = 0; j < bins.size(); ++j) {
      const float fr =
          total ? static_cast<float>(static_cast<double>(counts[j]) / static_cast<double>(total))
                : 0.0f;
      const float bx = x0 + bw * static_cast<float>(bins[j] - lo);
      const float by = ybase - std::max(1.0f, fr * (ph - 2.0f));
      dl->AddRectFilled(ImVec2(bx + 1, by), ImVec2(bx + std::max(2.0f, bw - 1), ybase), col);
      if (ImGui::IsMouseHoveringRect(ImVec2(bx, c.y), ImVec2(bx + bw, ybase)))
        ImGui::SetTooltip("scale %s: %llu of %llu blocks (%s)", scale_bin_label(bins[j]).c_str(),
                          static_cast<unsigned long long>(counts[j]),
                          static_cast<unsigned long long>(total), pct(fr).c_str());
    }
    // Tick labels: as many 2^k as fit, every `stride` bins.
    const float lw = ImGui::CalcTextSize("2^-127").x + 8.0f;
    const int stride = std::max(1, static_cast<int>(std::ceil(lw / std::max(1.0f, bw))));
    for (int bin = lo; bin <= hi; bin += stride) {
      const std::string t = scale_bin_label(bin);
      const float tx =
          x0 + bw * (static_cast<float>(bin - lo) + 0.5f) - ImGui::CalcTextSize(t.c_str()).x * 0.5f;
      dl->AddText(ImVec2(std::max(x0, tx), ybase + 2), kLabel, t.c_str());
    }
  } else {
    dl->AddText(ImVec2(x0 + 6, c.y + 4), kDim, "no blocks at this step");
  }
  ImGui::Dummy(ImVec2(w, ph + fh + 4.0f));
  return f;
}

}  // namespace fpscope::gui
