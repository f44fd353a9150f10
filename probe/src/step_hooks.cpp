#include "step_hooks.h"

#include <new>

#include "log.h"

namespace fpscope::probe {
namespace {

constexpr int kMaxStepHooks = 4;
std::atomic<Recorder::StepHook> g_step_hooks[kMaxStepHooks];
std::atomic<bool> g_have_step_hooks{false};
thread_local bool t_in_step_hooks = false;

}  // namespace

void StepHooks::add(Recorder::StepHook fn) {
  if (fn == nullptr) return;
  for (auto& h : g_step_hooks) {
    Recorder::StepHook expected = nullptr;
    if (h.compare_exchange_strong(expected, fn) || expected == fn) {
      g_have_step_hooks.store(true, std::memory_order_release);
      return;
    }
  }
  log(LogLevel::Error, "more than %d step hooks; one is ignored", kMaxStepHooks);
}

bool StepHooks::any() {
  return g_have_step_hooks.load(std::memory_order_acquire);
}

void StepHooks::queue(uint64_t ending, uint64_t next, bool next_sampled) {
  if (!any()) return;
  boundaries_.push_back(Boundary{ending, next, next_sampled});
  pending_.store(true, std::memory_order_release);
}

void StepHooks::run(std::mutex& mu) {
  if (!pending_.load(std::memory_order_acquire) || t_in_step_hooks) return;
  HookGuard guard;  // the hooks' own device work is not the program's
  std::lock_guard<std::mutex> order(order_);
  t_in_step_hooks = true;
  for (;;) {
    std::vector<Boundary> due;
    {
      std::lock_guard<std::mutex> lock(mu);
      due.swap(boundaries_);
      pending_.store(false, std::memory_order_release);
    }
    if (due.empty()) break;
    for (const Boundary& b : due)
      for (auto& h : g_step_hooks)
        if (Recorder::StepHook fn = h.load(std::memory_order_acquire))
          fn(b.ending, b.next, b.next_sampled);
  }
  t_in_step_hooks = false;
}

void StepHooks::reset_after_fork() {
  boundaries_.clear();
  pending_.store(false);
  new (&order_) std::mutex();
}

}  // namespace fpscope::probe
