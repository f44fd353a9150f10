// Lazy resolution of the real cuBLAS/cuBLASLt/CUDA functions behind the probe's hooks.
//
// Contract: resolve_real(name, lib_hint) returns the address of the definition of `name` that the
// program would have called without the probe, or nullptr when no loaded object defines it.
//  1. dlsym(RTLD_NEXT): the next definition in the global scope after the probe.
//  2. Otherwise (the library was loaded RTLD_LOCAL, e.g. by a Python extension module, and is
//     invisible to RTLD_NEXT - docs/design.md pitfall), every loaded object is searched
//     (dl_iterate_phdr + dlopen(RTLD_NOLOAD)); objects whose path contains `lib_hint` first.
// A definition inside the probe itself is never returned. Thread-safe; never loads a library.
#pragma once

namespace fpscope::cuda {

void* resolve_real(const char* name, const char* lib_hint);

// True when `addr` lies in the object that holds the probe's CUDA code.
bool address_in_probe(const void* addr);

}  // namespace fpscope::cuda
