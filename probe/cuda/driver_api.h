// The probe's one door to the CUDA driver: the entries of driver_entries.def, resolved from the
// libcuda.so.1 the PROGRAM already loaded. The probe links no CUDA library (no cudart_static):
// its own CUDA work runs on whatever driver the program runs on, from CUDA 12.0 (R525) on, and a
// program that never loaded the driver gets no CUDA work from the probe at all.
//
// Contract:
//  - driver() resolves once per process (thread-safe) and returns the table, or nullptr when
//    libcuda.so.1 is not loaded in the process (dlopen RTLD_NOLOAD: the probe never loads it),
//    has no cuGetProcAddress_v2 (a driver older than CUDA 12.0), reports a version below 12000,
//    or lacks an entry; *why (when given) says which, the same text every call.
//  - Entries are CUDA 12.0's versions, legacy default stream semantics (cuGetProcAddress with
//    CU_GET_PROC_ADDRESS_LEGACY_STREAM), whatever driver is installed.
//  - The tests' strict mock driver (tests/mock_cuda) is found the same way: test programs link it
//    as their libcuda.so.1.
#pragma once

#include <cuda.h>
#include <cudaTypedefs.h>

#include <string>

namespace fpscope::cuda {

struct DriverApi {
#define FPSCOPE_DRIVER_ENTRY(name, pfn) pfn name = nullptr;
#include "driver_entries.def"
#undef FPSCOPE_DRIVER_ENTRY
  int version = 0;  // cuDriverGetVersion
};

const DriverApi* driver(std::string* why = nullptr);

// The device of the calling thread's current context; -1 when it has none or there is no driver.
// Never creates or changes a context.
int current_device();

// "what: CUDA_ERROR_X (the driver's description)".
std::string driver_error(const char* what, CUresult e);

}  // namespace fpscope::cuda
