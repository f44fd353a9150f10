// The weights of device_watch_prog (tests/probe_cuda), shared with the test that checks its trace:
// weights(k) are the watched values at the START of step k (the optimizer of step k turns
// weights(k) into weights(k + 1)). Deterministic; mostly updates of ~1e-4 at magnitude ~1 (lost
// in BF16, kept in FP16), some large ones, zeros and unchanged elements.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace fpscope::cuda::watch_data {

inline constexpr size_t kElements = 4096;
inline constexpr int kSteps = 6;

inline std::vector<float> weights(int k) {
  std::vector<float> w(kElements);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  auto next = [&x] {  // splitmix64 -> [0, 1)
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return static_cast<float>((z ^ (z >> 31)) >> 40) / 16777216.0f;
  };
  for (size_t i = 0; i < kElements; ++i) w[i] = (i % 7 == 3) ? 0.0f : 0.5f + 1.5f * next();
  for (int s = 0; s < k; ++s)
    for (size_t i = 0; i < kElements; ++i) {
      if (i % 5 == 0) continue;
      const float g = next() - 0.5f;
      w[i] -= ((i % 11 == 0) ? 1e-1f : 2e-4f) * g;
    }
  return w;
}

inline uint16_t to_bf16(float v) {  // round to nearest even (finite values)
  uint32_t b;
  std::memcpy(&b, &v, 4);
  b += 0x7fffu + ((b >> 16) & 1u);
  return static_cast<uint16_t>(b >> 16);
}

}  // namespace fpscope::cuda::watch_data
