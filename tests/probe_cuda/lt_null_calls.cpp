// A cuBLAS/cuBLASLt program with its own error handling, for the pass-through test on a machine
// without a GPU: it builds REAL cuBLASLt descriptors (host objects), tries to create handles (which
// fails without a GPU), then calls cublasLtMatmul and cublasGemmEx with the null handles it got,
// and reports every status. Under the probe, the cublasLtMatmul call goes the whole CUDA path
// (descriptor decoding, recorder ticket, CUPTI start, pipeline() creation, which finds no device):
// the output and the exit code must stay the same.
//
// The matmul: D (m x n, FP16) = A (m x k, FP16) * B (k x n, FP16) + beta * C with C == D, beta 1,
// so the probe takes C's statistics BEFORE the call (and so creates its device pipeline).
// Exit code: 4 when handle creation failed (no GPU: the case under test); 0 with "GPU present:
// skipped" when a handle could be created (the fake addresses below must not reach a GPU).
#include <cublasLt.h>
#include <cublas_v2.h>

#include <cstdio>

namespace {
constexpr int kM = 24, kN = 40, kK = 56;
}

int main() {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  int bad = 0;
  bad += cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS;
  bad += cublasLtMatrixLayoutCreate(&a, CUDA_R_16F, kM, kK, kM) != CUBLAS_STATUS_SUCCESS;
  bad += cublasLtMatrixLayoutCreate(&b, CUDA_R_16F, kK, kN, kK) != CUBLAS_STATUS_SUCCESS;
  bad += cublasLtMatrixLayoutCreate(&c, CUDA_R_16F, kM, kN, kM) != CUBLAS_STATUS_SUCCESS;
  std::printf("descriptors %s\n", bad == 0 ? "created" : "FAILED");
  if (bad != 0) return 1;

  cublasLtHandle_t lt = nullptr;
  const cublasStatus_t lt_created = cublasLtCreate(&lt);
  cublasHandle_t h = nullptr;
  const cublasStatus_t created = cublasCreate(&h);
  std::printf("cublasLtCreate %d\ncublasCreate %d\n", static_cast<int>(lt_created),
              static_cast<int>(created));
  if (lt_created == CUBLAS_STATUS_SUCCESS || created == CUBLAS_STATUS_SUCCESS) {
    // A GPU is present: the fake addresses below would be used for real. Nothing to test here.
    std::printf("GPU present: skipped\n");
    if (h != nullptr) cublasDestroy(h);
    if (lt != nullptr) cublasLtDestroy(lt);
    return 0;
  }
  std::fprintf(stderr, "lt_null_calls: no cuBLAS handle (no GPU?): calling with null handles\n");

  // Never dereferenced by cuBLAS with a null handle, nor by the probe (it only enqueues device work
  // it cannot enqueue here): fake device addresses.
  void* const dA = reinterpret_cast<void*>(0x1000);
  void* const dB = reinterpret_cast<void*>(0x2000);
  void* const dC = reinterpret_cast<void*>(0x3000);
  const float one = 1.0f;
  const cublasStatus_t lt_status = cublasLtMatmul(lt, desc, &one, dA, a, dB, b, &one, dC, c, dC, c,
                                                  nullptr, nullptr, 0, nullptr);
  std::printf("cublasLtMatmul %d\n", static_cast<int>(lt_status));
  const cublasStatus_t ex_status = cublasGemmEx(
      h, CUBLAS_OP_N, CUBLAS_OP_N, kM, kN, kK, &one, dA, CUDA_R_16F, kM, dB, CUDA_R_16F, kK, &one,
      dC, CUDA_R_16F, kM, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  std::printf("cublasGemmEx %d\n", static_cast<int>(ex_status));

  cublasLtMatrixLayoutDestroy(c);
  cublasLtMatrixLayoutDestroy(b);
  cublasLtMatrixLayoutDestroy(a);
  cublasLtMatmulDescDestroy(desc);
  std::fprintf(stderr, "lt_null_calls: exiting with 4\n");
  return 4;
}
