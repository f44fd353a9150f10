// fpscope analysis: shared vocabulary (severity levels, SQNR, fractions, run metadata, text).
// Definitions of every statistic: docs/metrics.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/stats.h"

namespace fpscope::analysis {

// Ordered: a higher value is worse. Names ("none", "info", ...) appear in JSON and reports.
enum class Severity : uint8_t { None = 0, Info = 1, Warning = 2, Error = 3, Critical = 4 };
const char* severity_name(Severity s);

// THE definition of SQNR in the analysis (every consumer goes through it): 10*log10(sum_sq /
// sum_err2) in dB over a set of elements (one observation, a step, a tensor's whole run), where
// `overflow` is how many of them overflowed the format.
//  - NaN (undefined) when overflow > 0: sum_err2 leaves out the overflowed elements, whose error
//    under a non-saturating cast is infinite, while sum_sq includes them, so the quotient would
//    overstate the quality (E4M3 "92 dB" on a tensor whose values mostly overflow);
//  - NaN when sum_sq == 0 (no signal);
//  - +infinity when sum_err2 == 0 (an exact cast).
// JSON writes NaN and +infinity as null; text writes "n/a" and "exact".
double sqnr_db(double sum_sq, double sum_err2, uint64_t overflow);
// The same for one observation (or a per-step merge) and target index f (kTargets order).
inline double sqnr_db(const StatsScalars& s, int f) {
  return sqnr_db(s.sum_sq, s.fmt[f].sum_err2, s.fmt[f].overflow);
}

// num/den, 0 when den == 0.
inline double fraction(uint64_t num, uint64_t den) {
  return den == 0 ? 0.0 : static_cast<double>(num) / static_cast<double>(den);
}

// The SQNR a well-scaled tensor gets from round-to-nearest in format f (about 6.02 dB per
// significant bit): 6.02 * (man_bits + 1) + 5 dB. Used as the reference for "SQNR degraded".
double nominal_sqnr_db(Format f);
// The same rule for an element format of `man_bits` explicit mantissa bits (block formats).
double nominal_sqnr_db_bits(int man_bits);

// Short number formatting shared by the text outputs: integers below 1e6 exactly ("65504"), else
// 4 significant digits ("0.0123", "1.5e+08"); fractions as percentages ("12.3%").
std::string fmt_num(double v);
std::string fmt_pct(double frac);
// SQNR for text: "n/a" (NaN: undefined), "exact" (+inf), else "{:.1f} dB" (with_unit) or "{:.1f}".
std::string fmt_sqnr(double db, bool with_unit = true);
// "1 step", "3 steps" (noun gets an "s" unless n == 1).
std::string plural(uint64_t n, const std::string& noun);
// "63326" when lo == hi, else "63326 to 63400" (a count known only between bounds).
std::string fmt_bounds(uint64_t lo, uint64_t hi);

// What the trace's metadata JSON (written by the probe at start) says about the run. Fields the
// metadata lacks stay empty / -1; malformed metadata gives an empty RunMeta.
struct RunMeta {
  std::vector<std::string> command_line;
  std::string host;
  std::string probe;          // probe name, e.g. "libfpscope_probe"
  std::string probe_version;  // e.g. "0.1.0"
  int64_t sample_every = -1;  // config.every: every N-th step recorded (-1 unknown)
  std::string emulate;        // config.emulate: its SPEC ("bf16", "e4m3:current"...) or empty
  std::string emulate_skip;   // config.emulate_skip joined with ",": ops kept in FP32, or empty
  // config.formats: the per-tensor target formats the probe measured ("bf16", "e4m3"...);
  // formats_known false when the metadata does not say (then every target counts as measured).
  std::vector<std::string> formats;
  bool formats_known = false;
  int64_t pid = -1;
  int64_t rank = -1;
};
RunMeta parse_run_meta(const std::string& metadata_json);
// What an emulated run did, for the run facts: "bf16: every host GEMM ran on operands rounded to
// bf16, except ops named 0,out (kept in FP32)"; empty when not emulated.
std::string emulation_description(const RunMeta& m);
// The command line as one shell-like string (arguments with spaces or quotes are quoted).
std::string join_command_line(const std::vector<std::string>& argv);

// Writes `content` to `path` ("-" = stdout). On failure returns false with a one-line *error
// "<path>: cannot write: <strerror>".
bool write_file(const std::string& path, const std::string& content, std::string* error);

// Greedy word wrap of one line to `width` columns (0: no wrapping); continuation lines start with
// `indent` spaces. Words longer than the width are cut with "~". Returns lines joined by '\n',
// with a trailing '\n'.
std::string wrap_text(const std::string& text, int width, int indent);

}  // namespace fpscope::analysis
