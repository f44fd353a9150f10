#include "fpscope/gui/run_compare.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "fpscope/gui/view_model.h"

namespace fpscope::gui {

const analysis::CrossRunDrift* RunDiff::find(uint32_t t) const {
  if (t >= of_tensor.size() || of_tensor[t] < 0) return nullptr;
  return &drift[static_cast<size_t>(of_tensor[t])];
}

RunDiff diff_runs(const trace::TraceModel& ref, const trace::TraceModel& other) {
  RunDiff d;
  d.drift = analysis::compare_runs(ref, other);
  d.of_tensor.assign(ref.num_tensors(), -1);
  for (size_t i = 0; i < d.drift.size(); ++i) {
    const uint32_t t = d.drift[i].match.base;
    if (t < d.of_tensor.size()) d.of_tensor[t] = static_cast<int64_t>(i);
    d.measurable = d.measurable || d.drift[i].has_rel_diff();
  }
  return d;
}

std::shared_ptr<const RunDiff> DiffCache::get(const std::shared_ptr<const Run>& ref,
                                              const std::shared_ptr<const Run>& other) {
  const auto key = std::make_pair(ref.get(), other.get());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = pairs_.find(key); it != pairs_.end()) return it->second.diff;
  }
  // Computed outside the lock (a second job asking for the same pair at the same time computes
  // it twice; the first stored wins).
  auto diff = std::make_shared<const RunDiff>(diff_runs(*ref->model, *other->model));
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = pairs_.try_emplace(key, Entry{ref, other, diff});
  computed_ += inserted;
  return it->second.diff;
}

size_t DiffCache::computed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return computed_;
}

Comparison combine_runs(size_t ref_tensors, std::vector<Comparison::Other> others) {
  Comparison c;
  c.others = std::move(others);
  c.combined.resize(ref_tensors);
  for (size_t t = 0; t < ref_tensors; ++t) {
    analysis::CrossRunDrift& m = c.combined[t];
    m.match.base = static_cast<uint32_t>(t);
    for (const auto& o : c.others) {
      const analysis::CrossRunDrift* d = o.diff ? o.diff->find(static_cast<uint32_t>(t)) : nullptr;
      if (!d || !d->has_rel_diff()) continue;
      if (m.id.empty()) m.id = d->id;
      const auto earliest = [](int64_t a, int64_t b) {
        return a < 0 ? b : (b < 0 ? a : std::min(a, b));
      };
      m.first_step_rel_1pct = earliest(m.first_step_rel_1pct, d->first_step_rel_1pct);
      m.first_step_rel_10pct = earliest(m.first_step_rel_10pct, d->first_step_rel_10pct);
      m.max_rel_diff =
          m.has_rel_diff() ? std::max(m.max_rel_diff, d->max_rel_diff) : d->max_rel_diff;
    }
  }
  c.rank.assign(ref_tensors, -1);
  for (size_t i : analysis::rank_by_divergence(c.combined)) {
    c.rank[i] = static_cast<int64_t>(c.order.size());
    c.order.push_back(static_cast<uint32_t>(i));
  }
  return c;
}

LossCurve loss_curve(const trace::Trace& t) {
  std::map<uint64_t, std::pair<double, uint64_t>> acc;
  for (const auto& l : t.losses) {
    auto& [sum, n] = acc[l.step];
    sum += l.value;
    ++n;
  }
  LossCurve c;
  for (const auto& [step, a] : acc) {
    c.steps.push_back(static_cast<double>(step));
    c.loss.push_back(a.first / static_cast<double>(a.second));
  }
  return c;
}

Rgb run_color(size_t k) {
  static constexpr Rgb kRuns[] = {
      {240, 228, 66},   // yellow
      {213, 94, 0},     // vermillion
      {0, 114, 178},    // blue
      {120, 220, 110},  // green
      {255, 255, 255},  // white
      {170, 120, 255},  // violet
  };
  return kRuns[k % (sizeof kRuns / sizeof kRuns[0])];
}

}  // namespace fpscope::gui
