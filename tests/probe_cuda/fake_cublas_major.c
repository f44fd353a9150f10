/* A stand-in libcublas.so.<FAKE_MAJOR> (12 or 13), built twice with the version node cuBLAS itself
   uses (libcublas.so.<major>: fake_cublas12.map, fake_cublas13.map), for the
   test of a process holding two cuBLAS majors (torch built for CUDA 12 plus an extension built
   for CUDA 13): each GEMM returns a status that says which major ran it, 1000 + major. The handle
   queries fail, so the probe records nothing and just passes the call through. */
#define FAKE_STATUS (1000 + FAKE_MAJOR)

int cublasSgemm_v2(void* h, int ta, int tb, int m, int n, int k, const float* alpha, const float* A,
                   int lda, const float* B, int ldb, const float* beta, float* C, int ldc) {
  (void)h, (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)A, (void)lda;
  (void)B, (void)ldb, (void)beta, (void)C, (void)ldc;
  return FAKE_STATUS;
}

int cublasGemmEx(void* h, int ta, int tb, int m, int n, int k, const void* alpha, const void* A,
                 int at, int lda, const void* B, int bt, int ldb, const void* beta, void* C, int ct,
                 int ldc, int comp, int algo) {
  (void)h, (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)A, (void)at;
  (void)lda, (void)B, (void)bt, (void)ldb, (void)beta, (void)C, (void)ct, (void)ldc, (void)comp;
  (void)algo;
  return FAKE_STATUS;
}

int cublasGetStream_v2(void* h, void** stream) {
  (void)h, (void)stream;
  return 1; /* CUBLAS_STATUS_NOT_INITIALIZED */
}

int cublasGetPointerMode_v2(void* h, int* mode) {
  (void)h, (void)mode;
  return 1;
}
