// fpscope-gui's dialogs (open a trace, write a report, save a PNG) and exports (the report
// through the analysis library, the Markdown summary for a bug ticket).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "app.h"
// After app.h: imgui_stdlib.h needs imgui.h first.
#include <imgui_stdlib.h>

namespace fpscope::gui {

// ---- dialogs and exports -----------------------------------------------------------------------

void App::dialogs() {
  if (open_dialog_) {
    ImGui::OpenPopup("Open trace");
    open_dialog_ = false;
    if (dialog_path_.empty()) dialog_path_ = dialog_dir_ + "/";
  }
  ImGui::SetNextWindowSize(ImVec2(720, 460), ImGuiCond_Appearing);
  if (ImGui::BeginPopupModal("Open trace", nullptr, ImGuiWindowFlags_NoSavedSettings)) {
    namespace fs = std::filesystem;
    std::error_code ec;
    ImGui::TextDisabled("%s", dialog_dir_.c_str());
    if (ImGui::Button("Up")) {
      dialog_dir_ = fs::path(dialog_dir_).parent_path().string();
      if (dialog_dir_.empty()) dialog_dir_ = "/";
    }
    ImGui::SameLine();
    ImGui::TextDisabled("(folders and .fpst files; double-click to open)");
    ImGui::BeginChild("files", ImVec2(0, -ImGui::GetFrameHeightWithSpacing() * 2), true);
    std::vector<fs::directory_entry> entries;
    for (fs::directory_iterator it(dialog_dir_, fs::directory_options::skip_permission_denied, ec),
         end;
         !ec && it != end; it.increment(ec)) {
      const bool dir = it->is_directory(ec);
      const auto name = it->path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      if (dir || it->path().extension() == ".fpst") entries.push_back(*it);
    }
    std::sort(entries.begin(), entries.end(), [&](const auto& a, const auto& b) {
      const bool da = a.is_directory(ec), db = b.is_directory(ec);
      return da != db ? da : a.path().filename() < b.path().filename();
    });
    for (const auto& e : entries) {
      const bool dir = e.is_directory(ec);
      const std::string label = e.path().filename().string() + (dir ? "/" : "");
      if (ImGui::Selectable(label.c_str(), dialog_path_ == e.path().string(),
                            ImGuiSelectableFlags_AllowDoubleClick)) {
        dialog_path_ = e.path().string();
        if (ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) {
          if (dir) {
            dialog_dir_ = e.path().string();
          } else {
            open(dialog_path_);
            ImGui::CloseCurrentPopup();
          }
        }
      }
    }
    if (entries.empty())
      ImGui::TextDisabled(ec ? "cannot list this folder" : "no folders or .fpst files here");
    ImGui::EndChild();
    ImGui::SetNextItemWidth(-190);
    const bool enter =
        ImGui::InputText("##path", &dialog_path_, ImGuiInputTextFlags_EnterReturnsTrue);
    ImGui::SameLine();
    if (ImGui::Button("Open", ImVec2(80, 0)) || enter) {
      if (fs::is_directory(dialog_path_, ec)) {
        dialog_dir_ = dialog_path_;
      } else {
        open(dialog_path_);  // errors show in the window
        ImGui::CloseCurrentPopup();
      }
    }
    ImGui::SameLine();
    if (ImGui::Button("Cancel", ImVec2(80, 0))) ImGui::CloseCurrentPopup();
    ImGui::EndPopup();
  }

  auto path_popup = [&](const char* title, bool* flag, std::string* path, const char* hint,
                        auto&& on_ok) {
    if (*flag) {
      ImGui::OpenPopup(title);
      *flag = false;
    }
    ImGui::SetNextWindowSize(ImVec2(640, 0), ImGuiCond_Appearing);
    if (ImGui::BeginPopupModal(title, nullptr, ImGuiWindowFlags_NoSavedSettings)) {
      ImGui::TextDisabled("%s", hint);
      ImGui::SetNextItemWidth(-1);
      const bool enter = ImGui::InputText("##p", path, ImGuiInputTextFlags_EnterReturnsTrue);
      if (ImGui::Button("Write", ImVec2(90, 0)) || enter) {
        on_ok(*path);
        ImGui::CloseCurrentPopup();
      }
      ImGui::SameLine();
      if (ImGui::Button("Cancel", ImVec2(90, 0))) ImGui::CloseCurrentPopup();
      ImGui::EndPopup();
    }
  };
  path_popup("Write report", &report_dialog_, &report_path_,
             "Report path (.html: one self-contained file; .md: Markdown plus <stem>_files/)",
             [&](const std::string& p) { export_report(p); });
  path_popup("Save PNG", &png_dialog_, &png_path_, "PNG path (the whole window, as shown)",
             [&](const std::string& p) { png_request_ = p; });
}

void App::export_report(const std::string& path) {
  if (!primary() || report_job_.valid()) return;
  std::shared_ptr<const Run> run = runs_[primary_].run;
  std::shared_ptr<const Run> base;
  for (size_t i = 0; i < runs_.size(); ++i)
    if (i != primary_ && runs_[i].run && runs_[i].run->ok && !in_rank_set(i) && !base)
      base = runs_[i].run;
  toast_ = "Writing " + path + " ...";
  toast_until_ = ImGui::GetTime() + 60.0;
  report_job_ = std::async(std::launch::async, [run, base, path]() -> std::string {
    analysis::ReportOptions ro;
    if (base) ro.baseline = base->model.get();
    std::string err;
    try {
      if (!analysis::write_report(*run->model, run->analysis, path, ro, &err)) return err;
    } catch (const std::exception& e) {
      return path + ": " + e.what();
    }
    return "Report written: " + path;
  });
}

void App::copy_summary() {
  const Run* p = primary();
  if (!p) return;
  analysis::Selection sel;
  if (sel_ >= 0) sel.tensors.push_back(static_cast<uint32_t>(sel_));
  sel.step_begin = static_cast<int64_t>(std::max(0.0, std::floor(xview_.x0)));
  sel.step_end = static_cast<int64_t>(std::max(0.0, std::ceil(xview_.x1)));
  last_summary_ = analysis::markdown_summary(*p->model, p->analysis, sel);
  ImGui::SetClipboardText(last_summary_.c_str());
  toast_ = "Copied the Markdown summary (" + std::to_string(last_summary_.size()) +
           " chars) of the selection, steps " + std::to_string(sel.step_begin) + ".." +
           std::to_string(sel.step_end) + ", to the clipboard";
  toast_until_ = ImGui::GetTime() + 6.0;
}

}  // namespace fpscope::gui
