// What the CUDA test programs (mock_gpu_prog.cpp, mock_lt_prog.cpp; on a GPU tests/gpu's
// gpu_path_prog and gpu_lt_prog) share: failing calls end the program with a line naming the call
// (exit 2: the driver, 3: cuBLAS/cuBLASLt), the fpscope API looked up at run time (nullptr
// without the probe), and the deterministic hash their data is made from.
#pragma once

#include <cublas_api.h>
#include <cuda.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#define MOCK_PROG_CHECK(call, type, ok, code)                                   \
  do {                                                                          \
    const type r_ = (call);                                                     \
    if (r_ != (ok)) {                                                           \
      std::fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #call, \
                   static_cast<int>(r_));                                       \
      std::exit(code);                                                          \
    }                                                                           \
  } while (0)
#define CHECK_CU(call) MOCK_PROG_CHECK(call, CUresult, CUDA_SUCCESS, 2)
#define CHECK_BLAS(call) MOCK_PROG_CHECK(call, cublasStatus_t, CUBLAS_STATUS_SUCCESS, 3)

namespace mock_prog {

template <class F>
F api(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace mock_prog
