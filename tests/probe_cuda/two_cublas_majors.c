/* One process holding libcublas.so.12 and libcublas.so.13, each called by its own client library
   (tests/probe_cuda/fake_cublas_major.c, cublas_major_client.c). Prints what each client's calls
   returned: "12 <sgemm status> <gemmex status>" and "13 ...". Without the probe: 1012 and 1013.
   Under the probe also "seen <hook> <calls>" (its test hook fpscope_cuda_hook_calls). */
#include <dlfcn.h>
#include <stdio.h>

int cublas_major_client_12(void);
int cublas_major_client_13(void);

int main(void) {
  const int a = cublas_major_client_12(), b = cublas_major_client_13();
  printf("12 %d %d\n13 %d %d\n", a / 10000, a % 10000, b / 10000, b % 10000);
  long long (*calls)(const char*) =
      (long long (*)(const char*))dlsym(RTLD_DEFAULT, "fpscope_cuda_hook_calls");
  if (calls != NULL)
    printf("seen cublasSgemm_v2 %lld\nseen cublasGemmEx %lld\n", calls("cublasSgemm_v2"),
           calls("cublasGemmEx"));
  return 0;
}
