// libFuzzer target for the trace reader: the input bytes are a trace file. read_trace() must
// never crash, read out of bounds or allocate without bound; the model built from whatever it
// returns must be consistent. Built by tests/fuzz/run_fuzz_reader.sh with clang.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

namespace {
int g_fd = -1;
std::string g_path;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fpscope::trace;
  if (g_fd < 0) {
    g_fd = ::memfd_create("fpscope-fuzz", 0);
    if (g_fd < 0) std::abort();
    g_path = "/proc/self/fd/" + std::to_string(g_fd);
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
  if (!read_trace(g_path, &t, &err)) {
    if (err.message.empty()) std::abort();
    return 0;
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
