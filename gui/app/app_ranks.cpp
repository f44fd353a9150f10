// fpscope-gui's rank sets (docs/gui.md "Rank sets"): once the command line's traces are loaded,
// decide whether they are one run's ranks (gui::is_rank_set), build the rank set from the loaded
// runs (analysis::summarize_rank, build_rank_set), switch the shown rank, and the rank selector.
// The ranks x steps panel is panels_ranks.cpp.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <tuple>

#include "app.h"

namespace fpscope::gui {

void App::decide_rank_set() {
  ranks_decided_ = true;
  std::vector<size_t> slots;
  std::vector<analysis::RankIdentity> ids;
  for (size_t i = 0; i < initial_; ++i) {
    const auto& r = runs_[i];
    if (!r.run || !r.run->ok) continue;
    slots.push_back(i);
    ids.push_back(analysis::identify_rank(*r.run->trace, r.path, i));
  }
  const bool set = is_rank_set(ids, opt_.rank_mode);
  // The primary: the first trace on the command line that loaded, or the lowest rank.
  size_t first = slots.empty() ? 0 : slots.front();
  if (set) {
    size_t best = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
      runs_[slots[k]].rank = ids[k].rank;
      if (ids[k].rank < ids[best].rank) best = k;
    }
    first = slots[best];
    std::vector<std::shared_ptr<const Run>> runs;
    for (size_t i : slots) runs.push_back(runs_[i].run);
    // The rank set from the loaded runs (analysis/ranks.h): each reduced to its RankSummary.
    rankset_job_ = std::async(std::launch::async, [runs, ids]() {
      std::vector<analysis::RankSummary> sums;
      analysis::RankOptions ro;
      ro.keep_summary_json = false;
      for (size_t k = 0; k < runs.size(); ++k)
        sums.push_back(analysis::summarize_rank(*runs[k]->model, runs[k]->analysis, ids[k], ro));
      auto out = std::make_shared<analysis::RankSet>();
      std::string err;
      if (!analysis::build_rank_set(std::move(sums), analysis::FindingOptions{}, out.get(), &err)) {
        out->ranks.clear();
        out->findings.clear();
        analysis::RankFinding f;
        f.finding.title = err;  // a duplicate rank: shown, then the traces are runs
        out->findings.push_back(std::move(f));
      }
      return std::shared_ptr<const analysis::RankSet>(std::move(out));
    });
  }
  if (!slots.empty()) {
    primary_ = first;
    on_primary_changed();
  }
}

void App::on_rank_set(std::shared_ptr<const analysis::RankSet> set) {
  if (!set || set->ranks.empty()) {
    // build_rank_set failed (two traces claim one rank, with --ranks): separate runs after all.
    rankset_error_ = set && !set->findings.empty() ? set->findings.front().finding.title : "";
    for (auto& r : runs_) r.rank = -1;
    toast_ = "not a rank set: " + rankset_error_;
    toast_until_ = ImGui::GetTime() + 10.0;
    if (primary()) request_tensor_data();
    return;
  }
  rankset_ = std::move(set);
  request_tensor_data();  // the other ranks are no longer drift overlays
  // Unless the user chose a rank, tensor or step: where the first rank broke or drifted.
  if (opt_.rank >= 0) {  // --rank: that rank, with --select / --step or the defaults
    pending_select_ = opt_.select;
    select_rank(opt_.rank, opt_.step, /*keep=*/false);
    return;
  }
  if (!opt_.select.empty() || opt_.step >= 0) return;
  // The finding to open at: one that names some ranks but not all (the rank that broke or
  // drifted first) before one on every rank; FP8 overflows (unscaled FP8 overflows anywhere)
  // last; then the earliest step; at one step, a first fault before the skew it causes.
  const analysis::RankFinding* pick = nullptr;
  auto key = [&](const analysis::RankFinding& rf) {
    const Format f = rf.finding.format.value_or(Format::FP32);
    return std::tuple(f == Format::E4M3 || f == Format::E5M2,
                      rf.ranks.size() == rankset_->ranks.size(), rf.finding.first_step,
                      rf.finding.kind != analysis::FindingKind::RankFirstFault);
  };
  for (const auto& rf : rankset_->findings)
    if (!rf.ranks.empty() && !rf.finding.tensor_id.empty() && (!pick || key(rf) < key(*pick)))
      pick = &rf;
  if (pick) {
    pending_select_ = pick->finding.tensor_id;
    select_rank(pick->ranks.front(), pick->finding.first_step);
  }
}

void App::select_rank(int64_t rank, int64_t step, bool keep) {
  size_t slot = runs_.size();
  for (size_t i = 0; i < runs_.size(); ++i)
    if (in_rank_set(i) && runs_[i].rank == rank && runs_[i].run && runs_[i].run->ok) slot = i;
  if (slot == runs_.size()) {
    pending_select_.clear();
    toast_ = "no rank " + std::to_string(rank) + " in this rank set";
    toast_until_ = ImGui::GetTime() + 10.0;
    return;
  }
  const Run* p = primary();
  if (keep && pending_select_.empty() && p && sel_ >= 0)
    pending_select_ = p->model->tensor(static_cast<uint32_t>(sel_)).id;
  pending_step_ = step >= 0 || !keep ? step : static_cast<int64_t>(cur_step());
  const XView zoom = xview_;
  const bool had = p != nullptr;
  primary_ = slot;
  on_primary_changed();
  if (had) {  // the same run: keep the zoom (the ranks' step ranges may differ a little)
    xview_.x0 = zoom.x0;
    xview_.x1 = zoom.x1;
    set_step_index(step_index_);
  }
}

void App::rank_selector() {
  // The rank whose trace the table, detail, timeline, heatmap, drift and weights panels show.
  const auto& ranks = rankset_->ranks;
  const int64_t cur = runs_[primary_].rank;
  std::string all;
  for (const auto& r : ranks) all += (all.empty() ? "" : "|") + std::to_string(r.identity.rank);
  fact("ranks", all);
  fact("rank", std::to_string(cur));
  ImGui::AlignTextToFramePadding();
  ImGui::Text("Rank set: %zu ranks", ranks.size());
  ImGui::SameLine();
  const std::string label = "rank " + std::to_string(cur);
  ImGui::SetNextItemWidth(ImGui::CalcTextSize("rank 0000").x + ImGui::GetFrameHeight() + 12.0f);
  if (ImGui::BeginCombo("##rank", label.c_str())) {
    for (const auto& r : ranks) {
      const std::string l = "rank " + std::to_string(r.identity.rank) + "  " +
                            std::filesystem::path(r.identity.path).filename().string() + "  (" +
                            r.verdict + ")";
      if (ImGui::Selectable(l.c_str(), r.identity.rank == cur)) select_rank(r.identity.rank, -1);
    }
    ImGui::EndCombo();
  }
  region("rank_selector");
  if (ImGui::IsItemHovered())
    ImGui::SetTooltip(
        "Which rank's trace the panels show (also: click a row of the ranks heatmap; "
        "[ and ] step through the ranks)");
  ImGui::SameLine(0, 18);
}

}  // namespace fpscope::gui
