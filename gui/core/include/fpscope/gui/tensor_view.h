// Per-tensor data behind the heatmap and the what-if panel, computed off the UI thread.
//
// TensorSteps: one tensor's observations merged per step (as the analysis library merges them:
// amax is the max, counts add, histograms add), with each step's histogram kept sparse.
//
// Heatmap y axis ("octave coordinate"): a finite nonzero |x| = 2^e * (1 + m), 0 <= m < 1, sits
// at e + m. Linear in the histogram's bin index (bin b covers [b/4 - 127, (b+1)/4 - 127)), exact
// at every power of two, within 0.09 of log2|x| elsewhere. Format thresholds and amax are placed
// with the same function, so lines and bins line up exactly.
//
// What-if: overflow/underflow/subnormal bounds of every step at a scale, from the step's
// histogram alone (kernels' hist_whatif), either one power-of-two scale for all steps or
// Transformer Engine's delayed scaling replayed over the tensor's per-step amax (kernels'
// Fp8Scaler: the scale of step t comes from the amaxes of the steps before it, as the analysis
// library's fp8_whatif does). As there, delayed scaling does not replay the steps observed
// before the history holds any finite nonzero amax (the first step, and all-zero steps right
// after it): TE would cast them at its initial scale 1, which says nothing about the recipe; they
// only seed the history and are left out of every total.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "fpscope/gui/block_view.h"
#include "fpscope/histogram.h"
#include "fpscope/scaling.h"
#include "fpscope/trace_model.h"

namespace fpscope::gui {

struct TensorSteps {
  uint32_t tensor = 0;
  std::vector<uint64_t> steps;      // distinct, ascending
  std::vector<double> step_x;       // the same as doubles (plot x)
  std::vector<float> amax;          // per step (max over the step's observations)
  std::vector<uint64_t> eligible;   // nonzero finite elements (= histogram total)
  std::vector<uint64_t> nonfinite;  // NaN + Inf elements in the data
  std::vector<uint32_t> hist_off;   // steps.size() + 1 offsets into bins/counts
  std::vector<uint16_t> bins;       // sparse per-step histograms, bins ascending in each step
  std::vector<uint64_t> counts;
  int bin_lo = 0, bin_hi = -1;  // populated bin range over all steps (empty when hi < lo)
  BlockSteps blocks;            // block-scaled formats per step (empty: the trace has none)

  size_t size() const { return steps.size(); }
  std::span<const uint16_t> step_bins(size_t i) const {
    return {bins.data() + hist_off[i], hist_off[i + 1] - hist_off[i]};
  }
  std::span<const uint64_t> step_counts(size_t i) const {
    return {counts.data() + hist_off[i], hist_off[i + 1] - hist_off[i]};
  }
  // Index of the last step <= s, or -1 when s is before the first step.
  int64_t index_at_or_before(uint64_t s) const;
  // Index of the step equal to s, or -1.
  int64_t index_of(uint64_t s) const;
};

TensorSteps build_tensor_steps(const trace::TraceModel& model, uint32_t tensor);

// Block coverage (block_view.h) of format f at step index i: one block's octaves against the
// tensor's range at that step (its amax and lowest populated histogram bin); tensor_octaves NaN
// when i is out of range or the step has no nonzero finite element.
BlockCoverage step_block_coverage(const TensorSteps& ts, size_t i, int f);

// Octave coordinates of the histogram's lowest and highest bin edges (-127 and 129).
inline constexpr double kOctaveMin = hist_bin_octave(0);
inline constexpr double kOctaveMax = hist_bin_octave(kHistBinCount);

// Octave coordinate of a positive finite v (see above); kOctaveMin for 0 (and negative or NaN),
// kOctaveMax for +Inf.
double octave_coord(double v);
// Octave coordinate of the lower edge of histogram bin b.
inline double bin_coord(int b) {
  return hist_bin_octave(b);
}
// Fractional histogram bin index of an octave coordinate (the inverse of bin_coord).
inline double coord_bin(double y) {
  return (y - kOctaveMin) * kHistSubBins;
}
// The what-if scale 2^k keeps k within FP32's normal exponents (the scale is a normal float).
inline int clamp_scale_exponent(int k) {
  return std::clamp(k, kFp32MinNormalExp, kFp32MaxExp);
}

// Heat raster: `width` columns over the step range [x0, x1] (min/max per column: each cell is the
// MAX fraction over the steps in its column, so one hot step is never averaged away), rows are
// bins row_lo..row_hi (row 0 = row_lo, the bottom). frac < 0 means no step in that column.
struct HeatRaster {
  int width = 0, rows = 0;
  int row_lo = 0;
  std::vector<float> frac;  // width * rows, row-major from the bottom row: frac[r * width + c]
  float at(int c, int r) const { return frac[static_cast<size_t>(r) * width + c]; }
};
HeatRaster rasterize(const TensorSteps& ts, double x0, double x1, int width, int row_lo,
                     int row_hi);
// RGBA8 pixels (top row first, as GL textures are uploaded here) of a raster with heat_color;
// empty cells get `background` (packed as colors.h pack()).
std::vector<uint32_t> raster_rgba(const HeatRaster& r, uint32_t background);

// What the heatmap uploads as a texture: the RGBA pixels of rasterize(ts, x0, x1, width, row_lo,
// row_hi) with the range they were computed for, so that the UI thread can keep drawing an older
// image at its own place (mapped into the current view) while a newer one is being computed.
struct HeatImage {
  double x0 = 0, x1 = 0;
  int width = 0, rows = 0;
  int row_lo = 0, row_hi = -1;
  std::vector<uint32_t> rgba;  // width * rows, top row first
};
HeatImage heat_image(const TensorSteps& ts, double x0, double x1, int width, int row_lo, int row_hi,
                     uint32_t background);

enum class ScaleMode : uint8_t { Pow2 = 0, Delayed = 1 };
struct WhatIfConfig {
  Format format = Format::E4M3;
  ScaleMode mode = ScaleMode::Pow2;
  int pow2 = 0;  // Pow2: scale = 2^pow2
  int history_len = 1024;
  int margin = 0;
  AmaxAlgo algo = AmaxAlgo::Max;
  bool operator==(const WhatIfConfig&) const = default;
};

struct WhatIfSeries {
  WhatIfConfig config;
  std::vector<float> scale;        // per step of the TensorSteps
  std::vector<HistWhatIf> counts;  // per step (seed steps: at the scale shown, not in totals)
  std::vector<uint8_t> replayed;   // per step: 0 for a delayed-scaling seed step (see above)
  uint64_t seed_steps = 0;
  HistWhatIf total;  // sums over the steps (exact = every step exact)
  uint64_t eligible = 0;
  int64_t first_overflow_step = -1;   // first step with overflow_lo > 0 (certain), -1 none
  int64_t first_underflow_step = -1;  // first step with underflow_lo > 0
  uint64_t overflow_steps = 0;        // replayed steps with overflow_lo > 0
};

// Delayed-scaling scale per step: Fp8Scaler(f, Delayed, history_len, margin, algo) fed with the
// amaxes in order, the scale read BEFORE observing each step's amax.
std::vector<float> delayed_scales(std::span<const float> amax, Format f, int history_len,
                                  int margin, AmaxAlgo algo);
WhatIfSeries compute_whatif(const TensorSteps& ts, const WhatIfConfig& cfg);
// The same for one step index i at an explicit scale (the live slider readout).
HistWhatIf step_whatif(const TensorSteps& ts, size_t i, Format f, float scale);

}  // namespace fpscope::gui
