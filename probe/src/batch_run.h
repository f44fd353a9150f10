// One logical op for one batched GEMM issued as a loop of calls (PyTorch's CPU bmm: one sgemm_
// per batch-and-head): consecutive calls on one thread with the same signature and scope whose
// operand addresses advance by constant strides, none reading what an earlier call of the run
// wrote (an RNN's time steps do: they stay separate calls), are one observation per operand, as
// cublas*StridedBatched is on the GPU. The strides must be those of the matrices of one tensor:
// outputs packed (stride = one matrix), inputs at most one matrix apart, none 0 (an operand
// shared by every call, as the input of q, k, v projections, makes separate ops; separately
// allocated arrays in a loop lie farther apart than one matrix).
//
// BatchRun only decides membership (pure, unit-tested); the host hooks' runs (gemm_runs.h) take
// one ticket at the first call, measure every call's operands (on the calling thread or, from
// copies, on the statistics helper: the buffers may change as soon as a call returns) and merge
// them (TensorStats::merge) into the ticket's observation, completed when the run ends: at the
// thread's next GEMM that does not continue it, at fpscope_flush(), or at exit. Its tensors are
// defined then too (Recorder::end_batch), with GEMM signature batch = the number of calls, as the
// GPU's batched GEMMs have it.
#pragma once

#include <cstdint>
#include <string>

#include "recorder.h"

namespace fpscope::probe {

class BatchRun {
 public:
  // Starts a run with call `d` (operand addresses in d.operands[i].data) in `scope`.
  void start(const GemmDesc& d, const std::string& scope);
  // Whether `d` in `scope` is the next call of the run; if so, it is taken in.
  bool extend(const GemmDesc& d, const std::string& scope);
  void clear() { count_ = 0; }
  bool active() const { return count_ > 0; }
  uint64_t count() const { return count_; }

 private:
  static uint64_t extent_bytes(const OperandDesc& o);
  GemmDesc first_;
  std::string scope_;
  const void* last_[kMaxOperands] = {};
  int64_t stride_[kMaxOperands] = {};
  uint64_t count_ = 0;
  uintptr_t out_lo_ = 0, out_hi_ = 0;  // bytes written by the run so far (D)
};

}  // namespace fpscope::probe
