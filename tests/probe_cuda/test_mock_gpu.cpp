// The probe's GPU path end to end on the strict mock CUDA driver (tests/mock_cuda): mock_gpu_prog
// (driver API + a computing mock cuBLAS) runs under the real probe, which finds the mock as the
// program's libcuda.so.1, loads the statistics kernels' images into the program's context and
// launches them; the mock runs each launch through the kernels' CPU model. What reaches the trace
// is compared with the host statistics pass (compute_stats) of the same operands, regenerated
// here (mock_gpu_data.h). Each test also checks that the program's output is the plain run's.
// The rules the mock enforces (and the documentation they come from) are in tests/mock_cuda.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "block_counts_expect.h"
#include "fpscope/host_stats.h"
#include "fpscope/trace_io.h"
#include "fpscope/update_loss.h"
#include "mock_gpu_data.h"
#include "mock_record.h"
#include "run_util.h"
#include "stats_compare.h"

namespace fpscope::cuda {
namespace {

using compare::has_event;
using compare::program_lines;
using compare::tensor;

using Result = MockRecording;

const std::string kMockLibs = std::string(MOCK_CUDA_DIR) + ":" + MOCK_CUBLAS_DIR;

// The program alone (no probe), on the same mock.
proc::Output plain(const std::string& env, const std::string& args) {
  return run_on_mock(kMockLibs, env, std::string(MOCK_GPU_PROG) + " " + args);
}

Result record(const std::string& env, const std::string& args) {
  return record_on_mock(kMockLibs, env, std::string(MOCK_GPU_PROG) + " " + args, FPSCOPE_TEST_TMP,
                        "mock-gpu");
}

// A counter the mock printed ("mock_cuda <name> <value>" lines, mock_control.h).
long long counter(const std::string& out, const std::string& name) {
  const std::string key = "mock_cuda " + name + " ";
  const size_t at = out.find(key);
  if (at == std::string::npos) return -1;
  return std::atoll(out.c_str() + at + key.size());
}

// The operand's values as FP32 (the host block pass reads decoded values), role 'A', 'B' or 'D'.
std::vector<float> operand_values(int which, char role, uint32_t step) {
  using namespace mock_gpu;
  if (role == 'D') {
    std::vector<float> d(kM * kN);
    if (which == 0)
      gemm_reference([&](int i) { return value(0, static_cast<uint32_t>(i), step); },
                     [&](int i) { return value(1, static_cast<uint32_t>(i), step); }, d.data());
    else
      gemm_reference(
          [&](int i) { return bf16_to_float(bf16_value(0, static_cast<uint32_t>(i), step)); },
          [&](int i) { return bf16_to_float(bf16_value(1, static_cast<uint32_t>(i), step)); },
          d.data());
    return d;
  }
  const int m = role == 'A' ? 0 : 1;
  std::vector<float> v(role == 'A' ? kM * kK : kK * kN);
  for (uint32_t i = 0; i < v.size(); ++i)
    v[i] = which == 0 ? value(m, i, step) : bf16_to_float(bf16_value(m, i, step));
  return v;
}

// The host pass over operand `role` of GEMM `which` (0: FP32 Sgemm, 1: BF16 GemmEx) at `step`:
// over the stored BF16 codes for the BF16 GEMM's A and B, over FP32 values otherwise.
std::unique_ptr<TensorStats> host_stats(int which, char role, uint32_t step) {
  using namespace mock_gpu;
  auto s = std::make_unique<TensorStats>();
  const StatsOptions opt;
  const uint64_t rows = role == 'B' ? kK : kM, cols = role == 'A' ? kK : kN;
  if (which == 1 && role != 'D') {
    const int m = role == 'A' ? 0 : 1;
    std::vector<uint16_t> v(rows * cols);
    for (uint32_t i = 0; i < v.size(); ++i) v[i] = bf16_value(m, i, step);
    compute_stats(v.data(), Format::BF16, rows, cols, rows, opt, s.get());
    return s;
  }
  const std::vector<float> v = operand_values(which, role, step);
  compute_stats(v.data(), Format::FP32, rows, cols, rows, opt, s.get());
  return s;
}

// The trace's observation against the host pass (stats_compare.h, shared with the real-driver
// checker tests/gpu/gpu_path_check.cpp).
void expect_matches(const trace::Trace& t, const trace::ObservationRecord& o,
                    const TensorStats& h) {
  for (const std::string& m : compare::mismatches(t, o, h)) ADD_FAILURE() << m;
}

// Every operand of both GEMMs in every step matches the host pass; returns how many matched.
int check_all_operands(const Result& r, int steps) {
  int checked = 0;
  for (int which = 0; which < 2; ++which)
    for (char role : {'A', 'B', 'D'}) {
      const std::string id = std::string(which == 0 ? "fc_fp32." : "fc_bf16.") + role;
      const trace::TensorInfo* ti = tensor(r.trace, id);
      EXPECT_NE(ti, nullptr) << id;
      if (ti == nullptr) continue;
      EXPECT_EQ(ti->dtype, which == 1 && role != 'D' ? Format::BF16 : Format::FP32) << id;
      std::map<uint64_t, const trace::ObservationRecord*> by_step;
      for (const auto& o : r.trace.observations)
        if (o.tensor == ti->index) by_step[o.step] = &o;
      EXPECT_EQ(by_step.size(), static_cast<size_t>(steps)) << id;
      for (const auto& [step, o] : by_step) {
        SCOPED_TRACE(id + " step " + std::to_string(step));
        expect_matches(r.trace, *o, *host_stats(which, role, static_cast<uint32_t>(step)));
        ++checked;
      }
    }
  return checked;
}

TEST(MockGpu, EveryOperandsDeviceStatisticsEqualTheHostPass) {
  const proc::Output p = plain("", "--steps 4");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const Result r = record("", "--steps 4");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  EXPECT_EQ(program_lines(r.run.out), program_lines(p.out));
  EXPECT_EQ(program_lines(p.out).size() > 0, true);
  ASSERT_TRUE(r.read);
  EXPECT_EQ(check_all_operands(r, 4), 24);
  EXPECT_NE(r.run.err.find("statistics kernels loaded from the fatbin"), std::string::npos)
      << r.run.err;
  // Step 2's A holds one NaN (mock_gpu_data.h): the device pass saw it.
  const trace::TensorInfo* a = tensor(r.trace, "fc_fp32.A");
  ASSERT_NE(a, nullptr);
  for (const auto& o : r.trace.observations) {
    if (o.tensor != a->index) continue;
    EXPECT_EQ(o.stats.nan, o.step == 2 ? 1u : 0u);
  }
}

TEST(MockGpu, ADriverThatRefusesTheFatbinGetsThePtx) {
  const Result r = record("MOCK_CUDA_REJECT_FATBIN=1 MOCK_CUDA_MAX_PTX_ISA=8.0", "--steps 2");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  ASSERT_TRUE(r.read);
  EXPECT_EQ(check_all_operands(r, 2), 12);
  EXPECT_NE(r.run.err.find("statistics kernels loaded from the PTX 8.0"), std::string::npos)
      << r.run.err;
}

TEST(MockGpu, KernelsTheDriverCannotLoadTurnStatisticsOffOnceAndTheProgramRuns) {
  const proc::Output p = plain("", "--steps 3");
  const Result r = record("MOCK_CUDA_REJECT_FATBIN=1 MOCK_CUDA_MAX_PTX_ISA=7.8 ", "--steps 3");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  EXPECT_EQ(program_lines(r.run.out), program_lines(p.out));
  ASSERT_TRUE(r.read);
  EXPECT_TRUE(tensor(r.trace, "fc_fp32.A") != nullptr);  // the GEMMs are still recorded
  for (const auto& o : r.trace.observations) EXPECT_EQ(o.stats.count, 0u);
  EXPECT_TRUE(has_event(r.trace, "could not be set up on 1 device")) << r.run.err;
}

TEST(MockGpu, ADriverOlderThanCuda12IsRefusedWithOneWarning) {
  const proc::Output p = plain("MOCK_CUDA_DRIVER_VERSION=11080", "--steps 2");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const Result r = record("MOCK_CUDA_DRIVER_VERSION=11080", "--steps 2");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  EXPECT_EQ(program_lines(r.run.out), program_lines(p.out));
  ASSERT_TRUE(r.read);
  EXPECT_TRUE(has_event(r.trace, "older than CUDA 12.0")) << r.run.err;
}

TEST(MockGpu, NoContextOnADeviceTheProgramDidNotUse) {
  const Result r = record("MOCK_CUDA_DEVICES=2", "--steps 2 --device 1 --counters");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  ASSERT_TRUE(r.read);
  EXPECT_EQ(counter(r.run.out, "contexts_device0"), 0) << r.run.out;
  EXPECT_EQ(counter(r.run.out, "contexts_device1"), 1) << r.run.out;
  const trace::TensorInfo* d = tensor(r.trace, "fc_fp32.D");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->device, 1);
  EXPECT_EQ(check_all_operands(r, 2), 12);
}

TEST(MockGpu, AGlobalCaptureInAnotherThreadSurvivesRecording) {
  const proc::Output p = plain("", "--steps 3 --capture");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("capture: ok"), std::string::npos) << p.out << p.err;
  const Result r = record("", "--steps 3 --capture --counters");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  EXPECT_NE(r.run.out.find("capture: ok"), std::string::npos) << r.run.out << r.run.err;
  EXPECT_EQ(counter(r.run.out, "invalidated_captures"), 0) << r.run.out;
  ASSERT_TRUE(r.read);
  EXPECT_EQ(check_all_operands(r, 3), 18);
}

TEST(MockGpu, AFailedSetUpReleasesWhatItMadeAndIsNotRetried) {
  // The program makes 6 allocations; the probe's first (its slots' device statistics) succeeds,
  // its second (their pinned copies) fails: what it made must be freed, and the device is tried
  // once (8 allocation calls in all, however many GEMMs follow).
  const proc::Output p = plain("", "--steps 3 --counters");
  const Result r = record("MOCK_CUDA_FAIL_ALLOC_AFTER=7", "--steps 3 --counters");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  EXPECT_EQ(program_lines(r.run.out), program_lines(p.out));
  EXPECT_EQ(counter(r.run.out, "live_device_allocations"), 0) << r.run.out;
  EXPECT_EQ(counter(r.run.out, "live_host_allocations"), 0) << r.run.out;
  EXPECT_EQ(counter(r.run.out, "live_modules"), 0) << r.run.out;  // the kernels' module too
  EXPECT_EQ(counter(r.run.out, "allocation_calls"), 8) << r.run.out;
  ASSERT_TRUE(r.read);
  EXPECT_TRUE(has_event(r.trace, "could not be set up on 1 device")) << r.run.err;
}

// The BF16 GEMM's B at `step`, widened (what the watch of it measures).
std::vector<float> bf16_b(uint32_t step) {
  using namespace mock_gpu;
  std::vector<float> v(static_cast<size_t>(kK) * kN);
  for (uint32_t i = 0; i < v.size(); ++i) v[i] = bf16_to_float(bf16_value(1, i, step));
  return v;
}

TEST(MockGpu, TwoDevicesEachMeasuredInItsOwnContextAndAWatchFromTheOtherOnesThread) {
  const std::string args = "--steps 3 --two-devices --watch --counters";
  const proc::Output p = plain("MOCK_CUDA_DEVICES=2", args);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const Result r = record("MOCK_CUDA_DEVICES=2", args);
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  EXPECT_EQ(program_lines(r.run.out), program_lines(p.out));
  EXPECT_NE(r.run.out.find("watch 0\n"), std::string::npos) << r.run.out << r.run.err;
  // The program's two primary contexts, and none made by the probe.
  EXPECT_EQ(counter(r.run.out, "contexts_device0"), 1) << r.run.out;
  EXPECT_EQ(counter(r.run.out, "contexts_device1"), 1) << r.run.out;
  ASSERT_TRUE(r.read);
  EXPECT_EQ(check_all_operands(r, 3), 18);
  ASSERT_NE(tensor(r.trace, "fc_fp32.D"), nullptr);
  ASSERT_NE(tensor(r.trace, "fc_bf16.D"), nullptr);
  EXPECT_EQ(tensor(r.trace, "fc_fp32.D")->device, 0);
  EXPECT_EQ(tensor(r.trace, "fc_bf16.D")->device, 1);
  // The watch of device 1's BF16 weights, made and stepped while device 0's context is current:
  // step t's record is the update B(t) -> B(t+1), as the host pass computes it.
  const trace::TensorInfo* w = tensor(r.trace, "fc_bf16.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->device, 1);
  std::map<uint64_t, const trace::WeightUpdateRecord*> by_step;
  for (const auto& u : r.trace.weight_updates)
    if (u.tensor == w->index) by_step[u.step] = &u;
  ASSERT_EQ(by_step.size(), 3u);
  for (const auto& [step, u] : by_step) {
    SCOPED_TRACE("watch step " + std::to_string(step));
    const auto prev = bf16_b(static_cast<uint32_t>(step));
    const auto cur = bf16_b(static_cast<uint32_t>(step + 1));
    UpdateLossCounts bf16, fp16;
    uint64_t changed = 0;
    uint64_t hist[kRatioBins];
    compute_update_loss(prev.data(), cur.data(), prev.size(), &bf16, &fp16, &changed, hist);
    EXPECT_GT(changed, 0u);
    EXPECT_EQ(u->master_dtype, Format::BF16);
    EXPECT_EQ(u->elements, prev.size());
    EXPECT_EQ(u->changed, changed);
    EXPECT_EQ(u->bf16.stagnant, bf16.stagnant);
    EXPECT_EQ(u->fp16.stagnant, fp16.stagnant);
    EXPECT_NEAR(u->bf16.lost_abs, bf16.lost_abs, 1e-9 * bf16.lost_abs);
    EXPECT_NEAR(u->fp16.delta_abs, fp16.delta_abs, 1e-9 * fp16.delta_abs);
  }
}

// Issue 19 item 2 on the device path: with FPSCOPE_FORMATS=blocks every operand's block-format
// section comes from the block-stats kernel (its CPU model on the mock) and equals the host
// block pass along the axis the GEMM consumes it (A and D along columns, B along rows: the
// reduction dimension for A and B, probe/src/recorder.h block_axis_of).
TEST(MockGpu, BlockFormatsOnTheDeviceEqualTheHostBlockPass) {
  const Result r = record("FPSCOPE_FORMATS=blocks", "--steps 2");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  ASSERT_TRUE(r.read);
  int checked = 0;
  for (int which = 0; which < 2; ++which)
    for (char role : {'A', 'B', 'D'}) {
      const std::string id = std::string(which == 0 ? "fc_fp32." : "fc_bf16.") + role;
      const trace::TensorInfo* ti = tensor(r.trace, id);
      ASSERT_NE(ti, nullptr) << id;
      const BlockAxis axis = role == 'B' ? BlockAxis::Rows : BlockAxis::Cols;
      for (size_t k = 0; k < r.trace.observations.size(); ++k) {
        const trace::ObservationRecord& o = r.trace.observations[k];
        if (o.tensor != ti->index) continue;
        SCOPED_TRACE(id + " step " + std::to_string(o.step));
        const trace::BlockStatsRecord* b = r.trace.blocks_of(k);
        ASSERT_NE(b, nullptr);
        EXPECT_EQ(b->mask, kAllBlockFormats);
        EXPECT_EQ(b->axis, axis);
        const auto v = operand_values(which, role, static_cast<uint32_t>(o.step));
        StatsOptions opt;
        opt.block_formats = kAllBlockFormats;
        opt.block_axis = axis;
        auto h = std::make_unique<TensorStats>();
        const uint64_t rows = role == 'B' ? mock_gpu::kK : mock_gpu::kM;
        const uint64_t cols = role == 'A' ? mock_gpu::kK : mock_gpu::kN;
        compute_stats(v.data(), Format::FP32, rows, cols, rows, opt, h.get());
        BlockStatsSet got;
        b->expand_into(&got);
        EXPECT_EQ(got.nvfp4_tensor_scale, h->blocks.nvfp4_tensor_scale);
        for (int f = 0; f < kNumBlockFormats; ++f) {
          SCOPED_TRACE("block format " + std::to_string(f));
          const BlockFormatCounts &g = got.fmt[f], &w = h->blocks.fmt[f];
          EXPECT_GT(w.blocks, 0u);
          fpscope::test::expect_same_block_counts(g, w);
          // The host's fused MX pass sums a block's errors in FP32 (the kernel in double): 1e-4, as
          // in tests/kernels/test_stats_launch.cpp; measured here up to 1.5e-7.
          EXPECT_NEAR(g.sum_err2, w.sum_err2, 1e-4 * w.sum_err2);
          EXPECT_NEAR(g.sum_x2, w.sum_x2, 1e-9 * w.sum_x2);
          for (int i = 0; i < kBlockScaleBins; ++i)
            EXPECT_EQ(got.scale_hist[f][i], h->blocks.scale_hist[f][i]) << "scale bin " << i;
        }
        ++checked;
      }
    }
  EXPECT_EQ(checked, 12);
}

// Issue 16 item 3: a GEMM issued inside a capture of its own stream (torch.cuda.graph) gets no
// statistics: the probe enqueues nothing into the graph (the mock counts no captured operation:
// the mock cuBLAS itself enqueues none), the capture ends valid, the skips are counted in the
// trace; the other GEMM of each step, outside the capture, is measured as ever.
TEST(MockGpu, GemmsInsideACaptureAreSkippedAndCountedNothingEntersTheGraph) {
  const proc::Output p = plain("", "--steps 3 --capture-gemms");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const Result r = record("", "--steps 3 --capture-gemms --counters");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  EXPECT_EQ(program_lines(r.run.out), program_lines(p.out));
  EXPECT_EQ(program_lines(r.run.out).find("captured: invalidated"), std::string::npos) << r.run.out;
  EXPECT_NE(program_lines(r.run.out).find("captured: ok"), std::string::npos) << r.run.out;
  EXPECT_EQ(counter(r.run.out, "captured_operations"), 0) << r.run.out;
  EXPECT_EQ(counter(r.run.out, "invalidated_captures"), 0) << r.run.out;
  ASSERT_TRUE(r.read);
  EXPECT_TRUE(has_event(r.trace,
                        "cuda: 9 GEMM operand observations skipped: stream was "
                        "capturing a CUDA graph"))
      << r.run.err;
  for (char role : {'A', 'B', 'D'}) {
    const trace::TensorInfo* ti = tensor(r.trace, std::string("fc_fp32.") + role);
    ASSERT_NE(ti, nullptr) << role;  // the captured GEMM is recorded (its signature)
    for (const auto& o : r.trace.observations) EXPECT_NE(o.tensor, ti->index) << role;
  }
  int measured = 0;
  for (char role : {'A', 'B', 'D'}) {
    const trace::TensorInfo* ti = tensor(r.trace, std::string("fc_bf16.") + role);
    ASSERT_NE(ti, nullptr) << role;
    for (const auto& o : r.trace.observations) {
      if (o.tensor != ti->index) continue;
      SCOPED_TRACE(std::string("fc_bf16.") + role + " step " + std::to_string(o.step));
      expect_matches(r.trace, o, *host_stats(1, role, static_cast<uint32_t>(o.step)));
      ++measured;
    }
  }
  EXPECT_EQ(measured, 9);
}

TEST(MockGpu, TheProbeNeverCopiesToPageableMemory) {
  const Result r = record("", "--steps 2 --counters");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  EXPECT_EQ(counter(r.run.out, "pageable_async_copies"), 0) << r.run.out;
}

}  // namespace
}  // namespace fpscope::cuda
