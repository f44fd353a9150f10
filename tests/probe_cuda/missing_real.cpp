// A program WITHOUT cuBLAS that calls the preloaded probe's cublasGemmEx / cublasLtMatmul hooks
// (found with dlsym): the real functions do not exist in the process. The hooks must return an
// error status every time and say so once (a failed lookup is cached, not repeated per call).
#include <dlfcn.h>

#include <cstdio>

int main() {
  using GemmEx = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int,
                         const void*, int, int, const void*, void*, int, int, int, int);
  using LtMatmul =
      int (*)(void*, void*, const void*, const void*, void*, const void*, void*, const void*,
              const void*, void*, void*, void*, const void*, void*, unsigned long, void*);
  auto gemm = reinterpret_cast<GemmEx>(dlsym(RTLD_DEFAULT, "cublasGemmEx"));
  auto lt = reinterpret_cast<LtMatmul>(dlsym(RTLD_DEFAULT, "cublasLtMatmul"));
  if (gemm == nullptr || lt == nullptr) {
    std::printf("no hooks (probe not preloaded)\n");
    return 3;
  }
  const float one = 1.0f;
  for (int i = 0; i < 3; ++i) {
    std::printf("cublasGemmEx %d\n", gemm(nullptr, 0, 0, 2, 2, 2, &one, nullptr, 0, 2, nullptr, 0,
                                          2, &one, nullptr, 0, 2, 68, -1));
    std::printf("cublasLtMatmul %d\n",
                lt(nullptr, nullptr, &one, nullptr, nullptr, nullptr, nullptr, &one, nullptr,
                   nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr));
  }
  return 0;
}
