#include "emulate.h"

#include <cstring>

#include "fpscope/numerics.h"

namespace fpscope::probe {

float emulate_round(Format f, float x) {
  if (f == Format::FP32 || x != x) return x;  // NaN keeps its payload
  return cast_scaled(f, x).value;
}

namespace {
uint64_t stored(const OperandDesc& o) {
  return (o.rows == 0 || o.cols == 0) ? 0 : (o.cols - 1) * o.ld + o.rows;
}

// BF16 round to nearest even on the bit pattern (vectorizes): add 0x7fff plus the lowest kept
// bit, clear the low half. Equal to cast_scaled(BF16, x) for every non-NaN x (an overflow carries
// into the exponent and gives Inf, as the cast does); NaN is kept as is. Tested against it.
inline float round_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  const uint32_t out = nan ? u : r;
  float y;
  std::memcpy(&y, &out, 4);
  return y;
}

inline float round_fp16(float x) {
  return x != x ? x : cast_scaled_t<Format::FP16>(x).value;
}

// One column of `rows` elements, rounded to F (compile-time format: the loop vectorizes).
template <Format F>
inline float round_to(float x) {
  return F == Format::BF16 ? round_bf16(x) : round_fp16(x);
}
template <Format F>
void round_column(const float* __restrict s, float* __restrict d, uint64_t rows) {
  for (uint64_t i = 0; i < rows; ++i) d[i] = round_to<F>(s[i]);
}
template <Format F>
void round_column(float* d, uint64_t rows) {  // in place (no restrict: source and destination)
  for (uint64_t i = 0; i < rows; ++i) d[i] = round_to<F>(d[i]);
}

void round_view(Format f, const float* src, float* dst, const OperandDesc& o) {
  for (uint64_t j = 0; j < o.cols; ++j) {
    const float* s = src + j * o.ld;
    float* d = dst + j * o.ld;
    switch (f) {
      case Format::BF16:
        if (s == d)
          round_column<Format::BF16>(d, o.rows);
        else
          round_column<Format::BF16>(s, d, o.rows);
        break;
      case Format::FP16:
        if (s == d)
          round_column<Format::FP16>(d, o.rows);
        else
          round_column<Format::FP16>(s, d, o.rows);
        break;
      default:
        for (uint64_t i = 0; i < o.rows; ++i) d[i] = emulate_round(f, s[i]);
    }
  }
}
}  // namespace

float emulate_round_fast(Format f, float x) {
  return f == Format::BF16   ? round_bf16(x)
         : f == Format::FP16 ? round_fp16(x)
                             : emulate_round(f, x);
}

std::unique_ptr<float[]> emulate_rounded_copy(Format f, const float* src, const OperandDesc& o) {
  std::unique_ptr<float[]> out(new float[stored(o) > 0 ? stored(o) : 1]);
  round_view(f, src, out.get(), o);
  return out;
}

void emulate_round_in_place(Format f, float* p, const OperandDesc& o) {
  round_view(f, p, p, o);
}

}  // namespace fpscope::probe
