// A CUDA runtime program with its own error handling, for the pass-through test: on a machine
// without a GPU it must print the same errors and exit with the same code with the probe loaded.
#include <cuda_runtime_api.h>

#include <cstdio>

int main() {
  int n = -1;
  const cudaError_t e = cudaGetDeviceCount(&n);
  std::printf("cudaGetDeviceCount %d %s n=%d\n", static_cast<int>(e), cudaGetErrorName(e), n);
  void* p = nullptr;
  const cudaError_t m = cudaMalloc(&p, 1024);
  std::printf("cudaMalloc %d %s\n", static_cast<int>(m), cudaGetErrorName(m));
  const cudaError_t last = cudaGetLastError();
  std::printf("cudaGetLastError %d\n", static_cast<int>(last));
  if (e != cudaSuccess || n == 0) {
    std::printf("no CUDA device: exiting with 3\n");
    return 3;
  }
  cudaFree(p);
  return 0;
}
