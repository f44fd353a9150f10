// The one colour per number format, shared by the HTML/SVG report and the viewer (the GUI's
// format_color() returns these), so a format looks the same everywhere.
//
// The cast targets take four colours of Okabe & Ito's colour-blind-safe set ("Color Universal
// Design", 2008), chosen to read on the report's white page and on the viewer's dark plots alike
// (Okabe-Ito's dark blue, yellow and black are left out for that reason, its vermillion because
// the reports and the viewer draw errors and NaN/Inf in red). FP32, a storage type only, is
// neutral grey.
#pragma once

#include <cstdint>

#include "fpscope/formats.h"

namespace fpscope::analysis {

struct PaletteRgb {
  uint8_t r = 0, g = 0, b = 0;
  constexpr bool operator==(const PaletteRgb&) const = default;
};

// The colour of format f; formats outside kFormats (kUnlistedFormat) get FP32's grey.
constexpr PaletteRgb format_rgb(Format f) {
  switch (f) {
    case Format::FP32:
      return {136, 136, 136};  // neutral grey
    case Format::BF16:
      return {0, 158, 115};  // Okabe-Ito bluish green #009e73
    case Format::FP16:
      return {230, 159, 0};  // Okabe-Ito orange #e69f00
    case Format::E4M3:
      return {204, 121, 167};  // Okabe-Ito reddish purple #cc79a7
    case Format::E5M2:
      return {86, 180, 233};  // Okabe-Ito sky blue #56b4e9
  }
  return {136, 136, 136};
}

// "#rrggbb" (lower case), for HTML and SVG attributes.
struct HexColor {
  char text[8] = {};
  constexpr const char* c_str() const { return text; }
};
constexpr HexColor rgb_hex(PaletteRgb c) {
  constexpr char kDigits[] = "0123456789abcdef";
  HexColor h;
  h.text[0] = '#';
  const uint8_t v[3] = {c.r, c.g, c.b};
  for (int i = 0; i < 3; ++i) {
    h.text[1 + 2 * i] = kDigits[v[i] >> 4];
    h.text[2 + 2 * i] = kDigits[v[i] & 15];
  }
  return h;
}

namespace detail {
// Indexed by the Format value (0 .. kNumFormats-1).
inline constexpr HexColor kFormatHex[kNumFormats] = {
    rgb_hex(format_rgb(static_cast<Format>(0))), rgb_hex(format_rgb(static_cast<Format>(1))),
    rgb_hex(format_rgb(static_cast<Format>(2))), rgb_hex(format_rgb(static_cast<Format>(3))),
    rgb_hex(format_rgb(static_cast<Format>(4)))};
static_assert(kNumFormats == 5, "kFormatHex lists every Format value");
}  // namespace detail

// format_rgb(f) as "#rrggbb": a string with static storage (SVG attributes take const char*).
constexpr const char* format_hex(Format f) {
  const int i = static_cast<int>(f);
  return detail::kFormatHex[i < kNumFormats ? i : 0].c_str();
}

}  // namespace fpscope::analysis
