// fpscope analysis: shared vocabulary (severity levels, SQNR, fractions).
// Definitions of every statistic: docs/metrics.md.
#pragma once

#include <cstdint>
#include <string>

#include "fpscope/formats.h"

namespace fpscope::analysis {

// Ordered: a higher value is worse. Names ("none", "info", ...) appear in JSON and reports.
enum class Severity : uint8_t { None = 0, Info = 1, Warning = 2, Error = 3, Critical = 4 };
const char* severity_name(Severity s);

// 10*log10(sum_sq / sum_err2) in dB. +infinity when sum_err2 == 0 and sum_sq > 0 (exact cast);
// NaN when sum_sq == 0 (no signal: undefined). JSON writes both as null.
double sqnr_db(double sum_sq, double sum_err2);

// num/den, 0 when den == 0.
inline double fraction(uint64_t num, uint64_t den) {
  return den == 0 ? 0.0 : static_cast<double>(num) / static_cast<double>(den);
}

// The SQNR a well-scaled tensor gets from round-to-nearest in format f (about 6.02 dB per
// significant bit): 6.02 * (man_bits + 1) + 5 dB. Used as the reference for "SQNR degraded".
double nominal_sqnr_db(Format f);

// Short number formatting shared by the text outputs: integers below 1e6 exactly ("65504"), else
// 4 significant digits ("0.0123", "1.5e+08"); fractions as percentages ("12.3%").
std::string fmt_num(double v);
std::string fmt_pct(double frac);

}  // namespace fpscope::analysis
