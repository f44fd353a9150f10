// Control for the interposition test: a plain cublasGemmEx definition with no .symver. Built twice:
// with no version script (expected to interpose: glibc accepts an unversioned definition for a
// versioned reference) and inside a differently named node (expected NOT to interpose).
#include <dlfcn.h>

#include <atomic>
#include <cstring>

namespace {
std::atomic<long long> g_seen{0};
}

extern "C" __attribute__((visibility("default"))) int cublasGemmEx(
    void* h, int ta, int tb, int m, int n, int k, const void* alpha, const void* A, int at, int lda,
    const void* B, int bt, int ldb, const void* beta, void* C, int ct, int ldc, int comp,
    int algo) {
  g_seen.fetch_add(1);
  using Fn = int (*)(void*, int, int, int, int, int, const void*, const void*, int, int,
                     const void*, int, int, const void*, void*, int, int, int, int);
  auto real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "cublasGemmEx"));
  return real(h, ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, C, ct, ldc, comp, algo);
}

extern "C" __attribute__((visibility("default"))) long long fpscope_cuda_hook_calls(
    const char* name) {
  return std::strcmp(name, "cublasGemmEx") == 0 ? g_seen.load() : 0;
}
