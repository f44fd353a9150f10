#include "fp8_scales.h"

#include "recorder.h"

namespace fpscope::probe {

std::pair<Fp8Scaler, Fp8Scaler>& Fp8Scales::of(uint32_t tensor) {
  auto it = scalers_.find(tensor);
  if (it == scalers_.end()) {
    auto make = [this](Format f) { return Fp8Scaler(f, policy_, history_, margin_, algo_); };
    it = scalers_.emplace(tensor, std::make_pair(make(Format::E4M3), make(Format::E5M2))).first;
  }
  return it->second;
}

void Fp8Scales::scales(uint32_t tensor, float amax, float* out) {
  for (int k = 0; k < kNumTargets; ++k) out[k] = 1.0f;
  const int e4 = target_index(Format::E4M3), e5 = target_index(Format::E5M2);
  switch (policy_) {
    case ScalingPolicy::None:
      return;
    case ScalingPolicy::Current:
      out[e4] = Fp8Scaler::current_scale(Format::E4M3, amax, margin_);
      out[e5] = Fp8Scaler::current_scale(Format::E5M2, amax, margin_);
      return;
    case ScalingPolicy::Delayed: {
      if (tensor == kUnresolved) return;
      auto& sc = of(tensor);
      out[e4] = sc.first.scale();
      out[e5] = sc.second.scale();
      return;
    }
  }
}

void Fp8Scales::observe(uint32_t tensor, float amax) {
  if (policy_ != ScalingPolicy::Delayed) return;
  auto& sc = of(tensor);
  sc.first.observe(amax);
  sc.second.observe(amax);
}

}  // namespace fpscope::probe
