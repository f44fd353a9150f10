// FP8 what-if: replay a run's per-tensor amax history through Transformer Engine's delayed
// scaling and count what E4M3/E5M2 would do (docs/metrics.md "FP8 what-if").
//
// Contract, per tensor and FP8 format, step by step in step order (a tensor's observations of one
// step are merged first):
//  - the scale for step t comes from the amax history of steps before t (Fp8Scaler, delayed:
//    s = (fp8_max / amax_ref) / 2^margin, amax_ref = max or most recent of the last H amaxes);
//  - steps observed before the history holds any finite nonzero amax (the tensor's first
//    observed step, and any all-zero steps right after it) are NOT replayed: TE would cast them
//    at its initial scale 1, which says nothing about the recipe. Their amax only seeds the
//    history; they are counted in seed_steps and are not in `steps` or any total;
//  - counts at that scale are EXACT when the trace holds this format's counts taken at exactly
//    that scale (FormatCounts::scale == s), else computed from the exponent histogram, which gives
//    a lower and an upper bound (equal when the scale moves no bin across a format boundary); the
//    overflow bounds are 0 when the step's amax itself does not overflow at s (no element is
//    larger than the amax, whatever its bin's upper edge);
//  - a step "saturates" when overflow_lo > 0 (certain); overflow_hi > 0 alone means "may
//    saturate"; the same for underflow.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/scaling.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace fpscope::analysis {

using AmaxAlgo = fpscope::AmaxAlgo;      // kernels' scaling.h: Max, MostRecent
const char* amax_algo_name(AmaxAlgo a);  // "max", "most_recent"

enum class CountSource : uint8_t { Exact = 0, Histogram = 1 };

struct WhatIfOptions {
  int history_len = 1024;  // TE DelayedScaling default amax_history_len
  int margin = 0;
  AmaxAlgo algo = AmaxAlgo::Max;
  std::vector<Format> formats{Format::E4M3, Format::E5M2};
  bool include_fp8_tensors = false;  // also replay tensors whose dtype is already FP8
};

struct WhatIfStep {
  uint64_t step = 0;
  float amax = 0.0f;      // this step's amax
  float scale = 1.0f;     // the delayed scale applied at this step
  uint64_t eligible = 0;  // nonzero finite elements
  uint64_t overflow_lo = 0, overflow_hi = 0;
  uint64_t underflow_lo = 0, underflow_hi = 0;
  CountSource source = CountSource::Histogram;
};

struct WhatIfTensor {
  uint32_t tensor = 0;
  std::string id;
  Format format = Format::E4M3;
  std::vector<WhatIfStep> steps;
  uint64_t saturate_steps = 0;        // steps with overflow_lo > 0
  uint64_t underflow_steps = 0;       // steps with underflow_lo > 0
  int64_t first_saturate_step = -1;   // by overflow_lo; -1 never
  int64_t first_underflow_step = -1;  // by underflow_lo
  uint64_t eligible = 0;
  uint64_t overflow_lo = 0, overflow_hi = 0;  // totals
  uint64_t underflow_lo = 0, underflow_hi = 0;
  double overflow_frac = 0.0;   // overflow_lo / eligible
  double underflow_frac = 0.0;  // underflow_lo / eligible
  uint64_t exact_steps = 0;
  uint64_t histogram_steps = 0;
  uint64_t seed_steps = 0;       // steps not replayed: no amax in the history yet (see above)
  int64_t first_seed_step = -1;  // the tensor's first observed step (-1: none)
  // The replayed step with the largest certain overflow fraction (-1 when none saturates).
  int64_t worst_step = -1;
  double worst_overflow_frac = 0.0;  // overflow_lo / eligible of that step
  float worst_scale = 0.0f;          // the delayed scale applied there
  float worst_amax = 0.0f;           // that step's amax
};

// One entry per (tensor with observations, format), tensors in index order, formats in
// opt.formats order. Tensors whose dtype is FP8 are skipped unless include_fp8_tensors.
// `progress`, when set, is called now and then with the fraction of steps replayed.
std::vector<WhatIfTensor> fp8_whatif(const trace::TraceModel& model, const WhatIfOptions& opt = {},
                                     const std::function<void(double)>& progress = {});

}  // namespace fpscope::analysis
