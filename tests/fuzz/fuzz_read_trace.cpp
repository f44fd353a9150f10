// libFuzzer target for the trace readers: the input bytes are a trace file. read_trace() (with
// one and with two decoding threads) and TraceFile (indexed access) must never crash, read out of
// bounds or allocate without bound; the two thread counts must agree exactly, TraceFile must
// agree with read_trace, and the model built from the result must be consistent. Built by
// tests/fuzz/run_fuzz_reader.sh with clang; also linked with replay_main.cpp (any compiler) to
// run the same checks over the extreme corpus (run_extreme_corpus.sh).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "fpscope/trace_file.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace {
int g_fd = -1;
std::string g_path;
fpscope::trace::ReadOptions g_opt[2];  // threads 1 and 2, the same decompression bound

// FPSCOPE_FUZZ_FLOOR_BYTES lowers the decompression floor (FORMAT.md 4.4) under libFuzzer, whose
// per-allocation limit a trace decoding to the default 64 MiB would reach; the replay of the
// extreme corpus (run_extreme_corpus.sh) keeps the reader's defaults.
void init_options() {
  g_opt[0].threads = 1;
  g_opt[1].threads = 2;
  if (const char* v = std::getenv("FPSCOPE_FUZZ_FLOOR_BYTES"); v && *v) {
    const uint64_t floor = std::strtoull(v, nullptr, 10);
    g_opt[0].expansion_floor_bytes = g_opt[1].expansion_floor_bytes = floor;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fpscope::trace;
  if (g_fd < 0) {
    g_fd = ::memfd_create("fpscope-fuzz", 0);
    if (g_fd < 0) std::abort();
    g_path = "/proc/self/fd/" + std::to_string(g_fd);
    init_options();
  }
  if (::ftruncate(g_fd, 0) != 0) std::abort();
  size_t off = 0;
  while (off < size) {
    const ssize_t w = ::pwrite(g_fd, data + off, size - off, static_cast<off_t>(off));
    if (w <= 0) std::abort();
    off += static_cast<size_t>(w);
  }
  Trace t;
  ReadError err;
  const bool ok = read_trace(g_path, &t, &err, g_opt[0]);
  ReadError ferr;
  auto file = TraceFile::open(g_path, &ferr, g_opt[0]);
  if (!ok) {
    if (err.message.empty()) std::abort();
    if (file || ferr.kind != err.kind) std::abort();  // the same header rules
    return 0;
  }
  if (!file) std::abort();
  // The histogram thread must not change anything.
  {
    Trace t2;
    if (!read_trace(g_path, &t2, &err, g_opt[1])) std::abort();
    if (t2.observations.size() != t.observations.size() || t2.tensors.size() != t.tensors.size() ||
        !(t2.hist_counts == t.hist_counts) || t2.hist_bins != t.hist_bins ||
        t2.dropped_bytes != t.dropped_bytes || t2.clean_close != t.clean_close ||
        t2.truncation_reason != t.truncation_reason || t2.events.size() != t.events.size() ||
        t2.unknown_records != t.unknown_records || t2.block_stats.size() != t.block_stats.size() ||
        t2.sketches.size() != t.sketches.size())
      std::abort();
    for (size_t i = 0; i < t.sketches.size(); ++i)  // format 1.4 value sketches
      if (t.sketches[i].observation != t2.sketches[i].observation ||
          t.sketches[i].v.size() != t2.sketches[i].v.size())
        std::abort();
    for (size_t i = 0; i < t.block_stats.size(); ++i) {  // format 1.3 block-format sections
      const BlockStatsRecord &a = t.block_stats[i], &b = t2.block_stats[i];
      if (a.observation != b.observation || a.mask != b.mask || a.axis != b.axis) std::abort();
      for (int f = 0; f < fpscope::kNumBlockFormats; ++f)
        if (a.fmt[f].blocks != b.fmt[f].blocks || a.fmt[f].elements != b.fmt[f].elements ||
            a.scale_hist[f] != b.scale_hist[f])
          std::abort();
    }
    for (size_t i = 0; i < t.observations.size(); ++i)
      if (t2.observations[i].hist_begin != t.observations[i].hist_begin ||
          t2.observations[i].seq != t.observations[i].seq)
        std::abort();
  }
  // TraceFile: chunks in order inside the file; reading everything gives read_trace's records
  // (all of them when every chunk decodes; a prefix when one is found bad).
  {
    uint64_t prev_end = 0;
    for (const ChunkInfo& c : file->chunks()) {
      if (c.offset < prev_end || c.offset + c.bytes > size || c.first_step > c.last_step)
        std::abort();
      prev_end = c.offset + c.bytes;
    }
    Trace part;
    std::string why;
    const bool all = file->read_steps(0, UINT64_MAX, &part, &why);
    if (part.observations.size() > t.observations.size()) std::abort();
    if (all && (part.observations.size() != t.observations.size() ||
                part.tensors.size() != t.tensors.size() || part.steps.size() != t.steps.size()))
      std::abort();
    if (!all && (why.empty() || !file->truncated())) std::abort();
    for (size_t i = 0; i < part.observations.size(); ++i)
      if (part.observations[i].seq != t.observations[i].seq) std::abort();
    if (all && part.block_stats.size() != t.block_stats.size()) std::abort();
    if (all && part.sketches.size() != t.sketches.size()) std::abort();
    for (const SketchRecord& s : part.sketches)
      if (s.observation >= part.observations.size()) std::abort();
    if (!file->chunks().empty()) {
      const ChunkInfo& c = file->chunks()[file->chunks().size() / 2];
      size_t n = 0;
      file->for_each_in_steps(
          c.first_step, c.last_step,
          [&](const ChunkRecords& r, RecordKind k, uint32_t i) {
            const uint64_t s = r.step_of(k, i);
            if (s < c.first_step || s > c.last_step) std::abort();
            return ++n < 1000;
          },
          &why);
    }
  }
  // Invariants of a successful read.
  if (t.dropped_bytes > t.file_bytes || t.file_bytes != size) std::abort();
  if (t.clean_close == t.truncated) std::abort();
  if (t.truncated && t.truncation_reason.empty()) std::abort();
  if (t.hist_bins.size() != t.hist_counts.size()) std::abort();
  for (size_t i = 0; i < t.tensors.size(); ++i)
    if (t.tensors[i].index != i) std::abort();
  for (const ObservationRecord& o : t.observations) {
    if (o.tensor >= t.tensors.size()) std::abort();
    if (static_cast<size_t>(o.hist_begin) + o.hist_len > t.hist_bins.size()) std::abort();
  }
  // Block sections: each names an observation, in increasing order, with in-range scale bins, and
  // blocks_of() finds it; full_stats() expands it into the observation's accumulator.
  for (size_t i = 0; i < t.block_stats.size(); ++i) {
    const BlockStatsRecord& b = t.block_stats[i];
    if (b.observation >= t.observations.size()) std::abort();
    if (i > 0 && b.observation <= t.block_stats[i - 1].observation) std::abort();
    if (t.blocks_of(b.observation) != &b) std::abort();
    for (int f = 0; f < fpscope::kNumBlockFormats; ++f)
      for (const auto& [bin, count] : b.scale_hist[f])
        if (bin >= fpscope::kBlockScaleBins) std::abort();
    if (t.full_stats(t.observations[b.observation]).blocks.mask != b.mask) std::abort();
  }
  // Value sketches: each names an observation, in increasing order (at most one each), with 1..4096
  // buckets, and sketch_of() finds it.
  for (size_t i = 0; i < t.sketches.size(); ++i) {
    const SketchRecord& s = t.sketches[i];
    if (s.observation >= t.observations.size() || s.v.empty() || s.v.size() > 4096) std::abort();
    if (i > 0 && s.observation <= t.sketches[i - 1].observation) std::abort();
    if (t.sketch_of(s.observation) != &s) std::abort();
  }
  const TraceModel m(t);
  uint64_t n = 0;
  for (uint32_t k = 0; k < m.num_tensors(); ++k) n += m.series(k).size();
  if (n != t.observations.size()) std::abort();
  for (uint64_t s : m.steps()) n -= m.step_observations(s).size();
  if (n != 0) std::abort();
  if (!t.observations.empty()) {
    const auto st = t.full_stats(t.observations.back());
    const auto h = m.histogram_range(t.observations.back().tensor, 0, TraceModel::kNoStep);
    (void)st;
    (void)h;
  }
  return 0;
}
