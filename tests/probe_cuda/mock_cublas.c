/* A computing stand-in for libcublas.so.13 on the strict mock driver (tests/mock_cuda): "device"
   memory is host memory there, so each GEMM runs on the CPU when it is called, which is stream
   order on the mock (its streams run work at enqueue). Exported under cuBLAS's own version node
   (mock_cublas13.map), so the probe's versioned hooks interpose on it as on the real library.
   It needs a current context, as cuBLAS does (a handle works in the context current at
   cublasCreate). Only what mock_gpu_prog calls: column-major, alpha/beta in host memory. */
#include <cuda.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { kSuccess = 0, kNotInitialized = 1, kInvalidValue = 7, kNotSupported = 15 };
enum { kR32F = 0, kR16BF = 14 };

struct MockHandle {
  CUcontext ctx;
  CUstream stream;
};

int cublasCreate_v2(struct MockHandle** h) {
  CUcontext ctx = NULL;
  if (cuCtxGetCurrent(&ctx) != CUDA_SUCCESS || ctx == NULL) return kNotInitialized;
  *h = (struct MockHandle*)calloc(1, sizeof(struct MockHandle));
  (*h)->ctx = ctx;
  return kSuccess;
}
int cublasDestroy_v2(struct MockHandle* h) {
  free(h);
  return kSuccess;
}
int cublasSetStream_v2(struct MockHandle* h, CUstream s) {
  h->stream = s;
  return kSuccess;
}
int cublasGetStream_v2(struct MockHandle* h, CUstream* s) {
  *s = h->stream;
  return kSuccess;
}
int cublasGetPointerMode_v2(struct MockHandle* h, int* mode) {
  (void)h;
  *mode = 0; /* CUBLAS_POINTER_MODE_HOST */
  return kSuccess;
}

static float load(const void* p, int type, size_t i) {
  if (type == kR32F) return ((const float*)p)[i];
  uint32_t b = (uint32_t)((const uint16_t*)p)[i] << 16;
  float f;
  memcpy(&f, &b, 4);
  return f;
}

static int gemm(struct MockHandle* h, int ta, int tb, int m, int n, int k, float alpha,
                const void* A, int at, int lda, const void* B, int bt, int ldb, float beta,
                float* C, int ldc) {
  CUcontext cur = NULL;
  if (cuCtxGetCurrent(&cur) != CUDA_SUCCESS || cur != h->ctx) return kNotInitialized;
  if (ta != 0 || tb != 0) return kNotSupported;
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      float acc = 0.0f;
      for (int l = 0; l < k; ++l)
        acc += load(A, at, (size_t)i + (size_t)l * lda) * load(B, bt, (size_t)l + (size_t)j * ldb);
      float* c = &C[(size_t)i + (size_t)j * ldc];
      *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
    }
  return kSuccess;
}

int cublasSgemm_v2(struct MockHandle* h, int ta, int tb, int m, int n, int k, const float* alpha,
                   const float* A, int lda, const float* B, int ldb, const float* beta, float* C,
                   int ldc) {
  return gemm(h, ta, tb, m, n, k, *alpha, A, kR32F, lda, B, kR32F, ldb, *beta, C, ldc);
}

int cublasGemmEx(struct MockHandle* h, int ta, int tb, int m, int n, int k, const void* alpha,
                 const void* A, int at, int lda, const void* B, int bt, int ldb, const void* beta,
                 void* C, int ct, int ldc, int comp, int algo) {
  (void)comp, (void)algo;
  if ((at != kR32F && at != kR16BF) || (bt != kR32F && bt != kR16BF) || ct != kR32F)
    return kInvalidValue;
  return gemm(h, ta, tb, m, n, k, *(const float*)alpha, A, at, lda, B, bt, ldb,
              *(const float*)beta, (float*)C, ldc);
}
