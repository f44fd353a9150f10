// Host master-weight update-loss pass (per-element math: update_loss.h, shared with CUDA).
#include "fpscope/update_loss.h"

namespace fpscope {

void compute_update_loss(const float* w_prev, const float* w_cur, uint64_t n,
                         UpdateLossCounts* bf16, UpdateLossCounts* fp16, uint64_t* changed,
                         uint64_t ratio_hist[kRatioBins]) {
  *bf16 = UpdateLossCounts{};
  *fp16 = UpdateLossCounts{};
  *changed = 0;
  for (int b = 0; b < kRatioBins; ++b) ratio_hist[b] = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const UpdateLossStep s = update_loss_step(w_prev[i], w_cur[i]);
    if (!s.changed) continue;
    ++*changed;
    accumulate_update_loss(*bf16, s, 0);
    accumulate_update_loss(*fp16, s, 1);
    if (s.ratio_bin >= 0) ++ratio_hist[s.ratio_bin];
  }
}

}  // namespace fpscope
