// Min/max-per-pixel-column downsampling for the viewer's plots (docs/design.md "GUI": never point
// sampling, so a single spike, Inf or NaN among millions of points stays visible).
//
// Contract: points (x[i], y[i]) with x ascending (ties allowed). The visible range [x0, x1) is
// split into `columns` equal columns; column c holds the points with
// x0 + c*w <= x < x0 + (c+1)*w, w = (x1 - x0) / columns, and the last column also takes x == x1.
// Points outside [x0, x1] are ignored; finding the visible ones is a binary search, so the cost is
// O(log n + visible points + columns). For each column: the min and max over the FINITE y values
// (and the indices where they occur), the first and last finite y (to join neighbouring columns
// the way the full-resolution line would), and flags for NaN, +Inf and -Inf among its points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace fpscope::gui {

struct Column {
  uint32_t points = 0;  // points in the column (any value)
  uint32_t finite = 0;  // of which finite
  double y_min = std::numeric_limits<double>::infinity();
  double y_max = -std::numeric_limits<double>::infinity();
  double y_first = 0.0;  // first / last finite value in x order (valid when finite > 0)
  double y_last = 0.0;
  size_t i_min = 0, i_max = 0;     // indices of y_min / y_max
  size_t i_first = 0, i_last = 0;  // indices of the first / last point (any value)
  bool nan = false, pos_inf = false, neg_inf = false;

  bool empty() const { return points == 0; }
};

// Requires x0 < x1 and columns >= 1 (otherwise returns an empty vector); x.size() == y.size().
std::vector<Column> minmax_columns(std::span<const double> x, std::span<const double> y, double x0,
                                   double x1, int columns);

// Column index of x in the layout above, or -1 when x is outside [x0, x1].
int column_of(double x, double x0, double x1, int columns);

}  // namespace fpscope::gui
