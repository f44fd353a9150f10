#include "lt_decode.h"

#include <library_types.h>

#include <iterator>
#include <mutex>
#include <string>

#include "../src/resolve.h"
#include "cublas_nodes.h"

namespace fpscope::cuda {
namespace {

template <typename T, typename Get, typename Obj, typename Attr>
cublasStatus_t get_attr(Get get, Obj obj, Attr attr, T* value) {
  size_t written = 0;
  T tmp{};
  const cublasStatus_t st = get(obj, attr, &tmp, sizeof(T), &written);
  if (st == CUBLAS_STATUS_SUCCESS && written == sizeof(T)) *value = tmp;
  return st == CUBLAS_STATUS_SUCCESS && written != sizeof(T) ? CUBLAS_STATUS_INVALID_VALUE : st;
}

void note_missing(std::string* missing, const char* name) {
  if (!missing->empty()) *missing += ',';
  *missing += name;
}

std::string fail(const char* what, const char* attr, cublasStatus_t st) {
  return std::string("cublasLt ") + what + " attribute " + attr + ": status " +
         std::to_string(static_cast<int>(st));
}

}  // namespace

const LtApi* LtApi::from_process(int major) {
  if (!is_cublas_node_major(major)) return nullptr;
  static LtApi api[kCublasNodeMajors];
  static std::once_flag once[kCublasNodeMajors];
  LtApi& a = api[cublas_node_index(major)];
  std::call_once(once[cublas_node_index(major)], [&a, major] {
    const std::string version = cublas_node_name("libcublasLt", major);
    a.desc_get = reinterpret_cast<DescGet>(
        probe::resolve_real("cublasLtMatmulDescGetAttribute", "cublasLt", version.c_str()));
    a.layout_get = reinterpret_cast<LayoutGet>(
        probe::resolve_real("cublasLtMatrixLayoutGetAttribute", "cublasLt", version.c_str()));
  });
  return a.desc_get != nullptr && a.layout_get != nullptr ? &a : nullptr;
}

std::optional<Format> format_from_cuda(int t) {
  switch (t) {
    case CUDA_R_32F:
      return Format::FP32;
    case CUDA_R_16BF:
      return Format::BF16;
    case CUDA_R_16F:
      return Format::FP16;
    case CUDA_R_8F_E4M3:
      return Format::E4M3;
    case CUDA_R_8F_E5M2:
      return Format::E5M2;
    default:
      return std::nullopt;
  }
}

bool LtMatmul::is_fp8() const {
  auto f8 = [](const LtLayout& l) { return l.dtype == Format::E4M3 || l.dtype == Format::E5M2; };
  return f8(a) || f8(b);
}

trace::GemmSignature LtMatmul::signature() const {
  trace::GemmSignature s;
  s.transa = transa == CUBLAS_OP_N ? 'N' : (transa == CUBLAS_OP_T ? 'T' : 'C');
  s.transb = transb == CUBLAS_OP_N ? 'N' : (transb == CUBLAS_OP_T ? 'T' : 'C');
  s.m = m();
  s.n = n();
  s.k = k();
  s.lda = a.ld;
  s.ldb = b.ld;
  s.ldc = d.ld;
  s.batch = d.batch_count;
  return s;
}

OperandScale operand_scale(const LtMatmul& mm, trace::Role role) {
  const void* ptr = nullptr;
  const LtLayout* l = nullptr;
  OperandScale s;
  switch (role) {
    case trace::Role::A:
      ptr = mm.a_scale, l = &mm.a, s.mode = mm.a_scale_mode;
      break;
    case trace::Role::B:
      ptr = mm.b_scale, l = &mm.b, s.mode = mm.b_scale_mode;
      break;
    case trace::Role::C:
      ptr = mm.c_scale, l = &mm.c, s.mode = mm.c_scale_mode;
      break;
    default:
      ptr = mm.d_scale, l = &mm.d, s.mode = mm.d_scale_mode;
      break;
  }
  if (l->dtype != Format::E4M3 && l->dtype != Format::E5M2) return s;
  if (role == trace::Role::D && mm.d_out_scale != nullptr) {
    s.mode = mm.d_out_scale_mode;  // cuBLASLt quantized D per block and wrote the block scales
    s.block_scaled = true;
    return s;
  }
  if (s.mode != CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F) {
    s.block_scaled = true;  // per block / per row vector: one factor would be silently wrong
    return s;
  }
  if (ptr == nullptr) return s;  // scale 1: the codes are the values
  s.ptr = static_cast<const float*>(ptr);
  s.op = role == trace::Role::D ? ValueScaleOp::Divide : ValueScaleOp::Multiply;
  return s;
}

std::string scale_mode_name(int32_t mode) {
  // cublasLtMatmulMatrixScale_t's values (CUDA 13 cublasLt.h), by number: 12.8 headers lack the
  // last two names.
  static const char* const kNames[] = {"SCALAR_32F",    "VEC16_UE4M3", "VEC32_UE8M0",
                                       "OUTER_VEC_32F", "VEC128_32F",  "BLK128x128_32F"};
  if (mode >= 0 && mode < static_cast<int32_t>(std::size(kNames))) return kNames[mode];
  return "mode " + std::to_string(mode);
}

bool decode_layout(const LtApi& api, cublasLtMatrixLayout_t layout, LtLayout* out,
                   std::string* error) {
  LtLayout l;
  cublasStatus_t st;
  auto req = [&](auto attr, const char* name, auto* value) {
    st = get_attr(api.layout_get, layout, attr, value);
    if (st != CUBLAS_STATUS_SUCCESS) {
      *error = fail("matrix layout", name, st);
      return false;
    }
    return true;
  };
  if (!req(CUBLASLT_MATRIX_LAYOUT_TYPE, "TYPE", &l.type)) return false;
  if (!req(CUBLASLT_MATRIX_LAYOUT_ROWS, "ROWS", &l.rows)) return false;
  if (!req(CUBLASLT_MATRIX_LAYOUT_COLS, "COLS", &l.cols)) return false;
  if (!req(CUBLASLT_MATRIX_LAYOUT_LD, "LD", &l.ld)) return false;
  auto opt = [&](auto attr, const char* name, auto* value) {
    if (get_attr(api.layout_get, layout, attr, value) != CUBLAS_STATUS_SUCCESS)
      note_missing(&l.missing, name);
  };
  opt(CUBLASLT_MATRIX_LAYOUT_ORDER, "ORDER", &l.order);
  opt(CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, "BATCH_COUNT", &l.batch_count);
  opt(CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, "STRIDED_BATCH_OFFSET", &l.batch_stride);
  opt(CUBLASLT_MATRIX_LAYOUT_BATCH_MODE, "BATCH_MODE", &l.batch_mode);
  l.dtype = format_from_cuda(static_cast<int>(l.type));
  *out = std::move(l);
  return true;
}

bool decode_matmul(const LtApi& api, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                   cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                   LtMatmul* out, std::string* error) {
  if (desc == nullptr || a == nullptr || b == nullptr || c == nullptr || d == nullptr) {
    *error = "cublasLtMatmul: null descriptor";
    return false;
  }
  LtMatmul mm;
  cublasStatus_t st;
  auto req = [&](auto attr, const char* name, auto* value) {
    st = get_attr(api.desc_get, desc, attr, value);
    if (st != CUBLAS_STATUS_SUCCESS) {
      *error = fail("matmul desc", name, st);
      return false;
    }
    return true;
  };
  if (!req(CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, "COMPUTE_TYPE", &mm.compute_type)) return false;
  if (!req(CUBLASLT_MATMUL_DESC_SCALE_TYPE, "SCALE_TYPE", &mm.scale_type)) return false;
  if (!req(CUBLASLT_MATMUL_DESC_TRANSA, "TRANSA", &mm.transa)) return false;
  if (!req(CUBLASLT_MATMUL_DESC_TRANSB, "TRANSB", &mm.transb)) return false;
  auto opt = [&](auto attr, const char* name, auto* value) {
    if (get_attr(api.desc_get, desc, attr, value) != CUBLAS_STATUS_SUCCESS)
      note_missing(&mm.missing, name);
  };
  opt(CUBLASLT_MATMUL_DESC_POINTER_MODE, "POINTER_MODE", &mm.pointer_mode);
  opt(CUBLASLT_MATMUL_DESC_EPILOGUE, "EPILOGUE", &mm.epilogue);
  opt(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, "A_SCALE_POINTER", &mm.a_scale);
  opt(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, "B_SCALE_POINTER", &mm.b_scale);
  opt(CUBLASLT_MATMUL_DESC_C_SCALE_POINTER, "C_SCALE_POINTER", &mm.c_scale);
  opt(CUBLASLT_MATMUL_DESC_D_SCALE_POINTER, "D_SCALE_POINTER", &mm.d_scale);
  opt(CUBLASLT_MATMUL_DESC_AMAX_D_POINTER, "AMAX_D_POINTER", &mm.amax_d);
  opt(CUBLASLT_MATMUL_DESC_A_SCALE_MODE, "A_SCALE_MODE", &mm.a_scale_mode);
  opt(CUBLASLT_MATMUL_DESC_B_SCALE_MODE, "B_SCALE_MODE", &mm.b_scale_mode);
  opt(CUBLASLT_MATMUL_DESC_C_SCALE_MODE, "C_SCALE_MODE", &mm.c_scale_mode);
  opt(CUBLASLT_MATMUL_DESC_D_SCALE_MODE, "D_SCALE_MODE", &mm.d_scale_mode);
  opt(CUBLASLT_MATMUL_DESC_D_OUT_SCALE_POINTER, "D_OUT_SCALE_POINTER", &mm.d_out_scale);
  opt(CUBLASLT_MATMUL_DESC_D_OUT_SCALE_MODE, "D_OUT_SCALE_MODE", &mm.d_out_scale_mode);

  const cublasLtMatrixLayout_t layouts[4] = {a, b, c, d};
  LtLayout* dst[4] = {&mm.a, &mm.b, &mm.c, &mm.d};
  const char* names[4] = {"A", "B", "C", "D"};
  for (int i = 0; i < 4; ++i) {
    std::string e;
    if (!decode_layout(api, layouts[i], dst[i], &e)) {
      *error = std::string("layout ") + names[i] + ": " + e;
      return false;
    }
  }
  *out = std::move(mm);
  return true;
}

}  // namespace fpscope::cuda
