#include "emulate.h"

#include <fnmatch.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>

#include "fpscope/block_numerics.h"
#include "fpscope/host_stats.h"
#include "fpscope/numerics.h"

// x86-64: the per-element loops are also built for AVX2 (8 lanes where the default build has
// SSE2's 4, and a signed 32-bit max), chosen once by the CPU: on a model of small GEMMs the FP8
// quantize-dequantize was as costly as the GEMM. Integer operations and single float operations
// only, no FMA (-ffp-contract=off; target avx2 has none), so either path gives the same bits
// (test_emulate_fast holds both against the scalar cast).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FPSCOPE_EMULATE_WIDE 1
#define FPSCOPE_WIDE_FN [[gnu::target("avx2"), gnu::flatten]]
#else
#define FPSCOPE_EMULATE_WIDE 0
#endif

namespace fpscope::probe {

namespace {
std::atomic<bool> g_wide_allowed{true};
#if FPSCOPE_EMULATE_WIDE
bool wide() {
  static const bool w = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return w && g_wide_allowed.load(std::memory_order_relaxed);
}
#endif
}  // namespace

bool emulate_allow_wide_loops(bool allow) {
  return g_wide_allowed.exchange(allow);
}

float emulate_round(Format f, float x) {
  if (f == Format::FP32 || x != x) return x;  // NaN keeps its payload
  return cast_scaled(f, x).value;
}

namespace {
uint64_t stored(const OperandDesc& o) {
  return (o.rows == 0 || o.cols == 0) ? 0 : (o.cols - 1) * o.ld + o.rows;
}

// BF16 round to nearest even on the bit pattern (vectorizes): add 0x7fff plus the lowest kept
// bit, clear the low half. Equal to cast_scaled(BF16, x) for every non-NaN x (an overflow carries
// into the exponent and gives Inf, as the cast does); NaN is kept as is. Tested against it.
inline float round_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  const uint32_t out = nan ? u : r;
  float y;
  std::memcpy(&y, &out, 4);
  return y;
}

inline float round_fp16(float x) {
  return x != x ? x : cast_scaled_t<Format::FP16>(x).value;
}

// One column of `rows` elements, rounded to F (compile-time format: the loop vectorizes).
template <Format F>
inline float round_to(float x) {
  return F == Format::BF16 ? round_bf16(x) : round_fp16(x);
}
template <Format F>
void round_column(const float* __restrict s, float* __restrict d, uint64_t rows) {
  for (uint64_t i = 0; i < rows; ++i) d[i] = round_to<F>(s[i]);
}
template <Format F>
void round_column(float* d, uint64_t rows) {  // in place (no restrict: source and destination)
  for (uint64_t i = 0; i < rows; ++i) d[i] = round_to<F>(d[i]);
}

void round_view_loop(Format f, const float* src, float* dst, const OperandDesc& o) {
  for (uint64_t j = 0; j < o.cols; ++j) {
    const float* s = src + j * o.ld;
    float* d = dst + j * o.ld;
    switch (f) {
      case Format::BF16:
        if (s == d)
          round_column<Format::BF16>(d, o.rows);
        else
          round_column<Format::BF16>(s, d, o.rows);
        break;
      case Format::FP16:
        if (s == d)
          round_column<Format::FP16>(d, o.rows);
        else
          round_column<Format::FP16>(s, d, o.rows);
        break;
      default:
        for (uint64_t i = 0; i < o.rows; ++i) d[i] = emulate_round(f, s[i]);
    }
  }
}
#if FPSCOPE_EMULATE_WIDE
FPSCOPE_WIDE_FN void round_view_wide(Format f, const float* src, float* dst, const OperandDesc& o) {
  round_view_loop(f, src, dst, o);
}
#endif
void round_view(Format f, const float* src, float* dst, const OperandDesc& o) {
#if FPSCOPE_EMULATE_WIDE
  if (wide()) return round_view_wide(f, src, dst, o);
#endif
  round_view_loop(f, src, dst, o);
}
}  // namespace

float emulate_round_fast(Format f, float x) {
  return f == Format::BF16   ? round_bf16(x)
         : f == Format::FP16 ? round_fp16(x)
                             : emulate_round(f, x);
}

std::unique_ptr<float[]> emulate_rounded_copy(Format f, const float* src, const OperandDesc& o) {
  std::unique_ptr<float[]> out(new float[stored(o) > 0 ? stored(o) : 1]);
  round_view(f, src, out.get(), o);
  return out;
}

void emulate_round_in_place(Format f, float* p, const OperandDesc& o) {
  round_view(f, p, p, o);
}

namespace {
// Saturating: an overflow (including +-Inf) gives +-max; NaN stays NaN. On bit patterns with
// selects only (no copysign, no bool members): the loop vectorizes.
template <Format F>
inline float fp8_qdq(float x, float scale, float inv) {
  constexpr uint32_t kMaxBits = std::bit_cast<uint32_t>(max_finite(kFormats[static_cast<int>(F)]));
  const float y = x * scale;
  const detail::TargetStep t = detail::cast_step<F>(y);
  const uint32_t u = std::bit_cast<uint32_t>(y);
  const uint32_t sat = (u & kFp32SignMask) | kMaxBits;
  const uint32_t q = (u & kFp32AbsMask) > kFp32InfBits ? u
                     : t.overflow != 0                 ? sat
                                                       : std::bit_cast<uint32_t>(t.value);
  return std::bit_cast<float>(q) * inv;
}
// Quantize-dequantize of view o into dst; with A, also the view's amax (emulate_amax's value: the
// largest finite |x| pattern, Inf and NaN as 0) from the same loads, one column per reduction as
// amax_bits (0 without A).
template <Format F, bool A>
float fp8_loop(float scale, const float* src, float* dst, const OperandDesc& o) {
  const float inv = 1.0f / scale;
  int32_t m = 0;
  for (uint64_t j = 0; j < o.cols; ++j) {
    const float* __restrict s = src + j * o.ld;
    float* __restrict d = dst + j * o.ld;
    if constexpr (A) {
      int32_t c = 0;
      for (uint64_t i = 0; i < o.rows; ++i) {
        const float x = s[i];
        d[i] = fp8_qdq<F>(x, scale, inv);
        const int32_t a = std::bit_cast<int32_t>(x) & 0x7fffffff;
        const int32_t f = a < 0x7f800000 ? a : 0;
        c = f > c ? f : c;
      }
      m = c > m ? c : m;
    } else {
      for (uint64_t i = 0; i < o.rows; ++i) d[i] = fp8_qdq<F>(s[i], scale, inv);
    }
  }
  return std::bit_cast<float>(m);
}
#if FPSCOPE_EMULATE_WIDE
template <Format F, bool A>
FPSCOPE_WIDE_FN float fp8_loop_wide(float scale, const float* src, float* dst,
                                    const OperandDesc& o) {
  return fp8_loop<F, A>(scale, src, dst, o);
}
#endif
template <Format F, bool A>
float fp8_view(float scale, const float* src, float* dst, const OperandDesc& o) {
#if FPSCOPE_EMULATE_WIDE
  if (wide()) return fp8_loop_wide<F, A>(scale, src, dst, o);
#endif
  return fp8_loop<F, A>(scale, src, dst, o);
}
}  // namespace

namespace {
// Finite |x| patterns order as their values do; Inf and NaN count as 0. One column: a plain
// reduction on signed patterns (GCC vectorizes that one; not an unsigned one, nor a maximum
// carried across the column loop).
int32_t amax_bits(const float* s, uint64_t n) {
  int32_t m = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const int32_t a = std::bit_cast<int32_t>(s[i]) & 0x7fffffff;
    const int32_t f = a < 0x7f800000 ? a : 0;
    m = f > m ? f : m;
  }
  return m;
}
}  // namespace

namespace {
float amax_loop(const float* src, const OperandDesc& o) {
  int32_t m = 0;
  for (uint64_t j = 0; j < o.cols; ++j) {
    const int32_t c = amax_bits(src + j * o.ld, o.rows);
    m = c > m ? c : m;
  }
  return std::bit_cast<float>(m);
}
#if FPSCOPE_EMULATE_WIDE
FPSCOPE_WIDE_FN float amax_loop_wide(const float* src, const OperandDesc& o) {
  return amax_loop(src, o);
}
#endif
}  // namespace

float emulate_amax(const float* src, const OperandDesc& o) {
#if FPSCOPE_EMULATE_WIDE
  if (wide()) return amax_loop_wide(src, o);
#endif
  return amax_loop(src, o);
}

float emulate_fp8(Format f, float scale, float inv_scale, float x) {
  return f == Format::E5M2 ? fp8_qdq<Format::E5M2>(x, scale, inv_scale)
                           : fp8_qdq<Format::E4M3>(x, scale, inv_scale);
}

uint64_t emulate_stored(const OperandDesc& o) {
  return stored(o);
}

void emulate_fp8_into(Format f, float scale, const float* src, const OperandDesc& o, float* dst,
                      float* amax) {
  const bool e5 = f == Format::E5M2;
  if (amax != nullptr)
    *amax = e5 ? fp8_view<Format::E5M2, true>(scale, src, dst, o)
               : fp8_view<Format::E4M3, true>(scale, src, dst, o);
  else if (e5)
    fp8_view<Format::E5M2, false>(scale, src, dst, o);
  else
    fp8_view<Format::E4M3, false>(scale, src, dst, o);
}

std::unique_ptr<float[]> emulate_fp8_copy(Format f, float scale, const float* src,
                                          const OperandDesc& o) {
  std::unique_ptr<float[]> out(new float[stored(o) > 0 ? stored(o) : 1]);
  emulate_fp8_into(f, scale, src, o, out.get(), nullptr);
  return out;
}

namespace {
void block_into(int f, const float* src, const OperandDesc& o, float* dst) {
  const auto bs = static_cast<uint64_t>(block_size_of(f));
  const float s_enc = f == kNumBlockFormats - 1 ? nvfp4_tensor_scale(emulate_amax(src, o)) : 1.0f;
  if (o.block_axis == BlockAxis::Rows) {  // blocks within a stored column: contiguous
    for (uint64_t j = 0; j < o.cols; ++j)
      for (uint64_t i = 0; i < o.rows; i += bs) {
        const uint64_t at = i + j * o.ld;
        block_qdq_of(f, src + at, static_cast<int>(std::min(bs, o.rows - i)), s_enc, dst + at);
      }
    return;
  }
  // Blocks across bs consecutive columns: gathered row by row (the bs column streams advance
  // together).
  constexpr int kMaxBlock = 32;
  static_assert(kMxfp8E4M3.block_size == kMaxBlock && kNvfp4.block_size <= kMaxBlock);
  float x[kMaxBlock], y[kMaxBlock];
  for (uint64_t j0 = 0; j0 < o.cols; j0 += bs) {
    const auto w = static_cast<int>(std::min(bs, o.cols - j0));
    for (uint64_t i = 0; i < o.rows; ++i) {
      for (int c = 0; c < w; ++c) x[c] = src[i + (j0 + c) * o.ld];
      block_qdq_of(f, x, w, s_enc, y);
      for (int c = 0; c < w; ++c) dst[i + (j0 + c) * o.ld] = y[c];
    }
  }
}
}  // namespace

std::unique_ptr<float[]> emulate_block_copy(int f, const float* src, const OperandDesc& o) {
  std::unique_ptr<float[]> out(new float[stored(o) > 0 ? stored(o) : 1]);
  block_into(f, src, o, out.get());
  return out;
}

void emulate_operand_into(const EmulatePlan& p, int i, const float* src, const OperandDesc& o,
                          float* dst, float* amax) {
  if (p.block >= 0)
    block_into(p.block, src, o, dst);
  else if (p.in[i] == Format::E4M3 || p.in[i] == Format::E5M2)
    emulate_fp8_into(p.in[i], p.scale[i], src, o, dst, amax);
  else
    round_view(p.in[i], src, dst, o);
  if (amax != nullptr && (p.block >= 0 || (p.in[i] != Format::E4M3 && p.in[i] != Format::E5M2)))
    *amax = emulate_amax(src, o);
}

std::unique_ptr<float[]> emulate_operand_copy(const EmulatePlan& p, int i, const float* src,
                                              const OperandDesc& o) {
  std::unique_ptr<float[]> out(new float[stored(o) > 0 ? stored(o) : 1]);
  emulate_operand_into(p, i, src, o, out.get(), nullptr);
  return out;
}

namespace {
struct Scratch {
  static constexpr uint64_t kKeepFloats = uint64_t{16} << 20;  // 64 MiB
  std::unique_ptr<float[]> p[2];
  uint64_t n[2] = {0, 0};
};
Scratch& thread_scratch() {
  thread_local Scratch s;
  return s;
}
}  // namespace

float* emulate_scratch(int i, uint64_t n) {
  Scratch& s = thread_scratch();
  if (n == 0) n = 1;
  if (n > s.n[i]) {
    s.p[i].reset();
    s.n[i] = 0;
    s.p[i].reset(new float[n]);
    s.n[i] = n;
  }
  return s.p[i].get();
}

void emulate_scratch_trim() {
  Scratch& s = thread_scratch();
  for (int i = 0; i < 2; ++i)
    if (s.n[i] > Scratch::kKeepFloats) {
      s.p[i].reset();
      s.n[i] = 0;
    }
}

// ---- Emulator ----

namespace {
bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}
constexpr size_t kMaxForwardReads = 1 << 16;  // steps that never end: forget, not grow

// The contents of an operand as stored (host_stats.h content_fingerprint: ~1/10 of a statistics
// pass): what hybrid matches backward operands to forward reads by, with the address.
uint64_t contents(const OperandDesc& o) {
  return o.data == nullptr ? 0 : content_fingerprint(o.data, o.dtype, o.rows, o.cols, o.ld);
}
// Bytes from the first element of the view to the end of its last (column-major, ld).
uint64_t stored_bytes(const OperandDesc& o) {
  if (o.rows == 0 || o.cols == 0) return 0;
  return ((o.cols - 1) * o.ld + o.rows) * static_cast<uint64_t>(storage_bits(spec(o.dtype)) / 8);
}
}  // namespace

Emulator::Emulator(const EmulateSettings& s) : s_(s) {}

bool Emulator::skipped(const std::string& scope) const {
  if (s_.skip.empty() || scope.empty()) return false;
  const std::string path = ends_with(scope, ".bwd") ? scope.substr(0, scope.size() - 4) : scope;
  for (const std::string& p : s_.skip)
    if (fnmatch(p.c_str(), path.c_str(), 0) == 0 || fnmatch(p.c_str(), scope.c_str(), 0) == 0)
      return true;
  return false;
}

float Emulator::scale_for(const std::string& key, Format f, const float* amax,
                          Fp8Scaler** pending) {
  if (s_.policy == ScalingPolicy::Current) return Fp8Scaler::current_scale(f, *amax, s_.margin);
  auto it = scalers_.find(key);
  if (it == scalers_.end())
    it = scalers_.emplace(key, Fp8Scaler(f, ScalingPolicy::Delayed, s_.history, s_.margin, s_.algo))
             .first;
  const float sc = it->second.scale();
  if (amax != nullptr)
    it->second.observe(*amax);
  else
    *pending = &it->second;  // a node of the map: stays valid (entries are never erased)
  return sc;
}

void Emulator::observe(const EmulatePlan& p, const float amax[2]) {
  if (p.observe[0] == nullptr && p.observe[1] == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < 2; ++i)
    if (p.observe[i] != nullptr) p.observe[i]->observe(amax[i]);
}

EmulatePlan Emulator::plan(const GemmDesc& d, const std::string& scope, uint64_t step,
                           const float amax[2]) {
  EmulatePlan p;
  switch (s_.mode) {
    case EmulateMode::BF16:
    case EmulateMode::FP16: {
      const Format f = s_.mode == EmulateMode::BF16 ? Format::BF16 : Format::FP16;
      p.in[0] = p.in[1] = p.out = f;
      return p;
    }
    case EmulateMode::Off:
      p.skip = true;
      return p;
    default:
      if (const int b = emulate_block_format(s_.mode); b >= 0) {
        p.block = b;
        p.out = Format::BF16;
        return p;
      }
      break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (step != step_) {
    step_ = step;
    calls_.clear();
    forward_reads_.clear();
  }
  const std::string base = scope.empty() ? std::string("gemm") : scope;
  const std::string name = base + "#" + std::to_string(calls_[base]++);
  bool backward = false;
  if (s_.mode == EmulateMode::Hybrid) {
    const std::string g = grads_.name(name, scope, d, step);
    backward = ends_with(scope, ".bwd") || ends_with(g, ".dgrad") || ends_with(g, ".wgrad") ||
               g.find(".dgrad#") != std::string::npos || g.find(".wgrad#") != std::string::npos;
    if (!backward && forward_reads_.size() < kMaxForwardReads)
      for (int i = 0; i < 2; ++i)
        forward_reads_[d.operands[i].data] = {d.operands[i], contents(d.operands[i])};
  }
  p.out = Format::BF16;
  for (int i = 0; i < 2; ++i) {
    Format f = s_.mode == EmulateMode::E5M2 ? Format::E5M2 : Format::E4M3;
    if (backward) {
      const OperandDesc& o = d.operands[i];
      const auto it = forward_reads_.find(o.data);
      const bool same_tensor = it != forward_reads_.end() &&
                               stored_bytes(it->second.view) <= stored_bytes(o) &&
                               contents(it->second.view) == it->second.contents;
      if (!same_tensor) f = Format::E5M2;
    }
    p.in[i] = f;
    p.scale[i] = scale_for(name + (i == 0 ? ".A." : ".B.") + spec(f).name, f,
                           amax != nullptr ? &amax[i] : nullptr, &p.observe[i]);
  }
  return p;
}

Emulator& process_emulator() {
  static Emulator* e = new Emulator(loaded_emulation());  // never destroyed: threads exit late
  return *e;
}

}  // namespace fpscope::probe
