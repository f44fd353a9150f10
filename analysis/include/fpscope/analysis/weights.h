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
  uint64_t changed = 0;   // sum over updates
  double bf16_stagnant = 0.0, bf16_lost_mass = 0.0;
  double fp16_stagnant = 0.0, fp16_lost_mass = 0.0;
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

}  // namespace fpscope::analysis
