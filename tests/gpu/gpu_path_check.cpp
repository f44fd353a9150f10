// The probe's GPU path on a real driver (tests/gpu/run.sh): runs gpu_path_prog (the source of
// tests/probe_cuda/mock_gpu_prog.cpp linked against the real libcuda and cuBLAS) or gpu_lt_prog
// (mock_lt_prog.cpp against the real cuBLASLt) without and then under the probe, and checks
//   - the program's output is the same with and without the probe (and "capture: ok" both times
//     when it was given --capture);
//   - every operand of every GEMM of every step was measured on the device, and the trace's
//     statistics equal the host pass (compute_stats, the shared comparison stats_compare.h) over
//     the same data: A and B regenerated (mock_gpu_data.h, mock_lt_data.h), D read back from the
//     bytes the program dumped (--dump-dir: a real cuBLAS sums in its own order, so D cannot be
//     recomputed). FP8 operands are measured as the values the GEMM used: code * scale for A and
//     B, code / scale_D for an E4M3 D, and must differ from the raw codes' pass;
//   - with --two-devices, each GEMM's tensors are on the device it ran on.
// It links no CUDA library: it also runs against the mock driver (LD_LIBRARY_PATH to the mock
// libcuda and cuBLAS/cuBLASLt, the mock programs), which is how CI proves the checker itself.
//   gpu_path_check --kind classic|lt --prog PROGRAM --probe LIBFPSCOPE_PROBE --dir WORKDIR
//                  [--steps N] [-- PROGRAM ARGS...]
// Exit 0 pass, 1 fail (each mismatch printed), 64 usage.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fpscope/host_stats.h"
#include "fpscope/trace_io.h"
#include "mock_gpu_data.h"
#include "mock_lt_data.h"
#include "run_util.h"
#include "stats_compare.h"

namespace fpscope::cuda {
namespace {

using compare::program_lines;
using compare::tensor;

struct Options {
  std::string kind, prog, probe, dir, args;
  int steps = 3;
};

std::vector<std::string> g_failures;
void fail(const std::string& m) {
  g_failures.push_back(m);
}

void save(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// D's bytes as the program dumped them (count elements of T); empty, and a failure, when absent.
template <class T>
std::vector<T> read_dump(const Options& o, const std::string& scope, uint64_t step, size_t count) {
  const std::string path = o.dir + "/dump/" + scope + ".D." + std::to_string(step) + ".bin";
  std::vector<T> v(count);
  std::ifstream f(path, std::ios::binary);
  if (!f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * sizeof(T)))) {
    fail(path + ": missing or shorter than " + std::to_string(count * sizeof(T)) + " bytes");
    return {};
  }
  return v;
}

std::unique_ptr<TensorStats> host_pass(const void* data, Format f, uint64_t rows, uint64_t cols) {
  auto s = std::make_unique<TensorStats>();
  compute_stats(data, f, rows, cols, rows, StatsOptions{}, s.get());
  return s;
}

// The host pass over operand `role` of `scope` at `step`; nullptr when D's dump is missing.
// *raw: the raw codes' pass of an FP8 operand (what a probe ignoring the scale would record).
std::unique_ptr<TensorStats> expected(const Options& o, const std::string& scope, char role,
                                      uint32_t t, std::unique_ptr<TensorStats>* raw) {
  if (o.kind == "classic") {
    using namespace mock_gpu;
    if (role == 'D') {
      const auto d = read_dump<float>(o, scope, t, size_t{kM} * kN);
      return d.empty() ? nullptr : host_pass(d.data(), Format::FP32, kM, kN);
    }
    const int m = role == 'A' ? 0 : 1;
    const uint64_t rows = role == 'A' ? kM : kK, cols = role == 'A' ? kK : kN;
    if (scope == "fc_fp32") {
      std::vector<float> v(rows * cols);
      for (uint32_t i = 0; i < v.size(); ++i) v[i] = value(m, i, t);
      return host_pass(v.data(), Format::FP32, rows, cols);
    }
    std::vector<uint16_t> v(rows * cols);
    for (uint32_t i = 0; i < v.size(); ++i) v[i] = bf16_value(m, i, t);
    return host_pass(v.data(), Format::BF16, rows, cols);
  }
  using namespace mock_lt;
  if (role == 'A' || role == 'B') {  // stored k x m (A, used transposed) or k x n (B)
    const uint64_t cols = role == 'A' ? kM : kN;
    std::vector<uint8_t> c(kK * cols);
    for (uint32_t i = 0; i < c.size(); ++i) c[i] = code(role == 'A' ? 0 : 1, i, t);
    const float s = role == 'A' ? scale_a(t) : scale_b(t);
    std::vector<float> v;
    for (uint8_t x : c) v.push_back(e4m3_value(x) * s);  // one FP32 multiply
    *raw = host_pass(c.data(), Format::E4M3, kK, cols);
    return host_pass(v.data(), Format::FP32, kK, cols);
  }
  if (scope == "lt_f32d") {
    const auto d = read_dump<float>(o, scope, t, size_t{kM} * kN);
    return d.empty() ? nullptr : host_pass(d.data(), Format::FP32, kM, kN);
  }
  const auto c = read_dump<uint8_t>(o, scope, t, size_t{kM} * kN);
  if (c.empty()) return nullptr;
  std::vector<float> v;
  for (uint8_t x : c) v.push_back(e4m3_value(x) / scale_d(t));  // one FP32 divide
  *raw = host_pass(c.data(), Format::E4M3, kM, kN);
  return host_pass(v.data(), Format::FP32, kM, kN);
}

// Every operand of every GEMM of every step against the host pass; returns how many matched.
int check_operands(const Options& o, const trace::Trace& tr) {
  const bool lt = o.kind == "lt";
  const std::vector<std::string> scopes = lt ? std::vector<std::string>{"lt_f32d", "lt_e4m3d"}
                                             : std::vector<std::string>{"fc_fp32", "fc_bf16"};
  int matched = 0;
  for (const std::string& scope : scopes)
    for (char role : {'A', 'B', 'D'}) {
      const std::string id = scope + "." + role;
      const trace::TensorInfo* ti = tensor(tr, id);
      if (ti == nullptr) {
        fail(id + ": not in the trace");
        continue;
      }
      const Format want = lt ? (role != 'D' || scope == "lt_e4m3d" ? Format::E4M3 : Format::FP32)
                             : (scope == "fc_bf16" && role != 'D' ? Format::BF16 : Format::FP32);
      if (ti->dtype != want) fail(id + ": dtype " + std::to_string(static_cast<int>(ti->dtype)));
      std::map<uint64_t, const trace::ObservationRecord*> by_step;
      for (const auto& ob : tr.observations)
        if (ob.tensor == ti->index) by_step[ob.step] = &ob;
      if (by_step.size() != static_cast<size_t>(o.steps))
        fail(id + ": " + std::to_string(by_step.size()) + " steps observed, want " +
             std::to_string(o.steps));
      for (const auto& [step, ob] : by_step) {
        const std::string where = id + " step " + std::to_string(step) + ": ";
        std::unique_ptr<TensorStats> raw;
        const auto h = expected(o, scope, role, static_cast<uint32_t>(step), &raw);
        if (h == nullptr) continue;
        if (ob->stats.count == 0) {
          fail(where + "not measured (count 0)");
          continue;
        }
        const auto diff = compare::mismatches(tr, *ob, *h);
        for (const std::string& m : diff) fail(where + m);
        if (raw != nullptr && (ob->stats.amax == raw->amax || ob->stats.sum_sq == raw->sum_sq))
          fail(where + "measured as the raw FP8 codes, not code and scale");
        if (diff.empty()) ++matched;
      }
    }
  if (o.args.find("--two-devices") != std::string::npos) {
    for (const auto& [id, dev] : {std::pair<std::string, int>{"fc_fp32.D", 0}, {"fc_bf16.D", 1}}) {
      const trace::TensorInfo* ti = tensor(tr, id);
      if (ti != nullptr && ti->device != dev)
        fail(id + ": on device " + std::to_string(ti->device) + ", want " + std::to_string(dev));
    }
  }
  return matched;
}

int usage() {
  std::fprintf(stderr,
               "usage: gpu_path_check --kind classic|lt --prog PROGRAM --probe LIB --dir DIR "
               "[--steps N] [-- PROGRAM ARGS...]\n");
  return 64;
}

int run(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--kind")
      o.kind = next();
    else if (a == "--prog")
      o.prog = next();
    else if (a == "--probe")
      o.probe = next();
    else if (a == "--dir")
      o.dir = next();
    else if (a == "--steps")
      o.steps = std::atoi(next().c_str());
    else if (a == "--") {
      for (++i; i < argc; ++i) o.args += std::string(" ") + argv[i];
    } else
      return usage();
  }
  if ((o.kind != "classic" && o.kind != "lt") || o.prog.empty() || o.probe.empty() ||
      o.dir.empty() || o.steps < 1)
    return usage();
  std::filesystem::remove_all(o.dir + "/dump");
  std::filesystem::create_directories(o.dir + "/dump");
  const std::string trace_path = o.dir + "/trace.fpst";
  std::filesystem::remove(trace_path);
  const std::string cmd = o.prog + " --steps " + std::to_string(o.steps) + o.args;

  const proc::Output plain = proc::run("", cmd);
  save(o.dir + "/plain.out", plain.out);
  save(o.dir + "/plain.err", plain.err);
  const proc::Output probed = proc::run("LD_PRELOAD=" + o.probe + " FPSCOPE_OUTPUT=" + trace_path +
                                            " FPSCOPE_STEPS=api FPSCOPE_EVERY=1 FPSCOPE_LOG=info",
                                        cmd + " --dump-dir " + o.dir + "/dump");
  save(o.dir + "/probed.out", probed.out);
  save(o.dir + "/probed.err", probed.err);
  if (plain.exit_code != 0) fail("without the probe: exit " + std::to_string(plain.exit_code));
  if (probed.exit_code != 0) fail("under the probe: exit " + std::to_string(probed.exit_code));
  const std::string lines = program_lines(plain.out);
  if (lines.empty()) fail("the program printed no step lines");
  if (program_lines(probed.out) != lines)
    fail("the output differs with and without the probe (" + o.dir + "/plain.out, probed.out)");
  if (o.args.find("--capture") != std::string::npos)
    for (const proc::Output* p : {&plain, &probed})
      if (p->out.find("capture: ok\n") == std::string::npos)
        fail(std::string("the capture did not survive ") +
             (p == &plain ? "without the probe" : "under the probe"));

  trace::Trace tr;
  trace::ReadError err;
  int matched = 0;
  if (probed.exit_code == 0 && !trace::read_trace(trace_path, &tr, &err))
    fail(trace_path + ": " + err.message);
  else if (probed.exit_code == 0)
    matched = check_operands(o, tr);

  if (!g_failures.empty()) {
    size_t shown = 0;
    for (const std::string& f : g_failures)
      if (shown++ < 30) std::printf("mismatch: %s\n", f.c_str());
    if (g_failures.size() > shown) std::printf("... %zu more\n", g_failures.size() - shown);
    std::printf("FAIL: %zu mismatches, %d observations equal the host pass (logs in %s)\n",
                g_failures.size(), matched, o.dir.c_str());
    if (probed.exit_code != 0) std::fputs(probed.err.c_str(), stdout);
    return 1;
  }
  std::printf(
      "ok: %d observations equal the host pass over the same data (%s, %d steps%s); "
      "output identical with and without the probe\n",
      matched, o.kind.c_str(), o.steps, o.args.c_str());
  return 0;
}

}  // namespace
}  // namespace fpscope::cuda

int main(int argc, char** argv) {
  return fpscope::cuda::run(argc, argv);
}
