// Internal: a tiny deterministic SVG builder (fixed number formatting).
#pragma once

#include <string>

#include <fmt/format.h>

namespace fpscope::analysis::detail {

std::string xml_escape(const std::string& s);

class Svg {
 public:
  Svg(int w, int h) : w_(w), h_(h) {}
  void raw(const std::string& s) { body_ += s; }
  void line(double x1, double y1, double x2, double y2, const char* stroke, double width = 1.0,
            const char* dash = nullptr) {
    body_ += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"{:.1f}\"{}/>\n",
        x1, y1, x2, y2, stroke, width,
        dash ? fmt::format(" stroke-dasharray=\"{}\"", dash) : std::string());
  }
  void rect(double x, double y, double w, double h, const std::string& fill, double opacity = 1.0) {
    body_ += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"{}/>\n", x,
        y, w, h, fill, opacity < 1.0 ? fmt::format(" fill-opacity=\"{:.2f}\"", opacity) : "");
  }
  void text(double x, double y, const std::string& s, int size = 11, const char* anchor = "start",
            const char* fill = "#333") {
    body_ += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"{}\" text-anchor=\"{}\" "
        "fill=\"{}\">{}</text>\n",
        x, y, size, anchor, fill, xml_escape(s));
  }
  void circle(double x, double y, double r, const char* fill) {
    body_ += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{:.1f}\" fill=\"{}\"/>\n", x, y,
                         r, fill);
  }
  // Polyline from "x,y x,y" point text.
  void polyline(const std::string& pts, const char* stroke, double width = 1.5) {
    if (pts.empty()) return;
    body_ += fmt::format(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{:.1f}\"/>\n", pts,
        stroke, width);
  }
  std::string str() const {
    return fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} "
        "{}\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" "
        "fill=\"white\"/>\n{}</svg>\n",
        w_, h_, w_, h_, body_);
  }

 private:
  int w_, h_;
  std::string body_;
};

}  // namespace fpscope::analysis::detail
