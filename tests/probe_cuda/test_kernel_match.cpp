// Kernel-name recognition (what the CUPTI launch callback does with the name it is given), and
// which libcupti the probe loads.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cupti_hooks.h"
#include "kernel_match.h"

namespace fpscope::cuda {
namespace {

TEST(KernelMatch, PyTorchLossScaleUpdateMangledAndDemangled) {
  const std::string_view p = kDefaultOptimizerPattern;
  // at::native::amp_update_scale_cuda_kernel(float*, int*, const float*, double, double, int)
  EXPECT_EQ(classify_kernel("_ZN2at6native28amp_update_scale_cuda_kernelEPfPiPKfddi", p),
            KernelKind::LossScaleUpdate);
  EXPECT_EQ(classify_kernel("at::native::amp_update_scale_cuda_kernel(float*, int*, float const*, "
                            "double, double, int)",
                            p),
            KernelKind::LossScaleUpdate);
  // PyTorch 1.6-1.8: (int* growth_tracker, float* current_scale, float* found_inf, float*
  // new_scale, double, double, int): other argument positions -> must not be read as the current
  // layout.
  EXPECT_EQ(classify_kernel("_ZN2at6native28amp_update_scale_cuda_kernelEPiPfS1_S1_ddi", p),
            KernelKind::LossScaleUnknownAbi);
  EXPECT_EQ(classify_kernel("_Z28amp_update_scale_cuda_kernelPfPiS_fffifi", p),
            KernelKind::LossScaleUnknownAbi);
}

TEST(KernelMatch, UnscaleOptimizerAndOthers) {
  const std::string_view p = kDefaultOptimizerPattern;
  EXPECT_EQ(classify_kernel("_ZN2at6native12_GLOBAL__N_125multi_tensor_apply_kernelINS1_18Tensor"
                            "ListMetadataILi1EEENS1_14UnaryOpFunctorIfLi1ELi1ELi1EEEJZZZNS0_47_amp_"
                            "foreach_non_finite_check_and_unscale_cuda_ERKN3c108ArrayRefINS_6Tens"
                            "orEEERS9_RKS9_ENKUlvE_clEvENKUlvE0_clEvEUlfE_EEEvT_T0_DpT1_",
                            p),
            KernelKind::Unscale);
  EXPECT_EQ(classify_kernel("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<"
                            "at::native::(anonymous namespace)::FusedAdamMathFunctor<float, 4, "
                            "(at::native::ADAM_MODE)1, false>>(...)",
                            p),
            KernelKind::Optimizer);
  EXPECT_EQ(classify_kernel("ampere_sgemm_128x64_nn", p), KernelKind::Other);
  EXPECT_EQ(classify_kernel("my_adam_step", "sgd|adam_step"), KernelKind::Optimizer);
  EXPECT_EQ(classify_kernel("my_adam_step", ""), KernelKind::Other);
  EXPECT_EQ(classify_kernel("my_adam_step", "|"), KernelKind::Other);
}

}  // namespace
}  // namespace fpscope::cuda

namespace fpscope::cuda {
namespace {

// Issue 16 item 7: one classification per launched function, not per launch.
TEST(KernelClassCache, ClassifiesEachHandleOnceAndNullHandlesEveryTime) {
  KernelClassCache cache;
  int calls = 0;
  const int f1 = 0, f2 = 0;
  auto amp = [&] {
    ++calls;
    return classify_kernel("_ZN2at6native28amp_update_scale_cuda_kernelEPfPiPKfddi",
                           kDefaultOptimizerPattern);
  };
  auto other = [&] {
    ++calls;
    return classify_kernel("void gemm_kernel<float>()", kDefaultOptimizerPattern);
  };
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(cache.get(&f1, amp), KernelKind::LossScaleUpdate);
  EXPECT_EQ(calls, 1);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(cache.get(&f2, other), KernelKind::Other);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(cache.size(), 2u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cache.get(nullptr, amp), KernelKind::LossScaleUpdate);
  EXPECT_EQ(calls, 5);  // no handle: nothing to key on
}

}  // namespace
}  // namespace fpscope::cuda

// Issue 16 item 7: the CUPTI matching the program's CUDA runtime comes first (its runtime
// callback ids are those of its own CUDA version), then what the driver supports, newest first.
TEST(CuptiLibrary, TheRuntimesMajorFirstThenWhatTheDriverSupports) {
  using V = std::vector<std::string>;
  // torch built for CUDA 12 on a CUDA 13 driver: CUPTI 12, even where CUPTI 13 is installed.
  EXPECT_EQ(fpscope::cuda::cupti_candidates(12, 13000),
            (V{"libcupti.so.12", "libcupti.so.13", "libcupti.so"}));
  EXPECT_EQ(fpscope::cuda::cupti_candidates(13, 13000),
            (V{"libcupti.so.13", "libcupti.so.12", "libcupti.so"}));
  // A CUDA 12.4 driver (R550): CUPTI 13 would fail to subscribe; it is not tried.
  EXPECT_EQ(fpscope::cuda::cupti_candidates(0, 12040), (V{"libcupti.so.12", "libcupti.so"}));
  EXPECT_EQ(fpscope::cuda::cupti_candidates(12, 12040), (V{"libcupti.so.12", "libcupti.so"}));
  // Nothing known (a statically linked runtime, no driver table): newest first.
  EXPECT_EQ(fpscope::cuda::cupti_candidates(0, 0),
            (V{"libcupti.so.13", "libcupti.so.12", "libcupti.so"}));
}
