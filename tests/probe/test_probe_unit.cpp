// Unit tests of the probe's parts that need no process injection: step-period detection,
// configuration parsing (output paths: test_run_env.cpp; step labels: test_step_labeler.cpp).
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "config.h"
#include "emulate.h"
#include "fpscope/host_stats.h"
#include "period.h"
#include "weight_watch.h"

using namespace fpscope::probe;

namespace {

PeriodResult feed_all(PeriodDetector& d, const std::vector<uint64_t>& s, bool* committed) {
  *committed = false;
  for (uint64_t x : s)
    if (d.feed(x)) {
      *committed = true;
      return PeriodResult{0, d.prefix_period()};
    }
  return d.decide(2);
}

std::vector<uint64_t> repeat(const std::vector<uint64_t>& unit, int times) {
  std::vector<uint64_t> s;
  for (int i = 0; i < times; ++i) s.insert(s.end(), unit.begin(), unit.end());
  return s;
}

TEST(PeriodDetector, CommitsAfterThreeRepetitions) {
  // An MLP step: 4 forward GEMMs (two of the same shape) + 7 backward ones.
  const std::vector<uint64_t> step = {1, 2, 2, 3, 4, 5, 6, 5, 6, 7, 8};
  PeriodDetector d(3);
  for (size_t i = 0; i < 3 * step.size() - 1; ++i) EXPECT_FALSE(d.feed(step[i % step.size()]));
  EXPECT_TRUE(d.feed(step.back()));
  EXPECT_EQ(d.prefix_period(), step.size());
}

TEST(PeriodDetector, InnerRepetitionIsNotTheStep) {
  // The 2, 2 inside the step must not be taken for a period of 1.
  const std::vector<uint64_t> step = {1, 2, 2, 2, 2, 3};
  bool committed = false;
  PeriodDetector d(3);
  const PeriodResult r = feed_all(d, repeat(step, 3), &committed);
  EXPECT_TRUE(committed);
  EXPECT_EQ(r.offset, 0u);
  EXPECT_EQ(r.period, step.size());
}

TEST(PeriodDetector, WarmUpCallsBeforeTheFirstStep) {
  std::vector<uint64_t> s = {9, 8};  // e.g. an evaluation pass before training
  const auto body = repeat({1, 2, 3}, 4);
  s.insert(s.end(), body.begin(), body.end());
  PeriodDetector d(3);
  bool committed = false;
  const PeriodResult r = feed_all(d, s, &committed);
  EXPECT_FALSE(committed);  // the prefix never repeats ...
  EXPECT_EQ(r.offset, 2u);  // ... the suffix does
  EXPECT_EQ(r.period, 3u);
}

TEST(PeriodDetector, NoPeriod) {
  PeriodDetector d(3);
  bool committed = false;
  const PeriodResult r = feed_all(d, {1, 2, 3, 4, 5, 6, 7}, &committed);
  EXPECT_FALSE(committed);
  EXPECT_EQ(r.period, 0u);
}

TEST(PeriodDetector, TwoRepetitionsAreEnoughAtTheEnd) {
  PeriodDetector d(3);
  bool committed = false;
  const PeriodResult r = feed_all(d, repeat({1, 2, 3, 4}, 2), &committed);
  EXPECT_FALSE(committed);
  EXPECT_EQ(r.offset, 0u);
  EXPECT_EQ(r.period, 4u);
}

TEST(StepTracker, OrdinalsPartialStepsAndExtras) {
  StepTracker t({1, 2, 3}, 0);
  auto l = t.next(1);
  EXPECT_TRUE(l.new_step);
  EXPECT_EQ(l.ordinal, 0);
  EXPECT_EQ(t.next(2).ordinal, 1);
  EXPECT_EQ(t.next(3).ordinal, 2);
  l = t.next(7);  // an extra call (e.g. evaluation with another batch size)
  EXPECT_FALSE(l.new_step);
  EXPECT_EQ(l.ordinal, -1);
  l = t.next(1);
  EXPECT_TRUE(l.new_step);
  EXPECT_FALSE(l.partial);
  EXPECT_EQ(t.next(2).ordinal, 1);
  l = t.next(1);  // the step ended early (last partial step, or a forward-only pass)
  EXPECT_TRUE(l.new_step);
  EXPECT_TRUE(l.partial);
  EXPECT_EQ(l.ordinal, 0);
}

TEST(StepTracker, LosesTheperiodAfterTooManyExtras) {
  StepTracker t({1, 2}, 0);
  bool lost = false;
  for (int i = 0; i < 100 && !lost; ++i) lost = t.next(5).lost;
  EXPECT_TRUE(lost);
}

class Env : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* n :
         {"FPSCOPE_EVERY", "FPSCOPE_FORMATS", "FPSCOPE_OPS", "FPSCOPE_LOG", "FPSCOPE_DISABLE",
          "FPSCOPE_ENABLE", "FPSCOPE_STEPS", "RANK", "FPSCOPE_FLUSH_MS", "FPSCOPE_PERIOD_WINDOW",
          "FPSCOPE_FLUSH_BYTES", "FPSCOPE_OUTPUT", "FPSCOPE_WATCH_BUDGET", "FPSCOPE_EMULATE",
          "FPSCOPE_EMULATE_SKIP", "FPSCOPE_FP8_SCALING"})
      unsetenv(n);
  }
};

TEST_F(Env, Defaults) {
  const Config c = load_config();
  EXPECT_TRUE(c.enabled);
  EXPECT_EQ(c.every, 10u);
  EXPECT_EQ(c.output, "fpscope-%p.fpst");
  for (bool f : c.formats) EXPECT_TRUE(f);
  EXPECT_TRUE(c.op_enabled("sgemm"));
  EXPECT_EQ(c.steps, StepMode::Auto);
  EXPECT_EQ(c.flush_ms, 100u);
}

TEST_F(Env, GoodValues) {
  setenv("FPSCOPE_EVERY", "3", 1);
  setenv("FPSCOPE_FORMATS", "fp16, e4m3", 1);
  setenv("FPSCOPE_OPS", "D,cblas_sgemm", 1);
  setenv("FPSCOPE_STEPS", "api", 1);
  setenv("FPSCOPE_ENABLE", "0", 1);
  const Config c = load_config();
  EXPECT_FALSE(c.enabled);
  EXPECT_EQ(c.every, 3u);
  EXPECT_FALSE(c.formats[fpscope::target_index(fpscope::Format::BF16)]);
  EXPECT_TRUE(c.formats[fpscope::target_index(fpscope::Format::FP16)]);
  EXPECT_TRUE(c.formats[fpscope::target_index(fpscope::Format::E4M3)]);
  EXPECT_FALSE(c.formats[fpscope::target_index(fpscope::Format::E5M2)]);
  EXPECT_TRUE(c.role_enabled(fpscope::trace::Role::D));
  EXPECT_FALSE(c.role_enabled(fpscope::trace::Role::A));
  EXPECT_TRUE(c.op_enabled("cblas_sgemm"));
  EXPECT_FALSE(c.op_enabled("sgemm"));
  EXPECT_EQ(c.steps, StepMode::Api);
}

// Issue 19: FPSCOPE_FORMATS names the block-scaled formats too; they are off unless named
// (their cost, Config::block_formats), `blocks` and `all` turn all six on.
TEST_F(Env, FormatsSelectBlockFormats) {
  EXPECT_EQ(load_config().block_formats, 0u);  // unset: the per-tensor four only
  setenv("FPSCOPE_FORMATS", "fp16,mxfp4, nvfp4", 1);
  Config c = load_config();
  EXPECT_EQ(c.block_formats, (1u << 4) | (1u << 5));
  EXPECT_TRUE(c.formats[fpscope::target_index(fpscope::Format::FP16)]);
  EXPECT_FALSE(c.formats[fpscope::target_index(fpscope::Format::BF16)]);
  setenv("FPSCOPE_FORMATS", "bf16,fp16,e4m3,e5m2", 1);
  EXPECT_EQ(load_config().block_formats, 0u);
  setenv("FPSCOPE_FORMATS", "blocks", 1);
  c = load_config();
  EXPECT_EQ(c.block_formats, fpscope::kAllBlockFormats);
  for (bool f : c.formats) EXPECT_FALSE(f);
  setenv("FPSCOPE_FORMATS", "mxfp8_e5m2,mxfp6_e2m3", 1);
  EXPECT_EQ(load_config().block_formats, (1u << 1) | (1u << 3));
  setenv("FPSCOPE_FORMATS", "all", 1);
  EXPECT_EQ(load_config().block_formats, fpscope::kAllBlockFormats);
  const auto j = nlohmann::json::parse(config_json(load_config()));
  EXPECT_EQ(j["block_formats"].size(), 6u);
  EXPECT_EQ(j["block_formats"][5], "nvfp4");
}

TEST_F(Env, BadValuesFallBackToDefaults) {
  setenv("FPSCOPE_EVERY", "-1", 1);
  setenv("FPSCOPE_FORMATS", "fp7", 1);
  setenv("FPSCOPE_OPS", ",", 1);
  setenv("FPSCOPE_LOG", "loud", 1);
  setenv("FPSCOPE_DISABLE", "maybe", 1);
  setenv("FPSCOPE_FLUSH_MS", "0", 1);
  setenv("FPSCOPE_PERIOD_WINDOW", "3", 1);
  testing::internal::CaptureStderr();
  const Config c = load_config();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(c.enabled);
  EXPECT_EQ(c.every, 10u);
  for (bool f : c.formats) EXPECT_TRUE(f);
  EXPECT_TRUE(c.op_enabled("sgemm"));
  EXPECT_EQ(c.log, LogLevel::Warn);
  EXPECT_EQ(c.flush_ms, 100u);
  EXPECT_EQ(c.period_window, 4096u);
  for (const char* n :
       {"FPSCOPE_EVERY='-1'", "FPSCOPE_FORMATS='fp7'", "FPSCOPE_OPS=','", "FPSCOPE_LOG='loud'",
        "FPSCOPE_DISABLE='maybe'", "FPSCOPE_FLUSH_MS='0'", "FPSCOPE_PERIOD_WINDOW='3'"}) {
    const std::string line = std::string("[fpscope] warning: ") + n;
    const size_t at = err.find(line);
    EXPECT_NE(at, std::string::npos) << n << "\n" << err;
    EXPECT_EQ(err.find(line, at + 1), std::string::npos) << "warned twice: " << n;
  }
}

// Issue 18: emulation is opt-in; SPECs bf16, fp16 and the FP8 ones with a scaling policy (current
// by default, delayed with FPSCOPE_FP8_SCALING's parameters), stamped canonically in the config.
TEST_F(Env, EmulateIsOffUnlessAskedAndParsesItsSpec) {
  EXPECT_EQ(load_config().emulate, fpscope::Format::FP32);
  EXPECT_EQ(nlohmann::json::parse(config_json(load_config()))["emulate"], "off");
  EXPECT_TRUE(nlohmann::json::parse(config_json(load_config()))["emulate_skip"].empty());
  setenv("FPSCOPE_EMULATE", "BF16", 1);
  EXPECT_EQ(load_config().emulate, fpscope::Format::BF16);
  setenv("FPSCOPE_EMULATE", "fp16", 1);
  EXPECT_EQ(load_config().emulate, fpscope::Format::FP16);
  EXPECT_EQ(nlohmann::json::parse(config_json(load_config()))["emulate"], "fp16");
  setenv("FPSCOPE_EMULATE", "e4m3", 1);
  Config c = load_config();
  EXPECT_EQ(c.emulate, fpscope::Format::E4M3);
  EXPECT_EQ(c.emulation.mode, EmulateMode::E4M3);
  EXPECT_EQ(c.emulation.policy, fpscope::ScalingPolicy::Current);
  EXPECT_EQ(nlohmann::json::parse(config_json(c))["emulate"], "e4m3:current");
  setenv("FPSCOPE_EMULATE", "e5m2:current:2", 1);
  c = load_config();
  EXPECT_EQ(c.emulate, fpscope::Format::E5M2);
  EXPECT_EQ(c.emulation.margin, 2);
  EXPECT_EQ(emulate_spec_name(c.emulation), "e5m2:current:2");
  setenv("FPSCOPE_EMULATE", "Hybrid:delayed:16:1:most_recent", 1);
  setenv("FPSCOPE_FP8_SCALING", "delayed:99", 1);  // the statistics' policy: not the emulation's
  c = load_config();
  EXPECT_EQ(c.emulate, fpscope::Format::E4M3);
  EXPECT_EQ(c.emulation.mode, EmulateMode::Hybrid);
  EXPECT_EQ(c.emulation.policy, fpscope::ScalingPolicy::Delayed);
  EXPECT_EQ(c.emulation.history, 16);
  EXPECT_EQ(c.emulation.margin, 1);
  EXPECT_EQ(c.emulation.algo, fpscope::AmaxAlgo::MostRecent);
  EXPECT_EQ(c.fp8_history, 99);
  EXPECT_EQ(loaded_emulation().history, 16);  // what the hooks read
  EXPECT_EQ(nlohmann::json::parse(config_json(c))["emulate"], "hybrid:delayed:16:1:most_recent");
  setenv("FPSCOPE_EMULATE", "e4m3:delayed", 1);
  EXPECT_EQ(emulate_spec_name(load_config().emulation), "e4m3:delayed:1024:0:max");
  for (const char* v : {"bf17", "bf16:current", "e4m3:none", "e4m3:delayed:0", "e5m2:current:65",
                        "hybrid:delayed:8:0:min", "e4m3:"}) {
    setenv("FPSCOPE_EMULATE", v, 1);
    testing::internal::CaptureStderr();
    EXPECT_EQ(load_config().emulate, fpscope::Format::FP32) << v;
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find(std::string("[fpscope] warning: FPSCOPE_EMULATE='") + v + "'"),
              std::string::npos)
        << err;
  }
  setenv("FPSCOPE_EMULATE", "bf16", 1);
  setenv("FPSCOPE_EMULATE_SKIP", " 0, layers.*.fc2 ,,", 1);
  c = load_config();
  EXPECT_EQ(c.emulation.skip, (std::vector<std::string>{"0", "layers.*.fc2"}));
  EXPECT_EQ(nlohmann::json::parse(config_json(c))["emulate_skip"],
            nlohmann::json::parse(R"(["0", "layers.*.fc2"])"));
}

// Issue 17: UINT64_MAX parsed without overflow, so it was accepted silently.
TEST_F(Env, FlushBytesOutOfRangeWarns) {
  for (const char* v : {"18446744073709551615", "1073741825", "18446744073709551616", "4095"}) {
    setenv("FPSCOPE_FLUSH_BYTES", v, 1);
    testing::internal::CaptureStderr();
    const Config c = load_config();
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(c.flush_bytes, 1u << 20) << v;
    EXPECT_NE(err.find(std::string("[fpscope] warning: FPSCOPE_FLUSH_BYTES='") + v + "'"),
              std::string::npos)
        << err;
  }
  setenv("FPSCOPE_FLUSH_BYTES", "1073741824", 1);
  EXPECT_EQ(load_config().flush_bytes, uint64_t{1} << 30);
}

// Issue 17: nlohmann's default dump throws on a byte that is not UTF-8 (type_error.316), which
// aborted the traced program. The byte becomes U+FFFD, as in the rest of the metadata.
TEST_F(Env, ConfigJsonOfInvalidUtf8IsReplacedNotThrown) {
  setenv("FPSCOPE_OUTPUT", "/tmp/run\xff.fpst", 1);
  setenv("FPSCOPE_OPS", "D,sgemm\xfe", 1);
  testing::internal::CaptureStderr();
  const Config c = load_config();
  (void)testing::internal::GetCapturedStderr();
  std::string j;
  ASSERT_NO_THROW(j = config_json(c));
  EXPECT_NE(j.find("\"output\":\"/tmp/run\xef\xbf\xbd.fpst\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"ops\":[\"sgemm\xef\xbf\xbd\"]"), std::string::npos) << j;
}

TEST_F(Env, WatchBudgetSizesAndBadValues) {
  EXPECT_EQ(load_config().watch_budget, uint64_t{256} << 20);  // the default
  for (const auto& [v, want] :
       std::vector<std::pair<const char*, uint64_t>>{{"0", 0},
                                                     {"4096", 4096},
                                                     {"16k", 16384},
                                                     {"256M", uint64_t{256} << 20},
                                                     {"2G", uint64_t{2} << 30},
                                                     {"1T", uint64_t{1} << 40}}) {
    setenv("FPSCOPE_WATCH_BUDGET", v, 1);
    EXPECT_EQ(load_config().watch_budget, want) << v;
  }
  for (const char* v : {"-1", "12x", "2T", "16kk", "M", "99999999999999999999"}) {
    setenv("FPSCOPE_WATCH_BUDGET", v, 1);
    testing::internal::CaptureStderr();
    const Config c = load_config();
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(c.watch_budget, uint64_t{256} << 20) << v;
    EXPECT_NE(err.find(std::string("[fpscope] warning: FPSCOPE_WATCH_BUDGET='") + v + "'"),
              std::string::npos)
        << v << ": " << err;
  }
}

}  // namespace

namespace {
// Issue 18: the vectorized rounding of emulated GEMM operands equals the format table's cast for
// every high half and the low halves around each rounding boundary (ties, just below and above),
// NaN patterns kept as they are.
TEST(Emulate, FastRoundingEqualsTheFormatTableCast) {
  for (fpscope::Format f : {fpscope::Format::BF16, fpscope::Format::FP16}) {
    for (uint32_t hi = 0; hi < 0x10000u; ++hi) {
      for (uint32_t lo : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu, 0x1000u, 0x2000u}) {
        const uint32_t u = hi << 16 | lo;
        float x;
        std::memcpy(&x, &u, 4);
        const float a = fpscope::probe::emulate_round(f, x);
        const float b = fpscope::probe::emulate_round_fast(f, x);
        uint32_t ua, ub;
        std::memcpy(&ua, &a, 4);
        std::memcpy(&ub, &b, 4);
        ASSERT_EQ(ua, ub) << std::hex << "pattern 0x" << u << " format " << static_cast<int>(f);
      }
    }
  }
  // By hand: 1 + 2^-8 is a BF16 tie and rounds to even (1); 1 + 3*2^-9 rounds up to 1 + 2^-7.
  EXPECT_EQ(fpscope::probe::emulate_round_fast(fpscope::Format::BF16, 1.0f + 0x1p-8f), 1.0f);
  EXPECT_EQ(fpscope::probe::emulate_round_fast(fpscope::Format::BF16, 1.0f + 0x3p-9f),
            1.0f + 0x1p-7f);
  EXPECT_EQ(fpscope::probe::emulate_round_fast(fpscope::Format::FP16, 70000.0f),
            std::numeric_limits<float>::infinity());
}

// FP8 quantize-dequantize against the formats' definitions (not the format table): every finite
// code is kept, the midpoint of two neighbours goes to the even code, the values beyond the
// largest finite one saturate (Inf too), NaN stays NaN; the scale multiplies before the cast.
float fp8_code_value(int code, int man_bits, int bias) {
  const int e = code >> man_bits, m = code & ((1 << man_bits) - 1);
  const float frac = static_cast<float>(m) / static_cast<float>(1 << man_bits);
  return e == 0 ? std::ldexp(frac, 1 - bias) : std::ldexp(1.0f + frac, e - bias);
}

TEST(Emulate, Fp8CastIsSaturatingRoundToNearestEven) {
  using fpscope::Format;
  struct F {
    Format f;
    int man_bits, bias, finite_codes;
    float max;
  };
  for (const F& t : {F{Format::E4M3, 3, 7, 0x7f, 448.0f}, F{Format::E5M2, 2, 15, 0x7c, 57344.0f}}) {
    for (int c = 0; c < t.finite_codes; ++c) {
      const float v = fp8_code_value(c, t.man_bits, t.bias);
      EXPECT_EQ(emulate_fp8(t.f, 1.0f, 1.0f, v), v) << c;
      EXPECT_EQ(emulate_fp8(t.f, 1.0f, 1.0f, -v), -v) << c;
      if (c + 1 < t.finite_codes) {
        const float next = fp8_code_value(c + 1, t.man_bits, t.bias);
        const float mid = (v + next) / 2;  // exact: one more bit
        EXPECT_EQ(emulate_fp8(t.f, 1.0f, 1.0f, mid), c % 2 == 0 ? v : next) << c;
        EXPECT_EQ(emulate_fp8(t.f, 1.0f, 1.0f, std::nextafter(mid, 0.0f)), v) << c;
        EXPECT_EQ(emulate_fp8(t.f, 1.0f, 1.0f, std::nextafter(mid, next)), next) << c;
      }
    }
    EXPECT_EQ(fp8_code_value(t.finite_codes - 1, t.man_bits, t.bias), t.max);
    const float inf = std::numeric_limits<float>::infinity();
    for (const float big : {t.max * 1.5f, t.max * 1000.0f, inf}) {
      EXPECT_EQ(emulate_fp8(t.f, 1.0f, 1.0f, big), t.max);
      EXPECT_EQ(emulate_fp8(t.f, 1.0f, 1.0f, -big), -t.max);
    }
    EXPECT_TRUE(std::isnan(emulate_fp8(t.f, 1.0f, 1.0f, std::nanf(""))));
    // Scaled: 3 * 100 = 300 -> E4M3 288 (quantum 32 in [256, 448]: 288 and 320, 300 nearer 288),
    // back by fl(1/100).
    if (t.f == Format::E4M3) {
      EXPECT_EQ(emulate_fp8(t.f, 100.0f, 1.0f / 100.0f, 3.0f),
                288.0f * (1.0f / 100.0f));  // q * fl(1 / s), not q / s
    }
  }
  // The copy: used elements of a strided view only.
  OperandDesc o;
  o.rows = 2;
  o.cols = 2;
  o.ld = 3;
  const float src[5] = {1.0f, 1000.0f, -7.0f, 0.3f, -0.0f};
  const auto q = emulate_fp8_copy(Format::E4M3, 1.0f, src, o);
  EXPECT_EQ(q[0], 1.0f);
  EXPECT_EQ(q[1], 448.0f);
  EXPECT_EQ(q[3], 0.3125f);  // 0.3 between 0.28125 and 0.3125 (quantum 2^-5): nearer 0.3125
  EXPECT_EQ(q[4], 0.0f);
  // The amax of the used elements (src[2] is a gap), Inf and NaN left out, as compute_amax.
  EXPECT_EQ(emulate_amax(src, o), 1000.0f);
  const float odd[5] = {-3.0f, std::numeric_limits<float>::infinity(), 99.0f, std::nanf(""), -5.0f};
  EXPECT_EQ(emulate_amax(odd, o), 5.0f);
  EXPECT_EQ(emulate_amax(odd, o), fpscope::compute_amax(odd, Format::FP32, 2, 2, 3));
}

GemmDesc two_operand_call(const void* a, const void* b, uint64_t m, uint64_t k, uint64_t n) {
  GemmDesc d;
  d.op = "sgemm";
  d.num_operands = 3;
  d.operands[0].role = fpscope::trace::Role::A;
  d.operands[0].rows = m;
  d.operands[0].cols = k;
  d.operands[0].ld = m;
  d.operands[0].data = a;
  d.operands[1].role = fpscope::trace::Role::B;
  d.operands[1].rows = k;
  d.operands[1].cols = n;
  d.operands[1].ld = k;
  d.operands[1].data = b;
  d.operands[2].role = fpscope::trace::Role::D;
  d.operands[2].rows = m;
  d.operands[2].cols = n;
  d.operands[2].ld = m;
  return d;
}

TEST(Emulate, SkipMatchesModulePathsAndTheirBackward) {
  EmulateSettings s;
  s.mode = EmulateMode::BF16;
  s.skip = {"0", "layers.*.fc2", "*.bwd_only"};
  const Emulator e(s);
  EXPECT_TRUE(e.skipped("0"));
  EXPECT_TRUE(e.skipped("0.bwd"));
  EXPECT_TRUE(e.skipped("layers.3.fc2"));
  EXPECT_TRUE(e.skipped("layers.3.fc2.bwd"));
  EXPECT_FALSE(e.skipped("01"));
  EXPECT_FALSE(e.skipped("layers.3.fc1"));
  EXPECT_FALSE(e.skipped(""));
  EmulateSettings b;
  b.mode = EmulateMode::BF16;
  b.skip = {"*.bwd"};  // the full scope matches too: every backward GEMM in FP32
  const Emulator eb(b);
  EXPECT_TRUE(eb.skipped("fc.bwd"));
  EXPECT_FALSE(eb.skipped("fc"));
}

// Hybrid: forward E4M3; in a backward call the operand no forward call of the step read (the
// output gradient) is E5M2. Current scales from the amax; delayed from the earlier steps' only.
TEST(Emulate, HybridFormatsAndScales) {
  using fpscope::Format;
  EmulateSettings s;
  s.mode = EmulateMode::Hybrid;
  Emulator e(s);
  float w[6] = {1, 2, 3, 4, 5, 6}, x[6] = {6, 5, 4, 3, 2, 1}, g[6] = {};
  const float am[2] = {2.0f, 7.0f};
  const EmulatePlan f = e.plan(two_operand_call(w, x, 2, 3, 2), "fc", 0, am);
  EXPECT_FALSE(f.skip);
  EXPECT_EQ(f.in[0], Format::E4M3);
  EXPECT_EQ(f.in[1], Format::E4M3);
  EXPECT_EQ(f.out, Format::BF16);
  EXPECT_EQ(f.scale[0], 448.0f / 2.0f);
  EXPECT_EQ(f.scale[1], 448.0f / 7.0f);
  const EmulatePlan wg = e.plan(two_operand_call(g, x, 2, 2, 3), "fc.bwd", 0, am);
  EXPECT_EQ(wg.in[0], Format::E5M2);
  EXPECT_EQ(wg.in[1], Format::E4M3);
  EXPECT_EQ(wg.scale[0], 57344.0f / 2.0f);
  const EmulatePlan dg = e.plan(two_operand_call(w, g, 2, 3, 2), "fc.bwd", 0, am);
  EXPECT_EQ(dg.in[0], Format::E4M3);
  EXPECT_EQ(dg.in[1], Format::E5M2);
  // A buffer the forward read, freed and reused for a gradient (new contents at the address) is
  // the gradient: E5M2, whatever the allocator's reuse (by address alone it was E4M3).
  x[0] = -7.0f;
  const EmulatePlan reused = e.plan(two_operand_call(g, x, 2, 2, 3), "fc.bwd", 0, am);
  EXPECT_EQ(reused.in[1], Format::E5M2);
  // So is a smaller buffer at a forward-read address (never read past its end).
  const EmulatePlan smaller = e.plan(two_operand_call(g, w, 2, 2, 2), "fc.bwd", 0, am);
  EXPECT_EQ(smaller.in[1], Format::E5M2);

  EmulateSettings d;
  d.mode = EmulateMode::E4M3;
  d.policy = fpscope::ScalingPolicy::Delayed;
  Emulator ed(d);
  const float a1[2] = {4.0f, 8.0f}, a2[2] = {2.0f, 1.0f}, a3[2] = {1.0f, 1.0f};
  EXPECT_EQ(ed.plan(two_operand_call(w, x, 2, 3, 2), "", 0, a1).scale[0], 1.0f);  // no history
  EXPECT_EQ(ed.plan(two_operand_call(w, x, 2, 3, 2), "", 0, a1).scale[0], 1.0f);  // gemm#1
  const EmulatePlan p1 = ed.plan(two_operand_call(w, x, 2, 3, 2), "", 1, a2);
  EXPECT_EQ(p1.scale[0], 448.0f / 4.0f);
  EXPECT_EQ(p1.scale[1], 448.0f / 8.0f);
  EXPECT_EQ(p1.in[1], Format::E4M3);
  const EmulatePlan p2 = ed.plan(two_operand_call(w, x, 2, 3, 2), "", 2, a3);
  EXPECT_EQ(p2.scale[0], 448.0f / 4.0f);  // the window's max
}
}  // namespace

// ---- the watch budget (weight_watch.h, issue 21) ----------------------------------------------

TEST(WatchSample, PositionsAreOnePerStratumIncreasingAndFixed) {
  for (const uint64_t count : {uint64_t{1}, uint64_t{7}, uint64_t{1000}, uint64_t{1} << 40}) {
    for (const uint64_t watched : {uint64_t{1}, uint64_t{3}, uint64_t{7}, uint64_t{1000}}) {
      if (watched > count) continue;
      uint64_t prev = 0;
      for (uint64_t j = 0; j < watched; ++j) {
        const uint64_t p = fpscope::probe::sample_position(j, watched, count);
        const long double lo = static_cast<long double>(j) * count / watched;
        const long double hi = static_cast<long double>(j + 1) * count / watched;
        EXPECT_GE(static_cast<long double>(p) + 1, lo);  // floor(j*count/watched) <= p
        EXPECT_LT(static_cast<long double>(p), hi);
        if (j > 0) {
          EXPECT_GT(p, prev);
        }
        prev = p;
        EXPECT_EQ(p, fpscope::probe::sample_position(j, watched, count));
      }
    }
  }
  // watched == count: every position, in order
  for (uint64_t j = 0; j < 50; ++j) EXPECT_EQ(fpscope::probe::sample_position(j, 50, 50), j);
}

TEST(WatchSample, SizeIsTheLeastOfRequestMaximumAndBudget) {
  using fpscope::probe::watch_sample_size;
  EXPECT_EQ(watch_sample_size(1000, 0, 1 << 20, 1 << 26), 1000u);     // whole
  EXPECT_EQ(watch_sample_size(1000, 100, 1 << 20, 1 << 26), 100u);    // requested
  EXPECT_EQ(watch_sample_size(1000, 5000, 1 << 20, 1 << 26), 1000u);  // at most count
  EXPECT_EQ(watch_sample_size(1000, 0, 8 * 300 + 7, 1 << 26), 300u);  // 8 bytes a position
  EXPECT_EQ(watch_sample_size(1000, 0, 1 << 20, 250), 250u);          // max elements
  EXPECT_EQ(watch_sample_size(1000, 0, 7, 1 << 26), 0u);              // no room: left out
}

TEST(WatchSample, SampledWatchMeasuresExactlyItsPositions) {
  // A tensor whose update makes every even position stagnant in BF16 (a tiny update of a weight
  // of 1) and every odd one not: the sampled record's counts are those of its own positions.
  const uint64_t n = 10000, k = 997;
  std::vector<float> w(n);
  for (uint64_t i = 0; i < n; ++i) w[i] = 1.0f;
  fpscope::probe::HostWatch whole(0, w.data(), n, fpscope::Format::FP32, n);
  fpscope::probe::HostWatch sampled(0, w.data(), n, fpscope::Format::FP32, k);
  whole.snapshot();
  sampled.snapshot();
  for (uint64_t i = 0; i < n; ++i) w[i] += i % 2 ? 0.25f : 1e-4f;
  fpscope::trace::WeightUpdateRecord a, b;
  ASSERT_TRUE(whole.take_update(3, &a));
  ASSERT_TRUE(sampled.take_update(3, &b));
  EXPECT_EQ(a.elements, n);
  EXPECT_EQ(a.watched, n);
  EXPECT_EQ(a.changed, n);
  EXPECT_EQ(a.bf16.stagnant, n / 2);
  EXPECT_EQ(b.elements, n);
  EXPECT_EQ(b.watched, k);
  EXPECT_EQ(b.changed, k);
  uint64_t even = 0;
  for (uint64_t j = 0; j < k; ++j) even += fpscope::probe::sample_position(j, k, n) % 2 == 0;
  EXPECT_EQ(b.bf16.stagnant, even);
  EXPECT_NEAR(static_cast<double>(even) / k, 0.5, 0.06);  // not aliased with the parity
  EXPECT_FALSE(sampled.take_update(4, &b));               // the snapshot is used up
}
