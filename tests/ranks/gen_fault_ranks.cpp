// Writes a small synthetic data-parallel run, one trace per rank, with every cross-rank finding
// planted at a known rank and step (or none), for the rank-set export/diff tests, the SQL
// examples of docs/ranks.md and the rank-set goldens:
//   fpscope_gen_fault_ranks DIR healthy|faulty [ranks=4] [steps=8]
// DIR/run-<r>.fpst, metadata {"rank": "<r>", "world_size": "<ranks>"}. Each step observes six
// tensors once (gemm#0 and gemm#1, roles A B D): the A operands are the weights, identical on
// every rank; B and D are the rank's data. One loss-scale record per step, the same on every rank.
// "faulty" plants (with the defaults; other sizes scale the ranks and steps down):
//   rank_skew         rank 1's gemm#0.D amax x1000 from step 3;
//   rank_first_fault  NaN in gemm#1.D on rank 2 from step 5, on rank 3 from step 6 (the others
//                     never);
//   rank_desync       rank 3's gemm#1.A (a weight) differs from step 4;
//   rank_loss_scale   rank 1's scaler finds an Inf at step 6 (scale 32768, skipped) while the
//                     others keep 65536.
// Deterministic: no clock, no random numbers; values are exact binary fractions.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fpscope/formats.h"
#include "fpscope/trace_io.h"

using namespace fpscope;

namespace {

struct Plan {
  uint32_t ranks = 4;
  uint64_t steps = 8;
  bool faulty = false;
  // The planted faults (rank, first step).
  uint32_t skew_rank = 1, nan_rank = 2, nan_rank2 = 3, desync_rank = 3, scale_rank = 1;
  uint64_t skew_step = 3, nan_step = 5, desync_step = 4, scale_step = 6;
};

int write_rank(const std::string& path, uint32_t rank, const Plan& p) {
  std::string err;
  const std::string meta = "{\"generator\":\"fpscope_gen_fault_ranks\",\"rank\":\"" +
                           std::to_string(rank) + "\",\"world_size\":\"" + std::to_string(p.ranks) +
                           "\"}";
  auto w = trace::TraceWriter::open(path, meta, trace::WriterOptions{}, &err);
  if (!w) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 2;
  }
  const trace::Role roles[3] = {trace::Role::A, trace::Role::B, trace::Role::D};
  for (uint32_t i = 0; i < 6; ++i) {
    trace::TensorInfo t;
    t.id = "gemm#" + std::to_string(i / 3) + "." + trace::role_name(roles[i % 3]);
    t.op = "sgemm";
    t.role = roles[i % 3];
    t.rows = 64;
    t.cols = 32;
    w->define_tensor(t);
  }
  uint64_t seq = 0;
  for (uint64_t s = 0; s < p.steps; ++s) {
    trace::StepMark m;
    m.step = s;
    m.source = trace::StepSource::Api;
    m.first_seq = seq;
    m.time_ns = s * 1000000;
    w->step(m);
    for (uint32_t i = 0; i < 6; ++i) {
      const bool weight = i % 3 == 0;
      trace::Observation o;
      o.tensor = i;
      o.step = s;
      o.seq = seq++;
      o.time_ns = s * 1000000 + (o.seq - m.first_seq + 1) * 1000;
      // amax = 2^e: the weights' e depends on the tensor and step only, the data's on the rank.
      double e = 0.25 * i + 0.125 * static_cast<double>(s % 4) + (weight ? 0.0 : 0.0625 * rank);
      if (p.faulty && i == 2 && rank == p.skew_rank && s >= p.skew_step) e += std::log2(1000.0);
      if (p.faulty && i == 3 && rank == p.desync_rank && s >= p.desync_step) e += 0.03125;
      auto& st = o.stats;
      const uint64_t n = 64 * 32;
      st.count = n;
      st.zero = n / 64;
      st.amax = static_cast<float>(std::exp2(e));
      st.min = -st.amax;
      st.max = st.amax;
      st.sum = 0.015625 * st.amax;
      st.sum_sq = static_cast<double>(n) * std::exp2(2 * (e - 2));
      const bool nan =
          p.faulty && i == 5 &&
          ((rank == p.nan_rank && s >= p.nan_step) || (rank == p.nan_rank2 && s >= p.nan_step + 1));
      if (nan) st.nan = 5;
      const int top = static_cast<int>(std::floor(e)) + kFp32Bias;
      const uint64_t nz = n - st.zero - st.nan;
      for (int b = 0; b < 8; ++b) {
        const int bin = (top - b / 4) * 4 + (3 - b % 4);
        if (bin >= 4 && bin < kHistBins) st.hist[bin] += nz / 8;
      }
      st.fmt[target_index(Format::FP16)].sum_err2 = st.sum_sq * 0x1p-24;
      st.fmt[target_index(Format::BF16)].sum_err2 = st.sum_sq * 0x1p-18;
      w->observe(o);
    }
    trace::LossScaleRecord l;
    l.step = s;
    l.time_ns = s * 1000000 + 900000;
    const bool skip = p.faulty && rank == p.scale_rank && s == p.scale_step;
    l.scale = skip ? 32768 : 65536;
    l.found_inf = skip;
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
  if (argc < 3 || (std::strcmp(argv[2], "healthy") != 0 && std::strcmp(argv[2], "faulty") != 0)) {
    std::fprintf(stderr, "usage: %s DIR healthy|faulty [ranks=4] [steps=8]\n", argv[0]);
    return 2;
  }
  Plan p;
  p.faulty = std::strcmp(argv[2], "faulty") == 0;
  if (argc > 3) p.ranks = static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 10));
  if (argc > 4) p.steps = std::strtoull(argv[4], nullptr, 10);
  if (p.ranks < 1 || p.steps < 1) {
    std::fprintf(stderr, "%s: ranks and steps must be positive\n", argv[0]);
    return 2;
  }
  // Fewer ranks or steps: the faults on the last rank / step that exist.
  auto clamp_rank = [&](uint32_t r) { return r < p.ranks ? r : p.ranks - 1; };
  p.skew_rank = clamp_rank(p.skew_rank);
  p.nan_rank = clamp_rank(p.nan_rank);
  p.nan_rank2 = clamp_rank(p.nan_rank2);
  p.desync_rank = clamp_rank(p.desync_rank);
  p.scale_rank = clamp_rank(p.scale_rank);
  for (uint32_t r = 0; r < p.ranks; ++r)
    if (const int rc =
            write_rank(std::string(argv[1]) + "/run-" + std::to_string(r) + ".fpst", r, p))
      return rc;
  return 0;
}
