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
}  // namespace

std::vector<float> emulate_rounded_copy(Format f, const float* src, const OperandDesc& o) {
  std::vector<float> out(stored(o), 0.0f);
  for (uint64_t j = 0; j < o.cols; ++j) {
    const float* s = src + j * o.ld;
    float* d = out.data() + j * o.ld;
    for (uint64_t i = 0; i < o.rows; ++i) d[i] = emulate_round(f, s[i]);
  }
  return out;
}

void emulate_round_in_place(Format f, float* p, const OperandDesc& o) {
  for (uint64_t j = 0; j < o.cols; ++j) {
    float* d = p + j * o.ld;
    for (uint64_t i = 0; i < o.rows; ++i) d[i] = emulate_round(f, d[i]);
  }
}

}  // namespace fpscope::probe
