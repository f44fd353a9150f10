/* A profiler-like CUPTI client next to the probe's own subscriber. The client is
   cupti_profiler_client.c, loaded RTLD_LOCAL from the path in argv[2], as Python loads PyTorch.
   Usage:
     cupti_profiler late CLIENT   the probe subscribes first (InitializeInjection, as the driver
                                  would call it), then the client subscribes, as torch.profiler
                                  does when profiling starts after the first cuBLAS call;
     cupti_profiler first CLIENT  the client subscribes first, then the probe starts.
   Prints "profiler_subscribe <CUptiResult>" and "holder <name>" (who holds the slot at the end).
   Exit 0 when the client holds CUPTI at the end, 1 otherwise, 2 on a usage or loading error. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static void start_probe(void) {
  /* The probe's CUDA_INJECTION64_PATH entry point, when it is preloaded: it subscribes. */
  int (*init)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "InitializeInjection");
  if (init != NULL) init();
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const int late = strcmp(argv[1], "late") == 0;
  void* client = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
  if (client == NULL) {
    fprintf(stderr, "cupti_profiler: %s\n", dlerror());
    return 2;
  }
  int (*subscribe)(void) = (int (*)(void))dlsym(client, "profiler_subscribe");
  const char* (*holder)(void) = (const char* (*)(void))dlsym(client, "profiler_holder");
  if (subscribe == NULL || holder == NULL) return 2;
  if (late) start_probe();
  const int r = subscribe();
  printf("profiler_subscribe %d\n", r);
  if (!late) start_probe();
  printf("holder %s\n", holder());
  return r == 0 && strcmp(holder(), "<not provided>") == 0 ? 0 : 1;
}
