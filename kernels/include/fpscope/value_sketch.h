// fpscope value sketch: a compact, deterministic summary of a tensor's values from which the
// distance between two runs' versions of the same tensor can be estimated without the tensors
// (issue 18 item 2; docs/metrics.md "Cross-run difference").
//
// It is a count sketch: element x_p at logical position p adds sign(p) * x_p to bucket(p). It is
// linear, so the sketch of a difference is the difference of the sketches, and for two versions
// x, y of one tensor
//     sum_j (sketch(x)_j - sketch(y)_j)^2
// is an unbiased estimate of ||x - y||^2, with a relative standard deviation of about
// sqrt(2 / kSketchBuckets) = 8.8 % (of the norm: about half that, 4.4 %) when no few buckets hold
// most of the difference: a difference concentrated on a few rows (an embedding's gradient) is
// estimated as well as one spread over the whole tensor, which a fixed sample of positions would
// miss (tests/kernels/test_value_sketch.cpp measures both).
//
// Where p goes (sketch_slot): positions come in runs of 256 (r = p / 256, k = p % 256). A hash of
// r gives the run an offset c (8 bits) and a sign s; bucket(p) = perm[k] XOR c and sign(p) =
// sign_k XOR s, with perm a fixed permutation of 0..255 and sign_k fixed random signs. Two
// positions of one run never share a bucket; positions of different runs share one with
// probability 1/256, and then carry independent run signs, so their cross term averages out. One
// hash per 256 elements and no two updates of a run to the same bucket keep the pass at ~1 ns
// per element (a hash per element: ~7 ns; docs/benchmarks.md "Value sketches").
//
// Contract:
//  - Positions are logical: element (i, j) of the column-major view (i < rows, j < cols) is
//    p = i + j * rows; ld and padding do not matter, so equal values in two layouts with the same
//    rows/cols sketch equally.
//  - Non-finite elements are left out (they are counted by the statistics; NaN would poison every
//    later comparison).
//  - Deterministic: the same values give the same sketch bit for bit (sums in double, in position
//    order), in any process and on any machine.
//  - One op made of several calls (a batched GEMM split into slices, batch_run.h) merges its
//    parts with add(o, part): part 0 is a plain sum; part b > 0 rotates the buckets by b and flips
//    their signs by a hash of (b, bucket), so equal positions of different parts do not add up
//    coherently and the estimate stays unbiased.
#pragma once

#include <cstdint>

#include "fpscope/formats.h"

namespace fpscope {

inline constexpr uint32_t kSketchBuckets = 256;

// splitmix64's finalizer: a bijection of 64-bit integers whose bits are close to independent.
FPSCOPE_HD inline uint64_t sketch_hash(uint64_t p) {
  p += 0x9E3779B97F4A7C15ull;
  p = (p ^ (p >> 30)) * 0xBF58476D1CE4E5B9ull;
  p = (p ^ (p >> 27)) * 0x94D049BB133111EBull;
  return p ^ (p >> 31);
}

// Where position p goes (the definition above; the pass is tested against it).
struct SketchSlot {
  uint32_t bucket = 0;
  bool negative = false;
};
SketchSlot sketch_slot(uint64_t p);

struct ValueSketch {
  bool present = false;  // false: not measured (the bucket values are meaningless)
  double v[kSketchBuckets] = {};

  // Folds the sketch of another part of the same op into this one (see the contract).
  void add(const ValueSketch& o, uint64_t part);
};

// The sketch of the column-major view (same view contract as host_stats.h compute_stats: element
// (i, j) at index i + j * ld; dtype FP32, BF16, FP16, E4M3 or E5M2). *out is overwritten and
// marked present.
void compute_sketch(const void* data, Format dtype, uint64_t rows, uint64_t cols, uint64_t ld,
                    ValueSketch* out);

// sum_j (a_j - b_j)^2 over n buckets: the estimate of ||x - y||^2 (in double, whatever the
// storage of the buckets).
double sketch_distance2(const float* a, const float* b, uint32_t n);

}  // namespace fpscope
