#include "fpscope/gui/block_view.h"

#include <algorithm>
#include <cmath>
#include <limits>

// Internal to fpscope_analysis (its PRIVATE include directory, see gui/CMakeLists.txt): the one
// aggregation of block statistics per tensor, reused here rather than redone.
#include "block_totals.h"

namespace fpscope::gui {

namespace ad = analysis::detail;

const BlockCell* BlockColumns::cell(uint32_t tensor, int f) const {
  if (tensor >= tensors.size() || f < 0 || f >= kNumBlockFormats) return nullptr;
  const BlockCell& c = tensors[tensor][static_cast<size_t>(f)];
  return c.measured ? &c : nullptr;
}

BlockColumns block_columns(const trace::Trace& t) {
  BlockColumns out;
  const std::vector<ad::BlockTotals> totals = ad::block_totals(t);
  const uint32_t measured = ad::measured_block_formats(totals);
  if (measured == 0) return out;
  for (int f = 0; f < kNumBlockFormats; ++f)
    if (measured >> f & 1u) out.formats.push_back(f);
  out.tensors.resize(totals.size());
  for (size_t k = 0; k < totals.size(); ++k)
    for (int f = 0; f < kNumBlockFormats; ++f) {
      BlockCell& c = out.tensors[k][static_cast<size_t>(f)];
      c.measured = totals[k].measured(f);
      c.counts = totals[k].fmt[f];
    }
  return out;
}

double block_loss(const BlockFormatCounts& c) {
  return ad::block_loss_frac(c);
}

double block_sqnr(const BlockFormatCounts& c) {
  return ad::block_sqnr_db(c);
}

analysis::Severity block_loss_severity(double loss, const analysis::FindingOptions& opt) {
  if (loss >= opt.block_loss_warn) return analysis::Severity::Warning;
  if (loss >= opt.block_loss_info) return analysis::Severity::Info;
  return analysis::Severity::None;
}

std::string block_format_label(int f) {
  return ad::block_format_display_name(f);
}

Rgb block_format_color(int f) {
  // MXFP8: a light tint of its element format's colour (E4M3, E5M2), so that the pair reads as
  // related but never as the same line; the others colours of their own, none of them red.
  auto tint = [](Rgb c) {
    auto up = [](uint8_t v) { return static_cast<uint8_t>(v + (255 - v) / 2); };
    return Rgb{up(c.r), up(c.g), up(c.b)};
  };
  const FormatSpec& s = *kBlockFormats[f];
  for (Format e : {Format::E4M3, Format::E5M2})
    if (s.exp_bits == spec(e).exp_bits && s.man_bits == spec(e).man_bits)
      return tint(format_color(e));
  static constexpr Rgb kOthers[4] = {
      {240, 228, 66},   // Okabe-Ito yellow: MXFP6 E3M2
      {150, 200, 120},  // sage: MXFP6 E2M3
      {170, 150, 255},  // lavender: MXFP4
      {120, 230, 230},  // light cyan: NVFP4
  };
  return kOthers[std::clamp(f - 2, 0, 3)];
}

std::span<const uint8_t> BlockSteps::scale_bins(size_t i, int f) const {
  if (!measured(i, f)) return {};
  const size_t k = i * static_cast<size_t>(slots) + static_cast<size_t>(slot[f]);
  return {hist_bins.data() + hist_off[k], hist_off[k + 1] - hist_off[k]};
}

std::span<const uint64_t> BlockSteps::scale_counts(size_t i, int f) const {
  if (!measured(i, f)) return {};
  const size_t k = i * static_cast<size_t>(slots) + static_cast<size_t>(slot[f]);
  return {hist_counts.data() + hist_off[k], hist_off[k + 1] - hist_off[k]};
}

BlockSteps build_block_steps(const trace::Trace& t, std::span<const uint32_t> series,
                             std::span<const uint64_t> steps) {
  BlockSteps b;
  if (t.block_stats.empty() || steps.empty()) return b;
  // First the formats this tensor was measured in (their slots), then the steps.
  for (uint32_t obs : series)
    if (const trace::BlockStatsRecord* r = t.blocks_of(obs)) b.mask |= r->mask & kAllBlockFormats;
  if (b.mask == 0) return b;
  for (int f = 0; f < kNumBlockFormats; ++f)
    if (b.mask >> f & 1u) b.slot[f] = b.slots++;
  const size_t n = steps.size(), slots = static_cast<size_t>(b.slots);
  b.step_mask.assign(n, 0);
  b.counts.assign(n * slots, BlockFormatCounts{});
  b.hist_off.reserve(n * slots + 1);
  b.hist_off.push_back(0);
  std::array<uint64_t, kBlockScaleBins> dense[kNumBlockFormats] = {};
  int lo[kNumBlockFormats], hi[kNumBlockFormats];  // touched bins of the current step
  std::fill(lo, lo + kNumBlockFormats, kBlockScaleBins);
  std::fill(hi, hi + kNumBlockFormats, -1);
  size_t k = 0;  // into series
  for (size_t i = 0; i < n; ++i) {
    for (; k < series.size() && series[k] < t.observations.size() &&
           t.observations[series[k]].step == steps[i];
         ++k) {
      const trace::BlockStatsRecord* r = t.blocks_of(series[k]);
      if (!r) continue;
      b.step_mask[i] |= r->mask & kAllBlockFormats;
      for (int f = 0; f < kNumBlockFormats; ++f) {
        if (!(r->mask >> f & 1u)) continue;
        b.counts[i * slots + static_cast<size_t>(b.slot[f])].add(r->fmt[f]);
        for (const auto& [bin, c] : r->scale_hist[f]) {
          dense[f][bin] += c;
          lo[f] = std::min<int>(lo[f], bin);
          hi[f] = std::max<int>(hi[f], bin);
        }
      }
    }
    for (int f = 0; f < kNumBlockFormats; ++f) {
      if (b.slot[f] < 0) continue;
      for (int bin = lo[f]; bin <= hi[f]; ++bin) {
        uint64_t& c = dense[f][static_cast<size_t>(bin)];
        if (c == 0) continue;
        b.hist_bins.push_back(static_cast<uint8_t>(bin));
        b.hist_counts.push_back(c);
        c = 0;
      }
      lo[f] = kBlockScaleBins;
      hi[f] = -1;
      b.hist_off.push_back(static_cast<uint32_t>(b.hist_bins.size()));
    }
  }
  return b;
}

BlockSeries block_series(const BlockSteps& b, int f) {
  BlockSeries s;
  const size_t n = b.step_mask.size();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.sqnr_db.assign(n, nan);
  s.loss.assign(n, nan);
  for (size_t i = 0; i < n; ++i) {
    if (!b.measured(i, f) || b.at(i, f).elements == 0) continue;
    s.sqnr_db[i] = block_sqnr(b.at(i, f));
    s.loss[i] = block_loss(b.at(i, f));
  }
  return s;
}

std::string scale_bin_label(int b) {
  if (b >= kBlockScaleBins - 1) return "NaN";
  return "2^" + std::to_string(b - kFp32Bias);
}

double block_range_octaves(int f) {
  const FormatSpec& s = *kBlockFormats[f];
  return std::log2(static_cast<double>(max_finite(s))) -
         std::log2(static_cast<double>(min_subnormal(s)));
}

double tensor_range_octaves(float amax, int lowest_bin) {
  if (!(amax > 0.0f) || !std::isfinite(amax) || lowest_bin < 0)
    return std::numeric_limits<double>::quiet_NaN();
  return std::log2(static_cast<double>(amax)) - hist_bin_octave(lowest_bin);
}

double BlockCoverage::fraction() const {
  if (std::isnan(tensor_octaves)) return std::numeric_limits<double>::quiet_NaN();
  if (!(tensor_octaves > block_octaves)) return 1.0;
  return block_octaves / tensor_octaves;
}

}  // namespace fpscope::gui
