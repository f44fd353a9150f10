// The progress line of the fpscope CLI (pure formatting, unit-tested in tests/analysis).
#pragma once

#include <algorithm>
#include <string>

#include <fmt/format.h>

namespace fpscope::cli {

// "[fpscope] <task>: <phase> [#######.............]  35% 1.3s" when the fraction is known
// (0 <= fraction <= 1; clamped), "[fpscope] <task>: <phase> 1.3s" when it is not (fraction < 0).
// At most `width` columns (0: no limit): the phase is cut with "~" first, then the bar dropped.
inline std::string format_progress(const std::string& task, const std::string& phase,
                                   double fraction, double elapsed_s, int width) {
  constexpr int kBar = 20;
  const std::string head = fmt::format("[fpscope] {}: ", task);
  const std::string time = fmt::format(" {:.1f}s", elapsed_s);
  std::string bar;
  if (fraction >= 0.0) {
    const double f = std::min(fraction, 1.0);
    const int filled = static_cast<int>(f * kBar);
    bar = fmt::format(" [{}{}] {:3.0f}%", std::string(static_cast<size_t>(filled), '#'),
                      std::string(static_cast<size_t>(kBar - filled), '.'), f * 100.0);
  }
  std::string ph = phase;
  if (width > 0) {
    const auto fixed = static_cast<int>(head.size() + time.size());
    int room = width - fixed - static_cast<int>(bar.size());
    if (room < 8 && !bar.empty()) {  // too narrow for a bar: keep the percentage only
      bar = fmt::format(" {:3.0f}%", std::min(fraction, 1.0) * 100.0);
      room = width - fixed - static_cast<int>(bar.size());
    }
    if (static_cast<int>(ph.size()) > room) ph = room > 1 ? ph.substr(0, room - 1) + "~" : "";
  }
  std::string line = head + ph + bar + time;
  if (width > 0 && static_cast<int>(line.size()) > width) line.resize(static_cast<size_t>(width));
  return line;
}

}  // namespace fpscope::cli
