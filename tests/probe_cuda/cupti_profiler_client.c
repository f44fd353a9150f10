/* The profiler side of cupti_profiler.c, in a shared library linked against the stand-in
   libcupti.so.13 and loaded with dlopen(RTLD_LOCAL), as PyTorch's Kineto is: libtorch_cpu.so holds
   the cuptiSubscribe@libcupti.so.13 reference and Python loads it RTLD_LOCAL, so its libcupti is
   not in the global scope (RTLD_NEXT from the probe cannot find it). */
#include <cupti_callbacks.h>

const char* fake_cupti_holder(void);

static void CUPTIAPI on_callback(void* u, CUpti_CallbackDomain d, CUpti_CallbackId id,
                                 const void* data) {
  (void)u;
  (void)d;
  (void)id;
  (void)data;
}

__attribute__((visibility("default"))) int profiler_subscribe(void) {
  CUpti_SubscriberHandle h = NULL;
  CUptiResult r = cuptiSubscribe(&h, on_callback, NULL);
  if (r == CUPTI_SUCCESS) cuptiEnableCallback(1, h, CUPTI_CB_DOMAIN_RUNTIME_API, 1);
  return (int)r;
}

__attribute__((visibility("default"))) const char* profiler_holder(void) {
  return fake_cupti_holder();
}
