// cuBLAS / cuBLASLt interposers: the definitions of the hooks that cublas_hooks.def lists (its
// header has the recipe for adding one). Each hook body (hook_<Symbol><Major>) has one exported
// entry per version node its symbol exists in (cublas_hooks.def explains why): fpscopecu_<Symbol>
// is @@<lib>.so.13 (default), fpscopecu_<Symbol>_v<Major> is @<lib>.so.<Major>, and each resolves
// the real functions of its own major; the bindings are generated from the table at the end of
// this file. The hooks count every call, record it through gemm_engine and return the real
// function's status unchanged.
// (~600 lines: the one file that defines hooks, as compiler-rt's interceptors; each family's
// parameter list is written once, FPSCOPE_HOOK_BODY. Split per family, e.g. the cuBLASLt hook,
// when another family is added.)
#include <cublasLt.h>
#include <cublas_api.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../src/log.h"
#include "../src/op_names.h"
#include "../src/recorder.h"
#include "../src/resolve.h"
#include "cublas_nodes.h"
#include "gemm_engine.h"
#include "lt_decode.h"
#include "test_hooks.h"

#define FPSCOPE_EXPORT extern "C" __attribute__((visibility("default")))

namespace fpscope::cuda {
namespace {

constexpr int kHooks = static_cast<int>(Hook::Count);

std::atomic<uint64_t> g_calls[kHooks];

// The library stem of each hook (cublas_hooks.def): where resolve_real looks first.
constexpr const char* kHookLibrary[] = {
#define FPSCOPE_CUBLAS_SYMBOL(Id, Symbol, Library, Since) #Library,
#include "cublas_hooks.def"
};
static_assert(sizeof(kHookLibrary) / sizeof(kHookLibrary[0]) == static_cast<size_t>(kHooks));

// "Looked up, not found": cached like a found address, so that a missing symbol costs one scan of
// the loaded objects and one log line per process, not one per call.
void* const kMissing = reinterpret_cast<void*>(uintptr_t{1});

// Lazily resolved real function (thread-safe; racers resolve the same value, one of them stores
// it and only that one logs a failure). nullptr when the process has no definition.
// `major`: of version node <hint>.so.<major> (resolve.h: that version first, else the default).
template <typename Fn>
Fn real(std::atomic<void*>& cache, const char* name, const char* hint, int major) {
  void* p = cache.load(std::memory_order_acquire);
  if (p == nullptr) {  // first call: the version's name is built only here
    const std::string version = cublas_node_name(hint, major);
    void* found = probe::resolve_real(name, hint, version.c_str());
    if (found == nullptr) found = kMissing;
    void* expected = nullptr;
    if (cache.compare_exchange_strong(expected, found, std::memory_order_acq_rel)) {
      p = found;
      if (found == kMissing)
        FPSCOPE_LOG(Error,
                    "cannot find the real %s (version %s) in this process: its calls return an "
                    "error",
                    name, version.c_str());
    } else {
      p = expected;
    }
  }
  return p == kMissing ? nullptr : reinterpret_cast<Fn>(p);
}

// The real function behind hook `h` for a caller bound to version node <library>.so.<major>,
// typed like the hook (cuBLAS's C++ header overloads some names, so the hook's own type is the
// one to use): resolved with that version (resolve.h), so that a process holding two cuBLAS
// majors calls each one's own function. One cache per hook and node.
std::atomic<void*> g_real[kHooks][kCublasNodeMajors];
template <typename Fn>
Fn real_fn(Hook h, int major) {
  return real<Fn>(g_real[static_cast<int>(h)][cublas_node_index(major)], hook_name(h),
                  hook_library(h), major);
}

// The real `fn` of a function the probe does not hook, of version node <hint>.so.<major>.
#define REAL(fn, hint, major)                                                \
  ([](int m) {                                                               \
    static std::atomic<void*> cache[kCublasNodeMajors];                      \
    return real<decltype(&::fn)>(cache[cublas_node_index(m)], #fn, hint, m); \
  }(major))

char op_char(int op) {
  return op == CUBLAS_OP_N ? 'N' : (op == CUBLAS_OP_T ? 'T' : 'C');
}

// Stream and pointer mode of a classic cuBLAS handle; false (record nothing) when the handle is
// unusable, e.g. null: the real function then reports the error itself.
bool handle_context(cublasHandle_t h, int major, void** stream, bool* host_scalars) {
  if (h == nullptr) return false;
  auto get_stream = REAL(cublasGetStream_v2, "libcublas", major);
  auto get_mode = REAL(cublasGetPointerMode_v2, "libcublas", major);
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

// The arguments of a classic-API GEMM (GemmEx, StridedBatchedEx, BatchedEx, Sgemm, Hgemm and
// their _64 twins), dimensions widened to 64 bits. Hooks fill it by designated initializers; the
// defaults are those of a single, non-batched GEMM.
struct ClassicArgs {
  cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
  int64_t m = 0, n = 0, k = 0;
  const void* alpha = nullptr;
  const void* A = nullptr;
  cudaDataType at = CUDA_R_32F;
  int64_t lda = 0;
  const void* B = nullptr;
  cudaDataType bt = CUDA_R_32F;
  int64_t ldb = 0;
  const void* beta = nullptr;
  const void* C = nullptr;  // also D: the classic API overwrites C
  cudaDataType ct = CUDA_R_32F;
  int64_t ldc = 0;
  ScalarKind scalars = ScalarKind::F32;  // how alpha and beta are stored
  int layout = 0;                        // the compute type of the *Ex calls, recorded as is
  int64_t batch = 1;
  int64_t sa = 0, sb = 0, sc = 0;  // batch strides (elements) of A, B and C/D
  bool pointer_array = false;      // A/B/C are device arrays of per-batch pointers
};

DeviceOperand operand(trace::Role role, const void* data, cudaDataType type, uint64_t rows,
                      uint64_t cols, int64_t ld, const ClassicArgs& a, int64_t stride) {
  return DeviceOperand{.role = role,
                       .data = data,
                       .dtype = format_from_cuda(type),
                       .rows = rows,
                       .cols = cols,
                       .ld = static_cast<uint64_t>(ld),
                       .batch = static_cast<uint64_t>(a.batch),
                       .batch_stride = stride,
                       .pointer_array = a.pointer_array,
                       // Classic cuBLAS takes no scale pointers: codes are values.
                       .scale = {},
                       .scale_mode = 0,
                       .block_scaled = false};
}

// True when the GEMM reads C: beta read on the host and nonzero. NaN (device pointer mode: not
// readable without a synchronization) is "not known", so false.
bool c_known_read(double beta) {
  return !std::isnan(beta) && beta != 0.0;
}

// Classic-API GEMM: C (read when beta != 0) and D are the same buffer.
void fill_classic(GemmCall* c, bool host, const ClassicArgs& a) {
  c->sig.transa = op_char(a.ta);
  c->sig.transb = op_char(a.tb);
  c->sig.m = a.m;
  c->sig.n = a.n;
  c->sig.k = a.k;
  c->sig.lda = a.lda;
  c->sig.ldb = a.ldb;
  c->sig.ldc = a.ldc;
  c->sig.alpha = read_scalar(a.alpha, a.scalars, host);
  c->sig.beta = read_scalar(a.beta, a.scalars, host);
  c->sig.batch = a.batch;
  c->layout = a.layout;
  c->c_aliases_d = true;
  const auto um = static_cast<uint64_t>(a.m), un = static_cast<uint64_t>(a.n),
             uk = static_cast<uint64_t>(a.k);
  const bool a_n = a.ta == CUBLAS_OP_N, b_n = a.tb == CUBLAS_OP_N;
  int i = 0;
  c->operands[i++] =
      operand(trace::Role::A, a.A, a.at, a_n ? um : uk, a_n ? uk : um, a.lda, a, a.sa);
  c->operands[i++] =
      operand(trace::Role::B, a.B, a.bt, b_n ? uk : un, b_n ? un : uk, a.ldb, a, a.sb);
  // C is measured only when known to be read (beta != 0 read on the host). With beta in device
  // memory (device pointer mode, NaN here) it may be 0, and then cuBLAS does not read C, which
  // need not hold valid values: measuring it could report NaN/Inf the GEMM never saw (#16 item 9).
  if (c_known_read(c->sig.beta))
    c->operands[i++] = operand(trace::Role::C, a.C, a.ct, um, un, a.ldc, a, a.sc);
  c->operands[i++] = operand(trace::Role::D, a.C, a.ct, um, un, a.ldc, a, a.sc);
  c->num_operands = i;
}

// Counts the call, then records it around the real call when this is the outermost hook, the
// recorder is on and the handle tells its stream and pointer mode.
template <typename Call>
cublasStatus_t run_recorded(Hook h, int major, cublasHandle_t handle, const ClassicArgs& args,
                            Call&& call) {
  count_hook_call(h);
  probe::HookGuard guard;
  void* stream = nullptr;
  bool host = true;
  if (!guard.outermost() || probe::Recorder::get() == nullptr ||
      !handle_context(handle, major, &stream, &host))
    return call();
  GemmCall gc;
  gc.op = hook_name(h);
  gc.stream = stream;
  fill_classic(&gc, host, args);
  GemmState st = gemm_begin(gc);
  const cublasStatus_t status = call();
  gemm_end(gc, st, static_cast<int>(status));
  return status;
}

}  // namespace

const char* hook_name(Hook h) {
  static_assert(sizeof(probe::kCudaOps) / sizeof(probe::kCudaOps[0]) == static_cast<size_t>(kHooks),
                "probe/src/op_names.h lists one name per cuda::Hook");
  const int i = static_cast<int>(h);
  return i >= 0 && i < kHooks ? probe::kCudaOps[i] : "?";
}
const char* hook_library(Hook h) {
  const int i = static_cast<int>(h);
  return i >= 0 && i < kHooks ? kHookLibrary[i] : "?";
}
void count_hook_call(Hook h) {
  g_calls[static_cast<int>(h)].fetch_add(1, std::memory_order_relaxed);
}
uint64_t hook_calls(Hook h) {
  return g_calls[static_cast<int>(h)].load(std::memory_order_relaxed);
}

}  // namespace fpscope::cuda

using namespace fpscope::cuda;  // NOLINT: the hooks below are the C ABI surface

// Each family below is written once and defined for int (the row's function) and int64_t (its
// _64 twin); the real function is resolved on the first call (real_fn) and a process without it
// gets CUBLAS_STATUS_NOT_INITIALIZED.
//
// A family's body is hook_<Symbol><Major>, the hook of version node <library>.so.<Major>;
// FPSCOPE_NODE_ENTRIES defines its exported entries: fpscopecu_<Symbol> for the DEFAULT node
// (<Symbol>@@<library>.so.13, and references without a version) and fpscopecu_<Symbol>_v<Major>
// for the older ones (bound at the end of this file). An entry for a node the symbol is not in
// (a _64 twin in .11) is bound to no node and stays local (probe/exports.map's "local: *").
static_assert(kDefaultCublasMajor == 13 && kOldestCublasMajor == 11,
              "FPSCOPE_NODE_ENTRIES defines the entries of majors 13 (default), 12 and 11");
// A family's hook body and its entries, the parameter list written once: Params the parenthesized
// parameter list, Args the same names as call arguments, then the body (which names its own
// type, decltype(&hook_<Symbol><Major>): the real function's).
#define FPSCOPE_HOOK_BODY(Symbol, Params, Args, ...)                                           \
  template <int Major>                                                                         \
  static cublasStatus_t hook_##Symbol Params{__VA_ARGS__} FPSCOPE_NODE_ENTRIES(Symbol, Params, \
                                                                               Args)
#define FPSCOPE_NODE_ENTRIES(Symbol, Params, Args)                \
  FPSCOPE_EXPORT cublasStatus_t fpscopecu_##Symbol Params {       \
    return hook_##Symbol<kDefaultCublasMajor> Args;               \
  }                                                               \
  FPSCOPE_EXPORT cublasStatus_t fpscopecu_##Symbol##_v12 Params { \
    return hook_##Symbol<12> Args;                                \
  }                                                               \
  FPSCOPE_EXPORT cublasStatus_t fpscopecu_##Symbol##_v11 Params { \
    return hook_##Symbol<11> Args;                                \
  }

// ---- cublasGemmEx / _64 -------------------------------------------------------------------------
#define FPSCOPE_GEMM_EX_HOOK(Id, Symbol, I)                                                       \
  FPSCOPE_HOOK_BODY(                                                                              \
      Symbol,                                                                                     \
      (cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, I m, I n, I k,          \
       const void* alpha, const void* A, cudaDataType at, I lda, const void* B, cudaDataType bt,  \
       I ldb, const void* beta, void* C, cudaDataType ct, I ldc, cublasComputeType_t comp,        \
       cublasGemmAlgo_t algo),                                                                    \
      (handle, ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, C, ct, ldc, comp, algo),     \
      auto fn = real_fn<decltype(&hook_##Symbol<Major>)>(Hook::Id, Major);                        \
      if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;                                    \
      const ClassicArgs args{.ta = ta,                                                            \
                             .tb = tb,                                                            \
                             .m = m,                                                              \
                             .n = n,                                                              \
                             .k = k,                                                              \
                             .alpha = alpha,                                                      \
                             .A = A,                                                              \
                             .at = at,                                                            \
                             .lda = lda,                                                          \
                             .B = B,                                                              \
                             .bt = bt,                                                            \
                             .ldb = ldb,                                                          \
                             .beta = beta,                                                        \
                             .C = C,                                                              \
                             .ct = ct,                                                            \
                             .ldc = ldc,                                                          \
                             .scalars = scalar_kind_of_compute(comp),                             \
                             .layout = static_cast<int>(comp)};                                   \
      return run_recorded(Hook::Id, Major, handle, args, [&] {                                    \
        return fn(handle, ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, C, ct, ldc, comp, \
                  algo);                                                                          \
      });)
FPSCOPE_GEMM_EX_HOOK(GemmEx, cublasGemmEx, int)
FPSCOPE_GEMM_EX_HOOK(GemmEx_64, cublasGemmEx_64, int64_t)

// ---- cublasGemmStridedBatchedEx / _64 -----------------------------------------------------------
#define FPSCOPE_STRIDED_HOOK(Id, Symbol, I)                                                     \
  FPSCOPE_HOOK_BODY(                                                                            \
      Symbol,                                                                                   \
      (cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, I m, I n, I k,        \
       const void* alpha, const void* A, cudaDataType at, I lda, long long sa, const void* B,   \
       cudaDataType bt, I ldb, long long sb, const void* beta, void* C, cudaDataType ct, I ldc, \
       long long sc, I batch, cublasComputeType_t comp, cublasGemmAlgo_t algo),                 \
      (handle, ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C, ct, ldc, sc,    \
       batch, comp, algo),                                                                      \
      auto fn = real_fn<decltype(&hook_##Symbol<Major>)>(Hook::Id, Major);                      \
      if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;                                  \
      const ClassicArgs args{.ta = ta,                                                          \
                             .tb = tb,                                                          \
                             .m = m,                                                            \
                             .n = n,                                                            \
                             .k = k,                                                            \
                             .alpha = alpha,                                                    \
                             .A = A,                                                            \
                             .at = at,                                                          \
                             .lda = lda,                                                        \
                             .B = B,                                                            \
                             .bt = bt,                                                          \
                             .ldb = ldb,                                                        \
                             .beta = beta,                                                      \
                             .C = C,                                                            \
                             .ct = ct,                                                          \
                             .ldc = ldc,                                                        \
                             .scalars = scalar_kind_of_compute(comp),                           \
                             .layout = static_cast<int>(comp),                                  \
                             .batch = batch,                                                    \
                             .sa = sa,                                                          \
                             .sb = sb,                                                          \
                             .sc = sc};                                                         \
      return run_recorded(Hook::Id, Major, handle, args, [&] {                                  \
        return fn(handle, ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C, ct,  \
                  ldc, sc, batch, comp, algo);                                                  \
      });)
FPSCOPE_STRIDED_HOOK(GemmStridedBatchedEx, cublasGemmStridedBatchedEx, int)
FPSCOPE_STRIDED_HOOK(GemmStridedBatchedEx_64, cublasGemmStridedBatchedEx_64, int64_t)

// ---- cublasGemmBatchedEx / _64 (device pointer arrays: signature only, no operand stats) --------
#define FPSCOPE_BATCHED_HOOK(Id, Symbol, I)                                                        \
  FPSCOPE_HOOK_BODY(                                                                               \
      Symbol,                                                                                      \
      (cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, I m, I n, I k,           \
       const void* alpha, const void* const Aarray[], cudaDataType at, I lda,                      \
       const void* const Barray[], cudaDataType bt, I ldb, const void* beta, void* const Carray[], \
       cudaDataType ct, I ldc, I batch, cublasComputeType_t comp, cublasGemmAlgo_t algo),          \
      (handle, ta, tb, m, n, k, alpha, Aarray, at, lda, Barray, bt, ldb, beta, Carray, ct, ldc,    \
       batch, comp, algo),                                                                         \
      auto fn = real_fn<decltype(&hook_##Symbol<Major>)>(Hook::Id, Major);                         \
      if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;                                     \
      const ClassicArgs args{.ta = ta,                                                             \
                             .tb = tb,                                                             \
                             .m = m,                                                               \
                             .n = n,                                                               \
                             .k = k,                                                               \
                             .alpha = alpha,                                                       \
                             .A = Aarray,                                                          \
                             .at = at,                                                             \
                             .lda = lda,                                                           \
                             .B = Barray,                                                          \
                             .bt = bt,                                                             \
                             .ldb = ldb,                                                           \
                             .beta = beta,                                                         \
                             .C = Carray,                                                          \
                             .ct = ct,                                                             \
                             .ldc = ldc,                                                           \
                             .scalars = scalar_kind_of_compute(comp),                              \
                             .layout = static_cast<int>(comp),                                     \
                             .batch = batch,                                                       \
                             .pointer_array = true};                                               \
      return run_recorded(Hook::Id, Major, handle, args, [&] {                                     \
        return fn(handle, ta, tb, m, n, k, alpha, Aarray, at, lda, Barray, bt, ldb, beta, Carray,  \
                  ct, ldc, batch, comp, algo);                                                     \
      });)
FPSCOPE_BATCHED_HOOK(GemmBatchedEx, cublasGemmBatchedEx, int)
FPSCOPE_BATCHED_HOOK(GemmBatchedEx_64, cublasGemmBatchedEx_64, int64_t)

// The arguments of the typed classic calls (cublasSgemm_v2, cublasHgemm and their strided-batched
// twins): A, B and C all of cudaDataType t, alpha/beta of the same type. One place, so that the
// plain and the strided hooks cannot describe the same GEMM differently.
template <typename I, typename T>
ClassicArgs typed_args(cublasOperation_t ta, cublasOperation_t tb, I m, I n, I k, const T* alpha,
                       const T* A, I lda, const T* B, I ldb, const T* beta, T* C, I ldc,
                       cudaDataType t) {
  return ClassicArgs{.ta = ta,
                     .tb = tb,
                     .m = m,
                     .n = n,
                     .k = k,
                     .alpha = alpha,
                     .A = A,
                     .at = t,
                     .lda = lda,
                     .B = B,
                     .bt = t,
                     .ldb = ldb,
                     .beta = beta,
                     .C = C,
                     .ct = t,
                     .ldc = ldc,
                     .scalars = scalar_kind_of_type(t)};
}

// ---- cublasSgemm_v2 / cublasHgemm and _64 -------------------------------------------------------
// T is the element and scalar type (float, __half); CudaT its cudaDataType.
#define FPSCOPE_TYPED_HOOK(Id, Symbol, I, T, CudaT)                                       \
  FPSCOPE_HOOK_BODY(                                                                      \
      Symbol,                                                                             \
      (cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, I m, I n, I k,  \
       const T* alpha, const T* A, I lda, const T* B, I ldb, const T* beta, T* C, I ldc), \
      (handle, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc),                     \
      auto fn = real_fn<decltype(&hook_##Symbol<Major>)>(Hook::Id, Major);                \
      if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;                            \
      const ClassicArgs args =                                                            \
          typed_args(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, CudaT);        \
      return run_recorded(Hook::Id, Major, handle, args, [&] {                            \
        return fn(handle, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);          \
      });)
FPSCOPE_TYPED_HOOK(Sgemm_v2, cublasSgemm_v2, int, float, CUDA_R_32F)
FPSCOPE_TYPED_HOOK(Sgemm_v2_64, cublasSgemm_v2_64, int64_t, float, CUDA_R_32F)
FPSCOPE_TYPED_HOOK(Hgemm, cublasHgemm, int, __half, CUDA_R_16F)
FPSCOPE_TYPED_HOOK(Hgemm_64, cublasHgemm_64, int64_t, __half, CUDA_R_16F)

// ---- cublasSgemmStridedBatched / cublasHgemmStridedBatched and _64 -----------------------------
// PyTorch's FP32 / FP16 bmm and baddbmm (at::cuda::blas::bgemm). T, CudaT as above.
#define FPSCOPE_TYPED_STRIDED_HOOK(Id, Symbol, I, T, CudaT)                                       \
  FPSCOPE_HOOK_BODY(                                                                              \
      Symbol,                                                                                     \
      (cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, I m, I n, I k,          \
       const T* alpha, const T* A, I lda, long long sa, const T* B, I ldb, long long sb,          \
       const T* beta, T* C, I ldc, long long sc, I batch),                                        \
      (handle, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch),          \
      auto fn = real_fn<decltype(&hook_##Symbol<Major>)>(Hook::Id, Major);                        \
      if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;                                    \
      ClassicArgs args = typed_args(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, CudaT); \
      args.batch = batch; args.sa = sa; args.sb = sb; args.sc = sc;                               \
      return run_recorded(Hook::Id, Major, handle, args, [&] {                                    \
        return fn(handle, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc,       \
                  batch);                                                                         \
      });)
FPSCOPE_TYPED_STRIDED_HOOK(SgemmStridedBatched, cublasSgemmStridedBatched, int, float, CUDA_R_32F)
FPSCOPE_TYPED_STRIDED_HOOK(SgemmStridedBatched_64, cublasSgemmStridedBatched_64, int64_t, float,
                           CUDA_R_32F)
FPSCOPE_TYPED_STRIDED_HOOK(HgemmStridedBatched, cublasHgemmStridedBatched, int, __half, CUDA_R_16F)
FPSCOPE_TYPED_STRIDED_HOOK(HgemmStridedBatched_64, cublasHgemmStridedBatched_64, int64_t, __half,
                           CUDA_R_16F)

// ---- cublasLtMatmul -----------------------------------------------------------------------------
#define FPSCOPE_LT_MATMUL_PARAMS                                                                \
  (cublasLtHandle_t lt, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,            \
   cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc, const void* beta, \
   const void* C, cublasLtMatrixLayout_t Cdesc, void* D, cublasLtMatrixLayout_t Ddesc,          \
   const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspace_bytes, cudaStream_t stream)
template <int Major>
static cublasStatus_t hook_cublasLtMatmul FPSCOPE_LT_MATMUL_PARAMS {
  auto fn = real_fn<decltype(&hook_cublasLtMatmul<Major>)>(Hook::LtMatmul, Major);
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
  const LtApi* api = LtApi::from_process(Major);
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
  gc.op = hook_name(Hook::LtMatmul);
  gc.stream = stream;
  gc.sig = mm.signature();
  const bool host = mm.pointer_mode == CUBLASLT_POINTER_MODE_HOST;
  const ScalarKind sk = scalar_kind_of_type(mm.scale_type);
  gc.sig.alpha = read_scalar(alpha, sk, host);
  gc.sig.beta = read_scalar(beta, sk, host);
  gc.layout = static_cast<int>(mm.epilogue) << 8 | (mm.compute_type & 0xff);
  gc.c_aliases_d = C == D;
  int i = 0;
  gc.operands[i++] = lt_device_operand(mm, fpscope::trace::Role::A, A);
  gc.operands[i++] = lt_device_operand(mm, fpscope::trace::Role::B, B);
  if (c_known_read(gc.sig.beta) && C != nullptr)  // as fill_classic: only when known to be read
    gc.operands[i++] = lt_device_operand(mm, fpscope::trace::Role::C, C);
  gc.operands[i++] = lt_device_operand(mm, fpscope::trace::Role::D, D);
  gc.num_operands = i;
  GemmState st = gemm_begin(gc);
  const cublasStatus_t status = call();
  gemm_end(gc, st, static_cast<int>(status));
  return status;
}
FPSCOPE_NODE_ENTRIES(cublasLtMatmul, FPSCOPE_LT_MATMUL_PARAMS,
                     (lt, desc, alpha, A, Adesc, B, Bdesc, beta, C, Cdesc, D, Ddesc, algo,
                      workspace, workspace_bytes, stream))
#undef FPSCOPE_LT_MATMUL_PARAMS

// ---- Version bindings, one per (symbol, version node) of cublas_hooks.def ----------------------
// DEFAULT: fpscopecu_<Symbol> is <Symbol>@@<Library>.so.<Major>. OLDER: the node's own entry
// fpscopecu_<Symbol>_v<Major> (FPSCOPE_NODE_ENTRIES) is <Symbol>@<Library>.so.<Major>. A row
// without its hook definition above fails to compile here ("fpscopecu_<Symbol> was not declared").
#define FPSCOPE_BIND_DEFAULT(Major, Symbol, Library)                                   \
  static_assert(Major == kDefaultCublasMajor, "the DEFAULT node is cublas_nodes.h's"); \
  __asm__(".symver fpscopecu_" #Symbol ", " #Symbol "@@" #Library ".so." #Major);
#define FPSCOPE_BIND_OLDER(Major, Symbol, Library)                                        \
  static_assert(std::is_function_v<decltype(fpscopecu_##Symbol##_v##Major)>, #Symbol);    \
  static_assert(is_cublas_node_major(Major) && Major != kDefaultCublasMajor, "no entry"); \
  __asm__(".symver fpscopecu_" #Symbol "_v" #Major ", " #Symbol "@" #Library ".so." #Major);
#define FPSCOPE_BIND(Kind, Major, Symbol, Library) FPSCOPE_BIND_##Kind(Major, Symbol, Library)
#define FPSCOPE_CUBLAS_SYMBOL(Id, Symbol, Library, Since)                                  \
  static_assert(std::is_function_v<decltype(fpscopecu_##Symbol)>, "no hook for " #Symbol); \
  FPSCOPE_CUBLAS_NODES_SINCE_##Since(FPSCOPE_BIND, Symbol, Library)
#include "cublas_hooks.def"

// Test hook (declared in test_hooks.h, not part of fpscope.h).
FPSCOPE_EXPORT long long fpscope_cuda_hook_calls(const char* name) {
  if (name == nullptr) return -1;
  for (int i = 0; i < static_cast<int>(Hook::Count); ++i) {
    if (std::strcmp(hook_name(static_cast<Hook>(i)), name) == 0)
      return static_cast<long long>(hook_calls(static_cast<Hook>(i)));
  }
  return -1;
}
