// Internal: what read_trace() (reader.cpp) and TraceFile (trace_file.cpp) share: the file
// mapping, header and footer parsing, chunk framing checks and the record decoders. Every length
// is checked against the bytes present before it is used (traces/FORMAT.md section 4.3).
#pragma once

#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "codec.h"
#include "fpscope/trace_file.h"
#include "fpscope/trace_io.h"

namespace fpscope::trace::detail {

inline constexpr uint8_t kMaxRole = static_cast<uint8_t>(Role::Weight);
inline constexpr uint8_t kMaxStepSource = static_cast<uint8_t>(StepSource::GemmPeriod);  // 1.0
// The refined step source a 1.1 STEP record may append (FORMAT.md 5.3).
inline constexpr uint8_t kMaxRefinedStepSource = static_cast<uint8_t>(StepSource::Framework);
inline constexpr uint8_t kMaxLossScaleSource = static_cast<uint8_t>(LossScaleSource::Kernel);
inline constexpr uint8_t kMaxEventLevel = static_cast<uint8_t>(EventLevel::Error);
inline constexpr uint64_t kMaxTargetsInRecord = 64;  // future minors may append targets
inline constexpr uint64_t kNoStep = std::numeric_limits<uint64_t>::max();
// Observations and tensors are indexed by uint32_t; the reader keeps at most 2^32-1 of each, so
// that their count fits a uint32_t too.
inline constexpr uint64_t kMaxObservations = std::numeric_limits<uint32_t>::max();
inline constexpr uint64_t kMaxTensors = std::numeric_limits<uint32_t>::max();

// A read-only private mapping of a whole regular file (size 0: no mapping).
struct MappedFile {
  const uint8_t* data = nullptr;
  size_t size = 0;
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();
};
// Opens and maps `path`. `populate`: fault the whole file in now (a sequential full read).
bool map_file(const std::string& path, bool populate, MappedFile* m, ReadError* err);

struct Header {
  uint16_t major = 0;
  uint16_t minor = 0;
  size_t end = 0;  // H: offset of the first chunk
  const uint8_t* metadata = nullptr;
  size_t metadata_len = 0;
};
// Validates the header (FORMAT.md 3). On failure fills *err (message names `path`).
bool parse_header(const std::string& path, const uint8_t* base, size_t size, Header* h,
                  ReadError* err);

struct FooterIndexEntry {
  uint64_t offset = 0, records = 0, first_step = 0, last_step = 0;
};
struct Footer {
  // Totals of the record tags this reader knows in the file (1..known_tags(minor) - 1); the
  // totals of the other tags (a later minor's), summed in later_kinds.
  uint64_t kinds[kNumTags] = {};
  uint64_t later_kinds = 0;
  uint64_t hist_entries = 0;
  std::vector<FooterIndexEntry> index;
  // Saturates: hostile totals near 2^64 must not wrap around to the index's real count.
  uint64_t total_records() const {
    uint64_t n = later_kinds;
    for (int k = 1; k < kNumTags; ++k)
      n = kinds[k] > std::numeric_limits<uint64_t>::max() - n ? std::numeric_limits<uint64_t>::max()
                                                              : n + kinds[k];
    return n;
  }
};
// Parses a FOOTER payload of the chunk at file offset `at`: every field, the index, and the
// trailing footer_offset (must equal `at`) and FEND. `known`: known_tags(the file's minor), the
// tags whose totals go to kinds[] (the others' to later_kinds). Returns nullptr, or why it is
// malformed.
const char* parse_footer(const uint8_t* p, size_t n, uint64_t at, int known, Footer* f);

// Finds the footer from the end of the file (FORMAT.md 6): FEND, footer_offset inside the file,
// a FOOTER chunk there whose length reaches exactly the end, its CRC, its payload (`known` as
// parse_footer's). Returns true with *f and *at when a valid, uncompressed footer closes the
// file; else false and *why.
bool locate_footer(const uint8_t* base, size_t size, size_t header_end, int known, Footer* f,
                   uint64_t* at, std::string* why);

// The decompression bound (FORMAT.md 4.4): the limit in force for one file.
struct ExpansionBudget {
  uint64_t limit = 0;       // bytes the zstd chunks may declare in total
  uint64_t ratio = 0;       // the ratio it came from (ReadOptions or FPSCOPE_MAX_EXPANSION)
  uint64_t floor = 0;       // ReadOptions::expansion_floor_bytes
  const char* source = "";  // where the ratio came from, for the error message
};
// Resolves the options (and FPSCOPE_MAX_EXPANSION when max_expansion is 0) for a file of
// file_size bytes. False with *err (kind ExpansionLimit) when the variable is not a number.
bool expansion_budget(const std::string& path, uint64_t file_size, const ReadOptions& opt,
                      ExpansionBudget* b, ReadError* err);
// Sums R over the zstd chunks a sequential walk would decompress (FORMAT.md 4.4) and refuses the
// file when the sum exceeds the budget: false with *err naming the file, the chunk where the sum
// crosses the limit, the limit and how to raise it. Reads chunk headers only, plus the CRCs when
// the headers alone declare more than the limit.
bool check_expansion(const std::string& path, const uint8_t* base, size_t size, size_t header_end,
                     const ExpansionBudget& b, ReadError* err);

// CRC check and (for zstd chunks) decompression of one chunk's payload.
class PayloadReader {
 public:
  PayloadReader() = default;
  PayloadReader(const PayloadReader&) = delete;
  PayloadReader& operator=(const PayloadReader&) = delete;
  ~PayloadReader() {
    if (zctx_) ZSTD_freeDCtx(zctx_);
  }
  // h: the chunk header, whose L bytes of payload are known to be inside the file. Returns
  // nullptr with *payload/*n set, or the reason the chunk is corrupt.
  const char* checked(const uint8_t* h, const uint8_t** payload, size_t* n, bool verify_crc = true);
  // Hands over the buffer the last compressed payload was decompressed into (the next one gets
  // a new buffer), so that pointers into it stay valid.
  std::vector<uint8_t> release() {
    std::vector<uint8_t> out;
    out.swap(raw_);
    return out;
  }

 private:
  ZSTD_DCtx* zctx_ = nullptr;
  std::vector<uint8_t> raw_;
};

// What a chunk's records say about it, to cross-check the footer's index entry.
struct ChunkSummary {
  uint64_t records = 0;  // every record, unknown tags included (the writer counts all it wrote)
  uint64_t kinds[kNumTags] = {};  // records per tag known in the file (known_tags(minor))
  // Step range of the step-bearing records. `stepped` says there is one: every step value,
  // 2^64-1 included, is a valid step, so no step value can stand for "none".
  bool stepped = false;
  uint64_t first_step = kNoStep, last_step = 0;
  void saw_step(uint64_t s) {
    stepped = true;
    first_step = s < first_step ? s : first_step;
    last_step = s > last_step ? s : last_step;
  }
  // The footer's convention: [0, 0] when the chunk holds no step-bearing record.
  uint64_t index_first() const { return stepped ? first_step : 0; }
  uint64_t index_last() const { return stepped ? last_step : 0; }
  bool matches(const FooterIndexEntry& e) const {
    return e.records == records && e.first_step == index_first() && e.last_step == index_last();
  }
};

// The record framing of a RECORDS payload (FORMAT.md: tag, varint length, body), shared by the
// full decoder and the light scan: counts records per tag known in the file (tags below `known`,
// known_tags(minor)) into `sum` and calls on_record(tag, body cursor) for each; stops at the
// first framing error or the first non-null reason on_record returns.
template <class OnRecord>
const char* for_each_record(const uint8_t* p, size_t n, int known, ChunkSummary* sum,
                            OnRecord&& on_record) {
  Cursor c{p, p + n};
  while (c.left() > 0) {
    const uint8_t tag = c.u8();
    const uint64_t len = c.varint();
    if (!c.ok || len > c.left()) return "record length exceeds its chunk";
    Cursor r{c.p, c.p + len};
    c.p += len;
    ++sum->records;
    if (tag < known) ++sum->kinds[tag];
    if (const char* bad = on_record(tag, r)) return bad;
  }
  return nullptr;
}

// ---- field decoders (nullptr = good, else why the record is malformed) ---------------------
const char* decode_tensor(Cursor& r, uint64_t expected_index, TensorInfo* ti);
const char* decode_step(Cursor& r, StepMark* m);
const char* decode_loss_scale(Cursor& r, LossScaleRecord* l);
const char* decode_weight_update(Cursor& r, uint64_t tensors_defined, WeightUpdateRecord* w);
const char* decode_event(Cursor& r, EventRecord* e);
const char* decode_loss(Cursor& r, LossRecord* l);

// An observation's histogram left for the histogram thread (read_trace with threads > 1): its
// entries start at p inside a record that ends at end; nbins was checked against both.
struct HistJob {
  const uint8_t* p;
  const uint8_t* end;
  uint32_t nbins;
};

// Decodes n (delta, count) pairs into bins/counts (arrays of kHistBins). nullptr or why not.
inline const char* decode_histogram(Cursor& r, uint64_t n, uint16_t* bins, uint64_t* counts) {
  uint64_t bin = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t delta = r.varint();
    counts[i] = r.varint();
    // delta < kHistBins - bin, not bin + delta < kHistBins: a delta near 2^64 must not wrap
    // back into range (a decreasing or repeated bin).
    if (!r.ok || (i > 0 && delta == 0) || delta >= static_cast<uint64_t>(kHistBins) - bin)
      return "malformed observation histogram";
    bin += delta;
    bins[i] = static_cast<uint16_t>(bin);
  }
  return nullptr;
}

// The record of observation `obs` in a reader's pool of per-observation records (block-format
// sections, value sketches: sorted by observation, at most one each), or nullptr.
template <class R>
const R* find_of_observation(const std::vector<R>& pool, size_t obs) {
  auto it = std::lower_bound(pool.begin(), pool.end(), obs, [](const R& b, size_t k) {
    return static_cast<size_t>(b.observation) < k;
  });
  return it != pool.end() && it->observation == obs ? &*it : nullptr;
}

// Decodes a 1.3 block-format section (FORMAT.md 5.2) into *b. nullptr or why not.
inline const char* decode_block_section(Cursor& r, BlockStatsRecord* b) {
  const uint8_t axis = r.u8();
  if (axis > static_cast<uint8_t>(BlockAxis::Cols)) return "observation with an unknown block axis";
  b->axis = static_cast<BlockAxis>(axis);
  b->nvfp4_tensor_scale = r.f32();
  const uint64_t mask = r.varint();
  if (!r.ok) return "truncated block-format section";
  for (int f = 0; f < 64 && (mask >> f) != 0; ++f) {
    if (!(mask >> f & 1u)) continue;
    const uint64_t len = r.varint();
    if (!r.ok || len > r.left()) return "truncated block-format section";
    Cursor e{r.p, r.p + len};
    r.p += len;
    if (f >= kNumBlockFormats) continue;  // a later minor's format: skipped by its length
    b->mask |= 1u << f;
    BlockFormatCounts& c = b->fmt[f];
    for (uint64_t* v : {&c.blocks, &c.elements, &c.flushed, &c.saturated, &c.zero_blocks,
                        &c.scale_underflow, &c.scale_overflow, &c.nan_scale})
      *v = e.varint();
    c.sum_err2 = e.f64();
    c.sum_x2 = e.f64();
    const uint64_t n = e.varint();
    if (!e.ok || n > static_cast<uint64_t>(kBlockScaleBins) || n > e.left() / 2)
      return "malformed block-format entry";
    uint64_t bin = 0;
    b->scale_hist[f].reserve(static_cast<size_t>(n));
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t delta = e.varint();
      const uint64_t count = e.varint();
      if (!e.ok || (i > 0 && delta == 0) || delta >= static_cast<uint64_t>(kBlockScaleBins) - bin)
        return "malformed block-scale histogram";
      bin += delta;
      b->scale_hist[f].emplace_back(static_cast<uint8_t>(bin), count);
    }
  }
  return nullptr;
}

// Decodes one RECORDS payload into `Out` (Trace or ChunkRecords: the same member names). Record
// order and tensor numbering continue from what `out` already holds plus `tensors_before`.
// With defer_histograms(jobs), observation histograms are checked for size only and queued in
// *jobs (hist_begin still assigned): the caller decodes them into the pool (in job order).
template <typename Out>
class RecordDecoder {
 public:
  RecordDecoder(Out* out, uint64_t tensors_before)
      : out_(out), base_(tensors_before), hist_total_(out->hist_bins.size()) {}

  void defer_histograms(std::vector<HistJob>* jobs) { jobs_ = jobs; }
  // Files before format 1.3 carry no block-format sections (their observations' extra bytes,
  // if any, are ignored as a later minor's); in files before 1.4, tag 8 (VALUE_SKETCH) is an
  // unknown record.
  void set_format_minor(uint16_t minor) {
    block_sections_ = minor >= 3;
    // Minors up to this reader's append nothing after the section: a malformed one is malformed.
    block_sections_strict_ = minor <= kFormatMinor;
    known_ = known_tags(minor);
  }
  // Histogram entries assigned so far (the pool's size once every job is decoded).
  uint64_t hist_total() const { return hist_total_; }
  void set_hist_total(uint64_t n) { hist_total_ = n; }

  // Returns nullptr or why the payload is malformed (the caller rolls `out` back).
  const char* decode(const uint8_t* p, size_t n, ChunkSummary* sum) {
    prev_tag_ = 0;  // a VALUE_SKETCH's observation is in the same payload
    return for_each_record(p, n, known_, sum, [&](uint8_t tag, Cursor& r) -> const char* {
      const uint8_t prev = prev_tag_;
      prev_tag_ = tag;
      if (tag >= known_) {
        ++unknown_records;  // a later minor's record kind: skipped using its length
        return nullptr;
      }
      const char* bad = nullptr;
      switch (tag) {
        case kTagTensor: {
          TensorInfo& ti = out_->tensors.emplace_back();
          bad = decode_tensor(r, base_ + out_->tensors.size() - 1, &ti);
          if (bad) {
            out_->tensors.pop_back();
          } else {
            note(RecordKind::Tensor, out_->tensors.size());
          }
          break;
        }
        case kTagObservation:
          bad = observation(r, sum);
          break;
        case kTagStep: {
          StepMark m;
          bad = decode_step(r, &m);
          if (!bad) {
            sum->saw_step(m.step);
            out_->steps.push_back(m);
            note(RecordKind::Step, out_->steps.size());
          }
          break;
        }
        case kTagLossScale: {
          LossScaleRecord l;
          bad = decode_loss_scale(r, &l);
          if (!bad) {
            sum->saw_step(l.step);
            out_->loss_scales.push_back(l);
            note(RecordKind::LossScale, out_->loss_scales.size());
          }
          break;
        }
        case kTagWeightUpdate: {
          WeightUpdateRecord w;
          bad = decode_weight_update(r, base_ + out_->tensors.size(), &w);
          if (!bad) {
            sum->saw_step(w.step);
            out_->weight_updates.push_back(std::move(w));
            note(RecordKind::WeightUpdate, out_->weight_updates.size());
          }
          break;
        }
        case kTagEvent: {
          EventRecord e;
          bad = decode_event(r, &e);
          if (!bad) {
            sum->saw_step(e.step);
            out_->events.push_back(std::move(e));
            note(RecordKind::Event, out_->events.size());
          }
          break;
        }
        case kTagLoss: {
          LossRecord l;
          bad = decode_loss(r, &l);
          if (!bad) {  // not in the indexed step range (FORMAT.md 5.7)
            out_->losses.push_back(l);
            note(RecordKind::Loss, out_->losses.size());
          }
          break;
        }
        case kTagSketch:
          bad = sketch(r, prev);
          break;
        default:
          ++unknown_records;  // a later minor's record kind: skipped using its length
          break;
      }
      return bad;
    });
  }

  uint64_t unknown_records = 0;

 private:
  void note([[maybe_unused]] RecordKind k, [[maybe_unused]] size_t size_after) {
    if constexpr (requires { out_->order; })
      out_->order.emplace_back(k, static_cast<uint32_t>(size_after - 1));
  }

  // The hot path: 1M observations per second of load. Decodes in place (no 280-byte copy) and the
  // histogram through a stack buffer, so the pool is appended once, validated, without zeroing.
  const char* observation(Cursor& r, ChunkSummary* sum) {
    auto& obs = out_->observations;
    // Observation indices are uint32_t everywhere downstream (TraceModel, the GUI).
    if (obs.size() >= kMaxObservations) return "more than 2^32-1 observations (the reader's limit)";
    ObservationRecord& o = obs.emplace_back();
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
    const char* bad = nullptr;
    if (ntargets > kMaxTargetsInRecord) bad = "observation with too many targets";
    for (uint64_t i = 0; !bad && i < ntargets && r.ok; ++i) {
      const uint8_t flags = r.u8();
      FormatCounts f;
      f.overflow = r.varint();
      f.underflow = r.varint();
      f.subnormal = r.varint();
      if (flags & 2) f.sum_err2 = r.f64();
      if (flags & 1) f.scale = r.f32();
      if (i < static_cast<uint64_t>(kNumTargets)) s.fmt[i] = f;
    }
    const uint64_t nbins = bad ? 0 : r.varint();
    if (!bad && !r.ok) bad = "truncated observation";
    if (!bad && tensor >= base_ + out_->tensors.size()) bad = "observation of an undefined tensor";
    if (!bad && nbins > static_cast<uint64_t>(kHistBins))
      bad = "observation histogram with too many bins";
    if (!bad && nbins > r.left() / 2) bad = "observation histogram longer than its record";
    if (!bad && hist_total_ + nbins > std::numeric_limits<uint32_t>::max())
      bad = "histogram pool exceeds 2^32 entries";
    const uint8_t* const hist_at = r.p;
    if (!bad && !jobs_) bad = decode_histogram(r, nbins, bins_, counts_);
    // Format 1.3: a block-format section may follow the histogram (with deferred histograms,
    // the histogram is walked over here to find it).
    if (!bad && block_sections_) {
      if (jobs_) {
        for (uint64_t i = 0; i < 2 * nbins; ++i) r.varint();
        if (!r.ok) bad = "malformed observation histogram";
      }
      if (!bad && r.left() > 0) {
        BlockStatsRecord& b = out_->block_stats.emplace_back();
        b.observation = static_cast<uint32_t>(obs.size() - 1);
        bad = decode_block_section(r, &b);
        if (bad) out_->block_stats.pop_back();
        // A later minor's file: bytes after the histogram that are not a 1.3 section are that
        // minor's own fields (the file is still read; the observation has no block section).
        if (bad && !block_sections_strict_) bad = nullptr;
      }
    }
    if (bad) {
      obs.pop_back();
      return bad;
    }
    r.p = jobs_ ? hist_at : r.p;  // the job decodes the histogram from its start
    o.tensor = static_cast<uint32_t>(tensor);
    o.hist_begin = static_cast<uint32_t>(hist_total_);
    o.hist_len = static_cast<uint32_t>(nbins);
    hist_total_ += nbins;
    if (jobs_) {
      jobs_->push_back(HistJob{r.p, r.end, static_cast<uint32_t>(nbins)});
    } else {
      out_->hist_bins.insert(out_->hist_bins.end(), bins_, bins_ + nbins);
      out_->hist_counts.append(counts_, static_cast<size_t>(nbins));
    }
    sum->saw_step(o.step);
    note(RecordKind::Observation, obs.size());
    return nullptr;
  }

  // FORMAT.md 5.8: the value sketch of the observation just before it (`prev`: that record's
  // tag). Its step is the observation's, already in the chunk's range.
  const char* sketch(Cursor& r, uint8_t prev) {
    if (prev == kTagSketch) return "a second value sketch for one observation";
    if (prev != kTagObservation) return "value sketch without an observation just before it";
    const uint64_t k = r.varint();
    if (!r.ok) return "truncated value sketch";
    if (k == 0 || k > kMaxSketchBuckets) return "value sketch with 0 or more than 4096 buckets";
    if (k > r.left() / 4) return "truncated value sketch";
    // Bytes after the K buckets are a later minor's fields: ignored.
    SketchRecord& s = out_->sketches.emplace_back();
    s.observation = static_cast<uint32_t>(out_->observations.size() - 1);
    s.v.resize(static_cast<size_t>(k));
    std::memcpy(s.v.data(), r.p, static_cast<size_t>(4 * k));  // f32 little endian (codec.h)
    note(RecordKind::Sketch, out_->sketches.size());
    return nullptr;
  }

  Out* out_;
  uint64_t base_;
  uint64_t hist_total_;
  std::vector<HistJob>* jobs_ = nullptr;
  bool block_sections_ = true;
  bool block_sections_strict_ = true;
  int known_ = kNumTags;
  uint8_t prev_tag_ = 0;  // the tag of the record before the current one in this payload
  uint16_t bins_[kHistBins];
  uint64_t counts_[kHistBins];
};

// The light pass TraceFile makes over a chunk it has not decoded: record framing, every tensor
// definition decoded (appended to *tensors), the tensor index and step of every other known
// record. Histograms and other fields are checked when the chunk is decoded (read_chunk).
// `known`: known_tags(the file's minor).
const char* scan_records(const uint8_t* p, size_t n, int known, std::vector<TensorInfo>* tensors,
                         ChunkSummary* sum, uint64_t* unknown_records);

// An observation's full statistics from its scalars and its slice of a sparse histogram (the
// one expansion behind Trace::full_stats and ChunkRecords::full_stats).
template <class Bins, class Counts>
TensorStats expand_stats(const ObservationRecord& rec, const Bins& bins, const Counts& counts,
                         const BlockStatsRecord* blocks) {
  TensorStats s;
  if (blocks) blocks->expand_into(&s.blocks);
  static_cast<StatsScalars&>(s) = rec.stats;
  const size_t end = static_cast<size_t>(rec.hist_begin) + rec.hist_len;
  if (end <= bins.size() && end <= counts.size()) {
    for (size_t i = rec.hist_begin; i < end; ++i) {
      if (bins[i] < kHistBins) s.hist[bins[i]] += counts[i];
    }
  }
  return s;
}

}  // namespace fpscope::trace::detail
