#include "resolve.h"

#include <dlfcn.h>
#include <link.h>

#include <cstring>
#include <string>
#include <vector>

namespace fpscope::cuda {
namespace {

const void* own_base() {
  static const void* base = [] {
    Dl_info info{};
    if (dladdr(reinterpret_cast<const void*>(&own_base), &info) == 0) return (const void*)nullptr;
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

void* resolve_real(const char* name, const char* lib_hint) {
  void* fn = dlsym(RTLD_NEXT, name);
  if (fn != nullptr && !address_in_probe(fn)) return fn;

  // Collect first: dlopen inside the dl_iterate_phdr callback would run under the loader's lock.
  std::vector<std::string> names;
  dl_iterate_phdr(collect, &names);
  for (int pass = 0; pass < 2; ++pass) {
    for (const std::string& path : names) {
      const bool hinted = lib_hint != nullptr && path.find(lib_hint) != std::string::npos;
      if ((pass == 0) != hinted) continue;
      void* handle = dlopen(path.c_str(), RTLD_NOLOAD | RTLD_LAZY);
      if (handle == nullptr) continue;
      void* sym = dlsym(handle, name);
      dlclose(handle);  // drops the reference RTLD_NOLOAD took; the object stays loaded
      if (sym != nullptr && !address_in_probe(sym)) return sym;
    }
  }
  return nullptr;
}

}  // namespace fpscope::cuda
