#include "fpscope/analysis/weights.h"

#include <algorithm>
#include <map>

#include "fpscope/analysis/common.h"

namespace fpscope::analysis {

namespace {
double ratio(double num, double den) {
  return den > 0.0 ? num / den : 0.0;
}
}  // namespace

std::vector<WeightLoss> analyze_weights(const trace::Trace& trace) {
  std::map<uint32_t, std::vector<const trace::WeightUpdateRecord*>> by;
  for (const auto& r : trace.weight_updates) by[r.tensor].push_back(&r);
  std::vector<WeightLoss> out;
  for (auto& [ti, recs] : by) {
    std::stable_sort(recs.begin(), recs.end(),
                     [](const auto* a, const auto* b) { return a->step < b->step; });
    WeightLoss w;
    w.tensor = ti;
    if (ti < trace.tensors.size()) {
      const auto& info = trace.tensors[ti];
      w.name = info.name.empty() ? info.id : info.name;
    } else {
      w.name = "tensor#" + std::to_string(ti);
    }
    uint64_t st_bf = 0, st_fp = 0;
    double lost_bf = 0, lost_fp = 0, d_bf = 0, d_fp = 0;
    std::map<int16_t, uint64_t> hist;
    for (const auto* r : recs) {
      if (r->master_dtype != Format::FP32 && !w.not_fp32) {
        w.not_fp32 = true;
        w.master_dtype = r->master_dtype;
      }
      ++w.updates;
      w.elements = r->elements;
      w.changed += r->changed;
      st_bf += r->bf16.stagnant;
      st_fp += r->fp16.stagnant;
      lost_bf += r->bf16.lost_abs;
      lost_fp += r->fp16.lost_abs;
      d_bf += r->bf16.delta_abs;
      d_fp += r->fp16.delta_abs;
      WeightLossPoint p;
      p.step = r->step;
      p.changed = r->changed;
      p.bf16_stagnant = fraction(r->bf16.stagnant, r->changed);
      p.fp16_stagnant = fraction(r->fp16.stagnant, r->changed);
      p.bf16_lost_mass = ratio(r->bf16.lost_abs, r->bf16.delta_abs);
      p.fp16_lost_mass = ratio(r->fp16.lost_abs, r->fp16.delta_abs);
      w.series.push_back(p);
      for (const auto& [bin, n] : r->ratio_hist) hist[bin] += n;
    }
    w.bf16_stagnant = fraction(st_bf, w.changed);
    w.fp16_stagnant = fraction(st_fp, w.changed);
    w.bf16_lost_mass = ratio(lost_bf, d_bf);
    w.fp16_lost_mass = ratio(lost_fp, d_fp);
    uint64_t total = 0, below_bf = 0, below_fp = 0;
    for (const auto& [bin, n] : hist) {
      w.ratio_hist.emplace_back(bin, n);
      total += n;
      if (bin + 1 <= kBf16HalfUlpLog2) below_bf += n;
      if (bin + 1 <= kFp16HalfUlpLog2) below_fp += n;
    }
    w.below_bf16_half_ulp = fraction(below_bf, total);
    w.below_fp16_half_ulp = fraction(below_fp, total);
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace fpscope::analysis
