// ThreadRuns (gemm_runs.h): the host hooks' per-thread runs, the reuse of recent statistics and
// the hand-off to the statistics helper.
#include "gemm_runs.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <new>
#include <utility>

#include "log.h"
#include "stats_helper.h"

namespace fpscope::probe {

void OpStats::reset() {
  for (int i = 0; i < kMaxOperands; ++i) {
    have[i] = lost[i] = false;
    parts[i] = 0;
  }
}

void OpStats::merge(int i, const TensorStats& s, const ValueSketch* sk) {
  if (!acc[i]) acc[i] = std::make_unique<TensorStats>();  // 8 KiB, off the stack
  if (have[i]) {
    acc[i]->merge(s);
  } else {
    *acc[i] = s;
    have[i] = true;
    parts[i] = 0;
    if (sketch[i]) sketch[i]->present = false;
  }
  if (sk != nullptr) {
    if (!sketch[i]) sketch[i] = std::make_unique<ValueSketch>();
    if (parts[i] == 0)
      *sketch[i] = *sk;
    else
      sketch[i]->add(*sk, parts[i]);
  }
  ++parts[i];
}

// Statistics this thread measured lately, by buffer: a GEMM often reads a buffer the previous
// GEMMs of the step read too (a weight in the forward and the input-gradient GEMM, an activation
// in the forward and the weight-gradient GEMM, the output gradient in both backward GEMMs).
// An entry is reused only for the same view, the same scales and the same contents (fingerprint,
// ~1/10 of the statistics' cost); results are identical to recomputing them. Only the operands a
// call reads (A, B) are kept and looked up: C and D are the output buffer, just written (D) or
// about to be (C), so they never match, and an output read as is by a later GEMM is rare (an
// activation or a residual comes between); on a TransformerEncoder they were 40 % of the
// fingerprinted elements for no hit. The ring must span a whole step of a model's reads: an
// activation is read by its layer's forward GEMM and again by the weight-gradient GEMM at the end
// of the backward pass, a weight by the forward and the input-gradient GEMM; a 4-layer MLP reads
// ~30 operands a step, a 4-layer TransformerEncoder ~150 plus 64 per batched attention GEMM (the
// slices of PyTorch's CPU bmm). 256 entries of ~21 KiB each (the histogram and the block-format
// scale histograms): ~5 MiB per thread that calls BLAS, allocated as they are first used (with
// 64, the weights were gone by the backward pass: 3x fewer weight hits, docs/benchmarks/probe.md).
// With block formats measured the key includes the block axis: one buffer read as A in one GEMM
// and B in another has other blocks. Without them the axis changes nothing in the statistics
// (same elements, same order) and is left out: the weight of the forward and of the
// input-gradient GEMM, read along different axes, is the typical hit (requiring the axis always
// cost every such hit: a third of the MLP sample's copies and passes). Keys are decided on the
// calling thread in call order; a slot's statistics are written by whoever measures it (the helper,
// after the jobs queued before), and read after that.
struct ThreadRuns::RecentKey {
  const void* data = nullptr;  // nullptr: empty
  uint64_t rows = 0, cols = 0, ld = 0;
  Format dtype = Format::FP32;
  uint32_t block_formats = 0;
  BlockAxis block_axis = BlockAxis::Rows;  // compared only when block_formats != 0
  float scale[kNumTargets] = {};
  uint64_t fingerprint = 0;
  bool sketch = false;
  uint64_t seq = 0;  // which filling of its slot the key stands for
};
struct ThreadRuns::RecentSlot {
  std::unique_ptr<TensorStats> stats;
  std::unique_ptr<ValueSketch> sketch;  // when FPSCOPE_SKETCH (a function of the values too)
  uint64_t filled = 0;  // the key seq its statistics are for (0: none); a failed fill keeps the old
};
constexpr int kRecent = 256;

namespace {

// Every thread's runs, for flush() and exit (and forgotten in a forked child).
std::mutex g_runs_mu;
std::vector<ThreadRuns*>& runs() {
  static auto* v = new std::vector<ThreadRuns*>();  // never destroyed: threads exit late
  return *v;
}
thread_local ThreadRuns* t_runs = nullptr;  // this thread's, once it made one
std::atomic<uint64_t> g_recent_lookups{0}, g_recent_hits{0};

void runs_prepare_fork() {
  g_runs_mu.lock();
}
void runs_parent_after_fork() {
  g_runs_mu.unlock();
}

uint64_t element_bytes(Format dtype) {
  return static_cast<uint64_t>((storage_bits(spec(dtype)) + 7) / 8);  // FP32 or BF16 here
}

void internal_error(const char* what) {
  static std::atomic<bool> once{false};
  if (!once.exchange(true))
    log(LogLevel::Error, "internal error (%s): a GEMM went unrecorded; the program runs on", what);
}

}  // namespace

void runs_child_after_fork() {
  // Only the forking thread lives on (the others' runs may be locked for ever); its run belongs
  // to the parent's trace. Nothing is constructed here: g_runs_mu is held.
  runs().clear();
  if (t_runs != nullptr) {
    runs().push_back(t_runs);
    t_runs->forget_after_fork();
  }
  g_runs_mu.unlock();
}

ThreadRuns::ThreadRuns() : keys_(new RecentKey[kRecent]), slots_(new RecentSlot[kRecent]) {
  static std::once_flag once;
  std::call_once(once, [] {
    Recorder::add_shutdown_hook(complete_all);
    Recorder::add_flush_hook(complete_all);
    pthread_atfork(runs_prepare_fork, runs_parent_after_fork, runs_child_after_fork);
  });
  op_ = take_op();
  std::lock_guard<std::mutex> lock(g_runs_mu);
  runs().push_back(this);
  t_runs = this;
}

ThreadRuns::~ThreadRuns() {
  std::lock_guard<std::mutex> lock(g_runs_mu);
  {
    std::lock_guard<std::mutex> run_lock(mu);
    complete();
    wait_jobs();  // they write into this object
  }
  auto& v = runs();
  v.erase(std::remove(v.begin(), v.end(), this), v.end());
  t_runs = nullptr;
}

uint64_t ThreadRuns::recent_lookups() {
  return g_recent_lookups.load(std::memory_order_relaxed);
}
uint64_t ThreadRuns::recent_hits() {
  return g_recent_hits.load(std::memory_order_relaxed);
}

ThreadRuns& ThreadRuns::this_thread() {
  thread_local ThreadRuns r;
  return r;
}

void ThreadRuns::complete_all() {
  {
    std::lock_guard<std::mutex> lock(g_runs_mu);
    for (ThreadRuns* r : runs()) {
      std::lock_guard<std::mutex> run_lock(r->mu);
      r->complete();
    }
  }
  StatsHelper::wait_all();  // the completions handed to the helper have reached the recorder
}

OpStats* ThreadRuns::take_op() {
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (!free_ops_.empty()) {
    OpStats* op = free_ops_.back();
    free_ops_.pop_back();
    return op;
  }
  all_ops_.push_back(std::make_unique<OpStats>());
  return all_ops_.back().get();
}

void ThreadRuns::give_back(OpStats* op) {
  op->reset();
  std::lock_guard<std::mutex> lock(pool_mu_);
  free_ops_.push_back(op);
}

void ThreadRuns::wait_jobs() {
  if (!posted_) return;
  StatsHelper::get()->wait(this);  // not nullptr: it took jobs
  posted_ = false;
}

const GemmTicket& ThreadRuns::begin(Recorder* rec, const GemmDesc& d, const std::string& scope) {
  if (!(rec_ == rec && run_.extend(d, scope))) {  // not the next call of a batch
    complete();
    rec_ = rec;
    ticket_ = rec->begin_gemm(d);
    run_.start(d, scope);
    helper_ = rec->stats_helper() && StatsHelper::get() != nullptr;
  }
  return ticket_;
}

void ThreadRuns::before_call(const GemmDesc& d) {
  in_call_ = helper_;  // A and B: copied by the helper while the call runs
  measure(0, d);
  measure(1, d);
  in_call_ = false;
  if (d.num_operands == 4) measure(2, d);
}

void ThreadRuns::after_call(const GemmDesc& d) {
  settle_copies();
  measure(d.num_operands - 1, d);
}

ThreadRuns::CallCopy::CallCopy(const unsigned char* src, unsigned char* dst, uint64_t rows,
                               uint64_t cols, uint64_t ld, uint64_t elem)
    : src_(src), dst_(dst), rows_(rows), cols_(cols), ld_(ld), elem_(elem) {}

void ThreadRuns::CallCopy::run() noexcept {
  int pending = kPending;
  if (!state_.compare_exchange_strong(pending, kTaken, std::memory_order_acquire)) return;
  const uint64_t col = rows_ * elem_;
  if (ld_ == rows_ || cols_ == 1) {
    std::memcpy(dst_, src_, col * cols_);
  } else {
    for (uint64_t c = 0; c < cols_; ++c) std::memcpy(dst_ + c * col, src_ + c * ld_ * elem_, col);
  }
  state_.store(kDone, std::memory_order_release);
  state_.notify_all();
}

void ThreadRuns::CallCopy::wait_done() noexcept {
  for (int v = state_.load(std::memory_order_acquire); v != kDone;
       v = state_.load(std::memory_order_acquire))
    state_.wait(v, std::memory_order_acquire);
}

void ThreadRuns::settle_copies() noexcept {
  for (int k = 0; k < num_in_flight_; ++k) {
    in_flight_[k]->run();  // returns at once when the helper took it
    in_flight_[k]->wait_done();
    in_flight_[k].reset();
  }
  num_in_flight_ = 0;
}

void ThreadRuns::measure_guarded(OpStats* op, int i, const OperandDesc& o, const StatsOptions& opt,
                                 bool sketch, const void* data, RecentSlot* slot, uint64_t seq) {
  try {
    measure_now(op, i, o, opt, sketch, data, slot, seq);
  } catch (const std::exception& e) {  // out of memory: this operand's record is lost
    op->lost[i] = true;
    internal_error(e.what());
  }
}

void ThreadRuns::measure_now(OpStats* op, int i, const OperandDesc& o, const StatsOptions& opt,
                             bool sketch, const void* data, RecentSlot* slot, uint64_t seq) {
  thread_local std::unique_ptr<TensorStats> scratch;  // 8 KiB, off the stack
  thread_local std::unique_ptr<ValueSketch> scratch_sketch;
  std::unique_ptr<TensorStats>& stats = slot != nullptr ? slot->stats : scratch;
  std::unique_ptr<ValueSketch>& sk = slot != nullptr ? slot->sketch : scratch_sketch;
  if (!stats) stats = std::make_unique<TensorStats>();
  compute_stats(data, o.dtype, o.rows, o.cols, o.ld, opt, stats.get());
  if (sketch) {
    if (!sk) sk = std::make_unique<ValueSketch>();  // 2 KiB, off the stack
    compute_sketch(data, o.dtype, o.rows, o.cols, o.ld, sk.get());
  }
  if (slot != nullptr) slot->filled = seq;
  op->merge(i, *stats, sketch ? sk.get() : nullptr);
}

void ThreadRuns::measure(int i, const GemmDesc& d) {
  if (!ticket_.sampled[i]) return;
  const OperandDesc& o = d.operands[i];
  const void* data = o.data;
  if (data == nullptr) {
    wait_jobs();  // lost[] is also written by a job that runs out of memory
    op_->lost[i] = true;
    return;
  }
  Recorder* rec = rec_;
  StatsOptions opt;
  opt.threads = rec->stats_threads();
  const float amax =
      rec->fp8_needs_amax() ? compute_amax(data, o.dtype, o.rows, o.cols, o.ld) : -1.0f;
  rec->stats_scales(ticket_, i, amax < 0.0f ? 0.0f : amax, opt.scale);
  opt.block_formats = rec->block_formats();
  opt.block_axis = o.block_axis;
  opt.tensor_amax = amax;  // < 0: compute_stats finds it when NVFP4 is on
  const bool sketch = rec->sketch();

  RecentSlot* slot = nullptr;
  uint64_t seq = 0;
  if (o.role == trace::Role::A || o.role == trace::Role::B) {
    g_recent_lookups.fetch_add(1, std::memory_order_relaxed);
    const uint64_t fp = content_fingerprint(data, o.dtype, o.rows, o.cols, o.ld);
    for (int k = 0; k < kRecent; ++k) {
      const RecentKey& r = keys_[k];
      if (r.data == data && r.rows == o.rows && r.cols == o.cols && r.ld == o.ld &&
          r.dtype == o.dtype && r.block_formats == opt.block_formats &&
          (opt.block_formats == 0 || r.block_axis == o.block_axis) && r.fingerprint == fp &&
          std::memcmp(r.scale, opt.scale, sizeof opt.scale) == 0 && (!sketch || r.sketch)) {
        g_recent_hits.fetch_add(1, std::memory_order_relaxed);
        RecentSlot* hit = &slots_[k];
        OpStats* op = op_;
        const uint64_t filling = r.seq;
        auto merge = [op, i, hit, sketch, filling] {
          if (hit->filled == filling)
            op->merge(i, *hit->stats, sketch ? hit->sketch.get() : nullptr);
          else
            op->lost[i] = true;  // its filling job ran out of memory
        };
        if (helper_ && StatsHelper::get()->post(this, 0, merge)) {
          posted_ = op_posted_ = true;
        } else {
          wait_jobs();
          merge();
        }
        return;
      }
    }
    RecentKey& r = keys_[next_slot_];
    slot = &slots_[next_slot_];
    next_slot_ = (next_slot_ + 1) % kRecent;
    r.data = data;
    r.rows = o.rows;
    r.cols = o.cols;
    r.ld = o.ld;
    r.dtype = o.dtype;
    r.block_formats = opt.block_formats;
    r.block_axis = o.block_axis;
    std::memcpy(r.scale, opt.scale, sizeof opt.scale);
    r.fingerprint = fp;
    r.sketch = sketch;
    r.seq = seq = next_seq_++;
  }

  // The copy holds the view packed (ld = rows): a strided slice (an attention head of a packed
  // projection) would otherwise carry every column's gap too (12x the view's bytes on a
  // TransformerEncoder's bmm slices). The pass visits the same elements in the same order.
  const uint64_t elem = element_bytes(o.dtype);
  const uint64_t bytes = o.rows * o.cols * elem;
  if (helper_ && bytes > 0 && bytes <= kMaxHelperCopy) {
    StatsHelper* h = StatsHelper::get();
    h->reserve(bytes);
    uint64_t cap = 0;
    unsigned char* copy = StatsHelper::take_buffer(bytes, &cap);
    if (copy != nullptr) {
      OperandDesc packed = o;
      packed.ld = o.rows;
      auto task = std::make_shared<CallCopy>(static_cast<const unsigned char*>(data), copy, o.rows,
                                             o.cols, o.ld, elem);
      // An input, before the call: the helper copies it while the call runs (after_call waits
      // for it, or makes it itself when the helper has not started it). Else copied now.
      if (in_call_ && h->post(
                          this, 0, [task] { task->run(); }, /*urgent=*/true))
        in_flight_[num_in_flight_++] = task;  // room for every operand: never allocates
      else
        task->run();
      OpStats* op = op_;
      auto job = [op, i, packed, opt, sketch, copy, cap, slot, seq, task] {
        task->wait_done();  // the caller may be making it
        measure_guarded(op, i, packed, opt, sketch, copy, slot, seq);
        StatsHelper::give_buffer(copy, cap);
      };
      if (h->post(this, bytes, job)) {
        posted_ = op_posted_ = true;
        return;
      }
      settle_copies();  // no helper after all: nothing may still write into the buffer
      StatsHelper::give_buffer(copy, cap);
    }
  }
  wait_jobs();  // the helper's jobs of this op (and slots) come first
  measure_now(op_, i, o, opt, sketch, data, slot, seq);  // throws: the slot stays unfilled
}

void ThreadRuns::complete() {
  const bool write = run_.active() && ticket_.any && rec_ != nullptr && Recorder::get() == rec_;
  if (write) rec_->end_batch(&ticket_, run_.count());  // the tensors, with the batch in them
  if (write || op_posted_) {
    // The observations are written once every job merging into the op has run: by the helper,
    // after them, when it has any queued; else here.
    Recorder* rec = rec_;
    const GemmTicket ticket = ticket_;
    OpStats* op = op_;
    auto finish = [this, rec, ticket, op, write] {
      try {
        if (write && Recorder::get() == rec) {
          for (int i = 0; i < kMaxOperands; ++i) {
            if (!ticket.sampled[i]) continue;
            if (op->have[i] && !op->lost[i]) {
              std::vector<float> sk;
              if (op->sketch[i] && op->sketch[i]->present)
                sk.assign(op->sketch[i]->v, op->sketch[i]->v + kSketchBuckets);
              rec->complete(ticket, i, *op->acc[i], sk);
            } else {
              rec->abandon(ticket, i);
            }
          }
        }
      } catch (const std::exception& e) {
        internal_error(e.what());
      }
      give_back(op);
    };
    // Posted after any queued job of this thread, so that the recorder gets the ops in call order.
    if (!(posted_ && StatsHelper::get()->post(this, 0, finish))) {
      wait_jobs();
      finish();
    }
    op_ = take_op();
    op_posted_ = false;
  } else {
    op_->reset();
  }
  run_.clear();
  ticket_ = GemmTicket{};
}

void ThreadRuns::forget_after_fork() {
  // The parent's queue is gone here (stats_helper.h): what its jobs were writing is dropped, the
  // pool's lock may be held by the parent's helper, the recent keys promise statistics no job
  // will write.
  posted_ = op_posted_ = false;
  new (&pool_mu_) std::mutex();
  free_ops_.clear();  // no job runs here: every op is free
  for (auto& op : all_ops_) {
    op->reset();
    free_ops_.push_back(op.get());
  }
  op_ = take_op();
  for (int k = 0; k < kRecent; ++k) keys_[k].data = nullptr;
  run_.clear();
  ticket_ = GemmTicket{};
}

}  // namespace fpscope::probe
