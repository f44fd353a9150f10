// Decoding of cuBLASLt matmul descriptors and matrix layouts (what a cublasLtMatmul call does to
// which memory), through the library's own cublasLt*GetAttribute functions.
//
// Contract:
//  - decode_layout/decode_matmul read every attribute they report; an attribute the loaded
//    cuBLASLt does not know (older versions: BATCH_MODE, A/B/C/D_SCALE_MODE) keeps its documented
//    default and is listed in `missing`; a failure to read a REQUIRED attribute (type, rows, cols,
//    ld, compute type, transposes) returns false with a message naming the attribute.
//  - No GPU and no cublasLt handle are needed: descriptors are host objects.
//  - GEMM shape (column-major, as cuBLASLt defines it): D is m x n, op(A) is m x k, op(B) k x n.
#pragma once

#include <cublasLt.h>

#include <cstdint>
#include <optional>
#include <string>

#include "fpscope/formats.h"
#include "fpscope/trace_types.h"
#include "fpscope/value_scale.h"

namespace fpscope::cuda {

// The two getters, resolved from the loaded libcublasLt (or given directly by tests).
struct LtApi {
  using DescGet = cublasStatus_t (*)(cublasLtMatmulDesc_t, cublasLtMatmulDescAttributes_t, void*,
                                     size_t, size_t*);
  using LayoutGet = cublasStatus_t (*)(cublasLtMatrixLayout_t, cublasLtMatrixLayoutAttribute_t,
                                       void*, size_t, size_t*);
  DescGet desc_get = nullptr;
  LayoutGet layout_get = nullptr;

  // Resolved once per version node from the process (resolve_real with version
  // "libcublasLt.so.<major>", else the default one: a hook bound to node .12 decodes descriptors
  // with libcublasLt.so.12's getters); nullptr when libcublasLt is not loaded or `major` is not
  // one of the hook table's nodes (11-13).
  static const LtApi* from_process(int major);
};

// cudaDataType -> fpscope format; nullopt for types the stats kernels do not read (int8, FP64,
// complex, FP4, ...).
std::optional<Format> format_from_cuda(int cuda_data_type);

struct LtLayout {
  uint32_t type = 0;  // cudaDataType
  std::optional<Format> dtype;
  int32_t order = CUBLASLT_ORDER_COL;
  uint64_t rows = 0;
  uint64_t cols = 0;
  int64_t ld = 0;
  int32_t batch_count = 1;
  int64_t batch_stride = 0;  // elements
  uint32_t batch_mode = 0;   // 0 strided, 1 pointer array (CUDA 13)
  std::string missing;       // optional attributes this cuBLASLt did not report
};

struct LtMatmul {
  int32_t compute_type = 0;  // cublasComputeType_t
  int32_t scale_type = 0;    // cudaDataType of alpha/beta
  int32_t pointer_mode = 0;  // cublasLtPointerMode_t
  int32_t transa = CUBLAS_OP_N;
  int32_t transb = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  // FP8 scaling: device pointers to float scalars (nullptr when unset).
  const void* a_scale = nullptr;
  const void* b_scale = nullptr;
  const void* c_scale = nullptr;
  const void* d_scale = nullptr;
  const void* amax_d = nullptr;
  int32_t a_scale_mode = 0;  // cublasLtMatmulMatrixScale_t (CUDA 12.8+), 0 = per-tensor scalar
  int32_t b_scale_mode = 0;
  int32_t c_scale_mode = 0;
  int32_t d_scale_mode = 0;
  // Block-scaled outputs (CUDA 12.8+): cuBLASLt writes D's per-block scales here.
  const void* d_out_scale = nullptr;
  int32_t d_out_scale_mode = 0;
  LtLayout a, b, c, d;
  std::string missing;

  int64_t m() const { return static_cast<int64_t>(d.rows); }
  int64_t n() const { return static_cast<int64_t>(d.cols); }
  int64_t k() const { return static_cast<int64_t>(transa == CUBLAS_OP_N ? a.cols : a.rows); }
  bool is_fp8() const;
  trace::GemmSignature signature() const;  // alpha/beta left at 1/0: read by the hook when host
};

// What an operand's codes mean (issue 16 item 8), from its scale pointer and scale mode. cuBLASLt
// (cublasLt.h; cuBLAS documentation, cublasLtMatmul, FP8): D = scale_D * (alpha * scale_A *
// scale_B * op(A) op(B) + beta * scale_C * C), scales absent = 1, so an A/B/C code stands for
// code * scale and a D code for code / scale_D (value_scale.h). Only FP8 operands (E4M3/E5M2) are
// scaled: cuBLASLt refuses a scale pointer on other types (CUBLAS_STATUS_INVALID_VALUE).
struct OperandScale {
  const float* ptr = nullptr;  // device FP32 scalar (per-tensor mode); nullptr: codes as stored
  ValueScaleOp op = ValueScaleOp::None;
  int32_t mode = 0;           // cublasLtMatmulMatrixScale_t of the operand
  bool block_scaled = false;  // FP8 with a mode other than SCALAR_32F: no single factor
  // (D: also an FP8 D with a D_OUT_SCALE pointer, whose codes carry per-block output scales;
  // `mode` is then D_OUT_SCALE_MODE)
};
OperandScale operand_scale(const LtMatmul& mm, trace::Role role);
// "SCALAR_32F", "VEC16_UE4M3", "VEC32_UE8M0", "OUTER_VEC_32F", "VEC128_32F", "BLK128x128_32F",
// or "mode <n>" for a value this build does not name.
std::string scale_mode_name(int32_t mode);

bool decode_layout(const LtApi& api, cublasLtMatrixLayout_t layout, LtLayout* out,
                   std::string* error);
// Adesc..Ddesc may not be null (cublasLtMatmul requires all four).
bool decode_matmul(const LtApi& api, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                   cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                   LtMatmul* out, std::string* error);

}  // namespace fpscope::cuda
