// fpscope indexed trace access: open a trace with mmap, seek to a step range through its chunk
// index and decode only the chunks that range needs (read_trace() in trace_io.h reads all).
//
// Contract:
//  - open() maps the file, validates the header and builds the chunk index:
//      * from the footer (FORMAT.md 6) when one closes the file and survives every cross-check:
//        its CRC, footer_offset/FEND, index offsets strictly increasing and equal, one for one, to
//        the RECORDS chunks found by walking the chunk headers from the first chunk to the footer
//        (so no offset is ever taken on trust), record counts that fit their chunks, and per-kind
//        totals that add up to the index's record counts. Only chunk headers are read: O(chunks).
//      * otherwise (no footer, torn tail, or any disagreement: footer_note() says which) by the
//        scan: every chunk's CRC, its record framing, tensor definitions and record steps, from
//        the first chunk until the first bad one, as read_trace() does (same chunks, same
//        truncated/dropped_bytes).
//  - Each chunk's payload is checked (CRC, framing, tensor references, and against its footer
//    index entry) the first time it is scanned; read_chunk() then validates every record as
//    read_trace() does. A chunk found bad is reported by the call that finds it and, from then on,
//    it and every later chunk are unreadable and truncated() is true (a trace is readable up to
//    its first bad chunk, as everywhere else). With the footer index, chunks not yet read are
//    not yet checked: verify() scans the rest.
//  - Decoding chunk k needs the tensors defined before it: the chunks before k are scanned (CRC
//    and framing only, no record decoding) the first time, and never again.
//  - Memory: the mapping plus one decoded chunk at a time (at most 64 MiB decompressed) plus the
//    tensor table; never the whole trace unless asked (read_steps over every step). open()
//    refuses a file past the decompression bound (FORMAT.md 4.4), as read_trace() does, so the
//    work of a scan and of read_steps over everything is bounded by the file size too.
//  - Not thread-safe (lazy state): one TraceFile per thread, or a lock around it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fpscope/trace_io.h"

namespace fpscope::trace {

// Record kinds, numbered as their tags in the file.
enum class RecordKind : uint8_t {
  Tensor = 1,
  Observation = 2,
  Step = 3,
  LossScale = 4,
  WeightUpdate = 5,
  Event = 6,
  Loss = 7,
  Sketch = 8,  // VALUE_SKETCH (1.4): belongs to the observation just before it
};

struct ChunkInfo {
  uint64_t offset = 0;  // file offset of the chunk header
  uint64_t bytes = 0;   // whole chunk: 12-byte header + stored payload
  bool compressed = false;
  uint64_t records = 0;  // records of every kind in it
  // Step range of its step-bearing records (every kind but TENSOR and LOSS, FORMAT.md 5.7); [0, 0]
  // when it has none (the footer's convention, used for chunks indexed by the scan too).
  uint64_t first_step = 0;
  uint64_t last_step = 0;
};

// One chunk's records, decoded and validated (the per-chunk analogue of Trace).
struct ChunkRecords {
  uint32_t chunk = 0;           // index into TraceFile::chunks()
  uint32_t tensors_before = 0;  // tensors defined before this chunk: tensors[i].index ==
                                // tensors_before + i
  std::vector<TensorInfo> tensors;
  std::vector<ObservationRecord> observations;  // hist_begin/hist_len index the pool below
  std::vector<uint16_t> hist_bins;
  HistCounts hist_counts;
  std::vector<StepMark> steps;
  std::vector<LossScaleRecord> loss_scales;
  std::vector<WeightUpdateRecord> weight_updates;
  std::vector<EventRecord> events;
  std::vector<LossRecord> losses;
  std::vector<BlockStatsRecord> block_stats;  // format 1.3, as Trace::block_stats
  std::vector<SketchRecord> sketches;         // format 1.4, as Trace::sketches
  // Every record in file order: its kind and its index in the vector of that kind.
  std::vector<std::pair<RecordKind, uint32_t>> order;
  uint64_t unknown_records = 0;  // a later minor's record kinds, skipped

  void clear();
  // Re-densifies one of this chunk's observations.
  TensorStats full_stats(const ObservationRecord& rec) const;
  // The block-format section of observations[obs], or nullptr.
  const BlockStatsRecord* blocks_of(size_t obs) const;
  // The value sketch of observations[obs], or nullptr.
  const SketchRecord* sketch_of(size_t obs) const;
  // The step of a step-bearing record (kind != Tensor).
  uint64_t step_of(RecordKind kind, uint32_t index) const;
};

class TraceFile {
 public:
  // nullptr with *err filled when nothing can be read (as read_trace: missing file, not a
  // trace, another major version, corrupt header, zstd chunks past the decompression bound of
  // `options`, FORMAT.md 4.4; ReadOptions::threads is not used).
  static std::unique_ptr<TraceFile> open(const std::string& path, ReadError* err);
  static std::unique_ptr<TraceFile> open(const std::string& path, ReadError* err,
                                         const ReadOptions& options);
  ~TraceFile();
  TraceFile(const TraceFile&) = delete;
  TraceFile& operator=(const TraceFile&) = delete;

  const std::string& path() const;
  uint16_t version_major() const;
  uint16_t version_minor() const;
  const std::string& metadata_json() const;
  uint64_t file_bytes() const;

  // True when chunks() came from the verified footer; footer_note() says why not otherwise.
  bool footer_index_used() const;
  const std::string& footer_note() const;
  // Every RECORDS chunk (up to the first bad one, with the scan), in file order.
  std::span<const ChunkInfo> chunks() const;
  uint64_t unknown_chunks() const;  // skipped chunk types seen so far

  // Integrity as far as checked (see the contract). truncated() == !clean_close().
  bool clean_close() const;
  bool truncated() const;
  uint64_t dropped_bytes() const;
  const std::string& truncation_reason() const;

  // Scans every chunk not scanned yet; returns clean_close().
  bool verify();

  // Indices of the chunks whose step range overlaps [step_lo, step_hi], ascending.
  std::vector<uint32_t> chunks_for_steps(uint64_t step_lo, uint64_t step_hi) const;

  // Decodes chunk k into *out (cleared first). False, with *out cleared and *why naming the
  // chunk's offset, when it is bad, or is after a bad chunk, or k is out of range.
  bool read_chunk(uint32_t k, ChunkRecords* out, std::string* why);

  // Every tensor definition of the trace (scans the chunks not scanned yet).
  const std::vector<TensorInfo>& tensors();

  // Calls fn(chunk, kind, index) for every step-bearing record with step_lo <= step <= step_hi,
  // in file order, decoding only the chunks whose step range overlaps. fn returns false to stop
  // early (then for_each_in_steps returns true). False with *why when a needed chunk is bad; the
  // records of the chunks before it have been visited.
  using Visitor = std::function<bool(const ChunkRecords& chunk, RecordKind kind, uint32_t index)>;
  bool for_each_in_steps(uint64_t step_lo, uint64_t step_hi, const Visitor& fn, std::string* why);

  // Materializes a step range as a Trace: the tensors defined up to the last chunk read and the
  // step-bearing records with step_lo <= step <= step_hi, so TraceModel works on it. path,
  // version, metadata and the integrity fields are the file's (as far as checked). On a bad
  // chunk: keeps what came before, sets truncated and truncation_reason, returns false.
  bool read_steps(uint64_t step_lo, uint64_t step_hi, Trace* out, std::string* why);

 private:
  struct Impl;
  explicit TraceFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fpscope::trace
