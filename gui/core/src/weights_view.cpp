// The master-weight panel's model (weights_view.h).
#include "fpscope/gui/weights_view.h"

#include <algorithm>
#include <numeric>

namespace fpscope::gui {

std::vector<size_t> weight_order(const std::vector<analysis::WeightLoss>& ws, Format format) {
  const bool bf = format != Format::FP16;
  std::vector<size_t> idx(ws.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    const auto& x = ws[a];
    const auto& y = ws[b];
    const double lx = bf ? x.bf16_lost_mass : x.fp16_lost_mass;
    const double ly = bf ? y.bf16_lost_mass : y.fp16_lost_mass;
    if (lx != ly) return lx > ly;
    const double sx = bf ? x.bf16_stagnant : x.fp16_stagnant;
    const double sy = bf ? y.bf16_stagnant : y.fp16_stagnant;
    if (sx != sy) return sx > sy;
    return x.name < y.name;
  });
  return idx;
}

WeightCurve weight_curve(const analysis::WeightLoss& w, Format format) {
  const bool bf = format != Format::FP16;
  WeightCurve c;
  for (const auto& p : w.series) {
    const double st = bf ? p.bf16_stagnant : p.fp16_stagnant;
    c.step.push_back(static_cast<double>(p.step));
    c.stagnant.push_back(st);
    c.lost_mass.push_back(bf ? p.bf16_lost_mass : p.fp16_lost_mass);
    const auto [lo, hi] =
        analysis::stagnant_interval(st, std::min(w.watched, p.changed), w.watched, w.elements);
    c.lo.push_back(lo);
    c.hi.push_back(hi);
  }
  return c;
}

}  // namespace fpscope::gui
