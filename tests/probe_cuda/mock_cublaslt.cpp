// A computing stand-in for libcublasLt.so.13 on the strict mock driver (tests/mock_cuda): "device"
// memory is host memory there, so cublasLtMatmul runs on the CPU when it is called, which is stream
// order on the mock (its streams run work at enqueue). Exported under cuBLASLt's own version node
// (mock_cublasLt13.map), so the probe's versioned hook interposes on it and its descriptor getters
// resolve as on the real library.
//
// Descriptors: the attributes the probe reads (probe/cuda/lt_decode.cpp), with cublasLt.h's enum
// values, sizes and defaults; Set/GetAttribute check sizes as cublasLt.h documents them (Set:
// INVALID_VALUE for a null buf or a size other than the attribute's; Get: sizeInBytes 0 asks for
// the size in *sizeWritten, otherwise it must be the attribute's size and buf non-null). An
// attribute it does not store is INVALID_VALUE, as an attribute an older cuBLASLt does not know.
//
// cublasLtMatmul: only what mock_lt_prog calls. Column-major (ORDER_COL), no batches, alpha/beta
// FP32 in host memory, compute CUBLAS_COMPUTE_32F; A/B FP32, BF16, E4M3 or E5M2; D (and C when
// beta != 0) FP32 or BF16, or an FP8 D with beta 0. It needs the context current at
// cublasLtCreate to be current (cuBLASLt works in the current context).
//   per-tensor (all scale modes SCALAR_32F): D = scale_D * (alpha * scale_A * scale_B * op(A)
//     op(B) + beta * C), scales FP32 scalars in device memory, absent = 1, and only on FP8
//     operands (cuBLASLt: INVALID_VALUE otherwise); an FP8 D stores
//     __nv_cvt_float_to_fp8(value * scale_D, __NV_SATFINITE); AMAX_D gets max |value| before it.
//   VEC32_UE8M0 on A and B (both): the scale pointers are UE8M0 exponents, one per 32 elements
//     along k, at [row of op(A) * k/32 + block] and [column of B * k/32 + block] (this mock's
//     layout: the real one is cuBLASLt's swizzled tiles); D FP32 or BF16, not scaled.
//   Order (mock_lt_data.h gemm_reference): column j, row i, acc += a(i, l) * b(l, j) in FP32 over
//   l ascending; value = ((alpha * scale_A) * scale_B) * acc (+ beta * C).
#include <cublasLt.h>
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>

namespace {

struct Handle {
  CUcontext ctx = nullptr;
};

// One stored attribute: its documented size and its bytes (every attribute here fits 8).
struct Attr {
  uint32_t size = 0;
  unsigned char bytes[8] = {};
};

template <int N>
struct Attrs {
  Attr a[N];
  template <class T>
  void def(int id, T v) {
    static_assert(sizeof(T) <= 8);
    a[id].size = sizeof(T);
    std::memcpy(a[id].bytes, &v, sizeof(T));
  }
  template <class T>
  T get(int id) const {
    T v{};
    std::memcpy(&v, a[id].bytes, sizeof(T));
    return v;
  }
  cublasStatus_t set(int id, const void* buf, size_t size) {
    if (id < 0 || id >= N || a[id].size == 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (buf == nullptr || size != a[id].size) return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy(a[id].bytes, buf, size);
    return CUBLAS_STATUS_SUCCESS;
  }
  cublasStatus_t read(int id, void* buf, size_t size, size_t* written) const {
    if (id < 0 || id >= N || a[id].size == 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (size == 0) {
      if (written == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
      *written = a[id].size;  // the size needed
      return CUBLAS_STATUS_SUCCESS;
    }
    if (buf == nullptr || size != a[id].size) return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy(buf, a[id].bytes, size);
    if (written != nullptr) *written = size;
    return CUBLAS_STATUS_SUCCESS;
  }
};

struct Layout {
  Attrs<9> at;  // CUBLASLT_MATRIX_LAYOUT_TYPE .. BATCH_MODE
};
struct Desc {
  Attrs<38> at;  // CUBLASLT_MATMUL_DESC_COMPUTE_TYPE .. D_OUT_SCALE_MODE
};

Layout* layout_of(cublasLtMatrixLayout_t l) {
  return reinterpret_cast<Layout*>(l);
}
Desc* desc_of(cublasLtMatmulDesc_t d) {
  return reinterpret_cast<Desc*>(d);
}

bool is_fp8(uint32_t t) {
  return t == CUDA_R_8F_E4M3 || t == CUDA_R_8F_E5M2;
}

float load(const void* p, uint32_t type, size_t i) {
  switch (type) {
    case CUDA_R_32F:
      return static_cast<const float*>(p)[i];
    case CUDA_R_16BF:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case CUDA_R_8F_E4M3:
      return static_cast<float>(static_cast<const __nv_fp8_e4m3*>(p)[i]);
    default:  // CUDA_R_8F_E5M2
      return static_cast<float>(static_cast<const __nv_fp8_e5m2*>(p)[i]);
  }
}

void store(void* p, uint32_t type, size_t i, float v) {
  switch (type) {
    case CUDA_R_32F:
      static_cast<float*>(p)[i] = v;
      break;
    case CUDA_R_16BF:
      static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
      break;
    case CUDA_R_8F_E4M3:
      static_cast<uint8_t*>(p)[i] = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
      break;
    default:
      static_cast<uint8_t*>(p)[i] = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E5M2);
      break;
  }
}

struct Mat {
  uint32_t type;
  uint64_t rows, cols;
  int64_t ld;
};
Mat mat_of(cublasLtMatrixLayout_t l) {
  const Layout* m = layout_of(l);
  return Mat{m->at.get<uint32_t>(CUBLASLT_MATRIX_LAYOUT_TYPE),
             m->at.get<uint64_t>(CUBLASLT_MATRIX_LAYOUT_ROWS),
             m->at.get<uint64_t>(CUBLASLT_MATRIX_LAYOUT_COLS),
             m->at.get<int64_t>(CUBLASLT_MATRIX_LAYOUT_LD)};
}
bool plain_layout(cublasLtMatrixLayout_t l) {
  const Layout* m = layout_of(l);
  return m->at.get<int32_t>(CUBLASLT_MATRIX_LAYOUT_ORDER) == CUBLASLT_ORDER_COL &&
         m->at.get<int32_t>(CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT) == 1;
}

float ue8m0(uint8_t e) {
  return std::ldexp(1.0f, static_cast<int>(e) - 127);
}

}  // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t* h) {
  if (h == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  CUcontext ctx = nullptr;
  if (cuCtxGetCurrent(&ctx) != CUDA_SUCCESS || ctx == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  Handle* p = new (std::nothrow) Handle;
  if (p == nullptr) return CUBLAS_STATUS_ALLOC_FAILED;
  p->ctx = ctx;
  *h = reinterpret_cast<cublasLtHandle_t>(p);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
  delete reinterpret_cast<Handle*>(h);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* out, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld) {
  if (out == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  Layout* l = new (std::nothrow) Layout;
  if (l == nullptr) return CUBLAS_STATUS_ALLOC_FAILED;
  l->at.def<uint32_t>(CUBLASLT_MATRIX_LAYOUT_TYPE, static_cast<uint32_t>(type));
  l->at.def<int32_t>(CUBLASLT_MATRIX_LAYOUT_ORDER, CUBLASLT_ORDER_COL);
  l->at.def<uint64_t>(CUBLASLT_MATRIX_LAYOUT_ROWS, rows);
  l->at.def<uint64_t>(CUBLASLT_MATRIX_LAYOUT_COLS, cols);
  l->at.def<int64_t>(CUBLASLT_MATRIX_LAYOUT_LD, ld);
  l->at.def<int32_t>(CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, 1);
  l->at.def<int64_t>(CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, 0);
  l->at.def<int64_t>(CUBLASLT_MATRIX_LAYOUT_PLANE_OFFSET, 0);
  l->at.def<uint32_t>(CUBLASLT_MATRIX_LAYOUT_BATCH_MODE, 0);
  *out = reinterpret_cast<cublasLtMatrixLayout_t>(l);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
  delete layout_of(l);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l,
                                                cublasLtMatrixLayoutAttribute_t attr,
                                                const void* buf, size_t size) {
  if (l == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  return layout_of(l)->at.set(attr, buf, size);
}
cublasStatus_t cublasLtMatrixLayoutGetAttribute(cublasLtMatrixLayout_t l,
                                                cublasLtMatrixLayoutAttribute_t attr, void* buf,
                                                size_t size, size_t* written) {
  if (l == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  return layout_of(l)->at.read(attr, buf, size, written);
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* out, cublasComputeType_t compute,
                                        cudaDataType_t scale_type) {
  if (out == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  Desc* d = new (std::nothrow) Desc;
  if (d == nullptr) return CUBLAS_STATUS_ALLOC_FAILED;
  d->at.def<int32_t>(CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, compute);
  d->at.def<int32_t>(CUBLASLT_MATMUL_DESC_SCALE_TYPE, scale_type);
  d->at.def<int32_t>(CUBLASLT_MATMUL_DESC_POINTER_MODE, CUBLASLT_POINTER_MODE_HOST);
  d->at.def<int32_t>(CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_N);
  d->at.def<int32_t>(CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
  d->at.def<int32_t>(CUBLASLT_MATMUL_DESC_TRANSC, CUBLAS_OP_N);
  d->at.def<uint32_t>(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_DEFAULT);
  for (int a : {CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                CUBLASLT_MATMUL_DESC_C_SCALE_POINTER, CUBLASLT_MATMUL_DESC_D_SCALE_POINTER,
                CUBLASLT_MATMUL_DESC_AMAX_D_POINTER, CUBLASLT_MATMUL_DESC_D_OUT_SCALE_POINTER})
    d->at.def<const void*>(a, nullptr);
  for (int a : {CUBLASLT_MATMUL_DESC_A_SCALE_MODE, CUBLASLT_MATMUL_DESC_B_SCALE_MODE,
                CUBLASLT_MATMUL_DESC_C_SCALE_MODE, CUBLASLT_MATMUL_DESC_D_SCALE_MODE,
                CUBLASLT_MATMUL_DESC_D_OUT_SCALE_MODE})
    d->at.def<int32_t>(a, CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F);
  *out = reinterpret_cast<cublasLtMatmulDesc_t>(d);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
  delete desc_of(d);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d,
                                              cublasLtMatmulDescAttributes_t attr, const void* buf,
                                              size_t size) {
  if (d == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  return desc_of(d)->at.set(attr, buf, size);
}
cublasStatus_t cublasLtMatmulDescGetAttribute(cublasLtMatmulDesc_t d,
                                              cublasLtMatmulDescAttributes_t attr, void* buf,
                                              size_t size, size_t* written) {
  if (d == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  return desc_of(d)->at.read(attr, buf, size, written);
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t lt, cublasLtMatmulDesc_t desc, const void* alpha,
                              const void* A, cublasLtMatrixLayout_t Adesc, const void* B,
                              cublasLtMatrixLayout_t Bdesc, const void* beta, const void* C,
                              cublasLtMatrixLayout_t Cdesc, void* D, cublasLtMatrixLayout_t Ddesc,
                              const cublasLtMatmulAlgo_t* algo, void* workspace,
                              size_t workspace_bytes, cudaStream_t stream) {
  (void)algo, (void)workspace, (void)workspace_bytes, (void)stream;
  const Handle* h = reinterpret_cast<const Handle*>(lt);
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  CUcontext cur = nullptr;
  if (cuCtxGetCurrent(&cur) != CUDA_SUCCESS || cur != h->ctx) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (desc == nullptr || Adesc == nullptr || Bdesc == nullptr || Cdesc == nullptr ||
      Ddesc == nullptr || alpha == nullptr || beta == nullptr)
    return CUBLAS_STATUS_INVALID_VALUE;
  const Desc& dd = *desc_of(desc);
  if (dd.at.get<int32_t>(CUBLASLT_MATMUL_DESC_COMPUTE_TYPE) != CUBLAS_COMPUTE_32F ||
      dd.at.get<int32_t>(CUBLASLT_MATMUL_DESC_SCALE_TYPE) != CUDA_R_32F ||
      (dd.at.get<int32_t>(CUBLASLT_MATMUL_DESC_POINTER_MODE) != CUBLASLT_POINTER_MODE_HOST &&
       dd.at.get<int32_t>(CUBLASLT_MATMUL_DESC_POINTER_MODE) != CUBLASLT_POINTER_MODE_DEVICE) ||
      dd.at.get<uint32_t>(CUBLASLT_MATMUL_DESC_EPILOGUE) != CUBLASLT_EPILOGUE_DEFAULT ||
      dd.at.get<const void*>(CUBLASLT_MATMUL_DESC_D_OUT_SCALE_POINTER) != nullptr)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  const int32_t ta = dd.at.get<int32_t>(CUBLASLT_MATMUL_DESC_TRANSA);
  const int32_t tb = dd.at.get<int32_t>(CUBLASLT_MATMUL_DESC_TRANSB);
  if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  for (cublasLtMatrixLayout_t l : {Adesc, Bdesc, Cdesc, Ddesc})
    if (!plain_layout(l)) return CUBLAS_STATUS_NOT_SUPPORTED;
  const Mat a = mat_of(Adesc), b = mat_of(Bdesc), c = mat_of(Cdesc), d = mat_of(Ddesc);
  const uint64_t m = d.rows, n = d.cols;
  const uint64_t k = ta == CUBLAS_OP_N ? a.cols : a.rows;
  if ((ta == CUBLAS_OP_N ? a.rows : a.cols) != m || (tb == CUBLAS_OP_N ? b.rows : b.cols) != k ||
      (tb == CUBLAS_OP_N ? b.cols : b.rows) != n || c.rows != m || c.cols != n)
    return CUBLAS_STATUS_INVALID_VALUE;
  for (const Mat* x : {&a, &b})
    if (x->type != CUDA_R_32F && x->type != CUDA_R_16BF && !is_fp8(x->type))
      return CUBLAS_STATUS_NOT_SUPPORTED;
  if (d.type != CUDA_R_32F && d.type != CUDA_R_16BF && !is_fp8(d.type))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  // POINTER_MODE_DEVICE: alpha and beta live in device memory, which is host memory on the mock
  // driver: read the same way.
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  if (be != 0.0f && (is_fp8(d.type) || c.type != d.type || C == nullptr))
    return CUBLAS_STATUS_NOT_SUPPORTED;

  // Scales: per-tensor on FP8 operands only, or VEC32_UE8M0 on both FP8 A and B.
  const void* sp[4] = {dd.at.get<const void*>(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER),
                       dd.at.get<const void*>(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER),
                       dd.at.get<const void*>(CUBLASLT_MATMUL_DESC_C_SCALE_POINTER),
                       dd.at.get<const void*>(CUBLASLT_MATMUL_DESC_D_SCALE_POINTER)};
  const int32_t mode[4] = {dd.at.get<int32_t>(CUBLASLT_MATMUL_DESC_A_SCALE_MODE),
                           dd.at.get<int32_t>(CUBLASLT_MATMUL_DESC_B_SCALE_MODE),
                           dd.at.get<int32_t>(CUBLASLT_MATMUL_DESC_C_SCALE_MODE),
                           dd.at.get<int32_t>(CUBLASLT_MATMUL_DESC_D_SCALE_MODE)};
  const uint32_t type[4] = {a.type, b.type, c.type, d.type};
  for (int i = 0; i < 4; ++i)
    if (sp[i] != nullptr && !is_fp8(type[i])) return CUBLAS_STATUS_INVALID_VALUE;
  const bool block = mode[0] == CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0;
  if (block) {
    if (mode[1] != mode[0] || !is_fp8(a.type) || !is_fp8(b.type) || sp[0] == nullptr ||
        sp[1] == nullptr || k % 32 != 0 || is_fp8(d.type) || sp[3] != nullptr)
      return CUBLAS_STATUS_NOT_SUPPORTED;
  } else {
    for (int i = 0; i < 4; ++i)
      if (mode[i] != CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  auto scalar = [&](int i) { return sp[i] != nullptr ? *static_cast<const float*>(sp[i]) : 1.0f; };
  const float factor = block ? al : al * scalar(0) * scalar(1);
  const float sd = block ? 1.0f : scalar(3);
  const uint8_t* ea = static_cast<const uint8_t*>(sp[0]);
  const uint8_t* eb = static_cast<const uint8_t*>(sp[1]);
  const uint64_t kb = k / 32;
  float amax = 0.0f;
  for (uint64_t j = 0; j < n; ++j)
    for (uint64_t i = 0; i < m; ++i) {
      float acc = 0.0f;
      for (uint64_t l = 0; l < k; ++l) {
        const size_t ia = ta == CUBLAS_OP_N ? i + l * a.ld : l + i * a.ld;
        const size_t ib = tb == CUBLAS_OP_N ? l + j * b.ld : j + l * b.ld;
        float x = load(A, a.type, ia), y = load(B, b.type, ib);
        if (block) x *= ue8m0(ea[i * kb + l / 32]), y *= ue8m0(eb[j * kb + l / 32]);
        acc += x * y;
      }
      float v = factor * acc;
      if (be != 0.0f) v += be * load(C, c.type, i + j * c.ld);
      amax = std::fmax(amax, std::fabs(v));
      store(D, d.type, i + j * d.ld, is_fp8(d.type) ? v * sd : v);
    }
  if (void* p = const_cast<void*>(dd.at.get<const void*>(CUBLASLT_MATMUL_DESC_AMAX_D_POINTER)))
    *static_cast<float*>(p) = amax;
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
