// Probe logging: stderr only, every line prefixed "[fpscope]", level from FPSCOPE_LOG.
// Never stdout (the probe must not change what the program prints). printf-style, no allocation
// beyond a stack buffer, one write(2) per line so concurrent lines do not interleave.
#pragma once

namespace fpscope::probe {

enum class LogLevel : int { Off = 0, Error = 1, Warn = 2, Info = 3, Debug = 4 };

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
void log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace fpscope::probe

#define FPSCOPE_LOG(level, ...)                                              \
  do {                                                                       \
    if (::fpscope::probe::log_enabled(::fpscope::probe::LogLevel::level))    \
      ::fpscope::probe::log(::fpscope::probe::LogLevel::level, __VA_ARGS__); \
  } while (0)
