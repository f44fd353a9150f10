// TraceModel: per-tensor series, per-step lists, totals, first-problem steps, histograms.
#include <gtest/gtest.h>

#include "fpscope/trace_model.h"
#include "trace_test_util.h"

namespace fpscope::trace {
namespace {

struct Obs {
  uint32_t tensor;
  uint64_t step, seq;
  uint64_t count;
  float amax, min, max;
  uint64_t fp16_overflow, bf16_underflow, e4m3_subnormal, nan;
  std::vector<std::pair<uint16_t, uint64_t>> hist;
};

Trace build(const std::vector<Obs>& list, uint32_t ntensors) {
  Trace t;
  for (uint32_t k = 0; k < ntensors; ++k) {
    TensorInfo ti = test::make_tensor(k);
    ti.index = k;
    t.tensors.push_back(ti);
  }
  for (const Obs& o : list) {
    ObservationRecord r;
    r.tensor = o.tensor;
    r.step = o.step;
    r.seq = o.seq;
    r.stats.count = o.count;
    r.stats.nan = o.nan;
    r.stats.amax = o.amax;
    r.stats.min = o.min;
    r.stats.max = o.max;
    r.stats.sum = 1.0;
    r.stats.fmt[target_index(Format::FP16)].overflow = o.fp16_overflow;
    r.stats.fmt[target_index(Format::BF16)].underflow = o.bf16_underflow;
    r.stats.fmt[target_index(Format::E4M3)].subnormal = o.e4m3_subnormal;
    r.hist_begin = static_cast<uint32_t>(t.hist_bins.size());
    for (auto [b, c] : o.hist) {
      t.hist_bins.push_back(b);
      t.hist_counts.push_back(c);
      ++r.hist_len;
    }
    t.observations.push_back(r);
  }
  return t;
}

// File order deliberately not sorted (two producer threads interleaved, a late step-2 record).
const std::vector<Obs> kObs = {
    {0, 2, 20, 10, 3.0f, -1.0f, 3.0f, 0, 0, 0, 0, {{500, 4}, {508, 6}}},  // 0
    {1, 2, 21, 10, 9.0f, -9.0f, 2.0f, 0, 0, 0, 0, {{500, 1}}},            // 1
    {0, 1, 10, 10, 1.0f, -0.5f, 1.0f, 0, 5, 0, 0, {{500, 10}}},           // 2
    {1, 1, 11, 10, 2.0f, -2.0f, 0.5f, 7, 0, 0, 1, {}},                    // 3
    {0, 3, 31, 10, 5.0f, 0.0f, 5.0f, 2, 0, 3, 0, {{508, 1}, {600, 2}}},   // 4
    {0, 3, 30, 10, 4.0f, -4.0f, 4.0f, 0, 1, 0, 0, {{600, 5}}},            // 5
    {1, 3, 32, 10, 1.0f, -1.0f, 1.0f, 0, 0, 0, 2, {}},                    // 6
    {0, 2, 19, 10, 0.5f, -0.1f, 0.2f, 0, 0, 9, 0, {}},                    // 7 (late)
};

std::vector<uint32_t> vec(std::span<const uint32_t> s) {
  return {s.begin(), s.end()};
}

TEST(TraceModel, SeriesAndStepsAreSorted) {
  const Trace t = build(kObs, 3);
  const TraceModel m(t);
  EXPECT_EQ(&m.trace(), &t);
  EXPECT_EQ(m.num_tensors(), 3u);
  EXPECT_EQ(vec(m.series(0)), (std::vector<uint32_t>{2, 7, 0, 5, 4}));
  EXPECT_EQ(vec(m.series(1)), (std::vector<uint32_t>{3, 1, 6}));
  EXPECT_TRUE(m.series(2).empty());
  EXPECT_TRUE(m.series(99).empty());
  EXPECT_EQ(vec(m.series_range(0, 2, 2)), (std::vector<uint32_t>{7, 0}));
  EXPECT_EQ(vec(m.series_range(0, 2, 9)), (std::vector<uint32_t>{7, 0, 5, 4}));
  EXPECT_TRUE(m.series_range(0, 4, 9).empty());
  EXPECT_FALSE(m.empty());
  EXPECT_EQ(m.first_step(), 1u);
  EXPECT_EQ(m.last_step(), 3u);
  EXPECT_EQ(std::vector<uint64_t>(m.steps().begin(), m.steps().end()),
            (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(vec(m.step_observations(1)), (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(vec(m.step_observations(2)), (std::vector<uint32_t>{7, 0, 1}));
  EXPECT_EQ(vec(m.step_observations(3)), (std::vector<uint32_t>{5, 4, 6}));
  EXPECT_TRUE(m.step_observations(0).empty());
  EXPECT_TRUE(m.step_observations(4).empty());
  EXPECT_EQ(m.find_tensor(test::make_tensor(1).id), 1);
  EXPECT_EQ(m.find_tensor("nope"), -1);
}

TEST(TraceModel, TotalsAndFirstSteps) {
  const Trace t = build(kObs, 3);
  const TraceModel m(t);
  const StatsScalars& a = m.totals(0);
  EXPECT_EQ(a.count, 50u);
  EXPECT_EQ(a.amax, 5.0f);
  EXPECT_EQ(a.min, -4.0f);
  EXPECT_EQ(a.max, 5.0f);
  EXPECT_EQ(a.sum, 5.0);
  EXPECT_EQ(a.fmt[target_index(Format::FP16)].overflow, 2u);
  EXPECT_EQ(a.fmt[target_index(Format::BF16)].underflow, 6u);
  EXPECT_EQ(a.fmt[target_index(Format::E4M3)].subnormal, 12u);
  EXPECT_EQ(m.totals(1).nan, 3u);
  EXPECT_EQ(m.totals(1).amax, 9.0f);
  EXPECT_EQ(m.totals(2).count, 0u);

  const int fp16 = target_index(Format::FP16), bf16 = target_index(Format::BF16),
            e4m3 = target_index(Format::E4M3);
  EXPECT_EQ(m.first_overflow(0, fp16), 3u);
  EXPECT_EQ(m.first_overflow(1, fp16), 1u);
  EXPECT_EQ(m.first_overflow(0, bf16), TraceModel::kNoStep);
  EXPECT_EQ(m.first_underflow(0, bf16), 1u);
  EXPECT_EQ(m.first_subnormal(0, e4m3), 2u);  // the late record of step 2 counts
  EXPECT_EQ(m.first_nonfinite(1), 1u);
  EXPECT_EQ(m.first_nonfinite(0), TraceModel::kNoStep);
}

TEST(TraceModel, Histograms) {
  const Trace t = build(kObs, 3);
  const TraceModel m(t);
  const DenseHist h0 = m.histogram(0);
  EXPECT_EQ(h0[500], 4u);
  EXPECT_EQ(h0[508], 6u);
  uint64_t sum = 0;
  for (uint64_t c : h0) sum += c;
  EXPECT_EQ(sum, 10u);
  const DenseHist r = m.histogram_range(0, 2, 3);
  EXPECT_EQ(r[500], 4u);
  EXPECT_EQ(r[508], 7u);
  EXPECT_EQ(r[600], 7u);
  const DenseHist all = m.histogram_range(0, 0, TraceModel::kNoStep);
  EXPECT_EQ(all[500], 14u);
  const DenseHist none = m.histogram(12345);
  for (uint64_t c : none) EXPECT_EQ(c, 0u);
}

TEST(TraceModel, EmptyTraceAndStrayTensorIndex) {
  const Trace empty;
  const TraceModel m(empty);
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.first_step(), 0u);
  EXPECT_EQ(m.last_step(), 0u);
  EXPECT_TRUE(m.step_observations(0).empty());

  Trace t = build({{0, 5, 1, 1, 1.0f, 1.0f, 1.0f, 0, 0, 0, 0, {}}}, 1);
  t.observations.push_back(t.observations[0]);
  t.observations.back().tensor = 7;  // hand-built trace with an undefined tensor
  const TraceModel m2(t);
  EXPECT_EQ(m2.series(0).size(), 1u);
  EXPECT_EQ(m2.step_observations(5).size(), 2u);
}

}  // namespace
}  // namespace fpscope::trace
