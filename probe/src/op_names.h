// The op names the probe records (TensorInfo::op, FPSCOPE_OPS): one list for the hooks that use
// them and the configuration that checks FPSCOPE_OPS against them.
#pragma once

namespace fpscope::probe {

// Host BLAS hooks (probe/src/hooks_blas.cpp).
inline constexpr const char* kOpSgemm = "sgemm";
inline constexpr const char* kOpCblasSgemm = "cblas_sgemm";
inline constexpr const char* kOpSbgemm = "sbgemm";
inline constexpr const char* kOpCblasSbgemm = "cblas_sbgemm";
inline constexpr const char* kHostOps[] = {kOpSgemm, kOpCblasSgemm, kOpSbgemm, kOpCblasSbgemm};

// cuBLAS/cuBLASLt hooks (probe/cuda), in the order of cuda::Hook: the symbol names, from the one
// table probe/cuda/cublas_hooks.def (plain preprocessor text: no CUDA header needed here).
inline constexpr const char* kCudaOps[] = {
#define FPSCOPE_CUBLAS_SYMBOL(Id, Symbol, Library, Since) #Symbol,
#include "../cuda/cublas_hooks.def"
};

}  // namespace fpscope::probe
