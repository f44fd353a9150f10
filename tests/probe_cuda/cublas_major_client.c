/* A client of one cuBLAS major (linked against fake_cublas_major.c built as libcublas.so.<MAJOR>):
   its references are cublasSgemm_v2@libcublas.so.<MAJOR> and cublasGemmEx@libcublas.so.<MAJOR>,
   as in a library built against that CUDA. Exports cublas_major_client_<MAJOR>(). */
int cublasSgemm_v2(void* h, int ta, int tb, int m, int n, int k, const float* alpha, const float* A,
                   int lda, const float* B, int ldb, const float* beta, float* C, int ldc);
int cublasGemmEx(void* h, int ta, int tb, int m, int n, int k, const void* alpha, const void* A,
                 int at, int lda, const void* B, int bt, int ldb, const void* beta, void* C, int ct,
                 int ldc, int comp, int algo);

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

/* The statuses of a null-handle cublasSgemm_v2 and cublasGemmEx, packed as sgemm * 10000 + gemmex.
 */
__attribute__((visibility("default"))) int CAT(cublas_major_client_, CLIENT_MAJOR)(void) {
  float one = 1.0f, c = 0.0f;
  const int s = cublasSgemm_v2(0, 0, 0, 1, 1, 1, &one, &one, 1, &one, 1, &one, &c, 1);
  const int g =
      cublasGemmEx(0, 0, 0, 1, 1, 1, &one, &one, 0, 1, &one, 0, 1, &one, &c, 0, 1, 68, -1);
  return s * 10000 + g;
}
