// Host BLAS hooks: sgemm_ (Fortran BLAS, what Debian's PyTorch CPU calls), cblas_sgemm (numpy),
// and the BF16 GEMMs sbgemm_/cblas_sbgemm where the BLAS exports them.
//
// Each hook: resolves the real function lazily (resolve.h), passes straight through when nested
// (HookGuard), when the recorder is off or the call is not sampled; otherwise hands the operands
// to this thread's runs (gemm_runs.h: C before the call writes it, the rest before or after the
// call, measured there or on the statistics helper from copies). The arguments reach the real
// function untouched.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "emulate.h"
#include "gemm_runs.h"
#include "log.h"
#include "op_names.h"
#include "recorder.h"
#include "resolve.h"

#define FPSCOPE_EXPORT extern "C" __attribute__((visibility("default")))

namespace fpscope::probe {
namespace {

using trace::Role;

// CBLAS enums as the ABI passes them (ints); cblas.h is not included so that nothing clashes.
constexpr int kRowMajor = 101;
constexpr int kColMajor = 102;
constexpr int kNoTrans = 111;

bool fortran_trans(char c) {
  return !(c == 'N' || c == 'n');
}
char upper_trans(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
}
char cblas_trans_char(int t) {
  return t == kNoTrans ? 'N' : (t == 112 ? 'T' : 'C');
}

// Stored layout of an operand whose op() is r x c: column-major view (rows contiguous).
OperandDesc operand(Role role, Format dtype, bool trans, bool row_major, int64_t r, int64_t c,
                    int64_t ld) {
  int64_t sr = trans ? c : r, sc = trans ? r : c;  // as stored, logical (row x col)
  if (row_major) std::swap(sr, sc);                // a row-major R x C is a column-major C x R
  OperandDesc o;
  o.role = role;
  o.dtype = dtype;
  const bool valid = sr >= 0 && sc >= 0 && ld >= (sr > 1 ? sr : 1);
  o.rows = valid ? static_cast<uint64_t>(sr) : 0;  // invalid: not measured (the BLAS will refuse)
  o.cols = valid ? static_cast<uint64_t>(sc) : 0;
  o.ld = valid ? static_cast<uint64_t>(ld) : 0;
  o.block_axis = block_axis_of(role, trans != row_major);  // along k for A/B, a row of C/D
  return o;
}

// One GEMM: A (m x k after op), B (k x n), C/D (m x n).
struct Call {
  GemmDesc desc;
  const void* a;
  const void* b;
  float* c;
};

void internal_error(const char* what) {
  static std::atomic<bool> once{false};
  if (!once.exchange(true))
    log(LogLevel::Error, "internal error (%s): a GEMM went unrecorded; the program runs on", what);
}

// Measures and performs one call. Nothing escapes into the program: an exception inside the probe
// (out of memory) loses the record, never the call.
template <typename Real>
void run(const Call& call, Real&& real) {
  HookGuard guard;
  bool done = false;
  try {
    Recorder* rec = guard.outermost() ? Recorder::get() : nullptr;
    if (rec == nullptr) {
      done = true;
      real();
      return;
    }
    ThreadRuns& runs = ThreadRuns::this_thread();
    std::lock_guard<std::mutex> lock(runs.mu);
    const GemmTicket& ticket = runs.begin(rec, call.desc, Recorder::current_scope());
    if (!ticket.any) {
      done = true;
      real();
      return;
    }
    // Whatever happens, the hook returns only once the helper no longer reads A and B.
    struct Settle {
      ThreadRuns& r;
      ~Settle() { r.settle_copies(); }
    } settle{runs};
    runs.before_call(call.desc);
    done = true;
    real();
    runs.after_call(call.desc);
  } catch (const std::exception& e) {
    internal_error(e.what());
    if (!done) real();
  } catch (...) {
    internal_error("unknown exception");
    if (!done) real();
  }
}

// The stored elements of an operand view (column-major: cols columns of ld, the last one rows).
uint64_t stored_elements(const OperandDesc& o) {
  return (o.rows == 0 || o.cols == 0) ? 0 : (o.cols - 1) * o.ld + o.rows;
}
// BF16 -> FP32 (exact: BF16 is the top half of an FP32 pattern).
std::vector<float> widen_bf16(const void* p, const OperandDesc& o) {
  std::vector<float> out(stored_elements(o));
  const auto* h = static_cast<const uint16_t*>(p);
  for (size_t i = 0; i < out.size(); ++i) {
    const uint32_t bits = static_cast<uint32_t>(h[i]) << 16;
    __builtin_memcpy(&out[i], &bits, sizeof bits);
  }
  return out;
}

Call make_call(const char* op, int layout, Format ab, char ta, char tb, int m, int n, int k,
               double alpha, const void* a, int lda, const void* b, int ldb, double beta, float* c,
               int ldc) {
  Call call{};
  GemmDesc& d = call.desc;
  d.op = op;
  d.layout = layout;
  d.batch_open = true;  // batch_run.h: later calls may merge into this one
  d.sig.transa = ta;
  d.sig.transb = tb;
  d.sig.m = m;
  d.sig.n = n;
  d.sig.k = k;
  d.sig.lda = lda;
  d.sig.ldb = ldb;
  d.sig.ldc = ldc;
  d.sig.alpha = alpha;
  d.sig.beta = beta;
  const bool rm = layout == kRowMajor;
  d.operands[0] = operand(Role::A, ab, fortran_trans(ta), rm, m, k, lda);
  d.operands[1] = operand(Role::B, ab, fortran_trans(tb), rm, k, n, ldb);
  int i = 2;
  if (beta != 0.0) d.operands[i++] = operand(Role::C, Format::FP32, false, rm, m, n, ldc);
  d.operands[i++] = operand(Role::D, Format::FP32, false, rm, m, n, ldc);
  d.num_operands = i;
  d.operands[0].data = a;
  d.operands[1].data = b;
  for (int j = 2; j < i; ++j) d.operands[j].data = c;
  call.a = a;
  call.b = b;
  call.c = c;
  return call;
}

template <int kHook>
void missing(const char* name) {
  // Reached only when no loaded object defines `name` (e.g. the program found the probe's BF16
  // hook by dlsym): the call cannot be performed.
  static std::atomic<bool> once{false};
  if (!once.exchange(true))
    log(LogLevel::Error, "%s: no loaded library defines it; the call did nothing", name);
}

using sgemm_fn = void (*)(const char*, const char*, const int*, const int*, const int*,
                          const float*, const float*, const int*, const float*, const int*,
                          const float*, float*, const int*, size_t, size_t);
using sbgemm_fn = void (*)(const char*, const char*, const int*, const int*, const int*,
                           const float*, const uint16_t*, const int*, const uint16_t*, const int*,
                           const float*, float*, const int*, size_t, size_t);
using cblas_sgemm_fn = void (*)(int, int, int, int, int, int, float, const float*, int,
                                const float*, int, float, float*, int);
using cblas_sbgemm_fn = void (*)(int, int, int, int, int, int, float, const uint16_t*, int,
                                 const uint16_t*, int, float, float*, int);

std::atomic<sgemm_fn> g_sgemm{nullptr};
std::atomic<sbgemm_fn> g_sbgemm{nullptr};
std::atomic<cblas_sgemm_fn> g_cblas_sgemm{nullptr};
std::atomic<cblas_sbgemm_fn> g_cblas_sbgemm{nullptr};

}  // namespace
}  // namespace fpscope::probe

using namespace fpscope::probe;  // NOLINT: hooks are extern "C"

// Emulated precision (emulate.h): the format in force, FP32 when off or the probe is not recording.
namespace {
fpscope::Format emulate_format() {
  const Recorder* rec = Recorder::get();
  return rec != nullptr ? rec->emulate() : fpscope::Format::FP32;
}

// Runs `gemm` on A and B as the process's emulator plans (emulate.h: rounded to F, or FP8 or
// block-scaled quantized and dequantized; C rounded first when beta != 0), then rounds D. A skipped
// call runs `plain`. Out of memory for the copies: the call runs unemulated (`plain`), with one
// error in the log. Delayed scaling: the amaxes come from the quantizing pass itself (the scales
// are the histories' before this call), not from a pass of their own.
template <typename Plain, typename Gemm>
void emulated(const Call& call, const float* a, const float* b, float beta, float* c, Plain&& plain,
              Gemm&& gemm) {
  Emulator& em = process_emulator();
  const std::string scope = Recorder::current_scope();
  if (em.skipped(scope)) return plain();
  const OperandDesc& oa = call.desc.operands[0];
  const OperandDesc& ob = call.desc.operands[1];
  float amax[2] = {0.0f, 0.0f};
  uint64_t step = 0;
  const bool after = em.amax_after();
  if (em.fp8()) {
    if (!after) {
      amax[0] = emulate_amax(a, oa);
      amax[1] = emulate_amax(b, ob);
    }
    const Recorder* rec = Recorder::get();
    step = rec != nullptr ? rec->current_step() : 0;
  }
  const EmulatePlan p = em.plan(call.desc, scope, step, after ? nullptr : amax);
  if (p.skip) return plain();
  float* ra = nullptr;
  float* rb = nullptr;
  try {
    ra = emulate_scratch(0, emulate_stored(oa));
    rb = emulate_scratch(1, emulate_stored(ob));
  } catch (const std::bad_alloc&) {
    emulate_scratch_trim();
    static std::atomic<bool> once{false};
    if (!once.exchange(true))
      log(LogLevel::Error, "emulation: out of memory for rounded operands; calls run in FP32");
    if (after) {  // the histories see this call as when it is emulated
      amax[0] = emulate_amax(a, oa);
      amax[1] = emulate_amax(b, ob);
      em.observe(p, amax);
    }
    return plain();
  }
  emulate_operand_into(p, 0, a, oa, ra, after ? &amax[0] : nullptr);
  emulate_operand_into(p, 1, b, ob, rb, after ? &amax[1] : nullptr);
  if (after) em.observe(p, amax);
  const OperandDesc& d = call.desc.operands[call.desc.num_operands - 1];
  if (beta != 0.0f) emulate_round_in_place(p.out, c, d);  // C is D's storage, kept in `out`
  gemm(ra, rb);
  emulate_round_in_place(p.out, c, d);
  emulate_scratch_trim();
}
}  // namespace

// Fortran BLAS: every argument by reference; gfortran appends the lengths of the two character
// arguments, which are forwarded as received (C callers that omit them pass garbage that the
// BLAS ignores, exactly as without the probe).
FPSCOPE_EXPORT void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
                           const float* alpha, const float* a, const int* lda, const float* b,
                           const int* ldb, const float* beta, float* c, const int* ldc, size_t la,
                           size_t lb) {
  sgemm_fn real = resolve_cached<sgemm_fn>(g_sgemm, "sgemm_");
  if (real == nullptr) return missing<0>("sgemm_");
  auto call_real = [&] { real(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, la, lb); };
  if (HookGuard::active()) return call_real();
  const Call call =
      make_call(kOpSgemm, 0, fpscope::Format::FP32, upper_trans(*ta), upper_trans(*tb), *m, *n, *k,
                *alpha, a, *lda, b, *ldb, *beta, c, *ldc);
  if (emulate_format() != fpscope::Format::FP32) {
    return run(call, [&] {
      emulated(call, a, b, *beta, c, call_real, [&](const float* ra, const float* rb) {
        real(ta, tb, m, n, k, alpha, ra, lda, rb, ldb, beta, c, ldc, la, lb);
      });
    });
  }
  run(call, call_real);
}

// The BF16 GEMMs are exported whether or not the BLAS has them (the probe cannot know at link
// time; Debian's OpenBLAS 0.3.21 declares but does not export them). Without a real one, the
// call is performed by the real SGEMM on A and B widened to FP32 (exact), which accumulates in
// FP32 as sbgemm does: a program that finds the symbol gets a correct product, never a no-op.
namespace {
std::atomic<bool> g_sbgemm_missing{false};
std::atomic<bool> g_cblas_sbgemm_missing{false};
void emulation_note(const char* name) {
  static std::atomic<bool> once{false};
  if (!once.exchange(true))
    log(LogLevel::Info, "%s: the BLAS has none; computed by its SGEMM on widened operands", name);
}
}  // namespace

FPSCOPE_EXPORT void sbgemm_(const char* ta, const char* tb, const int* m, const int* n,
                            const int* k, const float* alpha, const uint16_t* a, const int* lda,
                            const uint16_t* b, const int* ldb, const float* beta, float* c,
                            const int* ldc, size_t la, size_t lb) {
  sbgemm_fn real = g_sbgemm_missing.load(std::memory_order_relaxed)
                       ? nullptr
                       : resolve_cached<sbgemm_fn>(g_sbgemm, "sbgemm_");
  const Call call =
      make_call(kOpSbgemm, 0, fpscope::Format::BF16, upper_trans(*ta), upper_trans(*tb), *m, *n, *k,
                *alpha, a, *lda, b, *ldb, *beta, c, *ldc);
  if (real != nullptr) {
    auto call_real = [&] { real(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, la, lb); };
    if (HookGuard::active()) return call_real();
    return run(call, call_real);
  }
  g_sbgemm_missing.store(true, std::memory_order_relaxed);
  sgemm_fn sg = resolve_cached<sgemm_fn>(g_sgemm, "sgemm_");
  if (sg == nullptr) return missing<1>("sbgemm_");
  emulation_note("sbgemm_");
  auto emulate = [&] {
    try {
      const std::vector<float> wa = widen_bf16(a, call.desc.operands[0]);
      const std::vector<float> wb = widen_bf16(b, call.desc.operands[1]);
      sg(ta, tb, m, n, k, alpha, wa.data(), lda, wb.data(), ldb, beta, c, ldc, la, lb);
    } catch (const std::bad_alloc&) {
      log(LogLevel::Error, "sbgemm_: out of memory widening the operands; the call did nothing");
    }
  };
  if (HookGuard::active()) return emulate();
  run(call, emulate);
}

FPSCOPE_EXPORT void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                                const float* a, int lda, const float* b, int ldb, float beta,
                                float* c, int ldc) {
  cblas_sgemm_fn real = resolve_cached<cblas_sgemm_fn>(g_cblas_sgemm, "cblas_sgemm");
  if (real == nullptr) return missing<2>("cblas_sgemm");
  auto call_real = [&] { real(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); };
  if (HookGuard::active() || (order != kRowMajor && order != kColMajor)) return call_real();
  const Call call = make_call(kOpCblasSgemm, order, fpscope::Format::FP32, cblas_trans_char(ta),
                              cblas_trans_char(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (emulate_format() != fpscope::Format::FP32) {
    return run(call, [&] {
      emulated(call, a, b, beta, c, call_real, [&](const float* ra, const float* rb) {
        real(order, ta, tb, m, n, k, alpha, ra, lda, rb, ldb, beta, c, ldc);
      });
    });
  }
  run(call, call_real);
}

FPSCOPE_EXPORT void cblas_sbgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                                 const uint16_t* a, int lda, const uint16_t* b, int ldb, float beta,
                                 float* c, int ldc) {
  cblas_sbgemm_fn real = g_cblas_sbgemm_missing.load(std::memory_order_relaxed)
                             ? nullptr
                             : resolve_cached<cblas_sbgemm_fn>(g_cblas_sbgemm, "cblas_sbgemm");
  const bool valid_order = order == kRowMajor || order == kColMajor;
  const Call call = make_call(kOpCblasSbgemm, valid_order ? order : kColMajor,
                              fpscope::Format::BF16, cblas_trans_char(ta), cblas_trans_char(tb), m,
                              n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (real != nullptr) {
    auto call_real = [&] { real(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); };
    if (HookGuard::active() || !valid_order) return call_real();
    return run(call, call_real);
  }
  g_cblas_sbgemm_missing.store(true, std::memory_order_relaxed);
  cblas_sgemm_fn sg = resolve_cached<cblas_sgemm_fn>(g_cblas_sgemm, "cblas_sgemm");
  if (sg == nullptr) return missing<3>("cblas_sbgemm");
  emulation_note("cblas_sbgemm");
  auto emulate = [&] {
    try {
      const std::vector<float> wa =
          valid_order ? widen_bf16(a, call.desc.operands[0]) : std::vector<float>();
      const std::vector<float> wb =
          valid_order ? widen_bf16(b, call.desc.operands[1]) : std::vector<float>();
      sg(order, ta, tb, m, n, k, alpha, wa.data(), lda, wb.data(), ldb, beta, c, ldc);
    } catch (const std::bad_alloc&) {
      log(LogLevel::Error,
          "cblas_sbgemm: out of memory widening the operands; the call did nothing");
    }
  };
  if (HookGuard::active() || !valid_order) return emulate();
  run(call, emulate);
}
