// cuBLAS / cuBLASLt interposers. Each exported hook is one function bound to several symbol
// versions (exports.map explains why): @@libcublas.so.13 (default), @libcublas.so.12 and, where the
// function existed, @libcublas.so.11. The hooks count every call, record it through gemm_engine
// and return the real function's status unchanged.
#include <cublasLt.h>
#include <cublas_api.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../src/log.h"
#include "../src/op_names.h"
#include "../src/recorder.h"
#include "gemm_engine.h"
#include "lt_decode.h"
#include "resolve.h"
#include "test_hooks.h"

#define FPSCOPE_EXPORT extern "C" __attribute__((visibility("default")))

// Binds hook function `impl` to `sym@@ver` (default) / `sym@ver`.
#define FPSCOPE_SYMVER_DEFAULT(impl, sym, ver) __asm__(".symver " #impl ", " #sym "@@" ver)
#define FPSCOPE_SYMVER_ALIAS(impl, other, sym, ver)                  \
  FPSCOPE_EXPORT decltype(impl) other __attribute__((alias(#impl))); \
  __asm__(".symver " #other ", " #sym "@" ver)

namespace fpscope::cuda {
namespace {

std::atomic<uint64_t> g_calls[static_cast<int>(Hook::Count)];

// "Looked up, not found": cached like a found address, so that a missing symbol costs one scan of
// the loaded objects and one log line per process, not one per call.
void* const kMissing = reinterpret_cast<void*>(uintptr_t{1});

// Lazily resolved real function (thread-safe; racers resolve the same value, one of them stores
// it and only that one logs a failure). nullptr when the process has no definition.
template <typename Fn>
Fn real(std::atomic<void*>& cache, const char* name, const char* hint) {
  void* p = cache.load(std::memory_order_acquire);
  if (p == nullptr) {
    void* found = resolve_real(name, hint);
    if (found == nullptr) found = kMissing;
    void* expected = nullptr;
    if (cache.compare_exchange_strong(expected, found, std::memory_order_acq_rel)) {
      p = found;
      if (found == kMissing)
        FPSCOPE_LOG(Error, "cannot find the real %s in this process: its calls return an error",
                    name);
    } else {
      p = expected;
    }
  }
  return p == kMissing ? nullptr : reinterpret_cast<Fn>(p);
}

// The real `fn`, typed like the hook fpscopecu_<fn> (cuBLAS's C++ header overloads some names).
#define REAL_AS(type, fn, hint)               \
  ([]() {                                     \
    static std::atomic<void*> cache{nullptr}; \
    return real<type>(cache, #fn, hint);      \
  }())
#define REAL(fn, hint) REAL_AS(decltype(&::fn), fn, hint)
#define REAL_HOOKED(fn, hint) REAL_AS(decltype(&::fpscopecu_##fn), fn, hint)

char op_char(int op) {
  return op == CUBLAS_OP_N ? 'N' : (op == CUBLAS_OP_T ? 'T' : 'C');
}

// Stream and pointer mode of a classic cuBLAS handle; false (record nothing) when the handle is
// unusable, e.g. null: the real function then reports the error itself.
bool handle_context(cublasHandle_t h, void** stream, bool* host_scalars) {
  if (h == nullptr) return false;
  auto get_stream = REAL(cublasGetStream_v2, "libcublas");
  auto get_mode = REAL(cublasGetPointerMode_v2, "libcublas");
  if (get_stream == nullptr || get_mode == nullptr) return false;
  cudaStream_t s = nullptr;
  cublasPointerMode_t mode = CUBLAS_POINTER_MODE_HOST;
  if (get_stream(h, &s) != CUBLAS_STATUS_SUCCESS) return false;
  if (get_mode(h, &mode) != CUBLAS_STATUS_SUCCESS) return false;
  *stream = s;
  *host_scalars = mode == CUBLAS_POINTER_MODE_HOST;
  return true;
}

enum class ScalarKind { F16, F32, F64, I32, Unknown };

ScalarKind scalar_kind_of_compute(int compute) {
  switch (compute) {
    case CUBLAS_COMPUTE_16F:
    case CUBLAS_COMPUTE_16F_PEDANTIC:
    case CUDA_R_16F:  // pre-CUDA-11 callers pass a cudaDataType
      return ScalarKind::F16;
    case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC:
    case CUDA_R_64F:
      return ScalarKind::F64;
    case CUBLAS_COMPUTE_32I:
    case CUBLAS_COMPUTE_32I_PEDANTIC:
    case CUDA_R_32I:
      return ScalarKind::I32;
    default:
      return ScalarKind::F32;
  }
}

ScalarKind scalar_kind_of_type(int cuda_type) {
  switch (cuda_type) {
    case CUDA_R_16F:
      return ScalarKind::F16;
    case CUDA_R_32F:
      return ScalarKind::F32;
    case CUDA_R_64F:
      return ScalarKind::F64;
    case CUDA_R_32I:
      return ScalarKind::I32;
    default:
      return ScalarKind::Unknown;
  }
}

// alpha/beta as double; NaN when not readable on the host (device pointer mode).
double read_scalar(const void* p, ScalarKind kind, bool host) {
  if (!host || p == nullptr) return std::numeric_limits<double>::quiet_NaN();
  switch (kind) {
    case ScalarKind::F16:
      return static_cast<double>(__half2float(*static_cast<const __half*>(p)));
    case ScalarKind::F32:
      return static_cast<double>(*static_cast<const float*>(p));
    case ScalarKind::F64:
      return *static_cast<const double*>(p);
    case ScalarKind::I32:
      return static_cast<double>(*static_cast<const int32_t*>(p));
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

DeviceOperand operand(trace::Role role, const void* data, int cuda_type, uint64_t rows,
                      uint64_t cols, uint64_t ld) {
  DeviceOperand o;
  o.role = role;
  o.data = data;
  o.dtype = format_from_cuda(cuda_type);
  o.rows = rows;
  o.cols = cols;
  o.ld = ld;
  return o;
}

// Classic-API GEMM: C (read when beta != 0) and D are the same buffer.
void fill_classic(GemmCall* c, const char* op, cublasOperation_t ta, cublasOperation_t tb,
                  int64_t m, int64_t n, int64_t k, double alpha, double beta, const void* A, int at,
                  int64_t lda, const void* B, int bt, int64_t ldb, void* C, int ct, int64_t ldc,
                  int64_t batch, int64_t sa, int64_t sb, int64_t sc, bool pointer_array) {
  c->op = op;
  c->sig.transa = op_char(ta);
  c->sig.transb = op_char(tb);
  c->sig.m = m;
  c->sig.n = n;
  c->sig.k = k;
  c->sig.lda = lda;
  c->sig.ldb = ldb;
  c->sig.ldc = ldc;
  c->sig.alpha = alpha;
  c->sig.beta = beta;
  c->sig.batch = batch;
  c->c_aliases_d = true;
  const auto um = static_cast<uint64_t>(m), un = static_cast<uint64_t>(n),
             uk = static_cast<uint64_t>(k);
  const bool a_n = ta == CUBLAS_OP_N, b_n = tb == CUBLAS_OP_N;
  int i = 0;
  c->operands[i++] =
      operand(trace::Role::A, A, at, a_n ? um : uk, a_n ? uk : um, static_cast<uint64_t>(lda));
  c->operands[i++] =
      operand(trace::Role::B, B, bt, b_n ? uk : un, b_n ? un : uk, static_cast<uint64_t>(ldb));
  if (!(beta == 0.0)) {  // NaN (unknown, device pointer mode) counts as "C is read"
    c->operands[i++] = operand(trace::Role::C, C, ct, um, un, static_cast<uint64_t>(ldc));
  }
  c->operands[i++] = operand(trace::Role::D, C, ct, um, un, static_cast<uint64_t>(ldc));
  c->num_operands = i;
  const int64_t strides[4] = {sa, sb, sc, sc};
  for (int j = 0; j < i; ++j) {
    DeviceOperand& o = c->operands[j];
    o.batch = static_cast<uint64_t>(batch);
    o.pointer_array = pointer_array;
    const int r = static_cast<int>(o.role);
    o.batch_stride = strides[r < 4 ? r : 3];
  }
}

// Counts the call, then records it around the real call when this is the outermost hook, the
// recorder is on and the handle tells its stream and pointer mode.
template <typename Call>
cublasStatus_t run_recorded(Hook h, cublasHandle_t handle, Call&& call,
                            void (*fill)(GemmCall*, void* stream, bool host, const void* args),
                            const void* args) {
  count_hook_call(h);
  probe::HookGuard guard;
  void* stream = nullptr;
  bool host = true;
  if (!guard.outermost() || probe::Recorder::get() == nullptr ||
      !handle_context(handle, &stream, &host))
    return call();
  GemmCall gc;
  gc.stream = stream;
  fill(&gc, stream, host, args);
  GemmState st = gemm_begin(gc);
  const cublasStatus_t status = call();
  gemm_end(gc, st, static_cast<int>(status));
  return status;
}

}  // namespace

const char* hook_name(Hook h) {
  static_assert(
      sizeof(probe::kCudaOps) / sizeof(probe::kCudaOps[0]) == static_cast<size_t>(Hook::Count),
      "probe/src/op_names.h lists one name per cuda::Hook");
  const int i = static_cast<int>(h);
  return i >= 0 && i < static_cast<int>(Hook::Count) ? probe::kCudaOps[i] : "?";
}
void count_hook_call(Hook h) {
  g_calls[static_cast<int>(h)].fetch_add(1, std::memory_order_relaxed);
}
uint64_t hook_calls(Hook h) {
  return g_calls[static_cast<int>(h)].load(std::memory_order_relaxed);
}

}  // namespace fpscope::cuda

using namespace fpscope::cuda;  // NOLINT: the hooks below are the C ABI surface

// ---- cublasGemmEx / _64 -------------------------------------------------------------------------
namespace {
template <typename I>
struct GemmExArgs {
  cublasOperation_t ta, tb;
  I m, n, k;
  const void *alpha, *A;
  cudaDataType at;
  I lda;
  const void* B;
  cudaDataType bt;
  I ldb;
  const void* beta;
  void* C;
  cudaDataType ct;
  I ldc;
  cublasComputeType_t comp;
  long long sa = 0, sb = 0, sc = 0;
  I batch = 1;
  bool pointer_array = false;
  const char* op;
};
template <typename I>
void fill_gemm_ex(GemmCall* c, void*, bool host, const void* p) {
  const auto& a = *static_cast<const GemmExArgs<I>*>(p);
  const ScalarKind sk = scalar_kind_of_compute(static_cast<int>(a.comp));
  fill_classic(c, a.op, a.ta, a.tb, a.m, a.n, a.k, read_scalar(a.alpha, sk, host),
               read_scalar(a.beta, sk, host), a.A, a.at, a.lda, a.B, a.bt, a.ldb, a.C, a.ct, a.ldc,
               a.batch, a.sa, a.sb, a.sc, a.pointer_array);
  c->layout = static_cast<int>(a.comp);
}
}  // namespace

FPSCOPE_EXPORT cublasStatus_t
fpscopecu_cublasGemmEx(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m,
                       int n, int k, const void* alpha, const void* A, cudaDataType at, int lda,
                       const void* B, cudaDataType bt, int ldb, const void* beta, void* C,
                       cudaDataType ct, int ldc, cublasComputeType_t comp, cublasGemmAlgo_t algo) {
  auto fn = REAL_HOOKED(cublasGemmEx, "libcublas");
  if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const GemmExArgs<int> args{
      ta, tb,  m,    n, k, alpha, A, at,    lda,           B, bt, ldb, beta, C,
      ct, ldc, comp, 0, 0, 0,     1, false, "cublasGemmEx"};
  return run_recorded(
      Hook::GemmEx, handle,
      [&] {
        return fn(handle, ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, C, ct, ldc, comp,
                  algo);
      },
      fill_gemm_ex<int>, &args);
}
FPSCOPE_SYMVER_DEFAULT(fpscopecu_cublasGemmEx, cublasGemmEx, "libcublas.so.13");
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasGemmEx, fpscopecu_cublasGemmEx_v12, cublasGemmEx,
                     "libcublas.so.12");
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasGemmEx, fpscopecu_cublasGemmEx_v11, cublasGemmEx,
                     "libcublas.so.11");

FPSCOPE_EXPORT cublasStatus_t fpscopecu_cublasGemmEx_64(
    cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
    int64_t k, const void* alpha, const void* A, cudaDataType at, int64_t lda, const void* B,
    cudaDataType bt, int64_t ldb, const void* beta, void* C, cudaDataType ct, int64_t ldc,
    cublasComputeType_t comp, cublasGemmAlgo_t algo) {
  auto fn = REAL_HOOKED(cublasGemmEx_64, "libcublas");
  if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const GemmExArgs<int64_t> args{ta,
                                 tb,
                                 m,
                                 n,
                                 k,
                                 alpha,
                                 A,
                                 at,
                                 lda,
                                 B,
                                 bt,
                                 ldb,
                                 beta,
                                 C,
                                 ct,
                                 ldc,
                                 comp,
                                 0,
                                 0,
                                 0,
                                 1,
                                 false,
                                 "cublasGemmEx_64"};
  return run_recorded(
      Hook::GemmEx_64, handle,
      [&] {
        return fn(handle, ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, C, ct, ldc, comp,
                  algo);
      },
      fill_gemm_ex<int64_t>, &args);
}
FPSCOPE_SYMVER_DEFAULT(fpscopecu_cublasGemmEx_64, cublasGemmEx_64, "libcublas.so.13");
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasGemmEx_64, fpscopecu_cublasGemmEx_64_v12, cublasGemmEx_64,
                     "libcublas.so.12");

// ---- cublasGemmStridedBatchedEx / _64 ----------------------------------------------------------
FPSCOPE_EXPORT cublasStatus_t fpscopecu_cublasGemmStridedBatchedEx(
    cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
    const void* alpha, const void* A, cudaDataType at, int lda, long long sa, const void* B,
    cudaDataType bt, int ldb, long long sb, const void* beta, void* C, cudaDataType ct, int ldc,
    long long sc, int batch, cublasComputeType_t comp, cublasGemmAlgo_t algo) {
  auto fn = REAL_HOOKED(cublasGemmStridedBatchedEx, "libcublas");
  if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const GemmExArgs<int> args{ta,
                             tb,
                             m,
                             n,
                             k,
                             alpha,
                             A,
                             at,
                             lda,
                             B,
                             bt,
                             ldb,
                             beta,
                             C,
                             ct,
                             ldc,
                             comp,
                             sa,
                             sb,
                             sc,
                             batch,
                             false,
                             "cublasGemmStridedBatchedEx"};
  return run_recorded(
      Hook::GemmStridedBatchedEx, handle,
      [&] {
        return fn(handle, ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C, ct, ldc,
                  sc, batch, comp, algo);
      },
      fill_gemm_ex<int>, &args);
}
FPSCOPE_SYMVER_DEFAULT(fpscopecu_cublasGemmStridedBatchedEx, cublasGemmStridedBatchedEx,
                       "libcublas.so.13");
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasGemmStridedBatchedEx, fpscopecu_cublasGemmStridedBatchedEx_v12,
                     cublasGemmStridedBatchedEx, "libcublas.so.12");
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasGemmStridedBatchedEx, fpscopecu_cublasGemmStridedBatchedEx_v11,
                     cublasGemmStridedBatchedEx, "libcublas.so.11");

FPSCOPE_EXPORT cublasStatus_t fpscopecu_cublasGemmStridedBatchedEx_64(
    cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
    int64_t k, const void* alpha, const void* A, cudaDataType at, int64_t lda, long long sa,
    const void* B, cudaDataType bt, int64_t ldb, long long sb, const void* beta, void* C,
    cudaDataType ct, int64_t ldc, long long sc, int64_t batch, cublasComputeType_t comp,
    cublasGemmAlgo_t algo) {
  auto fn = REAL_HOOKED(cublasGemmStridedBatchedEx_64, "libcublas");
  if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const GemmExArgs<int64_t> args{ta,
                                 tb,
                                 m,
                                 n,
                                 k,
                                 alpha,
                                 A,
                                 at,
                                 lda,
                                 B,
                                 bt,
                                 ldb,
                                 beta,
                                 C,
                                 ct,
                                 ldc,
                                 comp,
                                 sa,
                                 sb,
                                 sc,
                                 batch,
                                 false,
                                 "cublasGemmStridedBatchedEx_64"};
  return run_recorded(
      Hook::GemmStridedBatchedEx_64, handle,
      [&] {
        return fn(handle, ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C, ct, ldc,
                  sc, batch, comp, algo);
      },
      fill_gemm_ex<int64_t>, &args);
}
FPSCOPE_SYMVER_DEFAULT(fpscopecu_cublasGemmStridedBatchedEx_64, cublasGemmStridedBatchedEx_64,
                       "libcublas.so.13");
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasGemmStridedBatchedEx_64,
                     fpscopecu_cublasGemmStridedBatchedEx_64_v12, cublasGemmStridedBatchedEx_64,
                     "libcublas.so.12");

// ---- cublasGemmBatchedEx / _64 (device pointer arrays: signature only, no operand stats) --------
FPSCOPE_EXPORT cublasStatus_t fpscopecu_cublasGemmBatchedEx(
    cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
    const void* alpha, const void* const Aarray[], cudaDataType at, int lda,
    const void* const Barray[], cudaDataType bt, int ldb, const void* beta, void* const Carray[],
    cudaDataType ct, int ldc, int batch, cublasComputeType_t comp, cublasGemmAlgo_t algo) {
  auto fn = REAL_HOOKED(cublasGemmBatchedEx, "libcublas");
  if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const GemmExArgs<int> args{ta,
                             tb,
                             m,
                             n,
                             k,
                             alpha,
                             Aarray,
                             at,
                             lda,
                             Barray,
                             bt,
                             ldb,
                             beta,
                             const_cast<void**>(Carray),
                             ct,
                             ldc,
                             comp,
                             0,
                             0,
                             0,
                             batch,
                             true,
                             "cublasGemmBatchedEx"};
  return run_recorded(
      Hook::GemmBatchedEx, handle,
      [&] {
        return fn(handle, ta, tb, m, n, k, alpha, Aarray, at, lda, Barray, bt, ldb, beta, Carray,
                  ct, ldc, batch, comp, algo);
      },
      fill_gemm_ex<int>, &args);
}
FPSCOPE_SYMVER_DEFAULT(fpscopecu_cublasGemmBatchedEx, cublasGemmBatchedEx, "libcublas.so.13");
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasGemmBatchedEx, fpscopecu_cublasGemmBatchedEx_v12,
                     cublasGemmBatchedEx, "libcublas.so.12");
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasGemmBatchedEx, fpscopecu_cublasGemmBatchedEx_v11,
                     cublasGemmBatchedEx, "libcublas.so.11");

FPSCOPE_EXPORT cublasStatus_t fpscopecu_cublasGemmBatchedEx_64(
    cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
    int64_t k, const void* alpha, const void* const Aarray[], cudaDataType at, int64_t lda,
    const void* const Barray[], cudaDataType bt, int64_t ldb, const void* beta,
    void* const Carray[], cudaDataType ct, int64_t ldc, int64_t batch, cublasComputeType_t comp,
    cublasGemmAlgo_t algo) {
  auto fn = REAL_HOOKED(cublasGemmBatchedEx_64, "libcublas");
  if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const GemmExArgs<int64_t> args{ta,
                                 tb,
                                 m,
                                 n,
                                 k,
                                 alpha,
                                 Aarray,
                                 at,
                                 lda,
                                 Barray,
                                 bt,
                                 ldb,
                                 beta,
                                 const_cast<void**>(Carray),
                                 ct,
                                 ldc,
                                 comp,
                                 0,
                                 0,
                                 0,
                                 batch,
                                 true,
                                 "cublasGemmBatchedEx_64"};
  return run_recorded(
      Hook::GemmBatchedEx_64, handle,
      [&] {
        return fn(handle, ta, tb, m, n, k, alpha, Aarray, at, lda, Barray, bt, ldb, beta, Carray,
                  ct, ldc, batch, comp, algo);
      },
      fill_gemm_ex<int64_t>, &args);
}
FPSCOPE_SYMVER_DEFAULT(fpscopecu_cublasGemmBatchedEx_64, cublasGemmBatchedEx_64, "libcublas.so.13");
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasGemmBatchedEx_64, fpscopecu_cublasGemmBatchedEx_64_v12,
                     cublasGemmBatchedEx_64, "libcublas.so.12");

// ---- cublasSgemm_v2 / cublasHgemm and _64 ------------------------------------------------------
namespace {
template <typename I, typename T>
struct TypedArgs {
  cublasOperation_t ta, tb;
  I m, n, k;
  const T* alpha;
  const T* A;
  I lda;
  const T* B;
  I ldb;
  const T* beta;
  T* C;
  I ldc;
  const char* op;
};
template <typename I, typename T>
void fill_typed(GemmCall* c, void*, bool host, const void* p) {
  const auto& a = *static_cast<const TypedArgs<I, T>*>(p);
  const int t = std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16F;
  const ScalarKind sk = scalar_kind_of_type(t);
  fill_classic(c, a.op, a.ta, a.tb, a.m, a.n, a.k, read_scalar(a.alpha, sk, host),
               read_scalar(a.beta, sk, host), a.A, t, a.lda, a.B, t, a.ldb, a.C, t, a.ldc, 1, 0, 0,
               0, false);
}
}  // namespace

#define FPSCOPE_TYPED_HOOK(NAME, HOOK, I, T)                                                 \
  FPSCOPE_EXPORT cublasStatus_t fpscopecu_##NAME(                                            \
      cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, I m, I n, I k,      \
      const T* alpha, const T* A, I lda, const T* B, I ldb, const T* beta, T* C, I ldc) {    \
    auto fn = REAL_HOOKED(NAME, "libcublas");                                                \
    if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;                                 \
    const TypedArgs<I, T> args{ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, #NAME}; \
    return run_recorded(                                                                     \
        Hook::HOOK, handle,                                                                  \
        [&] { return fn(handle, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc); },    \
        fill_typed<I, T>, &args);                                                            \
  }                                                                                          \
  FPSCOPE_SYMVER_DEFAULT(fpscopecu_##NAME, NAME, "libcublas.so.13");                         \
  FPSCOPE_SYMVER_ALIAS(fpscopecu_##NAME, fpscopecu_##NAME##_v12, NAME, "libcublas.so.12")

FPSCOPE_TYPED_HOOK(cublasSgemm_v2, Sgemm_v2, int, float);
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasSgemm_v2, fpscopecu_cublasSgemm_v2_v11, cublasSgemm_v2,
                     "libcublas.so.11");
FPSCOPE_TYPED_HOOK(cublasSgemm_v2_64, Sgemm_v2_64, int64_t, float);
FPSCOPE_TYPED_HOOK(cublasHgemm, Hgemm, int, __half);
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasHgemm, fpscopecu_cublasHgemm_v11, cublasHgemm,
                     "libcublas.so.11");
FPSCOPE_TYPED_HOOK(cublasHgemm_64, Hgemm_64, int64_t, __half);

// ---- cublasLtMatmul
// -------------------------------------------------------------------------------
FPSCOPE_EXPORT cublasStatus_t fpscopecu_cublasLtMatmul(
    cublasLtHandle_t lt, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
    cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc, const void* beta,
    const void* C, cublasLtMatrixLayout_t Cdesc, void* D, cublasLtMatrixLayout_t Ddesc,
    const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspace_bytes,
    cudaStream_t stream) {
  auto fn = REAL_HOOKED(cublasLtMatmul, "libcublasLt");
  if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  count_hook_call(Hook::LtMatmul);
  auto call = [&] {
    return fn(lt, desc, alpha, A, Adesc, B, Bdesc, beta, C, Cdesc, D, Ddesc, algo, workspace,
              workspace_bytes, stream);
  };
  fpscope::probe::HookGuard guard;
  if (!guard.outermost() || fpscope::probe::Recorder::get() == nullptr) return call();
  // The Lt handle is not needed: descriptors are host objects and the stream is an argument. A
  // call with a null handle is recorded (its signature) like any failing call; cuBLASLt refuses it
  // and gemm_end drops its operands.
  const LtApi* api = LtApi::from_process();
  if (api == nullptr || desc == nullptr || Adesc == nullptr || Bdesc == nullptr ||
      Cdesc == nullptr || Ddesc == nullptr)
    return call();  // cuBLASLt rejects missing descriptors itself
  LtMatmul mm;
  std::string err;
  if (!decode_matmul(*api, desc, Adesc, Bdesc, Cdesc, Ddesc, &mm, &err)) {
    FPSCOPE_LOG(Debug, "cublasLtMatmul not recorded: %s", err.c_str());
    return call();
  }
  GemmCall gc;
  gc.op = "cublasLtMatmul";
  gc.stream = stream;
  gc.sig = mm.signature();
  const bool host = mm.pointer_mode == CUBLASLT_POINTER_MODE_HOST;
  const ScalarKind sk = scalar_kind_of_type(mm.scale_type);
  gc.sig.alpha = read_scalar(alpha, sk, host);
  gc.sig.beta = read_scalar(beta, sk, host);
  gc.layout = static_cast<int>(mm.epilogue) << 8 | (mm.compute_type & 0xff);
  gc.c_aliases_d = C == D;
  auto lt_operand = [](fpscope::trace::Role r, const void* data, const LtLayout& l) {
    DeviceOperand o;
    o.role = r;
    o.data = data;
    // Only plain column-major layouts are readable by the stats kernels.
    o.dtype = l.order == CUBLASLT_ORDER_COL ? l.dtype : std::nullopt;
    o.rows = l.rows;
    o.cols = l.cols;
    o.ld = static_cast<uint64_t>(l.ld);
    o.batch = static_cast<uint64_t>(l.batch_count > 0 ? l.batch_count : 1);
    o.batch_stride = l.batch_stride;
    o.pointer_array = l.batch_mode == 1;
    return o;
  };
  int i = 0;
  gc.operands[i++] = lt_operand(fpscope::trace::Role::A, A, mm.a);
  gc.operands[i++] = lt_operand(fpscope::trace::Role::B, B, mm.b);
  if (!(gc.sig.beta == 0.0) && C != nullptr)
    gc.operands[i++] = lt_operand(fpscope::trace::Role::C, C, mm.c);
  gc.operands[i++] = lt_operand(fpscope::trace::Role::D, D, mm.d);
  gc.num_operands = i;
  GemmState st = gemm_begin(gc);
  const cublasStatus_t status = call();
  gemm_end(gc, st, static_cast<int>(status));
  return status;
}
FPSCOPE_SYMVER_DEFAULT(fpscopecu_cublasLtMatmul, cublasLtMatmul, "libcublasLt.so.13");
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasLtMatmul, fpscopecu_cublasLtMatmul_v12, cublasLtMatmul,
                     "libcublasLt.so.12");
FPSCOPE_SYMVER_ALIAS(fpscopecu_cublasLtMatmul, fpscopecu_cublasLtMatmul_v11, cublasLtMatmul,
                     "libcublasLt.so.11");

// Test hook (declared in test_hooks.h, not part of fpscope.h).
FPSCOPE_EXPORT long long fpscope_cuda_hook_calls(const char* name) {
  if (name == nullptr) return -1;
  for (int i = 0; i < static_cast<int>(Hook::Count); ++i) {
    if (std::strcmp(hook_name(static_cast<Hook>(i)), name) == 0)
      return static_cast<long long>(hook_calls(static_cast<Hook>(i)));
  }
  return -1;
}
