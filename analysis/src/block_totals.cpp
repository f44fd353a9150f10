#include "block_totals.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

namespace fpscope::analysis::detail {

std::vector<BlockTotals> block_totals(const trace::Trace& t) {
  std::vector<BlockTotals> out;
  if (t.block_stats.empty()) return out;
  out.resize(t.tensors.size());
  for (const trace::BlockStatsRecord& b : t.block_stats) {
    if (b.observation >= t.observations.size()) continue;
    const trace::ObservationRecord& o = t.observations[b.observation];
    if (o.tensor >= out.size()) continue;
    BlockTotals& x = out[o.tensor];
    ++x.observations;
    x.mask |= b.mask;
    const int axis = static_cast<int>(b.axis);
    x.axis = x.axis == -1 || x.axis == axis ? axis : 2;
    const auto step = static_cast<int64_t>(o.step);
    for (int f = 0; f < kNumBlockFormats; ++f) {
      if (!(b.mask >> f & 1u)) continue;
      const BlockFormatCounts& d = b.fmt[f];
      x.fmt[f].add(d);
      for (const auto& [bin, k] : b.scale_hist[f]) x.scale_hist[f][bin] += k;
      if (d.flushed + d.saturated > 0) {
        if (x.first_loss_step[f] < 0 || step < x.first_loss_step[f]) x.first_loss_step[f] = step;
        x.last_loss_step[f] = std::max(x.last_loss_step[f], step);
      }
    }
  }
  return out;
}

uint32_t measured_block_formats(const std::vector<BlockTotals>& totals) {
  uint32_t m = 0;
  for (const BlockTotals& x : totals)
    for (int f = 0; f < kNumBlockFormats; ++f)
      if (x.measured(f)) m |= 1u << f;
  return m;
}

double block_loss_frac(const BlockFormatCounts& c) {
  return c.elements ? static_cast<double>(c.flushed + c.saturated) / static_cast<double>(c.elements)
                    : 0.0;
}

double block_sqnr_db(const BlockFormatCounts& c) {
  if (!(c.sum_x2 > 0.0)) return std::numeric_limits<double>::quiet_NaN();
  if (!(c.sum_err2 > 0.0)) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(c.sum_x2 / c.sum_err2);
}

std::string block_format_display_name(int f) {
  std::string s = kBlockFormats[f]->name;
  for (char& ch : s)
    ch = ch == '_' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

BlockTableRows block_table_rows(const std::vector<TensorRisk>& risks,
                                const std::vector<BlockTotals>& totals, int max_rows) {
  BlockTableRows t;
  const uint32_t measured = measured_block_formats(totals);
  if (measured == 0) return t;
  for (int f = 0; f < kNumBlockFormats; ++f)
    if (measured >> f & 1u) t.formats.push_back(f);
  for (const TensorRisk& r : risks) {
    if (r.tensor >= totals.size() || totals[r.tensor].observations == 0) continue;
    if (max_rows >= 0 && t.rows.size() == static_cast<size_t>(max_rows))
      ++t.left;
    else
      t.rows.push_back(&r);
  }
  return t;
}

}  // namespace fpscope::analysis::detail
