// Master-weight update rounding loss per watched tensor (docs/metrics.md "Master-weight loss").
//
// Contract: from the trace's WeightUpdateRecords of one tensor, sorted by step.
//  - stagnant_F = sum stagnant_F / sum changed (fraction of changed elements whose update a
//    BF16/FP16 master copy would lose entirely); lost_mass_F = sum lost_abs / sum delta_abs.
//  - per-update series of the same ratios; ratio_hist merges floor(log2(|delta|/|w|)) counts.
//  - below_bf16_half_ulp: fraction of ratio_hist with floor(log2 r) <= -10, i.e. r < 2^-9: such
//    an update is below half a BF16 ulp of its weight and always rounds away in BF16 (7 stored
//    mantissa bits: half an ulp of w is at least |w| * 2^-9).
//  - below_fp16_half_ulp: the same for FP16 (10 mantissa bits): floor(log2 r) <= -13, r < 2^-12.
//  - not_fp32: some record's master_dtype is not FP32 (the master weights themselves are
//    low precision: the "precision allocation trap").
//  - sampled: the records follow `watched` < `elements` positions, a uniform sample (format 1.2,
//    the probe's watch budget): the fractions above are estimates. stagnant_lo/hi is their 95%
//    interval: Wilson's score interval for a binomial proportion with n = min(watched, changed)
//    draws (conservative: all updates of one position count as one draw) and the finite-population
//    correction sqrt(1 - watched/elements). Lost mass is a ratio estimate given without an
//    interval (per-element update sizes are not recorded). A whole watch has lo = hi = the value.
//  - left_out_weights(): the parameters the probe or the PyTorch integration did not watch and why,
//    from the trace's events "watch: left out <name>: <reason>" and the probe's "watch('<name>'):
//    ...; not watched" warnings.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/trace_io.h"

namespace fpscope::analysis {

struct WeightLossPoint {
  uint64_t step = 0;
  uint64_t changed = 0;
  double bf16_stagnant = 0.0, bf16_lost_mass = 0.0;
  double fp16_stagnant = 0.0, fp16_lost_mass = 0.0;
};

struct WeightLoss {
  uint32_t tensor = 0;
  std::string name;                    // TensorInfo name, or its id when unnamed
  Format master_dtype = Format::FP32;  // the first non-FP32 dtype seen, else FP32
  bool not_fp32 = false;
  uint64_t updates = 0;
  uint64_t elements = 0;  // of the last record
  uint64_t watched = 0;   // positions followed, of the last record (= elements: the whole tensor)
  bool sampled = false;   // watched < elements: the fractions are sample estimates
  uint64_t changed = 0;   // sum over updates
  double bf16_stagnant = 0.0, bf16_lost_mass = 0.0;
  double fp16_stagnant = 0.0, fp16_lost_mass = 0.0;
  double bf16_stagnant_lo = 0.0, bf16_stagnant_hi = 0.0;  // 95% interval (sampled), else = value
  double fp16_stagnant_lo = 0.0, fp16_stagnant_hi = 0.0;
  std::vector<WeightLossPoint> series;
  std::vector<std::pair<int16_t, uint64_t>> ratio_hist;  // sorted by bin
  double below_bf16_half_ulp = 0.0;
  double below_fp16_half_ulp = 0.0;
};

// Bin boundaries (log2 of |delta|/|w|) below which an update always rounds away: -9 for BF16,
// -12 for FP16 (bins b with b + 1 <= boundary are entirely below it). Half an ulp of a normal w
// with m mantissa bits is 2^(floor(log2|w|) - m - 1) > |w| * 2^-(m + 2).
inline constexpr int kBf16HalfUlpLog2 = -(spec(Format::BF16).man_bits + 2);  // -9
inline constexpr int kFp16HalfUlpLog2 = -(spec(Format::FP16).man_bits + 2);  // -12

// One entry per tensor that has weight-update records, in tensor index order.
std::vector<WeightLoss> analyze_weights(const trace::Trace& trace);

// The 95% interval of a stagnant fraction p estimated from `n` draws of a sample of `watched` out
// of `elements` positions (see the contract above); {p, p} when watched >= elements.
std::pair<double, double> stagnant_interval(double p, uint64_t n, uint64_t watched,
                                            uint64_t elements);

// A stagnant fraction as the tables print it: "12.3%", or "12.3% (10.1-14.6%)" with its 95%
// interval when sampled.
std::string stagnant_text(double p, double lo, double hi, bool sampled);

struct LeftOutWeight {
  std::string name;
  std::string reason;
  uint64_t step = 0;
};
// In trace order, one per name (the first reason).
std::vector<LeftOutWeight> left_out_weights(const trace::Trace& trace);

}  // namespace fpscope::analysis
