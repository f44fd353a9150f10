// What-if counts from an exponent histogram: how many elements of an observation would
// overflow, underflow (flush to zero) or become subnormal when cast to a format at a scale,
// recomputed from the histogram alone (the GUI's scale slider, the analysis's FP8 what-if).
//
// Why bounds: a bin holds every |x| in a quarter octave [2^e (1 + q/4), 2^e (1 + (q+1)/4)), and
// the histogram does not say where inside the bin its elements are. A format's thresholds
// (max + half ulp, half of the smallest subnormal, the smallest normal), divided by the scale,
// generally fall inside a bin, and even at power-of-two scales they sit inside or on the lower
// edge of one (e.g. FP16 overflows from 65520 = 2^15 * 1.99951..., inside the top bin of its
// octave; 2^-25 itself flushes but the rest of its bin does not). Since the cast of x * s is
// monotone in |x|, the category of a bin's elements (0 flushed, 1 subnormal, 2 normal,
// 3 overflow) lies between the categories of the bin's smallest and largest |x|: when both are
// equal the whole bin is counted exactly; otherwise its count goes into the upper bound of every
// category in between and into no lower bound. `exact` says whether all bounds are equal.
// Exact counts at the scale the probe used come from the statistics themselves (stats.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "fpscope/formats.h"
#include "fpscope/numerics.h"
#include "fpscope/stats.h"

namespace fpscope {

struct HistWhatIf {
  uint64_t overflow_lo = 0, overflow_hi = 0;
  uint64_t underflow_lo = 0, underflow_hi = 0;
  uint64_t subnormal_lo = 0, subnormal_hi = 0;
  bool exact = true;  // every lo == hi
};

// Category of |x| = v cast to f at scale s: 0 flushed, 1 subnormal, 2 normal, 3 overflow.
inline int whatif_category(Format f, float v, float scale) {
  const CastResult r = cast_scaled(f, detail::mul_rn(v, scale));
  return r.overflow ? 3 : r.underflow ? 0 : r.subnormal ? 1 : 2;
}

// Adds bin b's count to the bounds (bins >= kHistFirstNonFiniteBin, the NaN/Inf exponent, are
// ignored).
inline void whatif_add_bin(HistWhatIf& w, int b, uint64_t count, Format f, float scale) {
  if (count == 0 || b < 0 || b >= kHistFirstNonFiniteBin) return;
  const uint32_t lo_bits = hist_bin_low_bits(b);
  const float lo = detail::u2f(lo_bits == 0 ? 1u : lo_bits);  // smallest nonzero |x| in b
  const float hi = hist_bin_high(b);
  const int c0 = whatif_category(f, lo, scale), c1 = whatif_category(f, hi, scale);
  uint64_t* lo_of[4] = {&w.underflow_lo, &w.subnormal_lo, nullptr, &w.overflow_lo};
  uint64_t* hi_of[4] = {&w.underflow_hi, &w.subnormal_hi, nullptr, &w.overflow_hi};
  if (c0 == c1) {
    if (lo_of[c0]) *lo_of[c0] += count;
    if (hi_of[c0]) *hi_of[c0] += count;
    return;
  }
  for (int c = c0; c <= c1; ++c) {
    if (hi_of[c]) {
      *hi_of[c] += count;
      w.exact = false;
    }
  }
}

// Dense histogram (kHistBins counts, as TensorStats::hist).
inline HistWhatIf hist_whatif(const uint64_t* hist, Format f, float scale) {
  HistWhatIf w;
  for (int b = 0; b < kHistBins; ++b) whatif_add_bin(w, b, hist[b], f, scale);
  return w;
}

// Sparse histogram: n (bin, count) pairs as the trace reader stores them.
inline HistWhatIf hist_whatif(const uint16_t* bins, const uint64_t* counts, size_t n, Format f,
                              float scale) {
  HistWhatIf w;
  for (size_t i = 0; i < n; ++i) whatif_add_bin(w, bins[i], counts[i], f, scale);
  return w;
}

}  // namespace fpscope
