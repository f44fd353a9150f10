#include "fpscope/gui/layout.h"

#include <algorithm>
#include <numeric>

namespace fpscope::gui {

std::vector<float> spread_labels(std::span<const float> want, float lo, float hi, float gap) {
  const size_t n = want.size();
  std::vector<float> out(n);
  if (n == 0) return out;
  if (hi < lo) hi = lo;
  if (n > 1) gap = std::min(gap, (hi - lo) / static_cast<float>(n - 1));
  gap = std::max(gap, 0.0f);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return want[a] < want[b]; });
  // Clusters of consecutive (sorted) labels stacked `gap` apart; a cluster's first position is
  // the mean of (want_k - k * gap) over its members, clamped so that the cluster fits in range.
  struct Cluster {
    size_t first = 0, count = 0;
    double sum = 0.0;  // sum over members of (clamped want - offset in cluster * gap)
    float top = 0.0f;
  };
  auto place = [&](Cluster& c) {
    const float span = gap * static_cast<float>(c.count - 1);
    c.top = std::clamp(static_cast<float>(c.sum / static_cast<double>(c.count)), lo, hi - span);
  };
  std::vector<Cluster> cs;
  for (size_t i = 0; i < n; ++i) {
    Cluster c;
    c.first = i;
    c.count = 1;
    c.sum = std::clamp(want[order[i]], lo, hi);
    place(c);
    cs.push_back(c);
    // Merge while the new cluster overlaps the previous one.
    while (cs.size() > 1) {
      Cluster& a = cs[cs.size() - 2];
      const Cluster& b = cs.back();
      if (a.top + gap * static_cast<float>(a.count) <= b.top) break;
      a.sum += b.sum - static_cast<double>(gap) * static_cast<double>(a.count) *
                           static_cast<double>(b.count);
      a.count += b.count;
      cs.pop_back();
      place(a);
    }
  }
  for (const Cluster& c : cs)
    for (size_t k = 0; k < c.count; ++k)
      out[order[c.first + k]] = c.top + gap * static_cast<float>(k);
  return out;
}

}  // namespace fpscope::gui
