// Writes a synthetic trace with TraceWriter for the analysis benchmark (and for trying the CLI):
//   fpscope_gen_trace OUT.fpst [records=1000000] [tensors_per_step=64] [bins_per_record=35]
// Every step observes `tensors_per_step` tensors (16 GEMMs x roles A, B, C, D) with
// `bins_per_record` sparse histogram bins each (default 35; at most 200), an amax that drifts and
// spikes (FP16 overflow in a few tensors late in the run, FP16 underflow in gradients), one
// loss-scale record per step (periodic skips) and weight-update records for 4 watched weights every
// 10 steps. Deterministic (fixed seed).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/trace_io.h"

using namespace fpscope;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.fpst [records] [tensors_per_step]\n", argv[0]);
    return 2;
  }
  const uint64_t records = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000000;
  const uint32_t per_step =
      argc > 3 ? static_cast<uint32_t>(std::strtoul(argv[3], nullptr, 10)) : 64;
  std::string err;
  trace::WriterOptions wo;
  auto w = trace::TraceWriter::open(argv[1], R"({"generator":"fpscope_gen_trace"})", wo, &err);
  if (!w) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 2;
  }
  std::mt19937_64 rng(42);
  std::normal_distribution<double> noise(0.0, 0.25);
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
  uint32_t weights[4];
  for (int i = 0; i < 4; ++i) {
    trace::TensorInfo t;
    t.id = "layer" + std::to_string(i) + ".weight";
    t.name = t.id;
    t.op = "watch";
    t.role = trace::Role::Weight;
    t.rows = 256;
    t.cols = 512;
    weights[i] = w->define_tensor(t);
  }
  const uint64_t steps = (records + per_step - 1) / per_step;
  const int ih = target_index(Format::FP16), ib = target_index(Format::BF16),
            i4 = target_index(Format::E4M3), i5 = target_index(Format::E5M2);
  const int kBins = std::clamp(argc > 4 ? std::atoi(argv[4]) : 35, 1, 200);
  const int kPeak = kBins * 2 / 7;  // 10 of 35
  std::vector<double> weight(static_cast<size_t>(kBins));
  double weight_sum = 0;
  for (int b = 0; b < kBins; ++b) {
    const double z = (b - kPeak) / (kBins * 8.0 / 35.0);
    weight[static_cast<size_t>(b)] = std::exp(-z * z);
    weight_sum += weight[static_cast<size_t>(b)];
  }
  uint64_t seq = 0, written = 0;
  double scale = 65536;
  trace::Observation o;
  for (uint64_t s = 0; s < steps && written < records; ++s) {
    trace::StepMark m;
    m.step = s;
    m.source = trace::StepSource::Api;
    m.first_seq = seq;
    m.time_ns = s * 1000000;
    w->step(m);
    for (uint32_t i = 0; i < per_step && written < records; ++i, ++written) {
      o = trace::Observation{};
      o.tensor = i;
      o.step = s;
      o.seq = seq++;
      o.time_ns = s * 1000000 + i * 1000;
      auto& st = o.stats;
      const uint64_t n = 256 * 512;
      // log2 amax: per-tensor base, slow drift, noise; gradients (C) small; a few outputs grow.
      double e =
          (i % 4 == 2 ? -18.0 : 2.0) + 0.5 * (i % 7) + noise(rng) +
          (i % 4 == 3 && i < 12 ? 18.0 * static_cast<double>(s) / static_cast<double>(steps) : 0.0);
      if (s % 997 == 500 && i == 7) e += 6;  // spikes
      st.count = n;
      st.zero = n / 64;
      st.amax = static_cast<float>(std::exp2(e));
      st.min = -st.amax;
      st.max = st.amax;
      st.sum = 0.01 * st.amax;
      st.sum_sq = static_cast<double>(n) * std::exp2(2 * (e - 2));
      const uint64_t nz = n - st.zero;
      // kBins quarter-octave bins below the amax exponent (35: about 9 octaves), bell-shaped
      // counts peaking at 2/7 of the way down; every bin nonzero, the rounding remainder in the
      // peak bin.
      const int top = static_cast<int>(std::floor(e)) + fpscope::kFp32Bias;
      uint64_t left = nz;
      for (int b = 0; b < kBins; ++b) {
        const int bin = (top - b / 4) * 4 + (3 - b % 4);
        if (bin < 4 || bin >= kHistBins) continue;
        const uint64_t c = std::max<uint64_t>(
            1, static_cast<uint64_t>(static_cast<double>(nz) * weight[static_cast<size_t>(b)] /
                                     weight_sum));
        st.hist[bin] += std::min(c, left);
        left -= std::min(c, left);
      }
      st.hist[std::clamp((top - kPeak / 4) * 4 + (3 - kPeak % 4), 4, kHistBins - 1)] += left;
      const float fp16_max = max_finite(Format::FP16);
      st.fmt[ih].overflow = st.amax > fp16_max ? nz / 1000 : 0;
      st.fmt[ih].underflow = e < -10 ? nz / 20 : 0;
      st.fmt[ih].subnormal = e < -8 ? nz / 10 : 0;
      st.fmt[ih].sum_err2 = st.sum_sq * 1e-7;
      st.fmt[ib].sum_err2 = st.sum_sq * 1e-5;
      st.fmt[i4].overflow = st.amax > max_finite(Format::E4M3) ? nz / 100 : 0;
      st.fmt[i4].underflow = e < 0 ? nz / 4 : nz / 50;
      st.fmt[i4].sum_err2 = st.sum_sq * 1e-3;
      st.fmt[i5].underflow = e < -6 ? nz / 8 : 0;
      st.fmt[i5].sum_err2 = st.sum_sq * 4e-3;
      w->observe(o);
    }
    trace::LossScaleRecord l;
    l.step = s;
    l.scale = scale;
    l.found_inf = s % 200 == 199;
    l.next_scale = l.found_inf ? scale / 2 : (s % 200 == 100 ? scale * 2 : scale);
    l.time_ns = s * 1000000 + 999000;
    scale = l.next_scale;
    w->loss_scale(l);
    if (s % 10 == 9) {
      for (int k = 0; k < 4; ++k) {
        trace::WeightUpdateRecord u;
        u.step = s;
        u.tensor = weights[k];
        u.elements = 256 * 512;
        u.changed = u.elements - 100;
        u.bf16 = {u.changed / (2 + k), 0.3 * (k + 1), 1.0 * (k + 1)};
        u.fp16 = {u.changed / (20 + k), 0.03 * (k + 1), 1.0 * (k + 1)};
        u.ratio_hist = {{-14, u.changed / 4}, {-10, u.changed / 4}, {-7, u.changed / 2}};
        w->weight_update(u);
      }
    }
  }
  if (!w->close()) {
    std::fprintf(stderr, "%s\n", w->error().c_str());
    return 2;
  }
  std::printf("wrote %s: %llu records, %llu steps\n", argv[1],
              static_cast<unsigned long long>(written), static_cast<unsigned long long>(steps));
  return 0;
}
