// Reference casts and classification from CUDA's own host conversion functions (cuda_fp16.h,
// cuda_bf16.h, cuda_fp8.h compiled by the host compiler). Nothing here uses fpscope's numerics.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "fpscope/formats.h"

namespace ref {
using fpscope::Format;

inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Storage pattern -> float, by CUDA.
inline float decode(Format f, uint32_t b) {
  switch (f) {
    case Format::FP32:
      return from_bits(b);
    case Format::BF16: {
      __nv_bfloat16_raw r;
      r.x = static_cast<unsigned short>(b);
      return __bfloat162float(__nv_bfloat16(r));
    }
    case Format::FP16: {
      __half_raw r;
      r.x = static_cast<unsigned short>(b);
      return __half2float(__half(r));
    }
    case Format::E4M3:
      return __half2float(
          __half(__nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(b), __NV_E4M3)));
    case Format::E5M2:
      return __half2float(
          __half(__nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(b), __NV_E5M2)));
  }
  return 0;
}

// float -> storage pattern of f, round to nearest even, non-saturating (CUDA).
inline uint32_t encode(Format f, float y) {
  switch (f) {
    case Format::FP32:
      return bits(y);
    case Format::BF16:
      return __nv_bfloat16_raw(__float2bfloat16_rn(y)).x;
    case Format::FP16:
      return __half_raw(__float2half_rn(y)).x;
    case Format::E4M3:
      return __nv_cvt_float_to_fp8(y, __NV_NOSAT, __NV_E4M3);
    case Format::E5M2:
      return __nv_cvt_float_to_fp8(y, __NV_NOSAT, __NV_E5M2);
  }
  return 0;
}

struct Cast {
  float value;
  bool overflow, underflow, subnormal;
};

// The docs/design.md classification of CUDA's cast of y to f. The smallest normal is CUDA's decode
// of the pattern with exponent field 1, mantissa 0 (not the format table).
inline int man_bits(Format f) {
  switch (f) {  // a switch, not spec(f): GCC 12 warns (falsely) about kFormats' bounds otherwise
    case Format::FP32:
      return fpscope::kFormats[0].man_bits;
    case Format::BF16:
      return fpscope::kFormats[1].man_bits;
    case Format::FP16:
      return fpscope::kFormats[2].man_bits;
    case Format::E4M3:
      return fpscope::kFormats[3].man_bits;
    case Format::E5M2:
      return fpscope::kFormats[4].man_bits;
  }
  return 0;
}
inline Cast cast(Format f, float y) {
  const float v = decode(f, encode(f, y));
  const float min_norm = decode(f, 1u << man_bits(f));
  Cast c;
  c.value = v;
  c.overflow = std::isinf(v) || std::isnan(v);
  c.underflow = y != 0.0f && v == 0.0f;
  c.subnormal = v != 0.0f && std::fabs(v) < min_norm;
  return c;
}

inline bool same_value(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || bits(a) == bits(b);
}

}  // namespace ref
