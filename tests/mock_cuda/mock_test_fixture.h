// The mock driver tests' fixture: every test starts from mock_cuda_reset() with two devices and no
// knobs; helpers for a current primary context, streams, events and module images.
#pragma once

#include <cuda.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "mock_control.h"

namespace mock_test {

inline const char* const kKnobs[] = {
    "MOCK_CUDA_DRIVER_VERSION", "MOCK_CUDA_DEVICES",     "MOCK_CUDA_SM_COUNT",
    "MOCK_CUDA_NO_MEMPOOLS",    "MOCK_CUDA_EVENT_LAG",   "MOCK_CUDA_FAIL_ALLOC_AFTER",
    "MOCK_CUDA_REJECT_FATBIN",  "MOCK_CUDA_MAX_PTX_ISA", "MOCK_CUDA_PROC_NOT_FOUND_ERROR"};

inline MockCudaCounters counters() {
  MockCudaCounters c;
  mock_cuda_counters(&c);
  return c;
}

inline void knob(const char* name, const char* value) {
  setenv(name, value, 1);
  mock_cuda_reload_knobs();
}

inline const char kPtx[] =
    "//\n.version 8.5\n.target sm_90\n.address_size 64\n\n"
    ".visible .entry fpscope_widen_bf16(\n\t.param .align 8 .b8 a[24]\n)\n{\n\tret;\n}\n"
    ".visible .entry other_kernel()\n{\n\tret;\n}\n";

inline std::vector<unsigned char> fatbin_image() {
  std::vector<unsigned char> img(64, 0);
  const uint32_t magic = 0xBA55ED50u;
  std::memcpy(img.data(), &magic, 4);
  return img;
}

class MockCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* k : kKnobs) unsetenv(k);
    setenv("MOCK_CUDA_DEVICES", "2", 1);
    mock_cuda_reset();
  }
  void TearDown() override {
    for (const char* k : kKnobs) unsetenv(k);
    mock_cuda_reset();
  }
  // cuInit + device d's primary context current on this thread.
  CUcontext primary(int d) {
    EXPECT_EQ(cuInit(0), CUDA_SUCCESS);
    CUcontext c = nullptr;
    EXPECT_EQ(cuDevicePrimaryCtxRetain(&c, d), CUDA_SUCCESS);
    EXPECT_EQ(cuCtxSetCurrent(c), CUDA_SUCCESS);
    return c;
  }
  CUstream stream() {
    CUstream s = nullptr;
    EXPECT_EQ(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
    return s;
  }
  CUevent event() {
    CUevent e = nullptr;
    EXPECT_EQ(cuEventCreate(&e, 0), CUDA_SUCCESS);
    return e;
  }
};

}  // namespace mock_test
