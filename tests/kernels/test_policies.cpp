// FP8 scaling policies (scaling.h), histogram what-if bounds (histogram.h) and master-weight
// update loss (update_loss.h), on hand-worked cases and against exact counts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "fpscope/histogram.h"
#include "fpscope/host_stats.h"
#include "fpscope/scaling.h"
#include "fpscope/update_loss.h"

namespace {
using fpscope::AmaxAlgo;
using fpscope::Format;
using fpscope::Fp8Scaler;
using fpscope::ScalingPolicy;

TEST(Scaling, DelayedMaxHandWorked) {
  // E4M3 (max 448), history H = 3, margin 1: s = (448 / 2) / amax_ref = 224 / amax_ref, where
  // amax_ref = max of the last 3 observed amaxes (NaN ignored; Inf or 0 keeps the old scale).
  Fp8Scaler s(Format::E4M3, ScalingPolicy::Delayed, 3, 1, AmaxAlgo::Max);
  EXPECT_EQ(s.scale(), 1.0f);  // nothing observed yet
  const float seq[] = {2, 8, 4, 1, 0.5f, NAN, INFINITY, 0, 0, 0, 7};
  // window after each:  [2] [2,8] [2,8,4] [8,4,1] [4,1,.5] [1,.5,NaN] [.5,NaN,Inf] [NaN,Inf,0]
  //                     [Inf,0,0] [0,0,0] [0,0,7]
  const float want[] = {112, 28, 28, 28, 56, 224, 224, 224, 224, 224, 32};
  for (size_t i = 0; i < std::size(seq); ++i) {
    s.observe(seq[i]);
    EXPECT_EQ(s.scale(), want[i]) << "after observation " << i << " (amax " << seq[i] << ")";
  }
}

TEST(Scaling, DelayedMostRecentHandWorked) {
  Fp8Scaler s(Format::E4M3, ScalingPolicy::Delayed, 3, 1, AmaxAlgo::MostRecent);
  const float seq[] = {2, 8, 4, 1, 0.5f, NAN, INFINITY, 0, 7};
  const float want[] = {112, 28, 56, 224, 448, 448, 448, 448, 32};
  for (size_t i = 0; i < std::size(seq); ++i) {
    s.observe(seq[i]);
    EXPECT_EQ(s.scale(), want[i]) << "after observation " << i;
  }
}

TEST(Scaling, DelayedE5M2NoMarginAndLongHistory) {
  // E5M2 max 57344, margin 0, H = 1024: one large amax dominates for 1024 observations.
  Fp8Scaler s(Format::E5M2, ScalingPolicy::Delayed, 1024, 0, AmaxAlgo::Max);
  s.observe(1024.0f);
  EXPECT_EQ(s.scale(), 56.0f);  // 57344 / 1024
  for (int i = 0; i < 1023; ++i) s.observe(1.0f);
  EXPECT_EQ(s.scale(), 56.0f);  // 1024 still in the window
  s.observe(1.0f);
  EXPECT_EQ(s.scale(), 57344.0f);  // it left
}

// The definition Fp8Scaler's incremental window maximum must reproduce: TE's amax history as a
// ring of H entries (initially zeros), the oldest overwritten by each observation, then a full
// scan "ref = 0; ref = a > ref ? a : ref" (fmaxf: NaN ignored), s = (fp8_max * 2^-margin) / ref
// when ref is finite and > 0 and that quotient is finite, else the previous scale.
class BruteForceDelayed {
 public:
  BruteForceDelayed(Format f, int h, int margin, AmaxAlgo algo)
      : algo_(algo),
        scaled_max_(fpscope::max_finite(f) * fpscope::pow2f(-margin)),
        hist_(static_cast<size_t>(h < 1 ? 1 : h), 0.0f) {}
  void observe(float amax) {
    hist_[head_] = amax;
    head_ = (head_ + 1) % hist_.size();
    float ref = 0.0f;
    if (algo_ == AmaxAlgo::MostRecent) {
      ref = amax;
    } else {
      for (float a : hist_) ref = (a > ref) ? a : ref;
    }
    if (std::isfinite(ref) && ref > 0.0f) {
      const float s = scaled_max_ / ref;
      if (std::isfinite(s)) scale_ = s;
    }
  }
  float scale() const { return scale_; }

 private:
  AmaxAlgo algo_;
  float scaled_max_;
  std::vector<float> hist_;
  size_t head_ = 0;
  float scale_ = 1.0f;
};

TEST(Scaling, SlidingWindowMaxMatchesBruteForceOnRandomSequences) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> kind(0, 19), expo(-140, 127);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  // Mostly positive amaxes over the whole FP32 range (subnormals included), with runs that rise
  // and fall (long-lived maxima), and NaN, +-Inf, +-0 and negative entries mixed in.
  auto next = [&](float prev) -> float {
    switch (kind(rng)) {
      case 0:
        return NAN;
      case 1:
        return INFINITY;
      case 2:
        return -INFINITY;
      case 3:
        return 0.0f;
      case 4:
        return -0.0f;
      case 5:
        return -mant(rng);
      case 6:
        return prev;  // ties
      case 7:
      case 8:
        return prev * 1.5f;  // rising run
      case 9:
      case 10:
        return prev * 0.7f;  // falling run
      default:
        return std::ldexp(mant(rng), expo(rng));
    }
  };
  int checked = 0;
  for (int h : {1, 2, 3, 5, 16, 100, 1024, 5000}) {
    for (AmaxAlgo algo : {AmaxAlgo::Max, AmaxAlgo::MostRecent}) {
      for (Format f : {Format::E4M3, Format::E5M2}) {
        for (int margin : {0, 2}) {
          Fp8Scaler fast(f, ScalingPolicy::Delayed, h, margin, algo);
          BruteForceDelayed ref(f, h, margin, algo);
          float prev = 1.0f;
          const int n = 3 * h + 500;
          for (int i = 0; i < n; ++i) {
            float a = next(prev);
            if (std::isfinite(a) && a > 0.0f) prev = a;
            if (i % 997 == 0) a = 1e30f;  // a dominant spike that must leave after H steps
            fast.observe(a);
            ref.observe(a);
            ASSERT_EQ(fast.scale(), ref.scale())
                << "H " << h << " algo " << static_cast<int>(algo) << " margin " << margin
                << " observation " << i << " amax " << a;
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 100000);
}

TEST(Scaling, NoneAndCurrent) {
  Fp8Scaler none(Format::E4M3, ScalingPolicy::None);
  none.observe(1000.0f);
  EXPECT_EQ(none.scale(), 1.0f);
  EXPECT_EQ(Fp8Scaler::current_scale(Format::E4M3, 7.0f), 64.0f);
  EXPECT_EQ(Fp8Scaler::current_scale(Format::E4M3, 7.0f, 1), 32.0f);
  EXPECT_EQ(Fp8Scaler::current_scale(Format::E5M2, 0.0f), 1.0f);
  EXPECT_EQ(Fp8Scaler::current_scale(Format::E5M2, NAN), 1.0f);
  EXPECT_EQ(Fp8Scaler::current_scale(Format::E4M3, 1e-44f), 1.0f);  // 448 / 1e-44 = Inf: keep 1
  Fp8Scaler cur(Format::E4M3, ScalingPolicy::Current);
  cur.observe(14.0f);
  EXPECT_EQ(cur.scale(), 32.0f);
}

std::unique_ptr<fpscope::TensorStats> stats(const std::vector<float>& v, float s = 1.0f) {
  fpscope::StatsOptions opt;
  for (float& x : opt.scale) x = s;
  auto out = std::make_unique<fpscope::TensorStats>();
  fpscope::compute_stats(v.data(), Format::FP32, v.size(), 1, v.size(), opt, out.get());
  return out;
}

TEST(HistogramWhatIf, HandPickedFp16) {
  // 70000's bin [1.0, 1.25) * 2^16 is all beyond FP16's 65520 threshold: overflow for sure.
  // 65504's bin [1.75, 2) * 2^15 holds the threshold 65520: maybe.
  // 1e-9 (~2^-29.9) is below 2^-25 in its whole bin: flushed for sure. 1.0: normal, exact.
  auto s = stats({70000.0f, 65504.0f, 1e-9f, 1.0f});
  const auto w = fpscope::hist_whatif(s->hist, Format::FP16, 1.0f);
  EXPECT_EQ(w.overflow_lo, 1u);
  EXPECT_EQ(w.overflow_hi, 2u);
  EXPECT_EQ(w.underflow_lo, 1u);
  EXPECT_EQ(w.underflow_hi, 1u);
  EXPECT_EQ(w.subnormal_lo, 0u);
  EXPECT_EQ(w.subnormal_hi, 0u);
  EXPECT_FALSE(w.exact);
  // At scale 1/4 everything is in range except 1e-9 (still flushed): exact.
  const auto q = fpscope::hist_whatif(s->hist, Format::FP16, 0.25f);
  EXPECT_TRUE(q.exact);
  EXPECT_EQ(q.overflow_hi, 0u);
  EXPECT_EQ(q.underflow_lo, 1u);
  // The sparse overload agrees with the dense one.
  std::vector<uint16_t> bins;
  std::vector<uint64_t> counts;
  for (int b = 0; b < fpscope::kHistBins; ++b)
    if (s->hist[b]) {
      bins.push_back(static_cast<uint16_t>(b));
      counts.push_back(s->hist[b]);
    }
  const auto sp = fpscope::hist_whatif(bins.data(), counts.data(), bins.size(), Format::FP16, 1.0f);
  EXPECT_EQ(sp.overflow_lo, w.overflow_lo);
  EXPECT_EQ(sp.overflow_hi, w.overflow_hi);
  EXPECT_EQ(sp.underflow_hi, w.underflow_hi);
  EXPECT_EQ(sp.exact, w.exact);
}

TEST(HistogramWhatIf, BoundsHoldExactCountsAtManyScales) {
  std::mt19937 rng(77);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_int_distribution<int> ex(-30, 18);
  std::vector<float> v(50000);
  for (auto& x : v) x = std::ldexp(g(rng), ex(rng));
  auto base = stats(v);
  int checked = 0, inexact = 0;
  for (float s : {1.0f, 0.5f, 4.0f, 1.0f / 1024, 300.0f, 448.0f / 3.7f, 1e-3f, 65536.0f}) {
    auto exact = stats(v, s);
    for (int i = 0; i < fpscope::kNumTargets; ++i) {
      const Format f = fpscope::kTargets[i];
      const auto w = fpscope::hist_whatif(base->hist, f, s);
      const auto& c = exact->fmt[i];
      EXPECT_LE(w.overflow_lo, c.overflow) << fpscope::spec(f).name << " s=" << s;
      EXPECT_GE(w.overflow_hi, c.overflow) << fpscope::spec(f).name << " s=" << s;
      EXPECT_LE(w.underflow_lo, c.underflow) << fpscope::spec(f).name << " s=" << s;
      EXPECT_GE(w.underflow_hi, c.underflow) << fpscope::spec(f).name << " s=" << s;
      EXPECT_LE(w.subnormal_lo, c.subnormal) << fpscope::spec(f).name << " s=" << s;
      EXPECT_GE(w.subnormal_hi, c.subnormal) << fpscope::spec(f).name << " s=" << s;
      if (w.exact) {
        EXPECT_EQ(w.overflow_lo, c.overflow);
        EXPECT_EQ(w.underflow_lo, c.underflow);
        EXPECT_EQ(w.subnormal_lo, c.subnormal);
      } else {
        ++inexact;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 32);
  EXPECT_GT(inexact, 0);  // the data straddles thresholds: some bounds must be loose
}

TEST(UpdateLoss, HandWorked) {
  const float d1 = (1.0f + 1e-3f) - 1.0f;  // exact in FP32 (Sterbenz): ~1.00005e-3
  const float m2 = -2.0f - std::ldexp(1.0f, -20);
  const std::vector<float> prev = {1.0f, 0.0f, 3.0f, NAN, -2.0f, 70000.0f};
  const std::vector<float> cur = {1.0f + 1e-3f, 0.5f, 3.0f, 1.0f, m2, 70001.0f};
  fpscope::UpdateLossCounts bf16, fp16;
  uint64_t changed = 99;
  uint64_t hist[fpscope::kRatioBins];
  fpscope::compute_update_loss(prev.data(), cur.data(), prev.size(), &bf16, &fp16, &changed, hist);
  // Changed: 1.0 -> 1.001, 0 -> 0.5, -2 -> -2 - 2^-20, 70000 -> 70001 (3 -> 3 is not, NaN is
  // skipped).
  EXPECT_EQ(changed, 4u);
  // w = 1, delta ~1e-3:
  //  BF16: ulp(1) = 2^-7, half ulp 2^-8 ~ 3.9e-3 > delta: 1 + delta rounds back to 1: stagnant.
  //  FP16: ulp(1) = 2^-10 ~ 9.77e-4 <= delta < 1.5 ulp: 1 + delta -> 1 + 2^-10: applied 2^-10.
  // w = 0 -> 0.5: applied exactly in both (no ratio bin: w_prev = 0).
  // w = -2, delta = -2^-20: far below half an ulp of 2 in both (2^-8, 2^-11): stagnant in both.
  // w = 70000: beyond FP16's range: stagnant (not representable). BF16: 70000 -> 70144
  //  (ulp 512), 70144 + 1 -> 70144: stagnant.
  EXPECT_EQ(bf16.stagnant, 3u);
  EXPECT_EQ(fp16.stagnant, 2u);
  const double dsum = static_cast<double>(d1) + 0.5 + std::ldexp(1.0, -20) + 1.0;
  EXPECT_DOUBLE_EQ(bf16.delta_abs, dsum);
  EXPECT_DOUBLE_EQ(fp16.delta_abs, dsum);
  EXPECT_DOUBLE_EQ(bf16.lost_abs, static_cast<double>(d1) + std::ldexp(1.0, -20) + 1.0);
  EXPECT_DOUBLE_EQ(fp16.lost_abs,
                   (static_cast<double>(d1) - std::ldexp(1.0, -10)) + std::ldexp(1.0, -20) + 1.0);
  // Ratio bins floor(log2(|delta| / |w|)) - kRatioLog2Min (-40): 1e-3 -> -10 -> 30;
  // 2^-20 / 2 -> -21 -> 19; 1 / 70000 (2^-16.1) -> -17 -> 23.
  uint64_t total = 0;
  for (uint64_t h : hist) total += h;
  EXPECT_EQ(total, 3u);
  EXPECT_EQ(hist[30], 1u);
  EXPECT_EQ(hist[19], 1u);
  EXPECT_EQ(hist[23], 1u);
}

TEST(UpdateLoss, RatioBinsClampAndPowersOfTwo) {
  // The smallest FP32 change of w is one ulp (>= 2^-24 |w|), so ratios stay above 2^-25 and
  // the low clamp is not reached from FP32 data; 2^10 clamps to the highest bin (2^8); exact
  // powers of two land on their own bin.
  const auto a = fpscope::update_loss_step(1.0f, 1.0f + std::ldexp(1.0f, -23));  // 2^-23
  EXPECT_EQ(a.ratio_bin, -23 - fpscope::kRatioLog2Min);
  const auto b = fpscope::update_loss_step(std::ldexp(1.0f, 60),
                                           std::ldexp(1.0f, 60) * (1.0f + std::ldexp(1.0f, -23)));
  EXPECT_EQ(b.ratio_bin, -23 - fpscope::kRatioLog2Min);
  EXPECT_EQ(b.delta, std::ldexp(1.0f, 37));
  const auto c = fpscope::update_loss_step(1.0f, 1025.0f);
  EXPECT_EQ(c.ratio_bin, fpscope::kRatioBins - 1);
  const auto d = fpscope::update_loss_step(8.0f, 9.0f);
  EXPECT_EQ(d.ratio_bin, -3 - fpscope::kRatioLog2Min);
  const auto e = fpscope::update_loss_step(3.0f, 3.75f);  // 0.75 / 3 = 0.25 exactly
  EXPECT_EQ(e.ratio_bin, -2 - fpscope::kRatioLog2Min);
  const auto f = fpscope::update_loss_step(3.0f, 3.7499998f);  // just below 0.25
  EXPECT_EQ(f.ratio_bin, -3 - fpscope::kRatioLog2Min);
}

}  // namespace
