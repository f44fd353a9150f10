// The device master-weight watch end to end (device_watch_prog: real recorder, device runtime and
// watches over the host backend): the weight-update records in the trace are the ones the host
// watch's pass (compute_update_loss) gives for the same weights, computed here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "device_watch_data.h"
#include "fpscope/numerics.h"
#include "fpscope/trace_io.h"
#include "fpscope/update_loss.h"
#include "run_util.h"

namespace fpscope::cuda {
namespace {

struct Result {
  proc::Output run;
  trace::Trace trace;
};

Result record(const std::string& env) {
  // One file per test: CTest runs the tests of this file in parallel (-j), and a shared path let
  // one test delete or overwrite the other's trace.
  const std::string path = std::string(FPSCOPE_TEST_TMP) + "/device-watch-" +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                           ".fpst";
  std::remove(path.c_str());
  Result r;
  r.run = proc::run("FPSCOPE_OUTPUT=" + path + " FPSCOPE_STEPS=api FPSCOPE_CUDA_SLOTS=64 " + env,
                    FPSCOPE_WATCH_PROG);
  trace::ReadError err;
  EXPECT_TRUE(trace::read_trace(path, &r.trace, &err)) << err.message << "\n" << r.run.err;
  return r;
}

const trace::TensorInfo* tensor(const trace::Trace& t, const std::string& id) {
  for (const auto& ti : t.tensors)
    if (ti.id == id) return &ti;
  return nullptr;
}

std::vector<const trace::WeightUpdateRecord*> updates_of(const trace::Trace& t, uint32_t tensor) {
  std::vector<const trace::WeightUpdateRecord*> v;
  for (const auto& u : t.weight_updates)
    if (u.tensor == tensor) v.push_back(&u);
  std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->step < b->step; });
  return v;
}

std::vector<float> bf16_widened(const std::vector<float>& f) {
  std::vector<float> v(f.size());
  for (size_t i = 0; i < f.size(); ++i)
    v[i] = decode_storage_t<Format::BF16>(watch_data::to_bf16(f[i]));
  return v;
}

void expect_record(const trace::WeightUpdateRecord& got, const std::vector<float>& prev,
                   const std::vector<float>& cur) {
  UpdateLossCounts bf16, fp16;
  uint64_t changed = 0;
  uint64_t hist[kRatioBins];
  compute_update_loss(prev.data(), cur.data(), prev.size(), &bf16, &fp16, &changed, hist);
  SCOPED_TRACE("step " + std::to_string(got.step));
  ASSERT_GT(changed, 0u);
  EXPECT_EQ(got.elements, prev.size());
  EXPECT_EQ(got.changed, changed);
  EXPECT_EQ(got.bf16.stagnant, bf16.stagnant);
  EXPECT_EQ(got.fp16.stagnant, fp16.stagnant);
  EXPECT_DOUBLE_EQ(got.bf16.lost_abs, bf16.lost_abs);
  EXPECT_DOUBLE_EQ(got.fp16.lost_abs, fp16.lost_abs);
  EXPECT_DOUBLE_EQ(got.bf16.delta_abs, bf16.delta_abs);
  EXPECT_DOUBLE_EQ(got.fp16.delta_abs, fp16.delta_abs);
  std::vector<std::pair<int16_t, uint64_t>> want_hist;
  for (int b = 0; b < kRatioBins; ++b)
    if (hist[b] != 0) want_hist.emplace_back(static_cast<int16_t>(b + kRatioLog2Min), hist[b]);
  EXPECT_EQ(got.ratio_hist, want_hist);
}

TEST(DeviceWatchE2E, SampledStepsGetTheHostWatchRecords) {
  const Result r = record("FPSCOPE_EVERY=2");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  EXPECT_TRUE(r.trace.clean_close);
  // fc and emb watched; device 1 refused both times, its slots tried once.
  EXPECT_NE(r.run.out.find("watch 0 0 -3 -3"), std::string::npos) << r.run.out;
  EXPECT_NE(r.run.out.find("unwatch 1"), std::string::npos) << r.run.out;
  EXPECT_NE(r.run.out.find("live watches 1"), std::string::npos) << r.run.out;  // fc only
  EXPECT_NE(r.run.out.find("ensure calls device 1: 0"), std::string::npos) << r.run.out;

  const trace::TensorInfo* fc = tensor(r.trace, "fc.weight");
  const trace::TensorInfo* emb = tensor(r.trace, "emb.weight");
  ASSERT_NE(fc, nullptr);
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(fc->op, "watch");
  EXPECT_EQ(fc->role, trace::Role::Weight);
  EXPECT_EQ(fc->device, 0);
  EXPECT_EQ(fc->rows, watch_data::kElements);
  EXPECT_EQ(emb->dtype, Format::BF16);
  EXPECT_EQ(tensor(r.trace, "other"), nullptr);

  // EVERY=2: snapshots at watch time and before steps 2, 4; records for steps 0, 2, 4 (the step
  // that made the update), as the host watch.
  const auto f = updates_of(r.trace, fc->index);
  ASSERT_EQ(f.size(), 3u);
  for (size_t i = 0; i < f.size(); ++i) {
    const int s = static_cast<int>(2 * i);
    EXPECT_EQ(f[i]->step, static_cast<uint64_t>(s));
    EXPECT_EQ(f[i]->master_dtype, Format::FP32);
    expect_record(*f[i], watch_data::weights(s), watch_data::weights(s + 1));
  }
  // BF16 master weights on a BF16 grid lose nothing more, but are measured and flagged; unwatched
  // after step 3's boundary: no record for step 4.
  const auto e = updates_of(r.trace, emb->index);
  ASSERT_EQ(e.size(), 2u);
  for (size_t i = 0; i < e.size(); ++i) {
    const int s = static_cast<int>(2 * i);
    EXPECT_EQ(e[i]->step, static_cast<uint64_t>(s));
    EXPECT_EQ(e[i]->master_dtype, Format::BF16);
    expect_record(*e[i], bf16_widened(watch_data::weights(s)),
                  bf16_widened(watch_data::weights(s + 1)));
  }
  // One report for the broken device, the BF16 flag; nothing else went wrong.
  int device1 = 0, not_fp32 = 0;
  for (const auto& ev : r.trace.events) {
    if (ev.text.find("device 1") != std::string::npos) ++device1;
    if (ev.text.find("'emb.weight' is bf16: master weights are not FP32") != std::string::npos)
      ++not_fp32;
    EXPECT_EQ(ev.text.find("not recorded"), std::string::npos) << ev.text;
  }
  EXPECT_EQ(device1, 1);
  EXPECT_EQ(not_fp32, 1);
  EXPECT_EQ(r.run.err.find("error"), std::string::npos) << r.run.err;
}

TEST(DeviceWatchE2E, EveryStepIsRecordedWithEvery1) {
  const Result r = record("FPSCOPE_EVERY=1");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.out << r.run.err;
  const trace::TensorInfo* fc = tensor(r.trace, "fc.weight");
  ASSERT_NE(fc, nullptr);
  const auto f = updates_of(r.trace, fc->index);
  ASSERT_EQ(f.size(), static_cast<size_t>(watch_data::kSteps));
  for (int s = 0; s < watch_data::kSteps; ++s) {
    EXPECT_EQ(f[static_cast<size_t>(s)]->step, static_cast<uint64_t>(s));
    expect_record(*f[static_cast<size_t>(s)], watch_data::weights(s), watch_data::weights(s + 1));
  }
}

}  // namespace
}  // namespace fpscope::cuda
