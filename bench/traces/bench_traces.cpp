// Trace benchmarks (docs/design.md "Performance targets"):
//  - BM_Write: tensor records/s written from ONE producer thread (typical 35 non-empty histogram
//    bins), end to end: every record is on disk (flush) when the clock stops. Target >= 1M/s.
//  - BM_LoadAndIndex: read_trace + TraceModel of a 1M-record trace. Target <= 1 s. threads:1 keeps
//    everything on one thread; threads:0 is the default (a histogram thread for big files).
//    settle:3 sleeps 3 s (untimed) before each load so that, as for a process that has just
//    started, the memory it gets has been idle: on a VM whose balloon reports free pages to the
//    host, that memory is no longer backed and costs a host fault on first touch (see
//    docs/benchmarks/traces.md). settle:0 loads back to back, reusing just-freed memory.
//  - BM_OpenAndSeek: TraceFile::open of the same trace (index from the footer) + read_steps of
//    10 steps in the middle + TraceModel of them: indexed access without loading the rest.
//  - bytes_per_record: file size / observation records.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/trace_file.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"

using namespace fpscope;
using namespace fpscope::trace;

namespace {

// 16 accumulators of 8 KiB cycle through L2, as a probe hands over the accumulator it just filled.
constexpr int kTensors = 16;

std::string bench_path(const std::string& name) {
  const char* d = std::getenv("FPSCOPE_BENCH_DIR");
  return std::string(d && *d ? d : "/tmp") + "/fpscope-bench-" + std::to_string(::getpid()) + "-" +
         name;
}

// A realistic observation: `bins` consecutive non-empty bins around 2^0 (a normal-ish tensor).
std::vector<Observation> sample_observations(int bins) {
  std::vector<Observation> v(kTensors);
  for (int t = 0; t < kTensors; ++t) {
    Observation& o = v[t];
    o.tensor = static_cast<uint32_t>(t);
    TensorStats& s = o.stats;
    s.count = 512 * 512;
    s.zero = 17;
    s.amax = 3.5f + static_cast<float>(t);
    s.min = -s.amax;
    s.max = s.amax * 0.9f;
    s.sum = 12.5;
    s.sum_sq = 87000.25;
    for (int k = 0; k < kNumTargets; ++k) {
      s.fmt[k].underflow = static_cast<uint64_t>(k * 1000 + t);
      s.fmt[k].subnormal = static_cast<uint64_t>(k * 300);
      s.fmt[k].sum_err2 = 1e-6 * (k + 1);
    }
    const int first = fpscope::hist_first_bin_of_exponent(0) - bins / 2 - t % 8;
    for (int b = 0; b < bins; ++b)
      s.hist[first + b] = static_cast<uint64_t>(1000 + 37 * b * (bins - b) + t);
  }
  return v;
}

std::unique_ptr<TraceWriter> open_or_die(const std::string& path, bool zstd,
                                         benchmark::State* state) {
  WriterOptions opt;
  opt.zstd = zstd;
  std::string err;
  auto w = TraceWriter::open(path, "{\"bench\":true}", opt, &err);
  if (!w && state) state->SkipWithError(err.c_str());
  return w;
}

// Mutates the per-tensor observations in place (no 8 KiB copy per record: a probe hands over the
// accumulator it just filled) so that counts vary from record to record as in a real run.
uint64_t write_records(TraceWriter& w, std::vector<Observation>& obs, uint64_t n, uint64_t seq0,
                       int bins) {
  uint64_t rng = 0x9E3779B97F4A7C15ULL ^ seq0;
  for (uint64_t i = 0; i < n; ++i) {
    Observation& o = obs[i % obs.size()];
    o.seq = seq0 + i;
    o.step = (seq0 + i) / 1000;
    o.time_ns = (seq0 + i) * 50;
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    const int first =
        fpscope::hist_first_bin_of_exponent(0) - bins / 2 - static_cast<int>(o.tensor % 8);
    for (int b = 0; b < bins; ++b) o.stats.hist[first + b] = 1000 + ((rng >> (b % 40)) & 0xFFFF);
    o.stats.amax = static_cast<float>(rng >> 40) * 1e-6f;
    o.stats.sum = static_cast<double>(rng >> 11) * 1e-9;
    o.stats.fmt[0].underflow = rng >> 52;
    w.observe(o);
  }
  return n;
}

void BM_Write(benchmark::State& state) {
  const bool zstd = state.range(0) != 0;
  const int bins = static_cast<int>(state.range(1));
  std::vector<Observation> obs = sample_observations(bins);
  const std::string path = bench_path("write.fpst");
  auto w = open_or_die(path, zstd, &state);
  if (!w) return;
  for (int t = 0; t < kTensors; ++t) w->define_tensor(TensorInfo{});
  constexpr uint64_t kBatch = 200000;
  uint64_t seq = 0;
  for (auto _ : state) {
    seq += write_records(*w, obs, kBatch, seq, bins);
    w->flush();
  }
  w->close();
  const double bytes = static_cast<double>(std::filesystem::file_size(path));
  state.SetItemsProcessed(static_cast<int64_t>(seq));
  state.counters["bytes_per_record"] = bytes / static_cast<double>(seq);
  state.counters["dropped"] = static_cast<double>(w->records_dropped());
  std::filesystem::remove(path);
}
BENCHMARK(BM_Write)
    ->ArgNames({"zstd", "bins"})
    ->Args({0, 35})
    ->Args({1, 35})
    ->Args({0, 8})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

double cpu_seconds() {  // user + system time of every thread of the process
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// The 1M-observation trace (35 bins each), written once per process and per compression.
const std::string& load_trace(bool zstd, uint64_t n, benchmark::State* state) {
  static std::string paths[2];
  std::string& path = paths[zstd ? 1 : 0];
  if (!path.empty()) return path;
  const std::string p = bench_path(zstd ? "load_z.fpst" : "load.fpst");
  auto w = open_or_die(p, zstd, state);
  if (!w) return path;
  for (int t = 0; t < kTensors; ++t) w->define_tensor(TensorInfo{});
  std::vector<Observation> obs = sample_observations(35);
  write_records(*w, obs, n, 0, 35);
  if (!w->close()) {
    state->SkipWithError(w->error().c_str());
    return path;
  }
  path = p;
  std::atexit([] {
    for (const std::string& q : paths)
      if (!q.empty()) std::filesystem::remove(q);
  });
  return path;
}

size_t trace_bytes(const Trace& t) {
  return t.observations.capacity() * sizeof(ObservationRecord) +
         t.hist_bins.capacity() * sizeof(uint16_t) + t.hist_counts.memory_bytes();
}

void BM_LoadAndIndex(benchmark::State& state) {
  const bool zstd = state.range(0) != 0;
  const uint64_t n = static_cast<uint64_t>(state.range(1));
  const unsigned threads = static_cast<unsigned>(state.range(2));
  const unsigned settle = static_cast<unsigned>(state.range(3));
  const std::string& path = load_trace(zstd, n, &state);
  if (path.empty()) return;
  size_t records = 0, bytes = 0;
  double cpu = 0;
  for (auto _ : state) {
    if (settle > 0) {
      state.PauseTiming();
      ::sleep(settle);
      state.ResumeTiming();
    }
    const double c0 = cpu_seconds();
    auto t = std::make_unique<Trace>();
    ReadError err;
    if (!read_trace(path, t.get(), &err, ReadOptions{threads}))
      return state.SkipWithError(err.message.c_str());
    auto m = std::make_unique<TraceModel>(*t);
    records = t->observations.size();
    bytes = trace_bytes(*t);
    benchmark::DoNotOptimize(m->series(0).data());
    cpu += cpu_seconds() - c0;
    state.PauseTiming();  // freeing ~500 MB is not part of loading
    m.reset();
    t.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(records * state.iterations()));
  state.counters["records"] = static_cast<double>(records);
  state.counters["file_MiB"] =
      static_cast<double>(std::filesystem::file_size(path)) / (1024.0 * 1024.0);
  state.counters["mem_MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["sizeof_ObservationRecord"] = sizeof(ObservationRecord);
  state.counters["cpu_all_threads_s"] = cpu / static_cast<double>(state.iterations());
}
BENCHMARK(BM_LoadAndIndex)
    ->ArgNames({"zstd", "records", "threads", "settle"})
    ->Args({0, 1000000, 0, 3})
    ->Args({0, 1000000, 1, 3})
    ->Args({1, 1000000, 0, 3})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK(BM_LoadAndIndex)
    ->ArgNames({"zstd", "records", "threads", "settle"})
    ->Args({0, 1000000, 0, 0})
    ->Args({0, 1000000, 1, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);

void BM_OpenAndSeek(benchmark::State& state) {
  const std::string& path = load_trace(false, 1000000, &state);
  if (path.empty()) return;
  size_t records = 0, chunks = 0;
  for (auto _ : state) {
    ReadError err;
    auto f = TraceFile::open(path, &err);
    if (!f || !f->footer_index_used())
      return state.SkipWithError(f ? f->footer_note().c_str() : err.message.c_str());
    Trace part;
    std::string why;
    if (!f->read_steps(500, 509, &part, &why)) return state.SkipWithError(why.c_str());
    TraceModel m(part);
    records = part.observations.size();
    chunks = f->chunks_for_steps(500, 509).size();
    benchmark::DoNotOptimize(m.steps().data());
  }
  state.counters["records"] = static_cast<double>(records);
  state.counters["chunks_decoded"] = static_cast<double>(chunks);
}
BENCHMARK(BM_OpenAndSeek)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
