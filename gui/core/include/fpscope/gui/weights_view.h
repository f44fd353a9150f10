// The master-weight panel's model (display-free): the watched parameters ranked by lost update
// mass, and each update's stagnant fraction with its sampling error. The statistics themselves
// come from the analysis library (fpscope/analysis/weights.h: analyze_weights, stagnant_interval,
// Wilson's 95% interval); this only orders and arranges them.
//
// Contract:
//  - weight_order(): indices into `ws`, by lost mass in `format` (BF16: the bf16 columns, FP16:
//    the fp16 ones) descending, then the stagnant fraction descending, then the name: the
//    parameter that loses most of its updates first.
//  - weight_curve(): one point per update of `w` (its series, ascending step): the stagnant
//    fraction and lost mass in `format`, and the stagnant fraction's 95% interval, that of
//    analysis::stagnant_interval with n = min(watched, changed of that update) draws, the sample
//    `w.watched` of `w.elements` (lo = hi = the value for a whole watch).
#pragma once

#include <cstdint>
#include <vector>

#include "fpscope/analysis/weights.h"

namespace fpscope::gui {

std::vector<size_t> weight_order(const std::vector<analysis::WeightLoss>& ws,
                                 Format format = Format::BF16);

struct WeightCurve {
  std::vector<double> step, stagnant, lost_mass, lo, hi;
};
WeightCurve weight_curve(const analysis::WeightLoss& w, Format format = Format::BF16);

}  // namespace fpscope::gui
