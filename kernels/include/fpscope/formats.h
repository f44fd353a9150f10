// fpscope format table: the one place where floating-point formats are described.
//
// Every format constant in the project (max finite, min normal, min subnormal, bias, bit widths) is
// derived here from four facts per format: exponent bits, mantissa bits, how Inf/NaN are encoded,
// and the block size of a block-scaled variant. Nothing else in the project may spell out 65504,
// 448, 57344, 2^-24, ... : call these functions instead.
//
// Usable from host and device code (CUDA __host__ __device__), C++17, no libm.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define FPSCOPE_HD __host__ __device__
#else
#define FPSCOPE_HD
#endif

namespace fpscope {

// Storage/target formats. The numbering is part of the trace format (traces/FORMAT.md): append only.
enum class Format : uint8_t {
  FP32 = 0,
  BF16 = 1,
  FP16 = 2,
  E4M3 = 3,  // OCP FP8 E4M3 "FN": no Inf, NaN = S.1111.111, max 448
  E5M2 = 4,  // OCP FP8 E5M2: IEEE-like, has Inf
};
inline constexpr int kNumFormats = 5;

// How the all-ones exponent field is used.
enum class SpecialEncoding : uint8_t {
  IEEE,            // all-ones exponent = Inf (mantissa 0) / NaN: FP32, BF16, FP16, E5M2
  FiniteNanOnlyMax,  // no Inf; only all-ones exponent AND mantissa is NaN: E4M3 FN (and E2M1 later)
};

struct FormatSpec {
  Format format;
  const char* name;  // lower case, used in traces, JSON, CLI flags: "fp32", "bf16", ...
  int exp_bits;
  int man_bits;  // explicit mantissa bits
  SpecialEncoding special;
  int block_size;  // 0: plain per-tensor format; >0: block-scaled variant (MXFP8 = 32, ...)
  bool cast_target;  // statistics are kept for casts to this format (FP32 is only a storage type)
};

// The table. Adding E2M1 (FP4), E8M0 or MX block formats is a new row plus a block size.
inline constexpr FormatSpec kFormats[kNumFormats] = {
    {Format::FP32, "fp32", 8, 23, SpecialEncoding::IEEE, 0, false},
    {Format::BF16, "bf16", 8, 7, SpecialEncoding::IEEE, 0, true},
    {Format::FP16, "fp16", 5, 10, SpecialEncoding::IEEE, 0, true},
    {Format::E4M3, "e4m3", 4, 3, SpecialEncoding::FiniteNanOnlyMax, 0, true},
    {Format::E5M2, "e5m2", 5, 2, SpecialEncoding::IEEE, 0, true},
};

// Formats for which per-tensor statistics keep counts, in this order (TensorStats::fmt[i]).
inline constexpr int kNumTargets = 4;
inline constexpr Format kTargets[kNumTargets] = {Format::BF16, Format::FP16, Format::E4M3,
                                                 Format::E5M2};

FPSCOPE_HD constexpr const FormatSpec& spec(Format f) { return kFormats[static_cast<int>(f)]; }

// Index of f in kTargets, or -1.
FPSCOPE_HD constexpr int target_index(Format f) {
  for (int i = 0; i < kNumTargets; ++i)
    if (kTargets[i] == f) return i;
  return -1;
}

// Exact power of two as float, for -149 <= e <= 127 (constexpr, no libm).
FPSCOPE_HD constexpr float pow2f(int e) {
  float r = 1.0f;
  if (e >= 0) {
    for (int i = 0; i < e; ++i) r *= 2.0f;
  } else {
    for (int i = 0; i < -e; ++i) r *= 0.5f;
  }
  return r;
}

FPSCOPE_HD constexpr int storage_bits(const FormatSpec& s) { return 1 + s.exp_bits + s.man_bits; }
FPSCOPE_HD constexpr int exponent_bias(const FormatSpec& s) { return (1 << (s.exp_bits - 1)) - 1; }
// Unbiased exponent of the smallest normal number.
FPSCOPE_HD constexpr int min_normal_exp(const FormatSpec& s) { return 1 - exponent_bias(s); }
// Unbiased exponent of the largest finite number.
FPSCOPE_HD constexpr int max_exp(const FormatSpec& s) {
  // IEEE: the all-ones exponent is reserved. FN: it holds numbers (but the all-ones mantissa is NaN).
  return (s.special == SpecialEncoding::IEEE ? (1 << s.exp_bits) - 2 : (1 << s.exp_bits) - 1) -
         exponent_bias(s);
}
// Mantissa (as an integer over 2^man_bits) of the largest finite number.
FPSCOPE_HD constexpr int max_mantissa(const FormatSpec& s) {
  return s.special == SpecialEncoding::IEEE ? (1 << s.man_bits) - 1 : (1 << s.man_bits) - 2;
}
// Unbiased exponent of the smallest subnormal: its value is 2^min_subnormal_exp.
FPSCOPE_HD constexpr int min_subnormal_exp(const FormatSpec& s) {
  return min_normal_exp(s) - s.man_bits;
}
// Largest finite value, e.g. 65504 for FP16, 448 for E4M3, 57344 for E5M2.
FPSCOPE_HD constexpr float max_finite(const FormatSpec& s) {
  return pow2f(max_exp(s)) *
         (1.0f + static_cast<float>(max_mantissa(s)) * pow2f(-s.man_bits));
}
FPSCOPE_HD constexpr float min_normal(const FormatSpec& s) { return pow2f(min_normal_exp(s)); }
FPSCOPE_HD constexpr float min_subnormal(const FormatSpec& s) {
  return pow2f(min_subnormal_exp(s));
}
FPSCOPE_HD constexpr bool has_inf(const FormatSpec& s) {
  return s.special == SpecialEncoding::IEEE;
}

FPSCOPE_HD constexpr float max_finite(Format f) { return max_finite(spec(f)); }
FPSCOPE_HD constexpr float min_normal(Format f) { return min_normal(spec(f)); }
FPSCOPE_HD constexpr float min_subnormal(Format f) { return min_subnormal(spec(f)); }

// Name lookup for traces, JSON and command lines; returns false when unknown.
constexpr bool format_from_name(const char* name, Format* out) {
  for (const auto& s : kFormats) {
    const char* a = s.name;
    const char* b = name;
    while (*a && *a == *b) {
      ++a;
      ++b;
    }
    if (*a == 0 && *b == 0) {
      *out = s.format;
      return true;
    }
  }
  return false;
}

}  // namespace fpscope
