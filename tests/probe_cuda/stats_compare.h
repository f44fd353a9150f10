// What the mock-driver tests (test_mock_gpu.cpp, test_mock_lt.cpp) and the real-driver checker
// (tests/gpu/gpu_path_check.cpp) compare, without GoogleTest: the program's own output lines, a
// trace's tensors and events, and a trace observation against the host statistics pass
// (compute_stats) of the same values. Counts, extrema and the histogram must be
// equal; the double sums agree to the rounding of a different summation order (the kernel's tree,
// stats_sim.h); the per-format squared errors to 1e-5 relative.
#pragma once

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "fpscope/host_stats.h"
#include "fpscope/trace_io.h"

namespace fpscope::cuda::compare {

// One line per field that differs ("amax 3 != host 4"); empty when the observation matches.
inline std::vector<std::string> mismatches(const trace::Trace& t, const trace::ObservationRecord& o,
                                           const TensorStats& h) {
  std::vector<std::string> r;
  auto eq = [&](const std::string& what, auto got, auto want) {
    if (!(got == want)) {
      std::ostringstream s;
      s.precision(17);
      s << what << " " << got << " != host " << want;
      r.push_back(s.str());
    }
  };
  // |got - want| <= tol, as EXPECT_NEAR (a NaN on either side differs).
  auto near = [&](const std::string& what, double got, double want, double tol) {
    if (!(std::fabs(got - want) <= tol)) {
      std::ostringstream s;
      s.precision(17);
      s << what << " " << got << " != host " << want << " (tolerance " << tol << ")";
      r.push_back(s.str());
    }
  };
  const StatsScalars& s = o.stats;
  eq("count", s.count, h.count);
  eq("nan", s.nan, h.nan);
  eq("pos_inf", s.pos_inf, h.pos_inf);
  eq("neg_inf", s.neg_inf, h.neg_inf);
  eq("zero", s.zero, h.zero);
  eq("amax", s.amax, h.amax);
  eq("min", s.min, h.min);
  eq("max", s.max, h.max);
  near("sum", s.sum, h.sum, 1e-9 * std::sqrt(h.sum_sq) + 1e-300);
  near("sum_sq", s.sum_sq, h.sum_sq, 1e-12 * h.sum_sq);
  for (int i = 0; i < kNumTargets; ++i) {
    const std::string target = "target " + std::to_string(i) + " ";
    eq(target + "overflow", s.fmt[i].overflow, h.fmt[i].overflow);
    eq(target + "underflow", s.fmt[i].underflow, h.fmt[i].underflow);
    eq(target + "subnormal", s.fmt[i].subnormal, h.fmt[i].subnormal);
    near(target + "sum_err2", s.fmt[i].sum_err2, h.fmt[i].sum_err2, 1e-5 * h.fmt[i].sum_err2);
  }
  std::vector<uint64_t> hist(kHistBins, 0);
  for (uint32_t k = 0; k < o.hist_len; ++k)
    hist[t.hist_bins[o.hist_begin + k]] = t.hist_counts[o.hist_begin + k];
  for (int k = 0; k < kHistBins; ++k) eq("histogram bin " + std::to_string(k), hist[k], h.hist[k]);
  return r;
}

// The program's own lines ("step ...", "capture: ...", "captured: ..."), without the probe's log or
// the mock's counters: what must be the same with and without the probe.
inline std::string program_lines(const std::string& out) {
  std::string r, line;
  for (char c : out) {
    if (c != '\n') {
      line += c;
      continue;
    }
    if (line.rfind("step ", 0) == 0 || line.rfind("capture:", 0) == 0 ||
        line.rfind("captured:", 0) == 0)
      r += line + "\n";
    line.clear();
  }
  return r;
}

inline const trace::TensorInfo* tensor(const trace::Trace& t, const std::string& id) {
  for (const auto& ti : t.tensors)
    if (ti.id == id) return &ti;
  return nullptr;
}

inline bool has_event(const trace::Trace& t, const std::string& part) {
  for (const auto& e : t.events)
    if (e.text.find(part) != std::string::npos) return true;
  return false;
}

}  // namespace fpscope::cuda::compare
