// The operands, scales and expected results of mock_lt_prog (FP8 cuBLASLt GEMMs end to end on the
// strict mock driver), generated the same way by the program and by its test (test_mock_lt.cpp),
// which recomputes every statistic on the host from them. Pure functions of (matrix, index, step).
// The E4M3 decode here is written from the OCP FP8 definition, independently of the kernels'
// numerics.h and of the mock cuBLASLt's (CUDA's cuda_fp8.h).
#pragma once

#include <cmath>
#include <cstdint>

#include "mock_hash.h"

namespace mock_lt {

// D (m x n) = op(A) (m x k) * B (k x n), column-major. A is stored k x m and used transposed
// (TRANSA = T, B not: the "TN" layout Transformer Engine and cuBLASLt's FP8 kernels use).
// k is a multiple of 32: the block-scaled GEMM's VEC32 blocks run along it.
inline constexpr int kM = 48, kN = 40, kK = 96;
inline constexpr int kKBlocks = kK / 32;

using mock_data::mix;

// E4M3 code of element i of matrix `which` (0: A, 1: B, 2: the block-scaled GEMM's A, 3: its B) at
// `step`: every finite code may occur (subnormals, zeros of both signs, +-448), never NaN.
inline uint8_t code(int which, uint32_t i, uint32_t step) {
  const uint32_t h = mix(i * 2654435761U ^ (step + 1) * 40503U ^ (which + 1) * 0x9e3779b9U);
  const uint8_t c = static_cast<uint8_t>(h & 0xff);
  return (c & 0x7f) == 0x7f ? static_cast<uint8_t>(c ^ 0x01) : c;  // NaN -> +-448
}

// OCP FP8 E4M3 (FN): sign, 4 exponent bits (bias 7), 3 mantissa bits; no infinities, S.1111.111
// is NaN. Exact in float.
inline float e4m3_value(uint8_t c) {
  const float sign = c & 0x80 ? -1.0f : 1.0f;
  const int e = c >> 3 & 0xf, m = c & 7;
  if (e == 15 && m == 7) return NAN;
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -9);
  return sign * std::ldexp(static_cast<float>(8 + m), e - 10);
}

// The per-tensor scales at `step`, FP32 scalars in device memory: not powers of two, so code *
// scale and code / scale round (the test tells a scaled pass from a raw one by more than an
// exponent shift). A's and B's are Transformer Engine's scale_inv, D's its quantization scale.
inline float scale_a(uint32_t step) {
  return 0.0371f * static_cast<float>(step + 1);
}
inline float scale_b(uint32_t step) {
  return 1.37f + 0.11f * static_cast<float>(step);
}
inline float scale_d(uint32_t step) {
  return 0.0213f / static_cast<float>(step + 1);
}

// The block-scaled GEMM's UE8M0 scale of block `blk` (of 32 elements along k) of row i of op(A)
// (which 0) or column j of B (which 1): exponents 2^-6 .. 2^5 (biased 121 .. 132). Stored at
// [line * kKBlocks + blk] (mock_cublaslt.cpp's layout, not cuBLASLt's swizzled tiles).
inline uint8_t block_exponent(int which, uint32_t line, uint32_t blk, uint32_t step) {
  return static_cast<uint8_t>(121 + mix(line * 977U + blk * 131U + step * 7919U + which) % 12);
}

// D's values (before any output conversion) in the mock cuBLASLt's order: column j, row i, l
// ascending, acc += a(i, l) * b(l, j) in FP32, then (alpha * scale_A * scale_B) * acc, the factor
// rounded left to right. a(i, l) is op(A)'s element, b(l, j) B's; beta = 0.
template <class GetA, class GetB>
inline void gemm_reference(GetA a, GetB b, float factor, float* d) {
  for (int j = 0; j < kN; ++j)
    for (int i = 0; i < kM; ++i) {
      float acc = 0.0f;
      for (int l = 0; l < kK; ++l) acc += a(i, l) * b(l, j);
      d[i + j * kM] = factor * acc;
    }
}

}  // namespace mock_lt
