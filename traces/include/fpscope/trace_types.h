// fpscope trace records: what the probe writes and every reader (CLI, GUI, tests) sees.
// The byte encoding is specified in traces/FORMAT.md; these are the in-memory forms.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/stats.h"
#include "fpscope/update_loss.h"

namespace fpscope::trace {

// Numbering is part of the trace format: append only.
enum class Role : uint8_t { A = 0, B = 1, C = 2, D = 3, Weight = 4 };
const char* role_name(Role r);  // "A", "B", "C", "D", "W"

// Who defined step boundaries (DESIGN.md "Steps"). Append only.
enum class StepSource : uint8_t {
  None = 0,             // no step boundaries seen: everything is step 0
  Api = 1,              // fpscope_step() / fpscope.py
  Nvtx = 2,             // NVTX range named like FPSCOPE_STEP_RANGE
  LossScaleKernel = 3,  // PyTorch's amp_update_scale_cuda_kernel
  OptimizerKernel = 4,  // kernel name matched FPSCOPE_OPTIMIZER_PATTERN
  GemmPeriod = 5,       // period of the repeating GEMM-signature sequence (unmodified CPU run)
};
const char* step_source_name(StepSource s);  // "none", "api", "nvtx", "loss_scale_kernel", ...

enum class LossScaleSource : uint8_t { Api = 0, Kernel = 1 };
enum class EventLevel : uint8_t { Info = 0, Warning = 1, Error = 2 };

// GEMM signature, recorded once per tensor (the operand's call site).
struct GemmSignature {
  char transa = 'N';
  char transb = 'N';
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  double alpha = 1.0;
  double beta = 0.0;
  int64_t batch = 1;
};

// Defines a tensor identity once; observations refer to it by `index`.
// Identity across steps: (id, role, dtype, shape) - see DESIGN.md "Tensor identity".
struct TensorInfo {
  uint32_t index = 0;  // assigned by TraceWriter::define_tensor, dense from 0
  std::string id;      // "gemm#3.D", or "<scope>.D" when named; for watched weights the name
  std::string name;    // human name from fpscope scopes / NVTX, empty when none
  std::string op;      // "sgemm", "cblas_sgemm", "sbgemm", "cublasGemmEx", "cublasLtMatmul", "watch"
  Role role = Role::D;
  Format dtype = Format::FP32;
  uint64_t rows = 0;  // 2-D view as stored, column-major: rows is the contiguous extent
  uint64_t cols = 0;
  uint64_t ld = 0;
  int32_t device = -1;  // -1 = host
  GemmSignature gemm;
};

// One observation of one tensor. Writer side: the full dense accumulator.
struct Observation {
  uint32_t tensor = 0;  // TensorInfo::index
  uint64_t step = 0;
  uint64_t seq = 0;      // global sequence number of the intercepted call (orders ops in a step)
  uint64_t stream = 0;   // 0 for host
  uint64_t time_ns = 0;  // since the trace started
  TensorStats stats;
};

// Reader side: the scalar statistics plus a slice of the trace's sparse histogram pool.
struct ObservationRecord {
  uint32_t tensor = 0;
  uint64_t step = 0;
  uint64_t seq = 0;
  uint64_t stream = 0;
  uint64_t time_ns = 0;
  StatsScalars stats;
  uint32_t hist_begin = 0;  // into Trace::hist_bins / Trace::hist_counts
  uint32_t hist_len = 0;
};

struct StepMark {
  uint64_t step = 0;  // the step that begins here
  StepSource source = StepSource::None;
  uint64_t time_ns = 0;
  uint64_t first_seq = 0;  // sequence number of the first call in this step
};

struct LossScaleRecord {
  uint64_t step = 0;
  double scale = 0.0;      // the scale in effect for this step (before the update)
  bool found_inf = false;  // this step's gradients held Inf/NaN (the optimizer step was skipped)
  double next_scale = 0.0;  // the scale after the update (0 when unknown)
  LossScaleSource source = LossScaleSource::Api;
  uint64_t time_ns = 0;
};

// Master-weight update rounding loss of one watched tensor between step-1 and step.
// DESIGN.md: applied_F = cast_F(cast_F(w_prev) + delta) - cast_F(w_prev), over delta != 0.
struct WeightUpdateRecord {
  uint64_t step = 0;
  uint32_t tensor = 0;  // TensorInfo::index (role Weight, op "watch")
  Format master_dtype = Format::FP32;  // not FP32: master weights are not FP32 (flagged)
  uint64_t elements = 0;
  uint64_t changed = 0;  // elements with delta != 0
  UpdateLossCounts bf16;
  UpdateLossCounts fp16;
  // Sparse histogram of floor(log2(|delta| / |w_prev|)) over changed elements with w_prev != 0.
  std::vector<std::pair<int16_t, uint64_t>> ratio_hist;
};

struct EventRecord {
  uint64_t step = 0;
  uint64_t time_ns = 0;
  EventLevel level = EventLevel::Info;
  std::string text;
};

}  // namespace fpscope::trace
