/* fpscope probe, CUDA part: TEST HOOKS exported by libfpscope_probe.so besides the fpscope.h API.
 *
 * Not part of the public C API (probe/include/fpscope.h) and not for programs: no stability
 * promise, may change or go away with any release. Exported (probe/cuda/exports.map, node
 * FPSCOPE_CUDA_1) so that the interposition tests (tests/probe_cuda) can ask the preloaded probe,
 * via dlsym(RTLD_DEFAULT, ...), whether it saw a call, even when no trace records it (null
 * handles, recorder disabled). */
#ifndef FPSCOPE_CUDA_TEST_HOOKS_H_
#define FPSCOPE_CUDA_TEST_HOOKS_H_

#ifdef __cplusplus
extern "C" {
#endif

/* Number of calls the hook of the cuBLAS/cuBLASLt function `name` ("cublasGemmEx",
 * "cublasLtMatmul", ...) has seen since the probe was loaded, recorded or not; -1 for a name the
 * probe does not hook (or a null name). Thread-safe. */
long long fpscope_cuda_hook_calls(const char* name);

#ifdef __cplusplus
}
#endif

#endif /* FPSCOPE_CUDA_TEST_HOOKS_H_ */
