// The CUDA path's settings parsers and the NVTX range semantics (probe/cuda/settings.h,
// nvtx_inject.h), in process, no GPU. The recorder is disabled here (FPSCOPE_DISABLE=1, set before
// anything creates it): scopes are thread-local and work without it; step marks need the
// end-to-end test (test_nvtx_e2e.cpp).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "../../probe/src/recorder.h"
#include "nvtx_inject.h"
#include "settings.h"

namespace fpscope::cuda {
namespace {

using probe::Recorder;

class Env : public ::testing::Environment {
 public:
  void SetUp() override { ::setenv("FPSCOPE_DISABLE", "1", 1); }
};
[[maybe_unused]] const auto* const g_env = ::testing::AddGlobalTestEnvironment(new Env);

TEST(CudaSettings, Slots) {
  EXPECT_EQ(parse_cuda_slots(nullptr), 256);
  EXPECT_EQ(parse_cuda_slots(""), 256);
  EXPECT_EQ(parse_cuda_slots("1"), 1);
  EXPECT_EQ(parse_cuda_slots("4096"), 4096);
  EXPECT_EQ(parse_cuda_slots("16384"), kMaxCudaSlots);
  // Above the cap: clamped (the 2^20 ticket encoding and the pinned memory stay sane).
  EXPECT_EQ(parse_cuda_slots("16385"), kMaxCudaSlots);
  EXPECT_EQ(parse_cuda_slots("1048576"), kMaxCudaSlots);
  EXPECT_EQ(parse_cuda_slots("99999999999999999999999"), 256);  // overflows long: malformed
  EXPECT_EQ(parse_cuda_slots("0"), 256);
  EXPECT_EQ(parse_cuda_slots("-3"), 256);
  EXPECT_EQ(parse_cuda_slots("12abc"), 256);
  EXPECT_EQ(parse_cuda_slots("abc"), 256);
  EXPECT_LT(kMaxCudaSlots, 1 << 20);
}

TEST(CudaSettings, SlotsWarnOnceWithTheValue) {
  ::testing::internal::CaptureStderr();
  (void)parse_cuda_slots("2000000");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("[fpscope]"), std::string::npos) << err;
  EXPECT_NE(err.find("FPSCOPE_CUDA_SLOTS=2000000"), std::string::npos) << err;
  EXPECT_NE(err.find("16384"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), err.size() - 1) << "one line: " << err;
}

// Issue 16 item 3: the option is gone; "off" values are accepted silently, anything else (the
// old "on" values included) warns that captured GEMMs are skipped, and nothing turns it on.
TEST(CudaSettings, GraphsOptionIsGoneAndSaysSo) {
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(parse_cuda_graphs(nullptr));
  EXPECT_FALSE(parse_cuda_graphs(""));
  for (const char* f : {"0", "false", "False", "off", "OFF", "no"})
    EXPECT_FALSE(parse_cuda_graphs(f)) << f;
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ::testing::internal::CaptureStderr();
  for (const char* t : {"1", "true", "on", "yes", "enabled"})
    EXPECT_FALSE(parse_cuda_graphs(t)) << t;
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("FPSCOPE_CUDA_GRAPHS=1: measuring GEMMs captured into CUDA graphs is not "
                     "supported"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("FPSCOPE_CUDA_GRAPHS=enabled: "), std::string::npos) << err;
}

TEST(CudaSettings, CuptiOptOut) {
  EXPECT_TRUE(parse_cupti(nullptr));
  EXPECT_TRUE(parse_cupti(""));
  for (const char* t : {"1", "true", "ON", "yes"}) EXPECT_TRUE(parse_cupti(t)) << t;
  for (const char* f : {"0", "false", "Off", "no"}) EXPECT_FALSE(parse_cupti(f)) << f;
  ::testing::internal::CaptureStderr();
  EXPECT_TRUE(parse_cupti("maybe"));
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("FPSCOPE_CUPTI=maybe "),
            std::string::npos);
}

TEST(CudaSettings, DrainMs) {
  EXPECT_EQ(parse_drain_ms(nullptr), 2000);
  EXPECT_EQ(parse_drain_ms("0"), 0);  // do not wait at exit
  EXPECT_EQ(parse_drain_ms("150"), 150);
  EXPECT_EQ(parse_drain_ms("-1"), 2000);
  EXPECT_EQ(parse_drain_ms("x"), 2000);
  EXPECT_EQ(parse_drain_ms("9999999"), kMaxDrainMs);
}

TEST(CudaSettings, StepRange) {
  EXPECT_EQ(parse_step_range(nullptr), "step");
  EXPECT_EQ(parse_step_range(""), "step");
  EXPECT_EQ(parse_step_range("train_iter"), "train_iter");
}

TEST(Nvtx, StepRangeMatching) {
  for (const char* m :
       {"step", "Step", "STEP", "step 12", "step_3", "step:train", "step12", "step#4", "step-1"})
    EXPECT_TRUE(is_step_range(m, "step")) << m;
  for (const char* m : {"stepper", "Steps", "optimizer step", "ste", "", " step", "fc1"})
    EXPECT_FALSE(is_step_range(m, "step")) << m;
  EXPECT_TRUE(is_step_range("train_iter 7", "train_iter"));
  EXPECT_FALSE(is_step_range("train", "train_iter"));
  EXPECT_FALSE(is_step_range("step", ""));  // empty pattern: never
}

TEST(Nvtx, WideToUtf8) {
  EXPECT_EQ(utf8_from_wide(nullptr), "");
  EXPECT_EQ(utf8_from_wide(L"fc1"), "fc1");
  EXPECT_EQ(utf8_from_wide(L"wide\u00e9"), "wide\xc3\xa9");
  EXPECT_EQ(utf8_from_wide(L"\u20ac"), "\xe2\x82\xac");
  EXPECT_EQ(utf8_from_wide(L"\U0001F600"), "\xf0\x9f\x98\x80");
  const wchar_t bad[] = {static_cast<wchar_t>(0xd800), static_cast<wchar_t>(0x110000), 0};
  EXPECT_EQ(utf8_from_wide(bad), "\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(Nvtx, PushedRangesAreScopesStepRangesAreNot) {
  ASSERT_EQ(Recorder::get(), nullptr) << "the recorder must be off in this test";
  EXPECT_EQ(Recorder::current_scope(), "");
  EXPECT_EQ(nvtx_push("step 3"), 0);  // depth before the push
  EXPECT_EQ(Recorder::current_scope(), "") << "a step range must not name tensors";
  EXPECT_EQ(nvtx_push("encoder"), 1);
  EXPECT_EQ(Recorder::current_scope(), "encoder");
  EXPECT_EQ(nvtx_push("fc1"), 2);
  EXPECT_EQ(Recorder::current_scope(), "fc1");
  EXPECT_EQ(nvtx_push(nullptr), 3);  // no message: no scope, still a range
  EXPECT_EQ(Recorder::current_scope(), "fc1");
  EXPECT_EQ(nvtx_pop(), 3);
  EXPECT_EQ(Recorder::current_scope(), "fc1");
  EXPECT_EQ(nvtx_pop(), 2);
  EXPECT_EQ(Recorder::current_scope(), "encoder");
  EXPECT_EQ(nvtx_pop(), 1);
  EXPECT_EQ(Recorder::current_scope(), "");
  EXPECT_EQ(nvtx_pop(), 0);
  EXPECT_EQ(nvtx_pop(), -1);  // unbalanced pop: NVTX's error value, nothing popped
  EXPECT_EQ(Recorder::current_scope(), "");
}

TEST(Nvtx, PopUndoesOnlyWhatItsPushDid) {
  // A scope the program pushed through the fpscope API stays when an NVTX step range ends.
  Recorder::scope_push("api_scope");
  nvtx_push("step");
  EXPECT_EQ(Recorder::current_scope(), "api_scope");
  nvtx_pop();
  EXPECT_EQ(Recorder::current_scope(), "api_scope");
  Recorder::scope_pop();
  EXPECT_EQ(Recorder::current_scope(), "");
}

TEST(Nvtx, RangesInsideTheProbeAreIgnoredAndBalanced) {
  nvtx_push("outer");
  {
    probe::HookGuard guard;  // as inside a hooked cuBLAS call
    nvtx_push("cublas_internal");
    EXPECT_EQ(Recorder::current_scope(), "outer");
    nvtx_pop();
  }
  EXPECT_EQ(Recorder::current_scope(), "outer");
  nvtx_pop();
  EXPECT_EQ(Recorder::current_scope(), "");
}

TEST(Nvtx, RangesArePerThread) {
  nvtx_push("main_thread");
  std::string seen_inside, seen_after;
  std::thread t([&] {
    nvtx_push("worker");
    seen_inside = Recorder::current_scope();
    nvtx_pop();
    seen_after = Recorder::current_scope();
    EXPECT_EQ(nvtx_pop(), -1);  // the main thread's range is not this thread's
  });
  t.join();
  EXPECT_EQ(seen_inside, "worker");
  EXPECT_EQ(seen_after, "");
  EXPECT_EQ(Recorder::current_scope(), "main_thread");
  nvtx_pop();
}

}  // namespace
}  // namespace fpscope::cuda
