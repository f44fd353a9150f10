// The ranks x steps heatmap of one tensor (ranks.h svg_rank_heatmap): which rank breaks first,
// at a glance. Rows are ranks, columns steps (merged into at most kMaxCols equal step ranges,
// the worst value of each range kept); colour is log2 amax over the tensor's range on all ranks;
// NaN/Inf cells are red, cells with an FP16 overflow carry a dark mark.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "fpscope/analysis/ranks.h"
#include "svg.h"

namespace fpscope::analysis {
namespace {

constexpr int kMaxCols = 220;

// A perceptually ordered ramp (viridis-like) at t in [0, 1].
std::string ramp(double t) {
  static const int stops[5][3] = {
      {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  t = std::clamp(t, 0.0, 1.0) * 4.0;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  int c[3];
  for (int k = 0; k < 3; ++k)
    c[k] = static_cast<int>(std::lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k])));
  return fmt::format("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
}

struct Bucket {
  bool any = false;
  float amax = 0.0f;
  bool nonfinite = false, overflow = false;
};

}  // namespace

std::string svg_rank_heatmap(const RankSet& set, const std::string& tensor_id) {
  using detail::Svg;
  const int n = static_cast<int>(set.ranks.size());
  const double row_h = std::clamp(256.0 / std::max(1, n), 3.0, 16.0);
  const double px0 = 60, pw = 2.0 * kMaxCols, py0 = 30;
  const double ph = row_h * n;
  const int W = static_cast<int>(px0 + pw + 20), H = static_cast<int>(py0 + ph + 40);
  Svg s(W, H);
  s.text(W / 2.0, 16, tensor_id + ": amax per rank and step (red: NaN/Inf; mark: FP16 overflow)",
         13, "middle");
  uint64_t s0 = std::numeric_limits<uint64_t>::max(), s1 = 0;
  float lo = std::numeric_limits<float>::infinity(), hi = 0.0f;
  std::vector<const RankTensor*> rows(set.ranks.size(), nullptr);
  for (size_t r = 0; r < set.ranks.size(); ++r) {
    const auto& ts = set.ranks[r].tensors;
    const auto it =
        std::lower_bound(ts.begin(), ts.end(), tensor_id,
                         [](const RankTensor& t, const std::string& id) { return t.id < id; });
    if (it == ts.end() || it->id != tensor_id) continue;
    rows[r] = &*it;
    for (const auto& c : it->cells) {
      s0 = std::min(s0, c.step);
      s1 = std::max(s1, c.step);
      if (std::isfinite(c.amax) && c.amax > 0.0f) {
        lo = std::min(lo, c.amax);
        hi = std::max(hi, c.amax);
      }
    }
  }
  if (s0 > s1) {
    s.text(W / 2.0, H / 2.0, "no observations of this tensor", 12, "middle");
    return s.str();
  }
  const uint64_t span = s1 - s0;
  const int ncol = static_cast<int>(span >= kMaxCols - 1 ? kMaxCols : span + 1);
  const double cw = pw / ncol;
  const double l0 = lo <= hi ? std::log2(static_cast<double>(lo)) : 0.0;
  const double l1 = lo <= hi ? std::log2(static_cast<double>(hi)) : 1.0;
  const int fp16 = target_index(Format::FP16);
  for (size_t r = 0; r < rows.size(); ++r) {
    const double y = py0 + row_h * static_cast<double>(r);
    if (!rows[r]) {
      s.rect(px0, y, pw, row_h, "#eeeeee");
      continue;
    }
    std::vector<Bucket> b(static_cast<size_t>(ncol));
    for (const auto& c : rows[r]->cells) {
      // (step - s0) * (ncol - 1) / span without overflow: in long double.
      const auto col = span == 0 ? 0
                                 : static_cast<size_t>(static_cast<long double>(c.step - s0) *
                                                       (ncol - 1) / static_cast<long double>(span));
      auto& k = b[std::min(col, b.size() - 1)];
      k.any = true;
      k.amax = std::max(k.amax, std::isfinite(c.amax) ? c.amax : 0.0f);
      k.nonfinite |= c.nonfinite > 0;
      k.overflow |= c.overflow[fp16] > 0.0f;
    }
    for (int i = 0; i < ncol; ++i) {
      const auto& k = b[static_cast<size_t>(i)];
      const double x = px0 + cw * i;
      if (!k.any) continue;
      if (k.nonfinite) {
        s.rect(x, y, cw, row_h, "#d62728");
        continue;
      }
      const double t = k.amax > 0.0f && l1 > l0
                           ? (std::log2(static_cast<double>(k.amax)) - l0) / (l1 - l0)
                           : 0.0;
      s.rect(x, y, cw, row_h, ramp(t));
      if (k.overflow) s.rect(x + cw * 0.3, y + row_h * 0.3, cw * 0.4, row_h * 0.4, "#000000");
    }
    if (n <= 32 || r % static_cast<size_t>((n + 31) / 32) == 0)
      s.text(px0 - 4, y + row_h * 0.8, fmt::format("rank {}", set.ranks[r].identity.rank),
             std::min(11, static_cast<int>(row_h) + 2), "end");
  }
  s.text(px0, py0 + ph + 14, fmt::format("step {}", s0), 11, "start");
  s.text(px0 + pw, py0 + ph + 14, fmt::format("step {}", s1), 11, "end");
  s.text(px0 + pw / 2, py0 + ph + 30,
         lo <= hi ? fmt::format("amax {:.3g} (dark) .. {:.3g} (light), log scale", lo, hi)
                  : std::string("amax 0"),
         11, "middle");
  return s.str();
}

}  // namespace fpscope::analysis
