// StatsHelper (stats_helper.h): one thread, a FIFO of jobs, a mutex and two condition variables.
#include "stats_helper.h"

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

#include "log.h"

namespace fpscope::probe {
namespace {

struct Job {
  const void* owner;
  uint64_t bytes;
  std::function<void()> fn;
};

struct Queue {
  std::mutex mu;
  std::condition_variable work;                         // a job was posted
  std::condition_variable done;                         // a job finished
  std::deque<Job> jobs;                                 // queued, not running
  std::deque<Job> urgent;                               // the same, run before any of `jobs`
  std::unordered_map<const void*, unsigned> per_owner;  // queued or running
  uint64_t bytes = 0;                                   // of the queued and running jobs
  unsigned active = 0;                                  // queued or running
  bool thread_started = false;
  bool failed = false;  // a thread could not be started: no helper in this process
  unsigned long long finished = 0;
};

struct BufferPool {
  std::mutex mu;
  std::vector<std::pair<uint64_t, unsigned char*>> free;  // (capacity, buffer)
  uint64_t kept = 0;
};
BufferPool* g_buffers = new BufferPool();  // never destroyed: jobs give back during exit

// Never destroyed: the thread may still wait on it while the process exits. Replaced in a forked
// child (child_after_fork), where its thread does not exist and its mutex may be held by it.
Queue* g_queue = nullptr;

void* helper_main(void* arg) {
  Queue& q = *static_cast<Queue*>(arg);
  std::unique_lock<std::mutex> lock(q.mu);
  for (;;) {
    q.work.wait(lock, [&] { return !q.jobs.empty() || !q.urgent.empty(); });
    std::deque<Job>& from = q.urgent.empty() ? q.jobs : q.urgent;
    Job job = std::move(from.front());
    from.pop_front();
    lock.unlock();
    job.fn();  // never throws (the contract); its results are read after wait()
    job.fn = nullptr;
    lock.lock();
    ++q.finished;
    q.bytes -= job.bytes;
    --q.active;
    if (--q.per_owner[job.owner] == 0) q.per_owner.erase(job.owner);
    q.done.notify_all();
  }
  return nullptr;
}

// Caller holds q.mu.
bool start_thread(Queue& q) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  // the new thread inherits the mask: no signals
  pthread_t t;
  const int rc = pthread_create(&t, nullptr, helper_main, &q);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    q.failed = true;
    log(LogLevel::Warn,
        "could not start the statistics helper thread (error %d): GEMM operands are measured on "
        "the calling thread",
        rc);
    return false;
  }
  pthread_detach(t);
  q.thread_started = true;
  return true;
}

// Nothing waits across fork() (a thread completing the runs may be waiting on the helper while
// another forks): the child drops the parent's queue, and starts a thread on its first post.
void child_after_fork() {
  g_queue =
      new Queue();  // the parent's are leaked: their mutexes may be held by a thread gone here
  g_buffers = new BufferPool();
}

}  // namespace

StatsHelper* StatsHelper::get() {
  static StatsHelper* helper = [] {
    g_queue = new Queue();
    pthread_atfork(nullptr, nullptr, child_after_fork);
    return new StatsHelper();
  }();
  return g_queue->failed ? nullptr : helper;
}

void StatsHelper::reserve(uint64_t bytes) {
  Queue& q = *g_queue;
  std::unique_lock<std::mutex> lock(q.mu);
  q.done.wait(lock, [&] { return q.active == 0 || q.bytes + bytes <= kBudgetBytes; });
}

bool StatsHelper::post(const void* owner, uint64_t bytes, std::function<void()> fn, bool urgent) {
  Queue& q = *g_queue;
  std::lock_guard<std::mutex> lock(q.mu);
  if (q.failed || (!q.thread_started && !start_thread(q))) return false;
  (urgent ? q.urgent : q.jobs).push_back(Job{owner, bytes, std::move(fn)});
  q.bytes += bytes;
  ++q.active;
  ++q.per_owner[owner];
  q.work.notify_one();
  return true;
}

void StatsHelper::wait(const void* owner) {
  Queue& q = *g_queue;
  std::unique_lock<std::mutex> lock(q.mu);
  q.done.wait(lock, [&] { return q.per_owner.find(owner) == q.per_owner.end(); });
}

void StatsHelper::wait_all() {
  if (g_queue == nullptr) return;
  Queue& q = *g_queue;
  std::unique_lock<std::mutex> lock(q.mu);
  q.done.wait(lock, [&] { return q.active == 0; });
}

unsigned char* StatsHelper::take_buffer(uint64_t bytes, uint64_t* cap) {
  BufferPool& b = *g_buffers;
  {
    std::lock_guard<std::mutex> lock(b.mu);
    auto best = b.free.end();
    for (auto it = b.free.begin(); it != b.free.end(); ++it)
      if (it->first >= bytes && (best == b.free.end() || it->first < best->first)) best = it;
    if (best != b.free.end()) {
      *cap = best->first;
      unsigned char* p = best->second;
      b.kept -= best->first;
      b.free.erase(best);
      return p;
    }
  }
  uint64_t c = uint64_t{64} << 10;
  while (c < bytes) c <<= 1;
  *cap = c;
  return new (std::nothrow) unsigned char[c];
}

void StatsHelper::give_buffer(unsigned char* p, uint64_t cap) {
  BufferPool& b = *g_buffers;
  {
    std::lock_guard<std::mutex> lock(b.mu);
    if (b.kept + cap <= kKeepBytes) {
      b.free.emplace_back(cap, p);
      b.kept += cap;
      return;
    }
  }
  delete[] p;
}

unsigned long long StatsHelper::jobs_run() {
  if (g_queue == nullptr) return 0;
  Queue& q = *g_queue;
  std::lock_guard<std::mutex> lock(q.mu);
  return q.finished;
}

}  // namespace fpscope::probe
