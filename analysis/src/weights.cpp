#include "fpscope/analysis/weights.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "fpscope/analysis/common.h"

namespace fpscope::analysis {

namespace {
double ratio(double num, double den) {
  return den > 0.0 ? num / den : 0.0;
}
}  // namespace

std::pair<double, double> stagnant_interval(double p, uint64_t n, uint64_t watched,
                                            uint64_t elements) {
  if (watched >= elements || n == 0) return {p, p};
  constexpr double z = 1.959963984540054;  // 95%
  const double dn = static_cast<double>(n);
  const double z2n = z * z / dn;
  const double center = (p + z2n / 2.0) / (1.0 + z2n);
  const double fpc = std::sqrt(1.0 - static_cast<double>(watched) / static_cast<double>(elements));
  const double half =
      fpc * z / (1.0 + z2n) * std::sqrt(p * (1.0 - p) / dn + z * z / (4.0 * dn * dn));
  return {std::max(0.0, std::min(p, center - half)), std::min(1.0, std::max(p, center + half))};
}

std::string stagnant_text(double p, double lo, double hi, bool sampled) {
  if (!sampled) return fmt_pct(p);
  return fmt_pct(p) + " (" + fmt_pct(lo) + "-" + fmt_pct(hi) + ")";
}

std::vector<LeftOutWeight> left_out_weights(const trace::Trace& trace) {
  static const std::string kPrefix = "watch: left out ";
  static const std::string kNot = "; not watched";
  std::vector<LeftOutWeight> out;
  std::set<std::string> seen;
  for (const auto& e : trace.events) {
    LeftOutWeight w;
    w.step = e.step;
    if (e.text.rfind(kPrefix, 0) == 0) {  // "watch: left out <name>: <reason>"
      const std::string rest = e.text.substr(kPrefix.size());
      const size_t colon = rest.rfind(": ");
      if (colon == std::string::npos) continue;
      w.name = rest.substr(0, colon);
      w.reason = rest.substr(colon + 2);
    } else if (const size_t at = e.text.find("watch('");
               (at == 0 || e.text.rfind("cuda: ", 0) == 0) && at != std::string::npos &&
               e.text.size() > kNot.size() &&
               e.text.compare(e.text.size() - kNot.size(), kNot.size(), kNot) == 0) {
      // the probe's "[cuda: ]watch('<name>'): <reason>; not watched"
      const size_t end = e.text.find("'): ", at);
      if (end == std::string::npos || end + 4 > e.text.size() - kNot.size()) continue;
      w.name = e.text.substr(at + 7, end - at - 7);
      w.reason = e.text.substr(end + 4, e.text.size() - kNot.size() - (end + 4));
    } else {
      continue;
    }
    if (seen.insert(w.name).second) out.push_back(std::move(w));
  }
  return out;
}

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
      w.watched = r->watched != 0 ? r->watched : r->elements;
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
    w.sampled = w.watched < w.elements;
    const uint64_t draws = std::min(w.watched, w.changed);
    std::tie(w.bf16_stagnant_lo, w.bf16_stagnant_hi) =
        stagnant_interval(w.bf16_stagnant, draws, w.watched, w.elements);
    std::tie(w.fp16_stagnant_lo, w.fp16_stagnant_hi) =
        stagnant_interval(w.fp16_stagnant, draws, w.watched, w.elements);
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
