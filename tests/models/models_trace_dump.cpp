// Dumps what the model tests check of a trace as JSON (via the one reader, read_trace): step
// marks, LOSS records, tensor definitions, weight updates, event texts and each observation's
// tensor, step and element count, and (`details`) its histogram, block-format section and sketch.
// Usage: models_trace_dump FILE  -> JSON on stdout; exit 2 when nothing could be read.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "fpscope/trace_io.h"

using namespace fpscope::trace;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: models_trace_dump FILE\n");
    return 2;
  }
  Trace t;
  ReadError err;
  if (!read_trace(argv[1], &t, &err)) {
    std::fprintf(stderr, "%s\n", err.message.c_str());
    return 2;
  }
  nlohmann::json j;
  j["clean_close"] = t.clean_close;
  j["version"] = std::to_string(t.version_major) + "." + std::to_string(t.version_minor);
  j["step_source"] = step_source_name(t.step_source);
  j["steps"] = nlohmann::json::array();
  for (const StepMark& m : t.steps)
    j["steps"].push_back({{"step", m.step}, {"source", step_source_name(m.source)}});
  j["losses"] = nlohmann::json::array();
  for (const LossRecord& l : t.losses)
    j["losses"].push_back({{"step", l.step}, {"value", l.value}});
  j["loss_scales"] = nlohmann::json::array();
  for (const LossScaleRecord& l : t.loss_scales)
    j["loss_scales"].push_back({{"step", l.step}, {"scale", l.scale}, {"found_inf", l.found_inf}});
  j["tensors"] = nlohmann::json::array();
  for (const TensorInfo& ti : t.tensors)
    j["tensors"].push_back({{"id", ti.id},
                            {"op", ti.op},
                            {"role", role_name(ti.role)},
                            {"name", ti.name},
                            {"rows", ti.rows},
                            {"cols", ti.cols},
                            {"transa", std::string(1, ti.gemm.transa)},
                            {"m", ti.gemm.m},
                            {"n", ti.gemm.n},
                            {"k", ti.gemm.k},
                            {"batch", ti.gemm.batch}});
  j["weight_updates"] = nlohmann::json::array();
  for (const WeightUpdateRecord& w : t.weight_updates)
    j["weight_updates"].push_back({{"tensor", w.tensor},
                                   {"step", w.step},
                                   {"dtype", std::string(fpscope::spec(w.master_dtype).name)},
                                   {"elements", w.elements},
                                   {"watched", w.watched},
                                   {"changed", w.changed},
                                   {"bf16_stagnant", w.bf16.stagnant}});
  j["events"] = nlohmann::json::array();
  for (const EventRecord& e : t.events) {
    const char* level = e.level == EventLevel::Error     ? "error"
                        : e.level == EventLevel::Warning ? "warning"
                                                         : "info";
    j["events"].push_back({{"step", e.step}, {"level", level}, {"text", e.text}});
  }
  j["observations"] = nlohmann::json::array();
  for (const ObservationRecord& o : t.observations)
    j["observations"].push_back({o.tensor, o.step, o.stats.count, o.stats.amax});
  // What `fpscope export` leaves out of each observation, by observation index: the exponent
  // histogram, the block-format section and the value sketch (tests/models/test_stats_helper.py).
  j["details"] = nlohmann::json::array();
  for (size_t i = 0; i < t.observations.size(); ++i) {
    const ObservationRecord& o = t.observations[i];
    nlohmann::json hist = nlohmann::json::array();
    for (uint32_t k = 0; k < o.hist_len; ++k)
      hist.push_back({t.hist_bins[o.hist_begin + k], t.hist_counts[o.hist_begin + k]});
    j["details"].push_back({{"hist", hist}});
  }
  for (const BlockStatsRecord& b : t.block_stats) {
    nlohmann::json fmts = nlohmann::json::array();
    for (int f = 0; f < fpscope::kNumBlockFormats; ++f) {
      const fpscope::BlockFormatCounts& c = b.fmt[f];
      fmts.push_back({c.blocks, c.elements, c.flushed, c.saturated, c.zero_blocks,
                      c.scale_underflow, c.scale_overflow, c.nan_scale, c.sum_err2, c.sum_x2,
                      b.scale_hist[f]});
    }
    j["details"][b.observation]["blocks"] = {{"mask", b.mask},
                                             {"axis", static_cast<int>(b.axis)},
                                             {"nvfp4_tensor_scale", b.nvfp4_tensor_scale},
                                             {"formats", fmts}};
  }
  for (const SketchRecord& sk : t.sketches) j["details"][sk.observation]["sketch"] = sk.v;
  std::cout << j.dump() << "\n";
  return 0;
}
