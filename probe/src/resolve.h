// Lazy resolution of the real BLAS functions behind the probe's hooks (docs/design.md "The probe").
//
// resolve_real(name) returns the definition of `name` that the program would have called without
// the probe, or nullptr when no loaded object defines one:
//  1. dlsym(RTLD_NEXT, name): the next definition in the global scope;
//  2. otherwise every loaded object in load order (dl_iterate_phdr + dlopen(RTLD_NOLOAD) + dlsym),
//     because Python loads extension modules (and with them libblas under Debian's PyTorch)
//     RTLD_LOCAL, which RTLD_NEXT cannot see. The handle is kept open, so the object (and the
//     cached pointer) stays valid for the life of the process.
// A definition inside the probe itself is never returned. Thread-safe; never loads a new object.
#pragma once

#include <atomic>

namespace fpscope::probe {

void* resolve_real(const char* name);
bool address_in_probe(const void* addr);

// Caches resolve_real(name) in `slot` (a null result is retried on the next call: the library
// may be loaded later).
template <typename Fn, typename Slot>
Fn resolve_cached(Slot& slot, const char* name) {
  Fn fn = slot.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = reinterpret_cast<Fn>(resolve_real(name));
    if (fn != nullptr) slot.store(fn, std::memory_order_release);
  }
  return fn;
}

}  // namespace fpscope::probe
