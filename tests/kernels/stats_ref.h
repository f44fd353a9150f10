// Independent reference statistics: CUDA's casts (cuda_ref.h), frexp for the histogram bin, one
// element at a time in double. Nothing here uses fpscope's numerics.h.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cuda_ref.h"
#include "fpscope/stats.h"

namespace ref {

inline int frexp_bin(float x) {
  const double ax = std::fabs(static_cast<double>(x));
  if (ax < std::ldexp(1.0, -126)) {  // FP32 subnormal: exponent field 0
    return static_cast<int>(std::floor(ax / std::ldexp(1.0, -126) * 4));
  }
  int k = 0;
  const double m = std::frexp(ax, &k);  // ax = m * 2^k, m in [0.5, 1)
  return (k - 1 + 127) * 4 + static_cast<int>(std::floor((2 * m - 1) * 4));
}

// Statistics of a list of values (scales: per target, kTargets order).
inline fpscope::TensorStats stats_of(const std::vector<float>& xs, const float* scales) {
  fpscope::TensorStats s;
  for (int i = 0; i < fpscope::kNumTargets; ++i) s.fmt[i].scale = scales[i];
  bool any = false;
  for (float x : xs) {
    ++s.count;
    if (std::isnan(x)) {
      ++s.nan;
      continue;
    }
    if (std::isinf(x)) {
      ++(x > 0 ? s.pos_inf : s.neg_inf);
      continue;
    }
    s.amax = std::max(s.amax, std::fabs(x));
    s.min = any ? std::min(s.min, x) : x;
    s.max = any ? std::max(s.max, x) : x;
    any = true;
    s.sum += x;
    s.sum_sq += static_cast<double>(x) * x;
    if (x == 0) {
      ++s.zero;
      continue;
    }
    ++s.hist[frexp_bin(x)];
    int i = 0;
    for (const Format f : fpscope::kTargets) {
      const float y = x * scales[i];
      const Cast c = cast(f, y);
      s.fmt[i].overflow += c.overflow;
      // docs/design.md: underflow is x != 0 (true here) and the cast of y is 0, which includes a
      // y that FP32 itself flushed.
      s.fmt[i].underflow += c.underflow || y == 0.0f;
      s.fmt[i].subnormal += c.subnormal;
      if (!c.overflow) {
        // e = (y - cast(y)) / s (numerics.h: equals x - cast(x*s)/s when x*s is exact).
        const double e = (static_cast<double>(y) - static_cast<double>(c.value)) / scales[i];
        s.fmt[i].sum_err2 += e * e;
      }
      ++i;
    }
  }
  return s;
}

}  // namespace ref
