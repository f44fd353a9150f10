#include "fpscope/run_env.h"

#include <unistd.h>

#include <cstdlib>

namespace fpscope::trace {

std::optional<std::string> rank_from(const EnvLookup& lookup) {
  for (const char* name : kRankVariables) {
    const char* v = lookup(name);
    if (v != nullptr && v[0] != '\0') return std::string(v);
  }
  return std::nullopt;
}

RunEnv current_run_env(long pid) {
  RunEnv env;
  env.pid = pid;
  env.rank = rank_from([](const char* name) { return std::getenv(name); });
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) env.host = host;
  return env;
}

std::string expand_path(const std::string& pattern, const RunEnv& env) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char ch = pattern[i];
    if (ch != '%' || i + 1 == pattern.size()) {
      out += ch;
      continue;
    }
    const char f = pattern[++i];
    if (f == 'p') {
      out += std::to_string(env.pid);
    } else if (f == 'r') {
      out += env.rank ? *env.rank : "0";
    } else if (f == 'h') {
      out += env.host.empty() ? "unknown" : env.host;
    } else if (f == '%') {
      out += '%';
    } else {
      out += '%';
      out += f;
    }
  }
  return out;
}

std::string expand_output_path(const std::string& pattern, long pid) {
  return expand_path(pattern, current_run_env(pid));
}

}  // namespace fpscope::trace
