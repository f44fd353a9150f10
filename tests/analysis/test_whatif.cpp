// FP8 what-if: delayed-scaling replay of the amax history, exact counts where the trace holds them
// at the replayed scale, histogram bounds otherwise.
#include <sys/resource.h>

#include <string>

#include <gtest/gtest.h>

#include "fpscope/analysis/whatif.h"
#include "trace_builder.h"

using namespace fpscope;
using namespace fpscope::analysis;
using fpscope::test::Builder;
using fpscope::test::fi;

namespace {

// One tensor, 6 steps, 100 nonzero elements per step:
//   90 values in histogram bin 502 = [0.375, 0.4375) (biased exponent 125, top mantissa bits 10),
//   10 values in bin 388 = [2^-30, 1.25*2^-30); step 3 instead has its 90 values in bin 520 =
//   [8, 10). amax: 0.5, 0.5, 0.5, 8, 0.5, 0.5.
// E4M3 (max 448, min subnormal 2^-9) delayed scaling, history 2, margin 0:
//   step 0: the tensor's first observed step: the history is empty (TE would cast at its initial
//           scale 1, which says nothing about the recipe): NOT replayed, its amax 0.5 seeds the
//           history. (The trace's E4M3 counts at scale 1, underflow 7, are not used.)
//   step 1: amax_ref = 0.5 -> s = 448/0.5 = 896. The trace holds counts at 896 (0, 3): exact.
//   step 2: s = 896; trace counts at scale 1 -> histogram: [0.375, 0.4375)*896 = [336, 392) is
//           inside the normal range; 2^-30*896 < 2^-10 (half the smallest subnormal): the 10
//           values flush -> overflow 0, underflow 10 (both bounds).
//   step 3: history (0.5, 0.5) -> s = 896; [8, 10)*896 = [7168, 8960) > 448: 90 overflow
//           (saturate); 10 underflow.
//   step 4: history (0.5, 8) -> max: s = 448/8 = 56; most_recent: 56. [21, 24.5): fine;
//           2^-30*56 underflows: 10.
//   step 5: history (8, 0.5) -> max: s = 56; most_recent: s = 896.
Builder make() {
  Builder b;
  const uint32_t t = b.tensor("gemm#0.D");
  const float amax[6] = {0.5f, 0.5f, 0.5f, 8.0f, 0.5f, 0.5f};
  for (uint64_t s = 0; s < 6; ++s) {
    auto& o = b.obs(t, s, s, 100, amax[s], 1.0);
    auto& c = o.stats.fmt[fi(Format::E4M3)];
    if (s == 0) {
      c.scale = 1.0f;
      c.underflow = 7;
    } else if (s == 1) {
      c.scale = 896.0f;
      c.underflow = 3;
    } else {
      c.scale = 1.0f;
      c.overflow = 12345;  // counts at scale 1: must not be used at another scale
    }
    b.hist(s == 3 ? 520 : 502, 90);
    b.hist(388, 10);
  }
  return b;
}

}  // namespace

TEST(WhatIf, DelayedScalingReplayExactAndHistogram) {
  const auto b = make();
  const trace::TraceModel m(b.t);
  WhatIfOptions opt;
  opt.history_len = 2;
  opt.margin = 0;
  opt.algo = AmaxAlgo::Max;
  opt.formats = {Format::E4M3};
  const auto w = fp8_whatif(m, opt);
  ASSERT_EQ(w.size(), 1u);
  const auto& r = w[0];
  EXPECT_EQ(r.seed_steps, 1u);
  EXPECT_EQ(r.first_seed_step, 0);
  ASSERT_EQ(r.steps.size(), 5u);  // steps 1..5
  const float scale[5] = {896, 896, 896, 56, 56};
  const uint64_t ovf[5] = {0, 0, 90, 0, 0};
  const uint64_t unf[5] = {3, 10, 10, 10, 10};
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(r.steps[i].step, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(r.steps[i].scale, scale[i]);
    EXPECT_EQ(r.steps[i].overflow_lo, ovf[i]);
    EXPECT_EQ(r.steps[i].overflow_hi, ovf[i]);
    EXPECT_EQ(r.steps[i].underflow_lo, unf[i]);
    EXPECT_EQ(r.steps[i].underflow_hi, unf[i]);
    EXPECT_EQ(r.steps[i].source, i == 0 ? CountSource::Exact : CountSource::Histogram);
  }
  EXPECT_EQ(r.exact_steps, 1u);
  EXPECT_EQ(r.histogram_steps, 4u);
  EXPECT_EQ(r.saturate_steps, 1u);
  EXPECT_EQ(r.first_saturate_step, 3);
  EXPECT_EQ(r.underflow_steps, 5u);
  EXPECT_EQ(r.first_underflow_step, 1);
  EXPECT_EQ(r.eligible, 500u);
  EXPECT_EQ(r.overflow_lo, 90u);
  EXPECT_EQ(r.underflow_lo, 43u);  // 3 + 4*10
  EXPECT_DOUBLE_EQ(r.overflow_frac, 90.0 / 500.0);
  // The worst step: step 3, 90 of its 100 elements, amax 8 at scale 896.
  EXPECT_EQ(r.worst_step, 3);
  EXPECT_DOUBLE_EQ(r.worst_overflow_frac, 0.9);
  EXPECT_EQ(r.worst_scale, 896.0f);
  EXPECT_EQ(r.worst_amax, 8.0f);

  opt.algo = AmaxAlgo::MostRecent;
  const auto w2 = fp8_whatif(m, opt);
  ASSERT_EQ(w2.size(), 1u);
  EXPECT_EQ(w2[0].steps[3].scale, 56.0f);   // step 4
  EXPECT_EQ(w2[0].steps[4].scale, 896.0f);  // step 5
}

TEST(WhatIf, StepsBeforeAnyNonzeroAmaxOnlySeedTheHistory) {
  // amax 0, 0 (all-zero tensor), then 2, then 4. E5M2 (max 57344), history 4, margin 0:
  // steps 0 and 1 leave the history without a usable amax, step 2 puts 2 in it: all three are
  // seed steps. Step 3 is replayed at s = 57344 / 2 = 28672; its 10 values in bin 4*(127+2)
  // ([4, 5)) scale to [114688, 143360) > 57344: all 10 overflow (histogram).
  Builder b;
  const uint32_t t = b.tensor("gemm#0.D");
  const float amax[4] = {0.0f, 0.0f, 2.0f, 4.0f};
  for (uint64_t s = 0; s < 4; ++s) {
    b.obs(t, s, s, 10, amax[s], 1.0);
    if (amax[s] > 0) b.hist(4 * (127 + (s == 2 ? 1 : 2)), 10);
  }
  const trace::TraceModel m(b.t);
  WhatIfOptions opt;
  opt.history_len = 4;
  opt.formats = {Format::E5M2};
  const auto w = fp8_whatif(m, opt);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].seed_steps, 3u);
  EXPECT_EQ(w[0].first_seed_step, 0);
  ASSERT_EQ(w[0].steps.size(), 1u);
  EXPECT_EQ(w[0].steps[0].step, 3u);
  EXPECT_EQ(w[0].steps[0].scale, 28672.0f);
  EXPECT_EQ(w[0].overflow_lo, 10u);
  EXPECT_EQ(w[0].overflow_hi, 10u);
  EXPECT_EQ(w[0].saturate_steps, 1u);
}

TEST(WhatIf, SkipsFp8TensorsUnlessAsked) {
  Builder b;
  const uint32_t t = b.tensor("gemm#0.A", trace::Role::A, 4, 4, Format::E4M3);
  b.obs(t, 0, 0, 16, 1.0f, 1.0);
  const trace::TraceModel m(b.t);
  EXPECT_TRUE(fp8_whatif(m).empty());
  WhatIfOptions opt;
  opt.include_fp8_tensors = true;
  EXPECT_EQ(fp8_whatif(m, opt).size(), 2u);  // E4M3 and E5M2
}

// Issue 17: memory of the replay is sized by the observations, not by the history length. 20000
// tensors with one observation each: the scaler's amax window used to allocate min(H, 4096)
// entries (16 bytes) per tensor and FP8 format up front: 20000 x 2 x 1024 x 16 B = 655 MB, and the
// bin memo 1 KiB more each. Now a few hundred bytes per (tensor, format); the peak RSS grows by
// well under 150 MB.
TEST(WhatIf, MemoryScalesWithObservationsNotHistory) {
  Builder b;
  constexpr uint32_t kTensors = 20000;
  for (uint32_t i = 0; i < kTensors; ++i) {
    const uint32_t t = b.tensor("gemm#" + std::to_string(i) + ".D");
    b.obs(t, 0, i, 16, 1.0f, 16.0);
    b.hist(4 * 127, 16);
  }
  const trace::TraceModel m(b.t);
  auto peak_kb = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
  };
  const long before = peak_kb();
  WhatIfOptions opt;
  opt.history_len = 1024;
  const auto w = fp8_whatif(m, opt);
  const long grown_mb = (peak_kb() - before) / 1024;
  EXPECT_EQ(w.size(), 2u * kTensors);  // E4M3 and E5M2 per tensor
  EXPECT_LT(grown_mb, 150) << "peak RSS grew by " << grown_mb << " MB";
}
