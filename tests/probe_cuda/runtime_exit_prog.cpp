// The probe's CUDA exit path (device_runtime.h: shutdown) with the host backend standing in for
// the device: the real recorder and the real device runtime (pipeline(), RecorderSink, exit drain),
// statically linked. The test (test_runtime_exit.cpp) reads the trace this writes.
//
//   runtime_exit_prog recorder-first|pipeline-first|stuck|none
// With 4 slots (FPSCOPE_CUDA_SLOTS=4): 4 GEMM D operands submitted (amax 1, 2, 3, 4); the first two
// complete at once (the drain thread delivers them), the last two complete 150 ms later on a
// helper thread ("stuck": never), i.e. while the exit drain waits; one more submission finds the
// ring full, one a capturing stream, and two operands are counted as unsupported. main() then
// returns: the exit drain must deliver the late results, write the skip counts as trace events
// and stop the drain thread, before the recorder closes the trace. "pipeline-first" creates the
// CUDA runtime before the recorder (so the recorder's atexit handler runs first and the drain
// runs as its shutdown hook). "none" never creates the CUDA runtime.
// The last atexit handler prints "polls before A after B": the drain thread must have stopped.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../../probe/src/recorder.h"
#include "device_runtime.h"
#include "host_backend.h"

using namespace fpscope;
using namespace fpscope::cuda;

namespace {

testing::HostBackend* g_backend = nullptr;
void* const kStream = reinterpret_cast<void*>(0x51);
void* const kCapturing = reinterpret_cast<void*>(0x52);

std::unique_ptr<Backend> host_factory(int slots, std::string*) {
  auto b = std::make_unique<testing::HostBackend>(slots, 1);
  b->capturing.insert(kCapturing);
  g_backend = b.get();
  return b;
}

void check_drain_stopped() {
  if (g_backend == nullptr) {
    std::printf("no backend\n");
    return;
  }
  const uint64_t before = g_backend->polls;
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  std::printf("polls before %llu after %llu\n", static_cast<unsigned long long>(before),
              static_cast<unsigned long long>(g_backend->polls));
  std::fflush(stdout);
}

std::vector<std::vector<float>> g_data;  // operands, alive until exit

Submit submit(probe::Recorder* rec, float amax, void* stream) {
  probe::GemmDesc d;
  d.op = "cublasGemmEx";
  d.sig.m = 8;
  d.sig.n = 4;
  d.sig.k = static_cast<int64_t>(amax);  // distinct signature per call
  d.num_operands = 1;
  d.operands[0].role = trace::Role::D;
  d.operands[0].dtype = Format::FP32;
  d.operands[0].rows = 8;
  d.operands[0].cols = 4;
  d.operands[0].ld = 8;
  d.device = 0;
  d.stream = reinterpret_cast<uint64_t>(stream);
  const probe::GemmTicket t = rec->begin_gemm(d);
  if (!t.any || !t.sampled[0]) {
    std::fprintf(stderr, "runtime_exit_prog: the recorder did not sample the call\n");
    std::exit(3);
  }
  const uint64_t cookie = register_call(t, 1);
  g_data.emplace_back(32, 0.5f);
  g_data.back()[5] = -amax;
  StatsJob job;
  job.device = 0;
  job.stream = stream;
  job.data = g_data.back().data();
  job.rows = 8;
  job.cols = 4;
  job.ld = 8;
  ObsMeta meta;
  meta.cookie = cookie;
  meta.operand = 0;
  meta.tensor = t.tensor[0];
  meta.step = t.step;
  meta.seq = t.seq;
  meta.stream = d.stream;
  meta.time_ns = t.time_ns;
  const Submit s = pipeline()->submit_stats(job, meta);
  if (s != Submit::Ok) abandon_operand(cookie, 0);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  g_data.reserve(16);
  const std::string mode = argc > 1 ? argv[1] : "";
  std::atexit(check_drain_stopped);  // registered first: runs last
  set_backend_factory_for_testing(host_factory);
  probe::Recorder* rec = nullptr;
  if (mode == "none") {
    rec = probe::Recorder::get();
    std::printf("mode none\n");
    return rec != nullptr ? 0 : 3;
  }
  if (mode == "pipeline-first") {
    if (pipeline() == nullptr) return 3;
    rec = probe::Recorder::get();
  } else {
    rec = probe::Recorder::get();
    if (rec == nullptr || pipeline() == nullptr) return 3;
  }
  if (rec == nullptr) return 3;
  int ok = 0;
  for (int i = 1; i <= 4; ++i) ok += submit(rec, static_cast<float>(i), kStream) == Submit::Ok;
  const bool ring_full = submit(rec, 5.0f, kStream) == Submit::RingFull;
  const bool capturing = submit(rec, 6.0f, kCapturing) == Submit::Capturing;
  count_unsupported_operand();
  count_unsupported_operand();
  std::printf("submitted %d ring_full %d capturing %d\n", ok, ring_full, capturing);
  g_backend->run(kStream, 2);  // the first two complete now
  // The drain thread delivers them (bounded wait, no timing assertion).
  for (int i = 0; i < 2000 && pipeline()->counters().delivered < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::printf("delivered before exit %llu\n",
              static_cast<unsigned long long>(pipeline()->counters().delivered));
  if (mode != "stuck") {
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      g_backend->run(kStream);
    }).detach();
  }
  std::fflush(stdout);
  return 0;
}
