// Rank sets in the viewer: the rank-set rule and the ranks x steps heat (rank_view.h).
#include "fpscope/gui/rank_view.h"

#include <algorithm>
#include <limits>
#include <set>

namespace fpscope::gui {

bool is_rank_set(const std::vector<analysis::RankIdentity>& ids, RankSetMode mode) {
  if (mode == RankSetMode::Runs) return false;
  if (mode == RankSetMode::Ranks) return !ids.empty();
  if (ids.size() < 2) return false;
  std::set<int64_t> seen;
  for (const auto& id : ids) {
    if (id.source != analysis::RankSource::Metadata || id.world_size < 0) return false;
    if (id.world_size != ids.front().world_size) return false;
    if (!seen.insert(id.rank).second) return false;
  }
  return true;
}

const char* rank_metric_name(RankMetric m) {
  switch (m) {
    case RankMetric::Amax:
      return "amax";
    case RankMetric::Overflow:
      return "overflow fraction";
    case RankMetric::NonFinite:
      return "NaN/Inf fraction";
  }
  return "?";
}

int64_t RankHeat::row_of(int64_t rank) const {
  const auto it = std::find(ranks.begin(), ranks.end(), rank);
  return it == ranks.end() ? -1 : it - ranks.begin();
}

int64_t RankHeat::col_of(uint64_t step) const {
  const auto it = std::lower_bound(steps.begin(), steps.end(), step);
  return it == steps.end() || *it != step ? -1 : it - steps.begin();
}

namespace {

const analysis::RankTensor* find_tensor(const analysis::RankSummary& r, const std::string& id) {
  const auto it = std::lower_bound(
      r.tensors.begin(), r.tensors.end(), id,
      [](const analysis::RankTensor& t, const std::string& key) { return t.id < key; });
  return it != r.tensors.end() && it->id == id ? &*it : nullptr;
}

}  // namespace

RankHeat build_rank_heat(const analysis::RankSet& set, const std::string& tensor_id,
                         RankMetric metric, Format format) {
  RankHeat h;
  h.tensor_id = tensor_id;
  h.metric = metric;
  h.format = format;
  const int k = std::max(0, target_index(format));
  std::vector<const analysis::RankTensor*> ts;
  std::set<uint64_t> steps;
  for (const auto& r : set.ranks) {
    h.ranks.push_back(r.identity.rank);
    ts.push_back(find_tensor(r, tensor_id));
    if (ts.back())
      for (const auto& c : ts.back()->cells) steps.insert(c.step);
  }
  h.steps.assign(steps.begin(), steps.end());
  const size_t nc = h.steps.size();
  h.value.assign(h.ranks.size() * nc, std::numeric_limits<double>::quiet_NaN());
  h.state.assign(h.ranks.size() * nc, CellState::Missing);
  bool any = false;
  for (size_t r = 0; r < ts.size(); ++r) {
    if (!ts[r]) continue;
    for (const auto& c : ts[r]->cells) {
      const auto col = static_cast<size_t>(h.col_of(c.step));
      const size_t i = r * nc + col;
      const double n = c.count ? static_cast<double>(c.count) : 1.0;
      double v = 0.0;
      switch (metric) {
        case RankMetric::Amax:
          v = c.amax > 0.0f ? std::log2(static_cast<double>(c.amax))
                            : -std::numeric_limits<double>::infinity();
          break;
        case RankMetric::Overflow:
          v = c.overflow[k];
          break;
        case RankMetric::NonFinite:
          v = static_cast<double>(c.nonfinite) / n;
          break;
      }
      h.value[i] = v;
      h.state[i] = c.nonfinite > 0        ? CellState::NonFinite
                   : c.overflow[k] > 0.0f ? CellState::Overflow
                                          : CellState::Ok;
      if (std::isfinite(v)) {
        h.lo = any ? std::min(h.lo, v) : v;
        h.hi = any ? std::max(h.hi, v) : v;
        any = true;
      }
    }
  }
  // Amax: a ramp at least kMinAmaxOctaves wide, centred on the data, so that the noise between
  // healthy replicas (a fraction of an octave) does not fill the whole ramp.
  if (metric == RankMetric::Amax && any && h.hi - h.lo < kMinAmaxOctaves) {
    const double mid = 0.5 * (h.lo + h.hi);
    h.lo = mid - 0.5 * kMinAmaxOctaves;
    h.hi = mid + 0.5 * kMinAmaxOctaves;
  }
  for (size_t c = 0; c < nc && h.first_step < 0; ++c)
    for (size_t r = 0; r < h.ranks.size(); ++r) {
      const CellState s = h.state[r * nc + c];
      if (s == CellState::NonFinite || s == CellState::Overflow) {
        h.first_step = static_cast<int64_t>(h.steps[c]);
        h.first_ranks.push_back(h.ranks[r]);
      }
    }
  return h;
}

Rgb rank_cell_color(const RankHeat& h, double value, CellState s) {
  if (s == CellState::Missing) return kRankMissing;
  if (s == CellState::NonFinite) return kRankNonFinite;
  double t = 0.0;
  if (h.metric == RankMetric::Amax) {
    t = !std::isfinite(value) ? 0.0 : h.hi > h.lo ? (value - h.lo) / (h.hi - h.lo) : 0.5;
  } else {
    // Fractions: the log ramp of the exponent heatmap (1e-6 -> 0, 1 -> 1), background at 0.
    const float ht = heat_t(value);
    if (ht < 0.0f) return heat_color(0.0f);
    t = ht;
  }
  return heat_color(static_cast<float>(std::clamp(t, 0.0, 1.0)));
}

RankRaster rank_raster(const RankHeat& h, double x0, double x1, int width) {
  RankRaster out;
  out.width = std::max(1, width);
  out.rows = static_cast<int>(h.rows());
  out.rgba.assign(static_cast<size_t>(out.width) * h.rows(), pack(kRankMissing));
  if (h.cols() == 0 || !(x1 > x0)) return out;
  const double per = (x1 - x0) / out.width;
  auto rank_of = [](CellState s) {
    return s == CellState::NonFinite  ? 3
           : s == CellState::Overflow ? 2
           : s == CellState::Ok       ? 1
                                      : 0;
  };
  for (int x = 0; x < out.width; ++x) {
    // Steps s with x0 + x*per <= s + 0.5 < x0 + (x+1)*per: a step is a unit-wide cell [s, s+1).
    const double a = x0 + x * per, b = a + per;
    auto lo = std::lower_bound(h.steps.begin(), h.steps.end(),
                               static_cast<uint64_t>(std::max(0.0, std::ceil(a - 1.0))));
    for (size_t r = 0; r < h.rows(); ++r) {
      CellState best = CellState::Missing;
      double bv = -std::numeric_limits<double>::infinity();
      for (auto it = lo; it != h.steps.end() && static_cast<double>(*it) < b; ++it) {
        if (static_cast<double>(*it) + 1.0 <= a) continue;
        const auto c = static_cast<size_t>(it - h.steps.begin());
        const CellState s = h.state_at(r, c);
        const double v = h.at(r, c);
        if (rank_of(s) > rank_of(best) || (rank_of(s) == rank_of(best) && v > bv)) {
          best = s;
          bv = v;
        }
      }
      out.rgba[r * static_cast<size_t>(out.width) + static_cast<size_t>(x)] =
          pack(rank_cell_color(h, bv, best));
    }
  }
  return out;
}

}  // namespace fpscope::gui
