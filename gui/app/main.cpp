// fpscope-gui: replay a recorded run and see where precision breaks (docs/gui.md).
//
//   fpscope-gui [TRACE ...] [--select ID] [--step K] [--play]
//   fpscope-gui TRACE --screenshot out.png [--frames N] [--size WxH] [--regions out.json]
//
// Exit codes: 0 ok; 1 the PNG could not be written; 2 bad arguments or no OpenGL window
// (no display); 3 screenshot written but some trace could not be opened (its error is shown in
// the window and in the PNG); 4 screenshot written after --timeout while still loading.
#include <GLFW/glfw3.h>
#include <imgui.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>
#include <stb_image_write.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app.h"

namespace {

fpscope::gui::App* g_app = nullptr;

void glfw_error(int code, const char* what) { std::fprintf(stderr, "fpscope-gui: GLFW error %d: %s\n", code, what); }

void on_drop(GLFWwindow*, int n, const char** paths) {
  for (int i = 0; i < n && g_app; ++i) g_app->open(paths[i]);
}

// Reads the back buffer (what was just rendered) and writes it as an RGB PNG.
bool write_png(const std::string& path, int w, int h) {
  std::vector<unsigned char> px(static_cast<size_t>(w) * static_cast<size_t>(h) * 4);
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  glReadBuffer(GL_BACK);
  glReadPixels(0, 0, w, h, GL_RGBA, GL_UNSIGNED_BYTE, px.data());
  std::vector<unsigned char> rgb(static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
  for (int y = 0; y < h; ++y) {
    const unsigned char* src = px.data() + static_cast<size_t>(h - 1 - y) * static_cast<size_t>(w) * 4;
    unsigned char* dst = rgb.data() + static_cast<size_t>(y) * static_cast<size_t>(w) * 3;
    for (int x = 0; x < w; ++x) {
      dst[3 * x] = src[4 * x];
      dst[3 * x + 1] = src[4 * x + 1];
      dst[3 * x + 2] = src[4 * x + 2];
    }
  }
  return stbi_write_png(path.c_str(), w, h, 3, rgb.data(), w * 3) != 0;
}

GLFWwindow* create_window(int w, int h, bool visible, const char** glsl) {
  struct Try {
    int major, minor;
    bool core;
    const char* glsl;
  };
  // GL 3.3 core first; then any 3.0 context; then whatever the driver gives (Mesa: 2.1+).
  const Try tries[] = {{3, 3, true, "#version 150"}, {3, 0, false, "#version 130"}, {0, 0, false, "#version 120"}};
  for (const auto& t : tries) {
    glfwDefaultWindowHints();
    glfwWindowHint(GLFW_VISIBLE, visible ? GLFW_TRUE : GLFW_FALSE);
    if (t.major) {
      glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, t.major);
      glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, t.minor);
    }
    if (t.core) {
      glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
      glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE);
    }
    if (GLFWwindow* win = glfwCreateWindow(w, h, "fpscope", nullptr, nullptr)) {
      *glsl = t.glsl;
      return win;
    }
  }
  return nullptr;
}

void setup_style(float font_size) {
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;  // the layout is computed, nothing to remember
  const char* fonts[] = {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                         "/usr/share/fonts/TTF/DejaVuSans.ttf"};
  bool loaded = false;
  for (const char* f : fonts) {
    std::error_code ec;
    if (std::filesystem::exists(f, ec) && io.Fonts->AddFontFromFileTTF(f, font_size)) {
      loaded = true;
      break;
    }
  }
  if (!loaded) {  // ImGui's built-in 13 px font, scaled
    io.Fonts->AddFontDefault();
    io.FontGlobalScale = font_size / 13.0f;
  }
  ImGui::StyleColorsDark();
  ImGuiStyle& s = ImGui::GetStyle();
  s.WindowPadding = ImVec2(8, 6);
  s.FramePadding = ImVec2(6, 3);
  s.ItemSpacing = ImVec2(8, 5);
  s.CellPadding = ImVec2(5, 2);
  s.ChildRounding = 4;
  s.FrameRounding = 3;
  s.WindowBorderSize = 0;
  s.ChildBorderSize = 1;
  ImVec4* c = s.Colors;
  c[ImGuiCol_WindowBg] = ImVec4(0.075f, 0.08f, 0.095f, 1);
  c[ImGuiCol_ChildBg] = ImVec4(0.105f, 0.11f, 0.13f, 1);
  c[ImGuiCol_Border] = ImVec4(0.25f, 0.27f, 0.32f, 1);
  c[ImGuiCol_TableRowBgAlt] = ImVec4(1, 1, 1, 0.035f);
  c[ImGuiCol_Header] = ImVec4(0.26f, 0.42f, 0.68f, 0.55f);
  c[ImGuiCol_HeaderHovered] = ImVec4(0.26f, 0.42f, 0.68f, 0.75f);
}

}  // namespace

int main(int argc, char** argv) {
  fpscope::gui::AppOptions opt;
  std::string screenshot, regions_path, frame_times_path, size = "1600x1000";
  int frames = 3;
  double timeout = 120.0;
  float speed = 0;
  CLI::App cli{"fpscope-gui: replay a recorded run and see where precision breaks"};
  cli.add_option("traces", opt.traces, "trace files (.fpst) to open; the first is the primary run");
  cli.add_option("--select", opt.select, "tensor id (or name) to select first (default: the worst)");
  cli.add_option("--step", opt.step, "step to show first (default: where the selection first fails)");
  cli.add_flag("--play", opt.play, "start replaying");
  cli.add_option("--play-speed", speed, "replay speed in steps per second");
  cli.add_option("--font-size", opt.font_size, "font size in pixels (default 15)");
  cli.add_option("--size", size, "window size WxH (default 1600x1000)");
  cli.add_option("--screenshot", screenshot, "render, write this PNG and exit (works under Xvfb)");
  cli.add_option("--frames", frames, "frames rendered once everything is loaded (default 3)");
  cli.add_option("--timeout", timeout, "seconds to wait for loading before the screenshot (120)");
  cli.add_option("--regions", regions_path, "with --screenshot: write the panels' rectangles as JSON");
  cli.add_option("--frame-times", frame_times_path, "with --screenshot: write the frame times (ms) as JSON");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 2;
  }
  int width = 1600, height = 1000;
  if (std::sscanf(size.c_str(), "%dx%d", &width, &height) != 2 || width < 320 || height < 240) {
    std::fprintf(stderr, "fpscope-gui: --size %s: expected WxH, at least 320x240\n", size.c_str());
    return 2;
  }
  frames = std::max(1, frames);
  const bool shot = !screenshot.empty();

  glfwSetErrorCallback(glfw_error);
  if (!glfwInit()) {
    std::fprintf(stderr, "fpscope-gui: cannot initialise GLFW (no display? try xvfb-run -a)\n");
    return 2;
  }
  const char* glsl = "#version 130";
  GLFWwindow* win = create_window(width, height, true, &glsl);
  if (!win) {
    std::fprintf(stderr, "fpscope-gui: cannot create an OpenGL window\n");
    glfwTerminate();
    return 2;
  }
  glfwMakeContextCurrent(win);
  glfwSwapInterval(shot ? 0 : 1);
  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  setup_style(opt.font_size);
  ImGui_ImplGlfw_InitForOpenGL(win, true);
  ImGui_ImplOpenGL3_Init(glsl);
  glfwSetDropCallback(win, on_drop);

  int rc = 0;
  {
    fpscope::gui::App app(opt);
    if (speed > 0) app.set_play_speed(speed);
    g_app = &app;
    const auto start = std::chrono::steady_clock::now();
    int idle_frames = 0;
    std::vector<double> times;
    auto last = std::chrono::steady_clock::now();
    while (!glfwWindowShouldClose(win) && !app.quit_requested()) {
      glfwPollEvents();
      ImGui_ImplOpenGL3_NewFrame();
      ImGui_ImplGlfw_NewFrame();
      ImGui::NewFrame();
      int fw = 0, fh = 0;
      glfwGetFramebufferSize(win, &fw, &fh);
      const ImVec2 disp = ImGui::GetIO().DisplaySize;
      app.frame(disp.x, disp.y);
      ImGui::Render();
      glViewport(0, 0, fw, fh);
      glClearColor(0.075f, 0.08f, 0.095f, 1.0f);
      glClear(GL_COLOR_BUFFER_BIT);
      ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
      if (const std::string req = app.take_png_request(); !req.empty()) app.png_written(req, write_png(req, fw, fh));
      bool done = false;
      if (shot) {
        const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (app.idle()) ++idle_frames;
        const bool timed_out = waited > timeout;
        if (idle_frames >= frames || timed_out) {
          glFinish();
          if (!write_png(screenshot, fw, fh)) {
            std::fprintf(stderr, "fpscope-gui: cannot write %s\n", screenshot.c_str());
            rc = 1;
          } else {
            rc = timed_out ? 4 : (app.any_failed() ? 3 : 0);
          }
          if (!regions_path.empty()) {
            const float sx = disp.x > 0 ? static_cast<float>(fw) / disp.x : 1.0f;
            const float sy = disp.y > 0 ? static_cast<float>(fh) / disp.y : 1.0f;
            nlohmann::json j;
            j["width"] = fw;
            j["height"] = fh;
            for (const auto& [name, r] : app.regions())
              j["regions"][name] = {std::lround(r.x * sx), std::lround(r.y * sy), std::lround(r.z * sx),
                                    std::lround(r.w * sy)};
            std::ofstream(regions_path) << j.dump(1) << "\n";
          }
          done = true;
        }
      }
      glfwSwapBuffers(win);
      if (shot) glFinish();
      const auto now = std::chrono::steady_clock::now();
      if (shot && idle_frames > 1) times.push_back(std::chrono::duration<double, std::milli>(now - last).count());
      last = now;
      if (done) break;
    }
    if (!frame_times_path.empty() && !times.empty()) {
      std::vector<double> sorted = times;
      std::sort(sorted.begin(), sorted.end());
      nlohmann::json j;
      j["frames"] = times.size();
      j["median_ms"] = sorted[sorted.size() / 2];
      j["p90_ms"] = sorted[sorted.size() * 9 / 10];
      j["max_ms"] = sorted.back();
      j["frame_ms"] = times;
      std::ofstream(frame_times_path) << j.dump() << "\n";
      std::printf("frames %zu  median %.2f ms  p90 %.2f ms  max %.2f ms\n", times.size(), sorted[sorted.size() / 2],
                  sorted[sorted.size() * 9 / 10], sorted.back());
    }
    g_app = nullptr;
  }
  ImGui_ImplOpenGL3_Shutdown();
  ImGui_ImplGlfw_Shutdown();
  ImGui::DestroyContext();
  glfwDestroyWindow(win);
  glfwTerminate();
  return rc;
}
