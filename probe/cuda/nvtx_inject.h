// NVTX v3 injection: NVTX ranges name tensors and mark steps (docs/design.md "The probe", "Steps").
//
// NVTX v3 is header-only. On the first NVTX call of each NVTX client (a program or library that
// includes the nvtx3 headers), its loader dlopens the library named by NVTX_INJECTION64_PATH and
// calls the exported InitializeInjectionNvtx2(getExportTable); the tool then replaces entries of
// the client's function tables. `fpscope record` sets NVTX_INJECTION64_PATH to the probe it
// preloads, so the loader finds the SAME loaded probe (dlopen of an already loaded object).
//
// Contract:
//  - Installed: nvtxRangePushA/W/Ex, nvtxRangePop, nvtxRangeStartA/W/Ex, nvtxDomainRangePushEx,
//    nvtxDomainRangePop, nvtxDomainRangeStartEx, nvtxDomainRegisterStringA/W (so that registered
//    messages can be read). Everything else stays a no-op (NVTX's default). Any domain counts.
//  - Push/Pop ranges are per thread and nested: each pushed range whose message is not a step range
//    is a probe scope (Recorder::scope_push/pop): the innermost one names the GEMMs issued inside
//    it ("<message>.D", "<message>#1.D" for the second GEMM of that name in a step). A pop always
//    undoes exactly what its push did.
//  - A range (pushed or started) whose message is a step range (is_step_range with
//    FPSCOPE_STEP_RANGE, default "step") marks a step at its START (StepSource::Nvtx): the first
//    such range starts step 0 when no GEMM came before it (else it ends step 0), so step k is the
//    program's k-th iteration. Step ranges never name tensors ("step 17" would give every step
//    new names).
//  - Start/End ranges may end on another thread, so they only mark steps, never name tensors.
//  - Ranges opened while the probe itself is running (HookGuard active, e.g. inside a cuBLAS call
//    the probe is recording) are ignored, their pops included.
//  - When the recorder is off (FPSCOPE_DISABLE, no output), InitializeInjectionNvtx2 returns 0 and
//    NVTX keeps every call a no-op.
//  - Return values follow NVTX: push/pop return the thread's range depth (pop of an empty stack:
//    -1), start returns a process-unique nonzero id.
#pragma once

#include <string>
#include <string_view>

namespace fpscope::cuda {

// True when an NVTX message marks a step for `pattern` (FPSCOPE_STEP_RANGE): the message begins
// with the pattern (ASCII case-insensitive) and the next character, if any, is not a letter:
// "step", "Step 12", "step_3", "step:train" match "step"; "stepper", "optimizer step" do not.
// An empty pattern matches nothing.
bool is_step_range(std::string_view message, std::string_view pattern);

// UTF-8 of a NUL-terminated wide (UTF-32 on Linux) string; invalid code points become U+FFFD.
std::string utf8_from_wide(const wchar_t* s);

// The range semantics above on the calling thread, as installed into NVTX (tests call them
// directly). `message` may be null (a range without a message: no name, never a step).
int nvtx_push(const char* message);
int nvtx_pop();
void nvtx_start(const char* message);

}  // namespace fpscope::cuda
