// Test helper: builds fpscope::trace::Trace objects by hand (no writer needed).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fpscope/trace_io.h"

namespace fpscope::test {

inline int fi(Format f) {
  return target_index(f);
}

struct Builder {
  trace::Trace t;

  uint32_t tensor(const std::string& id, trace::Role role = trace::Role::D, uint64_t rows = 4,
                  uint64_t cols = 4, Format dtype = Format::FP32, const std::string& name = "",
                  const std::string& op = "sgemm") {
    trace::TensorInfo info;
    info.index = static_cast<uint32_t>(t.tensors.size());
    info.id = id;
    info.name = name;
    info.op = op;
    info.role = role;
    info.dtype = dtype;
    info.rows = rows;
    info.cols = cols;
    t.tensors.push_back(info);
    return info.index;
  }

  // An observation of `count` nonzero finite elements with the given amax and sum of squares.
  // Every format starts with zero counts/error; adjust through the returned reference.
  trace::ObservationRecord& obs(uint32_t tensor, uint64_t step, uint64_t seq, uint64_t count,
                                float amax, double sum_sq) {
    trace::ObservationRecord r;
    r.tensor = tensor;
    r.step = step;
    r.seq = seq;
    r.time_ns = seq * 1000;
    r.stats.count = count;
    r.stats.amax = amax;
    r.stats.min = -amax;
    r.stats.max = amax;
    r.stats.sum_sq = sum_sq;
    r.hist_begin = static_cast<uint32_t>(t.hist_bins.size());
    t.observations.push_back(r);
    return t.observations.back();
  }

  // Appends a histogram entry to the LAST observation.
  void hist(uint16_t bin, uint64_t count) {
    t.hist_bins.push_back(bin);
    t.hist_counts.push_back(count);
    ++t.observations.back().hist_len;
  }

  void loss_scale(uint64_t step, double scale, bool found_inf, double next_scale = 0.0) {
    trace::LossScaleRecord r;
    r.step = step;
    r.scale = scale;
    r.found_inf = found_inf;
    r.next_scale = next_scale;
    r.time_ns = step * 1000000;
    t.loss_scales.push_back(r);
  }
};

}  // namespace fpscope::test
