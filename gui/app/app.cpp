// fpscope-gui's application frame: the runs bar, the tensor browser wiring, selection and replay
// state, and the layout of the panels (the panels themselves: panels_*.cpp; rank sets:
// app_ranks.cpp; dialogs and exports: app_dialogs.cpp). Size: ~630 lines, past the limit: the next
// piece of state moves out with its panel.
#include "app.h"

#include <GL/gl.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <system_error>
#include <tuple>

#include "fpscope/analysis/summary.h"

namespace fpscope::gui {

namespace {
constexpr ImU32 kErrorBg = IM_COL32(150, 24, 36, 255);

bool ready(const std::future<std::shared_ptr<const Run>>& f) {
  return f.valid() && f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}
}  // namespace

App::App(AppOptions opt) : opt_(std::move(opt)) {
  playing_ = opt_.play;
  std::error_code ec;
  dialog_dir_ = std::filesystem::current_path(ec).string();
  for (const auto& p : opt_.traces) open(p);
  initial_ = runs_.size();
  // One trace: nothing to decide. Several (--runs too): the primary, which is also the reference
  // the other runs are compared with, is the first on the command line that loads, not the
  // first to finish loading (decide_rank_set, once all have loaded).
  ranks_decided_ = initial_ < 2;
}

App::~App() {
  for (auto& r : runs_)
    if (r.loading.valid()) r.loading.wait();
  if (report_job_.valid()) report_job_.wait();
  if (rankset_job_.valid()) rankset_job_.wait();
  cmp_.wait_all();
  tdata_.wait_all();
  whatif_.wait_all();
  heat_job_.wait_all();
  if (heat_tex_) glDeleteTextures(1, &heat_tex_);
  if (rank_tex_) glDeleteTextures(1, &rank_tex_);
}

void App::open(const std::string& path) {
  RunSlot slot;
  slot.path = path;
  slot.loading = std::async(std::launch::async, [path] { return load_run(path); });
  runs_.push_back(std::move(slot));
}

bool App::idle() const {
  for (const auto& r : runs_)
    if (r.loading.valid()) return false;
  if (report_job_.valid()) return false;
  if (!ranks_decided_ || rankset_job_.valid()) return false;
  if (sel_ >= 0 && !tdata_.current()) return false;
  if (cmp_wanted_ && !cmp_.current()) return false;
  if (sel_ >= 0 && (!whatif_.current() || !(wcfg_requested_ == wcfg_))) return false;
  // The heatmap asked for a raster of the current tensor data: wait until it is on screen.
  if (sel_ >= 0 && heat_requested_.gen == tdata_.generation() && !(heat_shown_ == heat_requested_))
    return false;
  return true;
}

bool App::any_failed() const {
  for (const auto& r : runs_)
    if (r.run && !r.run->ok) return true;
  return false;
}

std::string App::take_png_request() {
  std::string s;
  s.swap(png_request_);
  return s;
}

void App::png_written(const std::string& path, bool ok) {
  toast_ = ok ? "Saved " + path : "Could not write " + path;
  toast_until_ = ImGui::GetTime() + 5.0;
}

const Run* App::primary() const {
  if (primary_ < runs_.size() && runs_[primary_].run && runs_[primary_].run->ok)
    return runs_[primary_].run.get();
  return nullptr;
}

uint64_t App::cur_step() const {
  const Run* r = primary();
  if (!r || r->timeline_steps.empty()) return 0;
  return r->timeline_steps[static_cast<size_t>(
      std::clamp<int64_t>(step_index_, 0, static_cast<int64_t>(r->timeline_steps.size()) - 1))];
}

void App::set_step_index(int64_t i) {
  const Run* r = primary();
  if (!r || r->timeline_steps.empty()) return;
  step_index_ = std::clamp<int64_t>(i, 0, static_cast<int64_t>(r->timeline_steps.size()) - 1);
  // Keep the current step in view while replaying.
  const double s = static_cast<double>(cur_step());
  if (s < xview_.x0 || s > xview_.x1) xview_.pan(s - (xview_.x0 + xview_.x1) * 0.5);
}

void App::poll() {
  bool new_run = false;
  for (size_t i = 0; i < runs_.size(); ++i) {
    auto& r = runs_[i];
    if (!ready(r.loading)) continue;
    // Whether a primary run existed BEFORE this one arrived: primary() looks at runs_[primary_],
    // which may be this very slot once r.run is assigned.
    const bool had_primary = primary() != nullptr;
    r.run = r.loading.get();
    new_run = true;
    // Several traces that may be one run's ranks: the primary waits for the decision.
    if (r.run->ok && !had_primary && ranks_decided_) {
      primary_ = i;
      on_primary_changed();
    }
  }
  if (!ranks_decided_) {
    bool all = true;
    for (size_t i = 0; i < initial_; ++i) all = all && runs_[i].run != nullptr;
    if (all) decide_rank_set();
  }
  if (rankset_job_.valid() &&
      rankset_job_.wait_for(std::chrono::seconds(0)) == std::future_status::ready)
    on_rank_set(rankset_job_.get());
  if (new_run && sel_ >= 0 && primary()) request_tensor_data();  // overlays of the new run
  if (new_run && primary() && ranks_decided_) request_comparison();
  if (cmp_.poll()) rows_dirty_ = true;  // the divergence column and its sort
  if (tdata_.poll()) request_whatif();
  whatif_.poll();
  if (heat_job_.poll()) heat_upload();
  if (report_job_.valid() &&
      report_job_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    toast_ = report_job_.get();
    toast_until_ = ImGui::GetTime() + 6.0;
  }
}

void App::on_primary_changed() {
  const Run* r = primary();
  rows_dirty_ = true;
  sel_ = -1;
  tdata_.reset();
  whatif_.reset();
  heat_job_.reset();
  heat_requested_ = heat_shown_ = {};
  request_comparison();
  if (!r) return;
  const auto& ts = r->timeline_steps;
  const StepExtent ext = step_extent(*r);
  xview_.set_bounds(ext.lo, ext.hi);
  xview_.reset();
  int64_t want = -1;
  const std::string ask = !pending_select_.empty() ? pending_select_
                          : primary_init_          ? std::string()
                                                   : opt_.select;
  if (!ask.empty()) {
    want = r->model->find_tensor(ask);
    for (uint32_t t = 0; want < 0 && t < r->model->num_tensors(); ++t)
      if (r->model->tensor(t).name == ask) want = t;
    if (want < 0 && pending_select_.empty()) {
      toast_ = "--select: no tensor '" + opt_.select + "' in " + r->label;
      toast_until_ = ImGui::GetTime() + 10.0;
    }
  }
  // Default: the most severe tensor (highest analysis score; the analysis ranks them so, but do
  // not rely on the order).
  if (want < 0 && !r->analysis.risks.empty()) {
    const auto& rs = r->analysis.risks;
    want = std::max_element(rs.begin(), rs.end(), [](const auto& a, const auto& b) {
             return a.score < b.score;
           })->tensor;
  }
  select_tensor(want);
  // First step: the one asked for, else where the selected tensor first went wrong.
  int64_t step = pending_step_ >= 0 ? pending_step_ : primary_init_ ? -1 : opt_.step;
  pending_select_.clear();
  pending_step_ = -1;
  if (step < 0 && want >= 0) {
    for (const auto& row : r->analysis.risks) {
      if (row.tensor != static_cast<uint32_t>(want)) continue;
      int64_t first = row.first_nonfinite_step;
      for (const auto& f : row.formats) {
        for (int64_t s : {f.first_overflow_step, f.first_underflow_step})
          if (s >= 0 && (first < 0 || s < first) && f.format != Format::E4M3 &&
              f.format != Format::E5M2)
            first = s;
      }
      step = first;
    }
  }
  step_index_ = 0;
  if (step >= 0) {
    const auto it = std::lower_bound(ts.begin(), ts.end(), static_cast<uint64_t>(step));
    set_step_index(it == ts.end() ? static_cast<int64_t>(ts.size()) - 1 : it - ts.begin());
  }
  primary_init_ = true;
}

void App::select_tensor(int64_t tensor) {
  if (tensor == sel_) return;
  sel_ = tensor;
  heat_y0_ = heat_y1_ = 0;
  scroll_to_sel_ = true;
  request_tensor_data();
}

void App::request_tensor_data() {
  const Run* p = primary();
  if (!p || sel_ < 0) {
    tdata_.reset();
    return;
  }
  std::shared_ptr<const Run> base = runs_[primary_].run;
  std::vector<std::pair<size_t, std::shared_ptr<const Run>>> others;
  for (size_t i = 0; i < runs_.size(); ++i)
    if (i != primary_ && runs_[i].run && runs_[i].run->ok && !in_rank_set(i))
      others.emplace_back(i, runs_[i].run);
  const auto t = static_cast<uint32_t>(sel_);
  whatif_.reset();
  tdata_.request([base, others, t] {
    TensorData d;
    d.tensor = t;
    d.steps = build_tensor_steps(*base->model, t);
    d.drift = analysis::drift_series(*base->model, t);
    for (const auto& [i, run] : others) {
      for (const auto& m : analysis::match_tensors(*base->model, *run->model)) {
        if (m.base != t) continue;
        TensorData::Other o;
        o.run = i;
        o.tensor = m.other;
        o.drift = analysis::drift_series(*run->model, m.other);
        d.others.push_back(std::move(o));
      }
    }
    return d;
  });
}

void App::request_whatif() {
  if (!tdata_.current()) return;
  auto data = tdata_.value();
  const WhatIfConfig cfg = wcfg_;
  wcfg_requested_ = cfg;
  whatif_.request([data, cfg] { return compute_whatif(data->steps, cfg); });
}

void App::region(const char* name) {
  const ImVec2 a = ImGui::GetItemRectMin(), b = ImGui::GetItemRectMax();
  regions_[name] = ImVec4(a.x, a.y, b.x - a.x, b.y - a.y);
}

bool App::no_data(const char** why) const {
  const Run* p = primary();
  if (!p) {
    *why = "No trace open.";
  } else if (p->trace->observations.empty()) {
    *why = p->no_observations.c_str();
  } else if (sel_ < 0) {
    *why = "Select a tensor in the table.";
  } else if (!tdata_.current()) {
    *why = "computing...";
  } else {
    return false;
  }
  return true;
}

void App::no_data_message(const char* why) {
  ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyleColorVec4(ImGuiCol_TextDisabled));
  ImGui::TextWrapped("%s", why);
  ImGui::PopStyleColor();
}

void App::heat_upload() {
  const auto img = heat_job_.value();
  if (!img || img->width <= 0 || img->rows <= 0) return;
  if (!heat_tex_) glGenTextures(1, &heat_tex_);
  glBindTexture(GL_TEXTURE_2D, heat_tex_);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
  glPixelStorei(GL_UNPACK_ALIGNMENT, 4);
  glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, img->width, img->rows, 0, GL_RGBA, GL_UNSIGNED_BYTE,
               img->rgba.data());
  heat_shown_ = heat_requested_;
}

void App::bench_tick(int k) {
  const Run* r = primary();
  if (!r || r->timeline_steps.empty()) return;
  // Replay (a few steps a frame), and a cycle of zoom in, pan, zoom out on the step axis: every
  // frame changes what every step-indexed panel shows and asks for a new heat raster.
  const auto n = static_cast<int64_t>(r->timeline_steps.size());
  set_step_index((step_index_ + 3) % n);
  const int phase = k % 120;
  const double mid = 0.5 * (xview_.x0 + xview_.x1);
  if (phase < 40) {
    xview_.zoom(mid, 0.95);
  } else if (phase < 80) {
    xview_.pan((xview_.x1 - xview_.x0) * ((phase / 10) % 2 ? -0.03 : 0.03));
  } else {
    xview_.zoom(mid, 1.0 / 0.95);
  }
}

// ---- frame -------------------------------------------------------------------------------------

void App::frame(float w, float h) {
  facts_.clear();
  regions_.clear();  // only what this frame draws (table rows come and go with scrolling)
  poll();
  if (!(wcfg_ == wcfg_requested_) && tdata_.current()) request_whatif();
  if (rows_dirty_ && primary()) {
    const Comparison* c = comparison();
    rows_ = filter_sort(primary()->analysis.risks, filter_, sort_, &primary()->blocks,
                        c ? &c->rank : nullptr);
    rows_dirty_ = false;
  }
  keyboard();
  if (playing_ && primary()) {
    play_accum_ += ImGui::GetIO().DeltaTime * play_speed_;
    const auto n = static_cast<int64_t>(primary()->timeline_steps.size());
    while (play_accum_ >= 1.0) {
      play_accum_ -= 1.0;
      if (step_index_ + 1 >= n) {
        playing_ = false;
        break;
      }
      set_step_index(step_index_ + 1);
    }
  }

  ImGui::SetNextWindowPos(ImVec2(0, 0));
  ImGui::SetNextWindowSize(ImVec2(w, h));
  ImGui::Begin("fpscope", nullptr,
               ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove |
                   ImGuiWindowFlags_NoBringToFrontOnFocus | ImGuiWindowFlags_MenuBar |
                   ImGuiWindowFlags_NoSavedSettings | ImGuiWindowFlags_NoScrollWithMouse |
                   ImGuiWindowFlags_NoBackground);  // cleared to the panel colour (main.cpp)
  menu_bar();
  runs_bar();
  if (!primary()) {
    bool loading = false;
    for (const auto& r : runs_) loading = loading || r.loading.valid();
    ImGui::Dummy(ImVec2(0, 40));
    ImGui::Indent(40);
    if (loading) {
      ImGui::Text("Loading and analysing %s ...", runs_.empty() ? "" : runs_.back().path.c_str());
    } else {
      ImGui::TextUnformatted("No trace open.");
      ImGui::TextDisabled(
          "Open one with File > Open trace... (Ctrl+O), drop .fpst files on this window, or pass "
          "them on the command line:  fpscope-gui run.fpst [other.fpst ...]");
      ImGui::TextDisabled("Record one with:  fpscope record -o run.fpst -- python train.py");
    }
    ImGui::Unindent(40);
    status_bar();
    ImGui::End();
    dialogs();
    return;
  }

  const ImGuiStyle& st = ImGui::GetStyle();
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float line = ImGui::GetTextLineHeightWithSpacing();
  const float pad = 2.0f * st.WindowPadding.y + 2.0f;  // a bordered child's vertical padding
  const float status_h = ImGui::GetFrameHeight() + st.ItemSpacing.y;
  // Timeline: controls, legend, and the loss-scale track with the runs' loss curves; without
  // loss-scale records or losses the track collapses to a thin strip of the selected tensor's
  // events (the legend line says why).
  bool has_ls = !primary()->analysis.loss_scale.series.empty();
  for (const auto& r : runs_) has_ls = has_ls || (r.run && r.run->ok && !r.run->loss.empty());
  const float strip_h = ImGui::GetFontSize() * 2.0f + 14.0f;
  const float timeline_h =
      has_ls ? std::max(150.0f, avail.y * 0.17f)
             : ImGui::GetFrameHeightWithSpacing() + line + strip_h + pad + st.ItemSpacing.y;
  const float rest = avail.y - status_h - timeline_h - 2 * st.ItemSpacing.y;
  const float top_h = std::floor(std::max(std::min(330.0f, rest * 0.5f), rest * 0.38f));
  const float bottom_h = rest - top_h;
  const float left_w = std::floor(avail.x * 0.60f);

  table_panel(ImVec2(left_w, top_h));
  ImGui::SameLine();
  detail_panel(ImVec2(0, top_h));
  timeline_panel(ImVec2(0, timeline_h));
  if (rankset_) {
    // A rank set: the ranks x steps heatmap above the exponent heatmap, one row per rank (at
    // least 6 px, at most 18 px), at most 45% of the column.
    ImGui::BeginGroup();
    const auto nr = static_cast<float>(rankset_->ranks.size());
    const float ranks_h = std::floor(std::min(
        bottom_h * 0.45f, 2.0f * ImGui::GetFrameHeightWithSpacing() + pad + 30.0f +
                              nr * std::clamp((bottom_h * 0.45f - 90.0f) / nr, 6.0f, 18.0f)));
    ranks_panel(ImVec2(left_w, ranks_h));
    heatmap_panel(ImVec2(left_w, bottom_h - ranks_h - st.ItemSpacing.y));
    ImGui::EndGroup();
  } else {
    heatmap_panel(ImVec2(left_w, bottom_h));
  }
  ImGui::SameLine();
  ImGui::BeginGroup();
  // Master weights: half the column (the parameter list beside the selected one's plots), or
  // two lines when the trace watches none.
  // With runs compared (a difference plot in the drift panel), the drift panel takes more.
  const Comparison* cmp = comparison();
  const float weights_h =
      primary()->analysis.weights.empty()
          ? 2.0f * line + pad
          : std::floor((bottom_h - st.ItemSpacing.y) * (cmp && cmp->measurable() ? 0.34f : 0.50f));
  drift_panel(ImVec2(0, bottom_h - weights_h - st.ItemSpacing.y));
  weights_panel(ImVec2(0, weights_h));
  ImGui::EndGroup();
  status_bar();
  ImGui::End();
  dialogs();

  // Facts for the tests (--regions writes them beside the rectangles).
  const Run* p = primary();
  fact("selected", sel_ >= 0 ? p->model->tensor(static_cast<uint32_t>(sel_)).id : "");
  fact("step", std::to_string(cur_step()));
  fact("x0", fmt_g(xview_.x0, 10));
  fact("x1", fmt_g(xview_.x1, 10));
  fact("loss_scale_records", std::to_string(p->analysis.loss_scale.series.size()));
}

void App::keyboard() {
  const ImGuiIO& io = ImGui::GetIO();
  // Letters: the GLFW backend of 1.86 indexes KeysDown by GLFW key code (= ASCII upper case).
  if (io.KeyCtrl && ImGui::IsKeyPressed('O', false)) open_dialog_ = true;
  if (io.KeyCtrl && ImGui::IsKeyPressed('Q', false)) quit_ = true;
  if (io.WantTextInput || !primary()) return;
  if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_Space), false)) playing_ = !playing_;
  if (rankset_ && (ImGui::IsKeyPressed('[', false) || ImGui::IsKeyPressed(']', false))) {
    const auto& rs = rankset_->ranks;
    const int64_t cur = runs_[primary_].rank;
    size_t k = 0;
    while (k < rs.size() && rs[k].identity.rank != cur) ++k;
    if (k < rs.size()) {
      const bool next = ImGui::IsKeyPressed(']', false);
      if (next && k + 1 < rs.size()) select_rank(rs[k + 1].identity.rank, -1);
      if (!next && k > 0) select_rank(rs[k - 1].identity.rank, -1);
    }
  }
  if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_RightArrow))) set_step_index(step_index_ + 1);
  if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_LeftArrow))) set_step_index(step_index_ - 1);
  if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_Home), false)) set_step_index(0);
  if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_End), false))
    set_step_index(static_cast<int64_t>(primary()->timeline_steps.size()) - 1);
  const bool down = ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_DownArrow));
  const bool up = ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_UpArrow));
  if ((down || up) && !rows_.empty()) {
    const auto& risks = primary()->analysis.risks;
    int64_t pos = -1;
    for (size_t i = 0; i < rows_.size(); ++i)
      if (sel_ >= 0 && risks[rows_[i]].tensor == static_cast<uint32_t>(sel_))
        pos = static_cast<int64_t>(i);
    pos = std::clamp<int64_t>(pos + (down ? 1 : -1), 0, static_cast<int64_t>(rows_.size()) - 1);
    select_tensor(risks[rows_[static_cast<size_t>(pos)]].tensor);
  }
}

void App::menu_bar() {
  if (!ImGui::BeginMenuBar()) return;
  if (ImGui::BeginMenu("File")) {
    if (ImGui::MenuItem("Open trace...", "Ctrl+O")) open_dialog_ = true;
    if (ImGui::BeginMenu("Primary run", runs_.size() > 1)) {
      for (size_t i = 0; i < runs_.size(); ++i) {
        const auto& r = runs_[i];
        if (ImGui::MenuItem(r.path.c_str(), nullptr, i == primary_, r.run && r.run->ok)) {
          primary_ = i;
          on_primary_changed();
        }
      }
      ImGui::EndMenu();
    }
    ImGui::Separator();
    if (ImGui::MenuItem("Quit", "Ctrl+Q")) quit_ = true;
    ImGui::EndMenu();
  }
  if (ImGui::BeginMenu("Export", primary() != nullptr)) {
    if (ImGui::MenuItem("Write report (HTML/Markdown)...")) {
      report_dialog_ = true;
      std::filesystem::path p(primary()->path);
      report_path_ = (p.parent_path() / (p.stem().string() + "_report.html")).string();
    }
    if (ImGui::MenuItem("Save PNG of the window...")) {
      png_dialog_ = true;
      png_path_ = std::filesystem::path(primary()->path).stem().string() + "_view.png";
    }
    if (ImGui::MenuItem("Copy summary for a bug ticket", "Ctrl+Shift+C")) copy_summary();
    ImGui::EndMenu();
  }
  if (ImGui::BeginMenu("Help")) {
    ImGui::TextUnformatted(
        "Space: play/pause   Left/Right: step   Home/End: first/last step\n"
        "Up/Down: previous/next tensor in the table\n"
        "[ / ]: previous/next rank (a rank set); click a ranks-heatmap cell: that rank and step\n"
        "Plots: wheel zooms the steps, drag pans, double-click shows the whole run,\n"
        "       click goes to that step; Ctrl+wheel zooms the heatmap's magnitude axis.\n"
        "Filter: words match id/name/op/role/dtype; 'sev:warning' keeps warnings and worse;\n"
        "        '!word' excludes.\n"
        "Cell colours: the analysis severity of that metric (legend above the table).\n"
        "Format colours: bf16 green, fp16 orange, e4m3 magenta, e5m2 cyan, in every panel.\n"
        "SQNR n/a: the format overflows there, so its SQNR is undefined.\n"
        "More: docs/gui.md");
    ImGui::EndMenu();
  }
  const ImGuiIO& io = ImGui::GetIO();
  if (io.KeyCtrl && io.KeyShift && ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_C), false) &&
      primary())
    copy_summary();
  ImGui::EndMenuBar();
}

void App::runs_bar() {
  // One chip per run: the primary drives the table; the others are overlaid in the drift panel.
  if (run_labels_.size() != runs_.size()) {
    std::vector<std::string> paths;
    for (const auto& r : runs_) paths.push_back(r.path);
    run_labels_ = run_labels(paths);
  }
  std::string chips;
  if (rankset_) rank_selector();
  for (size_t i = 0; i < runs_.size(); ++i) {
    const auto& r = runs_[i];
    if (in_rank_set(i)) continue;  // in the rank selector
    ImGui::PushID(static_cast<int>(i));
    const std::string& name = run_labels_[i];
    chips += (chips.empty() ? "" : "|") + name;
    if (!r.run) {
      ImGui::TextDisabled("[%s: loading...]", name.c_str());
    } else if (!r.run->ok) {
      ImGui::TextColored(ImVec4(1.0f, 0.45f, 0.45f, 1.0f), "[%s: failed]", name.c_str());
    } else {
      const bool prim = i == primary_;
      // Several runs: each in its colour (loss curves, difference lines); the primary is the
      // reference they are compared with.
      const bool several = other_runs() > 0;
      const std::string label = std::string("Run ") + static_cast<char>('A' + i) + ": " + name +
                                (prim ? (several ? "  (primary, reference)" : "  (primary)") : "");
      if (several)
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::ColorConvertU32ToFloat4(pack(run_color(i))));
      if (ImGui::Selectable(label.c_str(), prim, 0, ImGui::CalcTextSize(label.c_str())) && !prim) {
        primary_ = i;
        on_primary_changed();
      }
      if (several) ImGui::PopStyleColor();
      if (ImGui::IsItemHovered())
        ImGui::SetTooltip(
            "%s\nclick to make it the primary run (the table follows it) and the reference the "
            "other runs are compared with",
            r.path.c_str());
    }
    ImGui::SameLine(0, 18);
    ImGui::PopID();
  }
  fact("runs", chips);
  if (ImGui::SmallButton("+ Open...")) open_dialog_ = true;
  // An emulated run (fpscope record --emulate) must never pass for the program's own precision.
  if (const Run* p = primary(); p && !p->analysis.meta.emulate.empty()) {
    ImGui::SameLine(0, 18);
    ImGui::TextColored(ImVec4(1.0f, 0.78f, 0.3f, 1.0f), "EMULATED %s",
                       analysis::emulation_description(p->analysis.meta).c_str());
  }
  if (const Run* p = primary(); p && p->trace->truncated) {
    ImGui::SameLine(0, 18);
    ImGui::TextColored(ImVec4(1.0f, 0.78f, 0.3f, 1.0f), "truncated trace: %llu bytes dropped (%s)",
                       static_cast<unsigned long long>(p->trace->dropped_bytes),
                       p->trace->truncation_reason.c_str());
  }
  // Errors: a red banner per failed run, in the window, never a crash.
  for (size_t i = 0; i < runs_.size(); ++i) {
    const auto& r = runs_[i];
    if (!r.run || r.run->ok) continue;
    ImGui::PushID(static_cast<int>(i) + 1000);
    ImGui::PushStyleColor(ImGuiCol_ChildBg, kErrorBg);
    const float hgt = ImGui::GetTextLineHeightWithSpacing() * 2.0f + 8.0f;
    ImGui::BeginChild("error", ImVec2(0, hgt), false);
    ImGui::SetCursorPos(ImVec2(8, 4));
    ImGui::TextColored(ImVec4(1, 1, 1, 1), "Could not open %s", r.path.c_str());
    ImGui::SetCursorPosX(8);
    ImGui::TextColored(ImVec4(1, 0.86f, 0.86f, 1), "%s", r.run->error.c_str());
    ImGui::EndChild();
    ImGui::PopStyleColor();
    region("banner");
    ImGui::PopID();
  }
}

void App::status_bar() {
  ImGui::Separator();
  const Run* p = primary();
  if (p) {
    const auto& t = *p->trace;
    // The run's extent as summary and report word it ("20 steps (0..19), 2 sampled (every 10);
    // source framework"): the sampled steps alone would read as the run's length.
    ImGui::Text("%s  |  %s  |  %zu observations, %zu tensors  |  loaded %.2f s, analysed %.2f s",
                p->label.c_str(), analysis::run_steps_text(t, p->analysis).c_str(),
                t.observations.size(), t.tensors.size(), p->load_seconds, p->analysis_seconds);
  } else {
    ImGui::TextDisabled("fpscope-gui");
  }
  const bool busy = tdata_.busy() || whatif_.busy() || cmp_.busy() || report_job_.valid();
  if (busy) {
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(0.6f, 0.8f, 1.0f, 1.0f), "  |  computing...");
  }
  if (!toast_.empty() && ImGui::GetTime() < toast_until_) {
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(1.0f, 0.85f, 0.4f, 1.0f), "  |  %s", toast_.c_str());
  }
  ImGui::SameLine(ImGui::GetWindowWidth() - 110);
  ImGui::TextDisabled("%.1f ms/frame", 1000.0 / std::max(1.0f, ImGui::GetIO().Framerate));
}

}  // namespace fpscope::gui
