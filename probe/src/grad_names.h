// Backward GEMMs named after their forward op by the buffers they read (docs/metrics.md "Steps
// and tensor names"). Any program, any BLAS path: no framework signal is needed.
//
// Within one step, every forward GEMM's weight and input operands are remembered by buffer
// (address and stored extent). A later GEMM of the same step that reads the weight buffer of a
// forward GEMM and writes a result of that forward's input shape is its input gradient,
// "<forward label>.dgrad"; one that reads the input buffer and writes the weight's shape is its
// weight gradient, "<forward label>.wgrad" ("#j" from the second of a name in a step).
// The weight is the right-hand factor of the row-major product (y = x W^T for nn.Linear, x @ W
// for numpy): operand A of a column-major (Fortran, cuBLAS, CblasColMajor) call, B of a
// CblasRowMajor call.
// With module-path scopes (the PyTorch integration), only calls of a "<path>.bwd" scope are
// backward candidates, matched only to forward GEMMs made in <path> or its submodules (a root's
// scope is its class name, so its ".bwd" matches only the root's own GEMMs) (a buffer
// address reused within the step must not name one module's backward after another's forward);
// without scopes every call is (when `unscoped`). A buffer that a later GEMM writes (its D) is
// no longer the forward's operand and is not matched again.
// Operands without an address (OperandDesc::data == nullptr) are never matched. Not thread-safe
// (the recorder's lock); calls are named in their labelled order.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "recorder.h"

namespace fpscope::probe {

class GradNamer {
 public:
  // unscoped: whether calls without a scope (no module hooks: numpy, C, --no-python-hooks) are
  // named too; else only "<path>.bwd" calls are refined (see the recorder for why).
  explicit GradNamer(bool unscoped) : unscoped_(unscoped) {}
  // The label of call `d`, labelled `label` from `scope` by the step labeler, in `step`.
  std::string name(const std::string& label, const std::string& scope, const GemmDesc& d,
                   uint64_t step);
  void clear();

 private:
  struct Buffer {
    const void* data = nullptr;
    uint64_t rows = 0, cols = 0, ld = 0;
    bool operator==(const Buffer&) const = default;
  };
  struct Forward {
    std::string label, scope;
    Buffer weight, input;  // data nullptr: overwritten since (never matched)
  };
  bool unscoped_;
  uint64_t step_ = UINT64_MAX;
  std::vector<Forward> forward_;
  std::unordered_map<std::string, uint32_t> counts_;
};

}  // namespace fpscope::probe
