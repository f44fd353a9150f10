// fpscope per-tensor statistics: the one accumulator type shared by the CPU path, the CUDA
// kernels (device results are copied back into this exact layout), the trace writer/reader and the
// analysis. Definitions: docs/design.md "Numerics definitions" and docs/metrics.md.
//
// Contract:
//  - count counts every element observed; nan/pos_inf/neg_inf/zero count those special inputs,
//    which take no part in amax/min/max/sum/format counts/histogram.
//  - amax/min/max/sum/sum_sq are over finite elements (zeros included in min/max/sum).
//  - fmt[i] is for kTargets[i] cast with scale fmt[i].scale (y = x * scale): overflow (cast is
//    Inf/NaN), underflow (x != 0 and cast is 0), subnormal (cast is a nonzero subnormal) and
//    sum_err2 = sum over finite x that do not overflow of ((y - cast(y)) / s)^2, y = fl32(x * s).
//    This equals (x - cast(y)/s)^2 whenever x * s is exact in FP32 (always for power-of-two
//    scales); otherwise it leaves out FP32's own rounding of x * s (under half an FP32 ulp of y),
//    which the target format did not cause.
//  - hist[bin] counts finite nonzero |x| by bin = biased FP32 exponent * 4 + top two mantissa
//    bits (formats.h hist_bin_of_bits; hist_bin_exponent(bin) = bin/4 - 127 = floor(log2|x|) for
//    normal x). Dense here; stored sparse in traces.
//  - merge() is associative and commutative: any split of a tensor merged equals one pass
//    (exactly for counts/min/max/amax/hist; sums in double up to rounding).
//  - Precision: counts, amax, min, max and the histogram are exact. sum and sum_sq are double
//    sums. sum_err2 is within 1e-5 (relative) of the element-by-element double sum: the host pass
//    sums squared errors in FP32 lanes (prescaled by a power of two) within blocks of 1024
//    elements wherever the block's range allows it without overflow or subnormal terms.
#pragma once

#include <cstdint>

#include "fpscope/formats.h"

namespace fpscope {

inline constexpr int kHistBins = kHistBinCount;  // formats.h: biased FP32 exponent x 4 sub-bins

struct FormatCounts {
  uint64_t overflow = 0;
  uint64_t underflow = 0;
  uint64_t subnormal = 0;
  double sum_err2 = 0.0;
  float scale = 1.0f;  // the scale s used for y = x * s (1 = unscaled cast)
};

// Everything but the histogram: what the trace reader keeps per observation in memory.
struct StatsScalars {
  uint64_t count = 0;
  uint64_t nan = 0;
  uint64_t pos_inf = 0;
  uint64_t neg_inf = 0;
  uint64_t zero = 0;
  float amax = 0.0f;
  float min = 0.0f;  // meaningful only when finite_count() > 0
  float max = 0.0f;
  double sum = 0.0;
  double sum_sq = 0.0;
  FormatCounts fmt[kNumTargets];

  // Saturating at 0: a trace is someone else's bytes, and its counts need not be consistent
  // (nan > count must not read as 2^64 finite values).
  FPSCOPE_HD uint64_t finite_count() const {
    const uint64_t nonfinite = sat_add(sat_add(nan, pos_inf), neg_inf);
    return count > nonfinite ? count - nonfinite : 0;
  }
  FPSCOPE_HD uint64_t nonzero_finite_count() const {
    const uint64_t f = finite_count();
    return f > zero ? f - zero : 0;
  }
  FPSCOPE_HD static uint64_t sat_add(uint64_t a, uint64_t b) {
    return a + b < a ? ~uint64_t{0} : a + b;
  }

  // Folds the scalar part of `o` into *this (same per-format scales assumed).
  FPSCOPE_HD void merge_scalars(const StatsScalars& o) {
    const bool had = finite_count() > 0;
    const bool other_has = o.finite_count() > 0;
    count += o.count;
    nan += o.nan;
    pos_inf += o.pos_inf;
    neg_inf += o.neg_inf;
    zero += o.zero;
    amax = o.amax > amax ? o.amax : amax;
    if (other_has) {
      min = (!had || o.min < min) ? o.min : min;
      max = (!had || o.max > max) ? o.max : max;
    }
    sum += o.sum;
    sum_sq += o.sum_sq;
    for (int i = 0; i < kNumTargets; ++i) {
      fmt[i].overflow += o.fmt[i].overflow;
      fmt[i].underflow += o.fmt[i].underflow;
      fmt[i].subnormal += o.fmt[i].subnormal;
      fmt[i].sum_err2 += o.fmt[i].sum_err2;
    }
  }
};

// ---- block-scaled formats (kBlockFormats: MXFP8 E4M3/E5M2, MXFP6 E3M2/E2M3, MXFP4, NVFP4) ----
// Definitions: docs/metrics.md "Block-scaled formats"; per-block math: block_numerics.h.
inline constexpr uint32_t kAllBlockFormats = (1u << kNumBlockFormats) - 1u;
// Block-scale histogram bins: the FP32 biased exponent of the scale's value, i.e.
// floor(log2 scale) + 127 (MX: the E8M0 code itself); bin 0 also holds NVFP4's zero scales,
// bin 255 NaN scales.
inline constexpr int kBlockScaleBins = 256;

// Which way blocks run in the column-major view (element (i, j) at i + j * ld).
enum class BlockAxis : uint8_t {
  Rows = 0,  // along i: consecutive elements of one stored column (contiguous in memory)
  Cols = 1,  // along j: one element of each of block_size consecutive stored columns
};

struct BlockFormatCounts {
  uint64_t blocks = 0;           // blocks seen (a view's last, partial block per line included)
  uint64_t elements = 0;         // elements of the blocks with a finite scale
  uint64_t flushed = 0;          // x != 0 whose block-scaled cast is 0
  uint64_t saturated = 0;        // x whose cast clamps to +-max of the element format
  uint64_t zero_blocks = 0;      // blocks of +-0 only
  uint64_t scale_underflow = 0;  // see block_numerics.h BlockStats
  uint64_t scale_overflow = 0;
  uint64_t nan_scale = 0;  // blocks holding NaN/Inf (their elements are not counted)
  double sum_err2 = 0.0;   // sum (x - decoded)^2 over `elements`
  double sum_x2 = 0.0;     // sum x^2 over `elements` (SQNR = sum_x2 / sum_err2)

  // Adds the counts of other blocks of the same format (the one field-wise sum: merges, and the
  // per-tensor totals of summary and findings).
  FPSCOPE_HD void add(const BlockFormatCounts& o) {
    blocks += o.blocks;
    elements += o.elements;
    flushed += o.flushed;
    saturated += o.saturated;
    zero_blocks += o.zero_blocks;
    scale_underflow += o.scale_underflow;
    scale_overflow += o.scale_overflow;
    nan_scale += o.nan_scale;
    sum_err2 += o.sum_err2;
    sum_x2 += o.sum_x2;
  }
};

struct BlockStatsSet {
  uint32_t mask = 0;  // bit f: kBlockFormats[f] was measured (0: none)
  BlockAxis axis = BlockAxis::Rows;
  float nvfp4_tensor_scale = 1;  // NVFP4's FP32 per-tensor encode scale s_enc
  BlockFormatCounts fmt[kNumBlockFormats];
  uint64_t scale_hist[kNumBlockFormats][kBlockScaleBins] = {};

  FPSCOPE_HD void merge(const BlockStatsSet& o) {
    mask |= o.mask;
    for (int f = 0; f < kNumBlockFormats; ++f) {
      fmt[f].add(o.fmt[f]);
      for (int i = 0; i < kBlockScaleBins; ++i) scale_hist[f][i] += o.scale_hist[f][i];
    }
  }
};

struct TensorStats : StatsScalars {
  uint64_t hist[kHistBins] = {};
  // Block-scaled formats (format 1.3): blocks.mask == 0 when they were not measured.
  BlockStatsSet blocks;

  // Folds `o` into *this. Both must have been computed with the same per-format scales (and
  // the same block axis and NVFP4 tensor scale).
  FPSCOPE_HD void merge(const TensorStats& o) {
    merge_scalars(o);
    for (int b = 0; b < kHistBins; ++b) hist[b] += o.hist[b];
    blocks.merge(o.blocks);
  }
};

}  // namespace fpscope
