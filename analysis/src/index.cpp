#include "index.h"

namespace fpscope::analysis::detail {

std::vector<StepStats> per_step(const trace::Trace& t, std::span<const uint32_t> obs) {
  std::vector<StepStats> out;
  out.reserve(obs.size());
  for (size_t p = 0; p < obs.size(); ++p) {
    const uint32_t i = obs[p];
    const auto& o = t.observations[i];
    if (out.empty() || out.back().step != o.step) {
      StepStats s;
      s.step = o.step;
      s.first_seq = o.seq;
      s.s = o.stats;
      s.first_obs = i;
      s.nobs = 1;
      s.pos = static_cast<uint32_t>(p);
      out.push_back(s);
    } else {
      out.back().s.merge_scalars(o.stats);
      ++out.back().nobs;
    }
  }
  return out;
}

}  // namespace fpscope::analysis::detail
