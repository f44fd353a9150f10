// The strict mock CUDA driver's entry-point lookup (cuGetProcAddress) and error names. The table
// lists every entry the mock implements with the CUDA version its ABI was introduced in (the
// _vNNNNN of its PFN type in cudaTypedefs.h); taking the address of the cuda.h name gives the
// versioned symbol (cuMemAlloc -> cuMemAlloc_v2), as a real driver would return.
#include <cstring>

#include "mock_state.h"

namespace {

struct Entry {
  const char* name;  // base name, as cuGetProcAddress is given it
  int version;       // CUDA version that introduced this ABI
  void* fn;
};

#define MOCK_ENTRY(name, version) \
  { #name, version, reinterpret_cast < void*>(&name) }
const Entry kEntries[] = {
    MOCK_ENTRY(cuInit, 2000),
    MOCK_ENTRY(cuDriverGetVersion, 2020),
    MOCK_ENTRY(cuGetErrorName, 6000),
    MOCK_ENTRY(cuGetErrorString, 6000),
    MOCK_ENTRY(cuGetProcAddress, 12000),
    MOCK_ENTRY(cuDeviceGet, 2000),
    MOCK_ENTRY(cuDeviceGetCount, 2000),
    MOCK_ENTRY(cuDeviceGetAttribute, 2000),
    MOCK_ENTRY(cuDevicePrimaryCtxRetain, 7000),
    MOCK_ENTRY(cuDevicePrimaryCtxGetState, 7000),
    MOCK_ENTRY(cuDevicePrimaryCtxRelease, 11000),
    MOCK_ENTRY(cuCtxCreate, 12050),
    MOCK_ENTRY(cuCtxDestroy, 4000),
    MOCK_ENTRY(cuCtxGetCurrent, 4000),
    MOCK_ENTRY(cuCtxSetCurrent, 4000),
    MOCK_ENTRY(cuCtxGetDevice, 2000),
    MOCK_ENTRY(cuCtxPushCurrent, 4000),
    MOCK_ENTRY(cuCtxPopCurrent, 4000),
    MOCK_ENTRY(cuModuleLoadData, 2000),
    MOCK_ENTRY(cuModuleUnload, 2000),
    MOCK_ENTRY(cuModuleGetFunction, 2000),
    MOCK_ENTRY(cuOccupancyMaxActiveBlocksPerMultiprocessor, 6050),
    MOCK_ENTRY(cuLaunchKernel, 4000),
    MOCK_ENTRY(cuMemAlloc, 3020),
    MOCK_ENTRY(cuMemFree, 3020),
    MOCK_ENTRY(cuMemHostAlloc, 2020),
    MOCK_ENTRY(cuMemFreeHost, 2000),
    MOCK_ENTRY(cuMemAllocAsync, 11020),
    MOCK_ENTRY(cuMemFreeAsync, 11020),
    MOCK_ENTRY(cuMemcpyHtoD, 3020),
    MOCK_ENTRY(cuMemcpyDtoH, 3020),
    MOCK_ENTRY(cuMemcpyHtoDAsync, 3020),
    MOCK_ENTRY(cuMemcpyDtoHAsync, 3020),
    MOCK_ENTRY(cuMemcpyDtoDAsync, 3020),
    MOCK_ENTRY(cuMemsetD8Async, 3020),
    MOCK_ENTRY(cuEventCreate, 2000),
    MOCK_ENTRY(cuEventRecord, 2000),
    MOCK_ENTRY(cuEventQuery, 2000),
    MOCK_ENTRY(cuEventSynchronize, 2000),
    MOCK_ENTRY(cuEventDestroy, 4000),
    MOCK_ENTRY(cuStreamCreate, 2000),
    MOCK_ENTRY(cuStreamDestroy, 4000),
    MOCK_ENTRY(cuStreamSynchronize, 2000),
    MOCK_ENTRY(cuStreamWaitEvent, 3020),
    MOCK_ENTRY(cuStreamIsCapturing, 10000),
    MOCK_ENTRY(cuStreamBeginCapture, 10010),
    MOCK_ENTRY(cuStreamEndCapture, 10000),
    MOCK_ENTRY(cuStreamGetCaptureInfo, 12030),
    MOCK_ENTRY(cuThreadExchangeStreamCaptureMode, 10010),
    MOCK_ENTRY(cuGraphDestroy, 10000),
};
#undef MOCK_ENTRY

// X(code, description): the codes the mock returns, with cuda.h's description of each.
#define MOCK_ERRORS(X)                                                                           \
  X(CUDA_SUCCESS, "no error")                                                                    \
  X(CUDA_ERROR_INVALID_VALUE, "invalid argument")                                                \
  X(CUDA_ERROR_OUT_OF_MEMORY, "out of memory")                                                   \
  X(CUDA_ERROR_NOT_INITIALIZED, "initialization error")                                          \
  X(CUDA_ERROR_DEINITIALIZED, "driver shutting down")                                            \
  X(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected")                                  \
  X(CUDA_ERROR_INVALID_DEVICE, "invalid device ordinal")                                         \
  X(CUDA_ERROR_INVALID_IMAGE, "device kernel image is invalid")                                  \
  X(CUDA_ERROR_INVALID_CONTEXT, "invalid device context")                                        \
  X(CUDA_ERROR_NO_BINARY_FOR_GPU, "no kernel image is available for execution on the device")    \
  X(CUDA_ERROR_INVALID_PTX, "a PTX JIT compilation failed")                                      \
  X(CUDA_ERROR_UNSUPPORTED_PTX_VERSION,                                                          \
    "the provided PTX was compiled with an unsupported "                                         \
    "toolchain.")                                                                                \
  X(CUDA_ERROR_INVALID_HANDLE, "invalid resource handle")                                        \
  X(CUDA_ERROR_ILLEGAL_STATE, "the operation cannot be performed in the present state")          \
  X(CUDA_ERROR_NOT_FOUND, "named symbol not found")                                              \
  X(CUDA_ERROR_NOT_READY, "device not ready")                                                    \
  X(CUDA_ERROR_LAUNCH_FAILED, "unspecified launch failure")                                      \
  X(CUDA_ERROR_NOT_SUPPORTED, "operation not supported")                                         \
  X(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "operation not permitted when stream is capturing")   \
  X(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,                                                       \
    "operation failed due to a previous error during "                                           \
    "capture")                                                                                   \
  X(CUDA_ERROR_STREAM_CAPTURE_MERGE,                                                             \
    "operation would result in a merge of separate capture "                                     \
    "sequences")                                                                                 \
  X(CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, "capture was not ended in the same stream as it began") \
  X(CUDA_ERROR_STREAM_CAPTURE_UNJOINED, "capturing stream has unjoined work")                    \
  X(CUDA_ERROR_STREAM_CAPTURE_ISOLATION,                                                         \
    "dependency created on uncaptured work in another "                                          \
    "stream")                                                                                    \
  X(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,                                                          \
    "operation would make the legacy stream depend on a "                                        \
    "capturing blocking stream")                                                                 \
  X(CUDA_ERROR_CAPTURED_EVENT,                                                                   \
    "operation not permitted on an event last recorded in a "                                    \
    "capturing stream")                                                                          \
  X(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD,                                                      \
    "attempt to terminate a thread-local capture "                                               \
    "sequence from another thread")                                                              \
  X(CUDA_ERROR_UNKNOWN, "unknown error")

}  // namespace

extern "C" {

// cuda.h, cuGetProcAddress: "For a requested driver symbol, if the specified CUDA version is
// greater than or equal to the CUDA version in which the driver symbol was introduced, this API
// will return the function pointer to the corresponding versioned function. If the specified CUDA
// version is greater than the driver version, the API will return CUDA_ERROR_INVALID_VALUE."
// "The API will return CUDA_SUCCESS and set the returned pfn to NULL if the requested driver
// function is not supported on the platform, no ABI compatible driver function exists for the
// specified cudaVersion or if the driver symbol is invalid", with symbolStatus
// CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND / _VERSION_NOT_SUFFICIENT. Needs no cuInit (the runtime
// resolves cuInit itself through it). Only the legacy default stream is modelled:
// CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM answers CUDA_ERROR_NOT_SUPPORTED. ABI variants
// older than the ones in kEntries (cuMemAlloc's 32-bit v1 ...) report VERSION_NOT_SUFFICIENT.
CUresult cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags,
                          CUdriverProcAddressQueryResult* symbolStatus) {
  int driver_version = 0;
  bool not_found_error = false;
  {
    std::lock_guard<std::mutex> lock(mock::state().mu);
    driver_version = mock::state().knobs.driver_version;
    not_found_error = mock::state().knobs.proc_not_found_error;
  }
  if (!symbol || !pfn) return CUDA_ERROR_INVALID_VALUE;
  *pfn = nullptr;
  if (cudaVersion > driver_version) return CUDA_ERROR_INVALID_VALUE;
  if (flags & ~cuuint64_t(CU_GET_PROC_ADDRESS_LEGACY_STREAM |
                          CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))
    return CUDA_ERROR_INVALID_VALUE;
  if (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) return CUDA_ERROR_NOT_SUPPORTED;
  const Entry* best = nullptr;
  bool known = false;
  for (const Entry& e : kEntries) {
    if (std::strcmp(e.name, symbol) != 0) continue;
    known = true;
    if (e.version <= cudaVersion && (!best || e.version > best->version)) best = &e;
  }
  if (best) {
    *pfn = best->fn;
    if (symbolStatus) *symbolStatus = CU_GET_PROC_ADDRESS_SUCCESS;
    return CUDA_SUCCESS;
  }
  if (symbolStatus)
    *symbolStatus =
        known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  return !known && not_found_error ? CUDA_ERROR_NOT_FOUND : CUDA_SUCCESS;
}

// cuda.h, cuGetErrorName / cuGetErrorString: "If the error code is not recognized,
// CUDA_ERROR_INVALID_VALUE will be returned and *pStr will be set to the NULL address." No cuInit
// needed. Both read the one table, MOCK_ERRORS.
static CUresult error_text(CUresult error, bool name, const char** pStr) {
  if (!pStr) return CUDA_ERROR_INVALID_VALUE;
  switch (error) {
#define MOCK_X(code, text)       \
  case code:                     \
    *pStr = name ? #code : text; \
    return CUDA_SUCCESS;
    MOCK_ERRORS(MOCK_X)
#undef MOCK_X
    default:
      *pStr = nullptr;
      return CUDA_ERROR_INVALID_VALUE;
  }
}

CUresult cuGetErrorName(CUresult error, const char** pStr) {
  return error_text(error, true, pStr);
}

CUresult cuGetErrorString(CUresult error, const char** pStr) {
  return error_text(error, false, pStr);
}

}  // extern "C"
