// Emulated precision of host GEMMs (`fpscope record --emulate FMT`, FPSCOPE_EMULATE; issue 18).
//
// Contract: with a format F set, every hooked FP32 host GEMM (sgemm_, cblas_sgemm) runs the real
// BLAS on A and B rounded to F (round to nearest even, the format table's casts: numerics.h
// cast_scaled, the same bits as CUDA's __float2bfloat16_rn / __float2half_rn), with C rounded to F
// first when beta != 0 (C is D's storage: a recipe keeps it in F), and D rounded to F after the
// call; the program receives the rounded D and trains on. NaN stays NaN (its payload kept);
// values beyond F's range become +-Inf as F's own cast does. The statistics are of the program's
// values (A, B, C before rounding; D after it), so the cast columns say what the emulation did.
// Only BF16 and FP16 (the formats that need no scaling policy); opt-in, never on by default,
// stamped in the trace's config ("emulate").
#pragma once

#include <cstdint>
#include <vector>

#include "fpscope/formats.h"
#include "recorder.h"

namespace fpscope::probe {

// F's value nearest to x (NaN: x itself). F = FP32: x.
float emulate_round(Format f, float x);

// A copy of operand view o of src (column-major: o.cols columns of o.ld floats, the first o.rows
// of each used), each used element rounded to f; the gaps between columns are left zero. The
// copy has the view's layout: it can be passed to the BLAS in place of src with the same ld.
std::vector<float> emulate_rounded_copy(Format f, const float* src, const OperandDesc& o);
// Rounds the used elements of view o of p to f, in place.
void emulate_round_in_place(Format f, float* p, const OperandDesc& o);

}  // namespace fpscope::probe
