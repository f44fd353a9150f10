// The screenshot tests' fixture (test_gui_screenshots*.cpp): runs the real fpscope-gui under
// Xvfb on traces, reads back the PNG, the panels' rectangles and the facts (--regions).
#pragma once

#include <gtest/gtest.h>
#include <stb_image.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "fpscope/gui/colors.h"

namespace fpscope::gui_test {

using fpscope::gui::Rgb;
namespace fs = std::filesystem;

inline const char* const kGui = FPSCOPE_GUI_EXE;
inline const char* const kGen = FPSCOPE_GEN_TRACE_EXE;
inline const char* const kSample = FPSCOPE_SAMPLE_TRACE;

inline std::string find_in_path(const std::string& exe) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::error_code ec;
    const fs::path p = fs::path(dir.empty() ? "." : dir) / exe;
    if (fs::exists(p, ec) && access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

inline std::string quote(const std::string& s) {
  std::string r = "'";
  for (char c : s) r += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return r + "'";
}

struct Rect {
  int x = 0, y = 0, w = 0, h = 0;
};

struct Shot {
  int rc = -1;
  int w = 0, h = 0;
  std::vector<unsigned char> rgb;
  nlohmann::json info;  // --regions output
  std::string log;

  Rgb at(int x, int y) const {
    const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(w) + static_cast<size_t>(x)) * 3;
    return {rgb[i], rgb[i + 1], rgb[i + 2]};
  }
  bool has(const std::string& name) const {
    return info.contains("regions") && info["regions"].contains(name);
  }
  Rect region(const std::string& name) const {
    Rect r;
    if (!has(name)) return r;
    const auto& a = info["regions"][name];
    r = {a[0].get<int>(), a[1].get<int>(), a[2].get<int>(), a[3].get<int>()};
    // Clip to the image.
    const int x1 = std::min(w, r.x + r.w), y1 = std::min(h, r.y + r.h);
    r.x = std::max(0, r.x);
    r.y = std::max(0, r.y);
    r.w = std::max(0, x1 - r.x);
    r.h = std::max(0, y1 - r.y);
    return r;
  }
  std::string fact(const std::string& k) const {
    if (!info.contains("facts") || !info["facts"].contains(k)) return "";
    return info["facts"][k].get<std::string>();
  }
  // Pixels of r within `tol` (per channel) of c.
  size_t count(const Rect& r, Rgb c, int tol = 3) const {
    size_t n = 0;
    for (int y = r.y; y < r.y + r.h; ++y)
      for (int x = r.x; x < r.x + r.w; ++x) {
        const Rgb p = at(x, y);
        if (std::abs(p.r - c.r) <= tol && std::abs(p.g - c.g) <= tol && std::abs(p.b - c.b) <= tol)
          ++n;
      }
    return n;
  }
  std::map<uint32_t, size_t> histogram(const Rect& r) const {
    std::map<uint32_t, size_t> m;
    for (int y = r.y; y < r.y + r.h; ++y)
      for (int x = r.x; x < r.x + r.w; ++x) ++m[pack(at(x, y))];
    return m;
  }
  Rgb dominant(const Rect& r) const {
    const auto m = histogram(r);
    uint32_t best = 0;
    size_t n = 0;
    for (const auto& [c, k] : m)
      if (k > n) best = c, n = k;
    return {static_cast<uint8_t>(best & 0xff), static_cast<uint8_t>((best >> 8) & 0xff),
            static_cast<uint8_t>((best >> 16) & 0xff)};
  }
};

class GuiScreenshot : public ::testing::Test {
 protected:
  void SetUp() override {
    xvfb_ = find_in_path("xvfb-run");
    if (xvfb_.empty())
      GTEST_SKIP() << "xvfb-run not found in PATH: the fpscope-gui screenshot tests need it "
                      "(apt-get install xvfb xauth libgl1-mesa-dri, or scripts/install-deps.sh)";
    dir_ = fs::temp_directory_path() /
           ("fpscope_gui_shots_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_, ec);
    if (HasFailure()) std::fprintf(stderr, "screenshots kept in %s\n", dir_.c_str());
  }

  // Runs fpscope-gui on `traces` with `args` at 1600x1000 and reads back the PNG and regions.
  Shot take(const std::string& name, const std::vector<std::string>& traces,
            const std::vector<std::string>& args = {}) {
    Shot s;
    const std::string png = (dir_ / (name + ".png")).string();
    const std::string json = (dir_ / (name + ".json")).string();
    const std::string log = (dir_ / (name + ".log")).string();
    const std::string rcfile = (dir_ / (name + ".rc")).string();
    // The viewer's own exit status goes through a file: xvfb-run replaces it with its own when
    // its clean-up fails (exit 5), which says nothing about the viewer.
    std::string inner = quote(kGui);
    for (const auto& t : traces) inner += " " + quote(t);
    inner += " --size 1600x1000 --frames 4 --timeout 100 --screenshot " + quote(png) +
             " --regions " + quote(json);
    for (const auto& a : args) inner += " " + quote(a);
    inner += "; echo $? > " + quote(rcfile);
    const std::string cmd = quote(xvfb_) + " -a -s '-screen 0 1600x1000x24' sh -c " + quote(inner) +
                            " > " + quote(log) + " 2>&1";
    const int st = std::system(cmd.c_str());
    s.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (std::ifstream rf(rcfile); rf) rf >> s.rc;
    std::ifstream lf(log);
    s.log.assign(std::istreambuf_iterator<char>(lf), {});
    int n = 0;
    if (unsigned char* px = stbi_load(png.c_str(), &s.w, &s.h, &n, 3)) {
      s.rgb.assign(px, px + static_cast<size_t>(s.w) * static_cast<size_t>(s.h) * 3);
      stbi_image_free(px);
    }
    std::ifstream jf(json);
    if (jf) s.info = nlohmann::json::parse(jf, nullptr, false);
    return s;
  }

  std::string xvfb_;
  fs::path dir_;
};

}  // namespace fpscope::gui_test
