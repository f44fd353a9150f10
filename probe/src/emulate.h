// Emulated precision of host GEMMs (`fpscope record --emulate SPEC`, FPSCOPE_EMULATE; issue 18).
//
// Contract: with SPEC bf16 or fp16 (format F), every hooked FP32 host GEMM (sgemm_, cblas_sgemm)
// runs the real BLAS on A and B rounded to F (round to nearest even, the format table's casts:
// numerics.h cast_scaled, the same bits as CUDA's __float2bfloat16_rn / __float2half_rn), with C
// rounded to F first when beta != 0 (C is D's storage: a recipe keeps it in F), and D rounded to F
// after the call; the program receives the rounded D and trains on. NaN stays NaN (its payload
// kept); values beyond F's range become +-Inf as F's own cast does. The statistics are of the
// program's values (A, B, C before rounding; D after it), so the cast columns say what the
// emulation did. Opt-in, never on by default, stamped in the trace's config ("emulate",
// "emulate_skip").
//
// FP8 (e4m3, e5m2, hybrid = E4M3 forward and E5M2 for gradients): each operand x is scaled by a
// per-tensor scale s (the policy's: current = from its own amax (largest finite |x|), delayed =
// from the amax history of the same operand of earlier steps; kernels/scaling.h,
// FPSCOPE_FP8_SCALING's policies), cast with a saturating RNE cast (the format table's cast_scaled;
// NaN stays NaN, +-Inf and values beyond the format's range become +-max, as CUDA's __NV_SATFINITE
// casts that TE uses) and dequantized, q * fl(1 / s) in FP32 (TE's scale_inv), before the real
// SGEMM; D (and C when beta != 0) is rounded to BF16, the recipe's output format.
//
// Block-scaled (mxfp8_e4m3 = mxfp8, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4: OCP MX v1.0; nvfp4):
// A and B are quantized per block along the reduction dimension k, as the hardware consumes them
// (op(A)'s rows, op(B)'s columns: OperandDesc::block_axis), 32 elements per block with an E8M0
// scale (MX) or 16 with an E4M3 scale and the FP32 tensor scale s_enc = 6 * 448 / amax of the
// operand (NVFP4; amax its largest finite |x|), a line's last block possibly shorter; then
// dequantized to FP32 (block_numerics.h mx_block_qdq / nvfp4_block_qdq: the statistics' own
// scales and casts) before the real SGEMM; D (and C when beta != 0) is rounded to BF16. A block
// holding a NaN or an Inf has a NaN scale: its elements all become NaN (the format's rule).
//
// Skip (FPSCOPE_EMULATE_SKIP): a call whose scope (the PyTorch integration's module path, or any
// fpscope_scope_push name: what the call is named by when it is made) matches a pattern, or whose
// scope is "<path>.bwd" with <path> matching, runs in FP32. Calls without a scope (gemm#k: their
// ordinal is known only once steps are) never match.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "config.h"
#include "fpscope/formats.h"
#include "fpscope/scaling.h"
#include "grad_names.h"
#include "recorder.h"

namespace fpscope::probe {

// F's value nearest to x (NaN: x itself). F = FP32: x.
float emulate_round(Format f, float x);
// The same through the vectorizable paths the copies use (BF16 on the bit pattern); equal to
// emulate_round for every input (tests/probe: every BF16-relevant pattern).
float emulate_round_fast(Format f, float x);

// Whether the per-element loops may use their AVX2 builds where the CPU has AVX2 (default true;
// the same bits either way): tests turn it off to check the default builds too. Returns the
// previous setting.
bool emulate_allow_wide_loops(bool allow);

// A copy of operand view o of src (column-major: o.cols columns of o.ld floats, the first o.rows
// of each used), each used element rounded to f; the gaps between columns are left unset (the
// BLAS never reads them). The copy has the view's layout: it can be passed to the BLAS in place
// of src with the same ld. Throws std::bad_alloc.
std::unique_ptr<float[]> emulate_rounded_copy(Format f, const float* src, const OperandDesc& o);
// Rounds the used elements of view o of p to f, in place.
void emulate_round_in_place(Format f, float* p, const OperandDesc& o);

// FP8 quantize-dequantize of one value: sat_cast(f, fl(x * scale)) * inv_scale (f: E4M3, E5M2).
float emulate_fp8(Format f, float scale, float inv_scale, float x);
// The same for each used element of view o of src, into a copy with the view's layout (as
// emulate_rounded_copy). inv_scale = fl(1 / scale). Throws std::bad_alloc.
std::unique_ptr<float[]> emulate_fp8_copy(Format f, float scale, const float* src,
                                          const OperandDesc& o);
// The same into dst (emulate_stored(o) floats, the view's layout). amax != nullptr: *amax =
// emulate_amax(src, o), found in the same pass (delayed scaling's scale does not depend on it).
void emulate_fp8_into(Format f, float scale, const float* src, const OperandDesc& o, float* dst,
                      float* amax);
// Floats a copy of view o holds ((cols - 1) * ld + rows; 0 for an empty view).
uint64_t emulate_stored(const OperandDesc& o);

// The block-scaled quantize-dequantize of view o of src (block format f: kBlockFormats' index),
// blocks along o.block_axis, into a copy with the view's layout (as emulate_rounded_copy). NVFP4's
// tensor scale comes from the view's amax (emulate_amax). Throws std::bad_alloc.
std::unique_ptr<float[]> emulate_block_copy(int f, const float* src, const OperandDesc& o);

// Largest finite |x| over the used elements of view o of src (0 when there is none): the same
// value as compute_amax (host_stats.h), on bit patterns in one vectorized pass.
float emulate_amax(const float* src, const OperandDesc& o);

// This thread's buffer for the copy of operand i (0: A, 1: B), at least n floats: reused across
// calls (a fresh allocation per call cost page faults and cold cache lines, as much as the rounding
// on a model of small GEMMs). Valid until the thread's next call with the same i, or
// emulate_scratch_trim. Throws std::bad_alloc.
float* emulate_scratch(int i, uint64_t n);
// Releases this thread's buffers over 64 MiB each (after a call on a large operand).
void emulate_scratch_trim();

// What one emulated call does (Emulator::plan).
struct EmulatePlan {
  bool skip = false;                            // FP32, untouched (a skip pattern matched)
  Format in[2] = {Format::FP32, Format::FP32};  // A, B
  float scale[2] = {1.0f, 1.0f};                // FP8 scales (1 for BF16/FP16)
  int block = -1;  // block-scaled: kBlockFormats' index of A's and B's format (then `in` unused)
  Format out = Format::FP32;  // C (beta != 0) and D
  // Delayed scaling planned without the amaxes (Emulator::amax_after): the histories that this
  // call's amaxes enter (Emulator::observe), nullptr where none.
  Fp8Scaler* observe[2] = {nullptr, nullptr};
};

// The copy of operand i (0: A, 1: B) of src (view o) that plan p runs the GEMM on: block-scaled,
// FP8 quantized-dequantized or rounded. Throws std::bad_alloc.
std::unique_ptr<float[]> emulate_operand_copy(const EmulatePlan& p, int i, const float* src,
                                              const OperandDesc& o);
// The same into dst (emulate_stored(o) floats). amax != nullptr (FP8 plans only): *amax =
// emulate_amax(src, o), from the same pass.
void emulate_operand_into(const EmulatePlan& p, int i, const float* src, const OperandDesc& o,
                          float* dst, float* amax);

// The emulation of one process. Thread-safe (one lock; the per-element work is the caller's).
class Emulator {
 public:
  explicit Emulator(const EmulateSettings& s);
  const EmulateSettings& settings() const { return s_; }
  // Whether `scope` (a call's innermost scope) is kept in FP32.
  bool skipped(const std::string& scope) const;
  // Whether plan() needs the operands' amaxes and the step (FP8).
  bool fp8() const { return s_.fp8(); }
  // Whether plan() may be given no amaxes (delayed scaling: the scales come from earlier calls'),
  // the caller then handing them to observe() once its copies have found them.
  bool amax_after() const { return s_.fp8() && s_.policy == ScalingPolicy::Delayed; }
  // The plan of a call that is not skipped: `d` with its operands' data (the call's A and B),
  // `scope`, the step it is in, and amax[i] = max |x| over A's and B's used elements (FP8 only).
  // Delayed scaling: one amax history per (scope or "gemm", its j-th call of the step, operand,
  // format); the scale is the history's before this call, then this call's amax enters it.
  // Hybrid: a backward call (scope "<path>.bwd", or without scopes named .dgrad/.wgrad by the
  // operand matching of grad_names.h) casts the operand that no forward GEMM of the step read (the
  // output gradient) to E5M2, the other (weight or input) to E4M3; forward calls are all E4M3.
  // amax == nullptr (amax_after() only): the histories are left to observe(p, amax).
  EmulatePlan plan(const GemmDesc& d, const std::string& scope, uint64_t step, const float amax[2]);
  // Enters amax[i] into p.observe[i]'s history (a plan made without amaxes), as plan() would have.
  void observe(const EmulatePlan& p, const float amax[2]);

 private:
  // amax == nullptr: the history is returned in *pending instead of observing.
  float scale_for(const std::string& key, Format f, const float* amax, Fp8Scaler** pending);
  EmulateSettings s_;
  std::mutex mu_;
  uint64_t step_ = UINT64_MAX;
  std::unordered_map<std::string, uint32_t> calls_;  // per scope, this step
  // A and B of this step's forward calls: buffer -> its view and contents when read. A backward
  // operand at that address counts as forward-read only when the forward view's bytes lie within
  // its own and still hold the same contents: an output gradient that the allocator placed where
  // a freed activation was is not the activation (by address alone, hybrid's choice of E5M2
  // changed from run to run with the allocator's reuse: three runs of a TransformerEncoder, three
  // losses). A smaller buffer at the address is never read past its end: it counts as new.
  struct ForwardRead {
    OperandDesc view;
    uint64_t contents = 0;
  };
  std::unordered_map<const void*, ForwardRead> forward_reads_;
  GradNamer grads_{true};
  std::unordered_map<std::string, Fp8Scaler> scalers_;  // delayed: per key and format
};

// The process's emulator (loaded_emulation()), made on first use; only while the recorder says
// emulation is on.
Emulator& process_emulator();

}  // namespace fpscope::probe
