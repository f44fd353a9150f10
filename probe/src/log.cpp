#include "log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace fpscope::probe {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::Warn)};
const char* level_tag(LogLevel l) {
  switch (l) {
    case LogLevel::Error:
      return "error: ";
    case LogLevel::Warn:
      return "warning: ";
    case LogLevel::Debug:
      return "debug: ";
    default:
      return "";
  }
}
}  // namespace

void set_log_level(LogLevel level) {
  g_level.store(static_cast<int>(level));
}
bool log_enabled(LogLevel level) {
  return level != LogLevel::Off &&
         static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

void log(LogLevel level, const char* fmt, ...) {
  if (!log_enabled(level)) return;
  char buf[1024];
  int n = std::snprintf(buf, sizeof buf, "[fpscope] %s", level_tag(level));
  if (n < 0) return;
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof buf - 2) len = sizeof buf - 2;
  buf[len++] = '\n';
  // One write: lines from several threads do not interleave. Errors are ignored (nowhere to go).
  ssize_t r = ::write(2, buf, len);
  (void)r;
}

}  // namespace fpscope::probe
