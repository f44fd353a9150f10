// FP8 scaling policies (DESIGN.md "FP8 scaling policies"), shared by the probe and the analysis.
//  - None:    s = 1.
//  - Current: s = (fp8_max / amax(x)) / 2^margin from the tensor's own amax (current_scale()).
//  - Delayed: Transformer Engine's DelayedScaling. The scale used for an observation comes from
//    the amaxes observed BEFORE it: after each observation its amax enters a window of the last
//    H amaxes (initially zeros), amax_ref = max over the window ("max", NaN entries ignored as
//    TE's fmaxf does) or the newest amax ("most_recent"), and
//      s = (fp8_max * 2^-margin) / amax_ref      (computed in FP32 in that order, as TE does)
//    when amax_ref is finite and > 0; otherwise the previous scale is kept. The initial scale is
//    1. (TE: transformer_engine/common/recipe/delayed_scaling.cu, amax_and_scale_update.)
// Host only (std::vector); one Fp8Scaler per tensor and format.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "fpscope/formats.h"

namespace fpscope {

enum class ScalingPolicy : uint8_t { None = 0, Current = 1, Delayed = 2 };
enum class AmaxAlgo : uint8_t { Max = 0, MostRecent = 1 };

inline const char* scaling_policy_name(ScalingPolicy p) {
  return p == ScalingPolicy::None ? "none" : p == ScalingPolicy::Current ? "current" : "delayed";
}

class Fp8Scaler {
 public:
  // f: the FP8 target (E4M3 or E5M2; any cast target works). history_len >= 1 (smaller is
  // taken as 1). margin: TE's margin (a power of two of headroom).
  explicit Fp8Scaler(Format f, ScalingPolicy p = ScalingPolicy::Delayed, int history_len = 1024,
                     int margin = 0, AmaxAlgo algo = AmaxAlgo::Max)
      : policy_(p),
        algo_(algo),
        scaled_max_(max_finite(f) * pow2f(-margin)),
        history_(static_cast<size_t>(history_len < 1 ? 1 : history_len), 0.0f) {}

  // Scale to use for the next observation (Current: the one derived from the last observed
  // amax; use current_scale() with the observation's own amax instead).
  float scale() const { return scale_; }

  // Records the amax of the observation just made (its cast used scale()).
  void observe(float amax) {
    if (policy_ == ScalingPolicy::None) return;
    if (policy_ == ScalingPolicy::Current) {
      scale_ = from_amax(amax, scale_);
      return;
    }
    history_[head_] = amax;
    float ref = 0.0f;
    if (algo_ == AmaxAlgo::MostRecent) {
      ref = amax;
    } else {
      for (float a : history_) ref = (a > ref) ? a : ref;  // fmaxf: NaN entries ignored
    }
    head_ = (head_ + 1) % history_.size();  // the oldest entry is overwritten next
    scale_ = from_amax(ref, scale_);
  }

  // Current scaling for an observation with this amax (1 when amax is 0 or not finite).
  static float current_scale(Format f, float amax, int margin = 0) {
    Fp8Scaler s(f, ScalingPolicy::Current, 1, margin);
    return s.from_amax(amax, 1.0f);
  }

  ScalingPolicy policy() const { return policy_; }

 private:
  static bool finite_positive(float a) {
    uint32_t u;
    std::memcpy(&u, &a, 4);
    return u > 0u && u < 0x7f800000u;  // > +0, not Inf/NaN, not negative
  }
  float from_amax(float amax_ref, float keep) const {
    if (!finite_positive(amax_ref)) return keep;
    const float s = scaled_max_ / amax_ref;
    uint32_t u;
    std::memcpy(&u, &s, 4);
    return (u & 0x7fffffffu) >= 0x7f800000u ? keep : s;  // a tiny amax must not make s = Inf
  }

  ScalingPolicy policy_;
  AmaxAlgo algo_;
  float scaled_max_;
  std::vector<float> history_;
  size_t head_ = 0;
  float scale_ = 1.0f;
};

}  // namespace fpscope
