#include "fpscope/analysis/common.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace fpscope::analysis {

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::None:
      return "none";
    case Severity::Info:
      return "info";
    case Severity::Warning:
      return "warning";
    case Severity::Error:
      return "error";
    case Severity::Critical:
      return "critical";
  }
  return "none";
}

double sqnr_db(double sum_sq, double sum_err2) {
  if (!(sum_sq > 0.0)) return std::numeric_limits<double>::quiet_NaN();
  if (!(sum_err2 > 0.0)) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(sum_sq / sum_err2);
}

double nominal_sqnr_db(Format f) {
  return 6.02 * (spec(f).man_bits + 1) + 5.0;
}

std::string fmt_num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  const double a = std::fabs(v);
  if (a == 0.0) return "0";
  if (a >= 1.0 && a < 1e6 && v == std::round(v)) return fmt::format("{:.0f}", v);
  if (a >= 1e5 || a < 1e-3) return fmt::format("{:.3g}", v);
  return fmt::format("{:.4g}", v);
}

std::string fmt_pct(double frac) {
  if (frac == 0.0) return "0%";
  const double p = frac * 100.0;
  if (p < 0.01) return fmt::format("{:.2g}%", p);
  return fmt::format("{:.3g}%", p);
}

}  // namespace fpscope::analysis
