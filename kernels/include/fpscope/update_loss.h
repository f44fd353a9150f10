// Master-weight update rounding loss (docs/design.md "Master-weight update loss").
// For a watched FP32 tensor w between two steps, delta = w_t - w_{t-1} over elements with
// delta != 0, and F in {BF16, FP16}:
//   applied_F = cast_F(cast_F(w_{t-1}) + delta) - cast_F(w_{t-1})
//   stagnant_F = #(applied_F == 0),  lost_F = sum |delta - applied_F|,  delta_abs = sum |delta|.
#pragma once

#include <cstdint>
#include <cstring>

#include "fpscope/formats.h"
#include "fpscope/numerics.h"

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

// ---- per-element step (host and CUDA) --------------------------------------------------------
// Elements where w_prev or w_cur is not finite are skipped (not "changed"). When cast_F(w_prev)
// or cast_F(w_prev) + delta overflows F, the update cannot be represented: applied_F = 0.
struct UpdateLossStep {
  uint32_t changed;  // delta != 0 (and both finite)
  int ratio_bin;     // index into ratio_hist (floor(log2(|delta|/|w_prev|)) - kRatioLog2Min,
                     // clamped), or -1 when not changed or w_prev == 0
  float delta;       // w_cur - w_prev (FP32, as the optimizer's update is seen)
  float applied[2];  // applied_F for BF16, FP16
};

namespace detail {
// floor(log2(|d| / |w|)) for finite nonzero d, w, without division or libm: with
// |v| = m_v * 2^e_v (m in [1, 2)) it is e_d - e_w, minus 1 when m_d < m_w. Doubles hold every
// FP32 value (subnormals too) as a normal number.
FPSCOPE_HD inline int floor_log2_ratio(float d, float w) {
  const double dd = static_cast<double>(d), dw = static_cast<double>(w);
  uint64_t bd, bw;
  std::memcpy(&bd, &dd, 8);
  std::memcpy(&bw, &dw, 8);
  const int ed = static_cast<int>((bd >> 52) & 0x7ff), ew = static_cast<int>((bw >> 52) & 0x7ff);
  const uint64_t md = bd & ((uint64_t{1} << 52) - 1), mw = bw & ((uint64_t{1} << 52) - 1);
  return ed - ew - (md < mw ? 1 : 0);
}

template <Format F>
FPSCOPE_HD inline float applied_update(float w_prev, float delta) {
  const CastResult base = cast_scaled_t<F>(w_prev);
  const CastResult next = cast_scaled_t<F>(add_rn(base.value, delta));
  if (base.overflow || next.overflow) return 0.0f;
  return sub_rn(next.value, base.value);
}
}  // namespace detail

FPSCOPE_HD inline UpdateLossStep update_loss_step(float w_prev, float w_cur) {
  UpdateLossStep s{0, -1, 0.0f, {0.0f, 0.0f}};
  const bool finite = (abs_bits(w_prev) < kFp32InfBits) & (abs_bits(w_cur) < kFp32InfBits);
  const float delta = detail::sub_rn(w_cur, w_prev);
  if (!finite || delta == 0.0f) return s;
  s.changed = 1;
  s.delta = delta;
  s.applied[0] = detail::applied_update<Format::BF16>(w_prev, delta);
  s.applied[1] = detail::applied_update<Format::FP16>(w_prev, delta);
  if (w_prev != 0.0f) {
    int b = detail::floor_log2_ratio(delta, w_prev);
    b = b < kRatioLog2Min ? kRatioLog2Min : (b > kRatioLog2Max ? kRatioLog2Max : b);
    s.ratio_bin = b - kRatioLog2Min;
  }
  return s;
}

// Folds one step into counts for one format (index 0 BF16, 1 FP16 of UpdateLossStep::applied).
FPSCOPE_HD inline void accumulate_update_loss(UpdateLossCounts& c, const UpdateLossStep& s, int f) {
  if (!s.changed) return;
  const float applied = s.applied[f];
  c.stagnant += applied == 0.0f;
  const double d = static_cast<double>(s.delta);
  const double lost = d - static_cast<double>(applied);
  c.lost_abs += lost < 0 ? -lost : lost;
  c.delta_abs += d < 0 ? -d : d;
}

// A device result slot of launch_update_loss (stats_cuda.h); plain data, copied back as is.
struct UpdateLoss {
  uint64_t changed = 0;
  UpdateLossCounts bf16;
  UpdateLossCounts fp16;
  uint64_t ratio_hist[kRatioBins] = {};
};

// Host pass over n watched elements (w_prev: the earlier step, w_cur: the later one, FP32).
// Resets and fills *bf16, *fp16, *changed and ratio_hist[kRatioBins]. The counts and the histogram
// are exactly those of update_loss_step + accumulate_update_loss over the elements; the sums are
// the same terms added in a fixed order (16 interleaved partial sums per block of 1024 elements),
// the same on every machine, within a few ulps of a left-to-right sum.
void compute_update_loss(const float* w_prev, const float* w_cur, uint64_t n,
                         UpdateLossCounts* bf16, UpdateLossCounts* fp16, uint64_t* changed,
                         uint64_t ratio_hist[kRatioBins]);

// The same pass, added to *out (not reset): a watch that gathers its positions block by block
// adds each block.
void add_update_loss(const float* w_prev, const float* w_cur, uint64_t n, UpdateLoss* out);

}  // namespace fpscope
