#include "cupti_hooks.h"

#include <cuda.h>
#include <cuda_runtime_api.h>
#include <cupti_callbacks.h>
#include <cupti_driver_cbid.h>
#include <cupti_result.h>
#include <cupti_runtime_cbid.h>
#include <dlfcn.h>
#include <generated_cuda_runtime_api_meta.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>

#include "../src/log.h"
#include "../src/recorder.h"
#include "device_runtime.h"
#include "driver_api.h"
#include "kernel_match.h"
#include "settings.h"

namespace fpscope::cuda {
namespace {

using SubscribeFn = CUptiResult (*)(CUpti_SubscriberHandle*, CUpti_CallbackFunc, void*);
using SubscribeV2Fn = CUptiResult (*)(CUpti_SubscriberHandle*, CUpti_CallbackFunc, void*,
                                      CUpti_SubscriberParams*);
using EnableCallbackFn = CUptiResult (*)(uint32_t, CUpti_SubscriberHandle, CUpti_CallbackDomain,
                                         CUpti_CallbackId);
using ResultStringFn = CUptiResult (*)(CUptiResult, const char**);
using UnsubscribeFn = CUptiResult (*)(CUpti_SubscriberHandle);

struct State {
  std::once_flag once;
  std::atomic<bool> subscribed{false};
  std::atomic<bool> handed_over{false};  // another subscriber asked for CUPTI and got it
  std::mutex sub_mu;                     // the subscriber handle and its library
  void* lib = nullptr;
  CUpti_SubscriberHandle sub = nullptr;
  std::string optimizer_pattern = kDefaultOptimizerPattern;
  std::atomic<bool> optimizer_step_pending{false};
  std::atomic<uint64_t> loss_scale{0}, unknown_abi{0}, unscale{0}, optimizer{0};
  std::atomic<bool> warned_abi{false};
};
State g;

// Per launching thread: the ticket of a loss-scale group opened at API enter.
thread_local int t_loss_ticket = -1;
thread_local int t_loss_device = -1;
// Set while a runtime launch callback is in progress: the driver launch beneath it is the same one.
thread_local bool t_in_runtime_launch = false;

// Driver launch parameter blocks, as in CUDA's generated_cuda_meta.h (that header needs the
// driver's internal _v1 typedefs, so the two layouts are restated here; they are ABI).
struct DrvLaunchKernelParams {
  CUfunction f;
  unsigned int gridDimX, gridDimY, gridDimZ;
  unsigned int blockDimX, blockDimY, blockDimZ;
  unsigned int sharedMemBytes;
  CUstream hStream;
  void** kernelParams;
  void** extra;
};
struct DrvLaunchKernelExParams {
  const CUlaunchConfig* config;
  CUfunction f;
  void** kernelParams;
  void** extra;
};

struct Launch {
  const void* handle = nullptr;  // the launched function (CUfunction / runtime stub), or null
  const char* name = nullptr;
  void* stream = nullptr;
  void** args = nullptr;
};

// Extracts the launched kernel's name, stream and argument array; false for a cbid we do not read.
bool read_launch(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, const CUpti_CallbackData* d,
                 Launch* out) {
  out->name = d->symbolName;
  if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
    switch (cbid) {
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000: {
        auto* p = static_cast<const cudaLaunchKernel_v7000_params*>(d->functionParams);
        out->handle = p->func;
        out->stream = p->stream;
        out->args = p->args;
        return true;
      }
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060: {
        auto* p = static_cast<const cudaLaunchKernelExC_v11060_params*>(d->functionParams);
        out->handle = p->func;
        out->stream = p->config != nullptr ? p->config->stream : nullptr;
        out->args = p->args;
        return true;
      }
      default:
        return false;
    }
  }
  switch (cbid) {
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel:
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz: {
      auto* p = static_cast<const DrvLaunchKernelParams*>(d->functionParams);
      out->handle = p->f;
      out->stream = p->hStream;
      out->args = p->kernelParams;
      return true;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx:
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz: {
      auto* p = static_cast<const DrvLaunchKernelExParams*>(d->functionParams);
      out->handle = p->f;
      out->stream = p->config != nullptr ? p->config->hStream : nullptr;
      out->args = p->kernelParams;
      return true;
    }
    default:
      return false;
  }
}

void on_loss_scale_kernel(const CUpti_CallbackData* d, const Launch& l) {
  Pipeline* p = pipeline();
  probe::Recorder* rec = probe::Recorder::get();
  if (p == nullptr || rec == nullptr || l.args == nullptr) return;
  const void* scale = *static_cast<void* const*>(l.args[kAmpScaleArg]);
  const void* found_inf = *static_cast<void* const*>(l.args[kAmpFoundInfArg]);
  if (d->callbackSite == CUPTI_API_ENTER) {
    const int dev = current_device();
    if (dev < 0) return;
    ObsMeta meta;
    meta.operand = kLossScaleGroup;
    meta.step = rec->current_step();
    meta.time_ns = rec->now_ns();
    meta.device = dev;
    meta.stream = reinterpret_cast<uint64_t>(l.stream);
    t_loss_ticket = p->open_scalars(dev, l.stream, meta);
    t_loss_device = dev;
    if (t_loss_ticket >= 0) p->copy_scalar(t_loss_ticket, {dev, l.stream, scale, 0});
    return;
  }
  // API exit: the kernel is enqueued; what we enqueue now runs after it.
  if (t_loss_ticket >= 0) {
    p->copy_scalar(t_loss_ticket, {t_loss_device, l.stream, scale, 1});
    p->copy_scalar(t_loss_ticket, {t_loss_device, l.stream, found_inf, 2});
    p->close_scalars(t_loss_ticket, l.stream);
    t_loss_ticket = -1;
  }
  g.loss_scale.fetch_add(1, std::memory_order_relaxed);
  rec->mark_step(trace::StepSource::LossScaleKernel);
}

void CUPTIAPI callback(void*, CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
                       const void* data) {
  if (domain != CUPTI_CB_DOMAIN_RUNTIME_API && domain != CUPTI_CB_DOMAIN_DRIVER_API) return;
  if (probe::HookGuard::active()) return;  // the probe's own launches, cuBLAS inside a hook
  const auto* d = static_cast<const CUpti_CallbackData*>(data);
  if (domain == CUPTI_CB_DOMAIN_DRIVER_API && t_in_runtime_launch) return;
  Launch l;
  const bool known = read_launch(domain, cbid, d, &l);
  if (domain == CUPTI_CB_DOMAIN_RUNTIME_API)
    t_in_runtime_launch = known && d->callbackSite == CUPTI_API_ENTER;
  if (!known || l.name == nullptr) return;
  thread_local KernelClassCache t_kinds;
  const KernelKind kind =
      t_kinds.get(l.handle, [&] { return classify_kernel(l.name, g.optimizer_pattern); });
  switch (kind) {
    case KernelKind::LossScaleUpdate: {
      probe::HookGuard guard;  // our copies must not be seen as application work
      on_loss_scale_kernel(d, l);
      break;
    }
    case KernelKind::LossScaleUnknownAbi:
      if (d->callbackSite == CUPTI_API_EXIT) {
        g.unknown_abi.fetch_add(1, std::memory_order_relaxed);
        if (!g.warned_abi.exchange(true))
          FPSCOPE_LOG(Warn, "loss-scale kernel with an unknown signature (%s): not recorded",
                      l.name);
      }
      break;
    case KernelKind::Unscale:
      if (d->callbackSite == CUPTI_API_EXIT) g.unscale.fetch_add(1, std::memory_order_relaxed);
      break;
    case KernelKind::Optimizer:
      if (d->callbackSite == CUPTI_API_EXIT) {
        g.optimizer.fetch_add(1, std::memory_order_relaxed);
        g.optimizer_step_pending.store(true, std::memory_order_release);
      }
      break;
    case KernelKind::Other:
      break;
  }
}

// The CUDA majors whose CUPTI the probe knows (newest first).
constexpr int kCuptiMajors[] = {13, 12};

// The major of the libcudart the program loaded (0: none found, e.g. a statically linked runtime).
int loaded_runtime_major() {
  for (int major : kCuptiMajors) {
    const std::string name = "libcudart.so." + std::to_string(major);
    if (void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD)) {
      dlclose(h);  // drops only the reference NOLOAD took
      return major;
    }
  }
  return 0;
}

void* open_cupti() {
  if (const char* path = std::getenv("FPSCOPE_CUPTI_LIB"); path != nullptr && *path != '\0')
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
  const DriverApi* d = driver();
  const std::vector<std::string> names =
      cupti_candidates(loaded_runtime_major(), d != nullptr ? d->version : 0);
  for (const std::string& n : names)
    if (void* h = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD)) {
      FPSCOPE_LOG(Info, "CUPTI: using the %s already loaded", n.c_str());
      return h;
    }
  for (const std::string& n : names)
    if (void* h = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      FPSCOPE_LOG(Info, "CUPTI: loaded %s", n.c_str());
      return h;
    }
  return nullptr;
}

void subscribe(const char* who) {
  if (const char* pat = std::getenv("FPSCOPE_OPTIMIZER_PATTERN"); pat != nullptr)
    g.optimizer_pattern = pat;
  std::lock_guard<std::mutex> lock(g.sub_mu);
  void* lib = open_cupti();
  if (lib == nullptr) {
    FPSCOPE_LOG(Warn,
                "CUPTI not found (set FPSCOPE_CUPTI_LIB): loss-scale kernels and kernel "
                "step marks are not recorded; cuBLAS hooks stay active");
    return;
  }
  auto v2 = reinterpret_cast<SubscribeV2Fn>(dlsym(lib, "cuptiSubscribe_v2"));
  auto v1 = reinterpret_cast<SubscribeFn>(dlsym(lib, "cuptiSubscribe"));
  auto enable = reinterpret_cast<EnableCallbackFn>(dlsym(lib, "cuptiEnableCallback"));
  auto result_string = reinterpret_cast<ResultStringFn>(dlsym(lib, "cuptiGetResultString"));
  if ((v2 == nullptr && v1 == nullptr) || enable == nullptr) {
    FPSCOPE_LOG(Warn, "this libcupti lacks cuptiSubscribe/cuptiEnableCallback: CUPTI off");
    return;
  }
  CUpti_SubscriberHandle sub = nullptr;
  char holder[CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN + 64] = {0};
  CUptiResult r;
  if (v2 != nullptr) {
    CUpti_SubscriberParams params{};
    params.structSize = CUpti_SubscriberParams_STRUCT_SIZE;
    params.subscriberName = "fpscope";
    params.oldSubscriberName = holder;
    params.oldSubscriberSize = sizeof holder;
    r = v2(&sub, callback, nullptr, &params);
  } else {
    r = v1(&sub, callback, nullptr);
  }
  if (r != CUPTI_SUCCESS) {
    const char* msg = "?";
    if (result_string != nullptr) result_string(r, &msg);
    if (r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) {
      FPSCOPE_LOG(Warn,
                  "CUPTI is held by another tool (%s): fpscope keeps its cuBLAS hooks but records "
                  "no loss-scale kernels and no kernel step marks",
                  holder[0] != '\0' ? holder : "e.g. Nsight Systems, a profiler, cuda-gdb");
    } else {
      FPSCOPE_LOG(Warn, "cuptiSubscribe failed (%s): CUPTI callbacks off", msg);
    }
    if (probe::Recorder* rec = probe::Recorder::get())
      rec->event(trace::EventLevel::Warning, std::string("cuda: CUPTI unavailable: ") + msg);
    return;
  }
  const CUpti_CallbackId runtime_ids[] = {CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000,
                                          CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000,
                                          CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060,
                                          CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060};
  const CUpti_CallbackId driver_ids[] = {
      CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz,
      CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz};
  int enabled = 0;
  for (CUpti_CallbackId id : runtime_ids)
    enabled += enable(1, sub, CUPTI_CB_DOMAIN_RUNTIME_API, id) == CUPTI_SUCCESS ? 1 : 0;
  for (CUpti_CallbackId id : driver_ids)
    enabled += enable(1, sub, CUPTI_CB_DOMAIN_DRIVER_API, id) == CUPTI_SUCCESS ? 1 : 0;
  g.lib = lib;
  g.sub = sub;
  g.subscribed = enabled > 0;
  FPSCOPE_LOG(Info, "CUPTI subscribed (%s), %d launch callbacks enabled", who, enabled);
}

// Another CUPTI client (torch.profiler's Kineto, a tool loaded later) asks for the one subscriber
// slot: the probe gives its own up first, so that the profiler works (issue 16 item 7: never
// break the profiler). Said once, in the log and in the trace, with what is lost from here on.
void hand_over(const char* api) {
  std::lock_guard<std::mutex> lock(g.sub_mu);
  if (g.sub == nullptr || g.lib == nullptr) return;
  auto unsubscribe = reinterpret_cast<UnsubscribeFn>(dlsym(g.lib, "cuptiUnsubscribe"));
  if (unsubscribe == nullptr || unsubscribe(g.sub) != CUPTI_SUCCESS) {
    FPSCOPE_LOG(Warn, "another tool called %s and fpscope could not release CUPTI", api);
    return;
  }
  g.sub = nullptr;
  g.subscribed = false;
  g.handed_over = true;
  FPSCOPE_LOG(Warn,
              "another tool (e.g. torch.profiler) called %s: fpscope released CUPTI to it; from "
              "here on no loss-scale kernels and no kernel step marks are recorded (cuBLAS hooks "
              "stay active)",
              api);
  if (probe::Recorder* rec = probe::Recorder::get())
    rec->event(trace::EventLevel::Warning,
               std::string("cuda: CUPTI released to another subscriber (") + api +
                   "): loss-scale kernels and kernel step marks not recorded from here on");
}

// The real cuptiSubscribe[_v2] of CUPTI `version` ("libcupti.so.13"), for the interposers below:
// the next definition after the probe in the global lookup order, of that version node (else
// any); else the one in the libcupti already loaded under that name. The second way is the usual
// one: PyTorch's libcupti is a dependency of libtorch_cpu.so, which Python loads RTLD_LOCAL, so
// RTLD_NEXT cannot see it (found on an H200: the profiler's call failed with
// CUPTI_ERROR_NOT_INITIALIZED until this fallback).
template <class Fn>
Fn next_cupti(const char* name, const char* version) {
  void* f = dlvsym(RTLD_NEXT, name, version);
  if (f == nullptr) f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) {
    if (void* lib = dlopen(version, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD)) {
      f = dlvsym(lib, name, version);
      if (f == nullptr) f = dlsym(lib, name);
      dlclose(lib);  // only drops the reference NOLOAD took: the library stays loaded
    }
  }
  return reinterpret_cast<Fn>(f);
}

CUptiResult interposed_subscribe(const char* version, CUpti_SubscriberHandle* subscriber,
                                 CUpti_CallbackFunc callback, void* userdata) {
  auto real = next_cupti<SubscribeFn>("cuptiSubscribe", version);
  if (real == nullptr) return CUPTI_ERROR_NOT_INITIALIZED;
  hand_over("cuptiSubscribe");
  return real(subscriber, callback, userdata);
}
CUptiResult interposed_subscribe_v2(const char* version, CUpti_SubscriberHandle* subscriber,
                                    CUpti_CallbackFunc callback, void* userdata,
                                    CUpti_SubscriberParams* params) {
  auto real = next_cupti<SubscribeV2Fn>("cuptiSubscribe_v2", version);
  if (real == nullptr) return CUPTI_ERROR_NOT_INITIALIZED;
  hand_over("cuptiSubscribe_v2");
  return real(subscriber, callback, userdata, params);
}

}  // namespace

void start_cupti(const char* who) {
  std::call_once(g.once, [who] {
    // FPSCOPE_CUPTI=0: never subscribe (CUPTI allows one subscriber: torch.profiler/Kineto or
    // Nsight keep theirs). Said once, in the log and in the trace.
    if (!cupti_setting()) {
      FPSCOPE_LOG(Info,
                  "FPSCOPE_CUPTI=0: CUPTI not used (no loss-scale kernels, no kernel step "
                  "marks)");
      if (probe::Recorder* rec = probe::Recorder::get())
        rec->event(trace::EventLevel::Info, "cuda: CUPTI off (FPSCOPE_CUPTI=0)");
      return;
    }
    subscribe(who);
  });
}

void on_gemm_issued() {
  start_cupti("first cuBLAS call");
  // A plain load first: the exchange (a write) only when a boundary is pending, so that GEMMs on
  // several threads do not bounce this cache line on every call.
  if (g.optimizer_step_pending.load(std::memory_order_acquire) &&
      g.optimizer_step_pending.exchange(false, std::memory_order_acq_rel)) {
    if (probe::Recorder* rec = probe::Recorder::get())
      rec->mark_step(trace::StepSource::OptimizerKernel);
  }
}

CuptiCounters cupti_counters() {
  CuptiCounters c;
  c.loss_scale_kernels = g.loss_scale.load();
  c.unknown_abi_kernels = g.unknown_abi.load();
  c.unscale_kernels = g.unscale.load();
  c.optimizer_kernels = g.optimizer.load();
  c.subscribed = g.subscribed.load();
  c.handed_over = g.handed_over.load();
  return c;
}

std::vector<std::string> cupti_candidates(int runtime_major, int driver_version) {
  std::vector<std::string> names;
  const int driver_major = driver_version / 1000;
  if (runtime_major > 0) names.push_back("libcupti.so." + std::to_string(runtime_major));
  for (int major : kCuptiMajors)
    if (major != runtime_major && (driver_major == 0 || major <= driver_major))
      names.push_back("libcupti.so." + std::to_string(major));
  names.push_back("libcupti.so");
  return names;
}

}  // namespace fpscope::cuda

// cuptiSubscribe / cuptiSubscribe_v2 of the program's other CUPTI clients land here (LD_PRELOAD
// interposition; the probe's own subscribe calls the library's through dlsym on its handle). One
// definition per CUPTI version node, bound like the cuBLAS hooks (hooks_cublas.cpp): the default
// (@@) one also takes unversioned references; each forwards to its own version's function. The
// nodes are in probe/cuda/exports.map.
#define FPSCOPE_CUPTI_INTERPOSER(Major, Binding)                                                  \
  extern "C" __attribute__((visibility("default"))) CUptiResult fpscope_cuptiSubscribe_v##Major(  \
      CUpti_SubscriberHandle* s, CUpti_CallbackFunc f, void* u) {                                 \
    return fpscope::cuda::interposed_subscribe("libcupti.so." #Major, s, f, u);                   \
  }                                                                                               \
  extern "C" __attribute__((visibility("default")))                                               \
  CUptiResult fpscope_cuptiSubscribe_v2_v##Major(CUpti_SubscriberHandle* s, CUpti_CallbackFunc f, \
                                                 void* u, CUpti_SubscriberParams* p) {            \
    return fpscope::cuda::interposed_subscribe_v2("libcupti.so." #Major, s, f, u, p);             \
  }                                                                                               \
  __asm__(".symver fpscope_cuptiSubscribe_v" #Major ", cuptiSubscribe" Binding                    \
          "libcupti.so." #Major);                                                                 \
  __asm__(".symver fpscope_cuptiSubscribe_v2_v" #Major ", cuptiSubscribe_v2" Binding              \
          "libcupti.so." #Major);
FPSCOPE_CUPTI_INTERPOSER(13, "@@")
FPSCOPE_CUPTI_INTERPOSER(12, "@")
#undef FPSCOPE_CUPTI_INTERPOSER

// CUDA_INJECTION64_PATH entry point: the driver calls it from cuInit. Only CUPTI is available in
// this mode when the library was not also preloaded (the cuBLAS hooks interpose through LD_PRELOAD
// only). Returns 1 (success) in every case: the probe never fails the program's cuInit.
extern "C" __attribute__((visibility("default"))) int InitializeInjection(void) {
  fpscope::cuda::start_cupti("InitializeInjection");
  return 1;
}
