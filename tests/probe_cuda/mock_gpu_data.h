// The operands of mock_gpu_prog (the GPU path end to end on the strict mock driver), generated
// the same way by the program and by its test (test_mock_gpu.cpp), which recomputes every
// statistic on the host from them. Pure functions of (matrix, index, step).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "mock_hash.h"

namespace mock_gpu {

inline constexpr int kM = 48, kN = 40, kK = 72;  // D (m x n) = A (m x k) * B (k x n), col-major

using mock_data::mix;

// FP32 element i of matrix `which` (0: A, 1: B) at `step`: signed values with exponents spread
// over 2^-24 .. 2^15 (FP16 and FP8 underflow and overflow both occur), exact zeros, and in step 2
// one NaN in A.
inline float value(int which, uint32_t i, uint32_t step) {
  const uint32_t h = mix(i * 2654435761U ^ (step + 1) * 40503U ^ (which + 1) * 0x9e3779b9U);
  if (h % 53 == 0) return 0.0f;
  if (which == 0 && step == 2 && i == 17) return NAN;
  const float m = 1.0f + static_cast<float>(h >> 9 & 0x3ff) / 1024.0f;
  const int e = static_cast<int>(h >> 20 & 0x3f) % 40 - 24;
  return (h & 1u ? -1.0f : 1.0f) * std::ldexp(m, e);
}

// The BF16 operand: the FP32 value's upper half (truncation: any BF16 bits will do).
inline uint16_t bf16_value(int which, uint32_t i, uint32_t step) {
  const float f = value(which, i, step);
  uint32_t b = 0;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>(b >> 16);
}
inline float bf16_to_float(uint16_t h) {
  const uint32_t b = static_cast<uint32_t>(h) << 16;
  float f = 0.0f;
  std::memcpy(&f, &b, 4);
  return f;
}

// D = A * B in FP32 in the mock cuBLAS's order (column j, row i, l ascending; alpha 1, beta 0).
template <class GetA, class GetB>
inline void gemm_reference(GetA a, GetB b, float* d) {
  for (int j = 0; j < kN; ++j)
    for (int i = 0; i < kM; ++i) {
      float acc = 0.0f;
      for (int l = 0; l < kK; ++l) acc += a(i + l * kM) * b(l + j * kK);
      d[i + j * kM] = acc;
    }
}

}  // namespace mock_gpu
