// Descriptor decoding with REAL cuBLASLt descriptors (they are host objects: no GPU needed).
#include <cublasLt.h>
#include <gtest/gtest.h>

#include "gemm_engine.h"
#include "lt_decode.h"

namespace fpscope::cuda {
namespace {

LtApi real_api() {
  LtApi api;
  api.desc_get = &cublasLtMatmulDescGetAttribute;
  api.layout_get = &cublasLtMatrixLayoutGetAttribute;
  return api;
}

struct Layout {
  cublasLtMatrixLayout_t h = nullptr;
  Layout(cudaDataType t, uint64_t rows, uint64_t cols, int64_t ld) {
    EXPECT_EQ(cublasLtMatrixLayoutCreate(&h, t, rows, cols, ld), CUBLAS_STATUS_SUCCESS);
  }
  ~Layout() { cublasLtMatrixLayoutDestroy(h); }
  template <typename T>
  void set(cublasLtMatrixLayoutAttribute_t a, T v) {
    ASSERT_EQ(cublasLtMatrixLayoutSetAttribute(h, a, &v, sizeof(v)), CUBLAS_STATUS_SUCCESS);
  }
};

struct Desc {
  cublasLtMatmulDesc_t h = nullptr;
  Desc(cublasComputeType_t c, cudaDataType s) {
    EXPECT_EQ(cublasLtMatmulDescCreate(&h, c, s), CUBLAS_STATUS_SUCCESS);
  }
  ~Desc() { cublasLtMatmulDescDestroy(h); }
  template <typename T>
  void set(cublasLtMatmulDescAttributes_t a, T v) {
    ASSERT_EQ(cublasLtMatmulDescSetAttribute(h, a, &v, sizeof(v)), CUBLAS_STATUS_SUCCESS);
  }
};

TEST(LtDecode, DescriptorsWorkWithoutAGpu) {
  Layout l(CUDA_R_16BF, 3, 5, 7);
  ASSERT_NE(l.h, nullptr);
  Desc d(CUBLAS_COMPUTE_32F, CUDA_R_32F);
  ASSERT_NE(d.h, nullptr);
}

TEST(LtDecode, LayoutBasicsAndBatch) {
  const LtApi api = real_api();
  Layout l(CUDA_R_16BF, 64, 48, 80);
  l.set(CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, int32_t{6});
  l.set(CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, int64_t{80 * 48 + 16});
  LtLayout out;
  std::string err;
  ASSERT_TRUE(decode_layout(api, l.h, &out, &err)) << err;
  EXPECT_EQ(out.type, static_cast<uint32_t>(CUDA_R_16BF));
  ASSERT_TRUE(out.dtype.has_value());
  EXPECT_EQ(*out.dtype, Format::BF16);
  EXPECT_EQ(out.rows, 64u);
  EXPECT_EQ(out.cols, 48u);
  EXPECT_EQ(out.ld, 80);
  EXPECT_EQ(out.order, CUBLASLT_ORDER_COL);
  EXPECT_EQ(out.batch_count, 6);
  EXPECT_EQ(out.batch_stride, 80 * 48 + 16);
  EXPECT_EQ(out.batch_mode, 0u);
  EXPECT_EQ(out.missing, "");  // cuBLASLt 13 knows every attribute we read
}

TEST(LtDecode, RowOrderAndUnreadableTypes) {
  const LtApi api = real_api();
  Layout l(CUDA_R_8I, 16, 32, 32);
  l.set(CUBLASLT_MATRIX_LAYOUT_ORDER, int32_t{CUBLASLT_ORDER_ROW});
  LtLayout out;
  std::string err;
  ASSERT_TRUE(decode_layout(api, l.h, &out, &err)) << err;
  EXPECT_EQ(out.order, CUBLASLT_ORDER_ROW);
  EXPECT_FALSE(out.dtype.has_value());
}

TEST(LtDecode, FormatMapping) {
  EXPECT_EQ(format_from_cuda(CUDA_R_32F), Format::FP32);
  EXPECT_EQ(format_from_cuda(CUDA_R_16F), Format::FP16);
  EXPECT_EQ(format_from_cuda(CUDA_R_16BF), Format::BF16);
  EXPECT_EQ(format_from_cuda(CUDA_R_8F_E4M3), Format::E4M3);
  EXPECT_EQ(format_from_cuda(CUDA_R_8F_E5M2), Format::E5M2);
  EXPECT_FALSE(format_from_cuda(CUDA_R_64F).has_value());
  EXPECT_FALSE(format_from_cuda(CUDA_R_4F_E2M1).has_value());
}

// A Transformer-Engine-style FP8 GEMM: D = A^T B, E4M3 inputs, BF16 output, scale pointers, amax.
TEST(LtDecode, Fp8MatmulWithScalePointersAndEpilogue) {
  const LtApi api = real_api();
  const int64_t m = 128, n = 96, k = 256;
  Desc d(CUBLAS_COMPUTE_32F, CUDA_R_32F);
  d.set(CUBLASLT_MATMUL_DESC_TRANSA, int32_t{CUBLAS_OP_T});
  d.set(CUBLASLT_MATMUL_DESC_TRANSB, int32_t{CUBLAS_OP_N});
  d.set(CUBLASLT_MATMUL_DESC_EPILOGUE, uint32_t{CUBLASLT_EPILOGUE_BIAS});
  // Fake device addresses: decoding never dereferences them.
  const void* sa = reinterpret_cast<const void*>(0x7000'1000);
  const void* sb = reinterpret_cast<const void*>(0x7000'2000);
  const void* sd = reinterpret_cast<const void*>(0x7000'3000);
  void* amax = reinterpret_cast<void*>(0x7000'4000);
  d.set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, sa);
  d.set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, sb);
  d.set(CUBLASLT_MATMUL_DESC_D_SCALE_POINTER, sd);
  d.set(CUBLASLT_MATMUL_DESC_AMAX_D_POINTER, amax);
  Layout a(CUDA_R_8F_E4M3, k, m, k);  // stored k x m, used transposed
  Layout b(CUDA_R_8F_E5M2, k, n, k);
  Layout c(CUDA_R_16BF, m, n, m);
  Layout dd(CUDA_R_16BF, m, n, m + 8);
  LtMatmul mm;
  std::string err;
  ASSERT_TRUE(decode_matmul(api, d.h, a.h, b.h, c.h, dd.h, &mm, &err)) << err;
  EXPECT_EQ(mm.compute_type, CUBLAS_COMPUTE_32F);
  EXPECT_EQ(mm.scale_type, CUDA_R_32F);
  EXPECT_EQ(mm.transa, CUBLAS_OP_T);
  EXPECT_EQ(mm.transb, CUBLAS_OP_N);
  EXPECT_EQ(mm.epilogue, static_cast<uint32_t>(CUBLASLT_EPILOGUE_BIAS));
  EXPECT_EQ(mm.pointer_mode, CUBLASLT_POINTER_MODE_HOST);
  EXPECT_EQ(mm.a_scale, sa);
  EXPECT_EQ(mm.b_scale, sb);
  EXPECT_EQ(mm.c_scale, nullptr);
  EXPECT_EQ(mm.d_scale, sd);
  EXPECT_EQ(mm.amax_d, amax);
  EXPECT_TRUE(mm.is_fp8());
  EXPECT_EQ(mm.a.dtype, Format::E4M3);
  EXPECT_EQ(mm.b.dtype, Format::E5M2);
  EXPECT_EQ(mm.d.dtype, Format::BF16);
  EXPECT_EQ(mm.m(), m);
  EXPECT_EQ(mm.n(), n);
  EXPECT_EQ(mm.k(), k);
  const trace::GemmSignature s = mm.signature();
  EXPECT_EQ(s.transa, 'T');
  EXPECT_EQ(s.transb, 'N');
  EXPECT_EQ(s.m, m);
  EXPECT_EQ(s.n, n);
  EXPECT_EQ(s.k, k);
  EXPECT_EQ(s.lda, k);
  EXPECT_EQ(s.ldb, k);
  EXPECT_EQ(s.ldc, m + 8);
  EXPECT_EQ(s.batch, 1);
}

TEST(LtDecode, ScaleTypeDiffersFromComputeAndBf16Gemm) {
  const LtApi api = real_api();
  Desc d(CUBLAS_COMPUTE_32F_FAST_16BF, CUDA_R_32F);
  Layout a(CUDA_R_16BF, 32, 16, 32);  // N: m x k = 32 x 16
  Layout b(CUDA_R_16BF, 8, 16, 8);    // T: stored n x k = 8 x 16
  d.set(CUBLASLT_MATMUL_DESC_TRANSB, int32_t{CUBLAS_OP_T});
  Layout c(CUDA_R_32F, 32, 8, 32);
  LtMatmul mm;
  std::string err;
  ASSERT_TRUE(decode_matmul(api, d.h, a.h, b.h, c.h, c.h, &mm, &err)) << err;
  EXPECT_EQ(mm.compute_type, CUBLAS_COMPUTE_32F_FAST_16BF);
  EXPECT_EQ(mm.m(), 32);
  EXPECT_EQ(mm.n(), 8);
  EXPECT_EQ(mm.k(), 16);
  EXPECT_FALSE(mm.is_fp8());
  EXPECT_EQ(mm.signature().transb, 'T');
}

TEST(LtDecode, NullDescriptorIsAnErrorNotACrash) {
  const LtApi api = real_api();
  Layout a(CUDA_R_32F, 4, 4, 4);
  LtMatmul mm;
  std::string err;
  EXPECT_FALSE(decode_matmul(api, nullptr, a.h, a.h, a.h, a.h, &mm, &err));
  EXPECT_NE(err.find("null descriptor"), std::string::npos);
}

// A getter that fails for one required attribute: the message names it.
cublasStatus_t failing_layout_get(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a,
                                  void* buf, size_t size, size_t* written) {
  if (a == CUBLASLT_MATRIX_LAYOUT_LD) return CUBLAS_STATUS_INVALID_VALUE;
  return cublasLtMatrixLayoutGetAttribute(l, a, buf, size, written);
}

TEST(LtDecode, FailingRequiredAttributeIsNamed) {
  LtApi api = real_api();
  api.layout_get = &failing_layout_get;
  Layout l(CUDA_R_16F, 4, 4, 4);
  LtLayout out;
  std::string err;
  EXPECT_FALSE(decode_layout(api, l.h, &out, &err));
  EXPECT_NE(err.find("LD"), std::string::npos) << err;
}

// Issue 16 item 8, what the GPU path enqueues for FP8 operands (real descriptors, no GPU):
// cuBLASLt computes D = scale_D * (alpha * scale_A * scale_B * op(A) op(B) + beta * scale_C * C)
// (cuBLAS documentation, cublasLtMatmul, FP8; cublasLt.h A/B/C/D_SCALE_POINTER), so A/B codes are
// read as code * scale and an FP8 D as code / scale_D (value_scale.h).
TEST(LtDecode, Fp8PerTensorScalesBecomeTheKernelsValueScale) {
  const LtApi api = real_api();
  Desc d(CUBLAS_COMPUTE_32F, CUDA_R_32F);
  d.set(CUBLASLT_MATMUL_DESC_TRANSA, int32_t{CUBLAS_OP_T});
  const float* sa = reinterpret_cast<const float*>(0x7000'1000);
  const float* sb = reinterpret_cast<const float*>(0x7000'2000);
  const float* sd = reinterpret_cast<const float*>(0x7000'3000);
  d.set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, static_cast<const void*>(sa));
  d.set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, static_cast<const void*>(sb));
  d.set(CUBLASLT_MATMUL_DESC_D_SCALE_POINTER, static_cast<const void*>(sd));
  Layout a(CUDA_R_8F_E4M3, 64, 32, 64);
  Layout b(CUDA_R_8F_E5M2, 64, 16, 64);
  Layout c(CUDA_R_16BF, 32, 16, 32);
  Layout dd(CUDA_R_8F_E4M3, 32, 16, 32);
  LtMatmul mm;
  std::string err;
  ASSERT_TRUE(decode_matmul(api, d.h, a.h, b.h, c.h, dd.h, &mm, &err)) << err;
  EXPECT_EQ(mm.a_scale_mode, CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F);
  EXPECT_EQ(mm.d_scale_mode, CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F);
  EXPECT_EQ(mm.missing, "");

  const void* data = reinterpret_cast<const void*>(0x9000'0000);
  struct Want {
    trace::Role role;
    const float* ptr;
    ValueScaleOp op;
  };
  for (const Want& w : {Want{trace::Role::A, sa, ValueScaleOp::Multiply},
                        Want{trace::Role::B, sb, ValueScaleOp::Multiply},
                        Want{trace::Role::C, nullptr, ValueScaleOp::None},  // BF16: as stored
                        Want{trace::Role::D, sd, ValueScaleOp::Divide}}) {
    SCOPED_TRACE(trace::role_name(w.role));
    const DeviceOperand o = lt_device_operand(mm, w.role, data);
    EXPECT_FALSE(o.block_scaled);
    EXPECT_EQ(o.scale_mode, 0);
    const OperandReading r = reading_of(o);
    EXPECT_FALSE(r.skip_block_scaled);
    EXPECT_EQ(r.scale.ptr, w.ptr);
    if (w.ptr != nullptr) {
      EXPECT_EQ(r.scale.op, w.op);
    }
  }
  EXPECT_EQ(lt_device_operand(mm, trace::Role::D, data).dtype, Format::E4M3);
}

TEST(LtDecode, Fp8ScalePointerOnANonFp8OperandIsNotApplied) {
  // A BF16 D with a D scale set: cuBLASLt refuses the combination (cublasLt.h, "unsupported
  // matrix data ... combination"); the codes are measured as stored, never divided.
  const LtApi api = real_api();
  Desc d(CUBLAS_COMPUTE_32F, CUDA_R_32F);
  d.set(CUBLASLT_MATMUL_DESC_D_SCALE_POINTER,
        static_cast<const void*>(reinterpret_cast<const float*>(0x7000'3000)));
  Layout a(CUDA_R_8F_E4M3, 8, 8, 8), b(CUDA_R_8F_E4M3, 8, 8, 8);
  Layout c(CUDA_R_16BF, 8, 8, 8), dd(CUDA_R_16BF, 8, 8, 8);
  LtMatmul mm;
  std::string err;
  ASSERT_TRUE(decode_matmul(api, d.h, a.h, b.h, c.h, dd.h, &mm, &err)) << err;
  const OperandReading r = reading_of(lt_device_operand(mm, trace::Role::D, nullptr));
  EXPECT_EQ(r.scale.ptr, nullptr);
  EXPECT_FALSE(r.skip_block_scaled);
  // A without a scale pointer: scale 1, as stored.
  EXPECT_EQ(reading_of(lt_device_operand(mm, trace::Role::A, nullptr)).scale.ptr, nullptr);
}

TEST(LtDecode, BlockScaleModesAreSkippedNeverReadAsOneFactor) {
  // MXFP8: E4M3 A and B with VEC32_UE8M0 block scales (the scale pointers point at UE8M0 tensors,
  // not at one float); D BF16.
  const LtApi api = real_api();
  Desc d(CUBLAS_COMPUTE_32F, CUDA_R_32F);
  d.set(CUBLASLT_MATMUL_DESC_TRANSA, int32_t{CUBLAS_OP_T});
  d.set(CUBLASLT_MATMUL_DESC_A_SCALE_MODE, int32_t{CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0});
  d.set(CUBLASLT_MATMUL_DESC_B_SCALE_MODE, int32_t{CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0});
  d.set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
        static_cast<const void*>(reinterpret_cast<const float*>(0x7000'1000)));
  d.set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
        static_cast<const void*>(reinterpret_cast<const float*>(0x7000'2000)));
  Layout a(CUDA_R_8F_E4M3, 128, 64, 128), b(CUDA_R_8F_E4M3, 128, 32, 128);
  Layout c(CUDA_R_16BF, 64, 32, 64), dd(CUDA_R_16BF, 64, 32, 64);
  LtMatmul mm;
  std::string err;
  ASSERT_TRUE(decode_matmul(api, d.h, a.h, b.h, c.h, dd.h, &mm, &err)) << err;
  EXPECT_EQ(mm.a_scale_mode, CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0);
  EXPECT_EQ(mm.b_scale_mode, CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0);
  for (trace::Role role : {trace::Role::A, trace::Role::B}) {
    SCOPED_TRACE(trace::role_name(role));
    const DeviceOperand o = lt_device_operand(mm, role, nullptr);
    EXPECT_TRUE(o.block_scaled);
    EXPECT_EQ(o.scale_mode, CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0);
    const OperandReading r = reading_of(o);
    EXPECT_TRUE(r.skip_block_scaled);
    EXPECT_EQ(r.scale.ptr, nullptr);
  }
  // D (BF16, no mode): measured as stored.
  EXPECT_FALSE(reading_of(lt_device_operand(mm, trace::Role::D, nullptr)).skip_block_scaled);

  // An FP8 D quantized per block by cuBLASLt (D_OUT_SCALE pointer and mode): skipped too.
  {
    Desc d2(CUBLAS_COMPUTE_32F, CUDA_R_32F);
    d2.set(CUBLASLT_MATMUL_DESC_D_OUT_SCALE_POINTER,
           static_cast<const void*>(reinterpret_cast<const float*>(0x7000'5000)));
    d2.set(CUBLASLT_MATMUL_DESC_D_OUT_SCALE_MODE,
           int32_t{CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0});
    Layout a2(CUDA_R_8F_E4M3, 64, 32, 64), b2(CUDA_R_8F_E4M3, 32, 16, 32);
    Layout c2(CUDA_R_16BF, 64, 16, 64), d8(CUDA_R_8F_E4M3, 64, 16, 64);
    LtMatmul m2;
    ASSERT_TRUE(decode_matmul(api, d2.h, a2.h, b2.h, c2.h, d8.h, &m2, &err)) << err;
    const DeviceOperand o = lt_device_operand(m2, trace::Role::D, nullptr);
    EXPECT_TRUE(o.block_scaled);
    EXPECT_EQ(o.scale_mode, CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0);
    EXPECT_TRUE(reading_of(o).skip_block_scaled);
    EXPECT_FALSE(reading_of(lt_device_operand(m2, trace::Role::A, nullptr)).skip_block_scaled);
  }

  // NVFP4-style VEC16_UE4M3 and the FP32 block modes are block scaled too; the per-row vector
  // mode (OUTER_VEC_32F) has no single factor either.
  for (int32_t mode : {1, 3, 4, 5}) {
    SCOPED_TRACE(scale_mode_name(mode));
    mm.a_scale_mode = mode;
    EXPECT_TRUE(reading_of(lt_device_operand(mm, trace::Role::A, nullptr)).skip_block_scaled);
  }
}

// Block-scaled formats (issue 19 item 2): blocks run along k for A and B, along a row of C and D,
// in the stored column-major view; the device path must give each operand the axis the host hooks
// give it. Hand-made table: a non-transposed A (m x k) holds k along its columns; a transposed one
// (stored k x m) along its rows; B the other way round; C and D (m x n) along their columns.
TEST(LtDecode, BlockAxisOfEachOperandAndTransposeIsTheHostHooksOne) {
  struct Row {
    trace::Role role;
    char trans;  // the operand's own transpose ('N' for C and D)
    BlockAxis want;
  };
  const Row table[] = {
      {trace::Role::A, 'N', BlockAxis::Cols}, {trace::Role::A, 'T', BlockAxis::Rows},
      {trace::Role::A, 'C', BlockAxis::Rows}, {trace::Role::B, 'N', BlockAxis::Rows},
      {trace::Role::B, 'T', BlockAxis::Cols}, {trace::Role::B, 'C', BlockAxis::Cols},
      {trace::Role::C, 'N', BlockAxis::Cols}, {trace::Role::D, 'N', BlockAxis::Cols},
  };
  for (const Row& r : table) {
    for (char other : {'N', 'T'}) {  // the other operand's transpose changes nothing
      SCOPED_TRACE(std::string(trace::role_name(r.role)) + " trans " + r.trans + " other " + other);
      trace::GemmSignature sig;
      sig.transa = r.role == trace::Role::B ? other : r.trans;
      sig.transb = r.role == trace::Role::B ? r.trans : other;
      EXPECT_EQ(device_block_axis(sig, r.role), r.want);
      // The host hooks (hooks_blas.cpp operand()): column-major BLAS, the same transpose.
      EXPECT_EQ(probe::block_axis_of(r.role, r.trans != 'N'), r.want);
    }
    // Row-major CBLAS (trans != row_major): the stored view is the transpose, and so is the axis.
    const BlockAxis flipped = r.want == BlockAxis::Rows ? BlockAxis::Cols : BlockAxis::Rows;
    EXPECT_EQ(probe::block_axis_of(r.role, r.trans == 'N'), flipped);
  }

  // Through a real descriptor: TRANSA = T, TRANSB = N (the cuBLASLt hook's signature).
  const LtApi api = real_api();
  Desc d(CUBLAS_COMPUTE_32F, CUDA_R_32F);
  d.set(CUBLASLT_MATMUL_DESC_TRANSA, int32_t{CUBLAS_OP_T});
  Layout a(CUDA_R_16BF, 64, 32, 64), b(CUDA_R_16BF, 64, 16, 64);
  Layout c(CUDA_R_16BF, 32, 16, 32), dd(CUDA_R_16BF, 32, 16, 32);
  LtMatmul mm;
  std::string err;
  ASSERT_TRUE(decode_matmul(api, d.h, a.h, b.h, c.h, dd.h, &mm, &err)) << err;
  const trace::GemmSignature sig = mm.signature();
  EXPECT_EQ(device_block_axis(sig, trace::Role::A), BlockAxis::Rows);  // stored k x m: k down
  EXPECT_EQ(device_block_axis(sig, trace::Role::B), BlockAxis::Rows);  // stored k x n
  EXPECT_EQ(device_block_axis(sig, trace::Role::D), BlockAxis::Cols);
}

// The block-format mask reaches only operands whose codes the block kernel reads as values.
TEST(LtDecode, BlockFormatsOnlyForOperandsReadAsStored) {
  const uint32_t all = kAllBlockFormats;
  const LtApi api = real_api();
  Desc d(CUBLAS_COMPUTE_32F, CUDA_R_32F);
  d.set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
        static_cast<const void*>(reinterpret_cast<const float*>(0x7000'1000)));
  Layout a(CUDA_R_8F_E4M3, 64, 32, 64), b(CUDA_R_8F_E5M2, 32, 16, 32);  // B: FP8, no scale
  Layout c(CUDA_R_16BF, 64, 16, 64), dd(CUDA_R_32F, 64, 16, 64);
  LtMatmul mm;
  std::string err;
  ASSERT_TRUE(decode_matmul(api, d.h, a.h, b.h, c.h, dd.h, &mm, &err)) << err;
  EXPECT_EQ(reading_of(lt_device_operand(mm, trace::Role::A, nullptr), all).block_formats, 0u)
      << "a per-tensor scale: the block kernel would read codes, not values";
  EXPECT_EQ(reading_of(lt_device_operand(mm, trace::Role::B, nullptr), all).block_formats, all);
  EXPECT_EQ(reading_of(lt_device_operand(mm, trace::Role::C, nullptr), all).block_formats, all);
  EXPECT_EQ(reading_of(lt_device_operand(mm, trace::Role::D, nullptr), 0b100001u).block_formats,
            0b100001u);
  EXPECT_EQ(reading_of(lt_device_operand(mm, trace::Role::D, nullptr)).block_formats, 0u)
      << "none asked for";
  mm.a_scale_mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0;  // block scaled: not measured at all
  const OperandReading blocked = reading_of(lt_device_operand(mm, trace::Role::A, nullptr), all);
  EXPECT_TRUE(blocked.skip_block_scaled);
  EXPECT_EQ(blocked.block_formats, 0u);
  DeviceOperand unreadable = lt_device_operand(mm, trace::Role::C, nullptr);
  unreadable.dtype = std::nullopt;  // int8, FP64, row order: no statistics, no blocks
  EXPECT_EQ(reading_of(unreadable, all).block_formats, 0u);
}

TEST(LtDecode, ScaleModeNames) {
  EXPECT_EQ(scale_mode_name(CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F), "SCALAR_32F");
  EXPECT_EQ(scale_mode_name(CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3), "VEC16_UE4M3");
  EXPECT_EQ(scale_mode_name(CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0), "VEC32_UE8M0");
  EXPECT_EQ(scale_mode_name(CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F), "OUTER_VEC_32F");
  EXPECT_EQ(scale_mode_name(CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F), "VEC128_32F");
  EXPECT_EQ(scale_mode_name(CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F), "BLK128x128_32F");
  EXPECT_EQ(scale_mode_name(42), "mode 42");
}

}  // namespace
}  // namespace fpscope::cuda
