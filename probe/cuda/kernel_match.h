// Recognition of the kernels that carry the mixed-precision recipe, by the name CUPTI reports at
// launch (mangled or demangled). Pure functions: unit-tested on the CPU.
//
//  - PyTorch's loss-scale update (aten/src/ATen/native/cuda/AmpKernels.cu, PyTorch >= 1.9):
//      at::native::amp_update_scale_cuda_kernel(float* current_scale, int* growth_tracker,
//                                               const float* found_inf, double, double, int)
//    mangled _ZN2at6native28amp_update_scale_cuda_kernelEPfPiPKfddi. Only this parameter list is
//    accepted (PyTorch 1.6-1.8 had (int*, float*, float*, float*, double, double, int)): for any
//    other the argument positions are unknown and the kernel is reported as LossScaleUnknownAbi.
//  - PyTorch's unscale + inf check: kernels launched from
//    _amp_foreach_non_finite_check_and_unscale_cuda_ (the host function's name is part of the
//    kernel's mangled name through its lambda).
//  - Optimizer steps: names containing any '|'-separated substring of the pattern
//    (FPSCOPE_OPTIMIZER_PATTERN; default kDefaultOptimizerPattern).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fpscope::cuda {

enum class KernelKind { Other, LossScaleUpdate, LossScaleUnknownAbi, Unscale, Optimizer };

// PyTorch fused Adam/AdamW (FusedAdamMathFunctor, also used with amsgrad) and the fused SGD /
// Adagrad functors. foreach (non-fused) optimizers launch generic _foreach_* kernels that carry no
// optimizer name: set the pattern (e.g. "_foreach_addcdiv") for those.
inline constexpr const char* kDefaultOptimizerPattern =
    "FusedAdamMathFunctor|FusedSgdMathFunctor|FusedAdagradMathFunctor|fused_adam|fused_adamw";

KernelKind classify_kernel(std::string_view name, std::string_view optimizer_pattern);

// Each launched function classified once (issue 16 item 7): CUPTI calls the launch callback for
// every kernel launch, and classify_kernel is string work, while a function handle (the driver's
// CUfunction, the runtime's host stub) names one kernel for the life of the process. One cache
// per thread (nothing shared on the launch path); past kMaxEntries distinct handles it stops
// adding and classifies the rest each time (bounded memory with JIT-heavy programs).
class KernelClassCache {
 public:
  static constexpr size_t kMaxEntries = 1 << 16;
  template <typename Classify>
  KernelKind get(const void* handle, Classify&& classify) {
    if (handle == nullptr) return classify();
    if (const auto it = map_.find(handle); it != map_.end()) return it->second;
    const KernelKind k = classify();
    if (map_.size() < kMaxEntries) map_.emplace(handle, k);
    return k;
  }
  size_t size() const { return map_.size(); }

 private:
  std::unordered_map<const void*, KernelKind> map_;
};

// Argument positions of the accepted amp_update_scale_cuda_kernel signature.
inline constexpr int kAmpScaleArg = 0;     // float* current_scale
inline constexpr int kAmpFoundInfArg = 2;  // const float* found_inf

}  // namespace fpscope::cuda
