// The value sketch (value_sketch.h). Scalar on purpose: it runs only when sketches are asked for
// (FPSCOPE_SKETCH, on under --emulate), and its cost is one hash and one scattered add per element
// (docs/benchmarks.md "Value sketches").
#include "fpscope/value_sketch.h"

#include <cmath>
#include <cstring>

#include "fpscope/numerics.h"

namespace fpscope {
namespace {

template <typename Decode>
void sketch_view(uint64_t rows, uint64_t cols, uint64_t ld, Decode&& at, double* v) {
  for (uint64_t j = 0; j < cols; ++j) {
    const uint64_t base = j * rows;
    for (uint64_t i = 0; i < rows; ++i) {
      const float x = at(i + j * ld);
      if (!std::isfinite(x)) continue;
      const uint64_t h = sketch_hash(base + i);
      const double d = static_cast<double>(x);
      v[sketch_bucket(h)] += sketch_negative(h) ? -d : d;
    }
  }
}

}  // namespace

void ValueSketch::add(const ValueSketch& o, uint64_t part) {
  if (!o.present) return;
  present = true;
  if (part == 0) {
    for (uint32_t j = 0; j < kSketchBuckets; ++j) v[j] += o.v[j];
    return;
  }
  for (uint32_t j = 0; j < kSketchBuckets; ++j) {
    // A hash of (part, bucket) distinct from every position's: positions hash p, this ~p-space.
    const uint64_t h = sketch_hash(~(part * kSketchBuckets + j));
    const uint32_t to = static_cast<uint32_t>((j + part) % kSketchBuckets);
    v[to] += sketch_negative(h) ? -o.v[j] : o.v[j];
  }
}

void compute_sketch(const void* data, Format dtype, uint64_t rows, uint64_t cols, uint64_t ld,
                    ValueSketch* out) {
  std::memset(out->v, 0, sizeof out->v);
  out->present = true;
  if (rows == 0 || cols == 0 || data == nullptr) return;
  if (cols == 1) ld = rows;
  switch (dtype) {
    case Format::FP32: {
      const auto* p = static_cast<const float*>(data);
      sketch_view(
          rows, cols, ld, [p](uint64_t k) { return p[k]; }, out->v);
      return;
    }
    case Format::BF16:
    case Format::FP16: {
      const auto* p = static_cast<const uint16_t*>(data);
      sketch_view(
          rows, cols, ld, [p, dtype](uint64_t k) { return decode_storage(dtype, p[k]); }, out->v);
      return;
    }
    case Format::E4M3:
    case Format::E5M2: {
      const auto* p = static_cast<const uint8_t*>(data);
      sketch_view(
          rows, cols, ld, [p, dtype](uint64_t k) { return decode_storage(dtype, p[k]); }, out->v);
      return;
    }
  }
}

double sketch_distance2(const float* a, const float* b, uint32_t n) {
  double s = 0.0;
  for (uint32_t j = 0; j < n; ++j) {
    const double d = static_cast<double>(a[j]) - static_cast<double>(b[j]);
    s += d * d;
  }
  return s;
}

}  // namespace fpscope
