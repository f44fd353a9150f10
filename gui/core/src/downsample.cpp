#include "fpscope/gui/downsample.h"

#include <algorithm>
#include <cmath>

namespace fpscope::gui {

int column_of(double x, double x0, double x1, int columns) {
  if (!(x0 < x1) || columns < 1 || !(x >= x0) || !(x <= x1)) return -1;
  const double w = (x1 - x0) / columns;
  const auto c = static_cast<int64_t>(std::floor((x - x0) / w));
  return static_cast<int>(std::clamp<int64_t>(c, 0, columns - 1));
}

std::vector<Column> minmax_columns(std::span<const double> x, std::span<const double> y, double x0,
                                   double x1, int columns) {
  std::vector<Column> out;
  if (!(x0 < x1) || columns < 1 || x.size() != y.size()) return out;
  out.resize(static_cast<size_t>(columns));
  const auto begin = std::lower_bound(x.begin(), x.end(), x0);
  const auto end = std::upper_bound(begin, x.end(), x1);
  // Inline column_of (the same arithmetic, so the same column for every x): x0 <= x <= x1 here,
  // so the quotient is >= 0 and truncation is floor.
  const double w = (x1 - x0) / columns;
  for (auto it = begin; it != end; ++it) {
    const auto i = static_cast<size_t>(it - x.begin());
    if (!(*it >= x0) || !(*it <= x1)) continue;  // unreachable for sorted input; kept for NaN x
    const int c = std::min(columns - 1, static_cast<int>((*it - x0) / w));
    Column& col = out[static_cast<size_t>(c)];
    const double v = y[i];
    if (col.points == 0) col.i_first = i;
    col.i_last = i;
    ++col.points;
    if (std::isnan(v)) {
      col.nan = true;
    } else if (std::isinf(v)) {
      (v > 0 ? col.pos_inf : col.neg_inf) = true;
    } else {
      if (col.finite == 0) col.y_first = v;
      col.y_last = v;
      ++col.finite;
      if (v < col.y_min) {
        col.y_min = v;
        col.i_min = i;
      }
      if (v > col.y_max) {
        col.y_max = v;
        col.i_max = i;
      }
    }
  }
  return out;
}

}  // namespace fpscope::gui
