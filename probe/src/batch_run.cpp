#include "batch_run.h"

#include <algorithm>
#include <cstring>

namespace fpscope::probe {
namespace {

bool same_shape(const GemmDesc& a, const GemmDesc& b) {
  if (std::strcmp(a.op, b.op) != 0 || a.layout != b.layout || a.num_operands != b.num_operands ||
      a.device != b.device || a.stream != b.stream)
    return false;
  const trace::GemmSignature &x = a.sig, &y = b.sig;
  if (x.transa != y.transa || x.transb != y.transb || x.m != y.m || x.n != y.n || x.k != y.k ||
      x.batch != y.batch || x.lda != y.lda || x.ldb != y.ldb || x.ldc != y.ldc ||
      x.alpha != y.alpha || x.beta != y.beta)
    return false;
  for (int i = 0; i < a.num_operands; ++i) {
    const OperandDesc &p = a.operands[i], &q = b.operands[i];
    if (p.role != q.role || p.dtype != q.dtype || p.rows != q.rows || p.cols != q.cols ||
        p.ld != q.ld || (p.data == nullptr) != (q.data == nullptr))
      return false;
  }
  return true;
}

int output_index(const GemmDesc& d) {
  return d.num_operands - 1;  // D is last
}

}  // namespace

uint64_t BatchRun::extent_bytes(const OperandDesc& o) {
  if (o.rows == 0 || o.cols == 0) return 0;
  const uint64_t size = o.dtype == Format::FP32                                ? 4
                        : (o.dtype == Format::BF16 || o.dtype == Format::FP16) ? 2
                                                                               : 1;
  return ((o.cols - 1) * o.ld + o.rows) * size;
}

void BatchRun::start(const GemmDesc& d, const std::string& scope) {
  first_ = d;
  scope_ = scope;
  count_ = 1;
  for (int i = 0; i < d.num_operands; ++i) {
    last_[i] = d.operands[i].data;
    stride_[i] = 0;
  }
  const OperandDesc& out = d.operands[output_index(d)];
  out_lo_ = reinterpret_cast<uintptr_t>(out.data);
  out_hi_ = out_lo_ + extent_bytes(out);
}

bool BatchRun::extend(const GemmDesc& d, const std::string& scope) {
  if (count_ == 0 || !same_shape(first_, d) || scope != scope_) return false;
  int64_t step[kMaxOperands] = {};
  for (int i = 0; i < d.num_operands; ++i) {
    if (d.operands[i].data == nullptr) return false;
    step[i] = static_cast<int64_t>(reinterpret_cast<uintptr_t>(d.operands[i].data) -
                                   reinterpret_cast<uintptr_t>(last_[i]));
    if (count_ >= 2 && step[i] != stride_[i]) return false;
  }
  const int o = output_index(d);
  const OperandDesc& out = d.operands[o];
  const uint64_t out_bytes = extent_bytes(out);
  // The matrices of one batched tensor each: the outputs packed one after the other (a fresh
  // [batch, m, n] result), every input a slice of one tensor (packed or interleaved: at most one
  // matrix apart) and none the same for every call (q, k, v projections of one input are three
  // ops; separately allocated arrays in a loop are farther apart than their extent).
  for (int i = 0; i < d.num_operands; ++i) {
    const uint64_t bytes = extent_bytes(d.operands[i]);
    const uint64_t dist = static_cast<uint64_t>(step[i] < 0 ? -step[i] : step[i]);
    const bool written =
        d.operands[i].role == trace::Role::C || d.operands[i].role == trace::Role::D;
    if (bytes == 0 || dist == 0 || (written ? dist != bytes : dist > bytes)) return false;
  }
  // Independent calls: no input is an output of the run (an RNN's recurrence).
  for (int i = 0; i < d.num_operands; ++i) {
    if (d.operands[i].role == trace::Role::C || d.operands[i].role == trace::Role::D) continue;
    const uintptr_t lo = reinterpret_cast<uintptr_t>(d.operands[i].data);
    const uintptr_t hi = lo + extent_bytes(d.operands[i]);
    const uintptr_t new_lo = reinterpret_cast<uintptr_t>(out.data);
    const uintptr_t run_lo = std::min(out_lo_, new_lo),
                    run_hi = std::max(out_hi_, new_lo + out_bytes);
    if (lo < run_hi && run_lo < hi) return false;
  }
  for (int i = 0; i < d.num_operands; ++i) {
    stride_[i] = step[i];
    last_[i] = d.operands[i].data;
  }
  const uintptr_t new_lo = reinterpret_cast<uintptr_t>(out.data);
  out_lo_ = std::min(out_lo_, new_lo);
  out_hi_ = std::max(out_hi_, new_lo + out_bytes);
  ++count_;
  return true;
}

}  // namespace fpscope::probe
