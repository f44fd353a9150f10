// Host-side bookkeeping of the device master-weight watch (device_watch.h) with the host backend
// standing in for the device: snapshot/slot lifecycle, one result per sampled step carrying the
// update loss that compute_update_loss (update_loss.cpp, the host watch's pass) gives for the same
// previous/current arrays, unwatch, and devices whose resources fail.
#include <gtest/gtest.h>

#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "device_watch.h"
#include "fpscope/numerics.h"
#include "fpscope/update_loss.h"
#include "host_backend.h"
#include "stats_pipeline.h"

namespace fpscope::cuda {
namespace {

using testing::HostBackend;

struct Result {
  ObsMeta meta;
  UpdateLoss loss;
};

class WatchSink : public Sink {
 public:
  void on_stats(const ObsMeta&, const TensorStats&) override { ADD_FAILURE() << "stats result"; }
  void on_scalars(const ObsMeta&, const float*) override { ADD_FAILURE() << "scalar result"; }
  void on_update_loss(const ObsMeta& m, const UpdateLoss& u) override {
    std::lock_guard<std::mutex> l(mu);
    got.push_back({m, u});
  }
  void on_failed(const ObsMeta& m, const std::string&) override {
    std::lock_guard<std::mutex> l(mu);
    failed.push_back(m);
  }
  std::mutex mu;
  std::vector<Result> got;
  std::vector<ObsMeta> failed;
};

class FakeHost : public WatchHost {
 public:
  bool define(const std::string& name, uint64_t count, Format, int device,
              uint32_t* tensor) override {
    if (count > max_elements) return false;
    defined.push_back(name + "@" + std::to_string(device));
    *tensor = 40 + static_cast<uint32_t>(defined.size());
    return true;
  }
  void warn(const std::string& text) override { warnings.push_back(text); }
  uint64_t max_elements = 1u << 20;
  std::vector<std::string> defined;
  std::vector<std::string> warnings;
};

void* const kStream = reinterpret_cast<void*>(0x61);

struct Rig {
  explicit Rig(int slots = 8) : be(slots), pipe(&be, &sink, {}), dw(&pipe, &be, &host) {}
  // The device runs everything queued; the drain delivers it.
  void finish() {
    be.run_all();
    pipe.drain();
  }
  HostBackend be;
  WatchSink sink;
  Pipeline pipe;
  FakeHost host;
  DeviceWatches dw;
};

// Weights of a watch: mostly ~1 with updates of ~1e-4 (below BF16's resolution at 1: stagnant in
// BF16, applied in FP16), some large ones, zeros and untouched elements.
std::vector<float> initial_weights(size_t n) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  std::vector<float> w(n);
  for (size_t i = 0; i < n; ++i) w[i] = (i % 7 == 3) ? 0.0f : u(rng) * ((i % 2) ? -1.0f : 1.0f);
  return w;
}
void optimizer_step(std::vector<float>& w, int step) {
  std::mt19937 rng(100 + static_cast<unsigned>(step));
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (size_t i = 0; i < w.size(); ++i) {
    if (i % 5 == 0) continue;  // unchanged
    const float lr = (i % 11 == 0) ? 1e-1f : 1e-4f;
    w[i] -= lr * g(rng);
  }
}

UpdateLoss expected(const std::vector<float>& prev, const std::vector<float>& cur) {
  UpdateLoss u;
  compute_update_loss(prev.data(), cur.data(), prev.size(), &u.bf16, &u.fp16, &u.changed,
                      u.ratio_hist);
  return u;
}

void expect_same(const UpdateLoss& got, const UpdateLoss& want, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(got.changed, want.changed);
  EXPECT_EQ(got.bf16.stagnant, want.bf16.stagnant);
  EXPECT_EQ(got.fp16.stagnant, want.fp16.stagnant);
  EXPECT_DOUBLE_EQ(got.bf16.lost_abs, want.bf16.lost_abs);
  EXPECT_DOUBLE_EQ(got.fp16.lost_abs, want.fp16.lost_abs);
  EXPECT_DOUBLE_EQ(got.bf16.delta_abs, want.bf16.delta_abs);
  EXPECT_DOUBLE_EQ(got.fp16.delta_abs, want.fp16.delta_abs);
  for (int b = 0; b < kRatioBins; ++b) EXPECT_EQ(got.ratio_hist[b], want.ratio_hist[b]) << b;
}

TEST(DeviceWatch, OneResultPerStepWithTheHostWatchValues) {
  Rig r;
  std::vector<float> w = initial_weights(3000);
  ASSERT_EQ(r.dw.watch("fc.weight", w.data(), w.size(), Format::FP32, 0, kStream), WatchStatus::Ok);
  EXPECT_EQ(r.host.defined, (std::vector<std::string>{"fc.weight@0"}));
  r.be.run_all();  // the watch-time snapshot, before the first update
  std::vector<UpdateLoss> want;
  for (int s = 0; s < 4; ++s) {
    std::vector<float> before = w;
    optimizer_step(w, s);
    want.push_back(expected(before, w));
    r.dw.on_step(static_cast<uint64_t>(s), static_cast<uint64_t>(s + 1), true);
    r.finish();
  }
  ASSERT_EQ(r.sink.got.size(), 4u);
  for (int s = 0; s < 4; ++s) {
    const Result& g = r.sink.got[static_cast<size_t>(s)];
    EXPECT_EQ(g.meta.step, static_cast<uint64_t>(s));  // the step that made the update
    EXPECT_EQ(g.meta.operand, kUpdateLossGroup);
    EXPECT_EQ(g.meta.tensor, 41u);
    EXPECT_EQ(g.meta.elements, 3000u);
    EXPECT_EQ(g.meta.dtype, Format::FP32);
    EXPECT_EQ(g.meta.cookie, 0u);
    expect_same(g.loss, want[static_cast<size_t>(s)], "step " + std::to_string(s));
  }
  // The data is what this test is about: BF16 loses updates FP16 keeps.
  EXPECT_GT(want[0].changed, 1000u);
  EXPECT_GT(want[0].bf16.stagnant, want[0].fp16.stagnant);
  EXPECT_TRUE(r.host.warnings.empty());
  EXPECT_EQ(r.pipe.counters().in_flight, 0u);
}

TEST(DeviceWatch, WeightsAreReadWhenTheDeviceRunsTheWork) {
  // The boundary enqueues; the values are the ones in memory when the stream gets there (the
  // optimizer's work before it on the stream is done by then, as on a device).
  Rig r;
  std::vector<float> w = initial_weights(64);
  ASSERT_EQ(r.dw.watch("w", w.data(), w.size(), Format::FP32, 0, kStream), WatchStatus::Ok);
  const std::vector<float> at_watch_call = w;
  optimizer_step(w, 0);  // before the device ran the first snapshot: the snapshot sees this
  r.be.run_all();
  const std::vector<float> snap = w;
  optimizer_step(w, 1);
  r.dw.on_step(0, 1, true);
  r.finish();
  ASSERT_EQ(r.sink.got.size(), 1u);
  expect_same(r.sink.got[0].loss, expected(snap, w), "from the snapshot the device took");
  EXPECT_NE(r.sink.got[0].loss.bf16.delta_abs, expected(at_watch_call, w).bf16.delta_abs);
}

TEST(DeviceWatch, OnlySampledStepsAreMeasuredAndSnapshotsTakeNoSlot) {
  Rig r;
  std::vector<float> w = initial_weights(200);
  ASSERT_EQ(r.dw.watch("w", w.data(), w.size(), Format::FP32, 0, kStream), WatchStatus::Ok);
  r.be.run_all();
  std::vector<uint64_t> want_steps;
  std::vector<UpdateLoss> want;
  std::vector<float> snap = w;  // the watch-time snapshot (as the host watch)
  const uint64_t every = 3;
  for (uint64_t s = 0; s < 8; ++s) {
    optimizer_step(w, static_cast<int>(s));
    const bool next_sampled = (s + 1) % every == 0;
    if (s == 0 || s % every == 0) {  // a snapshot from the start of step s exists
      want_steps.push_back(s);
      want.push_back(expected(snap, w));
    }
    if (next_sampled) snap = w;
    r.dw.on_step(s, s + 1, next_sampled);
    r.finish();
  }
  ASSERT_EQ(r.sink.got.size(), want_steps.size());
  EXPECT_EQ(want_steps, (std::vector<uint64_t>{0, 3, 6}));
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(r.sink.got[i].meta.step, want_steps[i]);
    expect_same(r.sink.got[i].loss, want[i], "record " + std::to_string(i));
  }
  // Jobs: the watch-time snapshot, boundaries 0 (measure), 2 (snapshot), 3 (measure), 5, 6: six
  // jobs, three slots used in all.
  EXPECT_EQ(r.be.watch_jobs, 6);
  EXPECT_EQ(r.pipe.counters().submitted, 3u);
}

TEST(DeviceWatch, FullRingSkipsTheRecordOnceReportedAndKeepsTheSnapshot) {
  Rig r(/*slots=*/2);
  std::vector<float> w = initial_weights(100);
  ASSERT_EQ(r.dw.watch("w", w.data(), w.size(), Format::FP32, 0, kStream), WatchStatus::Ok);
  std::vector<std::vector<float>> after;  // weights after step s
  for (int s = 0; s < 4; ++s) {  // the device runs nothing yet: the two slots stay in flight
    optimizer_step(w, s);
    after.push_back(w);
    r.dw.on_step(static_cast<uint64_t>(s), static_cast<uint64_t>(s + 1), true);
    // The host backend reads the weights when it runs: let the "device" run everything of this
    // boundary except the slots' results, which are drained only at the end.
    r.be.run_all();
  }
  EXPECT_EQ(r.dw.counters().skipped, 2u);  // boundaries 2 and 3 found both slots taken
  ASSERT_EQ(r.host.warnings.size(), 1u);   // reported once per watch
  EXPECT_NE(r.host.warnings[0].find("the update of step 2 was not recorded"), std::string::npos)
      << r.host.warnings[0];
  r.pipe.drain();
  ASSERT_EQ(r.sink.got.size(), 2u);
  EXPECT_EQ(r.sink.got[0].meta.step, 0u);
  EXPECT_EQ(r.sink.got[1].meta.step, 1u);
  // The snapshots went on: step 4's update is measured against the weights after step 3.
  optimizer_step(w, 4);
  r.dw.on_step(4, 5, true);
  r.finish();
  ASSERT_EQ(r.sink.got.size(), 3u);
  EXPECT_EQ(r.sink.got[2].meta.step, 4u);
  expect_same(r.sink.got[2].loss, expected(after[3], w), "after the full ring");
}

TEST(DeviceWatch, UnwatchReleasesTheResourcesAndInFlightResultsStillArrive) {
  Rig r;
  std::vector<float> w = initial_weights(50);
  ASSERT_EQ(r.dw.watch("w", w.data(), w.size(), Format::FP32, 0, kStream), WatchStatus::Ok);
  EXPECT_EQ(r.be.live_watches(), 1);
  r.be.run_all();
  std::vector<float> snap = w;
  optimizer_step(w, 0);
  r.dw.on_step(0, 1, true);
  EXPECT_TRUE(r.dw.unwatch("w"));
  EXPECT_FALSE(r.dw.unwatch("w"));
  EXPECT_EQ(r.be.live_watches(), 0);
  EXPECT_EQ(r.dw.counters().watches, 0u);
  r.finish();  // the boundary enqueued before unwatch completes and is delivered
  ASSERT_EQ(r.sink.got.size(), 1u);
  expect_same(r.sink.got[0].loss, expected(snap, w), "in flight at unwatch");
  const int jobs = r.be.watch_jobs;
  r.dw.on_step(1, 2, true);
  r.finish();
  EXPECT_EQ(r.be.watch_jobs, jobs);  // nothing for a watch that is gone
  EXPECT_EQ(r.sink.got.size(), 1u);
  // Watching a name again replaces the watch (one set of resources).
  ASSERT_EQ(r.dw.watch("w", w.data(), w.size(), Format::FP32, 0, kStream), WatchStatus::Ok);
  ASSERT_EQ(r.dw.watch("w", w.data(), w.size(), Format::FP32, 0, kStream), WatchStatus::Ok);
  EXPECT_EQ(r.be.live_watches(), 1);
}

TEST(DeviceWatch, DeviceWhoseResourcesFailIsReportedOnceNotRetried) {
  Rig r;
  r.be.broken_devices.insert(1);
  std::vector<float> w = initial_weights(10);
  EXPECT_EQ(r.dw.watch("a", w.data(), w.size(), Format::FP32, 1, kStream), WatchStatus::Refused);
  EXPECT_EQ(r.dw.watch("b", w.data(), w.size(), Format::FP32, 1, kStream), WatchStatus::Refused);
  for (int s = 0; s < 3; ++s) r.dw.on_step(static_cast<uint64_t>(s), s + 1u, true);
  ASSERT_EQ(r.host.warnings.size(), 1u);
  EXPECT_NE(r.host.warnings[0].find("device 1"), std::string::npos) << r.host.warnings[0];
  EXPECT_EQ(r.be.create_watch_calls, 0);
  EXPECT_EQ(r.be.watch_jobs, 0);
  EXPECT_TRUE(r.host.defined.empty());  // nothing in the trace for a refused watch
  EXPECT_EQ(r.dw.counters().refused, 2u);
  // Another device is unaffected.
  EXPECT_EQ(r.dw.watch("c", w.data(), w.size(), Format::FP32, 0, kStream), WatchStatus::Ok);
  EXPECT_EQ(r.host.warnings.size(), 1u);
}

TEST(DeviceWatch, SnapshotThatCannotBeAllocatedRefusesThatWatchOnce) {
  Rig r;
  r.be.fail_create_watch = true;
  std::vector<float> w = initial_weights(10);
  EXPECT_EQ(r.dw.watch("a", w.data(), w.size(), Format::FP32, 0, kStream), WatchStatus::Refused);
  ASSERT_EQ(r.host.warnings.size(), 1u);
  EXPECT_NE(r.host.warnings[0].find("out of memory"), std::string::npos) << r.host.warnings[0];
  r.dw.on_step(0, 1, true);
  EXPECT_EQ(r.be.watch_jobs, 0);  // no per-step retry
  EXPECT_EQ(r.be.create_watch_calls, 1);
  r.be.fail_create_watch = false;
  EXPECT_EQ(r.dw.watch("a", w.data(), w.size(), Format::FP32, 0, kStream), WatchStatus::Ok);
}

TEST(DeviceWatch, BadArgumentsAndTooLargeTensors) {
  Rig r;
  std::vector<float> w = initial_weights(10);
  EXPECT_EQ(r.dw.watch("", w.data(), 10, Format::FP32, 0, kStream), WatchStatus::BadArgument);
  EXPECT_EQ(r.dw.watch("a", nullptr, 10, Format::FP32, 0, kStream), WatchStatus::BadArgument);
  EXPECT_EQ(r.dw.watch("a", w.data(), 0, Format::FP32, 0, kStream), WatchStatus::BadArgument);
  EXPECT_EQ(r.dw.watch("a", w.data(), 10, Format::E4M3, 0, kStream), WatchStatus::BadArgument);
  EXPECT_EQ(r.dw.watch("a", w.data(), 10, Format::FP32, -1, kStream), WatchStatus::BadArgument);
  r.host.max_elements = 5;  // the recorder refuses (FPSCOPE_WATCH_MAX_ELEMENTS): no resources
  EXPECT_EQ(r.dw.watch("a", w.data(), 10, Format::FP32, 0, kStream), WatchStatus::Refused);
  EXPECT_EQ(r.be.create_watch_calls, 0);
  EXPECT_EQ(r.be.live_watches(), 0);
}

uint16_t to_bf16(float x) {  // round to nearest even (the values here are finite)
  uint32_t b;
  std::memcpy(&b, &x, 4);
  b += 0x7fffu + ((b >> 16) & 1u);
  return static_cast<uint16_t>(b >> 16);
}

TEST(DeviceWatch, Bf16WeightsAreWidenedExactly) {
  Rig r;
  std::vector<float> f = initial_weights(500);
  std::vector<uint16_t> w(f.size());
  auto store = [&] {
    for (size_t i = 0; i < f.size(); ++i) w[i] = to_bf16(f[i]);
  };
  auto widened = [&] {
    std::vector<float> v(w.size());
    for (size_t i = 0; i < w.size(); ++i) v[i] = decode_storage_t<Format::BF16>(w[i]);
    return v;
  };
  store();
  ASSERT_EQ(r.dw.watch("bf", w.data(), w.size(), Format::BF16, 0, kStream), WatchStatus::Ok);
  r.be.run_all();
  const std::vector<float> prev = widened();
  for (size_t i = 0; i < f.size(); i += 3) f[i] *= 1.5f;  // updates BF16 can hold
  store();
  r.dw.on_step(0, 1, true);
  r.finish();
  ASSERT_EQ(r.sink.got.size(), 1u);
  EXPECT_EQ(r.sink.got[0].meta.dtype, Format::BF16);
  const UpdateLoss want = expected(prev, widened());
  EXPECT_GT(want.changed, 100u);
  expect_same(r.sink.got[0].loss, want, "bf16");
}

TEST(DeviceWatch, CapturingStreamSkipsTheBoundary) {
  Rig r;
  std::vector<float> w = initial_weights(40);
  ASSERT_EQ(r.dw.watch("w", w.data(), w.size(), Format::FP32, 0, kStream), WatchStatus::Ok);
  r.be.run_all();
  optimizer_step(w, 0);
  r.be.capturing.insert(kStream);
  r.dw.on_step(0, 1, true);  // neither measured nor snapshotted
  r.be.capturing.clear();
  optimizer_step(w, 1);
  r.dw.on_step(1, 2, true);  // no snapshot from the start of step 1: snapshot only
  r.finish();
  EXPECT_TRUE(r.sink.got.empty());
  ASSERT_EQ(r.host.warnings.size(), 1u);
  EXPECT_NE(r.host.warnings[0].find("capturing"), std::string::npos) << r.host.warnings[0];
  std::vector<float> snap = w;
  optimizer_step(w, 2);
  r.dw.on_step(2, 3, true);
  r.finish();
  ASSERT_EQ(r.sink.got.size(), 1u);
  EXPECT_EQ(r.sink.got[0].meta.step, 2u);
  expect_same(r.sink.got[0].loss, expected(snap, w), "after the capture");
}

TEST(DeviceWatch, FailedDeviceWorkIsReportedToTheSink) {
  Rig r;
  std::vector<float> w = initial_weights(20);
  ASSERT_EQ(r.dw.watch("w", w.data(), w.size(), Format::FP32, 0, kStream), WatchStatus::Ok);
  r.be.fail_on_run = true;
  optimizer_step(w, 0);
  r.dw.on_step(0, 1, true);
  r.finish();
  EXPECT_TRUE(r.sink.got.empty());
  ASSERT_EQ(r.sink.failed.size(), 1u);
  EXPECT_EQ(r.sink.failed[0].operand, kUpdateLossGroup);
  EXPECT_EQ(r.pipe.counters().in_flight, 0u);  // the slot came back
}

}  // namespace
}  // namespace fpscope::cuda
