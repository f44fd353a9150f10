// The one comparison of two block-format counts' exact fields (stats.h BlockFormatCounts), for
// tests that hold a measured set against a reference (the kernel's model, the host pass, a trace
// round trip). The double sums are left to the caller: each comparison has its own bound.
#pragma once

#include <gtest/gtest.h>

#include "fpscope/stats.h"

namespace fpscope::test {

inline void expect_same_block_counts(const BlockFormatCounts& got, const BlockFormatCounts& want) {
  EXPECT_EQ(got.blocks, want.blocks);
  EXPECT_EQ(got.elements, want.elements);
  EXPECT_EQ(got.flushed, want.flushed);
  EXPECT_EQ(got.saturated, want.saturated);
  EXPECT_EQ(got.zero_blocks, want.zero_blocks);
  EXPECT_EQ(got.scale_underflow, want.scale_underflow);
  EXPECT_EQ(got.scale_overflow, want.scale_overflow);
  EXPECT_EQ(got.nan_scale, want.nan_scale);
}

}  // namespace fpscope::test
