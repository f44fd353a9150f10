// Writer behaviour: many producer threads, write errors, SIGKILL mid-run, fork, timed flushes.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "fpscope/trace_io.h"
#include "trace_test_util.h"

namespace fpscope::trace {
namespace {

using namespace test;

int wait_child(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1000;
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return WEXITSTATUS(status);
}

TEST(Writer, EightProducerThreadsLoseNothing) {
  const std::string path = temp_path("threads.fpst");
  std::string err;
  WriterOptions opt;
  opt.flush_bytes = 64 << 10;
  auto w = TraceWriter::open(path, "{}", opt, &err);
  ASSERT_TRUE(w) << err;
  constexpr int kThreads = 8;
  constexpr uint64_t kPer = 20000;
  std::vector<uint32_t> ids(kThreads);
  for (int t = 0; t < kThreads; ++t)
    ids[t] = w->define_tensor(make_tensor(static_cast<uint32_t>(t)));
  std::vector<std::thread> th;
  for (int t = 0; t < kThreads; ++t) {
    th.emplace_back([&, t] {
      for (uint64_t i = 0; i < kPer; ++i) {
        Observation o = make_obs(ids[t], i, 8);
        o.seq = static_cast<uint64_t>(t) * 1'000'000 + i;
        w->observe(o);
        if (i % 1000 == 0) {
          EventRecord e{i, i, EventLevel::Info, "thread " + std::to_string(t)};
          w->event(e);
        }
        if (i == kPer / 2) w->flush();
      }
    });
  }
  for (auto& x : th) x.join();
  ASSERT_TRUE(w->close()) << w->error();
  const uint64_t total = kThreads + kThreads * kPer + kThreads * (kPer / 1000);
  EXPECT_EQ(w->records_written(), total);
  EXPECT_EQ(w->records_dropped(), 0u);

  Trace t;
  ReadError rerr;
  ASSERT_TRUE(read_trace(path, &t, &rerr)) << rerr.message;
  EXPECT_TRUE(t.clean_close);
  ASSERT_EQ(t.observations.size(), kThreads * kPer);
  EXPECT_EQ(t.events.size(), kThreads * (kPer / 1000));
  // Each thread's records arrive complete and in that thread's order.
  std::vector<uint64_t> next(kThreads, 0);
  for (const ObservationRecord& r : t.observations) {
    const uint64_t th_id = r.seq / 1'000'000;
    ASSERT_LT(th_id, static_cast<uint64_t>(kThreads));
    ASSERT_EQ(r.tensor, ids[th_id]);
    ASSERT_EQ(r.seq % 1'000'000, next[th_id]++);
    ASSERT_EQ(r.stats.count, 1'000'000 + r.seq % 1'000'000);
    ASSERT_EQ(r.hist_len, 8u);
  }
  for (int k = 0; k < kThreads; ++k) EXPECT_EQ(next[k], kPer);
}

TEST(Writer, DevFullFailsOpenWithOneMessageNamingThePath) {
  std::string err;
  std::unique_ptr<TraceWriter> w;
  EXPECT_NO_THROW(w = TraceWriter::open("/dev/full", "{}", WriterOptions{}, &err));
  EXPECT_FALSE(w);
  EXPECT_EQ(err.rfind("/dev/full: ", 0), 0u) << err;
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos);
  EXPECT_FALSE(TraceWriter::open("/nonexistent-dir/x.fpst", "{}", WriterOptions{}, &err));
  EXPECT_NE(err.find("/nonexistent-dir/x.fpst"), std::string::npos) << err;
}

// A write error after a good start (the file-size limit makes write() fail with EFBIG, as a full
// disk does with ENOSPC): failed state, one message naming the path, the rest counted as dropped.
TEST(Writer, WriteErrorMidRunSetsFailedStateAndCountsDrops) {
  const std::string path = temp_path("efbig.fpst");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl {};
    ::getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = 64 << 10;
    ::setrlimit(RLIMIT_FSIZE, &rl);
    ::alarm(60);
    std::string err;
    WriterOptions opt;
    opt.flush_bytes = 8 << 10;
    auto w = TraceWriter::open(path, "{}", opt, &err);
    if (!w) ::_exit(10);
    w->define_tensor(make_tensor(0));
    uint64_t total = 1;
    bool flush_ok = true;
    for (uint64_t i = 0; i < 5000; ++i) {
      w->observe(make_obs(0, i, 35));
      ++total;
      if (i % 500 == 0) flush_ok = w->flush() && flush_ok;
    }
    const bool close_ok = w->close();
    const std::string e = w->error();
    uint64_t report[3] = {total, w->records_written(), w->records_dropped()};
    if (::write(fds[1], report, sizeof report) != sizeof report) ::_exit(11);
    int code = 0;
    if (flush_ok || close_ok || w->ok()) code |= 1;
    if (e.rfind(path + ": write failed: ", 0) != 0) code |= 2;
    if (e.find("File too large") == std::string::npos) code |= 4;
    if (e.find('\n') != std::string::npos) code |= 8;
    w->observe(make_obs(0, 1, 1));  // after the failure: dropped, not thrown
    if (w->records_dropped() != report[2] + 1) code |= 16;
    ::_exit(code);
  }
  ::close(fds[1]);
  uint64_t report[3] = {};
  const ssize_t got = ::read(fds[0], report, sizeof report);
  ::close(fds[0]);
  ASSERT_EQ(wait_child(pid), 0);
  ASSERT_EQ(got, static_cast<ssize_t>(sizeof report));
  EXPECT_EQ(report[1] + report[2], report[0]) << "every record is written or counted dropped";
  EXPECT_GT(report[1], 1u);
  EXPECT_GT(report[2], 0u);
  // What reached the disk is a readable trace holding exactly the written records.
  Trace t;
  ReadError e;
  ASSERT_TRUE(read_trace(path, &t, &e)) << e.message;
  EXPECT_TRUE(t.truncated);
  EXPECT_EQ(t.observations.size() + t.tensors.size(), report[1]);
  EXPECT_LE(t.file_bytes, 64u << 10);
}

TEST(Writer, SigkillMidRunKeepsEveryFlushedRecord) {
  const std::string path = temp_path("sigkill.fpst");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::alarm(60);  // never outlive a broken parent
    std::string err;
    auto w = TraceWriter::open(path, "{\"child\":1}", WriterOptions{}, &err);
    if (!w) ::_exit(10);
    w->define_tensor(make_tensor(0));
    w->define_tensor(make_tensor(1));
    for (uint64_t i = 0;; ++i) {
      w->observe(make_obs(static_cast<uint32_t>(i % 2), i, 35));
      if (i % 2000 == 1999) {
        if (!w->flush()) ::_exit(11);
        const uint64_t flushed = i + 1;
        if (::write(fds[1], &flushed, sizeof flushed) != sizeof flushed) ::_exit(12);
      }
    }
  }
  ::close(fds[1]);
  uint64_t max_flushed = 0, v = 0;
  for (int reports = 0; reports < 5; ++reports) {
    ASSERT_EQ(::read(fds[0], &v, sizeof v), static_cast<ssize_t>(sizeof v));
    max_flushed = std::max(max_flushed, v);
  }
  ::kill(pid, SIGKILL);
  EXPECT_EQ(wait_child(pid), -SIGKILL);
  while (::read(fds[0], &v, sizeof v) == static_cast<ssize_t>(sizeof v))
    max_flushed = std::max(max_flushed, v);  // reported (so flushed) before it died
  ::close(fds[0]);
  ASSERT_GE(max_flushed, 10000u);

  Trace t;
  ReadError e;
  ASSERT_TRUE(read_trace(path, &t, &e)) << e.message;
  EXPECT_TRUE(t.truncated);
  EXPECT_FALSE(t.clean_close);
  EXPECT_EQ(t.metadata_json, "{\"child\":1}");
  ASSERT_EQ(t.tensors.size(), 2u);
  ASSERT_GE(t.observations.size(), max_flushed);
  for (uint64_t i = 0; i < t.observations.size(); ++i) {
    const Observation want = make_obs(static_cast<uint32_t>(i % 2), i, 35);
    const ObservationRecord& r = t.observations[i];
    ASSERT_EQ(r.seq, i);
    ASSERT_EQ(r.tensor, want.tensor);
    ASSERT_EQ(r.stats.sum_sq, want.stats.sum_sq);
    if (i % 997 == 0) {
      const TensorStats s = t.full_stats(r);
      for (int b = 0; b < kHistBins; ++b) ASSERT_EQ(s.hist[b], want.stats.hist[b]) << i;
    }
  }
}

TEST(Writer, AbandonAfterForkLeavesTheParentAlone) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer cannot start threads in a child forked from a threaded parent";
#endif
  const std::string ppath = temp_path("fork_parent.fpst");
  const std::string cpath = temp_path("fork_child.fpst");
  std::string err;
  auto w = TraceWriter::open(ppath, "{}", WriterOptions{}, &err);
  ASSERT_TRUE(w) << err;
  w->define_tensor(make_tensor(0));
  for (uint64_t i = 0; i < 100; ++i) w->observe(make_obs(0, i, 4));  // pending, not flushed
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(20);  // a hang (joining/locking the parent's state) fails the test
    w->abandon_after_fork();
    int code = 0;
    if (w->ok()) code |= 1;
    w->observe(make_obs(0, 999, 4));
    w->step(StepMark{});
    if (w->records_dropped() < 2) code |= 2;
    if (w->flush() || w->close()) code |= 4;
    w.reset();  // must neither join nor lock
    auto c = TraceWriter::open(cpath, "{\"pid\":\"child\"}", WriterOptions{}, &err);
    if (!c) ::_exit(8);
    c->define_tensor(make_tensor(5));
    for (uint64_t i = 0; i < 10; ++i) c->observe(make_obs(0, 1000 + i, 4));
    if (!c->close()) code |= 16;
    ::_exit(code);
  }
  for (uint64_t i = 100; i < 200; ++i) w->observe(make_obs(0, i, 4));
  EXPECT_EQ(wait_child(pid), 0);
  ASSERT_TRUE(w->close()) << w->error();
  Trace pt, ct;
  ReadError e;
  ASSERT_TRUE(read_trace(ppath, &pt, &e)) << e.message;
  EXPECT_TRUE(pt.clean_close);
  ASSERT_EQ(pt.observations.size(), 200u);
  for (uint64_t i = 0; i < 200; ++i) EXPECT_EQ(pt.observations[i].seq, i);
  ASSERT_TRUE(read_trace(cpath, &ct, &e)) << e.message;
  EXPECT_TRUE(ct.clean_close);
  EXPECT_EQ(ct.metadata_json, "{\"pid\":\"child\"}");
  ASSERT_EQ(ct.observations.size(), 10u);
  EXPECT_EQ(ct.observations[0].seq, 1000u);
  EXPECT_EQ(ct.tensors.at(0).id, make_tensor(5).id);
}

TEST(Writer, PendingRecordsReachTheFileWithoutAFlushCall) {
  const std::string path = temp_path("timer.fpst");
  std::string err;
  WriterOptions opt;
  opt.flush_ms = 50;
  auto w = TraceWriter::open(path, "{}", opt, &err);
  ASSERT_TRUE(w) << err;
  w->define_tensor(make_tensor(0));
  for (uint64_t i = 0; i < 5; ++i) w->observe(make_obs(0, i, 3));
  // The writer thread's timer writes the chunk; poll (bounded), no timing assertion.
  Trace t;
  ReadError e;
  for (int tries = 0; tries < 500; ++tries) {
    ASSERT_TRUE(read_trace(path, &t, &e)) << e.message;
    if (t.observations.size() == 5) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(t.observations.size(), 5u);
  EXPECT_TRUE(t.truncated);  // still open: no footer yet
  EXPECT_EQ(w->records_written(), 6u);
  EXPECT_TRUE(w->flush(/*sync=*/true));
  EXPECT_TRUE(w->close());
  w->observe(make_obs(0, 9, 3));  // after close: counted, not written
  EXPECT_EQ(w->records_dropped(), 1u);
  EXPECT_EQ(w->records_written(), 6u);
  ASSERT_TRUE(read_trace(path, &t, &e));
  EXPECT_TRUE(t.clean_close);
  EXPECT_EQ(t.observations.size(), 5u);
}

TEST(Writer, LongStringsAreCappedNotRejected) {
  const std::string path = temp_path("long.fpst");
  std::string err;
  auto w = TraceWriter::open(path, "{}", WriterOptions{}, &err);
  ASSERT_TRUE(w) << err;
  TensorInfo ti = make_tensor(0);
  ti.name = std::string(1 << 20, 'n');
  w->define_tensor(ti);
  w->event(EventRecord{1, 2, EventLevel::Warning, std::string(200000, 'e')});
  ASSERT_TRUE(w->close());
  Trace t;
  ReadError e;
  ASSERT_TRUE(read_trace(path, &t, &e)) << e.message;
  ASSERT_EQ(t.tensors.size(), 1u);
  EXPECT_EQ(t.tensors[0].name, std::string(65536, 'n'));
  ASSERT_EQ(t.events.size(), 1u);
  EXPECT_EQ(t.events[0].text, std::string(65536, 'e'));
}

}  // namespace
}  // namespace fpscope::trace
