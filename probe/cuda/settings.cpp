#include "settings.h"

#include <strings.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "../src/log.h"
#include "fpscope/stats.h"

namespace fpscope::cuda {
namespace {

bool unset(const char* v) {
  return v == nullptr || *v == '\0';
}

// Whole-string decimal integer; false when it is not one (or overflows long).
bool to_long(const char* v, long* out) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || errno == ERANGE) return false;
  *out = x;
  return true;
}

}  // namespace

int parse_cuda_slots(const char* v) {
  if (unset(v)) return kDefaultCudaSlots;
  long x = 0;
  if (!to_long(v, &x) || x <= 0) {
    FPSCOPE_LOG(Warn, "FPSCOPE_CUDA_SLOTS=%s is not a positive integer: using %d", v,
                kDefaultCudaSlots);
    return kDefaultCudaSlots;
  }
  if (x > kMaxCudaSlots) {
    FPSCOPE_LOG(Warn,
                "FPSCOPE_CUDA_SLOTS=%s is above the maximum %d (each slot takes ~%zu bytes of "
                "device and of pinned host memory per GPU): using %d",
                v, kMaxCudaSlots, sizeof(TensorStats), kMaxCudaSlots);
    return kMaxCudaSlots;
  }
  return static_cast<int>(x);
}

bool parse_cuda_graphs(const char* v) {
  if (unset(v)) return false;
  for (const char* f : {"0", "false", "off", "no"})
    if (strcasecmp(v, f) == 0) return false;
  // Removed (issue 16 item 3): a stats launch captured into a graph writes its result slot at
  // every replay, long after the slot was delivered and reused. Any other value warns once.
  FPSCOPE_LOG(Warn,
              "FPSCOPE_CUDA_GRAPHS=%s: measuring GEMMs captured into CUDA graphs is not supported "
              "(a replay would write into a result slot released long before); they are skipped "
              "and counted",
              v);
  return false;
}

bool parse_cupti(const char* v) {
  if (unset(v)) return true;
  for (const char* t : {"1", "true", "on", "yes"})
    if (strcasecmp(v, t) == 0) return true;
  for (const char* f : {"0", "false", "off", "no"})
    if (strcasecmp(v, f) == 0) return false;
  FPSCOPE_LOG(Warn, "FPSCOPE_CUPTI=%s is not one of 0/1, true/false, on/off, yes/no: using 1", v);
  return true;
}

long parse_drain_ms(const char* v) {
  if (unset(v)) return kDefaultDrainMs;
  long x = 0;
  if (!to_long(v, &x) || x < 0) {
    FPSCOPE_LOG(Warn, "FPSCOPE_CUDA_DRAIN_MS=%s is not a non-negative integer: using %ld", v,
                kDefaultDrainMs);
    return kDefaultDrainMs;
  }
  if (x > kMaxDrainMs) {
    FPSCOPE_LOG(Warn, "FPSCOPE_CUDA_DRAIN_MS=%s is above the maximum %ld: using %ld", v,
                kMaxDrainMs, kMaxDrainMs);
    return kMaxDrainMs;
  }
  return x;
}

std::string parse_step_range(const char* v) {
  return unset(v) ? std::string(kDefaultStepRange) : std::string(v);
}

int cuda_slots_setting() {
  static const int v = parse_cuda_slots(std::getenv("FPSCOPE_CUDA_SLOTS"));
  return v;
}
bool cuda_graphs_setting() {
  static const bool v = parse_cuda_graphs(std::getenv("FPSCOPE_CUDA_GRAPHS"));
  return v;
}
bool cupti_setting() {
  static const bool v = parse_cupti(std::getenv("FPSCOPE_CUPTI"));
  return v;
}
long drain_ms_setting() {
  static const long v = parse_drain_ms(std::getenv("FPSCOPE_CUDA_DRAIN_MS"));
  return v;
}
const std::string& step_range_setting() {
  static const std::string v = parse_step_range(std::getenv("FPSCOPE_STEP_RANGE"));
  return v;
}

}  // namespace fpscope::cuda
