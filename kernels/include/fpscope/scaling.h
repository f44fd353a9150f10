// FP8 scaling policies (docs/design.md "FP8 scaling policies"), shared by the probe and the
// analysis.
//  - None:    s = 1.
//  - Current: s = (fp8_max / amax(x)) / 2^margin from the tensor's own amax (current_scale()).
//  - Delayed: Transformer Engine's DelayedScaling. The scale used for an observation comes from
//    the amaxes observed BEFORE it: after each observation its amax enters a window of the last
//    H amaxes (initially zeros), amax_ref = max over the window ("max", NaN entries ignored as
//    TE's fmaxf does) or the newest amax ("most_recent"), and
//      s = (fp8_max * 2^-margin) / amax_ref      (computed in FP32 in that order, as TE does)
//    when amax_ref is finite and > 0; otherwise the previous scale is kept. The initial scale is
//    1. (TE: transformer_engine/common/recipe/delayed_scaling.cu, amax_and_scale_update.)
//    The window maximum is kept incrementally (a monotonic queue of the window's candidates for
//    the maximum), O(1) amortized per observation instead of a rescan of all H entries; it equals
//    the scan "ref = 0; for a in window: ref = a > ref ? a : ref" exactly, NaN/zero/negative
//    entries included (they never win the comparison, so they are never candidates).
// Host only (std::vector); one Fp8Scaler per tensor and format.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
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
        window_(static_cast<uint64_t>(history_len < 1 ? 1 : history_len)) {}

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
    const float ref = algo_ == AmaxAlgo::MostRecent ? amax : window_max(amax);
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
    return u > 0u && u < kFp32InfBits;  // > +0, not Inf/NaN, not negative
  }
  float from_amax(float amax_ref, float keep) const {
    if (!finite_positive(amax_ref)) return keep;
    const float s = scaled_max_ / amax_ref;
    uint32_t u;
    std::memcpy(&u, &s, 4);
    return (u & kFp32AbsMask) >= kFp32InfBits ? keep : s;  // a tiny amax must not make s = Inf
  }

  // Appends `amax` as observation number n_ and returns max(0, max of the entries > 0 among the
  // last H observations): the window of TE's amax history (initially zeros). The queue holds,
  // oldest first, the observations that can still be the window maximum: each is > 0 and larger
  // than every later one in the window (strictly decreasing values). At most H entries.
  float window_max(float amax) {
    // Sized by what the queue actually holds, not by H: an analysis keeps one scaler per tensor
    // and FP8 format (100k tensors x 2 x min(H, 4096) entries was 3.6 GB for one observation
    // each). Starts at min(H, 4) entries and doubles when full.
    if (ring_.empty()) ring_.resize(static_cast<size_t>(window_ < 4 ? window_ : 4));
    const uint64_t n = n_++;
    if (size_ > 0 && ring_[head_].index + window_ <= n) pop_front();  // left the window
    if (amax > 0.0f) {  // NaN, +-0 and negative entries never beat ref = 0: not candidates
      while (size_ > 0 && back().value <= amax) --size_;
      push_back({n, amax});
    }
    return size_ > 0 ? ring_[head_].value : 0.0f;
  }
  struct Entry {
    uint64_t index;
    float value;
  };
  Entry& back() { return ring_[(head_ + size_ - 1) % ring_.size()]; }
  void pop_front() {
    head_ = (head_ + 1) % ring_.size();
    --size_;
  }
  void push_back(Entry e) {
    if (size_ == ring_.size()) grow();
    ring_[(head_ + size_) % ring_.size()] = e;
    ++size_;
  }
  void grow() {  // the queue is full (it never exceeds H entries): keep order, double the ring
    std::vector<Entry> r(ring_.size() * 2);
    for (size_t i = 0; i < size_; ++i) r[i] = ring_[(head_ + i) % ring_.size()];
    ring_ = std::move(r);
    head_ = 0;
  }

  ScalingPolicy policy_;
  AmaxAlgo algo_;
  float scaled_max_;
  uint64_t window_;          // H
  uint64_t n_ = 0;           // observations so far
  std::vector<Entry> ring_;  // the queue (circular), allocated on first use
  size_t head_ = 0;
  size_t size_ = 0;
  float scale_ = 1.0f;
};

}  // namespace fpscope
