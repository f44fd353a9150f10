/* A tiny BLAS-shaped library for the probe's tests: sgemm_, cblas_sgemm and the BF16 GEMMs
 * sbgemm_/cblas_sbgemm (Debian's OpenBLAS 0.3.21 declares but does not export those), with the
 * reference BLAS semantics (column-major, C = alpha*op(A)*op(B) + beta*C; C is not read when
 * beta == 0). Naive loops: correctness only. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static float bf16_to_float(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static int is_trans(char c) {
  return !(c == 'N' || c == 'n');
}

#define GEMM_BODY(LOAD)                                                              \
  for (int j = 0; j < n; ++j) {                                                      \
    for (int i = 0; i < m; ++i) {                                                    \
      float acc = 0.0f;                                                              \
      for (int p = 0; p < k; ++p) {                                                  \
        float av = ta ? LOAD(a, p + (size_t)i * lda) : LOAD(a, i + (size_t)p * lda); \
        float bv = tb ? LOAD(b, j + (size_t)p * ldb) : LOAD(b, p + (size_t)j * ldb); \
        acc += av * bv;                                                              \
      }                                                                              \
      float* cij = &c[i + (size_t)j * ldc];                                          \
      *cij = beta == 0.0f ? alpha * acc : alpha * acc + beta * *cij;                 \
    }                                                                                \
  }

#define LOAD_F(p, idx) ((p)[idx])
#define LOAD_BF(p, idx) bf16_to_float((p)[idx])

static void sgemm_cm(int ta, int tb, int m, int n, int k, float alpha, const float* a, int lda,
                     const float* b, int ldb, float beta, float* c, int ldc) {
  GEMM_BODY(LOAD_F)
}
static void sbgemm_cm(int ta, int tb, int m, int n, int k, float alpha, const uint16_t* a, int lda,
                      const uint16_t* b, int ldb, float beta, float* c, int ldc) {
  GEMM_BODY(LOAD_BF)
}

void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc) {
  sgemm_cm(is_trans(*ta), is_trans(*tb), *m, *n, *k, *alpha, a, *lda, b, *ldb, *beta, c, *ldc);
}

void sbgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
             const float* alpha, const uint16_t* a, const int* lda, const uint16_t* b,
             const int* ldb, const float* beta, float* c, const int* ldc) {
  sbgemm_cm(is_trans(*ta), is_trans(*tb), *m, *n, *k, *alpha, a, *lda, b, *ldb, *beta, c, *ldc);
}

enum { RowMajor = 101, ColMajor = 102, NoTrans = 111 };

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T. */
void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float* a,
                 int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  if (order == ColMajor)
    sgemm_cm(ta != NoTrans, tb != NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    sgemm_cm(tb != NoTrans, ta != NoTrans, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);
}

void cblas_sbgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const uint16_t* a,
                  int lda, const uint16_t* b, int ldb, float beta, float* c, int ldc) {
  if (order == ColMajor)
    sbgemm_cm(ta != NoTrans, tb != NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    sbgemm_cm(tb != NoTrans, ta != NoTrans, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);
}
