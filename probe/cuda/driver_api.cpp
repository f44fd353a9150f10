#include "driver_api.h"

#include <dlfcn.h>

namespace fpscope::cuda {
namespace {

// The version whose entry points the probe asks for: CUDA 12.0's (driver_entries.def).
constexpr int kDriverApiVersion = 12000;

struct Loaded {
  DriverApi api;
  bool ok = false;
  std::string why;
};

Loaded load() {
  Loaded l;
  // RTLD_NOLOAD: only a driver the program itself loaded. A process without it does no CUDA work,
  // and the probe must not be the one to bring the driver (and its contexts) into it.
  // (The tests' mock driver is found the same way: the test programs link it as libcuda.so.1.)
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (h == nullptr) {
    l.why = "the program has not loaded the CUDA driver (libcuda.so.1)";
    return l;
  }
  // The version first, by its plain name (an ABI unchanged since CUDA 2.2, usable before cuInit):
  // an older driver refuses to resolve entries at version 12000 at all.
  auto get_version = reinterpret_cast<PFN_cuDriverGetVersion_v2020>(dlsym(h, "cuDriverGetVersion"));
  int version = 0;
  if (get_version == nullptr || get_version(&version) != CUDA_SUCCESS) {
    l.why = "the CUDA driver does not report its version";
    return l;
  }
  if (version < kDriverApiVersion) {
    l.why = "the CUDA driver reports version " + std::to_string(version) + ", older than CUDA 12.0";
    return l;
  }
  // cuGetProcAddress_v2 (CUDA 12.0): the one symbol looked up by name; every entry comes from it,
  // so each is the version asked for, not whatever the loader's default symbol version is
  // (CUDA driver API, cuGetProcAddress).
  auto get = reinterpret_cast<PFN_cuGetProcAddress_v12000>(dlsym(h, "cuGetProcAddress_v2"));
  if (get == nullptr) {
    l.why = "the CUDA driver is older than CUDA 12.0 (no cuGetProcAddress_v2)";
    return l;
  }
#define FPSCOPE_DRIVER_ENTRY(name, pfn)                                                  \
  {                                                                                      \
    void* fn = nullptr;                                                                  \
    CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;         \
    if (get(#name, &fn, kDriverApiVersion, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &found) != \
            CUDA_SUCCESS ||                                                              \
        found != CU_GET_PROC_ADDRESS_SUCCESS || fn == nullptr) {                         \
      l.why = "the CUDA driver has no " #name " for CUDA 12.0";                          \
      return l;                                                                          \
    }                                                                                    \
    l.api.name = reinterpret_cast<pfn>(fn);                                              \
  }
#include "driver_entries.def"
#undef FPSCOPE_DRIVER_ENTRY
  // cuInit is idempotent; a program that loaded the driver has called it already. Without it no
  // other entry works (CUDA driver API, cuInit: "must be called before any other function").
  l.api.version = version;
  const CUresult e = l.api.cuInit(0);
  if (e != CUDA_SUCCESS) {
    const char* name = nullptr;
    if (l.api.cuGetErrorName(e, &name) != CUDA_SUCCESS || name == nullptr) name = "unknown error";
    l.why = std::string("the CUDA driver does not initialize: ") + name;
    return l;
  }
  l.ok = true;
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

}  // namespace

const DriverApi* driver(std::string* why) {
  const Loaded& l = loaded();
  if (!l.ok && why != nullptr) *why = l.why;
  return l.ok ? &l.api : nullptr;
}

int current_device() {
  const DriverApi* d = driver();
  CUcontext ctx = nullptr;
  CUdevice dev = -1;
  if (d == nullptr || d->cuCtxGetCurrent(&ctx) != CUDA_SUCCESS || ctx == nullptr ||
      d->cuCtxGetDevice(&dev) != CUDA_SUCCESS)
    return -1;
  return static_cast<int>(dev);
}

std::string driver_error(const char* what, CUresult e) {
  const char* name = nullptr;
  const char* text = nullptr;
  const Loaded& l = loaded();
  if (l.api.cuGetErrorName == nullptr || l.api.cuGetErrorName(e, &name) != CUDA_SUCCESS ||
      name == nullptr)
    name = nullptr;
  if (l.api.cuGetErrorString == nullptr || l.api.cuGetErrorString(e, &text) != CUDA_SUCCESS ||
      text == nullptr)
    text = nullptr;
  std::string s = std::string(what) + ": ";
  s += name != nullptr ? name : "CUresult " + std::to_string(static_cast<int>(e));
  if (text != nullptr) s += std::string(" (") + text + ")";
  return s;
}

}  // namespace fpscope::cuda
