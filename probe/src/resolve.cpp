#include "resolve.h"

#include <dlfcn.h>
#include <link.h>

#include <string>
#include <vector>

#include "log.h"

namespace fpscope::probe {
namespace {

const void* own_base() {
  static const void* base = [] {
    Dl_info info{};
    if (dladdr(reinterpret_cast<const void*>(&own_base), &info) == 0)
      return static_cast<const void*>(nullptr);
    return static_cast<const void*>(info.dli_fbase);
  }();
  return base;
}

int collect(struct dl_phdr_info* info, size_t, void* out) {
  auto* names = static_cast<std::vector<std::string>*>(out);
  if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0')
    names->emplace_back(info->dlpi_name);
  return 0;
}

}  // namespace

bool address_in_probe(const void* addr) {
  Dl_info info{};
  if (addr == nullptr || dladdr(addr, &info) == 0) return false;
  return info.dli_fbase == own_base();
}

void* resolve_real(const char* name) {
  void* fn = dlsym(RTLD_NEXT, name);
  if (fn != nullptr && !address_in_probe(fn)) {
    FPSCOPE_LOG(Debug, "%s: resolved through RTLD_NEXT", name);
    return fn;
  }
  // Collect first: dlopen inside the dl_iterate_phdr callback would run under the loader's lock.
  std::vector<std::string> names;
  dl_iterate_phdr(collect, &names);
  for (const std::string& path : names) {
    void* handle = dlopen(path.c_str(), RTLD_NOLOAD | RTLD_LAZY);
    if (handle == nullptr) continue;
    void* sym = dlsym(handle, name);
    if (sym != nullptr && !address_in_probe(sym)) {
      // The handle stays open on purpose: the object cannot be unloaded under the cached pointer.
      FPSCOPE_LOG(Debug, "%s: resolved in %s (not visible to RTLD_NEXT)", name, path.c_str());
      return sym;
    }
    dlclose(handle);
  }
  return nullptr;
}

}  // namespace fpscope::probe
