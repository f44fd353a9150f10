// Writes a synthetic but REAL fpscope trace (TraceWriter + the host statistics pass on actual
// FP32 tensors) for the viewer's tests and benchmark. Deterministic (fixed seed).
//
// Run layout (per step; every step is recorded):
//   gemm#k.A / gemm#k.B / gemm#k.D for k < layers: activations ~N(0,1), weights ~N(0,0.02),
//   outputs ~N(0, 4); named "layer<k>.in/.weight/.out".
//   "head.logits" (gemm#<layers>.D): amax grows from ~3e3 to ~4e5 over the run, so it overflows
//   FP16 (max_finite(FP16)) from about 45% of the steps on: the planted FP16 overflow.
//   "grad.w1" (gemm#<layers+1>.D): values around 1e-6 .. 1e-9: FP16 flushes most of them.
//   "layer1.out" holds one NaN and one +Inf at step nan_step (= 70% of the steps).
// Loss scale every step: 65536 halved at the skipped steps (found_inf at nan_step and at
// nan_step + 2, and whenever the scale has grown to 2^24, where the scaled gradients would
// overflow: the usual sawtooth of a dynamic loss scaler), doubled every G clean steps,
// G = max(25, steps / 40) (PyTorch's GradScaler default is 2000). Watched weight "w1" (4096
// elements): SGD updates whose learning rate decays 1e-2 -> 1e-6, so BF16/FP16 master copies
// stagnate more and more.
//
// Usage: fpscope_gui_gen_trace OUT.fpst [--steps S] [--layers L] [--elements E]
//   records = steps * (3 * layers + 2) tensor observations (+ weight updates, loss scales).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "fpscope/host_stats.h"
#include "fpscope/trace_io.h"
#include "fpscope/update_loss.h"

using namespace fpscope;

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: fpscope_gui_gen_trace OUT.fpst [--steps S] [--layers L] [--elements E]\n");
  return 2;
}

uint32_t define(trace::TraceWriter& w, const std::string& id, const std::string& name,
                trace::Role role, uint64_t rows, uint64_t cols) {
  trace::TensorInfo info;
  info.id = id;
  info.name = name;
  info.op = "sgemm";
  info.role = role;
  info.dtype = Format::FP32;
  info.rows = rows;
  info.cols = cols;
  info.ld = rows;
  info.gemm.m = static_cast<int64_t>(rows);
  info.gemm.n = static_cast<int64_t>(cols);
  info.gemm.k = static_cast<int64_t>(rows);
  return w.define_tensor(info);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string out = argv[1];
  int steps = 120, layers = 3;
  uint64_t elements = 4096;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    const long v = std::strtol(argv[++i], nullptr, 10);
    if (v <= 0) return usage();
    if (a == "--steps") {
      steps = static_cast<int>(v);
    } else if (a == "--layers") {
      layers = static_cast<int>(v);
    } else if (a == "--elements") {
      elements = static_cast<uint64_t>(v);
    } else {
      return usage();
    }
  }
  std::string err;
  trace::WriterOptions wo;
  wo.max_pending_bytes = 256u << 20;
  auto w = trace::TraceWriter::open(out, R"({"generator":"fpscope_gui_gen_trace"})", wo, &err);
  if (!w) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  const uint64_t rows = 64, cols = (elements + rows - 1) / rows;
  const uint64_t n = rows * cols;
  struct T {
    uint32_t index;
    double sigma;
  };
  std::vector<T> tensors;
  for (int k = 0; k < layers; ++k) {
    const std::string g = "gemm#" + std::to_string(k);
    const std::string l = "layer" + std::to_string(k);
    tensors.push_back({define(*w, g + ".A", l + ".in", trace::Role::A, rows, cols), 1.0});
    tensors.push_back({define(*w, g + ".B", l + ".weight", trace::Role::B, rows, cols), 0.02});
    tensors.push_back({define(*w, g + ".D", l + ".out", trace::Role::D, rows, cols), 4.0});
  }
  const uint32_t logits = define(*w, "gemm#" + std::to_string(layers) + ".D", "head.logits",
                                 trace::Role::D, rows, cols);
  const uint32_t grad = define(*w, "gemm#" + std::to_string(layers + 1) + ".D", "grad.w1",
                               trace::Role::D, rows, cols);
  const uint32_t layer1_out = layers > 1 ? tensors[5].index : tensors[2].index;
  trace::TensorInfo winfo;
  winfo.id = "w1";
  winfo.name = "w1";
  winfo.op = "watch";
  winfo.role = trace::Role::Weight;
  winfo.rows = 4096;
  winfo.cols = 1;
  const uint32_t watched = w->define_tensor(winfo);

  std::mt19937_64 rng(12345);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> data(n);
  std::vector<float> wprev(4096), wcur(4096);
  for (auto& v : wprev) v = 0.02f * normal(rng);
  const int nan_step = steps * 7 / 10;
  double scale = 65536.0;
  int clean = 0;
  uint64_t seq = 0, time_ns = 0;
  StatsOptions opt;
  for (int s = 0; s < steps; ++s) {
    const auto step = static_cast<uint64_t>(s);
    trace::StepMark mark;
    mark.step = step;
    mark.source = trace::StepSource::Api;
    mark.time_ns = time_ns;
    mark.first_seq = seq;
    w->step(mark);
    auto observe = [&](uint32_t t) {
      trace::Observation o;
      o.tensor = t;
      o.step = step;
      o.seq = seq++;
      o.time_ns = (time_ns += 1000);
      compute_stats(data.data(), Format::FP32, rows, cols, rows, opt, &o.stats);
      w->observe(o);
    };
    for (const auto& t : tensors) {
      for (auto& v : data) v = static_cast<float>(t.sigma) * normal(rng);
      if (t.index == layer1_out && s == nan_step) {
        data[7] = std::nanf("");
        data[11] = INFINITY;
      }
      observe(t.index);
    }
    // Planted FP16 overflow: sigma grows geometrically, amax ~4 sigma crosses FP16's max.
    const double frac = steps > 1 ? static_cast<double>(s) / (steps - 1) : 0.0;
    const double sig = 800.0 * std::pow(100.0, frac);
    for (auto& v : data) v = static_cast<float>(sig) * normal(rng);
    observe(logits);
    const double gsig = 1e-6 * std::pow(1e-3, frac);
    for (auto& v : data) v = static_cast<float>(gsig) * normal(rng);
    observe(grad);

    const bool found_inf = s == nan_step || s == nan_step + 2 || scale >= 16777216.0;
    trace::LossScaleRecord ls;
    ls.step = step;
    ls.scale = scale;
    ls.found_inf = found_inf;
    if (found_inf) {
      scale /= 2;
      clean = 0;
    } else if (++clean == std::max(25, steps / 40)) {
      scale *= 2;
      clean = 0;
    }
    ls.next_scale = scale;
    ls.time_ns = time_ns;
    w->loss_scale(ls);

    if (s > 0 && !found_inf) {
      const double lr = 1e-2 * std::pow(1e-4, frac);
      for (size_t i = 0; i < wcur.size(); ++i)
        wcur[i] = wprev[i] - static_cast<float>(lr) * 0.1f * normal(rng);
      trace::WeightUpdateRecord u;
      u.step = step;
      u.tensor = watched;
      u.elements = wcur.size();
      uint64_t hist[kRatioBins];
      compute_update_loss(wprev.data(), wcur.data(), wcur.size(), &u.bf16, &u.fp16, &u.changed,
                          hist);
      for (int b = 0; b < kRatioBins; ++b)
        if (hist[b]) u.ratio_hist.emplace_back(static_cast<int16_t>(b + kRatioLog2Min), hist[b]);
      w->weight_update(u);
      wprev = wcur;
    }
  }
  if (!w->close()) {
    std::fprintf(stderr, "%s\n", w->error().c_str());
    return 1;
  }
  std::printf("%s: %llu records\n", out.c_str(),
              static_cast<unsigned long long>(w->records_written()));
  return 0;
}
