#include "fpscope/analysis/common.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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

double sqnr_db(double sum_sq, double sum_err2, uint64_t overflow) {
  if (overflow > 0) return std::numeric_limits<double>::quiet_NaN();
  if (!(sum_sq > 0.0)) return std::numeric_limits<double>::quiet_NaN();
  if (!(sum_err2 > 0.0)) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(sum_sq / sum_err2);
}

double nominal_sqnr_db_bits(int man_bits) {
  return 6.02 * (man_bits + 1) + 5.0;
}

double nominal_sqnr_db(Format f) {
  return nominal_sqnr_db_bits(spec(f).man_bits);
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

std::string fmt_sqnr(double db, bool with_unit) {
  if (std::isnan(db)) return "n/a";
  if (std::isinf(db)) return db > 0 ? "exact" : "-inf";
  return with_unit ? fmt::format("{:.1f} dB", db) : fmt::format("{:.1f}", db);
}

std::string plural(uint64_t n, const std::string& noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

std::string fmt_bounds(uint64_t lo, uint64_t hi) {
  return lo == hi ? fmt::format("{}", lo) : fmt::format("{} to {}", lo, hi);
}

std::string emulation_description(const RunMeta& m) {
  if (m.emulate.empty()) return "";
  const std::string mode = m.emulate.substr(0, m.emulate.find(':'));
  std::string what;
  if (mode == "e4m3" || mode == "e5m2" || mode == "hybrid") {
    const std::string fmt = mode == "hybrid" ? "E4M3 (forward) and E5M2 (gradients)"
                            : mode == "e4m3" ? "E4M3"
                                             : "E5M2";
    const std::string policy =
        m.emulate.find(":delayed") != std::string::npos ? "delayed" : "current";
    what = "every host GEMM ran on operands cast to " + fmt + " with per-tensor " + policy +
           " scaling and dequantized, its output rounded to BF16";
  } else {
    what = "every host GEMM ran on operands rounded to " + m.emulate;
  }
  if (!m.emulate_skip.empty()) what += ", except ops named " + m.emulate_skip + " (kept in FP32)";
  return m.emulate + ": " + what;
}

RunMeta parse_run_meta(const std::string& metadata_json) {
  RunMeta m;
  const auto j = nlohmann::json::parse(metadata_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return m;
  auto str = [&](const nlohmann::json& o, const char* k) -> std::string {
    const auto it = o.find(k);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto integer = [&](const nlohmann::json& o, const char* k) -> int64_t {
    const auto it = o.find(k);
    return it != o.end() && it->is_number_integer() ? it->get<int64_t>() : -1;
  };
  if (const auto it = j.find("command_line"); it != j.end()) {
    if (it->is_array()) {
      for (const auto& a : *it)
        if (a.is_string()) m.command_line.push_back(a.get<std::string>());
    } else if (it->is_string()) {
      m.command_line.push_back(it->get<std::string>());
    }
  }
  m.host = str(j, "host");
  m.probe = str(j, "probe");
  m.probe_version = str(j, "probe_version");
  m.pid = integer(j, "pid");
  m.rank = integer(j, "rank");
  if (const auto it = j.find("config"); it != j.end() && it->is_object()) {
    m.sample_every = integer(*it, "every");
    m.emulate = str(*it, "emulate");
    if (m.emulate == "off") m.emulate.clear();
    if (const auto sk = it->find("emulate_skip"); sk != it->end() && sk->is_array())
      for (const auto& p : *sk)
        if (p.is_string())
          m.emulate_skip += (m.emulate_skip.empty() ? "" : ",") + p.get<std::string>();
    if (const auto fs = it->find("formats"); fs != it->end() && fs->is_array()) {
      m.formats_known = true;
      for (const auto& f : *fs)
        if (f.is_string()) m.formats.push_back(f.get<std::string>());
    }
  }
  return m;
}

std::string join_command_line(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    if (!a.empty() && a.find_first_of(" \t\n'\"\\$`") == std::string::npos) {
      s += a;
      continue;
    }
    s += '\'';
    for (char c : a) s += c == '\'' ? std::string("'\\''") : std::string(1, c);
    s += '\'';
  }
  return s;
}

bool write_file(const std::string& path, const std::string& content, std::string* error) {
  const bool to_stdout = path == "-";
  errno = 0;
  std::FILE* f = to_stdout ? stdout : std::fopen(path.c_str(), "wb");
  if (!f) {
    if (error) *error = fmt::format("{}: cannot write: {}", path, std::strerror(errno));
    return false;
  }
  const size_t n = std::fwrite(content.data(), 1, content.size(), f);
  int err = n == content.size() ? 0 : (errno ? errno : EIO);
  if (std::fflush(f) != 0 && err == 0) err = errno ? errno : EIO;
  if (!to_stdout && std::fclose(f) != 0 && err == 0) err = errno ? errno : EIO;
  if (err != 0) {
    if (error)
      *error = fmt::format("{}: cannot write: {}", to_stdout ? "stdout" : path, std::strerror(err));
    return false;
  }
  return true;
}

std::string wrap_text(const std::string& text, int width, int indent) {
  if (width <= 0 || static_cast<int>(text.size()) <= width) return text + "\n";
  const std::string pad(static_cast<size_t>(std::max(indent, 0)), ' ');
  std::string out, line;
  size_t i = 0;
  // Leading spaces of the first line are kept as they are.
  while (i < text.size() && text[i] == ' ') line += text[i++];
  const size_t first_prefix = line.size();
  auto flush = [&] {
    out += line + "\n";
    line = pad;
  };
  while (i < text.size()) {
    size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    std::string word = text.substr(i, j - i);
    i = j;
    while (i < text.size() && text[i] == ' ') ++i;
    if (word.empty()) continue;
    const bool at_start = line.size() == (out.empty() ? first_prefix : pad.size());
    const size_t need = line.size() + (at_start ? 0 : 1) + word.size();
    if (!at_start && static_cast<int>(need) > width) flush();
    const bool start_now = line.size() == (out.empty() ? first_prefix : pad.size());
    const int room = width - static_cast<int>(line.size()) - (start_now ? 0 : 1);
    if (static_cast<int>(word.size()) > room && room > 1) word = word.substr(0, room - 1) + "~";
    if (!start_now) line += ' ';
    line += word;
  }
  if (line.size() > (out.empty() ? first_prefix : pad.size())) out += line + "\n";
  return out;
}

}  // namespace fpscope::analysis
