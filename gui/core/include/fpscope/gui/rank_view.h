// Rank sets in the viewer (display-free): how several traces become one run of many ranks, and
// the ranks x steps heat raster of one tensor and metric. The rank identity, the per-rank cells
// and the rank set itself come from the analysis library (fpscope/analysis/ranks.h); this only
// arranges them for the panel.
//
// Contract:
//  - is_rank_set(): several traces are one run's ranks when the user says so (--ranks), never
//    when the user says --runs, and otherwise (auto) when there are at least two, every one has
//    its rank from the metadata (RANK / OMPI_COMM_WORLD_RANK / SLURM_PROCID, as the probe writes
//    them), all carry the same world_size, and the ranks are distinct. Anything else: separate
//    runs, compared as today.
//  - build_rank_heat(): one row per rank (ascending), one column per step that any rank recorded
//    for the tensor (ascending). The value of a cell: log2(amax) (Amax; -inf when amax is 0), the
//    fraction of elements that overflow `format` (Overflow), or the fraction of NaN/Inf elements
//    (NonFinite); NaN where the rank has no cell at that step. A cell is broken when it holds a
//    NaN/Inf element or an element that overflows `format`. `first_step` is the earliest step with
//    a broken cell and `first_ranks` every rank broken at that step (-1 / empty: none broke).
//    lo/hi, the colour ramp's range: that of the present cells' finite values; for Amax at least
//    kMinAmaxOctaves wide (widened about its middle), so that the noise between healthy replicas
//    (a fraction of an octave) does not span the whole ramp.
//  - rank_raster(): the heat as RGBA (ImGui packing, pack()), `width` columns spanning steps
//    [x0, x1) by rows; a column covering several steps shows the worst of them (broken first,
//    then the highest value). Colours: rank_cell_color().
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "fpscope/analysis/ranks.h"
#include "fpscope/gui/colors.h"

namespace fpscope::gui {

enum class RankSetMode : uint8_t { Auto, Ranks, Runs };
bool is_rank_set(const std::vector<analysis::RankIdentity>& ids, RankSetMode mode);

enum class RankMetric : uint8_t { Amax, Overflow, NonFinite };
const char* rank_metric_name(RankMetric m);  // "amax", "overflow fraction", "NaN/Inf fraction"

enum class CellState : uint8_t { Missing, Ok, Overflow, NonFinite };

inline constexpr double kMinAmaxOctaves = 2.0;

struct RankHeat {
  std::string tensor_id;
  RankMetric metric = RankMetric::Amax;
  Format format = Format::FP16;
  std::vector<int64_t> ranks;   // row -> rank
  std::vector<uint64_t> steps;  // column -> step
  std::vector<double> value;    // ranks.size() x steps.size(), row-major
  std::vector<CellState> state;
  double lo = 0.0, hi = 0.0;  // the colour ramp's range (see the contract)
  int64_t first_step = -1;
  std::vector<int64_t> first_ranks;

  size_t rows() const { return ranks.size(); }
  size_t cols() const { return steps.size(); }
  double at(size_t r, size_t c) const { return value[r * steps.size() + c]; }
  CellState state_at(size_t r, size_t c) const { return state[r * steps.size() + c]; }
  int64_t row_of(int64_t rank) const;   // -1 when absent
  int64_t col_of(uint64_t step) const;  // -1 when absent
};

RankHeat build_rank_heat(const analysis::RankSet& set, const std::string& tensor_id,
                         RankMetric metric, Format format = Format::FP16);

// The colour of a cell: NonFinite red, Missing the plot background, otherwise the heat ramp at
// the value's place in [lo, hi] (Overflow cells of the Amax metric are ramp-coloured too; the
// panel outlines them).
inline constexpr Rgb kRankNonFinite{255, 40, 40};
inline constexpr Rgb kRankMissing{24, 26, 32};
Rgb rank_cell_color(const RankHeat& h, double value, CellState s);

struct RankRaster {
  int width = 0, rows = 0;
  std::vector<uint32_t> rgba;  // rows x width, row-major, row 0 = lowest rank
};
RankRaster rank_raster(const RankHeat& h, double x0, double x1, int width);

}  // namespace fpscope::gui
