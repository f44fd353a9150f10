#include "kernel_module.h"

#include "fpscope/stats_kernel_images.h"
#include "fpscope/stats_reduce.h"

namespace fpscope::cuda {
namespace {

// Each entry's function in the loaded module and its resident grid on the device.
CUresult find_entries(const DriverApi& d, CUdevice dev, DeviceKernels* k) {
  int sms = 0;
  if (d.cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev) != CUDA_SUCCESS)
    sms = 0;
  for (int i = 0; i < kNumStatsKernels; ++i) {
    const auto id = static_cast<StatsKernel>(i);
    const CUresult e = d.cuModuleGetFunction(&k->fn[i], k->module, stats_kernel_name(id));
    if (e != CUDA_SUCCESS) return e;
    int per_sm = 0;
    // A failed occupancy query only costs the grid size (0: the launcher's default).
    if (sms > 0 &&
        d.cuOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k->fn[i], kStatsThreads, 0) ==
            CUDA_SUCCESS &&
        per_sm > 0)
      k->resident[i] = static_cast<unsigned>(sms * per_sm);
  }
  return CUDA_SUCCESS;
}

}  // namespace

CUresult load_kernels(const DriverApi& d, CUdevice dev, DeviceKernels* k, std::string* which) {
  const KernelImage fat = stats_kernels_fatbin();
  CUresult e = d.cuModuleLoadData(&k->module, fat.data);
  *which = "fatbin";
  if (e != CUDA_SUCCESS) {
    const CUresult fat_error = e;
    e = d.cuModuleLoadData(&k->module, stats_kernels_ptx().data);
    *which = "PTX " + std::string(kStatsPtxIsa) +
             " (the driver refused the fatbin: " + driver_error("cuModuleLoadData", fat_error) +
             ")";
  }
  if (e != CUDA_SUCCESS) {
    *k = DeviceKernels{};
    return e;
  }
  e = find_entries(d, dev, k);
  if (e != CUDA_SUCCESS) unload_kernels(d, k);
  return e;
}

void unload_kernels(const DriverApi& d, DeviceKernels* k) {
  if (k->module != nullptr) (void)d.cuModuleUnload(k->module);
  *k = DeviceKernels{};
}

}  // namespace fpscope::cuda
