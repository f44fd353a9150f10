// read_trace: mmap the file, validate the header, then walk the chunks in order, checking every
// length against what is left and every CRC before decoding; stop at the first bad chunk. Also the
// parts TraceFile shares (reader_internal.h): mapping, header, footer, payloads, field decoders.
// Size: ~780 lines: the chunk walk and every record decoder, kept together so that one file shows
// every length check the reader makes on hostile input (expansion limits: expansion.cpp).
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>

#include "codec.h"
#include "crc32c.h"
#include "fpscope/trace_io.h"
#include "reader_internal.h"

namespace fpscope::trace {

using namespace detail;

const char* role_name(Role r) {
  switch (r) {
    case Role::A:
      return "A";
    case Role::B:
      return "B";
    case Role::C:
      return "C";
    case Role::D:
      return "D";
    case Role::Weight:
      return "W";
  }
  return "?";
}

const char* step_source_name(StepSource s) {
  switch (s) {
    case StepSource::None:
      return "none";
    case StepSource::Api:
      return "api";
    case StepSource::Nvtx:
      return "nvtx";
    case StepSource::LossScaleKernel:
      return "loss_scale_kernel";
    case StepSource::OptimizerKernel:
      return "optimizer_kernel";
    case StepSource::GemmPeriod:
      return "gemm_period";
    case StepSource::Framework:
      return "framework";
  }
  return "?";
}

TensorStats Trace::full_stats(const ObservationRecord& rec) const {
  const BlockStatsRecord* b = nullptr;
  if (!block_stats.empty() && &rec >= observations.data() &&
      &rec < observations.data() + observations.size())
    b = blocks_of(static_cast<size_t>(&rec - observations.data()));
  return expand_stats(rec, hist_bins, hist_counts, b);
}

const BlockStatsRecord* Trace::blocks_of(size_t obs) const {
  return find_of_observation(block_stats, obs);
}

const SketchRecord* Trace::sketch_of(size_t obs) const {
  return find_of_observation(sketches, obs);
}

namespace detail {

MappedFile::~MappedFile() {
  if (data) ::munmap(const_cast<uint8_t*>(data), size);
}

bool map_file(const std::string& path, bool populate, MappedFile* m, ReadError* err) {
  auto error = [&](ReadErrorKind kind, const std::string& msg) {
    if (err) {
      err->kind = kind;
      err->message = path + ": " + msg;
    }
    return false;
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    return error(e == ENOENT ? ReadErrorKind::NotFound : ReadErrorKind::Io,
                 std::string("cannot open: ") + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return error(ReadErrorKind::Io, std::string("cannot stat: ") + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return error(ReadErrorKind::Io, "not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size > 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      return error(ReadErrorKind::Io, std::string("cannot map: ") + std::strerror(e));
    }
    if (populate) ::madvise(p, size, MADV_SEQUENTIAL);
    m->data = static_cast<const uint8_t*>(p);
    m->size = size;
  }
  ::close(fd);
  return true;
}

bool parse_header(const std::string& path, const uint8_t* base, size_t size, Header* h,
                  ReadError* err) {
  auto error = [&](ReadErrorKind kind, const std::string& msg) {
    if (err) {
      err->kind = kind;
      err->message = path + ": " + msg;
    }
    return false;
  };
  const size_t mcmp = std::min<size_t>(size, 8);
  if (size == 0 || std::memcmp(base, kMagic, mcmp) != 0)
    return error(ReadErrorKind::NotATrace, "not an fpscope trace (bad magic)");
  if (size < 12) return error(ReadErrorKind::CorruptHeader, "truncated header");
  std::memcpy(&h->major, base + 8, 2);
  std::memcpy(&h->minor, base + 10, 2);
  if (h->major != kFormatMajor)
    return error(ReadErrorKind::UnsupportedVersion,
                 "trace format version " + std::to_string(h->major) + "." +
                     std::to_string(h->minor) + " is not supported (this reader reads " +
                     std::to_string(kFormatMajor) + ".x)");
  if (size < kHeaderFixed + 4) return error(ReadErrorKind::CorruptHeader, "truncated header");
  uint32_t meta_len = 0;
  std::memcpy(&meta_len, base + 16, 4);
  if (meta_len > size - kHeaderFixed - 4)
    return error(ReadErrorKind::CorruptHeader, "truncated header (metadata runs past the end)");
  h->end = kHeaderFixed + meta_len + 4;
  uint32_t hcrc = 0;
  std::memcpy(&hcrc, base + h->end - 4, 4);
  if (crc32c(base, h->end - 4) != hcrc)
    return error(ReadErrorKind::CorruptHeader, "header checksum mismatch");
  h->metadata = base + kHeaderFixed;
  h->metadata_len = meta_len;
  return true;
}

const char* parse_footer(const uint8_t* p, size_t n, uint64_t at, int known, Footer* f) {
  *f = Footer();
  Cursor c{p, p + n};
  const uint64_t nk = c.varint();
  if (!c.ok || nk > c.left()) return "malformed footer (record-kind totals)";
  for (uint64_t k = 0; k < nk && c.ok; ++k) {
    const uint64_t v = c.varint();
    if (k + 1 < static_cast<uint64_t>(known)) {
      f->kinds[k + 1] = v;
    } else if (f->later_kinds > kNoStep - v) {
      return "malformed footer (totals overflow)";
    } else {
      f->later_kinds += v;
    }
  }
  f->hist_entries = c.varint();
  const uint64_t chunks = c.varint();
  // Each entry takes at least 4 bytes: never reserve more than the payload could hold.
  if (!c.ok || chunks > c.left() / 4) return "malformed footer (chunk index)";
  f->index.resize(static_cast<size_t>(chunks));
  for (FooterIndexEntry& e : f->index) {
    e.offset = c.varint();
    e.records = c.varint();
    e.first_step = c.varint();
    e.last_step = c.varint();
  }
  // Later minors may append fields here: footer_offset and FEND are the payload's last 12 bytes.
  if (!c.ok || c.left() < 12) return "malformed footer (truncated)";
  uint64_t self = 0;
  std::memcpy(&self, p + n - 12, 8);
  if (std::memcmp(p + n - 4, kFooterEnd, 4) != 0) return "malformed footer (no FEND marker)";
  if (self != at) return "malformed footer (footer_offset is not the footer's offset)";
  return nullptr;
}

bool locate_footer(const uint8_t* base, size_t size, size_t header_end, int known, Footer* f,
                   uint64_t* at, std::string* why) {
  if (size < header_end + kChunkHead + 12) {
    *why = "no footer (file too short)";
    return false;
  }
  if (std::memcmp(base + size - 4, kFooterEnd, 4) != 0) {
    *why = "no footer (the file does not end with FEND)";
    return false;
  }
  uint64_t off = 0;
  std::memcpy(&off, base + size - 12, 8);
  if (off < header_end || off > size - kChunkHead - 12) {
    *why = "footer_offset " + std::to_string(off) + " is outside the chunk area";
    return false;
  }
  const uint8_t* h = base + off;
  uint32_t len = 0, crc = 0;
  std::memcpy(&len, h + 4, 4);
  std::memcpy(&crc, h + 8, 4);
  if (h[0] != kChunkFooter || h[1] != 0 || len != size - off - kChunkHead) {
    *why = "footer_offset " + std::to_string(off) + " does not point at the closing FOOTER chunk";
    return false;
  }
  if (crc32c_extend(crc32c(h, 8), h + kChunkHead, len) != crc) {
    *why = "footer checksum mismatch";
    return false;
  }
  if (const char* bad = parse_footer(h + kChunkHead, len, off, known, f)) {
    *why = bad;
    return false;
  }
  *at = off;
  return true;
}

const char* PayloadReader::checked(const uint8_t* h, const uint8_t** payload, size_t* n,
                                   bool verify_crc) {
  uint32_t len = 0, crc = 0;
  std::memcpy(&len, h + 4, 4);
  std::memcpy(&crc, h + 8, 4);
  const uint8_t* p = h + kChunkHead;
  if (verify_crc && crc32c_extend(crc32c(h, 8), p, len) != crc) return "checksum mismatch";
  if (!(h[1] & kFlagZstd)) {
    *payload = p;
    *n = len;
    return nullptr;
  }
  uint32_t raw_len = 0;
  if (len < 4) return "compressed chunk without its size";
  std::memcpy(&raw_len, p, 4);
  if (raw_len > kMaxChunkRaw) return "decompressed size over the 64 MiB limit";
  if (!zctx_) zctx_ = ZSTD_createDCtx();
  if (!zctx_) return "zstd decompression failed (no context)";
  if (raw_.size() < raw_len) raw_.resize(raw_len);
  const size_t got = ZSTD_decompressDCtx(zctx_, raw_.data(), raw_len, p + 4, len - 4);
  if (ZSTD_isError(got) || got != raw_len) return "zstd decompression failed";
  *payload = raw_.data();
  *n = raw_len;
  return nullptr;
}

const char* decode_tensor(Cursor& r, uint64_t expected_index, TensorInfo* ti) {
  const uint64_t index = r.varint();
  ti->id = r.str();
  ti->name = r.str();
  ti->op = r.str();
  const uint8_t role = r.u8();
  const uint8_t dtype = r.u8();
  ti->rows = r.varint();
  ti->cols = r.varint();
  ti->ld = r.varint();
  const int64_t device = r.svarint();
  GemmSignature& g = ti->gemm;
  g.transa = static_cast<char>(r.u8());
  g.transb = static_cast<char>(r.u8());
  for (int64_t* v : {&g.m, &g.n, &g.k, &g.lda, &g.ldb, &g.ldc}) *v = r.svarint();
  g.alpha = r.f64();
  g.beta = r.f64();
  g.batch = r.svarint();
  if (!r.ok) return "truncated tensor definition";
  if (index != expected_index) return "tensor definitions out of order";
  if (index >= kMaxTensors) return "more than 2^32-1 tensor definitions (the reader's limit)";
  if (role > kMaxRole) return "tensor definition with an unknown role";
  if (dtype >= kNumFormats) return "tensor definition with an unknown dtype";
  if (device < std::numeric_limits<int32_t>::min() || device > std::numeric_limits<int32_t>::max())
    return "tensor definition with a device out of range";
  ti->index = static_cast<uint32_t>(index);
  ti->role = static_cast<Role>(role);
  ti->dtype = static_cast<Format>(dtype);
  ti->device = static_cast<int32_t>(device);
  return nullptr;
}

const char* decode_step(Cursor& r, StepMark* m) {
  m->step = r.varint();
  const uint8_t src = r.u8();
  m->time_ns = r.varint();
  m->first_seq = r.varint();
  if (!r.ok) return "truncated step mark";
  if (src > kMaxStepSource) return "step mark with an unknown source";
  m->source = static_cast<StepSource>(src);
  // 1.1: a refined source may follow; one this reader does not know keeps `source` (FORMAT.md 5.3).
  if (r.left() > 0) {
    const uint8_t refined = r.u8();
    if (refined <= kMaxRefinedStepSource) m->source = static_cast<StepSource>(refined);
  }
  return nullptr;
}

const char* decode_loss(Cursor& r, LossRecord* l) {
  l->step = r.varint();
  l->value = r.f64();
  l->time_ns = r.varint();
  if (!r.ok) return "truncated loss record";
  return nullptr;
}

const char* decode_loss_scale(Cursor& r, LossScaleRecord* l) {
  l->step = r.varint();
  l->scale = r.f64();
  const uint8_t inf = r.u8();
  l->next_scale = r.f64();
  const uint8_t src = r.u8();
  l->time_ns = r.varint();
  if (!r.ok) return "truncated loss-scale record";
  if (inf > 1) return "loss-scale record with a bad found_inf flag";
  if (src > kMaxLossScaleSource) return "loss-scale record with an unknown source";
  l->found_inf = inf != 0;
  l->source = static_cast<LossScaleSource>(src);
  return nullptr;
}

const char* decode_weight_update(Cursor& r, uint64_t tensors_defined, WeightUpdateRecord* w) {
  w->step = r.varint();
  const uint64_t tensor = r.varint();
  const uint8_t dtype = r.u8();
  w->elements = r.varint();
  w->changed = r.varint();
  for (UpdateLossCounts* c : {&w->bf16, &w->fp16}) {
    c->stagnant = r.varint();
    c->lost_abs = r.f64();
    c->delta_abs = r.f64();
  }
  const uint64_t n = r.varint();
  if (!r.ok) return "truncated weight-update record";
  if (tensor >= tensors_defined) return "weight update of an undefined tensor";
  if (dtype >= kNumFormats) return "weight update with an unknown dtype";
  if (n > r.left() / 2) return "weight-update histogram longer than its record";
  w->tensor = static_cast<uint32_t>(tensor);
  w->master_dtype = static_cast<Format>(dtype);
  w->ratio_hist.reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) {
    const int64_t bin = r.svarint();
    const uint64_t count = r.varint();
    if (!r.ok || bin < std::numeric_limits<int16_t>::min() ||
        bin > std::numeric_limits<int16_t>::max())
      return "malformed weight-update histogram";
    w->ratio_hist.emplace_back(static_cast<int16_t>(bin), count);
  }
  w->watched = w->elements;  // before 1.2: the whole tensor
  if (r.left() > 0) {
    const uint64_t watched = r.varint();
    if (!r.ok) return "truncated weight-update record";
    if (watched == 0 || watched > w->elements)
      return "weight update watching 0 or too many elements";
    w->watched = watched;
  }
  return nullptr;
}

const char* decode_event(Cursor& r, EventRecord* e) {
  e->step = r.varint();
  e->time_ns = r.varint();
  const uint8_t level = r.u8();
  e->text = r.str();
  if (!r.ok) return "truncated event";
  if (level > kMaxEventLevel) return "event with an unknown level";
  e->level = static_cast<EventLevel>(level);
  return nullptr;
}

const char* scan_records(const uint8_t* p, size_t n, int known, std::vector<TensorInfo>* tensors,
                         ChunkSummary* sum, uint64_t* unknown_records) {
  return for_each_record(p, n, known, sum, [&](uint8_t tag, Cursor& r) -> const char* {
    if (tag >= known) {
      ++*unknown_records;
      return nullptr;
    }
    switch (tag) {
      case kTagTensor: {
        TensorInfo& ti = tensors->emplace_back();
        if (const char* bad = decode_tensor(r, tensors->size() - 1, &ti)) {
          tensors->pop_back();
          return bad;
        }
        break;
      }
      case kTagObservation: {
        const uint64_t tensor = r.varint();
        const uint64_t step = r.varint();
        if (!r.ok) return "truncated observation";
        if (tensor >= tensors->size()) return "observation of an undefined tensor";
        sum->saw_step(step);
        break;
      }
      case kTagWeightUpdate: {
        const uint64_t step = r.varint();
        const uint64_t tensor = r.varint();
        if (!r.ok) return "truncated weight-update record";
        if (tensor >= tensors->size()) return "weight update of an undefined tensor";
        sum->saw_step(step);
        break;
      }
      case kTagLoss:    // not in the indexed step range (FORMAT.md 5.7)
      case kTagSketch:  // its observation's step (FORMAT.md 5.8); checked when decoded
        break;
      case kTagStep:
      case kTagLossScale:
      case kTagEvent: {
        const uint64_t step = r.varint();
        if (!r.ok) return "truncated record";
        sum->saw_step(step);
        break;
      }
      default:
        ++*unknown_records;
        break;
    }
    return nullptr;
  });
}

}  // namespace detail

namespace {

// Sizes of every vector of a Trace, to roll back a chunk that turned out malformed. `hist` is
// passed in: with a histogram thread the pool is that thread's until it is joined.
struct Marks {
  size_t tensors, observations, hist, steps, loss_scales, weight_updates, events, losses,
      block_stats, sketches;
  uint64_t unknown_records;
  Marks(const Trace& t, size_t hist_entries, uint64_t unknown)
      : tensors(t.tensors.size()),
        observations(t.observations.size()),
        hist(hist_entries),
        steps(t.steps.size()),
        loss_scales(t.loss_scales.size()),
        weight_updates(t.weight_updates.size()),
        events(t.events.size()),
        losses(t.losses.size()),
        block_stats(t.block_stats.size()),
        sketches(t.sketches.size()),
        unknown_records(unknown) {}
  void restore(Trace* t, bool hist_too) const {
    t->tensors.resize(tensors);
    t->observations.resize(observations);
    if (hist_too) {
      t->hist_bins.resize(hist);
      t->hist_counts.resize(hist);
    }
    t->steps.resize(steps);
    t->loss_scales.resize(loss_scales);
    t->weight_updates.resize(weight_updates);
    t->events.resize(events);
    t->losses.resize(losses);
    t->block_stats.resize(block_stats);
    t->sketches.resize(sketches);
  }
};

struct ReadChunk {
  uint64_t offset;
  ChunkSummary sum;
  Marks before;  // the Trace's sizes before this chunk
};

// The histogram thread: decodes the histograms of whole, already validated RECORDS chunks into
// Trace::hist_bins/hist_counts, in chunk order, while the caller's thread decodes the rest. It
// owns those two vectors until join(). A malformed histogram makes its chunk the first bad one.
class HistThread {
 public:
  struct Batch {
    size_t chunk = 0;  // index into the read chunks
    std::vector<HistJob> jobs;
    std::vector<uint8_t> raw;  // the decompressed payload the jobs point into (zstd chunks)
  };

  explicit HistThread(Trace* out) : out_(out), thread_([this] { run(); }) {}
  ~HistThread() { join(); }

  void push(Batch&& b) {
    std::unique_lock lk(mu_);
    space_.wait(lk, [&] { return queue_.size() < kMaxQueued; });
    queue_.push_back(std::move(b));
    work_.notify_one();
  }
  void join() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lk(mu_);
      done_ = true;
      work_.notify_one();
    }
    thread_.join();
  }
  // After join(): the first chunk whose histograms failed, and why.
  bool failed() const { return failed_; }
  size_t failed_chunk() const { return failed_chunk_; }
  const char* why() const { return why_; }
  bool out_of_memory() const { return oom_; }

 private:
  static constexpr size_t kMaxQueued = 8;  // bounds the decompressed buffers held

  void run() {
    for (;;) {
      Batch b;
      {
        std::unique_lock lk(mu_);
        work_.wait(lk, [&] { return done_ || !queue_.empty(); });
        if (queue_.empty()) return;
        b = std::move(queue_.front());
        queue_.pop_front();
        space_.notify_one();
      }
      if (!failed_) decode(b);
    }
  }

  void decode(const Batch& b) {
    const size_t start = out_->hist_bins.size();
    try {
      for (const HistJob& j : b.jobs) {
        Cursor r{j.p, j.end};
        if (const char* bad = decode_histogram(r, j.nbins, bins_, counts_)) {
          fail(b.chunk, bad, start);
          return;
        }
        out_->hist_bins.insert(out_->hist_bins.end(), bins_, bins_ + j.nbins);
        out_->hist_counts.append(counts_, j.nbins);
      }
    } catch (const std::bad_alloc&) {
      oom_ = true;
      fail(b.chunk, "out of memory", start);
    }
  }
  void fail(size_t chunk, const char* why, size_t start) {
    failed_ = true;
    failed_chunk_ = chunk;
    why_ = why;
    out_->hist_bins.resize(start);
    out_->hist_counts.resize(start);
  }

  Trace* out_;
  std::mutex mu_;
  std::condition_variable work_, space_;
  std::deque<Batch> queue_;
  bool done_ = false;
  // Written by the thread, read after join().
  bool failed_ = false, oom_ = false;
  size_t failed_chunk_ = 0;
  const char* why_ = nullptr;
  uint16_t bins_[kHistBins];
  uint64_t counts_[kHistBins];
  std::thread thread_;  // last: starts after everything above exists
};

// Why a footer read in the walk does not describe the chunks before it (empty: it does).
std::string footer_mismatch(const Footer& f, const Trace& t, uint64_t unknown_records,
                            const std::vector<ReadChunk>& chunks) {
  if (f.kinds[kTagTensor] != t.tensors.size() ||
      f.kinds[kTagObservation] != t.observations.size() || f.kinds[kTagStep] != t.steps.size() ||
      f.kinds[kTagLossScale] != t.loss_scales.size() ||
      f.kinds[kTagWeightUpdate] != t.weight_updates.size() ||
      f.kinds[kTagEvent] != t.events.size() || f.kinds[kTagLoss] != t.losses.size() ||
      f.kinds[kTagSketch] != t.sketches.size() || f.hist_entries != t.hist_bins.size() ||
      f.later_kinds != unknown_records)
    return "footer totals do not match the records read";
  if (f.index.size() != chunks.size())
    return "footer index lists " + std::to_string(f.index.size()) + " chunks, the file has " +
           std::to_string(chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    const FooterIndexEntry& e = f.index[i];
    if (e.offset != chunks[i].offset || !chunks[i].sum.matches(e))
      return "footer index entry " + std::to_string(i) + " does not match the chunk at offset " +
             std::to_string(chunks[i].offset);
  }
  return std::string();
}

// Traces at least this large get a histogram thread under ReadOptions::threads == 0.
constexpr size_t kThreadedBytes = 8u << 20;

bool read_impl(const std::string& path, Trace* out, ReadError* err, const ReadOptions& opt) {
  *out = Trace();
  out->path = path;
  MappedFile map;
  if (!map_file(path, true, &map, err)) return false;
  out->file_bytes = map.size;
  const uint8_t* const base = map.data;
  const size_t size = map.size;

  Header hdr;
  if (!parse_header(path, base, size, &hdr, err)) return false;
  out->version_major = hdr.major;
  out->version_minor = hdr.minor;
  out->metadata_json.assign(reinterpret_cast<const char*>(hdr.metadata), hdr.metadata_len);
  const size_t header_end = hdr.end;
  ExpansionBudget budget;
  if (!expansion_budget(path, size, opt, &budget, err) ||
      !check_expansion(path, base, size, header_end, budget, err))
    return false;

  // ---- footer (from the end) only to size the vectors; verified again in the walk ----
  Footer hint;
  uint64_t hint_at = 0;
  std::string hint_why;
  const int tags_known = known_tags(hdr.minor);
  if (locate_footer(base, size, header_end, tags_known, &hint, &hint_at, &hint_why)) {
    // Never reserve beyond what the file's bytes could encode: a tensor definition takes at
    // least 32 bytes, an observation 40, a histogram entry 2 (uncompressed; a compressed trace
    // whose totals exceed this just grows its vectors).
    out->tensors.reserve(
        static_cast<size_t>(std::min<uint64_t>(hint.kinds[kTagTensor], size / 32)));
    out->observations.reserve(
        static_cast<size_t>(std::min<uint64_t>(hint.kinds[kTagObservation], size / 40)));
    const size_t nh = static_cast<size_t>(std::min<uint64_t>(hint.hist_entries, size / 2));
    out->hist_bins.reserve(nh);
    out->hist_counts.reserve(nh);
    // At most one sketch per observation (none reserved in a trace without sketches).
    out->sketches.reserve(
        static_cast<size_t>(std::min<uint64_t>(hint.kinds[kTagSketch], size / 40)));
    // No MADV_HUGEPAGE: on the benchmark VM a fresh 2 MiB block is one the balloon's free-page
    // reporting gave back to the host, and touching it costs a host fault: 0.6-1.2 s of system
    // time for a 1M-record load against 0.2 s with 4 KiB pages (docs/benchmarks/traces.md).
  }

  // ---- chunks ----
  // Heap: the decoder carries two 1024-entry histogram buffers.
  auto dec = std::make_unique<RecordDecoder<Trace>>(out, 0);
  dec->set_format_minor(hdr.minor);
  const bool threaded = opt.threads > 1 || (opt.threads == 0 && size >= kThreadedBytes &&
                                            std::thread::hardware_concurrency() > 1);
  std::unique_ptr<HistThread> hist;
  HistThread::Batch batch;
  if (threaded) {
    hist = std::make_unique<HistThread>(out);
    dec->defer_histograms(&batch.jobs);
  }
  PayloadReader payloads;
  std::vector<ReadChunk> chunks;
  chunks.reserve(hint.index.size());
  size_t pos = header_end;
  bool footer_seen = false;
  Footer footer;
  std::string reason;
  while (pos < size) {
    const size_t left = size - pos;
    auto where = [&] { return "chunk at offset " + std::to_string(pos); };
    if (left < kChunkHead) {
      reason = where() + ": torn chunk header";
      break;
    }
    const uint8_t* h = base + pos;
    uint32_t len = 0;
    std::memcpy(&len, h + 4, 4);
    if (len > left - kChunkHead) {
      reason = where() + ": torn chunk (payload of " + std::to_string(len) + " bytes, " +
               std::to_string(left - kChunkHead) + " left)";
      break;
    }
    uint32_t crc = 0;
    std::memcpy(&crc, h + 8, 4);
    if (crc32c_extend(crc32c(h, 8), h + kChunkHead, len) != crc) {
      reason = where() + ": checksum mismatch";
      break;
    }
    const uint8_t type = h[0], flags = h[1];
    const size_t next = pos + kChunkHead + len;
    const bool known = (flags & ~kFlagZstd) == 0 && (type == kChunkRecords || type == kChunkFooter);
    if (footer_seen) {  // a writer never writes past its footer (checked after the CRC)
      reason = where() + ": data after the footer";
      break;
    }
    if (!known) {
      ++out->unknown_chunks;  // a later minor's chunk type or flag: skip it whole
      pos = next;
      continue;
    }
    const uint8_t* payload = nullptr;
    size_t plen = 0;
    if (const char* bad = payloads.checked(h, &payload, &plen, /*verify_crc=*/false)) {
      reason = where() + ": " + bad;
      break;
    }
    if (type == kChunkFooter) {
      if (const char* bad = parse_footer(payload, plen, pos, tags_known, &footer)) {
        reason = where() + ": " + bad;
        break;
      }
      footer_seen = true;
      pos = next;
      continue;
    }
    ReadChunk rc{pos, {}, Marks(*out, dec->hist_total(), dec->unknown_records)};
    if (const char* bad = dec->decode(payload, plen, &rc.sum)) {
      rc.before.restore(out, !threaded);
      dec->unknown_records = rc.before.unknown_records;
      dec->set_hist_total(rc.before.hist);
      batch.jobs.clear();
      reason = where() + ": " + bad;
      break;
    }
    chunks.push_back(rc);
    if (threaded) {
      // Only whole, good chunks are handed over: a malformed one never reaches the pool.
      batch.chunk = chunks.size() - 1;
      if (flags & kFlagZstd) batch.raw = payloads.release();
      hist->push(std::move(batch));
      batch = HistThread::Batch();
      dec->defer_histograms(&batch.jobs);
    }
    pos = next;
  }
  if (hist) {
    hist->join();
    if (hist->out_of_memory()) throw std::bad_alloc();
    if (hist->failed()) {
      // An earlier chunk than any the walk stopped at: it becomes the first bad chunk.
      const ReadChunk& c = chunks[hist->failed_chunk()];
      c.before.restore(out, true);
      dec->unknown_records = c.before.unknown_records;
      pos = c.offset;
      reason = "chunk at offset " + std::to_string(pos) + ": " + hist->why();
      chunks.erase(chunks.begin() + static_cast<std::ptrdiff_t>(hist->failed_chunk()),
                   chunks.end());
      footer_seen = false;
    }
  }

  out->dropped_bytes = size - pos;
  out->unknown_records = dec->unknown_records;
  if (footer_seen && out->dropped_bytes == 0) {
    const std::string mismatch = footer_mismatch(footer, *out, dec->unknown_records, chunks);
    out->clean_close = mismatch.empty();
    if (!out->clean_close) reason = mismatch;
  } else if (reason.empty()) {
    reason = "no footer: the writer did not close the trace";
  }
  out->truncated = !out->clean_close;
  if (out->truncated) out->truncation_reason = reason;
  for (const StepMark& m : out->steps) {
    if (m.source != StepSource::None) out->step_source = m.source;
  }
  return true;
}

}  // namespace

bool read_trace(const std::string& path, Trace* out, ReadError* err, const ReadOptions& options) {
  try {
    return read_impl(path, out, err, options);
  } catch (const std::bad_alloc&) {
    if (err) {
      err->kind = ReadErrorKind::Io;
      err->message = path + ": out of memory while reading the trace";
    }
    return false;
  } catch (const std::system_error& e) {  // the histogram thread could not start
    if (err) {
      err->kind = ReadErrorKind::Io;
      err->message = path + ": " + e.what();
    }
    return false;
  }
}

bool read_trace(const std::string& path, Trace* out, ReadError* err) {
  return read_trace(path, out, err, ReadOptions{});
}

}  // namespace fpscope::trace
