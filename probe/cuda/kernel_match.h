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

#include <string>
#include <string_view>

namespace fpscope::cuda {

enum class KernelKind { Other, LossScaleUpdate, LossScaleUnknownAbi, Unscale, Optimizer };

// PyTorch fused Adam/AdamW (FusedAdamMathFunctor, also used with amsgrad) and the fused SGD /
// Adagrad functors. foreach (non-fused) optimizers launch generic _foreach_* kernels that carry no
// optimizer name: set the pattern (e.g. "_foreach_addcdiv") for those.
inline constexpr const char* kDefaultOptimizerPattern =
    "FusedAdamMathFunctor|FusedSgdMathFunctor|FusedAdagradMathFunctor|fused_adam|fused_adamw";

KernelKind classify_kernel(std::string_view name, std::string_view optimizer_pattern);

// Argument positions of the accepted amp_update_scale_cuda_kernel signature.
inline constexpr int kAmpScaleArg = 0;     // float* current_scale
inline constexpr int kAmpFoundInfArg = 2;  // const float* found_inf

}  // namespace fpscope::cuda
