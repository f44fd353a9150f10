/* A profiler-like CUPTI client (linked against fake_cupti: its references are
   cuptiSubscribe@libcupti.so.13), next to the probe's own subscriber. Usage:
     cupti_profiler late   the probe subscribes first (InitializeInjection, as the driver would
                           call it), then this program subscribes, as torch.profiler does when
                           profiling starts after the first cuBLAS call;
     cupti_profiler first  this program subscribes first, then the probe starts.
   Prints "profiler_subscribe <CUptiResult>" and "holder <name>" (who holds the slot at the end).
   Exit 0 when the profiler holds CUPTI at the end, 1 otherwise. */
#include <cupti_callbacks.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

const char* fake_cupti_holder(void);

static void start_probe(void) {
  /* The probe's CUDA_INJECTION64_PATH entry point, when it is preloaded: it subscribes. */
  int (*init)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "InitializeInjection");
  if (init != NULL) init();
}

static void CUPTIAPI on_callback(void* u, CUpti_CallbackDomain d, CUpti_CallbackId id,
                                 const void* data) {
  (void)u;
  (void)d;
  (void)id;
  (void)data;
}

int main(int argc, char** argv) {
  const int late = argc > 1 && strcmp(argv[1], "late") == 0;
  CUpti_SubscriberHandle h = NULL;
  if (late) start_probe();
  CUptiResult r = cuptiSubscribe(&h, on_callback, NULL);
  printf("profiler_subscribe %d\n", (int)r);
  if (r == CUPTI_SUCCESS) cuptiEnableCallback(1, h, CUPTI_CB_DOMAIN_RUNTIME_API, 1);
  if (!late) start_probe();
  printf("holder %s\n", fake_cupti_holder());
  return r == CUPTI_SUCCESS && strcmp(fake_cupti_holder(), "<not provided>") == 0 ? 0 : 1;
}
