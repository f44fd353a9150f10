// fpscope-gui: replay a recorded run and see where precision breaks (docs/gui.md).
//
//   fpscope-gui [TRACE|DIR|GLOB ...] [--ranks|--runs] [--rank R] [--select ID] [--step K] [--play]
//   fpscope-gui TRACE --screenshot out.png [--frames N] [--size WxH] [--regions out.json]
//               [--frame-times out.json] [--bench-interact]
//
// Several traces are one run's ranks (a rank set: rank selector, ranks x steps heatmap) or
// separate runs (overlaid in the drift panel): --ranks / --runs say which; by default they are a
// rank set when each carries its rank in the metadata, all of one world size, no rank twice
// (gui/core rank_view.h is_rank_set).
//
// Exit codes: 0 ok; 1 the PNG could not be written; 2 bad arguments or no OpenGL window
// (no display); 3 screenshot written but some trace could not be opened (its error is shown in
// the window and in the PNG); 4 screenshot written after --timeout while still loading.
#include <GLFW/glfw3.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>
#include <stb_image_write.h>

#include <time.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app.h"
#include "fpscope/analysis/ranks.h"
#include "plot.h"

namespace {

fpscope::gui::App* g_app = nullptr;

void glfw_error(int code, const char* what) {
  std::fprintf(stderr, "fpscope-gui: GLFW error %d: %s\n", code, what);
}

// Set by any input event (the ImGui GLFW backend chains to these callbacks, installed before it).
bool g_input = false;
void note_cursor(GLFWwindow*, double, double) {
  g_input = true;
}
void note_button(GLFWwindow*, int, int, int) {
  g_input = true;
}
void note_scroll(GLFWwindow*, double, double) {
  g_input = true;
}
void note_key(GLFWwindow*, int, int, int, int) {
  g_input = true;
}
void note_char(GLFWwindow*, unsigned int) {
  g_input = true;
}
void note_enter(GLFWwindow*, int) {
  g_input = true;
}
void note_focus(GLFWwindow*, int) {
  g_input = true;
}

void on_drop(GLFWwindow*, int n, const char** paths) {
  g_input = true;
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
    const unsigned char* src =
        px.data() + static_cast<size_t>(h - 1 - y) * static_cast<size_t>(w) * 4;
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
  const Try tries[] = {
      {3, 3, true, "#version 150"}, {3, 0, false, "#version 130"}, {0, 0, false, "#version 120"}};
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

// The panels' colour: the whole window is cleared to it and the panels draw no background of
// their own (see setup_style).
constexpr float kPanelBg[3] = {0.105f, 0.11f, 0.13f};

void setup_style(float font_size) {
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;  // the layout is computed, nothing to remember
  const char* fonts[] = {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                         "/usr/share/fonts/TTF/DejaVuSans.ttf"};
  bool loaded = false;
  // Glyphs rasterised at their final size, one texel per pixel, drawn at whole pixels: the font
  // texture can then be sampled with GL_NEAREST (see use_nearest_font_filter) at no loss.
  ImFontConfig cfg;
  cfg.OversampleH = 1;
  cfg.OversampleV = 1;
  cfg.PixelSnapH = true;
  for (const char* f : fonts) {
    std::error_code ec;
    if (std::filesystem::exists(f, ec) && io.Fonts->AddFontFromFileTTF(f, font_size, &cfg)) {
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
  // Anti-aliased lines from geometry, not from the font texture's baked lines (which want
  // bilinear filtering).
  s.AntiAliasedLinesUseTex = false;
  ImVec4* c = s.Colors;
  // Software OpenGL (Mesa llvmpipe, what Xvfb gives) pays for every blended pixel: a full-window
  // background plus full-size panel backgrounds were 2/3 of the frame time. The clear colour is
  // the panel colour; the main window and the panels draw no background (borders separate them).
  c[ImGuiCol_WindowBg] = ImVec4(kPanelBg[0], kPanelBg[1], kPanelBg[2], 1);
  c[ImGuiCol_ChildBg] = ImVec4(0, 0, 0, 0);
  c[ImGuiCol_PopupBg] = ImVec4(0.09f, 0.095f, 0.115f, 0.98f);
  c[ImGuiCol_Border] = ImVec4(0.25f, 0.27f, 0.32f, 1);
  c[ImGuiCol_TableRowBgAlt] = ImVec4(1, 1, 1, 0.035f);
  c[ImGuiCol_Header] = ImVec4(0.26f, 0.42f, 0.68f, 0.55f);
  c[ImGuiCol_HeaderHovered] = ImVec4(0.26f, 0.42f, 0.68f, 0.75f);
}

// The font atlas is uploaded by the OpenGL3 backend with GL_LINEAR filtering; with glyphs at one
// texel per pixel (setup_style) GL_NEAREST draws the same pixels and is much cheaper on llvmpipe.
void use_nearest_font_filter() {
  const auto tex = static_cast<GLuint>(reinterpret_cast<intptr_t>(ImGui::GetIO().Fonts->TexID));
  if (!tex) return;
  glBindTexture(GL_TEXTURE_2D, tex);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
}

// The plot data areas queued this frame (plot.h), cleared to their background under the draw
// data: scissored clears instead of filled triangles.
void clear_plot_backgrounds(const ImDrawData* dd, int fb_height) {
  const std::vector<ImRect> rects = fpscope::gui::take_plot_backgrounds();
  if (rects.empty() || !dd) return;
  const ImVec4 c = ImGui::ColorConvertU32ToFloat4(fpscope::gui::kPlotBackground);
  glClearColor(c.x, c.y, c.z, 1.0f);
  glEnable(GL_SCISSOR_TEST);
  const ImVec2 o = dd->DisplayPos, sc = dd->FramebufferScale;
  for (const ImRect& r : rects) {
    const auto x0 = static_cast<int>(std::lround((r.Min.x - o.x) * sc.x));
    const auto x1 = static_cast<int>(std::lround((r.Max.x - o.x) * sc.x));
    const auto y0 = static_cast<int>(std::lround((r.Min.y - o.y) * sc.y));
    const auto y1 = static_cast<int>(std::lround((r.Max.y - o.y) * sc.y));
    if (x1 <= x0 || y1 <= y0) continue;
    glScissor(x0, fb_height - y1, x1 - x0, y1 - y0);  // GL: origin at the bottom left
    glClear(GL_COLOR_BUFFER_BIT);
  }
  glDisable(GL_SCISSOR_TEST);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// CPU time of the whole process (every thread: the UI thread, Mesa's llvmpipe rasteriser threads,
// background jobs), in ms. Unlike wall time it does not grow when other processes load the
// machine, so it shows how much work a frame is.
double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  fpscope::gui::AppOptions opt;
  std::string screenshot, regions_path, frame_times_path, size = "1600x1000";
  int frames = 3;
  double timeout = 120.0;
  float speed = 0;
  CLI::App cli{"fpscope-gui: replay a recorded run and see where precision breaks"};
  std::vector<std::string> args;
  cli.add_option(
      "traces", args,
      "trace files (.fpst), directories (their *.fpst) or globs ('run-*.fpst'); the first "
      "is the primary run");
  bool as_ranks = false, as_runs = false;
  auto* ranks_flag = cli.add_flag(
      "--ranks", as_ranks,
      "the traces are the ranks of one run (one per rank, e.g. recorded with -o 'run-%r.fpst'): "
      "a rank selector and a ranks x steps heatmap. Default: so when every trace carries its rank "
      "(RANK/WORLD_SIZE...) in its metadata, all with one world size and no rank twice");
  cli.add_flag("--runs", as_runs,
               "the traces are separate runs compared with each other (drift panel overlays), "
               "even when they are ranks of one run")
      ->excludes(ranks_flag);
  cli.add_option("--select", opt.select,
                 "tensor id (or name) to select first (default: the worst)");
  cli.add_option("--step", opt.step,
                 "step to show first (default: where the selection first fails)");
  cli.add_option("--rank", opt.rank,
                 "a rank set: the rank to show first (default: the rank that broke first)");
  cli.add_flag("--play", opt.play, "start replaying");
  cli.add_option("--play-speed", speed, "replay speed in steps per second");
  cli.add_option("--font-size", opt.font_size, "font size in pixels (default 15)");
  cli.add_option("--size", size, "window size WxH (default 1600x1000)");
  cli.add_option("--screenshot", screenshot, "render, write this PNG and exit (works under Xvfb)");
  cli.add_option("--frames", frames, "frames rendered once everything is loaded (default 3)");
  cli.add_option("--timeout", timeout, "seconds to wait for loading before the screenshot (120)");
  cli.add_option("--regions", regions_path,
                 "with --screenshot: write the panels' rectangles as JSON");
  cli.add_option("--frame-times", frame_times_path,
                 "with --screenshot: write the frame times (ms) as JSON");
  bool bench = false;
  cli.add_flag("--bench-interact", bench,
               "with --screenshot: after loading, replay and zoom/pan the step axis every frame "
               "(a scripted user) for the --frames frames, then write the PNG");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 2;
  }
  if (!args.empty()) {
    std::string err;
    if (!fpscope::analysis::expand_trace_args(args, &opt.traces, &err)) {
      std::fprintf(stderr, "fpscope-gui: %s\n", err.c_str());
      return 2;
    }
  }
  opt.rank_mode = as_ranks  ? fpscope::gui::RankSetMode::Ranks
                  : as_runs ? fpscope::gui::RankSetMode::Runs
                            : fpscope::gui::RankSetMode::Auto;
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
  glfwSetCursorPosCallback(win, note_cursor);
  glfwSetMouseButtonCallback(win, note_button);
  glfwSetScrollCallback(win, note_scroll);
  glfwSetKeyCallback(win, note_key);
  glfwSetCharCallback(win, note_char);
  glfwSetCursorEnterCallback(win, note_enter);
  glfwSetWindowFocusCallback(win, note_focus);
  ImGui_ImplGlfw_InitForOpenGL(win, true);  // chains to the callbacks above
  ImGui_ImplOpenGL3_Init(glsl);
  glfwSetDropCallback(win, on_drop);

  int rc = 0;
  {
    fpscope::gui::App app(opt);
    if (speed > 0) app.set_play_speed(speed);
    g_app = &app;
    const auto start = std::chrono::steady_clock::now();
    int idle_frames = 0;   // frames rendered while everything was loaded and computed
    int bench_frames = 0;  // --bench-interact: scripted frames so far
    bool font_filter_set = false;
    int busy_frames = 0;  // interactive: frames still to render after input or work
    // Per frame: total (frame start to the next), UI (build the ImGui frame: App::frame and
    // ImGui::Render, all on this thread), draw (OpenGL commands and glFinish: the rasteriser),
    // swap (present to the X server).
    std::vector<double> times, ui_ms, draw_ms, swap_ms, cpu_ms;
    size_t last_cmds = 0, last_vtx = 0, last_idx = 0;  // geometry of the last measured frame
    auto last = std::chrono::steady_clock::now();
    double last_cpu = process_cpu_ms();
    while (!glfwWindowShouldClose(win) && !app.quit_requested()) {
      // Interactive use: sleep until input when nothing changes on its own (no busy loop on a
      // shared machine); render a few frames after each event so that hover states settle, and
      // one every half second otherwise (messages time out).
      g_input = false;
      if (!shot && app.idle() && !app.animating() && busy_frames <= 0) {
        glfwWaitEventsTimeout(0.5);
        busy_frames = g_input ? 3 : 1;
      } else {
        glfwPollEvents();
        if (g_input) busy_frames = 3;
      }
      --busy_frames;
      if (!app.idle()) busy_frames = 3;
      const auto t0 = std::chrono::steady_clock::now();
      ImGui_ImplOpenGL3_NewFrame();
      ImGui_ImplGlfw_NewFrame();
      // Screenshots: no pointer (Xvfb puts it mid-screen, where it would hover a plot and open a
      // tooltip over it).
      if (shot) ImGui::GetIO().MousePos = ImVec2(-FLT_MAX, -FLT_MAX);
      if (!font_filter_set) {  // the backend creates the font texture in its first NewFrame
        use_nearest_font_filter();
        font_filter_set = true;
      }
      ImGui::NewFrame();
      int fw = 0, fh = 0;
      glfwGetFramebufferSize(win, &fw, &fh);
      const ImVec2 disp = ImGui::GetIO().DisplaySize;
      const bool benching = shot && bench && idle_frames > 0;
      if (benching) app.bench_tick(bench_frames++);
      app.frame(disp.x, disp.y);
      ImGui::Render();
      const double t_ui = ms_since(t0);
      const auto t1 = std::chrono::steady_clock::now();
      glViewport(0, 0, fw, fh);
      glClearColor(kPanelBg[0], kPanelBg[1], kPanelBg[2], 1.0f);
      glClear(GL_COLOR_BUFFER_BIT);
      ImDrawData* dd = ImGui::GetDrawData();
      clear_plot_backgrounds(dd, fh);
      ImGui_ImplOpenGL3_RenderDrawData(dd);
      if (shot) glFinish();
      const double t_draw = ms_since(t1);
      if (const std::string req = app.take_png_request(); !req.empty())
        app.png_written(req, write_png(req, fw, fh));
      bool done = false;
      if (shot) {
        const double waited =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (app.idle() || bench_frames > 0) ++idle_frames;
        const bool timed_out = waited > timeout;
        if ((bench ? bench_frames >= frames : idle_frames >= frames) || timed_out) {
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
            j["regions"] = nlohmann::json::object();
            for (const auto& [name, r] : app.regions())
              j["regions"][name] = {std::lround(r.x * sx), std::lround(r.y * sy),
                                    std::lround(r.z * sx), std::lround(r.w * sy)};
            j["facts"] = nlohmann::json::object();
            for (const auto& [k, v] : app.facts()) j["facts"][k] = v;
            std::ofstream(regions_path) << j.dump(1) << "\n";
          }
          done = true;
        }
      }
      const auto t2 = std::chrono::steady_clock::now();
      glfwSwapBuffers(win);
      if (shot) glFinish();
      const double t_swap = ms_since(t2);
      const auto now = std::chrono::steady_clock::now();
      const double now_cpu = process_cpu_ms();
      // Measured: the frames once everything is loaded (static view), or the scripted ones.
      if (shot && (bench ? bench_frames > 1 : idle_frames > 1) && !done) {
        times.push_back(std::chrono::duration<double, std::milli>(now - last).count());
        ui_ms.push_back(t_ui);
        draw_ms.push_back(t_draw);
        swap_ms.push_back(t_swap);
        cpu_ms.push_back(now_cpu - last_cpu);
        last_cmds = 0;
        for (int l = 0; l < dd->CmdListsCount; ++l)
          last_cmds += static_cast<size_t>(dd->CmdLists[l]->CmdBuffer.Size);
        last_vtx = static_cast<size_t>(dd->TotalVtxCount);
        last_idx = static_cast<size_t>(dd->TotalIdxCount);
      }
      last = now;
      last_cpu = now_cpu;
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
      j["ui_median_ms"] = median(ui_ms);
      j["draw_median_ms"] = median(draw_ms);
      j["swap_median_ms"] = median(swap_ms);
      j["cpu_median_ms"] = median(cpu_ms);
      j["bench_interact"] = bench;
      j["draw_calls"] = last_cmds;
      j["vertices"] = last_vtx;
      j["triangles"] = last_idx / 3;
      j["frame_ms"] = times;
      std::ofstream(frame_times_path) << j.dump() << "\n";
      std::printf(
          "frames %zu  median %.2f ms  p90 %.2f ms  max %.2f ms  (medians: ui %.2f, draw %.2f, "
          "swap %.2f ms; "
          "process CPU %.2f ms/frame; last frame %zu draw calls, %zu triangles)\n",
          times.size(), sorted[sorted.size() / 2], sorted[sorted.size() * 9 / 10], sorted.back(),
          median(ui_ms), median(draw_ms), median(swap_ms), median(cpu_ms), last_cmds, last_idx / 3);
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
