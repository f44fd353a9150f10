#include "grad_names.h"

namespace fpscope::probe {
namespace {

constexpr int kCblasRowMajor = 101;
constexpr size_t kMaxForward = 4096;

bool ends_with(const std::string& s, const char* suffix) {
  const std::string t(suffix);
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

}  // namespace

void GradNamer::clear() {
  step_ = UINT64_MAX;
  forward_.clear();
  counts_.clear();
}

std::string GradNamer::name(const std::string& label, const std::string& scope, const GemmDesc& d,
                            uint64_t step) {
  if (step != step_) {
    forward_.clear();
    counts_.clear();
    step_ = step;
  }
  const OperandDesc* a = nullptr;
  const OperandDesc* b = nullptr;
  const OperandDesc* out = nullptr;
  for (int i = 0; i < d.num_operands; ++i) {
    const OperandDesc& o = d.operands[i];
    if (o.role == trace::Role::A) a = &o;
    if (o.role == trace::Role::B) b = &o;
    if (o.role == trace::Role::D) out = &o;
  }
  if (a == nullptr || b == nullptr || out == nullptr || a->data == nullptr || b->data == nullptr)
    return label;
  const Buffer ba{a->data, a->rows, a->cols, a->ld};
  const Buffer bb{b->data, b->rows, b->cols, b->ld};
  // What this call writes is no longer the operand a remembered forward GEMM read there (a freed
  // buffer reused by the allocator): never matched again.
  for (Forward& f : forward_) {
    if (f.weight.data == out->data) f.weight.data = nullptr;
    if (f.input.data == out->data) f.input.data = nullptr;
  }
  if (scope.empty() && !unscoped_) return label;
  const bool backward_candidate = scope.empty() || ends_with(scope, ".bwd");
  if (backward_candidate) {
    // "<path>.bwd": only forward GEMMs made inside module <path> (or one of its submodules).
    const std::string path = scope.empty() ? std::string() : scope.substr(0, scope.size() - 4);
    const std::string under = path + ".";
    // The latest such forward GEMM of the step this call reads an operand of.
    for (auto f = forward_.rbegin(); f != forward_.rend(); ++f) {
      if (!path.empty() && f->scope != path && f->scope.rfind(under, 0) != 0) continue;
      const bool reads_weight = f->weight.data != nullptr && (ba == f->weight || bb == f->weight);
      const bool reads_input = f->input.data != nullptr && (ba == f->input || bb == f->input);
      const char* kind = nullptr;
      if (reads_weight && out->rows == f->input.rows && out->cols == f->input.cols)
        kind = ".dgrad";
      else if (reads_input && out->rows == f->weight.rows && out->cols == f->weight.cols)
        kind = ".wgrad";
      if (kind == nullptr) continue;
      const std::string base = f->label + kind;
      const uint32_t j = counts_[base]++;
      return j == 0 ? base : base + "#" + std::to_string(j);
    }
    if (!scope.empty()) return label;  // a backward call of no forward GEMM seen: as labelled
  }
  const bool row_major = d.layout == kCblasRowMajor && std::string(d.op).rfind("cblas", 0) == 0;
  if (forward_.size() >= kMaxForward) forward_.erase(forward_.begin());  // steps that never end
  forward_.push_back(Forward{label, scope, row_major ? bb : ba, row_major ? ba : bb});
  return label;
}

}  // namespace fpscope::probe
