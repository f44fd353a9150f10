// The strict mock CUDA driver, rule by rule, against the error codes the CUDA Driver API reference
// documents (mock_driver.cpp / mock_stream.cpp / mock_module.cpp / mock_proc.cpp cite them). Links
// the mock directly (its directory is in the RPATH); every test starts from mock_cuda_reset() with
// two devices and no knobs (mock_test_fixture.h). Stream capture: test_mock_capture.cpp.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "fpscope/stats_kernel_abi.h"
#include "fpscope/stats_kernel_host.h"
#include "mock_control.h"
#include "mock_test_fixture.h"

namespace {

using namespace mock_test;

// ---- initialisation and contexts ----------------------------------------------------------------

TEST_F(MockCuda, EverythingButVersionQueriesNeedsCuInit) {
  int n = -1;
  CUcontext c = nullptr;
  CUdeviceptr p = 0;
  EXPECT_EQ(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
  EXPECT_EQ(cuCtxGetCurrent(&c), CUDA_ERROR_NOT_INITIALIZED);
  EXPECT_EQ(cuMemAlloc(&p, 16), CUDA_ERROR_NOT_INITIALIZED);
  EXPECT_EQ(cuDevicePrimaryCtxRetain(&c, 0), CUDA_ERROR_NOT_INITIALIZED);
  int v = 0;
  EXPECT_EQ(cuDriverGetVersion(&v), CUDA_SUCCESS);
  EXPECT_EQ(v, 13000);
  EXPECT_EQ(cuInit(1), CUDA_ERROR_INVALID_VALUE);  // "the Flags parameter must be 0"
  EXPECT_EQ(cuInit(0), CUDA_SUCCESS);
  EXPECT_EQ(cuDeviceGetCount(&n), CUDA_SUCCESS);
  EXPECT_EQ(n, 2);
}

TEST_F(MockCuda, CallsWithoutACurrentContextFail) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUcontext c = reinterpret_cast<CUcontext>(0x1234);
  EXPECT_EQ(cuCtxGetCurrent(&c), CUDA_SUCCESS);  // "*pctx is set to NULL and CUDA_SUCCESS"
  EXPECT_EQ(c, nullptr);
  CUdeviceptr p = 0;
  CUstream s = nullptr;
  CUevent e = nullptr;
  CUmodule m = nullptr;
  CUdevice d = -1;
  void* h = nullptr;
  EXPECT_EQ(cuMemAlloc(&p, 16), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuMemHostAlloc(&h, 16, 0), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuMemAllocAsync(&p, 16, nullptr), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuStreamCreate(&s, 0), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuEventCreate(&e, 0), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuModuleLoadData(&m, kPtx), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuCtxGetDevice(&d), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuCtxPopCurrent(&c), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuStreamSynchronize(nullptr), CUDA_ERROR_INVALID_CONTEXT);
}

TEST_F(MockCuda, CurrentContextIsPerThreadWithAPushPopStack) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUcontext c0 = nullptr, c1 = nullptr, top = nullptr;
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&c0, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&c1, 1), CUDA_SUCCESS);
  ASSERT_NE(c0, c1);
  CUdevice d = -1;
  ASSERT_EQ(cuCtxPushCurrent(c0), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxPushCurrent(c1), CUDA_SUCCESS);
  EXPECT_EQ(cuCtxGetDevice(&d), CUDA_SUCCESS);
  EXPECT_EQ(d, 1);
  std::thread([&] {
    CUcontext other = reinterpret_cast<CUcontext>(0x1);
    EXPECT_EQ(cuCtxGetCurrent(&other), CUDA_SUCCESS);
    EXPECT_EQ(other, nullptr);  // a new thread has no current context
  }).join();
  ASSERT_EQ(cuCtxPopCurrent(&top), CUDA_SUCCESS);
  EXPECT_EQ(top, c1);
  EXPECT_EQ(cuCtxGetDevice(&d), CUDA_SUCCESS);
  EXPECT_EQ(d, 0);
  ASSERT_EQ(cuCtxSetCurrent(c1), CUDA_SUCCESS);  // replaces the top
  EXPECT_EQ(cuCtxGetCurrent(&top), CUDA_SUCCESS);
  EXPECT_EQ(top, c1);
  ASSERT_EQ(cuCtxSetCurrent(nullptr), CUDA_SUCCESS);  // pops it
  EXPECT_EQ(cuCtxPopCurrent(&top), CUDA_ERROR_INVALID_CONTEXT);
  // Primary contexts: one per device while retained; a new one after the last release.
  CUcontext again = nullptr;
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&again, 0), CUDA_SUCCESS);
  EXPECT_EQ(again, c0);
  EXPECT_EQ(counters().contexts_created[0], 1u);
  EXPECT_EQ(counters().contexts_created[1], 1u);
  ASSERT_EQ(cuDevicePrimaryCtxRelease(0), CUDA_SUCCESS);
  ASSERT_EQ(cuDevicePrimaryCtxRelease(0), CUDA_SUCCESS);
  EXPECT_EQ(cuDevicePrimaryCtxRelease(0), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuCtxPushCurrent(c0), CUDA_ERROR_INVALID_CONTEXT);  // destroyed with the last release
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&again, 0), CUDA_SUCCESS);
  EXPECT_EQ(counters().contexts_created[0], 2u);
  CUcontext created = nullptr;
  ASSERT_EQ(cuCtxCreate(&created, nullptr, 0, 1), CUDA_SUCCESS);
  EXPECT_EQ(counters().contexts_created[1], 2u);
  EXPECT_EQ(cuCtxGetCurrent(&top), CUDA_SUCCESS);
  EXPECT_EQ(top, created);
  EXPECT_EQ(cuDevicePrimaryCtxRetain(&again, 2), CUDA_ERROR_INVALID_DEVICE);
}

// ---- resources belong to their context ----------------------------------------------------------

TEST_F(MockCuda, AnotherContextsStreamIsRefused) {
  CUcontext c0 = primary(0);
  CUstream s0 = stream();
  CUevent e0 = event();
  CUmodule m0 = nullptr;
  CUfunction f0 = nullptr;
  ASSERT_EQ(cuModuleLoadData(&m0, kPtx), CUDA_SUCCESS);
  ASSERT_EQ(cuModuleGetFunction(&f0, m0, "fpscope_widen_bf16"), CUDA_SUCCESS);
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAlloc(&p, 64), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e0, s0), CUDA_SUCCESS);

  primary(1);  // device 1 current from here
  CUstream s1 = stream();
  CUevent e1 = event();
  CUmodule m1 = nullptr;
  CUfunction f1 = nullptr;
  ASSERT_EQ(cuModuleLoadData(&m1, kPtx), CUDA_SUCCESS);
  ASSERT_EQ(cuModuleGetFunction(&f1, m1, "fpscope_widen_bf16"), CUDA_SUCCESS);
  fpscope::WidenArgs args{reinterpret_cast<const void*>(p), 1, reinterpret_cast<float*>(p + 32)};
  void* params[] = {&args};
  // A launch on device 0's stream, and device 0's function on device 1's stream.
  EXPECT_EQ(cuLaunchKernel(f1, 1, 1, 1, 1, 1, 1, 0, s0, params, nullptr),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuLaunchKernel(f0, 1, 1, 1, 1, 1, 1, 0, s1, params, nullptr),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuLaunchKernel(f0, 1, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuMemsetD8Async(p, 0, 8, s0), CUDA_ERROR_INVALID_HANDLE);
  unsigned char host[8];
  EXPECT_EQ(cuMemcpyDtoHAsync(host, p, 8, s0), CUDA_ERROR_INVALID_HANDLE);
  // cuEventRecord: "hEvent and hStream must be from the same context".
  EXPECT_EQ(cuEventRecord(e1, s0), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuEventRecord(e0, s1), CUDA_ERROR_INVALID_HANDLE);
  // cuStreamWaitEvent: "hEvent may be from a different context or device than hStream."
  EXPECT_EQ(cuStreamWaitEvent(s1, e0, 0), CUDA_SUCCESS);
  // Device memory of device 0 is addressable from device 1 (unified addressing).
  EXPECT_EQ(cuMemsetD8Async(p, 7, 8, s1), CUDA_SUCCESS);
  EXPECT_EQ(reinterpret_cast<unsigned char*>(p)[7], 7);
  ASSERT_EQ(cuCtxSetCurrent(c0), CUDA_SUCCESS);
  EXPECT_EQ(cuMemsetD8Async(p, 0, 8, s0), CUDA_SUCCESS);
}

TEST_F(MockCuda, DeviceMemoryIsTrackedAndUnknownFreesFail) {
  primary(0);
  CUdeviceptr p = 0;
  EXPECT_EQ(cuMemAlloc(&p, 0), CUDA_ERROR_INVALID_VALUE);  // "If bytesize is 0"
  ASSERT_EQ(cuMemAlloc(&p, 100), CUDA_SUCCESS);
  EXPECT_EQ(counters().live_device_allocations, 1u);
  EXPECT_EQ(cuMemFree(p + 4), CUDA_ERROR_INVALID_VALUE);
  unsigned char buf[200] = {};
  EXPECT_EQ(cuMemcpyHtoD(p, buf, 101), CUDA_ERROR_INVALID_VALUE);  // past the allocation
  EXPECT_EQ(cuMemcpyHtoD(p, buf, 100), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(p), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(p), CUDA_ERROR_INVALID_VALUE);  // double free
  EXPECT_EQ(cuMemFreeHost(buf), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(counters().live_device_allocations, 0u);
}

// ---- events, pinned memory, pools, fault injection
// ------------------------------------------------

TEST_F(MockCuda, EventLagKnobShowsNotReadyUntilSynchronized) {
  knob("MOCK_CUDA_EVENT_LAG", "2");
  primary(0);
  CUstream s = stream();
  CUevent e = event();
  EXPECT_EQ(cuEventQuery(e), CUDA_SUCCESS);  // never recorded: nothing to wait for
  ASSERT_EQ(cuEventRecord(e, s), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(e), CUDA_ERROR_NOT_READY);
  EXPECT_EQ(cuEventQuery(e), CUDA_ERROR_NOT_READY);
  EXPECT_EQ(cuEventQuery(e), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e, s), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(e), CUDA_ERROR_NOT_READY);
  ASSERT_EQ(cuStreamSynchronize(s), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(e), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e, s), CUDA_SUCCESS);
  ASSERT_EQ(cuEventSynchronize(e), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(e), CUDA_SUCCESS);
  EXPECT_EQ(cuEventDestroy(e), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(e), CUDA_ERROR_INVALID_HANDLE);
}

TEST_F(MockCuda, AsyncCopiesFromPageableMemoryAreCounted) {
  CUcontext c0 = primary(0);
  CUstream s0 = stream();
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAlloc(&p, 64), CUDA_SUCCESS);
  void* pinned = nullptr;
  void* portable = nullptr;
  ASSERT_EQ(cuMemHostAlloc(&pinned, 64, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuMemHostAlloc(&portable, 64, CU_MEMHOSTALLOC_PORTABLE), CUDA_SUCCESS);
  EXPECT_EQ(mock_cuda_is_pinned(pinned, 64), 1);
  EXPECT_EQ(mock_cuda_is_pinned(static_cast<char*>(pinned) + 1, 64), 0);
  std::memset(pinned, 9, 64);
  ASSERT_EQ(cuMemcpyHtoDAsync(p, pinned, 64, s0), CUDA_SUCCESS);
  ASSERT_EQ(cuMemcpyDtoHAsync(portable, p, 64, s0), CUDA_SUCCESS);
  EXPECT_EQ(static_cast<unsigned char*>(portable)[63], 9);
  EXPECT_EQ(counters().pageable_async_copies, 0u);
  std::vector<unsigned char> pageable(64);
  ASSERT_EQ(cuMemcpyDtoHAsync(pageable.data(), p, 64, s0), CUDA_SUCCESS);
  EXPECT_EQ(pageable[0], 9);
  EXPECT_EQ(counters().pageable_async_copies, 1u);
  // Pinned memory of device 0 is pinned for device 1's context only when PORTABLE.
  primary(1);
  CUstream s1 = stream();
  ASSERT_EQ(cuMemcpyDtoHAsync(pinned, p, 64, s1), CUDA_SUCCESS);
  EXPECT_EQ(counters().pageable_async_copies, 2u);
  ASSERT_EQ(cuMemcpyDtoHAsync(portable, p, 64, s1), CUDA_SUCCESS);
  EXPECT_EQ(counters().pageable_async_copies, 2u);
  EXPECT_EQ(counters().live_host_allocations, 2u);
  ASSERT_EQ(cuCtxSetCurrent(c0), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFreeHost(pinned), CUDA_SUCCESS);
  EXPECT_EQ(counters().live_host_allocations, 1u);
}

TEST_F(MockCuda, StreamOrderedAllocationNeedsMemoryPools) {
  primary(0);
  CUstream s = stream();
  int v = -1;
  ASSERT_EQ(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, 0), CUDA_SUCCESS);
  EXPECT_EQ(v, 1);
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAllocAsync(&p, 64, s), CUDA_SUCCESS);
  EXPECT_EQ(counters().live_device_allocations, 1u);
  ASSERT_EQ(cuMemFreeAsync(p, s), CUDA_SUCCESS);
  EXPECT_EQ(counters().live_device_allocations, 0u);
  knob("MOCK_CUDA_NO_MEMPOOLS", "1");
  ASSERT_EQ(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, 0), CUDA_SUCCESS);
  EXPECT_EQ(v, 0);
  EXPECT_EQ(cuMemAllocAsync(&p, 64, s), CUDA_ERROR_NOT_SUPPORTED);
  ASSERT_EQ(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 1),
            CUDA_SUCCESS);
  EXPECT_EQ(v, 9);
  ASSERT_EQ(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 1), CUDA_SUCCESS);
  EXPECT_EQ(v, 132);
}

TEST_F(MockCuda, FailAllocAfterKnobFailsTheNextAllocationOfAnyKind) {
  knob("MOCK_CUDA_FAIL_ALLOC_AFTER", "2");
  primary(0);
  CUstream s = stream();
  CUdeviceptr p = 0;
  void* h = nullptr;
  EXPECT_EQ(cuMemAlloc(&p, 16), CUDA_SUCCESS);
  EXPECT_EQ(cuMemAllocAsync(&p, 16, s), CUDA_SUCCESS);
  EXPECT_EQ(cuMemHostAlloc(&h, 16, 0), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(cuMemAlloc(&p, 16), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(counters().live_device_allocations, 2u);
  EXPECT_EQ(counters().live_host_allocations, 0u);
}

// ---- entry points
// ---------------------------------------------------------------------------------

TEST_F(MockCuda, GetProcAddressResolvesVersionedEntries) {
  void* fn = nullptr;
  CUdriverProcAddressQueryResult q{};
  // No cuInit needed.
  ASSERT_EQ(cuGetProcAddress("cuMemAlloc", &fn, 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &q),
            CUDA_SUCCESS);
  EXPECT_EQ(q, CU_GET_PROC_ADDRESS_SUCCESS);
  EXPECT_EQ(fn, dlsym(RTLD_DEFAULT, "cuMemAlloc_v2"));
  EXPECT_NE(fn, nullptr);
  ASSERT_EQ(cuGetProcAddress("cuNoSuchEntry", &fn, 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &q),
            CUDA_SUCCESS);  // documented: CUDA_SUCCESS with pfn NULL
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(q, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  ASSERT_EQ(cuGetProcAddress("cuStreamGetCaptureInfo", &fn, 12000, 0, &q), CUDA_SUCCESS);
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(q, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
  EXPECT_EQ(cuGetProcAddress("cuMemAlloc", &fn, 13010, 0, &q), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(
      cuGetProcAddress("cuMemAlloc", &fn, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &q),
      CUDA_ERROR_NOT_SUPPORTED);
  knob("MOCK_CUDA_PROC_NOT_FOUND_ERROR", "1");
  EXPECT_EQ(cuGetProcAddress("cuNoSuchEntry", &fn, 12000, 0, &q), CUDA_ERROR_NOT_FOUND);
  knob("MOCK_CUDA_DRIVER_VERSION", "12040");
  int v = 0;
  ASSERT_EQ(cuDriverGetVersion(&v), CUDA_SUCCESS);
  EXPECT_EQ(v, 12040);
  EXPECT_EQ(cuGetProcAddress("cuMemAlloc", &fn, 13000, 0, &q), CUDA_ERROR_INVALID_VALUE);
}

// Every entry the probe resolves (driver_entries.def), as the probe resolves it, is the function
// of the PFN type it declares (the static_cast checks the signature at compile time).
TEST_F(MockCuda, EveryProbeEntryResolvesAtCuda12) {
  int n = 0;
#define FPSCOPE_DRIVER_ENTRY(name, pfn)                                                   \
  {                                                                                       \
    void* fn = nullptr;                                                                   \
    CUdriverProcAddressQueryResult q{};                                                   \
    EXPECT_EQ(cuGetProcAddress(#name, &fn, 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &q), \
              CUDA_SUCCESS)                                                               \
        << #name;                                                                         \
    EXPECT_EQ(q, CU_GET_PROC_ADDRESS_SUCCESS) << #name;                                   \
    EXPECT_EQ(fn, reinterpret_cast<void*>(static_cast<pfn>(&name))) << #name;             \
    ++n;                                                                                  \
  }
#include "driver_entries.def"
#undef FPSCOPE_DRIVER_ENTRY
  EXPECT_GE(n, 30);
}

TEST_F(MockCuda, ExportsTheNamesARealLibcudaExports) {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);  // how the probe finds the driver
  ASSERT_NE(h, nullptr);
  for (const char* name :
       {"cuGetProcAddress_v2", "cuMemAlloc_v2", "cuMemFree_v2", "cuCtxPushCurrent_v2",
        "cuCtxPopCurrent_v2", "cuMemcpyDtoHAsync_v2", "cuMemcpyDtoDAsync_v2", "cuStreamDestroy_v2",
        "cuEventDestroy_v2", "cuStreamBeginCapture_v2", "cuDevicePrimaryCtxRelease_v2",
        "cuMemsetD8Async", "cuLaunchKernel", "mock_cuda_counters"})
    EXPECT_NE(dlsym(h, name), nullptr) << name;
  for (const char* name : {"cuMemAlloc", "cuGetProcAddress", "cuStreamDestroy"})
    EXPECT_EQ(dlsym(h, name), nullptr)
        << name << ": the mock exports only the _v2 names (a caller of a v1 name fails here)";
  dlclose(h);
}

// ---- modules and launches
// -------------------------------------------------------------------------

TEST_F(MockCuda, FatbinsLoadUnlessTheRejectKnobIsSet) {
  primary(0);
  auto img = fatbin_image();
  CUmodule m = nullptr;
  CUfunction f = nullptr;
  ASSERT_EQ(cuModuleLoadData(&m, img.data()), CUDA_SUCCESS);
  EXPECT_EQ(cuModuleGetFunction(&f, m, "fpscope_tensor_stats_bf16"), CUDA_SUCCESS);
  EXPECT_EQ(cuModuleGetFunction(&f, m, "not_a_stats_kernel"), CUDA_ERROR_NOT_FOUND);
  knob("MOCK_CUDA_REJECT_FATBIN", "1");
  EXPECT_EQ(cuModuleLoadData(&m, img.data()), CUDA_ERROR_UNSUPPORTED_PTX_VERSION);
  knob("MOCK_CUDA_REJECT_FATBIN", "209");
  EXPECT_EQ(cuModuleLoadData(&m, img.data()), CUDA_ERROR_NO_BINARY_FOR_GPU);
  EXPECT_EQ(cuModuleLoadData(&m, kPtx), CUDA_SUCCESS);  // the PTX fallback still loads
  EXPECT_EQ(counters().modules_loaded, 2u);
}

TEST_F(MockCuda, PtxAboveTheMaxIsaIsRefused) {
  primary(0);
  CUmodule m = nullptr;
  CUfunction f = nullptr;
  ASSERT_EQ(cuModuleLoadData(&m, kPtx), CUDA_SUCCESS);
  EXPECT_EQ(cuModuleGetFunction(&f, m, "fpscope_widen_bf16"), CUDA_SUCCESS);
  EXPECT_EQ(cuModuleGetFunction(&f, m, "other_kernel"), CUDA_SUCCESS);
  EXPECT_EQ(cuModuleGetFunction(&f, m, "fpscope_widen"), CUDA_ERROR_NOT_FOUND);  // a prefix
  EXPECT_EQ(cuModuleGetFunction(&f, m, "fpscope_widen_fp16"), CUDA_ERROR_NOT_FOUND);
  knob("MOCK_CUDA_MAX_PTX_ISA", "8.0");
  EXPECT_EQ(cuModuleLoadData(&m, kPtx), CUDA_ERROR_UNSUPPORTED_PTX_VERSION);
  knob("MOCK_CUDA_MAX_PTX_ISA", "8.5");
  EXPECT_EQ(cuModuleLoadData(&m, kPtx), CUDA_SUCCESS);
  EXPECT_EQ(cuModuleLoadData(&m, "garbage"), CUDA_ERROR_INVALID_IMAGE);
  EXPECT_EQ(cuModuleLoadData(&m, ".entry f() {}"), CUDA_ERROR_INVALID_PTX);
}

TEST_F(MockCuda, LaunchesAreValidatedAndRecordedDuringCapture) {
  primary(0);
  CUstream s = stream();
  CUmodule m = nullptr;
  CUfunction widen = nullptr, other = nullptr;
  ASSERT_EQ(cuModuleLoadData(&m, kPtx), CUDA_SUCCESS);
  ASSERT_EQ(cuModuleGetFunction(&widen, m, "fpscope_widen_bf16"), CUDA_SUCCESS);
  ASSERT_EQ(cuModuleGetFunction(&other, m, "other_kernel"), CUDA_SUCCESS);
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAlloc(&p, 64), CUDA_SUCCESS);
  fpscope::WidenArgs args{reinterpret_cast<const void*>(p), 0, reinterpret_cast<float*>(p + 32)};
  void* params[] = {&args};
  void* extra[] = {CU_LAUNCH_PARAM_END};
  EXPECT_EQ(cuLaunchKernel(widen, 1, 1, 1, 2048, 1, 1, 0, s, params, nullptr),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuLaunchKernel(widen, 0, 1, 1, 32, 1, 1, 0, s, params, nullptr),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuLaunchKernel(widen, 1, 1, 1, 32, 1, 1, 0, s, params, extra),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuLaunchKernel(other, 1, 1, 1, 32, 1, 1, 0, s, params, nullptr),
            CUDA_ERROR_NOT_SUPPORTED);  // no CPU model for it
  EXPECT_EQ(cuLaunchKernel(nullptr, 1, 1, 1, 32, 1, 1, 0, s, params, nullptr),
            CUDA_ERROR_INVALID_HANDLE);
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  EXPECT_EQ(cuLaunchKernel(widen, 1, 1, 1, 256, 1, 1, 0, s, params, nullptr), CUDA_SUCCESS);
  CUgraph g = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s, &g), CUDA_SUCCESS);
  EXPECT_EQ(counters().captured_operations, 1u);
  EXPECT_EQ(counters().kernels_run, 0u);
  int blocks = 0;
  ASSERT_EQ(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, widen, 256, 0), CUDA_SUCCESS);
  EXPECT_EQ(blocks, 8);  // 2048 threads per SM / 256
}

// A launch runs the CPU model over the argument block: the same bytes as calling the model
// directly on a copy of the same slot.
TEST_F(MockCuda, ALaunchRunsTheKernelsCpuModel) {
  primary(0);
  CUstream s = stream();
  auto img = fatbin_image();
  CUmodule m = nullptr;
  CUfunction f = nullptr;
  ASSERT_EQ(cuModuleLoadData(&m, img.data()), CUDA_SUCCESS);
  ASSERT_EQ(cuModuleGetFunction(&f, m, "fpscope_init_slot"), CUDA_SUCCESS);
  CUdeviceptr slot = 0;
  ASSERT_EQ(cuMemAlloc(&slot, sizeof(fpscope::TensorStats)), CUDA_SUCCESS);
  ASSERT_EQ(cuMemsetD8Async(slot, 0, sizeof(fpscope::TensorStats), s), CUDA_SUCCESS);
  fpscope::InitSlotArgs args{};
  args.slot = reinterpret_cast<fpscope::TensorStats*>(slot);
  void* params[] = {&args};
  EXPECT_EQ(cuLaunchKernel(f, 1, 1, 1, 2, 1, 1, 0, s, params, nullptr), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, s, params, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(counters().kernels_run, 1u);
  std::vector<unsigned char> expected(sizeof(fpscope::TensorStats), 0);
  fpscope::InitSlotArgs direct = args;
  direct.slot = reinterpret_cast<fpscope::TensorStats*>(expected.data());
  ASSERT_EQ(fpscope::run_stats_kernel_on_host(fpscope::StatsKernel::InitSlot, 1, 1, &direct),
            CUDA_SUCCESS);
  EXPECT_EQ(std::memcmp(expected.data(), reinterpret_cast<void*>(slot), expected.size()), 0);
}

}  // namespace
