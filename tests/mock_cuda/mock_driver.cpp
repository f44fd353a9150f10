// The strict mock CUDA driver's entry points for initialisation, devices, contexts and memory
// (streams, events and capture: mock_stream.cpp; modules and launches: mock_module.cpp;
// cuGetProcAddress and error names: mock_proc.cpp). Each rule cites the CUDA Driver API reference
// (docs.nvidia.com/cuda/cuda-driver-api, the doxygen of the toolkit's cuda.h). cuda.h's #defines
// give every definition here the name a real libcuda.so.1 exports (cuMemAlloc -> cuMemAlloc_v2
// ...).
#include <cstdlib>
#include <cstring>

#include "mock_state.h"

using mock::state;

namespace {

CUctx_st* new_context(int device, bool primary) {
  auto& st = state();
  auto* c = new CUctx_st();
  c->device = device;
  c->primary = primary;
  c->null_stream = new CUstream_st();
  c->null_stream->ctx = c;
  c->null_stream->is_null = true;
  st.contexts.push_back(c);
  st.streams.push_back(c->null_stream);
  st.counters.contexts_created[device]++;
  return c;
}

void destroy_context(CUctx_st* c) {
  c->alive = false;
  // Everything created in it dies with it; its allocations are released.
  auto& allocs = state().allocations;
  for (size_t i = 0; i < allocs.size();) {
    if (allocs[i].ctx == c) {
      std::free(reinterpret_cast<void*>(allocs[i].base));
      allocs[i] = allocs.back();
      allocs.pop_back();
    } else {
      ++i;
    }
  }
}

bool valid_device(CUdevice d) {
  return d >= 0 && d < state().knobs.devices;
}

CUresult new_allocation(void** out, size_t bytes, CUctx_st* ctx, bool host, unsigned flags,
                        bool async) {
  if (!mock::allocation_allowed()) return CUDA_ERROR_OUT_OF_MEMORY;
  size_t rounded = (bytes + 255) / 256 * 256;
  void* p = std::aligned_alloc(256, rounded);
  if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
  state().allocations.push_back(
      mock::Allocation{reinterpret_cast<uintptr_t>(p), bytes, ctx, host, flags, async});
  *out = p;
  return CUDA_SUCCESS;
}

CUresult free_allocation(uintptr_t base, bool host) {
  auto& allocs = state().allocations;
  for (size_t i = 0; i < allocs.size(); ++i) {
    if (allocs[i].base == base && allocs[i].host == host) {
      std::free(reinterpret_cast<void*>(base));
      allocs[i] = allocs.back();
      allocs.pop_back();
      return CUDA_SUCCESS;
    }
  }
  return CUDA_ERROR_INVALID_VALUE;
}

bool device_range(CUdeviceptr p, size_t n) {
  return mock::find_allocation(static_cast<uintptr_t>(p), n, false) != nullptr;
}

}  // namespace

extern "C" {

// ---- initialisation, version, devices ------------------------------------------------------

// cuda.h, cuInit: "Initializes the driver API and must be called before any other function from
// the driver API in the current process. Currently, the Flags parameter must be 0."
CUresult cuInit(unsigned int Flags) {
  std::lock_guard<std::mutex> lock(state().mu);
  if (Flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (state().knobs.devices == 0) return CUDA_ERROR_NO_DEVICE;
  state().initialized = true;
  return CUDA_SUCCESS;
}

// Needs no cuInit (its reference lists no CUDA_ERROR_NOT_INITIALIZED): "Returns in *driverVersion
// the version of CUDA supported by the driver ... returns CUDA_ERROR_INVALID_VALUE if
// driverVersion is NULL."
CUresult cuDriverGetVersion(int* driverVersion) {
  std::lock_guard<std::mutex> lock(state().mu);
  if (!driverVersion) return CUDA_ERROR_INVALID_VALUE;
  *driverVersion = state().knobs.driver_version;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* count) {
  MOCK_LOCK_INIT();
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  *count = state().knobs.devices;
  return CUDA_SUCCESS;
}

// cuda.h, cuDeviceGet: CUDA_ERROR_INVALID_DEVICE for an ordinal outside [0, cuDeviceGetCount()).
CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  MOCK_LOCK_INIT();
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

// An H100-like device (compute capability 9.0). Attributes the mock does not model answer
// CUDA_ERROR_NOT_SUPPORTED rather than a made-up value.
CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev) {
  MOCK_LOCK_INIT();
  if (!pi) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  const auto& k = state().knobs;
  switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
      *pi = k.sm_count;
      break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
      *pi = 9;
      break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
      *pi = 0;
      break;
    // "Device supports using the cuMemAllocAsync and cuMemPool family of APIs"
    case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED:
      *pi = k.mempools ? 1 : 0;
      break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
      *pi = 1024;
      break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR:
      *pi = 2048;
      break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR:
      *pi = 32;
      break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE:
      *pi = 32;
      break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK:
      *pi = 48 * 1024;
      break;
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
      *pi = 1;
      break;
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY:
      *pi = 1;
      break;
    default:
      return CUDA_ERROR_NOT_SUPPORTED;
  }
  return CUDA_SUCCESS;
}

// ---- contexts --------------------------------------------------------------------------------

// cuda.h, cuDevicePrimaryCtxRetain: "Retains the primary context on the device ... increments the
// reference count"; one primary context per device, shared by every thread that retains it.
CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  MOCK_LOCK_INIT();
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  auto& st = state();
  if (st.primary_refs[dev] == 0 || !st.primary[dev]) st.primary[dev] = new_context(dev, true);
  st.primary_refs[dev]++;
  *pctx = st.primary[dev];
  return CUDA_SUCCESS;
}

// cuda.h, cuDevicePrimaryCtxGetState: "Returns in *flags the flags for the primary context of dev,
// and in *active whether it is active" (retained and not yet released to zero). The probe asks
// it before retaining a device's primary context, so that it never brings one into existence.
CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active) {
  MOCK_LOCK_INIT();
  if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  auto& st = state();
  *flags = 0;
  *active = st.primary_refs[dev] > 0 && st.primary[dev] ? 1 : 0;
  return CUDA_SUCCESS;
}

// cuda.h, cuDevicePrimaryCtxRelease: the primary context is destroyed when its reference count
// drops to zero; releasing one that is not retained is an error (the mock:
// CUDA_ERROR_INVALID_CONTEXT).
CUresult cuDevicePrimaryCtxRelease(CUdevice dev) {
  MOCK_LOCK_INIT();
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  auto& st = state();
  if (st.primary_refs[dev] == 0) return CUDA_ERROR_INVALID_CONTEXT;
  if (--st.primary_refs[dev] == 0) {
    destroy_context(st.primary[dev]);
    st.primary[dev] = nullptr;
  }
  return CUDA_SUCCESS;
}

// cuda.h, cuCtxCreate: "Creates a new CUDA context and associates it with the calling thread ...
// The context is created with a usage count of 1" (pushed on the thread's stack).
CUresult cuCtxCreate(CUcontext* pctx, CUctxCreateParams* /*params*/, unsigned int flags,
                     CUdevice dev) {
  MOCK_LOCK_INIT();
  (void)flags;
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  CUctx_st* c = new_context(dev, false);
  mock::thread_state().stack.push_back(c);
  *pctx = c;
  return CUDA_SUCCESS;
}

// cuda.h, cuCtxDestroy: "If the context is current to the calling thread then the context will
// also be popped from the current thread's context stack". Primary contexts are not destroyed so.
CUresult cuCtxDestroy(CUcontext ctx) {
  MOCK_LOCK_INIT();
  if (!mock::valid(ctx) || ctx->primary) return CUDA_ERROR_INVALID_CONTEXT;
  destroy_context(ctx);
  auto& stack = mock::thread_state().stack;
  if (!stack.empty() && stack.back() == ctx) stack.pop_back();
  return CUDA_SUCCESS;
}

// cuda.h, cuCtxGetCurrent: "If no context is bound to the calling CPU thread then *pctx is set to
// NULL and CUDA_SUCCESS is returned."
CUresult cuCtxGetCurrent(CUcontext* pctx) {
  MOCK_LOCK_INIT();
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  *pctx = mock::current_context();
  return CUDA_SUCCESS;
}

// cuda.h, cuCtxSetCurrent: "If there exists a CUDA context stack on the calling CPU thread, this
// will replace the top of that stack with ctx. If ctx is NULL then this will be equivalent to
// popping the top of the calling CPU thread's CUDA context stack (or a no-op if the calling CPU
// thread's CUDA context stack is empty)."
CUresult cuCtxSetCurrent(CUcontext ctx) {
  MOCK_LOCK_INIT();
  auto& stack = mock::thread_state().stack;
  if (!ctx) {
    if (!stack.empty()) stack.pop_back();
    return CUDA_SUCCESS;
  }
  if (!mock::valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  if (stack.empty())
    stack.push_back(ctx);
  else
    stack.back() = ctx;
  return CUDA_SUCCESS;
}

// cuda.h, cuCtxGetDevice: "Returns in *device the ordinal of the current context's device"
// (CUDA_ERROR_INVALID_CONTEXT without one).
CUresult cuCtxGetDevice(CUdevice* device) {
  MOCK_LOCK_INIT();
  MOCK_NEED_CONTEXT(cur);
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  *device = cur->device;
  return CUDA_SUCCESS;
}

// cuda.h, cuCtxPushCurrent: "Pushes the given context ctx onto the CPU thread's stack of current
// contexts. The specified context becomes the CPU thread's current context".
CUresult cuCtxPushCurrent(CUcontext ctx) {
  MOCK_LOCK_INIT();
  if (!mock::valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  mock::thread_state().stack.push_back(ctx);
  return CUDA_SUCCESS;
}

// cuda.h, cuCtxPopCurrent: "Pops the current CUDA context from the CPU thread and passes back the
// old context handle in *pctx" (CUDA_ERROR_INVALID_CONTEXT when the stack is empty).
CUresult cuCtxPopCurrent(CUcontext* pctx) {
  MOCK_LOCK_INIT();
  auto& stack = mock::thread_state().stack;
  if (stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  if (pctx) *pctx = stack.back();
  stack.pop_back();
  return CUDA_SUCCESS;
}

// ---- memory ----------------------------------------------------------------------------------
// Device memory is host memory (aligned_alloc) tracked per context; copies check that device
// addresses lie in a live allocation (any context: unified addressing).

// cuda.h, cuMemAlloc: "Allocates bytesize bytes of linear memory on the device ... If bytesize is
// 0, cuMemAlloc() returns CUDA_ERROR_INVALID_VALUE." A synchronous allocation is the example of a
// potentially unsafe call during capture (cuThreadExchangeStreamCaptureMode: "some actions, such
// as a call to cudaMalloc, may be unsafe").
CUresult cuMemAlloc(CUdeviceptr* dptr, size_t bytesize) {
  MOCK_LOCK_INIT();
  MOCK_NEED_CONTEXT(cur);
  if (!dptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = mock::unsafe_call_gate(); r != CUDA_SUCCESS) return r;
  void* p = nullptr;
  if (CUresult r = new_allocation(&p, bytesize, cur, false, 0, false); r != CUDA_SUCCESS) return r;
  *dptr = reinterpret_cast<CUdeviceptr>(p);
  return CUDA_SUCCESS;
}

// cuda.h, cuMemFree: "Frees the memory space pointed to by dptr, which must have been returned by a
// previous call to cuMemAlloc" (anything else: CUDA_ERROR_INVALID_VALUE). Synchronous: unsafe
// during capture.
CUresult cuMemFree(CUdeviceptr dptr) {
  MOCK_LOCK_INIT();
  MOCK_NEED_CONTEXT(cur);
  (void)cur;
  if (CUresult r = mock::unsafe_call_gate(); r != CUDA_SUCCESS) return r;
  return free_allocation(static_cast<uintptr_t>(dptr), false);
}

// cuda.h, cuMemHostAlloc: "Allocates bytesize bytes of host memory that is page-locked and
// accessible to the device." Pinned for the current context only unless CU_MEMHOSTALLOC_PORTABLE
// (mock_state.cpp, note_host_side). Unsafe during capture, like cudaMalloc.
CUresult cuMemHostAlloc(void** pp, size_t bytesize, unsigned int Flags) {
  MOCK_LOCK_INIT();
  MOCK_NEED_CONTEXT(cur);
  if (!pp || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  if (Flags & ~unsigned(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP |
                        CU_MEMHOSTALLOC_WRITECOMBINED))
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = mock::unsafe_call_gate(); r != CUDA_SUCCESS) return r;
  return new_allocation(pp, bytesize, cur, true, Flags, false);
}

// cuda.h, cuMemFreeHost: "Frees the memory space pointed to by p, which must have been returned by
// a previous call to cuMemAllocHost()" (or cuMemHostAlloc). Synchronous: unsafe during capture.
CUresult cuMemFreeHost(void* p) {
  MOCK_LOCK_INIT();
  MOCK_NEED_CONTEXT(cur);
  (void)cur;
  if (CUresult r = mock::unsafe_call_gate(); r != CUDA_SUCCESS) return r;
  return free_allocation(reinterpret_cast<uintptr_t>(p), true);
}

// cuda.h, stream ordered allocator: "Whether or not a device supports the integrated stream
// ordered memory allocator may be queried by calling cuDeviceGetAttribute() with the device
// attribute CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED"; cuMemAllocAsync returns
// CUDA_ERROR_NOT_SUPPORTED without it. "During stream capture, this function results in the
// creation of an allocation node": allowed on the capturing stream itself. On any other stream the
// mock treats it as potentially unsafe (conservative: the reference lists no such rule).
CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  MOCK_LOCK_INIT();
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, true, &s); r != CUDA_SUCCESS) return r;
  if (!state().knobs.mempools) return CUDA_ERROR_NOT_SUPPORTED;
  if (!dptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  mock::Capture* c = s->capture && s->capture->active ? s->capture : nullptr;
  if (c && c->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  if (!c) {
    if (CUresult r = mock::unsafe_call_gate(); r != CUDA_SUCCESS) return r;
    if (CUresult r = mock::legacy_stream_check(s); r != CUDA_SUCCESS) return r;
  }
  void* p = nullptr;
  if (CUresult r = new_allocation(&p, bytesize, s->ctx, false, 0, true); r != CUDA_SUCCESS)
    return r;
  if (c) {
    c->ops.push_back([] {});
    state().counters.captured_operations++;
  }
  *dptr = reinterpret_cast<CUdeviceptr>(p);
  return CUDA_SUCCESS;
}

// cuda.h, cuMemFreeAsync: "Frees memory with stream ordered semantics"; "During stream capture,
// this function results in the creation of a free node" (recorded: the memory stays live, the
// graph is never launched). Same pool requirement and capture treatment as cuMemAllocAsync.
CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) {
  MOCK_LOCK_INIT();
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, true, &s); r != CUDA_SUCCESS) return r;
  if (!state().knobs.mempools) return CUDA_ERROR_NOT_SUPPORTED;
  if (!mock::find_allocation(static_cast<uintptr_t>(dptr), 0, false))
    return CUDA_ERROR_INVALID_VALUE;
  bool capturing = s->capture && s->capture->active;
  if (!capturing)
    if (CUresult r = mock::unsafe_call_gate(); r != CUDA_SUCCESS) return r;
  return mock::enqueue(s, [dptr] { return free_allocation(static_cast<uintptr_t>(dptr), false); });
}

// Synchronous copies run on the legacy stream and block the host: potentially unsafe during
// capture, and implicitly ordered after capturing blocking streams (legacy_stream_check).
CUresult cuMemcpyHtoD(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount) {
  MOCK_LOCK_INIT();
  MOCK_NEED_CONTEXT(cur);
  if (!srcHost || !device_range(dstDevice, ByteCount)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = mock::unsafe_call_gate(); r != CUDA_SUCCESS) return r;
  if (CUresult r = mock::legacy_stream_check(cur->null_stream); r != CUDA_SUCCESS) return r;
  std::memcpy(reinterpret_cast<void*>(dstDevice), srcHost, ByteCount);
  return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoH(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount) {
  MOCK_LOCK_INIT();
  MOCK_NEED_CONTEXT(cur);
  if (!dstHost || !device_range(srcDevice, ByteCount)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = mock::unsafe_call_gate(); r != CUDA_SUCCESS) return r;
  if (CUresult r = mock::legacy_stream_check(cur->null_stream); r != CUDA_SUCCESS) return r;
  std::memcpy(dstHost, reinterpret_cast<const void*>(srcDevice), ByteCount);
  return CUDA_SUCCESS;
}

// Async copies: the stream must be the current context's (mock_state.cpp, resolve_stream); the
// host side is counted when not pinned for that context.
CUresult cuMemcpyHtoDAsync(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount,
                           CUstream hStream) {
  MOCK_LOCK_INIT();
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, true, &s); r != CUDA_SUCCESS) return r;
  if (!srcHost || !device_range(dstDevice, ByteCount)) return CUDA_ERROR_INVALID_VALUE;
  mock::note_host_side(srcHost, ByteCount, s->ctx);
  return mock::enqueue(s, [=] {
    std::memcpy(reinterpret_cast<void*>(dstDevice), srcHost, ByteCount);
    return CUDA_SUCCESS;
  });
}

CUresult cuMemcpyDtoHAsync(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount,
                           CUstream hStream) {
  MOCK_LOCK_INIT();
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, true, &s); r != CUDA_SUCCESS) return r;
  if (!dstHost || !device_range(srcDevice, ByteCount)) return CUDA_ERROR_INVALID_VALUE;
  mock::note_host_side(dstHost, ByteCount, s->ctx);
  return mock::enqueue(s, [=] {
    std::memcpy(dstHost, reinterpret_cast<const void*>(srcDevice), ByteCount);
    return CUDA_SUCCESS;
  });
}

CUresult cuMemcpyDtoDAsync(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount,
                           CUstream hStream) {
  MOCK_LOCK_INIT();
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, true, &s); r != CUDA_SUCCESS) return r;
  if (!device_range(dstDevice, ByteCount) || !device_range(srcDevice, ByteCount))
    return CUDA_ERROR_INVALID_VALUE;
  return mock::enqueue(s, [=] {
    std::memmove(reinterpret_cast<void*>(dstDevice), reinterpret_cast<const void*>(srcDevice),
                 ByteCount);
    return CUDA_SUCCESS;
  });
}

CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream) {
  MOCK_LOCK_INIT();
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, true, &s); r != CUDA_SUCCESS) return r;
  if (!device_range(dstDevice, N)) return CUDA_ERROR_INVALID_VALUE;
  return mock::enqueue(s, [=] {
    std::memset(reinterpret_cast<void*>(dstDevice), uc, N);
    return CUDA_SUCCESS;
  });
}

}  // extern "C"
