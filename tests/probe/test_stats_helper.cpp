// The statistics helper's contract (probe/src/stats_helper.h): jobs run one at a time in the
// order they were posted, by any thread, urgent ones first; wait(owner) returns once that owner's
// jobs have run and no earlier; reserve() holds a caller back while the copies in flight would pass
// the budget; the buffer pool hands a given-back buffer out again. What the hooks do with it (the
// same records with the helper on and off) is tests/models/test_stats_helper.py.
#include "stats_helper.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace fpscope::probe {
namespace {

// A gate a job waits at until the test opens it.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return open; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mu);
      open = true;
    }
    cv.notify_all();
  }
};

TEST(StatsHelper, JobsOfTwoThreadsRunOneAtATimeInPostingOrder) {
  StatsHelper* h = StatsHelper::get();
  ASSERT_NE(h, nullptr);
  std::mutex mu;
  std::vector<int> ran;
  std::atomic<int> running{0}, overlap{0};
  const int owner_a = 0, owner_b = 0;
  auto job = [&](int id) {
    return [&, id] {
      if (running.fetch_add(1) != 0) overlap.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      {
        std::lock_guard<std::mutex> lock(mu);
        ran.push_back(id);
      }
      running.fetch_sub(1);
    };
  };
  std::thread t([&] {
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(h->post(&owner_b, 0, job(100 + i)));
  });
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(h->post(&owner_a, 0, job(i)));
  t.join();
  h->wait(&owner_a);
  h->wait(&owner_b);
  EXPECT_EQ(overlap.load(), 0);
  ASSERT_EQ(ran.size(), 40u);
  std::vector<int> a, b;
  for (int id : ran) (id < 100 ? a : b).push_back(id);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(a[i], i);
    EXPECT_EQ(b[i], 100 + i);
  }
}

TEST(StatsHelper, WaitReturnsOnlyOnceTheOwnersJobsHaveRun) {
  StatsHelper* h = StatsHelper::get();
  ASSERT_NE(h, nullptr);
  Gate gate;
  std::atomic<bool> first_done{false}, second_done{false};
  const int owner = 0, other = 0;
  ASSERT_TRUE(h->post(&other, 0, [&] { gate.wait(); }));
  ASSERT_TRUE(h->post(&owner, 0, [&] { first_done = true; }));
  ASSERT_TRUE(h->post(&owner, 0, [&] { second_done = true; }));
  std::atomic<bool> returned{false};
  std::thread waiter([&] {
    h->wait(&owner);
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(returned.load());  // queued behind the other owner's job
  gate.release();
  waiter.join();
  EXPECT_TRUE(first_done.load());
  EXPECT_TRUE(second_done.load());
  StatsHelper::wait_all();
}

// Urgent jobs (the copies of a call's inputs) run before every queued job that is not urgent,
// in their own posting order, and wait(owner) counts them too.
TEST(StatsHelper, UrgentJobsRunBeforeTheQueuedOnes) {
  StatsHelper* h = StatsHelper::get();
  ASSERT_NE(h, nullptr);
  Gate gate;
  std::mutex mu;
  std::vector<int> order;
  auto job = [&](int id) {
    return [&, id] {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(id);
    };
  };
  const int owner = 0;
  ASSERT_TRUE(h->post(&owner, 0, [&] { gate.wait(); }));  // running: the rest queue behind it
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(h->post(&owner, 0, job(1)));
  ASSERT_TRUE(h->post(&owner, 0, job(2)));
  ASSERT_TRUE(h->post(&owner, 0, job(100), /*urgent=*/true));
  ASSERT_TRUE(h->post(&owner, 0, job(3)));
  ASSERT_TRUE(h->post(&owner, 0, job(101), /*urgent=*/true));
  gate.release();
  h->wait(&owner);
  EXPECT_EQ(order, (std::vector<int>{100, 101, 1, 2, 3}));
}

TEST(StatsHelper, ReserveWaitsWhileTheCopiesInFlightWouldPassTheBudget) {
  StatsHelper* h = StatsHelper::get();
  ASSERT_NE(h, nullptr);
  Gate gate;
  const int owner = 0;
  const uint64_t big = StatsHelper::kBudgetBytes - 1024;
  ASSERT_TRUE(h->post(&owner, big, [&] { gate.wait(); }));
  h->reserve(1024);  // fits beside it: returns at once
  std::atomic<bool> reserved{false};
  std::thread t([&] {
    h->reserve(4096);  // does not fit until the first job is done
    reserved = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(reserved.load());
  gate.release();
  t.join();
  EXPECT_TRUE(reserved.load());
  h->wait(&owner);
  // Larger than the budget on its own: allowed once nothing is in flight.
  h->reserve(2 * StatsHelper::kBudgetBytes);
}

TEST(StatsHelper, JobsRunCountsEveryJob) {
  StatsHelper* h = StatsHelper::get();
  ASSERT_NE(h, nullptr);
  StatsHelper::wait_all();
  const unsigned long long before = StatsHelper::jobs_run();
  const int owner = 0;
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(h->post(&owner, 0, [] {}));
  h->wait(&owner);
  EXPECT_EQ(StatsHelper::jobs_run(), before + 7);
}

TEST(StatsHelper, APooledBufferIsHandedOutAgainOnceGivenBack) {
  uint64_t cap = 0;
  unsigned char* p = StatsHelper::take_buffer(100000, &cap);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(cap, uint64_t{128} << 10);  // powers of two from 64 KiB
  p[cap - 1] = 1;                       // all of it is usable
  StatsHelper::give_buffer(p, cap);
  uint64_t cap2 = 0;
  unsigned char* q = StatsHelper::take_buffer(70000, &cap2);
  EXPECT_EQ(q, p);  // the smallest free buffer that fits
  EXPECT_EQ(cap2, cap);
  {
    PooledBuffer b(1000);
    ASSERT_FALSE(b.empty());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.floats()) % alignof(float), 0u);
  }
  StatsHelper::give_buffer(q, cap2);
}

}  // namespace
}  // namespace fpscope::probe
