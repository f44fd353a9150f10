/* One process holding libcublasLt.so.12 and libcublasLt.so.13, each called by its own client
   library (tests/probe_cuda/fake_cublasLt_major.c, cublasLt_major_client.c). Prints what each
   client's cublasLtMatmul returned, "12 <status>" and "13 <status>" (without the probe: 1012 and
   1013), then each library's descriptor reads, "reads <major> <matmul desc> <layout> <foreign>"
   (without the probe: none; under it, the getters the probe decoded each call with). Under the
   probe also "seen cublasLtMatmul <calls>" (its test hook fpscope_cuda_hook_calls). */
#include <dlfcn.h>
#include <stdio.h>

int cublasLt_major_client_12(void);
int cublasLt_major_client_13(void);
void cublasLt_major_reads_12(int* desc, int* layout, int* foreign);
void cublasLt_major_reads_13(int* desc, int* layout, int* foreign);

int main(void) {
  const int a = cublasLt_major_client_12(), b = cublasLt_major_client_13();
  printf("12 %d\n13 %d\n", a, b);
  int d = 0, l = 0, f = 0;
  cublasLt_major_reads_12(&d, &l, &f);
  printf("reads 12 %d %d %d\n", d, l, f);
  cublasLt_major_reads_13(&d, &l, &f);
  printf("reads 13 %d %d %d\n", d, l, f);
  long long (*calls)(const char*) =
      (long long (*)(const char*))dlsym(RTLD_DEFAULT, "fpscope_cuda_hook_calls");
  if (calls != NULL) printf("seen cublasLtMatmul %lld\n", calls("cublasLtMatmul"));
  return 0;
}
