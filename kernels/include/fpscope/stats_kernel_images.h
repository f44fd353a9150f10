// The statistics kernels as the probe ships them (built from kernels/cuda/stats_kernels.cu by
// kernels/CMakeLists.txt, embedded in the library that links fpscope_kernels_cuda):
//  - fatbin: cubins for sm_80, sm_90 and sm_100 plus compute_100 PTX, as nvcc of the build's
//    toolkit makes them. A driver of that toolkit's major (or newer) loads it.
//  - ptx: the same kernels as PTX text declared at ISA version 8.0 for target sm_80 (checked by
//    ptxas at build time, tests/kernels): what a CUDA 12.0 driver (R525) can JIT-compile, loaded
//    when the driver refuses the fatbin. NUL-terminated, as cuModuleLoadData wants PTX.
// Either is given to cuModuleLoadData in the context the kernels will run in.
#pragma once

#include <cstddef>

namespace fpscope {

struct KernelImage {
  const void* data = nullptr;
  size_t size = 0;  // bytes (the PTX's includes its terminating NUL)
};

KernelImage stats_kernels_fatbin();
KernelImage stats_kernels_ptx();
// The PTX ISA version and target the ptx image declares ("8.0", "sm_80").
inline constexpr const char* kStatsPtxIsa = "8.0";
inline constexpr const char* kStatsPtxTarget = "sm_80";

}  // namespace fpscope
