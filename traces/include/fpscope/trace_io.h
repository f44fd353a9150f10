// fpscope trace I/O: the one writer and the one reader (spec: traces/FORMAT.md).
//
// Writer contract: append-only; any number of producer threads call the record methods, one
// writer thread encodes and writes chunks, flushed every ~100 ms or ~1 MiB and on close().
// Nothing here throws into the caller: I/O errors turn the writer into a failed state that
// ok()/error() report, and further records are dropped (the probe then stops recording).
//
// Reader contract (read_trace, sequential): reads everything up to the first torn or corrupt
// chunk, keeps it, and reports truncated/dropped_bytes; skips unknown chunk types of the same
// major version; refuses another major version, and a file whose zstd chunks would decompress
// past the bound of ReadOptions (FORMAT.md 4.4: memory stays proportional to the file size).
// Never reads out of bounds, never trusts a length it has not checked. The footer, when one closes
// the file, only sizes the tables up front (capped by the file size) and is then checked against
// what was read: totals, footer_offset, FEND and every chunk index entry (offset, records, step
// range); a footer that disagrees makes the trace not cleanly closed. Indexed access to part of a
// trace: fpscope/trace_file.h (TraceFile).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fpscope/trace_types.h"

namespace fpscope::trace {

inline constexpr uint16_t kFormatMajor = 1;
inline constexpr uint16_t kFormatMinor = 4;  // 1.1: LOSS records, refined step sources;
                                             // 1.2: WEIGHT_UPDATE `watched`;
                                             // 1.3: OBSERVATION block-format section;
                                             // 1.4: VALUE_SKETCH records

struct WriterOptions {
  uint64_t flush_bytes = 1 << 20;  // flush a chunk when this much is pending
  uint32_t flush_ms = 100;         // ... or when the oldest pending record is this old
  bool zstd = false;               // compress chunk payloads
  // Producers block (back-pressure) while more than this is queued for a slow disk.
  uint64_t max_pending_bytes = 64u << 20;
};

class TraceWriter {
 public:
  // Creates/truncates `path` and writes the header. On failure returns nullptr and sets *error
  // to a one-line message naming the path.
  static std::unique_ptr<TraceWriter> open(const std::string& path,
                                           const std::string& metadata_json,
                                           const WriterOptions& options, std::string* error);
  virtual ~TraceWriter() = default;

  // All of these are thread-safe and return quickly (no I/O on the caller's thread).
  virtual uint32_t define_tensor(const TensorInfo& info) = 0;  // returns the new index
  virtual void observe(const Observation& obs) = 0;
  virtual void step(const StepMark& mark) = 0;
  virtual void loss_scale(const LossScaleRecord& rec) = 0;
  virtual void weight_update(const WeightUpdateRecord& rec) = 0;
  virtual void event(const EventRecord& rec) = 0;
  virtual void loss(const LossRecord& rec) = 0;

  // Blocks until everything recorded so far is written (and fsync'd when sync is true).
  virtual bool flush(bool sync = false) = 0;
  // Flushes, writes the footer, closes. Idempotent. Returns ok().
  virtual bool close() = 0;
  // After fork(), in the child: forget the parent's file and thread without touching them.
  virtual void abandon_after_fork() = 0;

  virtual bool ok() const = 0;
  virtual std::string error() const = 0;
  virtual uint64_t records_written() const = 0;
  virtual uint64_t records_dropped() const = 0;  // recorded after a failure
};

struct Trace {
  std::string path;
  uint16_t version_major = 0;
  uint16_t version_minor = 0;
  std::string metadata_json;
  StepSource step_source = StepSource::None;  // from the step marks (last non-None source)

  std::vector<TensorInfo> tensors;              // tensors[i].index == i
  std::vector<ObservationRecord> observations;  // in file order
  std::vector<uint16_t> hist_bins;              // sparse histogram pool (bin index)
  HistCounts hist_counts;                       // ... and its counts (32-bit + escape; reads as
                                                // a vector of uint64_t)
  std::vector<StepMark> steps;
  std::vector<LossScaleRecord> loss_scales;
  std::vector<WeightUpdateRecord> weight_updates;
  std::vector<EventRecord> events;
  std::vector<LossRecord> losses;  // format 1.1; in file order
  // Format 1.3: the block-format sections of observations, in observation order (only those
  // that have one; BlockStatsRecord::observation indexes `observations`).
  std::vector<BlockStatsRecord> block_stats;
  // Format 1.4: the value sketches of observations, in observation order (only those that have
  // one; SketchRecord::observation indexes `observations`).
  std::vector<SketchRecord> sketches;

  bool truncated = false;    // stopped at a torn/corrupt chunk or a missing footer
  bool clean_close = false;  // footer present and consistent
  uint64_t file_bytes = 0;
  uint64_t dropped_bytes = 0;     // bytes after the last good chunk
  uint64_t unknown_chunks = 0;    // skipped chunk types of this major version
  uint64_t unknown_records = 0;   // skipped record kinds (a newer minor's) inside known chunks
  std::string truncation_reason;  // empty when not truncated

  // Re-densifies one observation's histogram (and block-format section) into a full
  // accumulator.
  TensorStats full_stats(const ObservationRecord& rec) const;
  // The block-format section of observations[obs], or nullptr when it has none.
  const BlockStatsRecord* blocks_of(size_t obs) const;
  // The value sketch of observations[obs], or nullptr when it has none.
  const SketchRecord* sketch_of(size_t obs) const;
};

// ExpansionLimit: the file's zstd chunks decompress to more than ReadOptions allow (a
// decompression bomb, or a genuine trace that needs a higher FPSCOPE_MAX_EXPANSION).
enum class ReadErrorKind {
  NotFound,
  Io,
  NotATrace,
  UnsupportedVersion,
  CorruptHeader,
  ExpansionLimit,
};
struct ReadError {
  ReadErrorKind kind = ReadErrorKind::Io;
  std::string message;  // one line, names the file: "run.fpst: not an fpscope trace (bad magic)"
};

// The decompression bound (traces/FORMAT.md 4.4). A trace whose zstd chunks declare more than
// max(expansion_floor_bytes, max_expansion x file size) decompressed bytes in total is refused
// (ReadErrorKind::ExpansionLimit) before any of it is decompressed. Measured ratios (zstd level
// 1, as the writer): real probe traces 1.8-2.7; the most compressible legitimate trace we could
// construct (one frozen tensor observed every step, 1 or 16 MiB chunks) 31; a "bomb" of identical
// records ~10000. 100 leaves 3x over the first and 37x over real traces while keeping what a bomb
// can cost at ~30 bytes of memory per decompressed byte x 100 per file byte. The floor is the
// per-chunk maximum (64 MiB): no file is refused for one chunk the per-chunk rule accepts.
inline constexpr uint64_t kDefaultMaxExpansion = 100;
inline constexpr uint64_t kDefaultExpansionFloorBytes = uint64_t{64} << 20;
inline constexpr const char* kMaxExpansionEnv = "FPSCOPE_MAX_EXPANSION";

struct ReadOptions {
  // Decoding threads. 1: everything on the caller's thread. 2 or more: a second thread decodes
  // the observation histograms while the caller's thread decodes the rest. 0 (default): 2 for a
  // file of 8 MiB or more on a machine with 2+ CPUs, else 1. The result is the same either way.
  unsigned threads = 0;
  // Decompressed bytes allowed per file byte. 0 (default): the environment variable
  // FPSCOPE_MAX_EXPANSION (a positive integer) when set, else kDefaultMaxExpansion.
  // UINT64_MAX: no bound.
  uint64_t max_expansion = 0;
  // Decompressed bytes always allowed, whatever the file size.
  uint64_t expansion_floor_bytes = kDefaultExpansionFloorBytes;
};

// Reads a whole trace. Returns false (and fills *err) only when nothing usable could be read;
// a torn tail is not an error (see Trace::truncated). For indexed access to parts of a trace
// (seek to a step range without reading the rest) see fpscope/trace_file.h.
bool read_trace(const std::string& path, Trace* out, ReadError* err);
bool read_trace(const std::string& path, Trace* out, ReadError* err, const ReadOptions& options);

}  // namespace fpscope::trace
