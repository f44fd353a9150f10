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
// Rank sets (--rank R --world-size W): the metadata carries "rank" and "world_size" as the probe
// writes them; each rank draws its own activations (seed + rank) and the same weights (a shared
// generator, as data-parallel replicas hold). --fault-rank F plants, on rank F only, a scaled-up
// input from step steps/3 on: "layer0.out" (gemm#0.D) grows by 3e4, so it overflows FP16 there
// first, before any other tensor on any rank breaks. --desync-rank D: on rank D only, from step
// steps/3 on, "layer0.weight" (gemm#0.B) holds its replicas' values plus 1e-3 (a replica out of
// sync: the values differ, nothing overflows).
// --watch-extra: two more watched parameters: "encoder.big.weight", 1,048,576 elements of which a
// uniform sample of 2048 positions is followed (watched < elements, format 1.2) with updates 2e-3
// of the weights (x N(0,1): about 2/3 stagnate in BF16), and "head.bias", 256 elements watched
// whole, with updates of 1e-1 of the weights (nothing lost). By lost BF16 mass: encoder.big.weight,
// w1, head.bias.
//
// --blocks MASK: the statistics pass also measures the block-scaled formats of bit f of MASK
// (kBlockFormats[f]; 63: all six), so every observation carries a block section (format 1.3).
//
// --sketch 1: every observation carries its value sketch (format 1.4) and every step one LOSS
// record (a decaying curve), as `fpscope record --sketch` of a training loop. --perturb P (in
// thousandths): the same program with a drift planted from step S/3 on: layer 0's output scaled
// by 1 + e, layer 1's by 1 + e/4, e = P/1000 * (steps since S/3 + 1), and the loss raised by e/2;
// two traces made with and without --perturb differ there only (the same seeds), by ~e.
//
// Usage: fpscope_gui_gen_trace OUT.fpst [--steps S] [--layers L] [--elements E] [--rank R
//          --world-size W [--fault-rank F] [--desync-rank D]] [--watch-extra 1] [--blocks MASK]
//          [--sketch 1 [--perturb P]]
//   records = steps * (3 * layers + 2) tensor observations (+ weight updates, loss scales).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "fpscope/host_stats.h"
#include "fpscope/trace_io.h"
#include "fpscope/update_loss.h"
#include "fpscope/value_sketch.h"

using namespace fpscope;

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: fpscope_gui_gen_trace OUT.fpst [--steps S] [--layers L] [--elements E] "
               "[--rank R --world-size W [--fault-rank F] [--desync-rank D]] [--watch-extra 1] "
               "[--blocks MASK] [--sketch 1 [--perturb P]]\n");
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
  long rank = -1, world = -1, fault_rank = -1, desync_rank = -1;
  bool watch_extra = false;
  uint32_t block_mask = 0;
  bool sketch = false;
  long perturb = 0;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    const long v = std::strtol(argv[++i], nullptr, 10);
    if (a == "--rank" || a == "--fault-rank" || a == "--desync-rank") {
      if (v < 0) return usage();
      (a == "--rank" ? rank : a == "--fault-rank" ? fault_rank : desync_rank) = v;
      continue;
    }
    if (v <= 0) return usage();
    if (a == "--world-size") {
      world = v;
      continue;
    }
    if (a == "--blocks") {
      if (v > static_cast<long>(kAllBlockFormats)) return usage();
      block_mask = static_cast<uint32_t>(v);
      continue;
    }
    if (a == "--watch-extra") {
      watch_extra = true;
      continue;
    }
    if (a == "--sketch") {
      sketch = true;
      continue;
    }
    if (a == "--perturb") {
      perturb = v;
      continue;
    }
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
  std::string meta = R"({"generator":"fpscope_gui_gen_trace")";
  if (rank >= 0)
    meta += R"(,"rank":")" + std::to_string(rank) + R"(","world_size":")" +
            std::to_string(world > 0 ? world : rank + 1) + "\"";
  meta += "}";
  auto w = trace::TraceWriter::open(out, meta, wo, &err);
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
  // --watch-extra: (tensor, elements, sampled positions, update size relative to the weight).
  struct Extra {
    uint32_t index;
    uint64_t elements;
    size_t positions;
    float rel;
    std::vector<float> prev, cur;
  };
  std::vector<Extra> extras;
  if (watch_extra) {
    for (const auto& [name, el, pos, rel] : {std::tuple<const char*, uint64_t, size_t, float>{
                                                 "encoder.big.weight", 1u << 20, 2048, 2e-3f},
                                             {"head.bias", 256, 256, 1e-1f}}) {
      trace::TensorInfo info = winfo;
      info.id = info.name = name;
      info.rows = el;
      extras.push_back({w->define_tensor(info), el, pos, rel, {}, {}});
    }
  }

  std::mt19937_64 rng(12345 + static_cast<uint64_t>(std::max(0L, rank)) * 7919u);
  // Replicated weights: the same on every rank (a generator of their own when ranks are asked).
  std::mt19937_64 weight_rng(4242);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> data(n);
  std::vector<float> wprev(4096), wcur(4096);
  for (auto& v : wprev) v = 0.02f * normal(rng);
  for (auto& e : extras) {
    e.prev.resize(e.positions);
    for (auto& v : e.prev) v = 0.05f * normal(rng);
    e.cur = e.prev;
  }
  const int fault_step = steps / 3;
  if (watch_extra) {  // what the integration writes for a parameter over the watch budget
    trace::EventRecord ev;
    ev.text = "watch: left out encoder.embedding.weight: no FPSCOPE_WATCH_BUDGET left";
    w->event(ev);
  }
  const int nan_step = steps * 7 / 10;
  double scale = 65536.0;
  int clean = 0;
  uint64_t seq = 0, time_ns = 0;
  StatsOptions opt;
  opt.block_formats = block_mask;
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
      if (sketch) {
        ValueSketch vs;
        compute_sketch(data.data(), Format::FP32, rows, cols, rows, &vs);
        o.sketch.assign(vs.v, vs.v + kSketchBuckets);
      }
      w->observe(o);
    };
    for (size_t ti = 0; ti < tensors.size(); ++ti) {
      const auto& t = tensors[ti];
      auto& g = rank >= 0 && ti % 3 == 1 ? weight_rng : rng;  // ti % 3 == 1: the B operands
      const bool planted = ti == 2 && rank >= 0 && rank == fault_rank && s >= fault_step;
      const float sigma = static_cast<float>(t.sigma) * (planted ? 3e4f : 1.0f);
      for (auto& v : data) v = sigma * normal(g);
      if (ti == 1 && rank >= 0 && rank == desync_rank && s >= fault_step)
        for (auto& v : data) v += 1e-3f;
      // --perturb: layer 0's output (ti 2) by 1 + e, layer 1's (ti 5) by 1 + e/4.
      const double e =
          s >= fault_step ? static_cast<double>(perturb) / 1000.0 * (s - fault_step + 1) : 0.0;
      if (e > 0 && (ti == 2 || ti == 5))
        for (auto& v : data) v *= static_cast<float>(1.0 + (ti == 2 ? e : e / 4));
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
    if (sketch) {
      const double e =
          s >= fault_step ? static_cast<double>(perturb) / 1000.0 * (s - fault_step + 1) : 0.0;
      trace::LossRecord lr;
      lr.step = step;
      lr.value = 2.0 * std::exp(-2.5 * frac) + 0.2 + e / 2;
      lr.time_ns = time_ns;
      w->loss(lr);
    }

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
      for (auto& e : extras) {
        for (size_t i = 0; i < e.positions; ++i)
          e.cur[i] = e.prev[i] + e.rel * std::abs(e.prev[i]) * normal(rng);
        trace::WeightUpdateRecord x;
        x.step = step;
        x.tensor = e.index;
        x.elements = e.elements;
        x.watched = e.positions;
        compute_update_loss(e.prev.data(), e.cur.data(), e.positions, &x.bf16, &x.fp16, &x.changed,
                            hist);
        for (int b = 0; b < kRatioBins; ++b)
          if (hist[b]) x.ratio_hist.emplace_back(static_cast<int16_t>(b + kRatioLog2Min), hist[b]);
        w->weight_update(x);
        e.prev = e.cur;
      }
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
