// Host statistics pass vs a plain float sum over the same buffer, on the same core, in the same
// run: every benchmark iteration times one plain sum and one statistics pass back to back
// (interleaved, so that load from other processes hits both alike) and reports
//   GBps_stats, GBps_sum (the plain loop `s += p[i]`, as compiled for the project) and
//   GBps_vsum (the same sum with 16 independent accumulators, vectorized by the compiler),
//   ratio = GBps_stats / GBps_sum and ratio_vsum = GBps_stats / GBps_vsum.
// Buffers: 1 MiB, 64 MiB, 1 GiB of FP32 or BF16 data (the sums read the same bytes as floats).
// For BF16 also ratio_elem: against the plain float sum of the buffer's BF16 values (each widened
// and added in order), i.e. per element instead of per byte.
// BM_UpdateLoss (the auto-watch's cost, issue 21): the host update-loss pass over n watched FP32
// elements (0.56 Mi: the bundled sample's parameters; 3.2 Mi: the TransformerEncoder bench's;
// 32 Mi: the default FPSCOPE_WATCH_BUDGET's most), training-like updates (1e-4 .. 1e-2 of the
// weight), interleaved with the straightforward scalar loop it replaced (update_loss_step and
// accumulate_update_loss per element): ns_elem, ns_elem_scalar, speedup.
#include <benchmark/benchmark.h>
#include <sched.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "fpscope/host_stats.h"
#include "fpscope/update_loss.h"
#include "fpscope/value_sketch.h"

namespace {

using Clock = std::chrono::steady_clock;

// The plain float sum: what "sum the buffer" compiles to with the project's flags (in-order FP
// additions; the compiler may not reorder them, so this loop is latency-bound).
__attribute__((noinline)) float plain_sum(const float* p, size_t n) {
  float s = 0.0f;
  for (size_t i = 0; i < n; ++i) s += p[i];
  return s;
}

// A vectorizable float sum (16 partial sums): memory-bound on large buffers.
__attribute__((noinline)) float vector_sum(const float* p, size_t n) {
  float acc[16] = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) acc[l] += p[i + static_cast<size_t>(l)];
  float s = 0.0f;
  for (; i < n; ++i) s += p[i];
  for (float a : acc) s += a;
  return s;
}

// The plain float sum of a BF16 buffer's values (each element widened, added in order): "a plain
// float sum over the same buffer" element for element, where plain_sum reads its bytes as floats.
__attribute__((noinline)) float plain_sum_bf16(const uint16_t* p, size_t n) {
  float s = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = static_cast<uint32_t>(p[i]) << 16;
    float x;
    std::memcpy(&x, &u, 4);
    s += x;
  }
  return s;
}

std::vector<uint32_t>& buffer(size_t bytes, fpscope::Format f) {
  static std::vector<uint32_t> buf;
  static size_t have = 0;
  static fpscope::Format have_f{};
  if (have != bytes || have_f != f) {
    buf.assign(bytes / 4, 0);
    std::mt19937 rng(42);
    std::normal_distribution<float> g(0.0f, 1.0f);
    if (f == fpscope::Format::FP32) {
      for (auto& u : buf) {
        float x = std::ldexp(g(rng), static_cast<int>(rng() % 32) - 20);
        std::memcpy(&u, &x, 4);
      }
    } else {  // BF16 pairs: the top halves of random FP32 values
      for (auto& u : buf) {
        float a = std::ldexp(g(rng), static_cast<int>(rng() % 32) - 20), b = g(rng);
        uint32_t ua, ub;
        std::memcpy(&ua, &a, 4);
        std::memcpy(&ub, &b, 4);
        u = (ua >> 16) | (ub & 0xffff0000u);
      }
    }
    have = bytes;
    have_f = f;
  }
  return buf;
}

// block_formats: StatsOptions::block_formats (0: the plain pass); blocks run along the buffer
// (one column, axis rows) with NVFP4's tensor amax given, as the probe passes it when FP8
// current scaling computed it (else compute_stats adds a compute_amax pass: *_blocks_amax).
void BM_Stats(benchmark::State& state, fpscope::Format f, uint32_t block_formats = 0,
              bool find_amax = false) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  auto& buf = buffer(bytes, f);
  const auto* floats = reinterpret_cast<const float*>(buf.data());
  const size_t nfloat = bytes / 4;
  const uint64_t elems = f == fpscope::Format::FP32 ? nfloat : nfloat * 2;
  auto stats = std::make_unique<fpscope::TensorStats>();
  fpscope::StatsOptions opt;
  opt.block_formats = block_formats;
  if (block_formats != 0 && !find_amax)
    opt.tensor_amax = fpscope::compute_amax(buf.data(), f, elems, 1, elems);
  double t_stats = 0, t_sum = 0, t_vsum = 0, t_esum = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    benchmark::DoNotOptimize(plain_sum(floats, nfloat));
    auto t1 = Clock::now();
    benchmark::DoNotOptimize(vector_sum(floats, nfloat));
    auto t2 = Clock::now();
    fpscope::compute_stats(buf.data(), f, elems, 1, elems, opt, stats.get());
    benchmark::DoNotOptimize(stats.get());
    auto t3 = Clock::now();
    if (f == fpscope::Format::BF16)
      benchmark::DoNotOptimize(
          plain_sum_bf16(reinterpret_cast<const uint16_t*>(buf.data()), elems));
    auto t4 = Clock::now();
    t_sum += std::chrono::duration<double>(t1 - t0).count();
    t_vsum += std::chrono::duration<double>(t2 - t1).count();
    t_esum += std::chrono::duration<double>(t4 - t3).count();
    const double ts = std::chrono::duration<double>(t3 - t2).count();
    t_stats += ts;
    state.SetIterationTime(ts);
  }
  if (f == fpscope::Format::BF16) state.counters["ratio_elem"] = t_esum / t_stats;
  const double gb = static_cast<double>(bytes) * static_cast<double>(state.iterations()) / 1e9;
  state.counters["GBps_stats"] = gb / t_stats;
  state.counters["GBps_sum"] = gb / t_sum;
  state.counters["GBps_vsum"] = gb / t_vsum;
  state.counters["ratio"] = t_sum / t_stats;
  state.counters["ratio_vsum"] = t_vsum / t_stats;
  state.SetLabel(fpscope::host_stats_isa());
}

// The value sketch (FPSCOPE_SKETCH, issue 18) side by side with the statistics pass over the same
// FP32 data: ratio_stats = stats time / sketch time (the sketch's added cost per operand is
// 1 / ratio_stats of the pass it rides along).
void BM_Sketch(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  auto& buf = buffer(bytes, fpscope::Format::FP32);
  const uint64_t elems = bytes / 4;
  auto stats = std::make_unique<fpscope::TensorStats>();
  auto sketch = std::make_unique<fpscope::ValueSketch>();
  const fpscope::StatsOptions opt;
  double t_stats = 0, t_sketch = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    fpscope::compute_stats(buf.data(), fpscope::Format::FP32, elems, 1, elems, opt, stats.get());
    benchmark::DoNotOptimize(stats.get());
    auto t1 = Clock::now();
    fpscope::compute_sketch(buf.data(), fpscope::Format::FP32, elems, 1, elems, sketch.get());
    benchmark::DoNotOptimize(sketch.get());
    auto t2 = Clock::now();
    t_stats += std::chrono::duration<double>(t1 - t0).count();
    const double ts = std::chrono::duration<double>(t2 - t1).count();
    t_sketch += ts;
    state.SetIterationTime(ts);
  }
  const double n = static_cast<double>(elems) * static_cast<double>(state.iterations());
  state.counters["ns_per_elem"] = t_sketch * 1e9 / n;
  state.counters["ns_per_elem_stats"] = t_stats * 1e9 / n;
  state.counters["ratio_stats"] = t_stats / t_sketch;
}
BENCHMARK(BM_Sketch)->Arg(1 << 22)->Arg(64 << 20)->UseManualTime()->Unit(benchmark::kMillisecond);

// The scalar loop of the first implementation (the reference of tests/kernels/test_update_loss).
__attribute__((noinline)) void scalar_update_loss(const float* prev, const float* cur, size_t n,
                                                  fpscope::UpdateLoss* out) {
  for (size_t i = 0; i < n; ++i) {
    const fpscope::UpdateLossStep s = fpscope::update_loss_step(prev[i], cur[i]);
    if (!s.changed) continue;
    ++out->changed;
    fpscope::accumulate_update_loss(out->bf16, s, 0);
    fpscope::accumulate_update_loss(out->fp16, s, 1);
    if (s.ratio_bin >= 0) ++out->ratio_hist[s.ratio_bin];
  }
}

void BM_UpdateLoss(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  std::vector<float> prev(n), cur(n);
  std::mt19937 g(21);
  std::normal_distribution<float> w(0.0f, 0.05f);
  std::uniform_real_distribution<float> rel(-4.0f, -2.0f);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = w(g);
    cur[i] = prev[i] - prev[i] * std::pow(10.0f, rel(g));
  }
  double t_fast = 0, t_scalar = 0;
  for (auto _ : state) {
    fpscope::UpdateLoss fast, scalar;
    auto t0 = Clock::now();
    fpscope::add_update_loss(prev.data(), cur.data(), n, &fast);
    benchmark::DoNotOptimize(&fast);
    auto t1 = Clock::now();
    scalar_update_loss(prev.data(), cur.data(), n, &scalar);
    benchmark::DoNotOptimize(&scalar);
    auto t2 = Clock::now();
    const double tf = std::chrono::duration<double>(t1 - t0).count();
    t_fast += tf;
    t_scalar += std::chrono::duration<double>(t2 - t1).count();
    state.SetIterationTime(tf);
    if (fast.changed != scalar.changed || fast.bf16.stagnant != scalar.bf16.stagnant)
      state.SkipWithError("the vectorized pass and the scalar loop disagree");
  }
  const double elems = static_cast<double>(n) * static_cast<double>(state.iterations());
  state.counters["ns_elem"] = t_fast / elems * 1e9;
  state.counters["ns_elem_scalar"] = t_scalar / elems * 1e9;
  state.counters["speedup"] = t_scalar / t_fast;
}
BENCHMARK(BM_UpdateLoss)
    ->Arg(560000)
    ->Arg(3200000)
    ->Arg(32 << 20)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(1 << 20)
      ->Arg(64 << 20)
      ->Arg(int64_t{1} << 30)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}
BENCHMARK_CAPTURE(BM_Stats, fp32, fpscope::Format::FP32)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Stats, bf16, fpscope::Format::BF16)->Apply(sizes);
// Issue 19: every block-scaled format on (MXFP8 E4M3/E5M2, MXFP6 E3M2/E2M3, MXFP4, NVFP4).
BENCHMARK_CAPTURE(BM_Stats, fp32_blocks, fpscope::Format::FP32, fpscope::kAllBlockFormats)
    ->Apply(sizes);
BENCHMARK_CAPTURE(BM_Stats, fp32_blocks_amax, fpscope::Format::FP32, fpscope::kAllBlockFormats,
                  true)
    ->Apply(sizes);
BENCHMARK_CAPTURE(BM_Stats, bf16_blocks, fpscope::Format::BF16, fpscope::kAllBlockFormats)
    ->Apply(sizes);

}  // namespace

int main(int argc, char** argv) {
  // Stay on the core we start on: the sums and the stats pass share it.
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cpu = sched_getcpu();
  if (cpu >= 0) {
    CPU_SET(cpu, &set);
    (void)sched_setaffinity(0, sizeof set, &set);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
