// The CUDA GEMM path between the cuBLAS/cuBLASLt hooks and the recorder.
//
// Contract:
//  - A hook fills a GemmCall from its arguments, calls gemm_begin() BEFORE the real function and
//    gemm_end() after it with the real status, then returns that status unchanged.
//  - gemm_begin() asks the recorder for a ticket (sequence, step, tensor ids, sampling) and, when
//    C is sampled and aliases D (classic cuBLAS always; cuBLASLt when C == D), enqueues the stats
//    of C on the call's stream before the GEMM runs. gemm_end() enqueues A, B (and C when it does
//    not alias D) and D after it, on the same stream, or abandons the ticket when the call failed.
//  - Nothing here synchronizes a stream or the device, or allocates device memory after a
//    device's first use; a capturing stream is skipped and counted.
//  - Operands the stats kernels cannot read (int8, FP64, device pointer arrays of
//    cublasGemmBatchedEx) are recorded in the signature but get no statistics (counted).
//  - FP8 (issue 16 item 8): an operand with a per-tensor cuBLASLt scale is measured as the values
//    the GEMM used (the kernel reads the scale on the device); a block-scaled one is skipped and
//    counted. The per-target scales of the E4M3/E5M2 statistics come from
//    Recorder::stats_scales (FPSCOPE_FP8_SCALING) as on the host path, except "current" scaling,
//    which needs the operand's amax before the pass: unsupported on the device (scale 1, one
//    trace event says so).
//  - Block-scaled formats (issue 19 item 2): each measured operand's job carries
//    Recorder::block_formats() and the host hooks' block axis (device_block_axis); the backend
//    measures them into the same result slot. Operands with a cuBLASLt scale (their codes are not
//    values) or a dtype the block kernel does not read get no block section.
#pragma once

#include <cstdint>
#include <optional>

#include "../src/recorder.h"
#include "fpscope/formats.h"
#include "fpscope/trace_types.h"
#include "fpscope/value_scale.h"
#include "lt_decode.h"

namespace fpscope::cuda {

struct DeviceOperand {
  trace::Role role = trace::Role::D;
  const void* data = nullptr;
  std::optional<Format> dtype;  // nullopt: a type the stats kernels do not read
  uint64_t rows = 0;
  uint64_t cols = 0;
  uint64_t ld = 0;
  uint64_t batch = 1;
  int64_t batch_stride = 0;    // elements
  bool pointer_array = false;  // data is a device array of per-batch pointers (not readable)
  // cuBLASLt FP8 scaling (lt_decode.h operand_scale): the scale the kernel applies to the codes,
  // the scale mode, and whether that mode has no single per-tensor factor (block scaled).
  ValueScale scale;
  int32_t scale_mode = 0;  // cublasLtMatmulMatrixScale_t; 0 (per-tensor) for classic cuBLAS
  bool block_scaled = false;
};

// What submitting an operand enqueues, decided from the operand alone (tests check it without a
// GPU): block-scaled operands are skipped ("block-scaled operand: not measured", counted, one
// trace event per tensor and mode), never measured as if one factor applied; the others read their
// codes through `scale` (none: as stored).
// Block-scaled formats (FPSCOPE_FORMATS, Recorder::block_formats): `block_formats` is the mask
// asked for, kept for operands whose codes the block pass reads as they are (a dtype the kernel
// reads, no cuBLASLt scale: launch_block_stats applies none) and 0 for the others, which get no
// block section.
struct OperandReading {
  bool skip_block_scaled = false;
  ValueScale scale;
  uint32_t block_formats = 0;
};
OperandReading reading_of(const DeviceOperand& o, uint32_t block_formats = 0);

// Which way operand `role`'s blocks run in its stored view, from the call's transposes
// (sig.transa / sig.transb, 'N' or not, as both hooks fill them; cuBLAS and cuBLASLt operands are
// column-major): the host hooks' rule, probe::block_axis_of.
BlockAxis device_block_axis(const trace::GemmSignature& sig, trace::Role role);

// Operand `role` of a decoded cublasLtMatmul (data: its device address): only plain column-major
// layouts are readable by the stats kernels; FP8 operands carry their scale (operand_scale).
DeviceOperand lt_device_operand(const LtMatmul& mm, trace::Role role, const void* data);

struct GemmCall {
  const char* op = "";
  trace::GemmSignature sig;
  int layout = 0;
  void* stream = nullptr;
  bool c_aliases_d = false;
  DeviceOperand operands[4];
  int num_operands = 0;
};

// Per-call state between gemm_begin and gemm_end (plain value, lives on the hook's stack): the
// ticket and the call's device are looked up once, in gemm_begin.
struct GemmState {
  bool active = false;
  uint64_t cookie = 0;
  int device = -1;
  probe::GemmTicket ticket;
};

GemmState gemm_begin(const GemmCall& call);
void gemm_end(const GemmCall& call, GemmState& state, int status);

// The hooked cuBLAS/cuBLASLt functions, one enumerator per exported symbol (cublas_hooks.def,
// in its order), and per-hook call counters (every call the hook saw, recorded or not), for tests
// and the exit log.
enum class Hook : int {
#define FPSCOPE_CUBLAS_SYMBOL(Id, Symbol, Library, Since) Id,
#include "cublas_hooks.def"
  Count
};
const char* hook_name(Hook h);     // the cuBLAS symbol name, "cublasGemmEx", ...
const char* hook_library(Hook h);  // its library's stem, "libcublas" or "libcublasLt"
void count_hook_call(Hook h);
uint64_t hook_calls(Hook h);

}  // namespace fpscope::cuda
