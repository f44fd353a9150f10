// Writes the traces of a synthetic data-parallel run, one per rank, for the rank-set benchmark:
//   fpscope_gen_rank_traces DIR [ranks=64] [records_per_rank=100000] [tensors_per_step=64]
//                           [bins_per_record=35]
// DIR/run-<r>.fpst with metadata {"rank": "<r>", "world_size": "<ranks>"}. Every step observes
// `tensors_per_step` tensors (GEMMs x roles A, B, C, D): the A operands are the weights, identical
// on every rank (a shared seed); B, C and D are the rank's data (its own seed). One loss-scale
// record per step, the same on every rank. Rank ranks/2 has its first output (gemm#0.D) scaled
// up 1e4 x from the middle step on: one rank_skew finding to find. Deterministic.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "fpscope/formats.h"
#include "fpscope/trace_io.h"

using namespace fpscope;

namespace {

int write_rank(const std::string& path, uint32_t rank, uint32_t ranks, uint64_t records,
               uint32_t per_step, int bins) {
  std::string err;
  const std::string meta = "{\"generator\":\"fpscope_gen_rank_traces\",\"rank\":\"" +
                           std::to_string(rank) + "\",\"world_size\":\"" + std::to_string(ranks) +
                           "\"}";
  auto w = trace::TraceWriter::open(path, meta, trace::WriterOptions{}, &err);
  if (!w) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 2;
  }
  const trace::Role roles[4] = {trace::Role::A, trace::Role::B, trace::Role::C, trace::Role::D};
  for (uint32_t i = 0; i < per_step; ++i) {
    trace::TensorInfo t;
    t.id = "gemm#" + std::to_string(i / 4) + "." + trace::role_name(roles[i % 4]);
    t.op = "sgemm";
    t.role = roles[i % 4];
    t.rows = 256;
    t.cols = 512;
    w->define_tensor(t);
  }
  std::mt19937_64 shared(42), own(1000 + rank);
  std::normal_distribution<double> noise(0.0, 0.25);
  const uint64_t steps = (records + per_step - 1) / per_step;
  const int ih = target_index(Format::FP16);
  uint64_t seq = 0, written = 0;
  for (uint64_t s = 0; s < steps && written < records; ++s) {
    trace::StepMark m;
    m.step = s;
    m.source = trace::StepSource::Api;
    m.first_seq = seq;
    w->step(m);
    for (uint32_t i = 0; i < per_step && written < records; ++i, ++written) {
      trace::Observation o;
      o.tensor = i;
      o.step = s;
      o.seq = seq++;
      auto& st = o.stats;
      const bool weight = i % 4 == 0;
      double e = (i % 4 == 2 ? -18.0 : 2.0) + 0.5 * (i % 7) + noise(weight ? shared : own);
      if (i == 3 && rank == ranks / 2 && s >= steps / 2) e += std::log2(1e4);
      const uint64_t n = 256 * 512;
      st.count = n;
      st.zero = n / 64;
      st.amax = static_cast<float>(std::exp2(e));
      st.min = -st.amax;
      st.max = st.amax;
      st.sum = 0.01 * st.amax;
      st.sum_sq = static_cast<double>(n) * std::exp2(2 * (e - 2));
      const int top = static_cast<int>(std::floor(e)) + kFp32Bias;
      const uint64_t nz = n - st.zero;
      for (int b = 0; b < bins; ++b) {
        const int bin = (top - b / 4) * 4 + (3 - b % 4);
        if (bin >= 4 && bin < kHistBins) st.hist[bin] += nz / static_cast<uint64_t>(bins);
      }
      st.fmt[ih].overflow = st.amax > max_finite(Format::FP16) ? nz / 1000 : 0;
      st.fmt[ih].sum_err2 = st.sum_sq * 1e-7;
      w->observe(o);
    }
    trace::LossScaleRecord l;
    l.step = s;
    l.scale = 65536;
    l.next_scale = 65536;
    w->loss_scale(l);
  }
  if (!w->close()) {
    std::fprintf(stderr, "%s: cannot close the trace\n", path.c_str());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s DIR [ranks=64] [records_per_rank=100000] [tensors_per_step=64] "
                 "[bins_per_record=35]\n",
                 argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const auto ranks = static_cast<uint32_t>(argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 64);
  const uint64_t records = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 100000;
  const auto per_step = std::max<uint32_t>(
      4, static_cast<uint32_t>(argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 64));
  const int bins = std::clamp(argc > 5 ? std::atoi(argv[5]) : 35, 1, 200);
  for (uint32_t r = 0; r < ranks; ++r)
    if (const int rc = write_rank(dir + "/run-" + std::to_string(r) + ".fpst", r, ranks, records,
                                  per_step, bins))
      return rc;
  return 0;
}
