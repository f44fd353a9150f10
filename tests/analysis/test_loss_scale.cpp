// Loss-scale history: backoffs/growths, skipped steps with their first offending op (seq order),
// collapse by repeated backoffs and by scale < 1.
#include <gtest/gtest.h>

#include "fpscope/analysis/loss_scale.h"
#include "trace_builder.h"

using namespace fpscope;
using namespace fpscope::analysis;
using fpscope::test::Builder;
using fpscope::test::fi;

TEST(LossScale, HistoryBackoffsCollapseOffenders) {
  Builder b;
  const uint32_t ta = b.tensor("gemm#0.A", trace::Role::A);
  const uint32_t tb = b.tensor("gemm#0.D", trace::Role::D);
  const uint32_t tc = b.tensor("gemm#1.D", trace::Role::D);
  // step  scale   found_inf  next   -> event
  //  0    65536   no         65536     -
  //  1    65536   yes        32768     backoff (skipped)
  //  2    32768   no         65536     growth
  //  3    65536   yes        32768     backoff (skipped)
  //  4    32768   yes        16384     backoff (skipped)
  //  5    16384   yes         8192     backoff (skipped): 3rd consecutive -> collapse at step 5
  //  6     8192   no          8192     -
  //  7     8192   no          (unknown; last record) -
  // Records given out of step order: the analysis sorts them.
  b.loss_scale(7, 8192, false);
  b.loss_scale(0, 65536, false, 65536);
  b.loss_scale(1, 65536, true, 32768);
  b.loss_scale(2, 32768, false, 65536);
  b.loss_scale(3, 65536, true, 32768);
  b.loss_scale(4, 32768, true, 16384);
  b.loss_scale(5, 16384, true, 8192);
  b.loss_scale(6, 8192, false, 8192);
  // Step 1, in FILE order: C (seq 12, NaN), A (seq 10, clean), B (seq 11, FP16 overflow at scale
  // 1). In seq order the first offender is B (seq 11), with reason "fp16 overflow".
  b.obs(tc, 1, 12, 16, 1.0f, 1.0).stats.nan = 2;
  b.obs(ta, 1, 10, 16, 1.0f, 1.0);
  b.obs(tb, 1, 11, 16, 7e4f, 1e10).stats.fmt[fi(Format::FP16)].overflow = 3;
  // Step 3: one +Inf in A (seq 30).
  b.obs(ta, 3, 30, 16, 1.0f, 1.0).stats.pos_inf = 1;
  // Step 4: nothing recorded. Step 5: FP16 counts at scale 2 (overflow count 0), amax 70000 >
  // 65504: the amax test applies -> "fp16 overflow".
  auto& o5 = b.obs(tb, 5, 50, 16, 7e4f, 1e10);
  o5.stats.fmt[fi(Format::FP16)].scale = 2.0f;

  const trace::TraceModel m(b.t);
  const auto a = analyze_loss_scale(m);
  ASSERT_TRUE(a.present);
  ASSERT_EQ(a.series.size(), 8u);
  EXPECT_EQ(a.series.front().step, 0u);
  EXPECT_EQ(a.backoffs, 4u);  // steps 1, 3, 4, 5
  EXPECT_EQ(a.growths, 1u);   // step 2
  EXPECT_DOUBLE_EQ(a.min_scale, 8192);
  EXPECT_DOUBLE_EQ(a.max_scale, 65536);
  EXPECT_DOUBLE_EQ(a.final_scale, 8192);
  EXPECT_EQ(a.steps_at_min, 2u);  // steps 6, 7
  EXPECT_DOUBLE_EQ(a.fraction_at_min, 0.25);
  EXPECT_TRUE(a.collapsed);
  EXPECT_EQ(a.collapse_step, 5);

  ASSERT_EQ(a.skipped.size(), 4u);
  EXPECT_EQ(a.skipped[0].step, 1u);
  EXPECT_EQ(a.skipped[0].offender_id, "gemm#0.D");
  EXPECT_EQ(a.skipped[0].offender_seq, 11u);
  EXPECT_EQ(a.skipped[0].reason, "fp16 overflow");
  EXPECT_EQ(a.skipped[1].step, 3u);
  EXPECT_EQ(a.skipped[1].offender_id, "gemm#0.A");
  EXPECT_EQ(a.skipped[1].reason, "inf");
  EXPECT_EQ(a.skipped[2].step, 4u);
  EXPECT_EQ(a.skipped[2].offender_tensor, -1);
  EXPECT_EQ(a.skipped[3].step, 5u);
  EXPECT_EQ(a.skipped[3].offender_id, "gemm#0.D");
  EXPECT_EQ(a.skipped[3].reason, "fp16 overflow");
}

TEST(LossScale, CollapseBelowOneWithoutNextScale) {
  Builder b;
  // next_scale unknown: the next record's scale decides. 2 -> 1 -> 0.5: two backoffs (< 3),
  // but 0.5 < 1 at step 2: collapse at step 2.
  b.loss_scale(0, 2.0, true);
  b.loss_scale(1, 1.0, true);
  b.loss_scale(2, 0.5, false);
  const trace::TraceModel m(b.t);
  const auto a = analyze_loss_scale(m);
  EXPECT_EQ(a.backoffs, 2u);
  EXPECT_EQ(a.growths, 0u);
  EXPECT_TRUE(a.collapsed);
  EXPECT_EQ(a.collapse_step, 2);
  EXPECT_DOUBLE_EQ(a.final_scale, 0.5);
  EXPECT_EQ(a.skipped.size(), 2u);
}

TEST(LossScale, HealthyScalerDoesNotCollapse) {
  Builder b;
  // One backoff between growths: no run of 3, never below 1.
  b.loss_scale(0, 1024, false, 2048);
  b.loss_scale(1, 2048, true, 1024);
  b.loss_scale(2, 1024, false, 2048);
  b.loss_scale(3, 2048, true, 1024);
  const trace::TraceModel m(b.t);
  const auto a = analyze_loss_scale(m);
  EXPECT_FALSE(a.collapsed);
  EXPECT_EQ(a.collapse_step, -1);
  EXPECT_EQ(a.backoffs, 2u);
  EXPECT_EQ(a.growths, 2u);
  const Builder empty;
  const trace::TraceModel me(empty.t);
  EXPECT_EQ(analyze_loss_scale(me).present, false);
}
