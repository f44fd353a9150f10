// read_trace: mmap the file, validate the header, then walk the chunks in order, checking every
// length against what is left and every CRC before decoding; stop at the first bad chunk.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

#include "codec.h"
#include "crc32c.h"
#include "fpscope/trace_io.h"

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
  }
  return "?";
}

TensorStats Trace::full_stats(const ObservationRecord& rec) const {
  TensorStats s;
  static_cast<StatsScalars&>(s) = rec.stats;
  const size_t end = static_cast<size_t>(rec.hist_begin) + rec.hist_len;
  if (end <= hist_bins.size() && end <= hist_counts.size()) {
    for (size_t i = rec.hist_begin; i < end; ++i) {
      if (hist_bins[i] < kHistBins) s.hist[hist_bins[i]] += hist_counts[i];
    }
  }
  return s;
}

namespace {

constexpr uint8_t kMaxRole = static_cast<uint8_t>(Role::Weight);
constexpr uint8_t kMaxStepSource = static_cast<uint8_t>(StepSource::GemmPeriod);
constexpr uint8_t kMaxLossScaleSource = static_cast<uint8_t>(LossScaleSource::Kernel);
constexpr uint8_t kMaxEventLevel = static_cast<uint8_t>(EventLevel::Error);
constexpr uint64_t kMaxTargetsInRecord = 64;  // future minors may append targets; cap the loop

// Asks for transparent huge pages on a large reserved vector: filling 1M observations touches
// ~600 MB, and 4 KiB page faults were a third of the load time.
template <typename T>
void huge_pages(std::vector<T>& v) {
  constexpr uintptr_t kHuge = 2u << 20;
  const auto begin = reinterpret_cast<uintptr_t>(v.data());
  const uintptr_t end = begin + v.capacity() * sizeof(T);
  const uintptr_t a = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t b = end & ~(kHuge - 1);
  if (b > a) ::madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE);
}

struct Mapping {
  const uint8_t* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data) ::munmap(const_cast<uint8_t*>(data), size);
  }
};

struct Footer {
  bool valid = false;
  uint64_t kinds[kNumTags] = {};
  uint64_t hist_entries = 0;
  uint64_t chunks = 0;
};

bool parse_footer(const uint8_t* p, size_t n, Footer* f) {
  Cursor c{p, p + n};
  const uint64_t nk = c.varint();
  if (nk > 1024) return false;
  for (uint64_t k = 0; k < nk && c.ok; ++k) {
    const uint64_t v = c.varint();
    if (k + 1 < kNumTags) f->kinds[k + 1] = v;
  }
  f->hist_entries = c.varint();
  f->chunks = c.varint();
  if (!c.ok || f->chunks > n) return false;
  for (uint64_t i = 0; i < f->chunks && c.ok; ++i) {
    c.varint();  // offset
    c.varint();  // records
    c.varint();  // first step
    c.varint();  // last step
  }
  if (!c.ok || c.left() < 12) return false;
  f->valid = true;
  return true;
}

// Decodes one RECORDS payload into *t. Returns false with *why set on a malformed record.
class RecordDecoder {
 public:
  explicit RecordDecoder(Trace* t) : t_(t) {}

  bool decode(const uint8_t* p, size_t n, std::string* why) {
    Cursor c{p, p + n};
    while (c.left() > 0) {
      const uint8_t tag = c.u8();
      const uint64_t len = c.varint();
      if (!c.ok || len > c.left()) return fail(why, "record length exceeds its chunk");
      Cursor r{c.p, c.p + len};
      c.p += len;
      bool good = true;
      switch (tag) {
        case kTagTensor:
          good = tensor(r, why);
          break;
        case kTagObservation:
          good = observation(r, why);
          break;
        case kTagStep:
          good = step(r, why);
          break;
        case kTagLossScale:
          good = loss_scale(r, why);
          break;
        case kTagWeightUpdate:
          good = weight_update(r, why);
          break;
        case kTagEvent:
          good = event(r, why);
          break;
        default:
          ++unknown_records;
          break;  // a newer minor's record kind: skip
      }
      if (!good) return false;
    }
    return true;
  }

  uint64_t unknown_records = 0;

 private:
  static bool fail(std::string* why, const char* what) {
    *why = what;
    return false;
  }
  static bool check(const Cursor& r, std::string* why, const char* what) {
    return r.ok || fail(why, what);
  }

  bool tensor(Cursor& r, std::string* why) {
    TensorInfo ti;
    const uint64_t index = r.varint();
    ti.id = r.str();
    ti.name = r.str();
    ti.op = r.str();
    const uint8_t role = r.u8();
    const uint8_t dtype = r.u8();
    ti.rows = r.varint();
    ti.cols = r.varint();
    ti.ld = r.varint();
    const int64_t device = r.svarint();
    GemmSignature& g = ti.gemm;
    g.transa = static_cast<char>(r.u8());
    g.transb = static_cast<char>(r.u8());
    for (int64_t* v : {&g.m, &g.n, &g.k, &g.lda, &g.ldb, &g.ldc}) *v = r.svarint();
    g.alpha = r.f64();
    g.beta = r.f64();
    g.batch = r.svarint();
    if (!check(r, why, "truncated tensor definition")) return false;
    if (index != t_->tensors.size()) return fail(why, "tensor definitions out of order");
    if (role > kMaxRole) return fail(why, "tensor definition with an unknown role");
    if (dtype >= kNumFormats) return fail(why, "tensor definition with an unknown dtype");
    if (device < std::numeric_limits<int32_t>::min() ||
        device > std::numeric_limits<int32_t>::max())
      return fail(why, "tensor definition with a device out of range");
    ti.index = static_cast<uint32_t>(index);
    ti.role = static_cast<Role>(role);
    ti.dtype = static_cast<Format>(dtype);
    ti.device = static_cast<int32_t>(device);
    t_->tensors.push_back(std::move(ti));
    return true;
  }

  bool observation(Cursor& r, std::string* why) {
    ObservationRecord o;
    const uint64_t tensor = r.varint();
    o.step = r.varint();
    o.seq = r.varint();
    o.stream = r.varint();
    o.time_ns = r.varint();
    StatsScalars& s = o.stats;
    s.count = r.varint();
    s.nan = r.varint();
    s.pos_inf = r.varint();
    s.neg_inf = r.varint();
    s.zero = r.varint();
    s.amax = r.f32();
    s.min = r.f32();
    s.max = r.f32();
    s.sum = r.f64();
    s.sum_sq = r.f64();
    const uint64_t ntargets = r.varint();
    if (ntargets > kMaxTargetsInRecord) return fail(why, "observation with too many targets");
    for (uint64_t i = 0; i < ntargets && r.ok; ++i) {
      FormatCounts f;
      const uint8_t flags = r.u8();
      f.overflow = r.varint();
      f.underflow = r.varint();
      f.subnormal = r.varint();
      if (flags & 2) f.sum_err2 = r.f64();
      if (flags & 1) f.scale = r.f32();
      if (i < static_cast<uint64_t>(kNumTargets)) s.fmt[i] = f;
    }
    const uint64_t nbins = r.varint();
    if (!check(r, why, "truncated observation")) return false;
    if (tensor >= t_->tensors.size()) return fail(why, "observation of an undefined tensor");
    if (nbins > static_cast<uint64_t>(kHistBins))
      return fail(why, "observation histogram with too many bins");
    if (t_->hist_bins.size() + nbins > std::numeric_limits<uint32_t>::max())
      return fail(why, "histogram pool exceeds 2^32 entries");
    o.tensor = static_cast<uint32_t>(tensor);
    o.hist_begin = static_cast<uint32_t>(t_->hist_bins.size());
    o.hist_len = static_cast<uint32_t>(nbins);
    if (nbins > r.left() / 2) return fail(why, "observation histogram longer than its record");
    t_->hist_bins.resize(o.hist_begin + nbins);
    t_->hist_counts.resize(o.hist_begin + nbins);
    uint16_t* bins_out = t_->hist_bins.data() + o.hist_begin;
    uint64_t* counts_out = t_->hist_counts.data() + o.hist_begin;
    uint64_t bin = 0;
    for (uint64_t i = 0; i < nbins; ++i) {
      const uint64_t delta = r.varint();
      const uint64_t count = r.varint();
      if (i > 0 && delta == 0) r.fail();
      bin += delta;
      if (!r.ok || bin >= static_cast<uint64_t>(kHistBins)) {
        t_->hist_bins.resize(o.hist_begin);
        t_->hist_counts.resize(o.hist_begin);
        return fail(why, "malformed observation histogram");
      }
      bins_out[i] = static_cast<uint16_t>(bin);
      counts_out[i] = count;
    }
    t_->observations.push_back(o);
    return true;
  }

  bool step(Cursor& r, std::string* why) {
    StepMark m;
    m.step = r.varint();
    const uint8_t src = r.u8();
    m.time_ns = r.varint();
    m.first_seq = r.varint();
    if (!check(r, why, "truncated step mark")) return false;
    if (src > kMaxStepSource) return fail(why, "step mark with an unknown source");
    m.source = static_cast<StepSource>(src);
    t_->steps.push_back(m);
    return true;
  }

  bool loss_scale(Cursor& r, std::string* why) {
    LossScaleRecord l;
    l.step = r.varint();
    l.scale = r.f64();
    const uint8_t inf = r.u8();
    l.next_scale = r.f64();
    const uint8_t src = r.u8();
    l.time_ns = r.varint();
    if (!check(r, why, "truncated loss-scale record")) return false;
    if (inf > 1) return fail(why, "loss-scale record with a bad found_inf flag");
    if (src > kMaxLossScaleSource) return fail(why, "loss-scale record with an unknown source");
    l.found_inf = inf != 0;
    l.source = static_cast<LossScaleSource>(src);
    t_->loss_scales.push_back(l);
    return true;
  }

  bool weight_update(Cursor& r, std::string* why) {
    WeightUpdateRecord w;
    w.step = r.varint();
    const uint64_t tensor = r.varint();
    const uint8_t dtype = r.u8();
    w.elements = r.varint();
    w.changed = r.varint();
    for (UpdateLossCounts* c : {&w.bf16, &w.fp16}) {
      c->stagnant = r.varint();
      c->lost_abs = r.f64();
      c->delta_abs = r.f64();
    }
    const uint64_t n = r.varint();
    if (!check(r, why, "truncated weight-update record")) return false;
    if (tensor >= t_->tensors.size()) return fail(why, "weight update of an undefined tensor");
    if (dtype >= kNumFormats) return fail(why, "weight update with an unknown dtype");
    if (n > r.left() / 2) return fail(why, "weight-update histogram longer than its record");
    w.tensor = static_cast<uint32_t>(tensor);
    w.master_dtype = static_cast<Format>(dtype);
    w.ratio_hist.reserve(static_cast<size_t>(n));
    for (uint64_t i = 0; i < n; ++i) {
      const int64_t bin = r.svarint();
      const uint64_t count = r.varint();
      if (!r.ok || bin < std::numeric_limits<int16_t>::min() ||
          bin > std::numeric_limits<int16_t>::max())
        return fail(why, "malformed weight-update histogram");
      w.ratio_hist.emplace_back(static_cast<int16_t>(bin), count);
    }
    t_->weight_updates.push_back(std::move(w));
    return true;
  }

  bool event(Cursor& r, std::string* why) {
    EventRecord e;
    e.step = r.varint();
    e.time_ns = r.varint();
    const uint8_t level = r.u8();
    e.text = r.str();
    if (!check(r, why, "truncated event")) return false;
    if (level > kMaxEventLevel) return fail(why, "event with an unknown level");
    e.level = static_cast<EventLevel>(level);
    t_->events.push_back(std::move(e));
    return true;
  }

  Trace* t_;
};

// Sizes of every vector of a Trace, to roll back a chunk that turned out malformed.
struct Marks {
  size_t tensors, observations, hist, steps, loss_scales, weight_updates, events;
  explicit Marks(const Trace& t)
      : tensors(t.tensors.size()),
        observations(t.observations.size()),
        hist(t.hist_bins.size()),
        steps(t.steps.size()),
        loss_scales(t.loss_scales.size()),
        weight_updates(t.weight_updates.size()),
        events(t.events.size()) {}
  void restore(Trace* t) const {
    t->tensors.resize(tensors);
    t->observations.resize(observations);
    t->hist_bins.resize(hist);
    t->hist_counts.resize(hist);
    t->steps.resize(steps);
    t->loss_scales.resize(loss_scales);
    t->weight_updates.resize(weight_updates);
    t->events.resize(events);
  }
};

bool read_impl(const std::string& path, Trace* out, ReadError* err) {
  auto error = [&](ReadErrorKind kind, const std::string& msg) {
    if (err) {
      err->kind = kind;
      err->message = path + ": " + msg;
    }
    return false;
  };
  *out = Trace();
  out->path = path;

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
  Mapping map;
  map.size = static_cast<size_t>(st.st_size);
  out->file_bytes = map.size;
  if (map.size > 0) {
    void* m = ::mmap(nullptr, map.size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (m == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      return error(ReadErrorKind::Io, std::string("cannot map: ") + std::strerror(e));
    }
    map.data = static_cast<const uint8_t*>(m);
    ::madvise(m, map.size, MADV_SEQUENTIAL);
  }
  ::close(fd);
  const uint8_t* const base = map.data;
  const size_t size = map.size;

  // ---- header ----
  const size_t mcmp = std::min<size_t>(size, 8);
  if (size == 0 || std::memcmp(base, kMagic, mcmp) != 0)
    return error(ReadErrorKind::NotATrace, "not an fpscope trace (bad magic)");
  if (size < 12) return error(ReadErrorKind::CorruptHeader, "truncated header");
  std::memcpy(&out->version_major, base + 8, 2);
  std::memcpy(&out->version_minor, base + 10, 2);
  if (out->version_major != kFormatMajor)
    return error(ReadErrorKind::UnsupportedVersion,
                 "trace format version " + std::to_string(out->version_major) + "." +
                     std::to_string(out->version_minor) + " is not supported (this reader reads " +
                     std::to_string(kFormatMajor) + ".x)");
  if (size < kHeaderFixed + 4) return error(ReadErrorKind::CorruptHeader, "truncated header");
  uint32_t meta_len = 0;
  std::memcpy(&meta_len, base + 16, 4);
  if (meta_len > size - kHeaderFixed - 4)
    return error(ReadErrorKind::CorruptHeader, "truncated header (metadata runs past the end)");
  const size_t header_end = kHeaderFixed + meta_len + 4;
  uint32_t hcrc = 0;
  std::memcpy(&hcrc, base + header_end - 4, 4);
  if (crc32c(base, header_end - 4) != hcrc)
    return error(ReadErrorKind::CorruptHeader, "header checksum mismatch");
  out->metadata_json.assign(reinterpret_cast<const char*>(base + kHeaderFixed), meta_len);

  // ---- footer (from the end) only to size the vectors; verified again in the walk ----
  Footer hint;
  if (size >= header_end + 2 * kChunkHead + 12) {
    uint64_t at = 0;
    std::memcpy(&at, base + size - 12, 8);
    if (std::memcmp(base + size - 4, kFooterEnd, 4) == 0 && at >= header_end &&
        at <= size - kChunkHead - 12 && base[at] == kChunkFooter) {
      uint32_t len = 0, crc = 0;
      std::memcpy(&len, base + at + 4, 4);
      std::memcpy(&crc, base + at + 8, 4);
      if (len == size - at - kChunkHead &&
          crc32c_extend(crc32c(base + at, 8), base + at + kChunkHead, len) == crc)
        parse_footer(base + at + kChunkHead, len, &hint);
    }
  }
  if (hint.valid) {
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
    huge_pages(out->observations);
    huge_pages(out->hist_bins);
    huge_pages(out->hist_counts);
  }

  // ---- chunks ----
  RecordDecoder dec(out);
  std::vector<uint8_t> raw;
  ZSTD_DCtx* zctx = nullptr;
  size_t pos = header_end;
  bool footer_seen = false;
  Footer footer;
  std::string reason;
  while (pos < size) {
    const size_t left = size - pos;
    const std::string where = "chunk at offset " + std::to_string(pos);
    if (left < kChunkHead) {
      reason = where + ": torn chunk header";
      break;
    }
    const uint8_t* h = base + pos;
    uint32_t len = 0, crc = 0;
    std::memcpy(&len, h + 4, 4);
    std::memcpy(&crc, h + 8, 4);
    if (len > left - kChunkHead) {
      reason = where + ": torn chunk (payload of " + std::to_string(len) + " bytes, " +
               std::to_string(left - kChunkHead) + " left)";
      break;
    }
    const uint8_t* payload = h + kChunkHead;
    if (crc32c_extend(crc32c(h, 8), payload, len) != crc) {
      reason = where + ": checksum mismatch";
      break;
    }
    if (footer_seen) {  // a writer never writes past its footer
      reason = where + ": data after the footer";
      break;
    }
    const uint8_t type = h[0], flags = h[1];
    const size_t next = pos + kChunkHead + len;
    if ((flags & ~kFlagZstd) != 0 || (type != kChunkRecords && type != kChunkFooter)) {
      ++out->unknown_chunks;  // a newer minor's chunk type or flag: skip it whole
      pos = next;
      continue;
    }
    size_t plen = len;
    if (flags & kFlagZstd) {
      uint32_t raw_len = 0;
      if (len < 4) {
        reason = where + ": compressed chunk without its size";
        break;
      }
      std::memcpy(&raw_len, payload, 4);
      if (raw_len > kMaxChunkRaw) {
        reason = where + ": decompressed size " + std::to_string(raw_len) + " over the limit";
        break;
      }
      if (!zctx) zctx = ZSTD_createDCtx();
      if (raw.size() < raw_len) raw.resize(raw_len);
      const size_t got = zctx ? ZSTD_decompressDCtx(zctx, raw.data(), raw_len, payload + 4, len - 4)
                              : static_cast<size_t>(-1);
      if (ZSTD_isError(got) || got != raw_len) {
        reason = where + ": zstd decompression failed";
        break;
      }
      payload = raw.data();
      plen = raw_len;
    }
    if (type == kChunkFooter) {
      Footer f;
      if (!parse_footer(payload, plen, &f)) {
        reason = where + ": malformed footer";
        break;
      }
      footer = f;
      footer_seen = true;
      pos = next;
      continue;
    }
    const Marks marks(*out);
    std::string why;
    if (!dec.decode(payload, plen, &why)) {
      marks.restore(out);
      reason = where + ": " + why;
      break;
    }
    pos = next;
  }
  if (zctx) ZSTD_freeDCtx(zctx);

  out->dropped_bytes = size - pos;
  if (footer_seen && out->dropped_bytes == 0) {
    const bool match = footer.kinds[kTagTensor] == out->tensors.size() &&
                       footer.kinds[kTagObservation] == out->observations.size() &&
                       footer.kinds[kTagStep] == out->steps.size() &&
                       footer.kinds[kTagLossScale] == out->loss_scales.size() &&
                       footer.kinds[kTagWeightUpdate] == out->weight_updates.size() &&
                       footer.kinds[kTagEvent] == out->events.size() &&
                       footer.hist_entries == out->hist_bins.size();
    out->clean_close = match;
    if (!match) reason = "footer totals do not match the records read";
  } else if (reason.empty()) {
    reason = "no footer: the writer did not close the trace";
  }
  out->truncated = !out->clean_close;
  if (out->truncated) out->truncation_reason = reason;
  out->unknown_records = dec.unknown_records;
  for (const StepMark& m : out->steps) {
    if (m.source != StepSource::None) out->step_source = m.source;
  }
  return true;
}

}  // namespace

bool read_trace(const std::string& path, Trace* out, ReadError* err) {
  try {
    return read_impl(path, out, err);
  } catch (const std::bad_alloc&) {
    if (err) {
      err->kind = ReadErrorKind::Io;
      err->message = path + ": out of memory while reading the trace";
    }
    return false;
  }
}

}  // namespace fpscope::trace
