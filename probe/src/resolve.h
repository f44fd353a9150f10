// Lazy resolution of the real functions behind the probe's hooks, for the host BLAS hooks
// (probe/src) and the cuBLAS/cuBLASLt/CUDA ones (probe/cuda) alike (docs/design.md "The probe").
//
// resolve_real(name, lib_hint) returns the definition of `name` that the program would have called
// without the probe, or nullptr when no loaded object defines one:
//  1. dlsym(RTLD_NEXT, name): the next definition in the global scope;
//  2. otherwise every loaded object (dl_iterate_phdr + dlopen(RTLD_NOLOAD) + dlsym), because
//     Python loads extension modules (and with them libblas or libcublas) RTLD_LOCAL, which
//     RTLD_NEXT cannot see. Objects whose path contains `lib_hint` ("libcublasLt") are searched
//     first, then the others; each group in load order. nullptr: no preference.
// A definition inside the probe itself is never returned. Thread-safe; never loads a new object.
//
// Lifetime: callers cache the address for the rest of the process, so the resolver keeps one
// dlopen reference on the object that defines it, once per object, never released (resolve.cpp
// says why this and not a closed, a per-symbol or an RTLD_NODELETE handle): the program may still
// dlclose the object, it is not unmapped.
//
// Symbol versions: with `version` ("libcublas.so.12"), the definition of that version
// (dlvsym, in the same order), so that a hook bound to one version node of a library calls that
// version's real function when the process holds two majors (probe/cuda/cublas_hooks.def); when
// no loaded object defines `name` in that version (a library without symbol versions), the
// default definition as without `version`.
#pragma once

#include <atomic>

namespace fpscope::probe {

void* resolve_real(const char* name, const char* lib_hint = nullptr, const char* version = nullptr);
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
