/* Loaded RTLD_LOCAL by gemm_prog ("local" mode), like a Python extension module: it needs
 * libfpscope_testblas.so, which RTLD_NEXT from the probe therefore cannot see. */
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);

void user_sgemm(int m, int n, int k, const float* a, const float* b, float* c) {
  const float one = 1.0f, zero = 0.0f;
  sgemm_("N", "N", &m, &n, &k, &one, a, &m, b, &k, &zero, c, &m);
}
