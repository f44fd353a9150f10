// Calls EVERY function the probe hooks, with a null handle, and prints "<name> <status>" per call.
// Linked against the real libcublas/libcublasLt (so its references are versioned). When the probe
// is preloaded, it also prints "seen <name> <count>" from fpscope_cuda_hook_calls. Needs no GPU.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <dlfcn.h>

#include <cstdio>

int main() {
  cublasHandle_t h = nullptr;
  float fa = 1, fb = 0;
  __half ha{}, hb{};
  const void* arr[1] = {nullptr};
  void* carr[1] = {nullptr};
  struct Call {
    const char* name;
    int status;
  } calls[] = {
      {"cublasGemmEx", cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &fa, nullptr, CUDA_R_16F,
                                    2, nullptr, CUDA_R_16F, 2, &fb, nullptr, CUDA_R_16F, 2,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)},
      {"cublasGemmEx_64", cublasGemmEx_64(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &fa, nullptr,
                                          CUDA_R_16BF, 2, nullptr, CUDA_R_16BF, 2, &fb, nullptr,
                                          CUDA_R_16BF, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)},
      {"cublasGemmStridedBatchedEx",
       cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 2, 2, 2, &fa, nullptr, CUDA_R_16F, 2,
                                  4, nullptr, CUDA_R_16F, 2, 4, &fb, nullptr, CUDA_R_16F, 2, 4, 3,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)},
      {"cublasGemmStridedBatchedEx_64",
       cublasGemmStridedBatchedEx_64(h, CUBLAS_OP_T, CUBLAS_OP_N, 2, 2, 2, &fa, nullptr, CUDA_R_16F,
                                     2, 4, nullptr, CUDA_R_16F, 2, 4, &fb, nullptr, CUDA_R_16F, 2,
                                     4, 3, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)},
      {"cublasGemmBatchedEx",
       cublasGemmBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &fa, arr, CUDA_R_32F, 2, arr,
                           CUDA_R_32F, 2, &fb, carr, CUDA_R_32F, 2, 1, CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT)},
      {"cublasGemmBatchedEx_64",
       cublasGemmBatchedEx_64(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &fa, arr, CUDA_R_32F, 2, arr,
                              CUDA_R_32F, 2, &fb, carr, CUDA_R_32F, 2, 1, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT)},
      {"cublasSgemm_v2", cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &fa, nullptr, 2, nullptr,
                                     2, &fb, nullptr, 2)},
      {"cublasSgemm_v2_64", cublasSgemm_64(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &fa, nullptr, 2,
                                           nullptr, 2, &fb, nullptr, 2)},
      {"cublasHgemm", cublasHgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &ha, nullptr, 2, nullptr, 2,
                                  &hb, nullptr, 2)},
      {"cublasHgemm_64", cublasHgemm_64(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &ha, nullptr, 2,
                                        nullptr, 2, &hb, nullptr, 2)},
      {"cublasSgemmStridedBatched",
       cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, 2, 2, 2, &fa, nullptr, 2, 4, nullptr,
                                 2, 4, &fb, nullptr, 2, 4, 3)},
      {"cublasSgemmStridedBatched_64",
       cublasSgemmStridedBatched_64(h, CUBLAS_OP_N, CUBLAS_OP_T, 2, 2, 2, &fa, nullptr, 2, 4,
                                    nullptr, 2, 4, &fb, nullptr, 2, 4, 3)},
      {"cublasHgemmStridedBatched",
       cublasHgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, 2, 2, 2, &ha, nullptr, 2, 4, nullptr,
                                 2, 4, &hb, nullptr, 2, 4, 3)},
      {"cublasHgemmStridedBatched_64",
       cublasHgemmStridedBatched_64(h, CUBLAS_OP_N, CUBLAS_OP_T, 2, 2, 2, &ha, nullptr, 2, 4,
                                    nullptr, 2, 4, &hb, nullptr, 2, 4, 3)},
      {"cublasLtMatmul",
       cublasLtMatmul(nullptr, nullptr, &fa, nullptr, nullptr, nullptr, nullptr, &fb, nullptr,
                      nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr)},
  };
  for (const Call& c : calls) std::printf("%s %d\n", c.name, c.status);
  using Count = long long (*)(const char*);
  auto count = reinterpret_cast<Count>(dlsym(RTLD_DEFAULT, "fpscope_cuda_hook_calls"));
  if (count != nullptr) {
    for (const Call& c : calls) std::printf("seen %s %lld\n", c.name, count(c.name));
  }
  return 0;
}
