#include "fpscope/gui/colors.h"

#include <algorithm>
#include <cmath>

#include "fpscope/analysis/palette.h"

namespace fpscope::gui {

Rgb severity_color(analysis::Severity s) {
  switch (s) {
    case analysis::Severity::None:
      return {0, 0, 0};
    case analysis::Severity::Info:
      return {38, 78, 128};
    case analysis::Severity::Warning:
      return {138, 112, 0};
    case analysis::Severity::Error:
      return {178, 74, 14};
    case analysis::Severity::Critical:
      return {168, 22, 44};
  }
  return {0, 0, 0};
}

Rgb format_color(Format f) {
  const analysis::PaletteRgb c = analysis::format_rgb(f);
  return {c.r, c.g, c.b};
}

namespace {
// Viridis, 9 stops (matplotlib's _viridis_data at 0, 1/8, ..., 1).
constexpr float kViridis[9][3] = {
    {0.267f, 0.005f, 0.329f}, {0.283f, 0.141f, 0.458f}, {0.254f, 0.265f, 0.530f},
    {0.207f, 0.372f, 0.553f}, {0.164f, 0.471f, 0.558f}, {0.128f, 0.567f, 0.551f},
    {0.135f, 0.659f, 0.518f}, {0.267f, 0.749f, 0.441f}, {0.993f, 0.906f, 0.144f}};
}  // namespace

Rgb heat_color(float t) {
  t = std::clamp(std::isnan(t) ? 0.0f : t, 0.0f, 1.0f);
  // The last viridis segment is long in colour space; insert its midpoint for smoothness.
  static constexpr float kMid[3] = {0.478f, 0.821f, 0.318f};  // viridis(0.9375)
  float p[3];
  const float x = t * 8.0f;
  const int i = std::min(7, static_cast<int>(x));
  const float f = x - static_cast<float>(i);
  if (i == 7) {
    const float* a = f < 0.5f ? kViridis[7] : kMid;
    const float* b = f < 0.5f ? kMid : kViridis[8];
    const float g = f < 0.5f ? f * 2.0f : (f - 0.5f) * 2.0f;
    for (int k = 0; k < 3; ++k) p[k] = a[k] + (b[k] - a[k]) * g;
  } else {
    for (int k = 0; k < 3; ++k) p[k] = kViridis[i][k] + (kViridis[i + 1][k] - kViridis[i][k]) * f;
  }
  auto u8 = [](float v) {
    return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f));
  };
  return {u8(p[0]), u8(p[1]), u8(p[2])};
}

float heat_t(double frac) {
  if (!(frac > 0.0)) return -1.0f;
  const double t = (std::log10(std::max(frac, kHeatMinFrac)) - std::log10(kHeatMinFrac)) /
                   -std::log10(kHeatMinFrac);
  return static_cast<float>(std::clamp(t, 0.0, 1.0));
}

}  // namespace fpscope::gui
