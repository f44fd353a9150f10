// FPSCOPE_FP8_SCALING in the probe: the scale each operand's E4M3/E5M2 statistics are cast with
// (kernels/scaling.h, the same helper the analysis replays). Current: from the operand's own
// amax. Delayed: per tensor, from the amaxes of its earlier observations (observe()). Not
// thread-safe (the recorder's lock, for the delayed policy).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <utility>

#include "config.h"
#include "fpscope/scaling.h"

namespace fpscope::probe {

class Fp8Scales {
 public:
  explicit Fp8Scales(const Config& cfg)
      : policy_(cfg.fp8_policy),
        history_(cfg.fp8_history),
        margin_(cfg.fp8_margin),
        algo_(cfg.fp8_algo) {}
  bool needs_amax() const { return policy_ == ScalingPolicy::Current; }
  bool per_tensor() const { return policy_ == ScalingPolicy::Delayed; }
  // The per-target scales (kTargets order) for an operand of `tensor` (kUnresolved: not known
  // yet) whose own amax is `amax`: 1 for BF16/FP16, and without a policy; 1 for a tensor the
  // delayed policy has not seen.
  void scales(uint32_t tensor, float amax, float* out);
  // An observation of `tensor` with this amax was written (delayed policy).
  void observe(uint32_t tensor, float amax);
  void clear() { scalers_.clear(); }  // a new trace (a forked child's)

 private:
  std::pair<Fp8Scaler, Fp8Scaler>& of(uint32_t tensor);  // E4M3, E5M2
  ScalingPolicy policy_;
  int history_;
  int margin_;
  AmaxAlgo algo_;
  std::unordered_map<uint32_t, std::pair<Fp8Scaler, Fp8Scaler>> scalers_;
};

}  // namespace fpscope::probe
