// TraceWriter: producers encode records into a shared chunk buffer (short critical section, no
// I/O); one writer thread frames, optionally compresses, checksums and writes whole chunks.
// Size: ~750 lines: the producer side and the writer thread share the chunk buffer's locking
// protocol, which is easier to check in one file.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "codec.h"
#include "crc32c.h"
#include "fpscope/trace_io.h"

namespace fpscope::trace {
namespace {

using namespace detail;
using Clock = std::chrono::steady_clock;

// Worst-case encoded size of an observation body (see FORMAT.md "OBSERVATION").
// Format 1.3's block-format section: axis, tensor scale, mask, then per format its length and
// eight counts, two sums and a sparse scale histogram.
constexpr size_t kMaxBlockEntry =
    8 * kMaxVarint + 2 * 8 + kMaxVarint + kBlockScaleBins * (2 + kMaxVarint);
constexpr size_t kMaxObsBody = 10 * kMaxVarint + 3 * 4 + 2 * 8 + kMaxVarint +
                               kNumTargets * (1 + 3 * kMaxVarint + 8 + 4) + kMaxVarint +
                               kHistBins * (2 + kMaxVarint) + 1 + 4 + kMaxVarint +
                               kNumBlockFormats * (kMaxVarint + kMaxBlockEntry);
constexpr size_t kMaxRecordHead = 1 + kMaxVarint;

std::string errno_message(const std::string& path, const char* what, int err) {
  return path + ": " + what + ": " + std::strerror(err);
}

struct Buffer {
  std::vector<uint8_t> data;
  size_t used = 0;
  uint64_t records = 0;
  uint64_t kinds[kNumTags] = {};
  uint64_t hist_entries = 0;
  // Step range of the step-bearing records; `stepped` says there is one (a chunk whose only step
  // is 2^64-1 must not read as "no step-bearing record").
  bool stepped = false;
  uint64_t first_step = std::numeric_limits<uint64_t>::max();
  uint64_t last_step = 0;
  Clock::time_point since;

  void reset() {
    used = 0;
    records = 0;
    std::fill(std::begin(kinds), std::end(kinds), 0);
    hist_entries = 0;
    stepped = false;
    first_step = std::numeric_limits<uint64_t>::max();
    last_step = 0;
  }
  uint8_t* reserve(size_t n) {
    if (data.size() < used + n) data.resize(std::max(used + n, data.size() * 2));
    return data.data() + used;
  }
};

struct ChunkIndexEntry {
  uint64_t offset, records;
  bool stepped;
  uint64_t first_step, last_step;
};

// Everything shared between producers and the writer thread. Heap-allocated and leaked by
// abandon_after_fork(): in a forked child its mutex/condvars may be in the parent's mid-use state
// and must be neither locked nor destroyed.
struct Shared {
  std::mutex mu;
  std::condition_variable wake_writer;
  std::condition_variable progress;  // flush waiters and back-pressured producers
  Buffer current;
  std::deque<Buffer> sealed;
  std::vector<Buffer> spare;
  size_t pending_bytes = 0;  // in current + sealed
  uint32_t next_tensor = 0;
  uint64_t flush_requested = 0, flush_done = 0;
  bool sync_requested = false;
  bool stop = false;
  std::string error;  // first error, guarded by mu
};

// True when the 8 counts (one 64-byte cache line) are all zero. SSE2 is baseline on x86-64: the
// 1024-bin scan is most of an observation's encode cost, and scalar code does it at ~1 line per
// 8 cycles.
inline bool line_is_zero(const uint64_t* h) {
#if defined(__SSE2__)
  const auto* v = reinterpret_cast<const __m128i*>(h);
  const __m128i a = _mm_or_si128(_mm_loadu_si128(v), _mm_loadu_si128(v + 1));
  const __m128i b = _mm_or_si128(_mm_loadu_si128(v + 2), _mm_loadu_si128(v + 3));
  return _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_or_si128(a, b), _mm_setzero_si128())) == 0xFFFF;
#else
  uint64_t any = 0;
  for (int j = 0; j < 8; ++j) any |= h[j];
  return any == 0;
#endif
}

// Thread-local encode scratch for observations: plain bytes (no constructor/destructor).
thread_local uint8_t tls_scratch[kMaxObsBody];

class Writer final : public TraceWriter {
 public:
  Writer(std::string path, int fd, const WriterOptions& o, uint64_t offset)
      : path_(std::move(path)), fd_(fd), opt_(o), file_offset_(offset), sh_(new Shared) {
    opt_.flush_bytes = std::clamp<uint64_t>(opt_.flush_bytes, 4096, 16u << 20);
    opt_.max_pending_bytes = std::max<uint64_t>(opt_.max_pending_bytes, 4 * opt_.flush_bytes);
    thread_ = new std::thread([this] { run(); });
  }
  ~Writer() override {
    if (abandoned_.load()) return;  // leak Shared and the thread handle on purpose
    close();
    delete sh_;
  }

  uint32_t define_tensor_impl(const TensorInfo& info) {
    ByteSink b;
    b.str(info.id);
    b.str(info.name);
    b.str(info.op);
    b.u8(static_cast<uint8_t>(info.role));
    b.u8(static_cast<uint8_t>(info.dtype));
    b.varint(info.rows);
    b.varint(info.cols);
    b.varint(info.ld);
    b.svarint(info.device);
    const GemmSignature& g = info.gemm;
    b.u8(static_cast<uint8_t>(g.transa));
    b.u8(static_cast<uint8_t>(g.transb));
    for (int64_t v : {g.m, g.n, g.k, g.lda, g.ldb, g.ldc}) b.svarint(v);
    b.f64(g.alpha);
    b.f64(g.beta);
    b.svarint(g.batch);
    if (abandoned_.load(std::memory_order_relaxed)) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return abandoned_next_tensor_++;
    }
    std::unique_lock lk(sh_->mu);
    const uint32_t index = sh_->next_tensor++;
    if (failed_.load(std::memory_order_relaxed)) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return index;
    }
    uint8_t idx[kMaxVarint];
    const size_t idx_len = static_cast<size_t>(put_varint(idx, index) - idx);
    uint8_t* p = begin_record(kTagTensor, idx_len + b.s.size());
    std::memcpy(p, idx, idx_len);
    std::memcpy(p + idx_len, b.s.data(), b.s.size());
    end_record(lk, kTagTensor, idx_len + b.s.size(), std::numeric_limits<uint64_t>::max(), 0);
    return index;
  }

  // FORMAT.md 5.2, format 1.3: the block-format section after the histogram.
  static uint8_t* put_block_section(uint8_t* p, const BlockStatsSet& bs) {
    p = put_u8(p, static_cast<uint8_t>(bs.axis));
    p = put_f32(p, bs.nvfp4_tensor_scale);
    const uint32_t mask = bs.mask & kAllBlockFormats;
    p = put_varint(p, mask);
    for (int f = 0; f < kNumBlockFormats; ++f) {
      if (!(mask >> f & 1u)) continue;
      uint8_t* const len_at = p;
      p += 3;  // entry length: a three-byte padded varint (< 2^21)
      uint8_t* const body = p;
      const BlockFormatCounts& c = bs.fmt[f];
      for (uint64_t v : {c.blocks, c.elements, c.flushed, c.saturated, c.zero_blocks,
                         c.scale_underflow, c.scale_overflow, c.nan_scale})
        p = put_varint(p, v);
      p = put_f64(p, c.sum_err2);
      p = put_f64(p, c.sum_x2);
      uint32_t n = 0;
      for (int b = 0; b < kBlockScaleBins; ++b) n += bs.scale_hist[f][b] != 0;
      p = put_varint(p, n);
      int prev = 0;
      for (int b = 0; b < kBlockScaleBins; ++b) {
        const uint64_t k = bs.scale_hist[f][b];
        if (k == 0) continue;
        p = put_varint(p, static_cast<uint64_t>(b - prev));
        p = put_varint(p, k);
        prev = b;
      }
      const auto len = static_cast<uint32_t>(p - body);
      len_at[0] = static_cast<uint8_t>((len & 0x7F) | 0x80);
      len_at[1] = static_cast<uint8_t>(((len >> 7) & 0x7F) | 0x80);
      len_at[2] = static_cast<uint8_t>(len >> 14);
    }
    return p;
  }

  void observe_impl(const Observation& o) {
    if (refuse()) {
      if (!o.sketch.empty()) dropped_.fetch_add(1, std::memory_order_relaxed);  // its sketch
      return;
    }
    uint8_t* const start = tls_scratch;
    uint8_t* p = start;
    const TensorStats& s = o.stats;
    for (uint64_t v : {static_cast<uint64_t>(o.tensor), o.step, o.seq, o.stream, o.time_ns, s.count,
                       s.nan, s.pos_inf, s.neg_inf, s.zero})
      p = put_varint(p, v);
    p = put_f32(p, s.amax);
    p = put_f32(p, s.min);
    p = put_f32(p, s.max);
    p = put_f64(p, s.sum);
    p = put_f64(p, s.sum_sq);
    p = put_varint(p, kNumTargets);
    for (const FormatCounts& f : s.fmt) {
      const bool has_scale = std::bit_cast<uint32_t>(f.scale) != std::bit_cast<uint32_t>(1.0f);
      const bool has_err = std::bit_cast<uint64_t>(f.sum_err2) != 0;
      p = put_u8(p, static_cast<uint8_t>((has_scale ? 1 : 0) | (has_err ? 2 : 0)));
      p = put_varint(p, f.overflow);
      p = put_varint(p, f.underflow);
      p = put_varint(p, f.subnormal);
      if (has_err) p = put_f64(p, f.sum_err2);
      if (has_scale) p = put_f32(p, f.scale);
    }
    // Sparse histogram: count of entries, then (bin delta, count) pairs in increasing bin order.
    uint8_t* const nbins_at = p;
    p += 2;  // entry count as a two-byte padded varint (<= 1024 < 2^14)
    uint32_t nbins = 0;
    int prev = 0;
    static_assert(kHistBins % 8 == 0);
    for (int b0 = 0; b0 < kHistBins; b0 += 8) {
      // Skip empty cache lines with one OR (histograms are a few clustered bins).
      if (line_is_zero(s.hist + b0)) continue;
      for (int b = b0; b < b0 + 8; ++b) {
        const uint64_t c = s.hist[b];
        if (c == 0) continue;
        p = put_varint(p, static_cast<uint64_t>(b - prev));
        p = put_varint(p, c);
        prev = b;
        ++nbins;
      }
    }
    nbins_at[0] = static_cast<uint8_t>((nbins & 0x7F) | 0x80);
    nbins_at[1] = static_cast<uint8_t>(nbins >> 7);
    if (s.blocks.mask != 0) p = put_block_section(p, s.blocks);
    const size_t len = static_cast<size_t>(p - start);
    // Format 1.4: the value sketch, a VALUE_SKETCH record right after the observation (FORMAT.md
    // 5.8). A sketch of more buckets than the format allows is not written (counted as dropped).
    const size_t buckets = o.sketch.size();
    const bool sketch = buckets > 0 && buckets <= kMaxSketchBuckets;
    uint8_t k_head[kMaxVarint];
    const size_t k_len = sketch ? static_cast<size_t>(put_varint(k_head, buckets) - k_head) : 0;

    std::unique_lock lk(sh_->mu);
    if (failed_.load(std::memory_order_relaxed)) {
      dropped_.fetch_add(o.sketch.empty() ? 1 : 2, std::memory_order_relaxed);
      return;
    }
    if (buckets > kMaxSketchBuckets) dropped_.fetch_add(1, std::memory_order_relaxed);
    std::memcpy(begin_record(kTagObservation, len), start, len);
    sh_->current.hist_entries += nbins;
    const bool first = count_record(kTagObservation, o.step, o.step);
    if (sketch) {
      // Both records go into the buffer under this one lock, before the buffer may be sealed:
      // another thread's record can never come between them, nor a chunk boundary.
      const size_t body = k_len + 4 * buckets;
      uint8_t* q = begin_record(kTagSketch, body);
      std::memcpy(q, k_head, k_len);
      std::memcpy(q + k_len, o.sketch.data(), 4 * buckets);  // f32 little endian (codec.h)
      count_record(kTagSketch, o.step, o.step);              // its observation's step
    }
    settle(lk, first);
  }

  void step_impl(const StepMark& m) {
    if (refuse()) return;
    uint8_t buf[4 * kMaxVarint + 2];
    // A source a 1.0 reader does not know is written as the 1.0 source it refines, followed by
    // the refined source (FORMAT.md 5.3).
    const bool refined = m.source == StepSource::Framework;
    uint8_t* p = put_varint(buf, m.step);
    p = put_u8(p, static_cast<uint8_t>(refined ? StepSource::Api : m.source));
    p = put_varint(p, m.time_ns);
    p = put_varint(p, m.first_seq);
    if (refined) p = put_u8(p, static_cast<uint8_t>(m.source));
    append_small(kTagStep, buf, p, m.step);
  }

  void loss_scale_impl(const LossScaleRecord& r) {
    if (refuse()) return;
    uint8_t buf[2 * kMaxVarint + 8 + 1 + 8 + 1];
    uint8_t* p = put_varint(buf, r.step);
    p = put_f64(p, r.scale);
    p = put_u8(p, r.found_inf ? 1 : 0);
    p = put_f64(p, r.next_scale);
    p = put_u8(p, static_cast<uint8_t>(r.source));
    p = put_varint(p, r.time_ns);
    append_small(kTagLossScale, buf, p, r.step);
  }

  void loss_impl(const LossRecord& r) {
    if (refuse()) return;
    uint8_t buf[2 * kMaxVarint + 8];
    uint8_t* p = put_varint(buf, r.step);
    p = put_f64(p, r.value);
    p = put_varint(p, r.time_ns);
    // Not in the chunk's indexed step range (FORMAT.md 5.7): a 1.0 reader, which skips LOSS
    // records, computes that range without them and must find the footer's entry equal.
    const size_t len = static_cast<size_t>(p - buf);
    std::unique_lock lk(sh_->mu);
    if (failed_.load(std::memory_order_relaxed)) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::memcpy(begin_record(kTagLoss, len), buf, len);
    end_record(lk, kTagLoss, len, std::numeric_limits<uint64_t>::max(), 0);
  }

  void weight_update_impl(const WeightUpdateRecord& r) {
    if (refuse()) return;
    ByteSink b;
    b.varint(r.step);
    b.varint(r.tensor);
    b.u8(static_cast<uint8_t>(r.master_dtype));
    b.varint(r.elements);
    b.varint(r.changed);
    for (const UpdateLossCounts* c : {&r.bf16, &r.fp16}) {
      b.varint(c->stagnant);
      b.f64(c->lost_abs);
      b.f64(c->delta_abs);
    }
    b.varint(r.ratio_hist.size());
    for (const auto& [bin, count] : r.ratio_hist) {
      b.svarint(bin);
      b.varint(count);
    }
    b.varint(r.watched != 0 ? r.watched : r.elements);  // 1.2
    append_sink(kTagWeightUpdate, b, r.step);
  }

  void event_impl(const EventRecord& r) {
    if (refuse()) return;
    ByteSink b;
    b.varint(r.step);
    b.varint(r.time_ns);
    b.u8(static_cast<uint8_t>(r.level));
    b.str(r.text);
    append_sink(kTagEvent, b, r.step);
  }

  bool flush_impl(bool sync) {
    if (abandoned_.load()) return false;
    std::unique_lock lk(sh_->mu);
    if (closed_flag_.load()) return ok();  // the writer thread has exited (set under mu)
    const uint64_t gen = ++sh_->flush_requested;
    sh_->sync_requested = sh_->sync_requested || sync;
    sh_->wake_writer.notify_one();
    sh_->progress.wait(lk, [&] { return sh_->flush_done >= gen; });
    return !failed_.load();
  }

  bool close_impl() {
    if (abandoned_.load()) return false;
    std::lock_guard close_lk(close_mu_);
    if (closed_) return ok();
    {
      std::lock_guard lk(sh_->mu);
      sh_->stop = true;
      sh_->wake_writer.notify_one();
    }
    thread_->join();
    delete thread_;
    thread_ = nullptr;
    {
      // Records that raced with close() after the writer thread's last pass: count, not lose.
      std::lock_guard lk(sh_->mu);
      uint64_t late = sh_->current.records;
      for (const Buffer& b : sh_->sealed) late += b.records;
      dropped_.fetch_add(late);
    }
    if (!failed_.load()) write_footer();
    if (zctx_) ZSTD_freeCCtx(zctx_);
    zctx_ = nullptr;
    if (::close(fd_) != 0 && !failed_.load())
      set_failed(errno_message(path_, "close failed", errno));
    fd_ = -1;
    closed_ = true;
    return ok();
  }

  // Public entry points: nothing escapes (allocation failure, std::system_error) into the caller.
  uint32_t define_tensor(const TensorInfo& info) override {
    try {
      return define_tensor_impl(info);
    } catch (...) {
      dropped_.fetch_add(1);
      return fallback_tensor_.fetch_add(1) + (1u << 31);  // never a valid index of this trace
    }
  }
  void observe(const Observation& o) override {
    guard([&] { observe_impl(o); });
  }
  void step(const StepMark& m) override {
    guard([&] { step_impl(m); });
  }
  void loss_scale(const LossScaleRecord& r) override {
    guard([&] { loss_scale_impl(r); });
  }
  void weight_update(const WeightUpdateRecord& r) override {
    guard([&] { weight_update_impl(r); });
  }
  void event(const EventRecord& r) override {
    guard([&] { event_impl(r); });
  }
  void loss(const LossRecord& r) override {
    guard([&] { loss_impl(r); });
  }
  bool flush(bool sync) override {
    try {
      return flush_impl(sync);
    } catch (...) {
      return false;
    }
  }
  bool close() override {
    try {
      return close_impl();
    } catch (...) {
      return false;
    }
  }

  void abandon_after_fork() override {
    // In the child: the writer thread does not exist here, the mutex may be held by a parent
    // thread that is not here either. Touch neither; drop the child's copy of the descriptor.
    if (abandoned_.exchange(true)) return;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    thread_ = nullptr;  // leaked on purpose (std::thread's destructor would terminate)
    sh_ = nullptr;      // leaked on purpose (see Shared)
    abandoned_next_tensor_ = 0;
  }

  bool ok() const override { return !failed_.load() && !abandoned_.load(); }
  std::string error() const override {
    if (abandoned_.load()) return path_ + ": writer abandoned after fork";
    if (!failed_.load()) return std::string();
    std::lock_guard lk(sh_->mu);
    return sh_->error;
  }
  uint64_t records_written() const override { return written_.load(); }
  uint64_t records_dropped() const override { return dropped_.load(); }

 private:
  template <typename F>
  void guard(F&& f) {
    try {
      f();
    } catch (...) {
      dropped_.fetch_add(1);
    }
  }

  // True (and counts a drop) when the record must not be queued at all.
  bool refuse() {
    if (abandoned_.load(std::memory_order_relaxed) || failed_.load(std::memory_order_relaxed) ||
        closed_flag_.load(std::memory_order_relaxed)) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    return false;
  }

  // Under sh_->mu: writes the record head and returns where the body goes.
  uint8_t* begin_record(uint8_t tag, size_t body_len) {
    Buffer& b = sh_->current;
    uint8_t* p = b.reserve(kMaxRecordHead + body_len);
    uint8_t* q = put_varint(put_u8(p, tag), body_len);
    b.used += static_cast<size_t>(q - p) + body_len;
    sh_->pending_bytes += static_cast<size_t>(q - p) + body_len;
    return q;
  }

  // Under sh_->mu, after begin_record: bookkeeping, sealing, back-pressure.
  void end_record(std::unique_lock<std::mutex>& lk, uint8_t tag, size_t, uint64_t step_lo,
                  uint64_t step_hi) {
    settle(lk, count_record(tag, step_lo, step_hi));
  }

  // Under sh_->mu, after begin_record: the record's bookkeeping in the current buffer. True when
  // it is the buffer's first record.
  bool count_record(uint8_t tag, uint64_t step_lo, uint64_t step_hi) {
    Buffer& b = sh_->current;
    const bool first = b.records == 0;
    if (first) b.since = Clock::now();
    ++b.records;
    ++b.kinds[tag];
    // TENSOR has no step; LOSS has one but stays out of the indexed range (FORMAT.md 5.7).
    if (tag != kTagTensor && tag != kTagLoss) {
      b.stepped = true;
      b.first_step = std::min(b.first_step, step_lo);
      b.last_step = std::max(b.last_step, step_hi);
    }
    return first;
  }

  // Under sh_->mu, after the records of one call are counted (`first`: the buffer was empty
  // before them): sealing, back-pressure.
  void settle(std::unique_lock<std::mutex>& lk, bool first) {
    Shared& s = *sh_;
    Buffer& b = s.current;
    if (b.used >= opt_.flush_bytes) {
      s.sealed.push_back(std::move(b));
      if (!s.spare.empty()) {
        s.current = std::move(s.spare.back());
        s.spare.pop_back();
      } else {
        s.current = Buffer();
      }
      s.current.reset();
      s.wake_writer.notify_one();
    } else if (first) {
      s.wake_writer.notify_one();  // starts the writer's flush_ms timer
    }
    // Back-pressure: never let a stalled disk grow memory without bound.
    while (s.pending_bytes > opt_.max_pending_bytes && !failed_.load() && !s.stop)
      s.progress.wait(lk);
  }

  void append_small(uint8_t tag, const uint8_t* body, const uint8_t* body_end, uint64_t step) {
    const size_t len = static_cast<size_t>(body_end - body);
    std::unique_lock lk(sh_->mu);
    if (failed_.load(std::memory_order_relaxed)) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::memcpy(begin_record(tag, len), body, len);
    end_record(lk, tag, len, step, step);
  }
  void append_sink(uint8_t tag, const ByteSink& b, uint64_t step) {
    const auto* p = reinterpret_cast<const uint8_t*>(b.s.data());
    append_small(tag, p, p + b.s.size(), step);
  }

  void set_failed(std::string msg) {
    {
      std::lock_guard lk(sh_->mu);
      if (sh_->error.empty()) sh_->error = std::move(msg);
    }
    failed_.store(true);
  }

  // Writer thread only (and close() after the join).
  bool write_all(const uint8_t* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        set_failed(errno_message(path_, "write failed", errno));
        return false;
      }
      if (w == 0) {
        set_failed(path_ + ": write failed: wrote 0 bytes");
        return false;
      }
      p += w;
      n -= static_cast<size_t>(w);
      file_offset_ += static_cast<uint64_t>(w);
    }
    return true;
  }

  bool write_chunk(uint8_t type, const uint8_t* payload, size_t n) {
    uint8_t flags = 0;
    if (opt_.zstd && type == kChunkRecords) {
      if (!zctx_) zctx_ = ZSTD_createCCtx();
      const size_t bound = ZSTD_compressBound(n);
      zbuf_.resize(4 + bound);
      const size_t z = zctx_ ? ZSTD_compressCCtx(zctx_, zbuf_.data() + 4, bound, payload, n, 1)
                             : static_cast<size_t>(-1);
      if (zctx_ && !ZSTD_isError(z)) {
        const uint32_t raw = static_cast<uint32_t>(n);
        std::memcpy(zbuf_.data(), &raw, 4);
        payload = zbuf_.data();
        n = 4 + z;
        flags = kFlagZstd;
      }
    }
    uint8_t head[kChunkHead] = {type, flags, 0, 0};
    const uint32_t len = static_cast<uint32_t>(n);
    std::memcpy(head + 4, &len, 4);
    const uint32_t crc = crc32c_extend(crc32c(head, 8), payload, n);
    std::memcpy(head + 8, &crc, 4);
    // One write for head and payload where cheap: a torn write then tears one chunk only.
    return write_all(head, kChunkHead) && write_all(payload, n);
  }

  void run() {
    Shared& s = *sh_;
    std::vector<Buffer> take;
    std::unique_lock lk(s.mu);
    for (;;) {
      const auto ready = [&] {
        return s.stop || !s.sealed.empty() || s.flush_requested > s.flush_done;
      };
      if (!ready()) {
        if (s.current.records > 0) {
          s.wake_writer.wait_until(lk, s.current.since + std::chrono::milliseconds(opt_.flush_ms),
                                   ready);
        } else {
          s.wake_writer.wait(lk, [&] { return ready() || s.current.records > 0; });
          continue;
        }
      }
      const uint64_t gen = s.flush_requested;
      const bool sync = s.sync_requested;
      s.sync_requested = false;
      const bool stopping = s.stop;
      while (!s.sealed.empty()) {
        take.push_back(std::move(s.sealed.front()));
        s.sealed.pop_front();
      }
      if (s.current.records > 0) {
        take.push_back(std::move(s.current));
        if (!s.spare.empty()) {
          s.current = std::move(s.spare.back());
          s.spare.pop_back();
        } else {
          s.current = Buffer();
        }
        s.current.reset();
      }
      lk.unlock();
      for (Buffer& b : take) {
        if (!failed_.load()) {
          const uint64_t at = file_offset_;
          if (write_chunk(kChunkRecords, b.data.data(), b.used)) {
            written_.fetch_add(b.records);
            for (int k = 0; k < kNumTags; ++k) kinds_[k] += b.kinds[k];
            hist_entries_ += b.hist_entries;
            index_.push_back({at, b.records, b.stepped, b.first_step, b.last_step});
            continue;
          }
        }
        dropped_.fetch_add(b.records);
      }
      if (sync && !failed_.load() && ::fdatasync(fd_) != 0 && errno != EINVAL)
        set_failed(errno_message(path_, "fdatasync failed", errno));
      lk.lock();
      for (Buffer& b : take) {
        s.pending_bytes -= b.used;
        b.reset();
        if (s.spare.size() < 4) s.spare.push_back(std::move(b));
      }
      take.clear();
      s.flush_done = std::max(s.flush_done, gen);
      s.progress.notify_all();
      if (stopping && s.sealed.empty() && s.current.records == 0) break;
    }
    closed_flag_.store(true);
  }

  void write_footer() {
    ByteSink b;
    b.varint(kNumTags - 1);
    for (int k = 1; k < kNumTags; ++k) b.varint(kinds_[k]);
    b.varint(hist_entries_);
    b.varint(index_.size());
    for (const ChunkIndexEntry& e : index_) {
      b.varint(e.offset);
      b.varint(e.records);
      b.varint(e.stepped ? e.first_step : 0);
      b.varint(e.stepped ? e.last_step : 0);
    }
    const uint64_t at = file_offset_;
    b.s.append(reinterpret_cast<const char*>(&at), 8);
    b.s.append(reinterpret_cast<const char*>(kFooterEnd), 4);
    write_chunk(kChunkFooter, reinterpret_cast<const uint8_t*>(b.s.data()), b.s.size());
  }

  std::string path_;
  int fd_;
  WriterOptions opt_;
  uint64_t file_offset_;
  Shared* sh_;
  std::thread* thread_ = nullptr;
  std::mutex close_mu_;
  bool closed_ = false;
  std::atomic<bool> closed_flag_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> abandoned_{false};
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
  uint32_t abandoned_next_tensor_ = 0;
  std::atomic<uint32_t> fallback_tensor_{0};
  // Writer-thread state.
  ZSTD_CCtx* zctx_ = nullptr;
  std::vector<uint8_t> zbuf_;
  uint64_t kinds_[kNumTags] = {};
  uint64_t hist_entries_ = 0;
  std::vector<ChunkIndexEntry> index_;
};

}  // namespace

std::unique_ptr<TraceWriter> TraceWriter::open(const std::string& path,
                                               const std::string& metadata_json,
                                               const WriterOptions& options, std::string* error) {
  auto fail = [&](std::string msg) -> std::unique_ptr<TraceWriter> {
    if (error) *error = std::move(msg);
    return nullptr;
  };
  if (metadata_json.size() > kMaxMetadata)
    return fail(path + ": metadata JSON too large (" + std::to_string(metadata_json.size()) +
                " bytes)");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(errno_message(path, "cannot open for writing", errno));
  std::string h(reinterpret_cast<const char*>(kMagic), 8);
  const uint16_t ver[2] = {kFormatMajor, kFormatMinor};
  const uint32_t flags = 0, mlen = static_cast<uint32_t>(metadata_json.size());
  h.append(reinterpret_cast<const char*>(ver), 4);
  h.append(reinterpret_cast<const char*>(&flags), 4);
  h.append(reinterpret_cast<const char*>(&mlen), 4);
  h.append(metadata_json);
  const uint32_t crc = crc32c(h.data(), h.size());
  h.append(reinterpret_cast<const char*>(&crc), 4);
  size_t off = 0;
  while (off < h.size()) {
    const ssize_t w = ::write(fd, h.data() + off, h.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int e = w < 0 ? errno : EIO;
      ::close(fd);
      return fail(errno_message(path, "write failed", e));
    }
    off += static_cast<size_t>(w);
  }
  try {
    return std::make_unique<Writer>(path, fd, options, h.size());
  } catch (const std::exception& e) {  // std::thread creation or allocation failed
    ::close(fd);
    return fail(path + ": cannot start the trace writer: " + e.what());
  }
}

}  // namespace fpscope::trace
