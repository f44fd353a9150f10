// The tensors of a trace, each defined once in its writer (docs/design.md "Tensor identity"):
// a GEMM operand by (label, role, dtype, shape, op), where the label is the step labeler's name
// of the call ("gemm#3", "attn.q#1"); a watched tensor by (name, dtype, count, device). Not
// thread-safe (the recorder's lock).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "fpscope/trace_io.h"
#include "recorder.h"

namespace fpscope::probe {

class TensorTable {
 public:
  // Operand `o` of call `d` named `label` (scope: the tensor's name, "" when none).
  uint32_t gemm_operand(trace::TraceWriter& w, const std::string& label, const std::string& scope,
                        const GemmDesc& d, const OperandDesc& o);
  // The same tensor if it is defined already, else nothing (and nothing is written).
  std::optional<uint32_t> find_gemm_operand(const std::string& label, const GemmDesc& d,
                                            const OperandDesc& o) const;
  // A watched tensor (role Weight, op "watch"); device -1 = host.
  uint32_t watched(trace::TraceWriter& w, const std::string& name, uint64_t count, Format dtype,
                   int32_t device);
  void clear() { index_.clear(); }  // a new trace (a forked child's)

 private:
  static std::string gemm_key(const std::string& label, const GemmDesc& d, const OperandDesc& o);
  std::unordered_map<std::string, uint32_t> index_;
};

}  // namespace fpscope::probe
