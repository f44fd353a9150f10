// CUPTI subscriber of the probe: kernel-launch callbacks (runtime: cudaLaunchKernel[_ptsz],
// cudaLaunchKernelExC[_ptsz]; driver: cuLaunchKernel[_ptsz], cuLaunchKernelEx[_ptsz]) that find
// the kernels of the mixed-precision recipe (kernel_match.h).
//
// Contract:
//  - start_cupti() is idempotent and cheap after the first call. It loads libcupti at run time
//    (FPSCOPE_CUPTI_LIB, else the first of cupti_candidates() already loaded, else the first that
//    loads; the log names the one used), subscribes
//    with cuptiSubscribe_v2 when the library has it (else cuptiSubscribe) and enables only the
//    launch callbacks above. When another tool holds CUPTI
//    (CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) it logs ONE warning naming that tool and the
//    probe keeps its cuBLAS hooks; loss scales and kernel step marks are then unavailable.
//  - CUPTI has one subscriber slot (CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED): when another
//    client of the process calls cuptiSubscribe[_v2] later (torch.profiler's Kineto starts at
//    profile time), the probe's interposer unsubscribes the probe first and forwards the call, so
//    the profiler works; one warning and a trace event say so, and loss-scale kernels and kernel
//    step marks stop being recorded (the Python integration's steps are unaffected).
//  - Loss-scale update kernel: a copy of *current_scale is enqueued on the kernel's stream BEFORE
//    the launch (API enter) and copies of the updated scale and found_inf after it (API exit), into
//    a pinned slot; the drain thread records {scale, found_inf, next_scale} (LossScaleSource::
//    Kernel) for the step in which the kernel was launched, then the step ends
//    (StepSource::LossScaleKernel). Never synchronizes.
//  - Optimizer-pattern kernels end the step at the next GEMM (one boundary per run of matches).
//  - Launches from inside the probe or nested in an already handled runtime launch are ignored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fpscope::cuda {

// The libcupti sonames to try, best first (issue 16 item 7): the major of the CUDA runtime the
// program loaded (libcudart.so.<major>; CUPTI's runtime callback ids and parameter structs are
// those of its own CUDA version), then the other majors the probe knows, newest first, that the
// driver supports (a CUPTI newer than the driver fails to subscribe), then the unversioned name.
// 0 for an unknown runtime major or driver version (cuDriverGetVersion's 12080 form).
std::vector<std::string> cupti_candidates(int runtime_major, int driver_version);

// `who` says what started it, for the log ("InitializeInjection", "first cuBLAS call").
void start_cupti(const char* who);
// Called by the GEMM path at every recorded GEMM (starts CUPTI lazily, applies pending step ends).
void on_gemm_issued();

struct CuptiCounters {
  uint64_t loss_scale_kernels = 0;
  uint64_t unknown_abi_kernels = 0;
  uint64_t unscale_kernels = 0;
  uint64_t optimizer_kernels = 0;
  bool subscribed = false;
  bool handed_over = false;  // released to another subscriber (a profiler started later)
};
CuptiCounters cupti_counters();

}  // namespace fpscope::cuda
