// Control and introspection API of the strict mock CUDA driver (tests/mock_cuda, libcuda.so.1 in
// ${build}/mock_cuda/). Test programs that link or dlopen the mock call these; the probe never does
// (it is shipped and must work on a real driver). Every function is extern "C", exported by the
// mock, safe to call from any thread, and needs no cuInit.
//
// Knobs (environment, read at load and again by mock_cuda_reload_knobs()):
//   MOCK_CUDA_DRIVER_VERSION=n    cuDriverGetVersion's answer (default 13000); cuGetProcAddress
//                                 refuses a cudaVersion above it (CUDA_ERROR_INVALID_VALUE).
//   MOCK_CUDA_DEVICES=n           number of devices, 1..MOCK_CUDA_MAX_DEVICES (default 1).
//   MOCK_CUDA_SM_COUNT=n          CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT (default 132).
//   MOCK_CUDA_NO_MEMPOOLS=1       MEMORY_POOLS_SUPPORTED 0: cuMemAllocAsync/cuMemFreeAsync fail
//                                 with CUDA_ERROR_NOT_SUPPORTED.
//   MOCK_CUDA_EVENT_LAG=n         a recorded event reports CUDA_ERROR_NOT_READY to its first n
//                                 cuEventQuery calls (default 0); synchronization completes it.
//   MOCK_CUDA_FAIL_ALLOC_AFTER=n  the (n+1)-th allocation of any kind (cuMemAlloc, cuMemHostAlloc,
//                                 cuMemAllocAsync) and every later one fail:
//                                 CUDA_ERROR_OUT_OF_MEMORY.
//   MOCK_CUDA_REJECT_FATBIN=1     cuModuleLoadData refuses fatbins with
//                                 CUDA_ERROR_UNSUPPORTED_PTX_VERSION (=209:
//                                 CUDA_ERROR_NO_BINARY_FOR_GPU instead): an old driver refusing a
//                                 newer toolkit's cubins.
//   MOCK_CUDA_MAX_PTX_ISA=M.m     PTX whose ".version" is above M.m:
//   CUDA_ERROR_UNSUPPORTED_PTX_VERSION. MOCK_CUDA_PROC_NOT_FOUND_ERROR=1  cuGetProcAddress of an
//   unknown name returns
//                                 CUDA_ERROR_NOT_FOUND instead of the documented CUDA_SUCCESS +
//                                 NULL.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

#define MOCK_CUDA_MAX_DEVICES 8

typedef struct MockCudaCounters {
  // Contexts that came into existence per device: a primary context's first retain (again after
  // its last release) and every cuCtxCreate.
  unsigned long long contexts_created[MOCK_CUDA_MAX_DEVICES];
  // Calls refused because a stream capture prohibited them (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
  // _IMPLICIT, _ISOLATION, CUDA_ERROR_CAPTURED_EVENT).
  unsigned long long unsafe_calls;
  // Capture sequences invalidated (each counted once).
  unsigned long long invalidated_captures;
  // Async copies to or from host memory that is not pinned for the stream's context.
  unsigned long long pageable_async_copies;
  // Device allocations (cuMemAlloc + cuMemAllocAsync) and pinned host allocations not yet freed.
  unsigned long long live_device_allocations;
  unsigned long long live_host_allocations;
  // Allocation calls of any kind that reached the allocator (the fault injection counts these).
  unsigned long long allocation_calls;
  // Kernels run (on the CPU model) and operations recorded into a capture instead of run.
  unsigned long long kernels_run;
  unsigned long long captured_operations;
  unsigned long long modules_loaded;
  // Modules loaded and not unloaded.
  unsigned long long live_modules;
} MockCudaCounters;

// A snapshot of the counters.
void mock_cuda_counters(MockCudaCounters* out);
// Drops ALL state (contexts, streams, events, modules, allocations, captures, counters, every
// thread's current context and capture mode) and returns to "cuInit not called"; re-reads the
// knobs. Handles from before are invalid afterwards (their memory is kept: no dangling reads).
void mock_cuda_reset(void);
// Re-reads the knobs from the environment (after setenv in a test).
void mock_cuda_reload_knobs(void);
// 1 when [p, p+bytes) lies inside one live pinned host allocation (cuMemHostAlloc).
int mock_cuda_is_pinned(const void* p, unsigned long long bytes);

#ifdef __cplusplus
}
#endif
