// TraceFile: indexed access (contract in trace_file.h). The chunk index comes from a footer that
// passed every cross-check, else from the same walk read_trace() makes (lighter: no record is
// decoded but tensor definitions). Chunks are checked lazily, once, in file order.
#include "fpscope/trace_file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

#include "codec.h"
#include "crc32c.h"
#include "reader_internal.h"

namespace fpscope::trace {

using namespace detail;

void ChunkRecords::clear() {
  chunk = 0;
  tensors_before = 0;
  tensors.clear();
  observations.clear();
  hist_bins.clear();
  hist_counts.clear();
  steps.clear();
  loss_scales.clear();
  weight_updates.clear();
  events.clear();
  losses.clear();
  block_stats.clear();
  sketches.clear();
  order.clear();
  unknown_records = 0;
}

TensorStats ChunkRecords::full_stats(const ObservationRecord& rec) const {
  const BlockStatsRecord* b = nullptr;
  if (!block_stats.empty() && &rec >= observations.data() &&
      &rec < observations.data() + observations.size())
    b = blocks_of(static_cast<size_t>(&rec - observations.data()));
  return expand_stats(rec, hist_bins, hist_counts, b);
}

const BlockStatsRecord* ChunkRecords::blocks_of(size_t obs) const {
  return find_of_observation(block_stats, obs);
}

const SketchRecord* ChunkRecords::sketch_of(size_t obs) const {
  return find_of_observation(sketches, obs);
}

uint64_t ChunkRecords::step_of(RecordKind kind, uint32_t index) const {
  switch (kind) {
    case RecordKind::Observation:
      return observations[index].step;
    case RecordKind::Step:
      return steps[index].step;
    case RecordKind::LossScale:
      return loss_scales[index].step;
    case RecordKind::WeightUpdate:
      return weight_updates[index].step;
    case RecordKind::Event:
      return events[index].step;
    case RecordKind::Loss:
      return losses[index].step;
    case RecordKind::Sketch:
      return observations[sketches[index].observation].step;
    case RecordKind::Tensor:
      break;
  }
  return 0;
}

struct TraceFile::Impl {
  std::string path;
  MappedFile map;
  Header hdr;
  std::string metadata;

  bool footer_used = false;
  std::string footer_note;
  Footer footer;  // valid when footer_used
  std::vector<ChunkInfo> chunks;
  std::vector<uint32_t> tensors_before;  // per chunk, for chunks [0, scanned)
  size_t scanned = 0;                    // chunks [0, scanned) passed the light scan
  size_t bad = SIZE_MAX;                 // first chunk found bad: it and later ones unreadable
  std::vector<TensorInfo> tensors;       // defined in chunks [0, scanned)
  uint64_t kinds[kNumTags] = {};         // records per kind in chunks [0, scanned)
  uint64_t unknown_records = 0;          // ... and of later minors' kinds
  uint64_t unknown_chunks = 0;

  bool clean = false;
  uint64_t dropped = 0;
  std::string reason;

  PayloadReader payloads;

  std::string where(uint64_t offset) const { return "chunk at offset " + std::to_string(offset); }

  void mark_bad(size_t k, const std::string& why) {
    bad = std::min(bad, k);
    clean = false;
    dropped = map.size - chunks[k].offset;
    reason = where(chunks[k].offset) + ": " + why;
  }

  // Commits one scanned chunk's results.
  void commit(const ChunkSummary& sum, std::vector<TensorInfo>&& defined, uint64_t unknown) {
    tensors_before.push_back(static_cast<uint32_t>(tensors.size()));
    for (TensorInfo& t : defined) tensors.push_back(std::move(t));
    for (int k = 1; k < kNumTags; ++k) kinds[k] += sum.kinds[k];
    unknown_records += unknown;
    ++scanned;
  }

  // Light scan of one chunk's payload (CRC and decompression done by the caller).
  const char* scan(const uint8_t* payload, size_t n, ChunkSummary* sum,
                   std::vector<TensorInfo>* defined, uint64_t* unknown) {
    // scan_records numbers tensors from 0: give it the table so far, then split the new ones.
    const size_t before = tensors.size();
    const char* bad_why = scan_records(payload, n, known_tags(hdr.minor), &tensors, sum, unknown);
    defined->assign(std::make_move_iterator(tensors.begin() + static_cast<std::ptrdiff_t>(before)),
                    std::make_move_iterator(tensors.end()));
    tensors.resize(before);
    return bad_why;
  }

  // ---- the index from a footer ----------------------------------------------------------
  bool index_from_footer() {
    const uint8_t* base = map.data;
    const size_t size = map.size;
    uint64_t at = 0;
    std::string why;
    if (!locate_footer(base, size, hdr.end, known_tags(hdr.minor), &footer, &at, &why)) {
      footer_note = why;
      return false;
    }
    auto refuse = [&](const std::string& w) {
      footer_note = w;
      chunks.clear();
      unknown_chunks = 0;
      return false;
    };
    // Walk the chunk headers from the first chunk to the footer: the index must list exactly the
    // RECORDS chunks found, in order. Offsets are never followed without this check.
    size_t pos = hdr.end;
    size_t next_entry = 0;
    uint64_t records = 0;
    while (pos < at) {
      if (at - pos < kChunkHead) return refuse("a chunk header straddles the footer");
      const uint8_t* h = base + pos;
      uint32_t len = 0;
      std::memcpy(&len, h + 4, 4);
      if (len > at - pos - kChunkHead)
        return refuse(where(pos) + " runs into the footer (or past it)");
      const uint8_t type = h[0], flags = h[1];
      const bool known_flags = (flags & ~kFlagZstd) == 0;
      if (type == kChunkRecords && known_flags) {
        if (next_entry >= footer.index.size())
          return refuse("footer index lists fewer chunks than the file has");
        const FooterIndexEntry& e = footer.index[next_entry++];
        if (e.offset != pos)
          return refuse("footer index entry " + std::to_string(next_entry - 1) + " has offset " +
                        std::to_string(e.offset) + ", the chunk is at " + std::to_string(pos));
        // Each record takes at least 2 bytes (tag and length) of the (decompressed) payload.
        const uint64_t room = (flags & kFlagZstd) ? kMaxChunkRaw : len;
        if (e.records > room / 2 || e.first_step > e.last_step)
          return refuse("footer index entry " + std::to_string(next_entry - 1) +
                        " is impossible for its chunk");
        records += e.records;
        chunks.push_back(ChunkInfo{pos, kChunkHead + uint64_t{len}, (flags & kFlagZstd) != 0,
                                   e.records, e.first_step, e.last_step});
      } else if (type == kChunkFooter && known_flags) {
        return refuse("a FOOTER chunk before the last one, at offset " + std::to_string(pos));
      } else {
        // A later minor's chunk (never indexed): check it now, it is never read again.
        uint32_t crc = 0;
        std::memcpy(&crc, h + 8, 4);
        if (crc32c_extend(crc32c(h, 8), h + kChunkHead, len) != crc)
          return refuse(where(pos) + ": checksum mismatch");
        ++unknown_chunks;
      }
      pos += kChunkHead + len;
    }
    if (next_entry != footer.index.size())
      return refuse("footer index lists more chunks than the file has");
    if (records != footer.total_records())
      return refuse("footer totals do not add up to its index's record counts");
    footer_used = true;
    clean = true;
    return true;
  }

  // ---- the index from a scan (no usable footer): read_trace's walk, lighter -------------
  void index_from_scan() {
    const uint8_t* base = map.data;
    const size_t size = map.size;
    size_t pos = hdr.end;
    bool footer_seen = false;
    Footer f;
    std::vector<TensorInfo> defined;
    while (pos < size) {
      const size_t left = size - pos;
      if (left < kChunkHead) {
        reason = where(pos) + ": torn chunk header";
        break;
      }
      const uint8_t* h = base + pos;
      uint32_t len = 0, crc = 0;
      std::memcpy(&len, h + 4, 4);
      std::memcpy(&crc, h + 8, 4);
      if (len > left - kChunkHead) {
        reason = where(pos) + ": torn chunk (payload of " + std::to_string(len) + " bytes, " +
                 std::to_string(left - kChunkHead) + " left)";
        break;
      }
      if (crc32c_extend(crc32c(h, 8), h + kChunkHead, len) != crc) {
        reason = where(pos) + ": checksum mismatch";
        break;
      }
      if (footer_seen) {
        reason = where(pos) + ": data after the footer";
        break;
      }
      const uint8_t type = h[0], flags = h[1];
      const size_t next = pos + kChunkHead + len;
      if ((flags & ~kFlagZstd) != 0 || (type != kChunkRecords && type != kChunkFooter)) {
        ++unknown_chunks;
        pos = next;
        continue;
      }
      const uint8_t* payload = nullptr;
      size_t plen = 0;
      if (const char* bad_why = payloads.checked(h, &payload, &plen, false)) {
        reason = where(pos) + ": " + bad_why;
        break;
      }
      if (type == kChunkFooter) {
        if (const char* bad_why = parse_footer(payload, plen, pos, known_tags(hdr.minor), &f)) {
          reason = where(pos) + ": " + bad_why;
          break;
        }
        footer_seen = true;
        pos = next;
        continue;
      }
      ChunkSummary sum;
      uint64_t unknown = 0;
      if (const char* bad_why = scan(payload, plen, &sum, &defined, &unknown)) {
        reason = where(pos) + ": " + bad_why;
        break;
      }
      chunks.push_back(ChunkInfo{pos, kChunkHead + uint64_t{len}, (flags & kFlagZstd) != 0,
                                 sum.records, sum.index_first(), sum.index_last()});
      commit(sum, std::move(defined), unknown);
      pos = next;
    }
    dropped = size - pos;
    if (footer_seen && dropped == 0) {
      std::string mismatch = totals_mismatch(f);
      if (mismatch.empty() && f.index.size() != chunks.size())
        mismatch = "footer index lists " + std::to_string(f.index.size()) +
                   " chunks, the file has " + std::to_string(chunks.size());
      for (size_t i = 0; mismatch.empty() && i < chunks.size(); ++i) {
        const FooterIndexEntry& e = f.index[i];
        const ChunkInfo& c = chunks[i];
        if (e.offset != c.offset || e.records != c.records || e.first_step != c.first_step ||
            e.last_step != c.last_step)
          mismatch = "footer index entry " + std::to_string(i) +
                     " does not match the chunk at offset " + std::to_string(c.offset);
      }
      clean = mismatch.empty();
      if (!clean) reason = mismatch;
    } else if (reason.empty()) {
      reason = "no footer: the writer did not close the trace";
    }
    if (clean) reason.clear();
  }

  // The per-kind totals of a footer against what the scans counted (histogram entries are
  // only counted by decoding: read_trace() checks those).
  std::string totals_mismatch(const Footer& f) const {
    for (int k = 1; k < kNumTags; ++k) {
      if (f.kinds[k] != kinds[k]) return "footer totals do not match the records read";
    }
    if (f.later_kinds != unknown_records) return "footer totals do not match the records read";
    return std::string();
  }

  // Light-scans chunks [scanned, k]. False (and *why) when one of them is bad.
  bool ensure_scanned(size_t k, std::string* why) {
    std::vector<TensorInfo> defined;
    while (scanned <= k && scanned < bad) {
      const size_t i = scanned;
      const ChunkInfo& c = chunks[i];
      const uint8_t* payload = nullptr;
      size_t plen = 0;
      if (const char* bad_why = payloads.checked(map.data + c.offset, &payload, &plen)) {
        mark_bad(i, bad_why);
        break;
      }
      ChunkSummary sum;
      uint64_t unknown = 0;
      if (const char* bad_why = scan(payload, plen, &sum, &defined, &unknown)) {
        mark_bad(i, bad_why);
        break;
      }
      if (sum.records != c.records || sum.index_first() != c.first_step ||
          sum.index_last() != c.last_step) {
        mark_bad(i, "does not match its footer index entry");
        break;
      }
      commit(sum, std::move(defined), unknown);
      if (scanned == chunks.size() && footer_used && clean) {
        const std::string mismatch = totals_mismatch(footer);
        if (!mismatch.empty()) {
          clean = false;
          reason = mismatch;
        }
      }
    }
    if (k >= bad) {
      if (why) *why = reason;
      return false;
    }
    return true;
  }
};

TraceFile::TraceFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TraceFile::~TraceFile() = default;

std::unique_ptr<TraceFile> TraceFile::open(const std::string& path, ReadError* err) {
  return open(path, err, ReadOptions{});
}

std::unique_ptr<TraceFile> TraceFile::open(const std::string& path, ReadError* err,
                                           const ReadOptions& options) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    if (!map_file(path, false, &impl->map, err)) return nullptr;
    if (!parse_header(path, impl->map.data, impl->map.size, &impl->hdr, err)) return nullptr;
    // Before the index: the scan without a footer would decompress every chunk.
    ExpansionBudget budget;
    if (!expansion_budget(path, impl->map.size, options, &budget, err) ||
        !check_expansion(path, impl->map.data, impl->map.size, impl->hdr.end, budget, err))
      return nullptr;
    impl->metadata.assign(reinterpret_cast<const char*>(impl->hdr.metadata),
                          impl->hdr.metadata_len);
    if (!impl->index_from_footer()) impl->index_from_scan();
    return std::unique_ptr<TraceFile>(new TraceFile(std::move(impl)));
  } catch (const std::bad_alloc&) {
    if (err) {
      err->kind = ReadErrorKind::Io;
      err->message = path + ": out of memory while indexing the trace";
    }
    return nullptr;
  }
}

const std::string& TraceFile::path() const {
  return impl_->path;
}
uint16_t TraceFile::version_major() const {
  return impl_->hdr.major;
}
uint16_t TraceFile::version_minor() const {
  return impl_->hdr.minor;
}
const std::string& TraceFile::metadata_json() const {
  return impl_->metadata;
}
uint64_t TraceFile::file_bytes() const {
  return impl_->map.size;
}
bool TraceFile::footer_index_used() const {
  return impl_->footer_used;
}
const std::string& TraceFile::footer_note() const {
  return impl_->footer_note;
}
std::span<const ChunkInfo> TraceFile::chunks() const {
  return impl_->chunks;
}
uint64_t TraceFile::unknown_chunks() const {
  return impl_->unknown_chunks;
}
bool TraceFile::clean_close() const {
  return impl_->clean;
}
bool TraceFile::truncated() const {
  return !impl_->clean;
}
uint64_t TraceFile::dropped_bytes() const {
  return impl_->dropped;
}
const std::string& TraceFile::truncation_reason() const {
  return impl_->reason;
}

bool TraceFile::verify() {
  if (!impl_->chunks.empty()) impl_->ensure_scanned(impl_->chunks.size() - 1, nullptr);
  return impl_->clean;
}

const std::vector<TensorInfo>& TraceFile::tensors() {
  verify();
  return impl_->tensors;
}

std::vector<uint32_t> TraceFile::chunks_for_steps(uint64_t step_lo, uint64_t step_hi) const {
  std::vector<uint32_t> out;
  if (step_lo > step_hi) return out;
  const auto& c = impl_->chunks;
  for (size_t k = 0; k < c.size(); ++k) {
    if (c[k].first_step <= step_hi && c[k].last_step >= step_lo)
      out.push_back(static_cast<uint32_t>(k));
  }
  return out;
}

bool TraceFile::read_chunk(uint32_t k, ChunkRecords* out, std::string* why) {
  out->clear();
  Impl& m = *impl_;
  if (k >= m.chunks.size()) {
    if (why) *why = m.path + ": no chunk " + std::to_string(k);
    return false;
  }
  try {
    if (!m.ensure_scanned(k, why)) return false;
    const ChunkInfo& c = m.chunks[k];
    const uint8_t* payload = nullptr;
    size_t plen = 0;
    // The scan checked the CRC already.
    if (const char* bad_why = m.payloads.checked(m.map.data + c.offset, &payload, &plen, false)) {
      m.mark_bad(k, bad_why);
      if (why) *why = m.reason;
      return false;
    }
    auto dec = std::make_unique<RecordDecoder<ChunkRecords>>(out, m.tensors_before[k]);
    dec->set_format_minor(m.hdr.minor);
    ChunkSummary sum;
    if (const char* bad_why = dec->decode(payload, plen, &sum)) {
      out->clear();
      m.mark_bad(k, bad_why);
      if (why) *why = m.reason;
      return false;
    }
    out->chunk = k;
    out->tensors_before = m.tensors_before[k];
    out->unknown_records = dec->unknown_records;
    return true;
  } catch (const std::bad_alloc&) {
    out->clear();
    if (why) *why = m.path + ": out of memory while decoding chunk " + std::to_string(k);
    return false;
  }
}

bool TraceFile::for_each_in_steps(uint64_t step_lo, uint64_t step_hi, const Visitor& fn,
                                  std::string* why) {
  ChunkRecords buf;
  for (uint32_t k : chunks_for_steps(step_lo, step_hi)) {
    if (!read_chunk(k, &buf, why)) return false;
    for (const auto& [kind, index] : buf.order) {
      if (kind == RecordKind::Tensor) continue;
      const uint64_t s = buf.step_of(kind, index);
      if (s < step_lo || s > step_hi) continue;
      if (!fn(buf, kind, index)) return true;
    }
  }
  return true;
}

bool TraceFile::read_steps(uint64_t step_lo, uint64_t step_hi, Trace* out, std::string* why) {
  Impl& m = *impl_;
  *out = Trace();
  out->path = m.path;
  out->version_major = m.hdr.major;
  out->version_minor = m.hdr.minor;
  out->metadata_json = m.metadata;
  out->file_bytes = m.map.size;
  bool ok = true;
  size_t tensors_through = 0;
  ChunkRecords buf;
  try {
    for (uint32_t k : chunks_for_steps(step_lo, step_hi)) {
      if (!read_chunk(k, &buf, why)) {
        ok = false;
        break;
      }
      tensors_through = buf.tensors_before + buf.tensors.size();
      out->unknown_records += buf.unknown_records;
      auto in = [&](uint64_t s) { return s >= step_lo && s <= step_hi; };
      for (size_t oi = 0; oi < buf.observations.size(); ++oi) {
        const ObservationRecord& o = buf.observations[oi];
        if (!in(o.step)) continue;
        // The Trace's uint32_t indices (observations, histogram pool) as read_trace() keeps them.
        if (out->observations.size() >= kMaxObservations ||
            out->hist_bins.size() + o.hist_len > std::numeric_limits<uint32_t>::max()) {
          if (why)
            *why = m.path + ": the step range holds more than 2^32-1 observations or " +
                   "histogram entries (the reader's limit)";
          ok = false;
          break;
        }
        if (const BlockStatsRecord* b = buf.blocks_of(oi)) {
          BlockStatsRecord& nb = out->block_stats.emplace_back(*b);
          nb.observation = static_cast<uint32_t>(out->observations.size());
        }
        if (const SketchRecord* sk = buf.sketch_of(oi)) {  // format 1.4: with its observation
          SketchRecord& ns = out->sketches.emplace_back(*sk);
          ns.observation = static_cast<uint32_t>(out->observations.size());
        }
        ObservationRecord& r = out->observations.emplace_back(o);
        r.hist_begin = static_cast<uint32_t>(out->hist_bins.size());
        for (uint32_t i = 0; i < o.hist_len; ++i) {
          out->hist_bins.push_back(buf.hist_bins[o.hist_begin + i]);
          out->hist_counts.push_back(buf.hist_counts[o.hist_begin + i]);
        }
      }
      if (!ok) break;
      for (const StepMark& s : buf.steps)
        if (in(s.step)) out->steps.push_back(s);
      for (const LossScaleRecord& l : buf.loss_scales)
        if (in(l.step)) out->loss_scales.push_back(l);
      for (const WeightUpdateRecord& w : buf.weight_updates)
        if (in(w.step)) out->weight_updates.push_back(w);
      for (const EventRecord& e : buf.events)
        if (in(e.step)) out->events.push_back(e);
      for (const LossRecord& l : buf.losses)
        if (in(l.step)) out->losses.push_back(l);
    }
    out->tensors.assign(m.tensors.begin(),
                        m.tensors.begin() + static_cast<std::ptrdiff_t>(tensors_through));
  } catch (const std::bad_alloc&) {
    if (why) *why = m.path + ": out of memory while reading steps";
    ok = false;
  }
  out->clean_close = m.clean;
  out->truncated = !m.clean;
  out->dropped_bytes = m.dropped;
  out->truncation_reason = m.reason;
  out->unknown_chunks = m.unknown_chunks;
  for (const StepMark& s : out->steps) {
    if (s.source != StepSource::None) out->step_source = s.source;
  }
  return ok;
}

}  // namespace fpscope::trace
