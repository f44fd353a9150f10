// Master-weight update rounding loss (DESIGN.md "Master-weight update loss").
// For a watched FP32 tensor w between two steps, delta = w_t - w_{t-1} over elements with
// delta != 0, and F in {BF16, FP16}:
//   applied_F = cast_F(cast_F(w_{t-1}) + delta) - cast_F(w_{t-1})
//   stagnant_F = #(applied_F == 0),  lost_F = sum |delta - applied_F|,  delta_abs = sum |delta|.
#pragma once

#include <cstdint>

#include "fpscope/formats.h"

namespace fpscope {

struct UpdateLossCounts {
  uint64_t stagnant = 0;   // elements with delta != 0 and applied_F == 0
  double lost_abs = 0.0;   // sum |delta - applied_F|
  double delta_abs = 0.0;  // sum |delta|
};

// floor(log2(|delta| / |w_prev|)) histogram range, clamped at both ends.
inline constexpr int kRatioLog2Min = -40;
inline constexpr int kRatioLog2Max = 8;
inline constexpr int kRatioBins = kRatioLog2Max - kRatioLog2Min + 1;

}  // namespace fpscope
