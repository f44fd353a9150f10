// The emulation's fast paths (issue 18 item 6) against the plain ones, bit for bit: the FP8
// quantize-dequantize that also finds the view's amax in the same pass (delayed scaling) against
// the per-element cast (emulate_fp8, itself checked against CUDA's casts in test_probe_unit and
// tests/kernels) and the separate amax pass; the copy into a caller's buffer against the
// allocating copy; a delayed plan made without the amaxes, then observed, against one made with
// them.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "config.h"
#include "emulate.h"
#include "fpscope/host_stats.h"

using namespace fpscope::probe;
using fpscope::Format;

namespace {

uint32_t bits(float x) {
  return std::bit_cast<uint32_t>(x);
}

// Random values over many binades, and the edges: +-0, FP32 subnormals, NaNs with payloads,
// +-Inf, FP32's max, each FP8 format's max and the values just past it and the midpoints around it.
std::vector<float> edge_and_random_data(size_t n, uint32_t seed) {
  std::vector<float> v = {0.0f,
                          -0.0f,
                          std::numeric_limits<float>::denorm_min(),
                          -std::numeric_limits<float>::denorm_min(),
                          std::bit_cast<float>(0x007fffffu),
                          std::bit_cast<float>(0x7fc00001u),  // quiet NaN, payload
                          std::bit_cast<float>(0xff800001u),  // signalling NaN, negative
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::max(),
                          -std::numeric_limits<float>::max(),
                          448.0f,
                          464.0f,
                          480.0f,
                          std::nextafter(464.0f, 0.0f),
                          57344.0f,
                          61440.0f,
                          -65536.0f,
                          std::ldexp(1.0f, -9),
                          std::ldexp(1.0f, -10),
                          std::ldexp(1.5f, -10),
                          std::ldexp(1.0f, -16),
                          std::ldexp(1.0f, -17),
                          std::ldexp(3.0f, -18)};
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> e(-30, 20);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_int_distribution<uint32_t> any;
  while (v.size() < n) {
    const int kind = static_cast<int>(v.size() % 8);
    v.push_back(kind == 0 ? std::bit_cast<float>(any(rng)) : std::ldexp(g(rng), e(rng)));
  }
  return v;
}

// The strided view of rows x cols in src (ld = rows + gap).
OperandDesc view(uint64_t rows, uint64_t cols, uint64_t gap) {
  OperandDesc o;
  o.rows = rows;
  o.cols = cols;
  o.ld = rows + gap;
  return o;
}

void expect_fused_equals_plain(Format f, float scale, const float* src, const OperandDesc& o) {
  const uint64_t n = emulate_stored(o);
  ASSERT_EQ(n, (o.cols - 1) * o.ld + o.rows);
  std::vector<float> fused(n), plain(n);
  float amax = -1.0f;
  emulate_fp8_into(f, scale, src, o, fused.data(), &amax);
  emulate_fp8_into(f, scale, src, o, plain.data(), nullptr);
  const auto copy = emulate_fp8_copy(f, scale, src, o);
  const float inv = 1.0f / scale;
  for (uint64_t j = 0; j < o.cols; ++j)
    for (uint64_t i = 0; i < o.rows; ++i) {
      const uint64_t at = i + j * o.ld;
      const uint32_t want = bits(emulate_fp8(f, scale, inv, src[at]));
      ASSERT_EQ(bits(fused[at]), want) << "x=" << src[at] << " scale=" << scale << " at " << at;
      ASSERT_EQ(bits(plain[at]), want) << "x=" << src[at] << " at " << at;
      ASSERT_EQ(bits(copy[at]), want) << "x=" << src[at] << " at " << at;
    }
  EXPECT_EQ(bits(amax), bits(emulate_amax(src, o)));
  EXPECT_EQ(bits(amax), bits(fpscope::compute_amax(src, Format::FP32, o.rows, o.cols, o.ld)));
}

// Both builds of the loops: the AVX2 one (where the CPU has it) and the default one.
TEST(EmulateFast, FusedFp8QuantizeAndAmaxEqualTheScalarCastOnEdgeAndRandomData) {
  const std::vector<float> data = edge_and_random_data(40000, 7);
  // Odd sizes (vector remainders), gaps between columns, one row, one column.
  const OperandDesc views[] = {view(199, 190, 11), view(1, 5000, 3), view(39999, 1, 0),
                               view(64, 625, 0)};
  for (const bool wide : {true, false}) {
    emulate_allow_wide_loops(wide);
    for (const Format f : {Format::E4M3, Format::E5M2})
      for (const float scale : {1.0f, 448.0f / 3.7f, 1.0f / 1024.0f, 3.0e10f, 0.7f})
        for (const OperandDesc& o : views) {
          ASSERT_LE(emulate_stored(o), data.size());
          expect_fused_equals_plain(f, scale, data.data(), o);
        }
    // The BF16 and FP16 rounding loops against the per-element cast.
    const OperandDesc o = views[0];
    for (const Format f : {Format::BF16, Format::FP16}) {
      const auto r = emulate_rounded_copy(f, data.data(), o);
      for (uint64_t j = 0; j < o.cols; ++j)
        for (uint64_t i = 0; i < o.rows; ++i)
          ASSERT_EQ(bits(r[i + j * o.ld]), bits(emulate_round(f, data[i + j * o.ld])))
              << "wide " << wide << " x=" << data[i + j * o.ld];
    }
  }
  emulate_allow_wide_loops(true);
}

// Every 5th FP32 pattern (both signs) from below E4M3's and E5M2's subnormals to past their
// maxima (scale 1: the cast sees x itself): each outcome, tie and binade edge, many times over.
TEST(EmulateFast, FusedFp8QuantizeEqualsTheScalarCastOverAPatternRange) {
  constexpr uint32_t kLo = 0x33000000u;  // 2^-25
  constexpr uint32_t kHi = 0x47800000u;  // 65536, past E5M2's max 57344
  constexpr uint32_t kStep = 5;
  std::vector<float> x;
  x.reserve(2 * ((kHi - kLo) / kStep + 1));
  uint32_t last = 0;
  for (uint32_t u = kLo; u < kHi; u += kStep) {
    last = u;
    x.push_back(std::bit_cast<float>(u));
    x.push_back(std::bit_cast<float>(u | 0x80000000u));
  }
  const OperandDesc o = view(x.size(), 1, 0);
  std::vector<float> y(x.size());
  for (const int run : {0, 1, 2, 3}) {
    emulate_allow_wide_loops(run < 2);  // the AVX2 build, then the default one
    const Format f = run % 2 == 0 ? Format::E4M3 : Format::E5M2;
    float amax = -1.0f;
    emulate_fp8_into(f, 1.0f, x.data(), o, y.data(), &amax);
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(bits(y[i]), bits(emulate_fp8(f, 1.0f, 1.0f, x[i])))
          << "run " << run << std::hex << " x " << bits(x[i]);
    EXPECT_EQ(bits(amax), bits(emulate_amax(x.data(), o)));
    EXPECT_EQ(bits(amax), last);  // the largest |x| of the range
  }
  emulate_allow_wide_loops(true);
}

// The copy into a caller's buffer (what the hook runs) equals the allocating copy for every plan
// kind, and its amax, when asked for, is emulate_amax's.
TEST(EmulateFast, CopyIntoABufferEqualsTheAllocatingCopy) {
  const std::vector<float> data = edge_and_random_data(5000, 11);
  const OperandDesc o = view(61, 80, 1);
  std::vector<EmulatePlan> plans(5);
  plans[0].in[0] = Format::BF16;
  plans[1].in[0] = Format::FP16;
  plans[2].in[0] = Format::E4M3;
  plans[2].scale[0] = 448.0f / 5.0f;
  plans[3].in[0] = Format::E5M2;
  plans[3].scale[0] = 3.0f;
  plans[4].block = 0;  // kBlockFormats' first (MXFP8 E4M3)
  for (const EmulatePlan& p : plans) {
    const auto want = emulate_operand_copy(p, 0, data.data(), o);
    std::vector<float> got(emulate_stored(o), 12345.0f);
    float amax = -1.0f;
    emulate_operand_into(p, 0, data.data(), o, got.data(), &amax);
    for (uint64_t j = 0; j < o.cols; ++j)
      for (uint64_t i = 0; i < o.rows; ++i)
        ASSERT_EQ(bits(got[i + j * o.ld]), bits(want[i + j * o.ld]))
            << "plan in " << static_cast<int>(p.in[0]) << " block " << p.block;
    EXPECT_EQ(bits(amax), bits(emulate_amax(data.data(), o)));
  }
}

GemmDesc call_of(const void* a, const void* b) {
  GemmDesc d;
  d.op = "sgemm";
  d.num_operands = 3;
  d.operands[0].role = fpscope::trace::Role::A;
  d.operands[0].data = a;
  d.operands[1].role = fpscope::trace::Role::B;
  d.operands[1].data = b;
  d.operands[2].role = fpscope::trace::Role::D;
  return d;
}

// Delayed scaling planned without the amaxes and observed after the copies gives the scales of
// planning with them, call after call (E4M3, and hybrid's E5M2 output gradients), and plans
// with amaxes observe nothing later.
TEST(EmulateFast, DelayedPlanObservedAfterEqualsPlanWithAmaxes) {
  for (const EmulateMode mode : {EmulateMode::E4M3, EmulateMode::Hybrid}) {
    EmulateSettings s;
    s.mode = mode;
    s.policy = fpscope::ScalingPolicy::Delayed;
    s.history = 4;
    Emulator with(s), after(s);
    ASSERT_TRUE(after.amax_after());
    float w[4], x[4], g[4];
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> e(-12.0f, 12.0f);
    int changed = 0;
    for (uint64_t step = 0; step < 12; ++step) {
      struct Call {
        const void* a;
        const void* b;
        const char* scope;
      };
      const Call calls[] = {{w, x, "fc"}, {g, x, "fc.bwd"}, {w, g, "fc.bwd"}, {w, x, ""}};
      for (const Call& c : calls) {
        const float am[2] = {std::exp2(e(rng)), std::exp2(e(rng))};
        const EmulatePlan p = with.plan(call_of(c.a, c.b), c.scope, step, am);
        EXPECT_EQ(p.observe[0], nullptr);
        EXPECT_EQ(p.observe[1], nullptr);
        const EmulatePlan q = after.plan(call_of(c.a, c.b), c.scope, step, nullptr);
        ASSERT_NE(q.observe[0], nullptr);
        ASSERT_NE(q.observe[1], nullptr);
        after.observe(q, am);
        for (int i = 0; i < 2; ++i) {
          EXPECT_EQ(q.in[i], p.in[i]) << step << " " << c.scope;
          EXPECT_EQ(bits(q.scale[i]), bits(p.scale[i])) << step << " " << c.scope;
          changed += q.scale[i] != 1.0f;
        }
      }
    }
    EXPECT_GT(changed, 40);  // the histories were at work, not all scales 1
  }
  EmulateSettings cur;
  cur.mode = EmulateMode::E4M3;
  cur.policy = fpscope::ScalingPolicy::Current;
  EXPECT_FALSE(Emulator(cur).amax_after());
  EmulateSettings bf;
  bf.mode = EmulateMode::BF16;
  EXPECT_FALSE(Emulator(bf).amax_after());
}

}  // namespace

namespace {
// The copies' buffers: one per operand and thread, reused while large enough, grown when not,
// released by trim only when over 64 MiB.
TEST(EmulateFast, ScratchBuffersAreReusedPerOperandAndTrimmedWhenLarge) {
  float* a = emulate_scratch(0, 1000);
  float* b = emulate_scratch(1, 1000);
  EXPECT_NE(a, b);
  a[999] = 1.0f;  // writable to its size
  EXPECT_EQ(emulate_scratch(0, 10), a);
  EXPECT_EQ(emulate_scratch(0, 0), a);
  emulate_scratch_trim();
  EXPECT_EQ(emulate_scratch(0, 1000), a);  // small: kept
  float* big = emulate_scratch(0, (uint64_t{16} << 20) + 1);
  big[uint64_t{16} << 20] = 2.0f;
  EXPECT_EQ(emulate_scratch(0, 1000), big);  // the larger buffer serves smaller copies
  emulate_scratch_trim();                    // over 64 MiB: released
  float* again = emulate_scratch(0, 1000);
  again[999] = 3.0f;
  EXPECT_EQ(emulate_scratch(1, 1000), b);  // operand 1's untouched
}
}  // namespace
