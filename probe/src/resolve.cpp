#include "resolve.h"

#include <dlfcn.h>
#include <link.h>

#include <mutex>
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

// Keeps the object that defines `sym` mapped for the rest of the process: ONE dlopen reference
// per defining object, taken on the first address resolved in it and never released.
//
// Why this, of the ways to treat the RTLD_NOLOAD handle (dlopen(3): a successful dlopen,
// RTLD_NOLOAD included, increments the object's reference count, and the object is unloaded only
// after as many dlclose calls):
//  - closing it at once (what the CUDA resolver did) leaves no reference of ours: when the program
//    (a Python plugin, a library that dlopened cuBLAS RTLD_LOCAL) drops its last one, the object
//    is unmapped under the address the hooks cached, and the next call jumps into freed memory;
//  - keeping every handle (what the host resolver did) pins, but with one reference per resolved
//    symbol and per call, nowhere counted, and on the object the scan opened rather than the one
//    that defines the symbol (dlsym also searches a handle's dependencies);
//  - RTLD_NOLOAD | RTLD_NODELETE pins too, but glibc then turns every dlclose of the object into a
//    silent no-op, the program's own included (measured here with glibc 2.36: the count no longer
//    moves), which is more than the probe needs to change.
// One counted reference leaves the program's dlopen/dlclose pairs working as before: the object
// just has one more holder. tests/probe_cuda (probe_resolve_test) checks that there is exactly one.
void keep_mapped(const void* sym, const char* name) {
  Dl_info info{};
  if (dladdr(sym, &info) == 0 || info.dli_fname == nullptr || info.dli_fname[0] == '\0') return;
  // An object is known by its base address and path (an address alone could be reused by
  // another object after an unload the probe's reference did not prevent: a test dropping it).
  struct Pinned {
    const void* base;
    std::string path;
  };
  static std::mutex mu;
  static auto* pinned = new std::vector<Pinned>();  // never destroyed: hooks run during exit
  const std::lock_guard<std::mutex> lock(mu);
  for (const Pinned& p : *pinned)
    if (p.base == info.dli_fbase && p.path == info.dli_fname) return;
  void* handle = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
  if (handle == nullptr) {
    // The main program: never unloaded, and not reachable by its path. dlerror() is read either
    // way, so that the program's next dlerror() does not report our failure.
    const char* why = dlerror();
    FPSCOPE_LOG(Debug, "%s: no reference kept on %s (%s)", name, info.dli_fname,
                why != nullptr ? why : "?");
    return;
  }
  pinned->push_back({info.dli_fbase, info.dli_fname});  // `handle` is deliberately never closed
}

void* found(void* sym, const char* name, const char* where) {
  keep_mapped(sym, name);
  FPSCOPE_LOG(Debug, "%s: resolved %s", name, where);
  return sym;
}

}  // namespace

bool address_in_probe(const void* addr) {
  Dl_info info{};
  if (addr == nullptr || dladdr(addr, &info) == 0) return false;
  return info.dli_fbase == own_base();
}

namespace {
// dlsym, or dlvsym when a version is asked for.
void* lookup(void* handle, const char* name, const char* version) {
  return version != nullptr ? dlvsym(handle, name, version) : dlsym(handle, name);
}

void* resolve_in(const char* name, const char* lib_hint, const char* version) {
  void* fn = lookup(RTLD_NEXT, name, version);
  if (fn != nullptr && !address_in_probe(fn)) return found(fn, name, "through RTLD_NEXT");
  // Collect first: dlopen inside the dl_iterate_phdr callback would run under the loader's lock.
  std::vector<std::string> names;
  dl_iterate_phdr(collect, &names);
  const bool hinted_pass = lib_hint != nullptr && lib_hint[0] != '\0';
  for (int pass = hinted_pass ? 0 : 1; pass < 2; ++pass) {
    for (const std::string& path : names) {
      const bool hinted = hinted_pass && path.find(lib_hint) != std::string::npos;
      if (pass == 0 && !hinted) continue;
      if (pass == 1 && hinted) continue;  // searched in pass 0
      void* handle = dlopen(path.c_str(), RTLD_NOLOAD | RTLD_LAZY);
      if (handle == nullptr) {
        (void)dlerror();  // not the program's error to see
        continue;
      }
      void* sym = lookup(handle, name, version);
      if (sym != nullptr && !address_in_probe(sym)) {
        sym = found(sym, name, "in a loaded object RTLD_NEXT cannot see");
        dlclose(handle);  // keep_mapped holds the defining object's own reference
        return sym;
      }
      dlclose(handle);  // takes back the reference RTLD_NOLOAD took; the object stays loaded
    }
  }
  (void)dlerror();  // a failed dlsym/dlvsym sets it: not the program's error to see
  return nullptr;
}
}  // namespace

void* resolve_real(const char* name, const char* lib_hint, const char* version) {
  if (version != nullptr && version[0] != '\0') {
    if (void* fn = resolve_in(name, lib_hint, version)) return fn;
  }
  return resolve_in(name, lib_hint, nullptr);
}

}  // namespace fpscope::probe
