// fpscope format table: the one place where floating-point formats are described.
//
// Every format constant in the project (max finite, min normal, min subnormal, bias, bit widths,
// the FP32 bit layout, the exponent histogram's bins) is derived here from a few facts per
// format: sign bit or not, exponent bits, mantissa bits, how Inf/NaN (and zero) are encoded, and
// for a block-scaled variant its block size and scale format. Nothing else in the project may
// spell out 65504, 448, 57344, 2^-24, 127, 0x7f800000, ... : use these functions and constants.
//
// Usable from host and device code (CUDA __host__ __device__), C++17, no libm.
//
// How to add a format (docs/design.md "How to add one"):
//  - Only described (a what-if: FP6, FP4, MX, NVFP4): no new Format value. Add an inline
//    constexpr FormatSpec below the table with format = kUnlistedFormat (block_scaled() for
//    block formats, listed in kBlockFormats); valid_spec() must hold (static_assert below), and
//    tests/kernels (test_formats.cpp, test_block_casts.cpp) check its derived constants against
//    the format's spec sheet. Its casts are block_numerics.h's cast_sat<row> / encode_sat /
//    decode_code (signed formats with subnormals; tested code by code against CUDA's host
//    conversions where CUDA has them). histogram.h gives its what-if counts from any trace.
//  - Stored (a tensor dtype the probe reads): append a Format value and its kFormats row (row i
//    is Format i; kNumFormats + 1). The number is written in traces: a new value of an existing
//    enumeration is a trace-format change (traces/FORMAT.md section 7, "Enumerations" in 5).
//    Then give it a storage decode (numerics.h decode_storage) and a case in the dtype switches
//    of kernels/src/host_stats.cpp, kernels/src/stats_sim.cpp and kernels/cuda/stats_kernels.cu,
//    and map the library's dtype to it in the probe (probe/cuda/lt_decode.cpp, the host hooks).
//  - A cast target (statistics count overflow/underflow/subnormal/error for it): additionally
//    cast_target = true, append it to kTargets (kNumTargets + 1; table_is_consistent() checks
//    the order). That changes TensorStats (stats.h) and so the OBSERVATION record (FORMAT.md 5.2:
//    target entries are appended, a minor version), the CUDA result slot, the summary JSON
//    (docs/summary-json.md), the GUI's format colours and columns (gui/core/src/colors.cpp,
//    gui/app/panels_table.cpp) and docs/metrics.md. numerics.h's cast must equal CUDA's own
//    host conversion for every code: add it to the exhaustive tests in tests/kernels (cuda_ref.h).
//  - Never spell one of its constants elsewhere: derive them here (see above).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define FPSCOPE_HD __host__ __device__
#else
#define FPSCOPE_HD
#endif

namespace fpscope {

// Storage/target formats. The numbering is part of the trace format (traces/FORMAT.md): append
// only, together with a kFormats row.
enum class Format : uint8_t {
  FP32 = 0,
  BF16 = 1,
  FP16 = 2,
  E4M3 = 3,  // OCP FP8 E4M3 "FN": no Inf, NaN = S.1111.111, max 448
  E5M2 = 4,  // OCP FP8 E5M2: IEEE-like, has Inf
};
inline constexpr int kNumFormats = 5;
// The `format` of a FormatSpec that is not (yet) a kFormats row: what-if tools and tests describe
// E2M1, E8M0 and the block-scaled formats with it.
inline constexpr Format kUnlistedFormat = static_cast<Format>(0xff);

// How the all-ones exponent field is used.
enum class SpecialEncoding : uint8_t {
  IEEE,              // Inf (mantissa 0) and NaN (others): FP32, BF16, FP16, E5M2
  FiniteNanOnlyMax,  // no Inf; the all-ones exponent holds numbers except the all-ones code (all
                     // exponent and mantissa bits set), the only NaN: E4M3 FN; E8M0 (0xFF)
  AllFinite,         // no Inf, no NaN: every code is a number: E2M1 (FP4)
};

struct FormatSpec {
  Format format;
  const char* name;  // lower case, used in traces, JSON, CLI flags: "fp32", "bf16", ...
  int exp_bits;
  int man_bits;  // explicit mantissa bits
  SpecialEncoding special;
  int block_size;    // 0: plain per-tensor format; >0: block-scaled (MXFP8 = 32, NVFP4 = 16)
  bool cast_target;  // statistics are kept for casts to this format (FP32 is only a storage type)
  bool has_sign = true;  // false: unsigned, no sign bit (E8M0)
  // The all-zeros exponent field holds zero and the subnormals. false: it is one more binade,
  // 2^-bias, and the format has neither zero nor subnormals (E8M0).
  bool has_zero = true;
  const FormatSpec* block_scale = nullptr;  // block-scaled (block_size > 0): the scale's format
};

// The table (row i describes Format i). Formats not stored in traces are described with the
// same struct below the table (kE3M2, kE2M3, kE2M1, kE8M0 and the block formats, see
// block_scaled()); listing one here is a new Format value plus a row.
inline constexpr FormatSpec kFormats[kNumFormats] = {
    {Format::FP32, "fp32", 8, 23, SpecialEncoding::IEEE, 0, false, true, true, nullptr},
    {Format::BF16, "bf16", 8, 7, SpecialEncoding::IEEE, 0, true, true, true, nullptr},
    {Format::FP16, "fp16", 5, 10, SpecialEncoding::IEEE, 0, true, true, true, nullptr},
    {Format::E4M3, "e4m3", 4, 3, SpecialEncoding::FiniteNanOnlyMax, 0, true, true, true, nullptr},
    {Format::E5M2, "e5m2", 5, 2, SpecialEncoding::IEEE, 0, true, true, true, nullptr},
};

// Formats for which per-tensor statistics keep counts, in this order (TensorStats::fmt[i]).
inline constexpr int kNumTargets = 4;
inline constexpr Format kTargets[kNumTargets] = {Format::BF16, Format::FP16, Format::E4M3,
                                                 Format::E5M2};

FPSCOPE_HD constexpr const FormatSpec& spec(Format f) {
  return kFormats[static_cast<int>(f)];
}

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

FPSCOPE_HD constexpr int storage_bits(const FormatSpec& s) {
  return (s.has_sign ? 1 : 0) + s.exp_bits + s.man_bits;
}
FPSCOPE_HD constexpr int exponent_bias(const FormatSpec& s) {
  return (1 << (s.exp_bits - 1)) - 1;
}
FPSCOPE_HD constexpr uint32_t exponent_field_mask(const FormatSpec& s) {
  return (1u << s.exp_bits) - 1u;
}
FPSCOPE_HD constexpr uint32_t mantissa_field_mask(const FormatSpec& s) {
  return (1u << s.man_bits) - 1u;
}
// The magnitude code (exponent and mantissa fields, sign clear) of the largest finite number:
// below the all-ones exponent (IEEE), one below the all-ones NaN code (FN), the all-ones code
// itself (all finite).
FPSCOPE_HD constexpr uint32_t max_finite_code(const FormatSpec& s) {
  const uint32_t all = (1u << (s.exp_bits + s.man_bits)) - 1u;
  return s.special == SpecialEncoding::IEEE               ? all - (1u << s.man_bits)
         : s.special == SpecialEncoding::FiniteNanOnlyMax ? all - 1u
                                                          : all;
}
// Unbiased exponent of the smallest normal number (exponent field 1, or 0 without zero).
FPSCOPE_HD constexpr int min_normal_exp(const FormatSpec& s) {
  return (s.has_zero ? 1 : 0) - exponent_bias(s);
}
// Unbiased exponent of the largest finite number.
FPSCOPE_HD constexpr int max_exp(const FormatSpec& s) {
  return static_cast<int>(max_finite_code(s) >> s.man_bits) - exponent_bias(s);
}
// Mantissa (as an integer over 2^man_bits) of the largest finite number.
FPSCOPE_HD constexpr int max_mantissa(const FormatSpec& s) {
  return static_cast<int>(max_finite_code(s) & mantissa_field_mask(s));
}
FPSCOPE_HD constexpr bool has_subnormals(const FormatSpec& s) {
  return s.has_zero && s.man_bits > 0;
}
// Unbiased exponent of the smallest positive number, 2^min_subnormal_exp: the smallest
// subnormal, or the smallest normal when there are no subnormals (E8M0).
FPSCOPE_HD constexpr int min_subnormal_exp(const FormatSpec& s) {
  return min_normal_exp(s) - (has_subnormals(s) ? s.man_bits : 0);
}
// Largest finite value, e.g. 65504 for FP16, 448 for E4M3, 57344 for E5M2, 6 for E2M1.
FPSCOPE_HD constexpr float max_finite(const FormatSpec& s) {
  return pow2f(max_exp(s)) * (1.0f + static_cast<float>(max_mantissa(s)) * pow2f(-s.man_bits));
}
FPSCOPE_HD constexpr float min_normal(const FormatSpec& s) {
  return pow2f(min_normal_exp(s));
}
FPSCOPE_HD constexpr float min_subnormal(const FormatSpec& s) {
  return pow2f(min_subnormal_exp(s));
}
FPSCOPE_HD constexpr bool has_inf(const FormatSpec& s) {
  return s.special == SpecialEncoding::IEEE;
}
FPSCOPE_HD constexpr bool has_nan(const FormatSpec& s) {
  return s.special != SpecialEncoding::AllFinite;
}

FPSCOPE_HD constexpr float max_finite(Format f) {
  return max_finite(spec(f));
}
FPSCOPE_HD constexpr float min_normal(Format f) {
  return min_normal(spec(f));
}
FPSCOPE_HD constexpr float min_subnormal(Format f) {
  return min_subnormal(spec(f));
}

// The value of any code of any format, from the table alone (tools and tests; the hot-path
// decode is numerics.h's decode_storage_t). `value` is the number, or the sign (+-1) of an Inf
// or a NaN.
enum class CodeKind : uint8_t { Finite, Inf, NaN };
struct CodeValue {
  CodeKind kind;
  float value;
};
FPSCOPE_HD constexpr CodeValue code_value(const FormatSpec& s, uint32_t code) {
  const uint32_t e = (code >> s.man_bits) & exponent_field_mask(s);
  const uint32_t m = code & mantissa_field_mask(s);
  const bool negative = s.has_sign && ((code >> (s.exp_bits + s.man_bits)) & 1u) != 0;
  const float sign = negative ? -1.0f : 1.0f;
  const bool top = e == exponent_field_mask(s);
  if (s.special == SpecialEncoding::IEEE && top)
    return CodeValue{m == 0 ? CodeKind::Inf : CodeKind::NaN, sign};
  if (s.special == SpecialEncoding::FiniteNanOnlyMax && top && m == mantissa_field_mask(s))
    return CodeValue{CodeKind::NaN, sign};
  const float frac = static_cast<float>(m) * pow2f(-s.man_bits);
  if (s.has_zero && e == 0) return CodeValue{CodeKind::Finite, sign * frac * min_normal(s)};
  return CodeValue{CodeKind::Finite,
                   sign * (1.0f + frac) * pow2f(static_cast<int>(e) - exponent_bias(s))};
}

// ---- block-scaled formats (OCP MX, NVFP4) ----------------------------------------------------
// `block` consecutive elements of format `element` share one scale of format `scale`:
//   MXFP8 = block_scaled(E4M3, "mxfp8", 32, E8M0), MXFP4 = block_scaled(E2M1, "mxfp4", 32, E8M0),
//   NVFP4 = block_scaled(E2M1, "nvfp4", 16, E4M3).
// The element range functions above (max_finite, ...) describe the element format.
constexpr FormatSpec block_scaled(const FormatSpec& element, const char* name, int block,
                                  const FormatSpec& scale) {
  FormatSpec r = element;
  r.format = kUnlistedFormat;
  r.name = name;
  r.block_size = block;
  r.block_scale = &scale;
  return r;
}
FPSCOPE_HD constexpr bool is_block_scaled(const FormatSpec& s) {
  return s.block_size > 0;
}

// The element and scale formats of OCP MX v1.0 (section 5: FP8 E4M3/E5M2 = the E4M3/E5M2 rows,
// FP6 E3M2/E2M3, FP4 E2M1, scale E8M0) and NVFP4 (E2M1 elements, an E4M3 block scale used
// unsigned, an FP32 per-tensor scale): described rows, not stored in traces (no Format value).
// FP6 and FP4 have no Inf and no NaN (every code is a number; casts saturate, block_numerics.h);
// E8M0 is an unsigned power of two 2^-127 .. 2^127 with NaN = 0xFF and no zero.
inline constexpr FormatSpec kE3M2 = {
    kUnlistedFormat, "e3m2", 3, 2, SpecialEncoding::AllFinite, 0, false, true, true, nullptr};
inline constexpr FormatSpec kE2M3 = {
    kUnlistedFormat, "e2m3", 2, 3, SpecialEncoding::AllFinite, 0, false, true, true, nullptr};
inline constexpr FormatSpec kE2M1 = {
    kUnlistedFormat, "e2m1", 2, 1, SpecialEncoding::AllFinite, 0, false, true, true, nullptr};
inline constexpr FormatSpec kE8M0 = {
    kUnlistedFormat, "e8m0", 8,     0,      SpecialEncoding::FiniteNanOnlyMax, 0,
    false,           false,  false, nullptr};
// The block-scaled formats (OCP MX v1.0 section 5 table 1; NVIDIA NVFP4). NVFP4's E4M3 scale is
// the E4M3 row: 8 bits stored, the sign bit always clear (scales are computed from |x|).
inline constexpr FormatSpec kMxfp8E4M3 =
    block_scaled(kFormats[static_cast<int>(Format::E4M3)], "mxfp8_e4m3", 32, kE8M0);
inline constexpr FormatSpec kMxfp8E5M2 =
    block_scaled(kFormats[static_cast<int>(Format::E5M2)], "mxfp8_e5m2", 32, kE8M0);
inline constexpr FormatSpec kMxfp6E3M2 = block_scaled(kE3M2, "mxfp6_e3m2", 32, kE8M0);
inline constexpr FormatSpec kMxfp6E2M3 = block_scaled(kE2M3, "mxfp6_e2m3", 32, kE8M0);
inline constexpr FormatSpec kMxfp4 = block_scaled(kE2M1, "mxfp4", 32, kE8M0);
inline constexpr FormatSpec kNvfp4 =
    block_scaled(kE2M1, "nvfp4", 16, kFormats[static_cast<int>(Format::E4M3)]);
inline constexpr int kNumBlockFormats = 6;
inline constexpr const FormatSpec* kBlockFormats[kNumBlockFormats] = {
    &kMxfp8E4M3, &kMxfp8E5M2, &kMxfp6E3M2, &kMxfp6E2M3, &kMxfp4, &kNvfp4};
// Bits of one block: its elements and their scale (a plain format's block is one element).
constexpr int block_storage_bits(const FormatSpec& s) {
  return is_block_scaled(s) ? s.block_size * storage_bits(s) + storage_bits(*s.block_scale)
                            : storage_bits(s);
}
// Storage cost per element in bits, e.g. 4.25 for MXFP4, 4.5 for NVFP4, 8 for E4M3.
constexpr double bits_per_element(const FormatSpec& s) {
  return static_cast<double>(block_storage_bits(s)) / (is_block_scaled(s) ? s.block_size : 1);
}

// A row the rest of the table's functions can describe: at most 32 storage bits, at least one
// exponent bit, a normal largest code, a plain block scale. (block_scale is read only when
// block_size > 0, and never compared with nullptr here: GCC's -fsanitize=undefined makes such
// comparisons non-constant.)
constexpr bool valid_spec(const FormatSpec& s) {
  if (s.exp_bits < 1 || s.man_bits < 0 || s.exp_bits + s.man_bits > 31) return false;
  if ((max_finite_code(s) >> s.man_bits) == 0) return false;
  if (s.special == SpecialEncoding::IEEE && !s.has_zero) return false;
  return !is_block_scaled(s) || !is_block_scaled(*s.block_scale);
}
namespace detail {
constexpr bool table_is_consistent() {
  for (int i = 0; i < kNumFormats; ++i) {
    const FormatSpec& s = kFormats[i];
    if (static_cast<int>(s.format) != i || !valid_spec(s) || is_block_scaled(s)) return false;
  }
  int n = 0;
  for (const FormatSpec& s : kFormats)
    if (s.cast_target && (n >= kNumTargets || kTargets[n++] != s.format)) return false;
  return n == kNumTargets;
}
}  // namespace detail
static_assert(detail::table_is_consistent(),
              "kFormats: row i is Format i, every row valid, targets = rows marked cast_target");
static_assert(valid_spec(kE3M2) && valid_spec(kE2M3) && valid_spec(kE2M1) && valid_spec(kE8M0) &&
                  valid_spec(kMxfp8E4M3) && valid_spec(kMxfp8E5M2) && valid_spec(kMxfp6E3M2) &&
                  valid_spec(kMxfp6E2M3) && valid_spec(kMxfp4) && valid_spec(kNvfp4),
              "described element, scale and block-scaled rows");

// ---- FP32 layout (derived from the FP32 row) ---------------------------------------------------
inline constexpr int kFp32ExpBits = spec(Format::FP32).exp_bits;                    // 8
inline constexpr int kFp32ManBits = spec(Format::FP32).man_bits;                    // 23
inline constexpr int kFp32Bias = exponent_bias(spec(Format::FP32));                 // 127
inline constexpr int kFp32MaxBiasedExp = (1 << kFp32ExpBits) - 1;                   // 255: Inf/NaN
inline constexpr int kFp32MinNormalExp = min_normal_exp(spec(Format::FP32));        // -126
inline constexpr int kFp32MaxExp = max_exp(spec(Format::FP32));                     // 127
inline constexpr int kFp32MinSubnormalExp = min_subnormal_exp(spec(Format::FP32));  // -149
inline constexpr int kFp32SignBit = kFp32ExpBits + kFp32ManBits;                    // 31
inline constexpr uint32_t kFp32SignMask = 1u << kFp32SignBit;                       // 0x80000000
inline constexpr uint32_t kFp32AbsMask = kFp32SignMask - 1u;                        // 0x7fffffff
inline constexpr uint32_t kFp32ManMask = (1u << kFp32ManBits) - 1u;                 // 0x007fffff
inline constexpr uint32_t kFp32ExpMask = kFp32AbsMask & ~kFp32ManMask;              // 0x7f800000
inline constexpr uint32_t kFp32InfBits = kFp32ExpMask;                              // +Inf
inline constexpr uint32_t kFp32NegInfBits = kFp32SignMask | kFp32InfBits;           // -Inf
inline constexpr uint32_t kFp32QuietNanBits = kFp32ExpMask | (1u << (kFp32ManBits - 1));  // NaN
inline constexpr uint32_t kFp32MaxFiniteBits = kFp32InfBits - 1u;  // 0x7f7fffff
// |x|'s pattern a is: zero (a == 0), finite (a < kFp32InfBits), Inf (==), NaN (a > kFp32InfBits).
// The same patterns as int32_t, for code that holds |x| patterns (sign clear, so nonnegative) in
// signed integers: signed 32-bit vector compares (SSE/AVX2 have no unsigned ones) and int32
// min/max keys.
inline constexpr int32_t kFp32AbsMaskI32 = static_cast<int32_t>(kFp32AbsMask);
inline constexpr int32_t kFp32ExpMaskI32 = static_cast<int32_t>(kFp32ExpMask);
inline constexpr int32_t kFp32InfBitsI32 = static_cast<int32_t>(kFp32InfBits);

// Biased FP32 exponent field of a pattern, and the pattern of 2^e (kFp32MinNormalExp <= e <=
// kFp32MaxExp).
FPSCOPE_HD constexpr int fp32_biased_exponent(uint32_t bits) {
  return static_cast<int>((bits & kFp32ExpMask) >> kFp32ManBits);
}
FPSCOPE_HD constexpr uint32_t fp32_pow2_bits(int e) {
  return static_cast<uint32_t>(e + kFp32Bias) << kFp32ManBits;
}

// ---- exponent histogram bins (stats.h: bin = biased FP32 exponent * 4 + top 2 mantissa bits) ---
inline constexpr int kHistSubBinBits = 2;
inline constexpr int kHistSubBins = 1 << kHistSubBinBits;             // 4 per octave
inline constexpr int kHistBinShift = kFp32ManBits - kHistSubBinBits;  // bin = |x| bits >> 21
inline constexpr int kHistBinCount = (kFp32MaxBiasedExp + 1) * kHistSubBins;  // 1024
// Bins of the all-ones exponent (Inf/NaN patterns): kHistFirstNonFiniteBin (1020) and above
// never count anything.
inline constexpr int kHistFirstNonFiniteBin = kFp32MaxBiasedExp * kHistSubBins;

// Bin of an FP32 pattern (sign ignored).
FPSCOPE_HD constexpr int hist_bin_of_bits(uint32_t bits) {
  return static_cast<int>((bits & kFp32AbsMask) >> kHistBinShift);
}
// The pattern of the smallest |x| in bin b (0 for bin 0, which also holds the FP32 subnormals).
FPSCOPE_HD constexpr uint32_t hist_bin_low_bits(int b) {
  return static_cast<uint32_t>(b) << kHistBinShift;
}
// floor(log2 |x|) of the elements of bin b (b >= kHistSubBins: normal FP32 |x|); bins
// 0..kHistSubBins-1 (FP32 subnormals) give kFp32MinNormalExp - 1.
FPSCOPE_HD constexpr int hist_bin_exponent(int b) {
  return b / kHistSubBins - kFp32Bias;
}
// Quarter-octave index of bin b inside its octave: the top two mantissa bits.
FPSCOPE_HD constexpr int hist_bin_quarter(int b) {
  return b % kHistSubBins;
}
// First bin of the octave [2^e, 2^(e+1)).
FPSCOPE_HD constexpr int hist_first_bin_of_exponent(int e) {
  return (e + kFp32Bias) * kHistSubBins;
}
// Bin b's lower edge in octaves (log2 units): b / 4 - 127, linear in b (plots).
FPSCOPE_HD constexpr double hist_bin_octave(int b) {
  return static_cast<double>(b) / kHistSubBins - kFp32Bias;
}

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
