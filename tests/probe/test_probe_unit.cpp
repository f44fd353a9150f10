// Unit tests of the probe's parts that need no process injection: step-period detection,
// configuration parsing (output paths: test_run_env.cpp; step labels: test_step_labeler.cpp).
#include <stdlib.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "config.h"
#include "period.h"

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
          "FPSCOPE_FLUSH_BYTES", "FPSCOPE_OUTPUT", "FPSCOPE_EMULATE"})
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

// Issue 18: emulation is opt-in, BF16/FP16 only (FP8 needs a scaling policy), in the config JSON.
TEST_F(Env, EmulateIsOffUnlessAskedAndOnlyBf16OrFp16) {
  EXPECT_EQ(load_config().emulate, fpscope::Format::FP32);
  EXPECT_EQ(nlohmann::json::parse(config_json(load_config()))["emulate"], "off");
  setenv("FPSCOPE_EMULATE", "BF16", 1);
  EXPECT_EQ(load_config().emulate, fpscope::Format::BF16);
  setenv("FPSCOPE_EMULATE", "fp16", 1);
  EXPECT_EQ(load_config().emulate, fpscope::Format::FP16);
  EXPECT_EQ(nlohmann::json::parse(config_json(load_config()))["emulate"], "fp16");
  for (const char* v : {"e4m3", "bf17"}) {
    setenv("FPSCOPE_EMULATE", v, 1);
    testing::internal::CaptureStderr();
    EXPECT_EQ(load_config().emulate, fpscope::Format::FP32) << v;
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find(std::string("[fpscope] warning: FPSCOPE_EMULATE='") + v + "'"),
              std::string::npos)
        << err;
  }
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

}  // namespace
