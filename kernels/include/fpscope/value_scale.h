// The per-tensor factor that turns stored codes into the values a GEMM used (issue 16 item 8):
// cuBLASLt's FP8 scale pointers, read where the statistics kernel runs (on the device, inside the
// kernel: never by a host synchronization).
//
// cuBLASLt computes, for FP8 operands in per-tensor scale mode (CUBLASLT_MATMUL_MATRIX_SCALE_
// SCALAR_32F, cublasLt.h), D = scale_D * (alpha * scale_A * scale_B * op(A) op(B) + beta * scale_C
// * C) (cuBLAS documentation, cublasLtMatmul, "FP8"; cublasLt.h: A/B/C_SCALE_POINTER "convert data
// in matrix A/B/C to compute data type range", one FP32 scalar in device memory, absent = 1).
// So an A/B/C code means code * scale (Transformer Engine passes its scale_inv there), and a D code
// was stored as value * scale_D (TE passes its quantization scale): the value is code / scale_D.
//
// Contract: ValueScale{} (no pointer) leaves every element as decoded, bit for bit. With a pointer,
// the element measured is fl(decode(code) * f) (Multiply) or fl(decode(code) / f) (Divide), one
// IEEE-rounded FP32 operation, f the FP32 scalar at `ptr` read once per thread at the start of the
// pass. The per-target scales (FPSCOPE_FP8_SCALING) apply to that value, as on the host.
#pragma once

#include "fpscope/formats.h"

namespace fpscope {

enum class ValueScaleOp : unsigned char { None = 0, Multiply = 1, Divide = 2 };

struct ValueScale {
  const float* ptr = nullptr;  // device address (host address in the CPU model); nullptr: none
  ValueScaleOp op = ValueScaleOp::Multiply;
};

// What a pass applies, once the scalar is read (resolve_value_scale): kernel-argument sized.
struct ResolvedValueScale {
  ValueScaleOp op = ValueScaleOp::None;
  float factor = 1.0f;
};

// The one read of the scalar (device memory in the kernel, host memory in its model).
FPSCOPE_HD inline ResolvedValueScale resolve_value_scale(const ValueScale& vs) {
  ResolvedValueScale r;
  if (vs.ptr == nullptr || vs.op == ValueScaleOp::None) return r;
  r.op = vs.op;
  r.factor = *vs.ptr;
  return r;
}

FPSCOPE_HD inline float apply_value_scale(float x, const ResolvedValueScale& r) {
  switch (r.op) {
    case ValueScaleOp::Multiply:
      return x * r.factor;
    case ValueScaleOp::Divide:
      return x / r.factor;  // IEEE division: nvcc's default -prec-div=true (no fast math here)
    default:
      return x;
  }
}

}  // namespace fpscope
