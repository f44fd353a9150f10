// The format palette shared by the report and the viewer: one distinct, legible colour per format,
// and its hex spelling for HTML/SVG.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <gtest/gtest.h>

#include "fpscope/analysis/palette.h"

using namespace fpscope;
using namespace fpscope::analysis;

namespace {

// Relative luminance (WCAG 2), for contrast against the report's white page and the viewer's
// dark plot background (18, 20, 26).
double lum(PaletteRgb c) {
  auto lin = [](uint8_t v) {
    const double s = v / 255.0;
    return s <= 0.03928 ? s / 12.92 : std::pow((s + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
}
double contrast(double a, double b) {
  return (std::max(a, b) + 0.05) / (std::min(a, b) + 0.05);
}

}  // namespace

TEST(Palette, OkabeItoTargetsAndTheirHex) {
  EXPECT_STREQ(format_hex(Format::BF16), "#009e73");
  EXPECT_STREQ(format_hex(Format::FP16), "#e69f00");
  EXPECT_STREQ(format_hex(Format::E4M3), "#cc79a7");
  EXPECT_STREQ(format_hex(Format::E5M2), "#56b4e9");
  EXPECT_STREQ(format_hex(Format::FP32), "#888888");
  EXPECT_STREQ(format_hex(kUnlistedFormat), "#888888");
  EXPECT_STREQ(rgb_hex({0, 15, 255}).c_str(), "#000fff");
  static_assert(format_hex(Format::E5M2)[6] == '9', "usable in constant expressions");
  EXPECT_EQ(format_rgb(kUnlistedFormat), format_rgb(Format::FP32));
}

TEST(Palette, DistinctAndLegibleOnBothBackgrounds) {
  const PaletteRgb dark{18, 20, 26};
  for (int i = 0; i < kNumFormats; ++i) {
    const Format f = static_cast<Format>(i);
    const PaletteRgb c = format_rgb(f);
    SCOPED_TRACE(spec(f).name);
    // Lines and labels: at least 2:1 against white and 3:1 against the dark plots.
    EXPECT_GE(contrast(lum(c), 1.0), 2.0);
    EXPECT_GE(contrast(lum(c), lum(dark)), 3.0);
    for (int j = i + 1; j < kNumFormats; ++j) {
      const PaletteRgb d = format_rgb(static_cast<Format>(j));
      const int dist = std::abs(c.r - d.r) + std::abs(c.g - d.g) + std::abs(c.b - d.b);
      EXPECT_GE(dist, 100) << spec(static_cast<Format>(j)).name;
    }
  }
}
