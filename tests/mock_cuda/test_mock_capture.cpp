// The strict mock driver's stream-capture rules against the documented error codes: capture modes
// and the thread interaction mode, potentially unsafe calls, the legacy stream, captured events,
// fork/join and isolation (mock_stream.cpp, mock_state.cpp cite the reference).
#include <cuda.h>
#include <gtest/gtest.h>

#include <thread>

#include "mock_control.h"
#include "mock_test_fixture.h"

namespace {

using namespace mock_test;

// ---- stream capture
// -------------------------------------------------------------------------------

TEST_F(MockCuda, GlobalCaptureIsInvalidatedByAnotherThreadsEventQuery) {
  CUcontext c = primary(0);
  CUstream s = stream();
  CUevent e = event();
  ASSERT_EQ(cuEventRecord(e, s), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  ASSERT_EQ(cuStreamIsCapturing(s, &st), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
  std::thread([&] {
    ASSERT_EQ(cuCtxSetCurrent(c), CUDA_SUCCESS);
    EXPECT_EQ(cuEventQuery(e), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  }).join();
  ASSERT_EQ(cuStreamIsCapturing(s, &st), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_INVALIDATED);
  CUgraph g = reinterpret_cast<CUgraph>(0x1);
  EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  EXPECT_EQ(g, nullptr);
  EXPECT_EQ(counters().invalidated_captures, 1u);
  EXPECT_EQ(counters().unsafe_calls, 1u);
  ASSERT_EQ(cuStreamIsCapturing(s, &st), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_NONE);
}

TEST_F(MockCuda, RelaxedThreadOrThreadLocalCaptureLeavesTheCaptureIntact) {
  CUcontext c = primary(0);
  CUstream s = stream();
  CUevent e = event();
  ASSERT_EQ(cuEventRecord(e, s), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  std::thread([&] {
    ASSERT_EQ(cuCtxSetCurrent(c), CUDA_SUCCESS);
    CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
    ASSERT_EQ(cuThreadExchangeStreamCaptureMode(&mode), CUDA_SUCCESS);
    EXPECT_EQ(mode, CU_STREAM_CAPTURE_MODE_GLOBAL);  // the default, handed back
    EXPECT_EQ(cuEventQuery(e), CUDA_SUCCESS);
    CUdeviceptr p = 0;
    EXPECT_EQ(cuMemAlloc(&p, 16), CUDA_SUCCESS);
    ASSERT_EQ(cuThreadExchangeStreamCaptureMode(&mode), CUDA_SUCCESS);  // back to global
    EXPECT_EQ(mode, CU_STREAM_CAPTURE_MODE_RELAXED);
  }).join();
  CUgraph g = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s, &g), CUDA_SUCCESS);
  EXPECT_NE(g, nullptr);
  EXPECT_EQ(cuGraphDestroy(g), CUDA_SUCCESS);
  // A thread-local capture ignores other threads' calls ("Concurrent capture sequences in other
  // threads are ignored"), but not its own thread's.
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), CUDA_SUCCESS);
  std::thread([&] {
    ASSERT_EQ(cuCtxSetCurrent(c), CUDA_SUCCESS);
    EXPECT_EQ(cuEventQuery(e), CUDA_SUCCESS);
  }).join();
  CUstreamCaptureStatus st{};
  ASSERT_EQ(cuStreamIsCapturing(s, &st), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
  EXPECT_EQ(cuEventQuery(e), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  ASSERT_EQ(cuStreamIsCapturing(s, &st), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_INVALIDATED);
  EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  EXPECT_EQ(counters().invalidated_captures, 1u);
}

TEST_F(MockCuda, AllocationDuringCaptureIsUnsafeExceptStreamOrderedOnTheCapture) {
  primary(0);
  CUstream s = stream();
  CUstream other = stream();
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  CUdeviceptr p = 0;
  EXPECT_EQ(cuMemAllocAsync(&p, 64, s), CUDA_SUCCESS);  // an allocation node
  EXPECT_EQ(counters().captured_operations, 1u);
  EXPECT_EQ(cuMemAllocAsync(&p, 64, other), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  CUgraph g = nullptr;
  EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);

  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  EXPECT_EQ(cuMemAlloc(&p, 64), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  void* h = nullptr;
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  EXPECT_EQ(cuMemHostAlloc(&h, 64, 0), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  // A relaxed capture prohibits nothing.
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  EXPECT_EQ(cuMemAlloc(&p, 64), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_SUCCESS);
  EXPECT_EQ(counters().invalidated_captures, 3u);
  EXPECT_EQ(counters().unsafe_calls, 3u);
}

TEST_F(MockCuda, CapturedWorkIsRecordedNotRun) {
  primary(0);
  CUstream s = stream();
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAlloc(&p, 16), CUDA_SUCCESS);
  ASSERT_EQ(cuMemsetD8Async(p, 1, 16, s), CUDA_SUCCESS);
  auto* bytes = reinterpret_cast<unsigned char*>(p);
  EXPECT_EQ(bytes[15], 1);  // outside capture: done
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(cuMemsetD8Async(p, 2, 16, s), CUDA_SUCCESS);
  EXPECT_EQ(bytes[15], 1);  // inside: recorded only
  cuuint64_t id = 0;
  CUstreamCaptureStatus st{};
  ASSERT_EQ(cuStreamGetCaptureInfo(s, &st, &id, nullptr, nullptr, nullptr, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
  EXPECT_NE(id, 0u);
  CUgraph g = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s, &g), CUDA_SUCCESS);
  EXPECT_EQ(counters().captured_operations, 1u);
  EXPECT_EQ(bytes[15], 1);
}

TEST_F(MockCuda, SynchronizationAndTheLegacyStreamDuringCapture) {
  primary(0);
  CUstream blocking = nullptr;
  ASSERT_EQ(cuStreamCreate(&blocking, CU_STREAM_DEFAULT), CUDA_SUCCESS);
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAlloc(&p, 16), CUDA_SUCCESS);
  CUgraph g = nullptr;
  // Synchronising the capturing stream itself, even from a relaxed thread.
  ASSERT_EQ(cuStreamBeginCapture(blocking, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamSynchronize(blocking), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(cuStreamEndCapture(blocking, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  // The legacy stream while a blocking stream captures: IMPLICIT; IsCapturing does not invalidate.
  ASSERT_EQ(cuStreamBeginCapture(blocking, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  CUstreamCaptureStatus st{};
  EXPECT_EQ(cuStreamIsCapturing(nullptr, &st), CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);
  ASSERT_EQ(cuStreamIsCapturing(blocking, &st), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
  EXPECT_EQ(cuMemsetD8Async(p, 0, 16, nullptr), CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);
  ASSERT_EQ(cuStreamIsCapturing(blocking, &st), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_INVALIDATED);
  EXPECT_EQ(cuStreamEndCapture(blocking, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  // The legacy stream cannot be captured; a capture cannot begin twice.
  EXPECT_EQ(cuStreamBeginCapture(nullptr, CU_STREAM_CAPTURE_MODE_GLOBAL),
            CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  ASSERT_EQ(cuStreamBeginCapture(blocking, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamBeginCapture(blocking, CU_STREAM_CAPTURE_MODE_GLOBAL),
            CUDA_ERROR_ILLEGAL_STATE);
  unsigned char host[16];
  EXPECT_EQ(cuMemcpyDtoH(host, p, 16), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);  // sync copy
  EXPECT_EQ(cuStreamEndCapture(blocking, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
}

TEST_F(MockCuda, EventsRecordedInACaptureCannotBeQueried) {
  primary(0);
  CUstream s = stream();
  CUevent e = event();
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
  ASSERT_EQ(cuThreadExchangeStreamCaptureMode(&mode), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e, s), CUDA_SUCCESS);
  // Relaxed: "still prohibited from ... cuEventQuery on an event that was last recorded inside a
  // capture sequence".
  EXPECT_EQ(cuEventQuery(e), CUDA_ERROR_CAPTURED_EVENT);
  EXPECT_EQ(cuEventSynchronize(e), CUDA_ERROR_CAPTURED_EVENT);
  CUgraph g = nullptr;
  EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
}

TEST_F(MockCuda, ForkedStreamsMustJoinAndCaptureIsIsolated) {
  primary(0);
  CUstream s = stream(), side = stream(), outside = stream();
  CUevent fork = event(), join = event(), done = event();
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAlloc(&p, 16), CUDA_SUCCESS);
  CUgraph g = nullptr;
  // Fork without join.
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(fork, s), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamWaitEvent(side, fork, 0), CUDA_SUCCESS);
  CUstreamCaptureStatus st{};
  ASSERT_EQ(cuStreamIsCapturing(side, &st), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);  // side joined the capture
  ASSERT_EQ(cuMemsetD8Async(p, 3, 16, side), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamEndCapture(side, &g), CUDA_ERROR_STREAM_CAPTURE_UNMATCHED);
  EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_UNJOINED);
  ASSERT_EQ(cuStreamIsCapturing(side, &st), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_NONE);
  // Fork and join.
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(fork, s), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamWaitEvent(side, fork, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuMemsetD8Async(p, 3, 16, side), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(join, side), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamWaitEvent(s, join, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamEndCapture(s, &g), CUDA_SUCCESS);
  EXPECT_NE(g, nullptr);
  // Waiting in a capture on work recorded outside it crosses the boundary.
  ASSERT_EQ(cuEventRecord(done, outside), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamWaitEvent(s, done, 0), CUDA_ERROR_STREAM_CAPTURE_ISOLATION);
  EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
}

TEST_F(MockCuda, NonRelaxedCaptureEndsOnlyInItsThread) {
  primary(0);
  CUstream s = stream();
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), CUDA_SUCCESS);
  CUcontext c = nullptr;
  ASSERT_EQ(cuCtxGetCurrent(&c), CUDA_SUCCESS);
  std::thread([&] {
    ASSERT_EQ(cuCtxSetCurrent(c), CUDA_SUCCESS);
    CUgraph g = nullptr;
    EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD);
  }).join();
  CUgraph g = nullptr;
  EXPECT_EQ(cuStreamEndCapture(s, &g), CUDA_SUCCESS);
}

}  // namespace
