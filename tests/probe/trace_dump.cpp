// Dumps a trace as JSON (via the one reader, read_trace) for the Python end-to-end tests.
// Usage: probe_trace_dump FILE  -> JSON on stdout; exit 2 when nothing could be read.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "fpscope/trace_io.h"

using namespace fpscope;
using namespace fpscope::trace;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: probe_trace_dump FILE\n");
    return 2;
  }
  Trace t;
  ReadError err;
  if (!read_trace(argv[1], &t, &err)) {
    std::fprintf(stderr, "%s\n", err.message.c_str());
    return 2;
  }
  nlohmann::json j;
  j["truncated"] = t.truncated;
  j["clean_close"] = t.clean_close;
  j["dropped_bytes"] = t.dropped_bytes;
  j["step_source"] = step_source_name(t.step_source);
  j["metadata"] = nlohmann::json::parse(t.metadata_json, nullptr, false);
  for (const auto& ti : t.tensors) {
    j["tensors"].push_back({{"index", ti.index},
                            {"id", ti.id},
                            {"name", ti.name},
                            {"op", ti.op},
                            {"role", role_name(ti.role)},
                            {"dtype", spec(ti.dtype).name},
                            {"rows", ti.rows},
                            {"cols", ti.cols},
                            {"ld", ti.ld},
                            {"transa", std::string(1, ti.gemm.transa)},
                            {"transb", std::string(1, ti.gemm.transb)},
                            {"m", ti.gemm.m},
                            {"n", ti.gemm.n},
                            {"k", ti.gemm.k},
                            {"alpha", ti.gemm.alpha},
                            {"beta", ti.gemm.beta}});
  }
  for (const auto& o : t.observations) {
    nlohmann::json f;
    for (int i = 0; i < kNumTargets; ++i)
      f[spec(kTargets[i]).name] = {{"overflow", o.stats.fmt[i].overflow},
                                   {"underflow", o.stats.fmt[i].underflow},
                                   {"subnormal", o.stats.fmt[i].subnormal},
                                   {"sum_err2", o.stats.fmt[i].sum_err2}};
    j["observations"].push_back({{"tensor", o.tensor},
                                 {"step", o.step},
                                 {"seq", o.seq},
                                 {"count", o.stats.count},
                                 {"nan", o.stats.nan},
                                 {"pos_inf", o.stats.pos_inf},
                                 {"neg_inf", o.stats.neg_inf},
                                 {"zero", o.stats.zero},
                                 {"amax", o.stats.amax},
                                 {"min", o.stats.min},
                                 {"max", o.stats.max},
                                 {"sum", o.stats.sum},
                                 {"formats", f}});
  }
  for (const auto& s : t.steps)
    j["steps"].push_back(
        {{"step", s.step}, {"source", step_source_name(s.source)}, {"first_seq", s.first_seq}});
  for (const auto& l : t.losses) j["losses"].push_back({{"step", l.step}, {"value", l.value}});
  for (const auto& l : t.loss_scales)
    j["loss_scales"].push_back({{"step", l.step},
                                {"scale", l.scale},
                                {"found_inf", l.found_inf},
                                {"source", l.source == LossScaleSource::Api ? "api" : "kernel"}});
  for (const auto& w : t.weight_updates) {
    nlohmann::json h = nlohmann::json::array();
    for (const auto& [bin, c] : w.ratio_hist) h.push_back({bin, c});
    j["weight_updates"].push_back({{"step", w.step},
                                   {"tensor", w.tensor},
                                   {"elements", w.elements},
                                   {"changed", w.changed},
                                   {"master_dtype", spec(w.master_dtype).name},
                                   {"bf16",
                                    {{"stagnant", w.bf16.stagnant},
                                     {"lost_abs", w.bf16.lost_abs},
                                     {"delta_abs", w.bf16.delta_abs}}},
                                   {"fp16",
                                    {{"stagnant", w.fp16.stagnant},
                                     {"lost_abs", w.fp16.lost_abs},
                                     {"delta_abs", w.fp16.delta_abs}}},
                                   {"ratio_hist", h}});
  }
  for (const auto& e : t.events) j["events"].push_back({{"step", e.step}, {"text", e.text}});
  for (const char* k :
       {"tensors", "observations", "steps", "losses", "loss_scales", "weight_updates", "events"})
    if (!j.contains(k)) j[k] = nlohmann::json::array();
  // Names and texts are bytes from the traced program: not UTF-8 ones become U+FFFD, as everywhere.
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}
