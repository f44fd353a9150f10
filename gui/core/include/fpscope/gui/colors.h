// Colours that mean something, shared by every panel (and by the screenshot tests, which look
// for them in the pixels). No ImGui here: plain 8-bit RGB.
#pragma once

#include <cstdint>

#include "fpscope/analysis/common.h"
#include "fpscope/formats.h"

namespace fpscope::gui {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// ImGui's IM_COL32 packing (R in the low byte).
constexpr uint32_t pack(Rgb c, uint8_t a = 255) {
  return static_cast<uint32_t>(c.r) | (static_cast<uint32_t>(c.g) << 8) |
         (static_cast<uint32_t>(c.b) << 16) | (static_cast<uint32_t>(a) << 24);
}

// Opaque cell backgrounds in the tensor browser, one per severity (None: no background).
// Dark enough for white text; ordered from cool (info) to hot (critical).
Rgb severity_color(analysis::Severity s);
// One colour per format, used for its lines, bands and legend entries in every panel: the
// analysis palette's (fpscope/analysis/palette.h), the one the HTML report uses too.
Rgb format_color(Format f);
// Heat map: t in [0, 1] -> perceptual dark-blue..yellow ramp (viridis), monotone in luminance.
Rgb heat_color(float t);
// Fraction of elements -> heat t: log scale, 1e-6 -> 0 (but > 0 stays visible), 1 -> 1.
// Returns a negative value for frac <= 0 (nothing there: draw the background).
float heat_t(double frac);
inline constexpr double kHeatMinFrac = 1e-6;

}  // namespace fpscope::gui
