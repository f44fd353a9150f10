// The one comparison of two TensorStats (stats.h) that should hold the same statistics (a
// kernel or its CPU model against the host pass; a pass against an element-by-element one):
// counts, extrema (the same bits: -0 is not +0, unless zero_signs is false), scales and the
// histogram exactly; the sums are the same terms in another order: sum and sum_sq to their
// rounding, each target's sum_err2 within err2_rel (the host pass sums squared errors in FP32
// lanes, within 1e-5 of the element-by-element double sum, stats.h).
#pragma once

#include <gtest/gtest.h>

#include <cmath>

#include "fpscope/stats.h"

namespace fpscope::test {

inline void expect_same(const TensorStats& a, const TensorStats& b, double err2_rel = 1e-5,
                        bool zero_signs = true) {
  EXPECT_EQ(a.count, b.count);
  if (zero_signs) {
    EXPECT_EQ(std::signbit(a.min), std::signbit(b.min));
    EXPECT_EQ(std::signbit(a.max), std::signbit(b.max));
  }
  EXPECT_EQ(a.nan, b.nan);
  EXPECT_EQ(a.pos_inf, b.pos_inf);
  EXPECT_EQ(a.neg_inf, b.neg_inf);
  EXPECT_EQ(a.zero, b.zero);
  EXPECT_EQ(a.amax, b.amax);
  EXPECT_EQ(a.min, b.min);
  EXPECT_EQ(a.max, b.max);
  EXPECT_NEAR(a.sum, b.sum, 1e-9 * std::sqrt(b.sum_sq) + 1e-300);
  EXPECT_NEAR(a.sum_sq, b.sum_sq, 1e-12 * b.sum_sq);
  for (int i = 0; i < kNumTargets; ++i) {
    EXPECT_EQ(a.fmt[i].overflow, b.fmt[i].overflow);
    EXPECT_EQ(a.fmt[i].underflow, b.fmt[i].underflow);
    EXPECT_EQ(a.fmt[i].subnormal, b.fmt[i].subnormal);
    EXPECT_EQ(a.fmt[i].scale, b.fmt[i].scale);
    EXPECT_NEAR(a.fmt[i].sum_err2, b.fmt[i].sum_err2, err2_rel * b.fmt[i].sum_err2);
  }
  for (int k = 0; k < kHistBins; ++k) ASSERT_EQ(a.hist[k], b.hist[k]) << "bin " << k;
}

}  // namespace fpscope::test
