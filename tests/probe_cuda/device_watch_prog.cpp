// The device master-weight watch end to end with the host backend standing in for the device:
// the real recorder (its step hooks, its weight-update records, the trace writer) and the real
// device runtime (pipeline(), drain thread, RecorderSink) and device watches (watch_device), all
// statically linked. The test (test_device_watch_e2e.cpp) reads the trace this writes.
//
// Two devices, device 1 broken (its result slots cannot be created). Watches "fc.weight" (FP32)
// and "emb.weight" (BF16) on device 0, and twice something on device 1 (refused, reported once).
// kSteps steps marked with mark_step(Api): in each, the "optimizer" writes weights(s + 1), then
// the step is marked, then the "device" runs what was enqueued. emb.weight is unwatched after
// the boundary of step 3. Prints what the test checks besides the trace.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../../probe/src/recorder.h"
#include "device_runtime.h"
#include "device_watch.h"
#include "device_watch_data.h"
#include "host_backend.h"

using namespace fpscope;
using namespace fpscope::cuda;

namespace {

testing::HostBackend* g_backend = nullptr;
void* const kStream = reinterpret_cast<void*>(0x71);

std::unique_ptr<Backend> host_factory(int slots, std::string*) {
  auto b = std::make_unique<testing::HostBackend>(slots, 2);
  b->broken_devices.insert(1);
  g_backend = b.get();
  return b;
}

std::vector<float> g_fc;
std::vector<uint16_t> g_emb;

void optimizer(int k) {  // the weights become weights(k), in place (the watched memory)
  const std::vector<float> w = watch_data::weights(k);
  std::memcpy(g_fc.data(), w.data(), w.size() * sizeof(float));
  for (size_t i = 0; i < g_fc.size(); ++i) g_emb[i] = watch_data::to_bf16(g_fc[i]);
}

}  // namespace

int main() {
  set_backend_factory_for_testing(host_factory);
  probe::Recorder* rec = probe::Recorder::get();
  if (rec == nullptr) return 3;
  g_fc.resize(watch_data::kElements);
  g_emb.resize(watch_data::kElements);
  optimizer(0);
  const int a = static_cast<int>(
      watch_device("fc.weight", g_fc.data(), g_fc.size(), Format::FP32, 0, kStream));
  const int b = static_cast<int>(
      watch_device("emb.weight", g_emb.data(), g_emb.size(), Format::BF16, 0, kStream));
  const int c =
      static_cast<int>(watch_device("other", g_fc.data(), g_fc.size(), Format::FP32, 1, kStream));
  const int d =
      static_cast<int>(watch_device("other2", g_fc.data(), g_fc.size(), Format::FP32, 1, kStream));
  std::printf("watch %d %d %d %d\n", a, b, c, d);
  if (g_backend == nullptr) return 4;
  g_backend->run_all();  // the watch-time snapshots
  for (int s = 0; s < watch_data::kSteps; ++s) {
    optimizer(s + 1);
    rec->mark_step(trace::StepSource::Api);
    g_backend->run_all();  // the device catches up (the drain thread delivers)
    if (s == 3) std::printf("unwatch %d\n", unwatch_device("emb.weight") ? 1 : 0);
  }
  std::printf("live watches %d\n", g_backend->live_watches());
  std::printf("ensure calls device 1: %d\n", g_backend->ensure_calls[1]);
  std::fflush(stdout);
  return 0;  // the exit drain delivers what the drain thread has not
}
