// Runs a test program on the strict mock driver (tests/mock_cuda) under the real preloaded probe
// and reads its trace: the one recording harness of test_mock_gpu.cpp and test_mock_lt.cpp.
// `libs` is the LD_LIBRARY_PATH that puts the mock libcuda.so.1 (and a mock cuBLAS/cuBLASLt) in
// front of anything else.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "fpscope/trace_io.h"
#include "run_util.h"

namespace fpscope::cuda {

struct MockRecording {
  proc::Output run;
  trace::Trace trace;
  bool read = false;
};

// The program alone (no probe), on the same mock.
inline proc::Output run_on_mock(const std::string& libs, const std::string& env,
                                const std::string& command) {
  return proc::run("LD_LIBRARY_PATH=" + libs + " " + env, command);
}

// The program under the probe, every step sampled, steps from fpscope_step(); the trace goes to
// <dir>/<prefix>-<test name>.fpst (one file per test: CTest runs a file's tests in parallel).
inline MockRecording record_on_mock(const std::string& libs, const std::string& env,
                                    const std::string& command, const std::string& dir,
                                    const std::string& prefix) {
  const std::string path = dir + "/" + prefix + "-" +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                           ".fpst";
  std::remove(path.c_str());
  MockRecording r;
  r.run = run_on_mock(libs,
                      std::string("LD_PRELOAD=") + FPSCOPE_PROBE_LIB + " FPSCOPE_OUTPUT=" + path +
                          " FPSCOPE_STEPS=api FPSCOPE_EVERY=1 FPSCOPE_LOG=info " + env,
                      command);
  trace::ReadError err;
  r.read = trace::read_trace(path, &r.trace, &err);
  EXPECT_TRUE(r.read) << err.message << "\n" << r.run.err;
  return r;
}

}  // namespace fpscope::cuda
