// Host-side bookkeeping of the CUDA stats path (slot ring, drain, ordering, skips) with the host
// backend standing in for the device.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "block_counts_expect.h"
#include "fpscope/formats.h"
#include "fpscope/host_stats.h"
#include "host_backend.h"
#include "stats_pipeline.h"

namespace fpscope::cuda {
namespace {

using testing::HostBackend;

struct Got {
  bool scalars = false;
  ObsMeta meta;
  uint64_t count = 0;
  float amax = 0;
  float s[kScalarsPerSlot] = {};
  BlockStatsSet blocks;  // the observation's block section (mask 0: none)
};

class RecordingSink : public Sink {
 public:
  void on_stats(const ObsMeta& m, const TensorStats& st) override {
    std::lock_guard<std::mutex> l(mu);
    Got g;
    g.meta = m;
    g.count = st.count;
    g.amax = st.amax;
    g.blocks = st.blocks;
    got.push_back(g);
  }
  void on_scalars(const ObsMeta& m, const float* s) override {
    std::lock_guard<std::mutex> l(mu);
    Got g;
    g.scalars = true;
    g.meta = m;
    for (int i = 0; i < kScalarsPerSlot; ++i) g.s[i] = s[i];
    got.push_back(g);
  }
  void on_update_loss(const ObsMeta& m, const UpdateLoss&) override {
    std::lock_guard<std::mutex> l(mu);
    Got g;
    g.meta = m;
    got.push_back(g);
  }
  void on_failed(const ObsMeta& m, const std::string&) override {
    std::lock_guard<std::mutex> l(mu);
    failed.push_back(m);
  }
  std::mutex mu;
  std::vector<Got> got;
  std::vector<ObsMeta> failed;
};

void* stream(uintptr_t i) {
  return reinterpret_cast<void*>(i);
}

StatsJob job_on(void* s, const float* data, uint64_t rows, uint64_t cols, uint64_t ld,
                int device = 0) {
  StatsJob j;
  j.device = device;
  j.stream = s;
  j.data = data;
  j.rows = rows;
  j.cols = cols;
  j.ld = ld;
  return j;
}

ObsMeta meta(uint64_t seq, uint64_t step = 0) {
  ObsMeta m;
  m.seq = seq;
  m.step = step;
  m.cookie = 100 + seq;
  m.operand = static_cast<int>(seq % 4);
  return m;
}

TEST(StatsPipeline, RingFullSkipsAndSlotsAreRecycled) {
  HostBackend be(4);
  RecordingSink sink;
  Pipeline p(&be, &sink, {});
  const float x[6] = {1, -2, 3, -4, 5, -6};
  for (uint64_t i = 0; i < 6; ++i) {
    const Submit s = p.submit_stats(job_on(stream(1), x, 2, 3, 2), meta(i));
    EXPECT_EQ(s, i < 4 ? Submit::Ok : Submit::RingFull) << i;
  }
  Counters c = p.counters();
  EXPECT_EQ(c.submitted, 4u);
  EXPECT_EQ(c.skipped_ring_full, 2u);
  EXPECT_EQ(c.in_flight, 4u);
  EXPECT_EQ(p.drain(), 0u);  // nothing has run on the "device" yet
  EXPECT_EQ(be.run(stream(1)), 4);
  EXPECT_EQ(p.drain(), 4u);
  ASSERT_EQ(sink.got.size(), 4u);
  for (uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(sink.got[i].meta.seq, i);
    EXPECT_EQ(sink.got[i].meta.cookie, 100 + i);
    EXPECT_EQ(sink.got[i].count, 6u);
    EXPECT_EQ(sink.got[i].amax, 6.0f);
  }
  EXPECT_EQ(p.drain(), 0u);  // exactly once
  // All four slots are free again.
  for (uint64_t i = 10; i < 14; ++i)
    EXPECT_EQ(p.submit_stats(job_on(stream(1), x, 2, 3, 2), meta(i)), Submit::Ok);
  EXPECT_EQ(p.submit_stats(job_on(stream(1), x, 2, 3, 2), meta(99)), Submit::RingFull);
  EXPECT_EQ(be.ensure_calls[0], 1);  // per-device resources created once, at first use
}

// Issue 16 item 9: a step with more operands than slots (GPT-2-small: 441 at --every 1, against
// 256 slots) must not lose most of them. The ring doubles from the drain thread once a quarter or
// less of it is free, every result still reaches its observation, and slots that existed keep
// theirs.
TEST(StatsPipeline, RingGrowsWhenAStepNeedsMoreSlotsAndEveryResultArrives) {
  HostBackend be(4, 2, /*max_slots=*/16);
  RecordingSink sink;
  Pipeline::Options opt;
  opt.max_slots = 16;
  Pipeline p(&be, &sink, opt);
  const float x[6] = {1, -2, 3, -4, 5, -6};
  EXPECT_EQ(p.grow_rings(), 0u) << "nothing asked for slots yet";
  // 3 of 4 in flight: one free slot is a quarter of the ring, the low-water mark.
  for (uint64_t i = 0; i < 3; ++i)
    ASSERT_EQ(p.submit_stats(job_on(stream(1), x, 2, 3, 2), meta(i)), Submit::Ok);
  EXPECT_EQ(be.add_slots_calls, 0) << "submissions never allocate";
  EXPECT_EQ(p.grow_rings(), 4u);
  EXPECT_EQ(be.add_slots_calls, 1);
  for (uint64_t i = 3; i < 8; ++i)  // 8 in flight: the grown ring holds them all
    ASSERT_EQ(p.submit_stats(job_on(stream(1), x, 2, 3, 2), meta(i)), Submit::Ok) << i;
  EXPECT_EQ(p.grow_rings(), 8u);  // full again: 16, the cap
  for (uint64_t i = 8; i < 16; ++i)
    ASSERT_EQ(p.submit_stats(job_on(stream(1), x, 2, 3, 2), meta(i)), Submit::Ok) << i;
  EXPECT_EQ(p.submit_stats(job_on(stream(1), x, 2, 3, 2), meta(99)), Submit::RingFull);
  EXPECT_EQ(p.grow_rings(), 0u) << "at the cap";
  EXPECT_EQ(be.add_slots_calls, 2);
  EXPECT_EQ(be.run(stream(1)), 16);
  EXPECT_EQ(p.drain(), 16u);
  ASSERT_EQ(sink.got.size(), 16u);
  for (uint64_t i = 0; i < 16; ++i) EXPECT_EQ(sink.got[i].meta.seq, i);
  const Counters c = p.counters();
  EXPECT_EQ(c.slots_added, 12u);
  EXPECT_EQ(c.max_slots, 16u);
  EXPECT_EQ(c.skipped_ring_full, 1u);
  EXPECT_EQ(c.grow_failed, 0u);
}

TEST(StatsPipeline, RingThatCannotGrowKeepsWorkingAndIsNotRetried) {
  HostBackend be(4, 2, 16);
  be.fail_add_slots = true;
  RecordingSink sink;
  Pipeline p(&be, &sink, {});
  const float x[6] = {1, -2, 3, -4, 5, -6};
  for (uint64_t i = 0; i < 4; ++i)
    ASSERT_EQ(p.submit_stats(job_on(stream(1), x, 2, 3, 2), meta(i)), Submit::Ok);
  EXPECT_EQ(p.grow_rings(), 0u);
  EXPECT_EQ(p.submit_stats(job_on(stream(1), x, 2, 3, 2), meta(4)), Submit::RingFull);
  EXPECT_EQ(p.grow_rings(), 0u);
  EXPECT_EQ(be.add_slots_calls, 1) << "a failed growth is not retried";
  EXPECT_EQ(be.run(stream(1)), 4);
  EXPECT_EQ(p.drain(), 4u);
  const Counters c = p.counters();
  EXPECT_EQ(c.grow_failed, 1u);
  EXPECT_EQ(c.max_slots, 4u);
  EXPECT_EQ(c.skipped_ring_full, 1u);
}

TEST(StatsPipeline, LeadingDimensionIsRespected) {
  HostBackend be(2);
  RecordingSink sink;
  Pipeline p(&be, &sink, {});
  // 2 x 2 matrix with ld 3: the padding row holds a value that must not be read.
  const float x[6] = {1, 2, 1000, 3, -4, -2000};
  ASSERT_EQ(p.submit_stats(job_on(stream(1), x, 2, 2, 3), meta(0)), Submit::Ok);
  be.run_all();
  ASSERT_EQ(p.drain(), 1u);
  EXPECT_EQ(sink.got[0].count, 4u);
  EXPECT_EQ(sink.got[0].amax, 4.0f);
}

TEST(StatsPipeline, StreamsCompleteIndependentlyAndInOrderWithinAStream) {
  HostBackend be(8);
  RecordingSink sink;
  Pipeline p(&be, &sink, {});
  const float x[1] = {1};
  // seq 0,2,4 on stream 1; seq 1,3,5 on stream 2
  for (uint64_t i = 0; i < 6; ++i)
    ASSERT_EQ(p.submit_stats(job_on(stream(1 + i % 2), x, 1, 1, 1), meta(i)), Submit::Ok);
  be.run(stream(2), 2);  // seq 1 and 3 finish; stream 1 is still busy
  EXPECT_EQ(p.drain(), 2u);
  ASSERT_EQ(sink.got.size(), 2u);
  EXPECT_EQ(sink.got[0].meta.seq, 1u);
  EXPECT_EQ(sink.got[1].meta.seq, 3u);
  be.run_all();
  EXPECT_EQ(p.drain(), 4u);
  std::vector<uint64_t> order;
  for (const Got& g : sink.got) order.push_back(g.meta.seq);
  EXPECT_EQ(order, (std::vector<uint64_t>{1, 3, 0, 2, 4, 5}));
}

TEST(StatsPipeline, CapturingStreamIsAlwaysSkippedAndCounted) {
  HostBackend be(4);
  be.capturing.insert(stream(7));
  RecordingSink sink;
  const float x[1] = {1};
  {
    Pipeline p(&be, &sink, {});
    EXPECT_EQ(p.submit_stats(job_on(stream(7), x, 1, 1, 1), meta(0)), Submit::Capturing);
    EXPECT_EQ(p.open_scalars(0, stream(7), meta(1)), -1);
    EXPECT_EQ(p.submit_stats(job_on(stream(8), x, 1, 1, 1), meta(2)), Submit::Ok);
    const Counters c = p.counters();
    EXPECT_EQ(c.skipped_capture, 2u);
    EXPECT_EQ(c.submitted, 1u);
  }
}

TEST(StatsPipeline, ScalarGroupIsDeliveredOnceAfterClose) {
  HostBackend be(4);
  RecordingSink sink;
  Pipeline p(&be, &sink, {});
  const float before = 65536.0f, after = 32768.0f, found_inf = 1.0f;
  Submit why = Submit::Failed;
  const int t = p.open_scalars(0, stream(3), meta(5, /*step=*/41), &why);
  ASSERT_GE(t, 0);
  EXPECT_EQ(why, Submit::Ok);
  ScalarCopy c;
  c.stream = stream(3);
  c.src = &before;
  c.index = 0;
  ASSERT_TRUE(p.copy_scalar(t, c));
  be.run_all();
  EXPECT_EQ(p.drain(), 0u);  // still open: not pollable even though the copies ran
  c.src = &after;
  c.index = 1;
  ASSERT_TRUE(p.copy_scalar(t, c));
  c.src = &found_inf;
  c.index = 2;
  ASSERT_TRUE(p.copy_scalar(t, c));
  p.close_scalars(t, stream(3));
  EXPECT_EQ(p.drain(), 0u);  // the event has not run yet
  be.run_all();
  EXPECT_EQ(p.drain(), 1u);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_TRUE(sink.got[0].scalars);
  EXPECT_EQ(sink.got[0].meta.step, 41u);
  EXPECT_EQ(sink.got[0].s[0], before);
  EXPECT_EQ(sink.got[0].s[1], after);
  EXPECT_EQ(sink.got[0].s[2], found_inf);
  EXPECT_EQ(p.counters().in_flight, 0u);
}

// Issue 16 item 9: a loss-scale group one of whose copies failed is dropped (reported failed once
// the group's event has passed), never delivered with the slot's previous contents.
TEST(StatsPipeline, ScalarGroupWithAFailedCopyIsDroppedNotDeliveredStale) {
  HostBackend be(1);  // one slot: the second group reuses the first one's memory
  RecordingSink sink;
  Pipeline p(&be, &sink, {});
  const float first[3] = {1024.0f, 2048.0f, 0.0f};
  auto group = [&](uint64_t seq, const float* v, bool fail_second) {
    const int t = p.open_scalars(0, stream(3), meta(seq));
    ASSERT_GE(t, 0);
    for (int i = 0; i < 3; ++i) {
      be.fail_scalar_copy = fail_second && i == 1;
      ScalarCopy c;
      c.stream = stream(3);
      c.src = &v[i];
      c.index = i;
      EXPECT_EQ(p.copy_scalar(t, c), !(fail_second && i == 1));
    }
    be.fail_scalar_copy = false;
    p.close_scalars(t, stream(3));
    be.run_all();
    p.drain();
  };
  group(0, first, false);
  ASSERT_EQ(sink.got.size(), 1u);
  const float second[3] = {4096.0f, 8192.0f, 1.0f};
  group(1, second, true);
  EXPECT_EQ(sink.got.size(), 1u);  // nothing delivered: index 1 would still hold 2048
  ASSERT_EQ(sink.failed.size(), 1u);
  EXPECT_EQ(sink.failed[0].seq, 1u);
  EXPECT_EQ(p.counters().failed, 1u);
  EXPECT_EQ(p.counters().in_flight, 0u);
  group(2, second, false);  // the slot came back
  ASSERT_EQ(sink.got.size(), 2u);
  EXPECT_EQ(sink.got[1].s[1], 8192.0f);
}

TEST(StatsPipeline, FailuresReleaseSlotsAndAreReported) {
  HostBackend be(2);
  RecordingSink sink;
  Pipeline p(&be, &sink, {});
  const float x[1] = {1};
  be.fail_enqueue = true;
  std::string err;
  EXPECT_EQ(p.submit_stats(job_on(stream(1), x, 1, 1, 1), meta(0), &err), Submit::Failed);
  EXPECT_EQ(err, "enqueue refused");
  be.fail_enqueue = false;
  be.fail_on_run = true;
  EXPECT_EQ(p.submit_stats(job_on(stream(1), x, 1, 1, 1), meta(1)), Submit::Ok);
  EXPECT_EQ(p.submit_stats(job_on(stream(1), x, 1, 1, 1), meta(2)), Submit::Ok);
  be.run_all();
  EXPECT_EQ(p.drain(), 0u);
  ASSERT_EQ(sink.failed.size(), 2u);
  EXPECT_EQ(sink.failed[0].seq, 1u);
  EXPECT_EQ(p.counters().failed, 3u);
  be.fail_on_run = false;
  EXPECT_EQ(p.submit_stats(job_on(stream(1), x, 1, 1, 1), meta(3)), Submit::Ok);  // slots back
}

TEST(StatsPipeline, DeviceWhoseResourcesFailIsReportedNotRetriedForever) {
  HostBackend be(2);
  be.broken_devices.insert(1);
  RecordingSink sink;
  Pipeline p(&be, &sink, {});
  const float x[1] = {1};
  std::string err;
  EXPECT_EQ(p.submit_stats(job_on(stream(1), x, 1, 1, 1, /*device=*/1), meta(0), &err),
            Submit::Failed);
  EXPECT_NE(err.find("device 1"), std::string::npos) << err;
  EXPECT_EQ(p.submit_stats(job_on(stream(1), x, 1, 1, 1, /*device=*/0), meta(1)), Submit::Ok);
  // Issue 16 item 5: the failed device is set up once, never again (each retry leaked and cost
  // a failing allocation per operand); later submissions fail at once with the first message.
  for (uint64_t i = 2; i < 6; ++i) {
    std::string again;
    EXPECT_EQ(p.submit_stats(job_on(stream(1), x, 1, 1, 1, /*device=*/1), meta(i), &again),
              Submit::Failed);
    EXPECT_EQ(again, err);
  }
  EXPECT_EQ(be.ensure_attempts[1], 1);
  EXPECT_EQ(p.counters().failed_devices, 1u);
  EXPECT_EQ(p.counters().failed, 5u);
}

TEST(StatsPipeline, DrainThreadDeliversEverythingExactlyOnceUnderConcurrency) {
  HostBackend be(16);
  RecordingSink sink;
  Pipeline p(&be, &sink, {});
  p.start_drain_thread(std::chrono::microseconds(50));
  const float x[1] = {3};
  constexpr int kThreads = 4, kPer = 200;
  std::atomic<uint64_t> ok{0};
  std::atomic<bool> done{false};
  std::thread device([&] {  // the "GPU": keeps completing work
    while (!done.load()) be.run_all();
  });
  std::vector<std::thread> apps;
  for (int t = 0; t < kThreads; ++t) {
    apps.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        const uint64_t seq = static_cast<uint64_t>(t * kPer + i);
        if (p.submit_stats(job_on(stream(static_cast<uintptr_t>(t + 1)), x, 1, 1, 1), meta(seq)) ==
            Submit::Ok)
          ok.fetch_add(1);
      }
    });
  }
  for (auto& a : apps) a.join();
  done = true;
  device.join();
  be.run_all();
  ASSERT_TRUE(p.flush(std::chrono::milliseconds(5000)));
  p.stop_drain_thread();
  const Counters c = p.counters();
  EXPECT_EQ(c.submitted, ok.load());
  EXPECT_EQ(c.submitted + c.skipped_ring_full, static_cast<uint64_t>(kThreads * kPer));
  EXPECT_EQ(c.delivered, ok.load());
  EXPECT_EQ(sink.got.size(), ok.load());
  std::set<uint64_t> seqs;
  for (const Got& g : sink.got) seqs.insert(g.meta.seq);
  EXPECT_EQ(seqs.size(), sink.got.size());  // no duplicates
}

// ---- block-scaled formats (issue 19 item 2): the block section rides in the result slot ----

constexpr int kMxfp8 = 0;                     // kBlockFormats[0]: MXFP8 E4M3, blocks of 32
constexpr int kNvfp4 = kNumBlockFormats - 1;  // blocks of 16, with a per-tensor scale
constexpr uint32_t kTwoFormats = 1u << kMxfp8 | 1u << kNvfp4;

// Varied magnitudes (some flushed, some saturated in the narrow formats), deterministic.
std::vector<float> block_data(size_t n) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i)
    x[i] = std::ldexp(static_cast<float>((i * 37) % 101) - 50.0f, static_cast<int>(i % 23) - 11);
  return x;
}

// The element-by-element reference (compute_stats_reference) of one matrix, same mask and axis.
BlockStatsSet reference_blocks(const float* x, uint64_t rows, uint64_t cols, uint64_t ld,
                               uint32_t mask, BlockAxis axis, float tensor_amax) {
  StatsOptions opt;
  opt.block_formats = mask;
  opt.block_axis = axis;
  opt.tensor_amax = tensor_amax;
  auto t = std::make_unique<TensorStats>();
  compute_stats_reference(x, Format::FP32, rows, cols, ld, opt, t.get());
  return t->blocks;
}

void expect_blocks_equal(const BlockStatsSet& got, const BlockStatsSet& want) {
  EXPECT_EQ(got.mask, want.mask);
  EXPECT_EQ(got.axis, want.axis);
  EXPECT_EQ(got.nvfp4_tensor_scale, want.nvfp4_tensor_scale);
  for (int f = 0; f < kNumBlockFormats; ++f) {
    SCOPED_TRACE(kBlockFormats[f]->name);
    const BlockFormatCounts &g = got.fmt[f], &w = want.fmt[f];
    fpscope::test::expect_same_block_counts(g, w);
    EXPECT_NEAR(g.sum_err2, w.sum_err2, 1e-5 * std::fabs(w.sum_err2));
    EXPECT_NEAR(g.sum_x2, w.sum_x2, 1e-5 * std::fabs(w.sum_x2));
    for (int b = 0; b < kBlockScaleBins; ++b)
      EXPECT_EQ(got.scale_hist[f][b], want.scale_hist[f][b]);
  }
}

// A job with block formats reaches its observation with a block section along its axis, equal to
// the host pass over the same view; a job without them has none.
TEST(StatsPipeline, BlockFormatsOfAJobArriveInItsObservation) {
  HostBackend be(8);
  RecordingSink sink;
  Pipeline p(&be, &sink, {});
  const uint64_t rows = 64, cols = 3, ld = 70;  // 70 x 3 stored, padding rows unread
  const std::vector<float> x = block_data(ld * cols);
  float amax = 0;
  for (uint64_t c = 0; c < cols; ++c)
    for (uint64_t r = 0; r < rows; ++r) amax = std::fmax(amax, std::fabs(x[r + c * ld]));
  StatsJob rows_job = job_on(stream(1), x.data(), rows, cols, ld);
  rows_job.block_formats = kTwoFormats;
  rows_job.block_axis = BlockAxis::Rows;
  StatsJob cols_job = rows_job;
  cols_job.block_axis = BlockAxis::Cols;
  const StatsJob plain = job_on(stream(1), x.data(), rows, cols, ld);
  ASSERT_EQ(p.submit_stats(rows_job, meta(0)), Submit::Ok);
  ASSERT_EQ(p.submit_stats(cols_job, meta(1)), Submit::Ok);
  ASSERT_EQ(p.submit_stats(plain, meta(2)), Submit::Ok);
  be.run_all();
  ASSERT_EQ(p.drain(), 3u);
  ASSERT_EQ(sink.got.size(), 3u);
  const BlockStatsSet& by_rows = sink.got[0].blocks;
  const BlockStatsSet& by_cols = sink.got[1].blocks;
  // Hand-counted: along rows, each of the 3 stored columns holds 64 / 32 MXFP8 blocks and 64 / 16
  // NVFP4 blocks; along columns, each of the 64 rows holds one (partial, 3-element) block.
  EXPECT_EQ(by_rows.mask, kTwoFormats);
  EXPECT_EQ(by_rows.axis, BlockAxis::Rows);
  EXPECT_EQ(by_rows.fmt[kMxfp8].blocks, 3u * 2u);
  EXPECT_EQ(by_rows.fmt[kNvfp4].blocks, 3u * 4u);
  EXPECT_EQ(by_rows.fmt[1].blocks, 0u) << "formats outside the mask stay empty";
  EXPECT_EQ(by_cols.axis, BlockAxis::Cols);
  EXPECT_EQ(by_cols.fmt[kMxfp8].blocks, 64u);
  EXPECT_EQ(by_cols.fmt[kNvfp4].blocks, 64u);
  EXPECT_GT(by_rows.fmt[kMxfp8].flushed + by_rows.fmt[kMxfp8].saturated, 0u)
      << "the data must exercise the block cast";
  {
    SCOPED_TRACE("rows");
    expect_blocks_equal(
        by_rows, reference_blocks(x.data(), rows, cols, ld, kTwoFormats, BlockAxis::Rows, amax));
  }
  {
    SCOPED_TRACE("cols");
    expect_blocks_equal(
        by_cols, reference_blocks(x.data(), rows, cols, ld, kTwoFormats, BlockAxis::Cols, amax));
  }
  EXPECT_EQ(sink.got[2].blocks.mask, 0u);
  EXPECT_EQ(sink.got[2].blocks.fmt[kMxfp8].blocks, 0u) << "no mask: no block section";
}

// A batch's blocks never span two matrices, even stored back to back (the tensor statistics read
// such a batch as one wide matrix); a stride-0 batch is one matrix, measured once.
TEST(StatsPipeline, BlockPassReadsEachMatrixOfABatchOnItsOwn) {
  StatsJob j;
  j.rows = 4;
  j.cols = 40;
  j.ld = 4;
  j.batch = 2;
  j.batch_stride = 4 * 40;
  EXPECT_EQ(block_pass_of(j).batch, 2u);
  EXPECT_EQ(block_pass_of(j).batch_stride, 160u);
  j.batch_stride = 0;
  EXPECT_EQ(block_pass_of(j).batch, 1u);
  j.batch = 1;
  j.batch_stride = 160;
  EXPECT_EQ(block_pass_of(j).batch, 1u);

  HostBackend be(4);
  RecordingSink sink;
  Pipeline p(&be, &sink, {});
  const std::vector<float> x = block_data(2 * 4 * 40);
  StatsJob contiguous = job_on(stream(1), x.data(), 4, 40, 4);
  contiguous.batch = 2;
  contiguous.batch_stride = 4 * 40;
  contiguous.block_formats = 1u << kMxfp8;
  contiguous.block_axis = BlockAxis::Cols;
  StatsJob repeated = contiguous;
  repeated.batch = 3;
  repeated.batch_stride = 0;
  ASSERT_EQ(p.submit_stats(contiguous, meta(0)), Submit::Ok);
  ASSERT_EQ(p.submit_stats(repeated, meta(1)), Submit::Ok);
  be.run_all();
  ASSERT_EQ(p.drain(), 2u);
  // Each 4 x 40 matrix: 4 rows of 40 = a block of 32 and one of 8 (a 4 x 80 matrix would give 3).
  EXPECT_EQ(sink.got[0].blocks.fmt[kMxfp8].blocks, 2u * 4u * 2u);
  EXPECT_EQ(sink.got[1].blocks.fmt[kMxfp8].blocks, 4u * 2u);
  BlockStatsSet want = reference_blocks(x.data(), 4, 40, 4, 1u << kMxfp8, BlockAxis::Cols, -1.0f);
  want.merge(reference_blocks(x.data() + 160, 4, 40, 4, 1u << kMxfp8, BlockAxis::Cols, -1.0f));
  expect_blocks_equal(sink.got[0].blocks, want);
}

}  // namespace
}  // namespace fpscope::cuda
