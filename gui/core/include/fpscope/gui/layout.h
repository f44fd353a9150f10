// Display-free layout helpers of the viewer's plots.
#pragma once

#include <span>
#include <vector>

namespace fpscope::gui {

// Places labels along one axis (screen y, growing downwards) near where they want to be, without
// overlap: returns one position per input, in input order, such that
//  - sorted by `want`, consecutive positions are at least `gap` apart (ties keep input order);
//  - every position is within [lo, hi] (when n labels cannot fit, i.e. (n-1)*gap > hi-lo, the
//    gap shrinks to (hi-lo)/(n-1));
//  - a group of labels pushed apart is centred on the mean of its wanted positions, so a lone
//    label stays exactly where it wants to be (clamped into [lo, hi]).
// Wanted positions outside [lo, hi] are clamped first (off-range labels sit at the edge).
std::vector<float> spread_labels(std::span<const float> want, float lo, float hi, float gap);

}  // namespace fpscope::gui
