// The value sketch (value_sketch.h). Scalar: it runs only when sketches are asked for
// (FPSCOPE_SKETCH, on under --emulate); one hash per run of 256 positions and one scattered add
// per element, never two to one bucket within a run (docs/benchmarks.md "Value sketches").
#include "fpscope/value_sketch.h"

#include <algorithm>
#include <cstring>

#include "fpscope/numerics.h"

namespace fpscope {
namespace {

constexpr uint32_t kRun = 256;  // positions per run (value_sketch.h)
static_assert(kSketchBuckets == kRun, "a run's positions fill every bucket once");

// The fixed permutation and signs of a run's offsets, from sketch_hash (the same in every
// process): Fisher-Yates over 0..255, and bit 63 of another hash per offset.
struct RunTables {
  uint8_t perm[kRun];
  uint32_t sign[kRun];  // 0 or 0x80000000 (an FP32 sign bit)
  RunTables() {
    for (uint32_t k = 0; k < kRun; ++k) perm[k] = static_cast<uint8_t>(k);
    for (uint32_t k = kRun - 1; k > 0; --k) {
      const uint32_t j = static_cast<uint32_t>(sketch_hash(0x5eed0000u + k) % (k + 1));
      const uint8_t t = perm[k];
      perm[k] = perm[j];
      perm[j] = t;
    }
    for (uint32_t k = 0; k < kRun; ++k)
      sign[k] = static_cast<uint32_t>(sketch_hash(0x5e1f0000u + k) >> 63) << 31;
  }
};
const RunTables& tables() {
  static const RunTables t;
  return t;
}

struct RunKey {
  uint32_t offset;  // c
  uint32_t sign;    // s, as an FP32 sign bit
};
RunKey run_key(uint64_t run) {
  const uint64_t h = sketch_hash(run);
  return {static_cast<uint32_t>(h >> 56), static_cast<uint32_t>((h >> 55) & 1u) << 31};
}

// Adds positions [p, p + m) of one run (m <= 256 - p % 256), their values given by at(i), i < m.
template <typename Bits>
void add_piece(uint64_t p, uint64_t m, Bits&& bits_of, const RunTables& t, double* v) {
  const RunKey key = run_key(p / kRun);
  const uint32_t k0 = static_cast<uint32_t>(p % kRun);
  for (uint32_t i = 0; i < m; ++i) {
    const uint32_t k = k0 + i;
    const uint32_t u = bits_of(i) ^ t.sign[k] ^ key.sign;  // FP32 pattern, sign applied
    if ((u & 0x7f800000u) == 0x7f800000u) continue;        // Inf / NaN: left out
    float f;
    std::memcpy(&f, &u, sizeof f);
    v[t.perm[k] ^ key.offset] += static_cast<double>(f);
  }
}

// Every column of the view, cut at run boundaries of the logical positions.
template <typename Bits>
void sketch_view(uint64_t rows, uint64_t cols, uint64_t ld, Bits&& bits_at, double* v) {
  const RunTables& t = tables();
  for (uint64_t j = 0; j < cols; ++j) {
    const uint64_t base = j * rows, col = j * ld;
    for (uint64_t i = 0; i < rows;) {
      const uint64_t p = base + i;
      const uint64_t m = std::min<uint64_t>(rows - i, kRun - p % kRun);
      const uint64_t at = col + i;
      add_piece(
          p, m, [&](uint32_t q) { return bits_at(at + q); }, t, v);
      i += m;
    }
  }
}

uint32_t f32_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

}  // namespace

SketchSlot sketch_slot(uint64_t p) {
  const RunTables& t = tables();
  const RunKey key = run_key(p / kRun);
  const uint32_t k = static_cast<uint32_t>(p % kRun);
  return {static_cast<uint32_t>(t.perm[k] ^ key.offset), ((t.sign[k] ^ key.sign) >> 31) != 0};
}

void ValueSketch::add(const ValueSketch& o, uint64_t part) {
  if (!o.present) return;
  present = true;
  if (part == 0) {
    for (uint32_t j = 0; j < kSketchBuckets; ++j) v[j] += o.v[j];
    return;
  }
  for (uint32_t j = 0; j < kSketchBuckets; ++j) {
    // A hash of (part, bucket) apart from the runs' (those hash small numbers: p / 256).
    const uint64_t h = sketch_hash(~(part * kSketchBuckets + j));
    const uint32_t to = static_cast<uint32_t>((j + part) % kSketchBuckets);
    v[to] += (h >> 63) != 0 ? -o.v[j] : o.v[j];
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
      const auto* p = static_cast<const uint32_t*>(data);  // the patterns, as the pass wants
      sketch_view(
          rows, cols, ld, [p](uint64_t k) { return p[k]; }, out->v);
      return;
    }
    case Format::BF16:
    case Format::FP16: {
      const auto* p = static_cast<const uint16_t*>(data);
      sketch_view(
          rows, cols, ld, [p, dtype](uint64_t k) { return f32_bits(decode_storage(dtype, p[k])); },
          out->v);
      return;
    }
    case Format::E4M3:
    case Format::E5M2: {
      const auto* p = static_cast<const uint8_t*>(data);
      sketch_view(
          rows, cols, ld, [p, dtype](uint64_t k) { return f32_bits(decode_storage(dtype, p[k])); },
          out->v);
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
