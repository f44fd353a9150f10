// FP8 cuBLASLt GEMMs with scales end to end on the strict mock driver (issue 16 item 8):
// mock_lt_prog (driver API + a computing mock cuBLASLt, mock_cublaslt.cpp) runs under the real
// probe, which decodes each cublasLtMatmul's descriptors through the mock's getters and hands the
// scale pointers to the statistics kernels (their CPU model on the mock), which read the scales
// themselves. What reaches the trace is compared with the host statistics pass (compute_stats)
// over the VALUES each GEMM used, regenerated here (mock_lt_data.h): code * scale for A and B,
// code / scale_D for an FP8 D, an FP32 D as is; and it must differ from the raw codes' pass. The
// block-scaled GEMM's A and B must be skipped and said so. Output is the plain run's.
#include <cublasLt.h>
#include <cuda_fp8.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fpscope/host_stats.h"
#include "fpscope/trace_io.h"
#include "mock_lt_data.h"
#include "mock_record.h"
#include "run_util.h"
#include "stats_compare.h"

namespace fpscope::cuda {
namespace {

using compare::has_event;
using compare::program_lines;
using compare::tensor;

using namespace mock_lt;

using Result = MockRecording;

const std::string kMockLibs = std::string(MOCK_CUDA_DIR) + ":" + MOCK_CUBLASLT_DIR;

// The program alone (no probe), on the same mock.
proc::Output plain(const std::string& args) {
  return run_on_mock(kMockLibs, "", std::string(MOCK_LT_PROG) + " " + args);
}

Result record(const std::string& env, const std::string& args) {
  return record_on_mock(kMockLibs, env, std::string(MOCK_LT_PROG) + " " + args, FPSCOPE_TEST_TMP,
                        "mock-lt");
}

std::string all_events(const trace::Trace& t) {
  std::string s;
  for (const auto& e : t.events) s += e.text + "\n";
  return s;
}

std::map<uint64_t, const trace::ObservationRecord*> by_step(const trace::Trace& t,
                                                            const trace::TensorInfo& ti) {
  std::map<uint64_t, const trace::ObservationRecord*> r;
  for (const auto& o : t.observations)
    if (o.tensor == ti.index) r[o.step] = &o;
  return r;
}

// ---- What each GEMM used, recomputed on the host ----------------------------------------------

// op(A)(i, l) = stored A(l, i) (k x m, ld k); B(l, j) (k x n, ld k).
float a_code_value(int which, int i, int l, uint32_t t) {
  return e4m3_value(code(which, static_cast<uint32_t>(l + i * kK), t));
}
float b_code_value(int which, int l, int j, uint32_t t) {
  return e4m3_value(code(which, static_cast<uint32_t>(l + j * kK), t));
}

// D's values of the per-tensor GEMMs (before D's conversion).
std::vector<float> d_values(uint32_t t) {
  std::vector<float> d(size_t{kM} * kN);
  const float factor = 1.0f * scale_a(t) * scale_b(t);
  gemm_reference([&](int i, int l) { return a_code_value(0, i, l, t); },
                 [&](int l, int j) { return b_code_value(1, l, j, t); }, factor, d.data());
  return d;
}

// The FP8 D's codes: D's values times scale_D, saturated to E4M3 (CUDA's own host conversion).
std::vector<uint8_t> d8_codes(uint32_t t) {
  const auto v = d_values(t);
  std::vector<uint8_t> c(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    c[i] = __nv_cvt_float_to_fp8(v[i] * scale_d(t), __NV_SATFINITE, __NV_E4M3);
  return c;
}

// The block-scaled GEMM's D: each code times 2^(its block's exponent - 127).
std::vector<float> mx_values(uint32_t t) {
  std::vector<float> d(size_t{kM} * kN);
  auto blk = [&](int which, int line, int l) {
    return std::ldexp(
        1.0f,
        block_exponent(which, static_cast<uint32_t>(line), static_cast<uint32_t>(l / 32), t) - 127);
  };
  gemm_reference([&](int i, int l) { return a_code_value(2, i, l, t) * blk(0, i, l); },
                 [&](int l, int j) { return b_code_value(3, l, j, t) * blk(1, j, l); }, 1.0f,
                 d.data());
  return d;
}

// The stored codes of A (which 0) or B (which 1) at step t, as stored (k x m or k x n).
std::vector<uint8_t> stored_codes(int which, uint32_t t) {
  std::vector<uint8_t> c(size_t{kK} * (which == 0 ? kM : kN));
  for (uint32_t i = 0; i < c.size(); ++i) c[i] = code(which, i, t);
  return c;
}

// The values the GEMM used for operand `role` of scope `scope` at step t, as FP32, in the stored
// view (rows x cols, ld rows).
struct View {
  std::vector<float> v;
  uint64_t rows = 0, cols = 0;
};
View used_values(const std::string& scope, char role, uint32_t t) {
  View r;
  if (role == 'A' || role == 'B') {
    const auto c = stored_codes(role == 'A' ? 0 : 1, t);
    const float s = role == 'A' ? scale_a(t) : scale_b(t);
    for (uint8_t x : c) r.v.push_back(e4m3_value(x) * s);  // one FP32 multiply
    r.rows = kK;
    r.cols = role == 'A' ? kM : kN;
    return r;
  }
  r.rows = kM;
  r.cols = kN;
  if (scope == "lt_f32d") {
    r.v = d_values(t);
  } else if (scope == "lt_e4m3d") {
    for (uint8_t x : d8_codes(t)) r.v.push_back(e4m3_value(x) / scale_d(t));  // one FP32 divide
  } else {
    r.v = mx_values(t);
  }
  return r;
}

std::unique_ptr<TensorStats> host_pass(const View& v) {
  auto s = std::make_unique<TensorStats>();
  compute_stats(v.v.data(), Format::FP32, v.rows, v.cols, v.rows, StatsOptions{}, s.get());
  return s;
}

// The raw codes' pass: what the probe would record if it ignored the scale.
std::unique_ptr<TensorStats> raw_pass(char role, uint32_t t) {
  auto s = std::make_unique<TensorStats>();
  const std::vector<uint8_t> c = role == 'D' ? d8_codes(t) : stored_codes(role == 'A' ? 0 : 1, t);
  const uint64_t rows = role == 'D' ? kM : kK;
  compute_stats(c.data(), Format::E4M3, rows, c.size() / rows, rows, StatsOptions{}, s.get());
  return s;
}

// The trace's observation against the host pass (stats_compare.h, shared with the real-driver
// checker tests/gpu/gpu_path_check.cpp).
void expect_matches(const trace::Trace& t, const trace::ObservationRecord& o,
                    const TensorStats& h) {
  for (const std::string& m : compare::mismatches(t, o, h)) ADD_FAILURE() << m;
}

constexpr int kSteps = 3;

TEST(MockLt, Fp8OperandsAreMeasuredAsTheValuesTheGemmUsedNotTheirCodes) {
  const std::string args = "--steps " + std::to_string(kSteps);
  const proc::Output p = plain(args);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  ASSERT_EQ(program_lines(p.out).size() > 0, true);
  const Result r = record("", args);
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  EXPECT_EQ(program_lines(r.run.out), program_lines(p.out));
  ASSERT_TRUE(r.read);
  int checked = 0, fp8_checked = 0;
  for (const std::string scope : {"lt_f32d", "lt_e4m3d"})
    for (char role : {'A', 'B', 'D'}) {
      const std::string id = scope + "." + role;
      const trace::TensorInfo* ti = tensor(r.trace, id);
      ASSERT_NE(ti, nullptr) << id << "\n" << r.run.err;
      const bool fp8 = role != 'D' || scope == "lt_e4m3d";
      EXPECT_EQ(ti->dtype, fp8 ? Format::E4M3 : Format::FP32) << id;
      const auto obs = by_step(r.trace, *ti);
      EXPECT_EQ(obs.size(), static_cast<size_t>(kSteps)) << id;
      for (const auto& [step, o] : obs) {
        SCOPED_TRACE(id + " step " + std::to_string(step));
        const uint32_t t = static_cast<uint32_t>(step);
        const auto h = host_pass(used_values(scope, role, t));
        EXPECT_GT(h->count, 0u);
        expect_matches(r.trace, *o, *h);
        ++checked;
        if (!fp8) continue;
        // Not the codes: the scale changed what was measured (non-power-of-two scales move the
        // extrema and the sums, not only the exponents).
        const auto raw = raw_pass(role, t);
        EXPECT_NE(o->stats.amax, raw->amax);
        EXPECT_NE(o->stats.sum_sq, raw->sum_sq);
        ++fp8_checked;
      }
      if (!fp8) continue;
      // One Info event per tensor and role says how its codes were read.
      const std::string how =
          role == 'D' ? "measured as code / D scale" : "measured as code * scale";
      EXPECT_TRUE(has_event(r.trace, std::string("cuda: FP8 operand ") + role + " of tensor " +
                                         std::to_string(ti->index) +
                                         ", cuBLASLt scale mode SCALAR_32F (per tensor): " + how))
          << id << "\n"
          << all_events(r.trace);
    }
  EXPECT_EQ(checked, 6 * kSteps);
  EXPECT_EQ(fp8_checked, 5 * kSteps);
}

TEST(MockLt, BlockScaledOperandsAreSkippedCountedAndSaidSo) {
  const std::string args = "--steps " + std::to_string(kSteps);
  const Result r = record("", args);
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  ASSERT_TRUE(r.read);
  for (char role : {'A', 'B'}) {
    const std::string id = std::string("lt_mx.") + role;
    const trace::TensorInfo* ti = tensor(r.trace, id);
    ASSERT_NE(ti, nullptr) << id << "\n" << r.run.err;  // the GEMM is recorded
    EXPECT_EQ(ti->dtype, Format::E4M3);
    // Never read as one factor: the probe abandons the operand (no observation, or an empty one).
    for (const auto& [step, o] : by_step(r.trace, *ti))
      EXPECT_EQ(o->stats.count, 0u) << id << " step " << step;
    EXPECT_TRUE(has_event(r.trace, std::string("cuda: FP8 operand ") + role + " of tensor " +
                                       std::to_string(ti->index) +
                                       ", cuBLASLt scale mode VEC32_UE8M0 (block scaled): "
                                       "block-scaled operand: not measured"))
        << id << "\n"
        << all_events(r.trace);
  }
  EXPECT_TRUE(has_event(r.trace, "cuda: " + std::to_string(2 * kSteps) +
                                     " GEMM operand observations skipped: block-scaled operand: "
                                     "not measured (FP8 with a cuBLASLt block scale mode)"))
      << all_events(r.trace);
  // D (FP32, not scaled) is measured as usual: the block-scaled GEMM's own values.
  const trace::TensorInfo* d = tensor(r.trace, "lt_mx.D");
  ASSERT_NE(d, nullptr);
  const auto obs = by_step(r.trace, *d);
  EXPECT_EQ(obs.size(), static_cast<size_t>(kSteps));
  for (const auto& [step, o] : obs) {
    SCOPED_TRACE("lt_mx.D step " + std::to_string(step));
    expect_matches(r.trace, *o, *host_pass(used_values("lt_mx", 'D', static_cast<uint32_t>(step))));
  }
}

// The mock's descriptors against the real cuBLASLt 13's (linked into this test; descriptors are
// host objects, no GPU needed): every attribute the mock stores has the real one's size (what
// GetAttribute with sizeInBytes 0 reports) and default, and a wrong size is refused by both.
TEST(MockLt, DescriptorAttributesHaveTheRealCublasLtsSizesAndDefaults) {
  void* lib = dlopen(MOCK_CUBLASLT_DIR "/libcublasLt.so.13", RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto sym = [&](const char* name) {
    void* p = dlsym(lib, name);
    EXPECT_NE(p, nullptr) << name;
    return p;
  };
  auto desc_create =
      reinterpret_cast<decltype(&cublasLtMatmulDescCreate)>(sym("cublasLtMatmulDescCreate"));
  auto desc_get = reinterpret_cast<decltype(&cublasLtMatmulDescGetAttribute)>(
      sym("cublasLtMatmulDescGetAttribute"));
  auto desc_destroy =
      reinterpret_cast<decltype(&cublasLtMatmulDescDestroy)>(sym("cublasLtMatmulDescDestroy"));
  auto layout_create =
      reinterpret_cast<decltype(&cublasLtMatrixLayoutCreate)>(sym("cublasLtMatrixLayoutCreate"));
  auto layout_get = reinterpret_cast<decltype(&cublasLtMatrixLayoutGetAttribute)>(
      sym("cublasLtMatrixLayoutGetAttribute"));
  auto layout_destroy =
      reinterpret_cast<decltype(&cublasLtMatrixLayoutDestroy)>(sym("cublasLtMatrixLayoutDestroy"));
  ASSERT_FALSE(desc_create == nullptr || desc_get == nullptr || desc_destroy == nullptr ||
               layout_create == nullptr || layout_get == nullptr || layout_destroy == nullptr);
  ASSERT_NE(reinterpret_cast<void*>(desc_get),
            reinterpret_cast<void*>(&cublasLtMatmulDescGetAttribute));  // two libraries

  // Get(size 0) -> the size; Get(that size) -> the default's bytes; Get(size + 1) -> refused.
  auto compare = [](auto real_get, auto mock_get, auto real_obj, auto mock_obj, auto attr) {
    SCOPED_TRACE("attribute " + std::to_string(static_cast<int>(attr)));
    size_t real_size = 0, mock_size = 0;
    ASSERT_EQ(real_get(real_obj, attr, nullptr, 0, &real_size), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(mock_get(mock_obj, attr, nullptr, 0, &mock_size), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(mock_size, real_size);
    ASSERT_LE(real_size, 8u);
    unsigned char real_bytes[16] = {}, mock_bytes[16] = {};
    size_t real_written = 0, mock_written = 0;
    ASSERT_EQ(real_get(real_obj, attr, real_bytes, real_size, &real_written),
              CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(mock_get(mock_obj, attr, mock_bytes, mock_size, &mock_written),
              CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(mock_written, real_written);
    EXPECT_EQ(std::memcmp(mock_bytes, real_bytes, real_size), 0);
    EXPECT_EQ(real_get(real_obj, attr, real_bytes, real_size + 1, &real_written),
              CUBLAS_STATUS_INVALID_VALUE);
    EXPECT_EQ(mock_get(mock_obj, attr, mock_bytes, mock_size + 1, &mock_written),
              CUBLAS_STATUS_INVALID_VALUE);
  };
  cublasLtMatmulDesc_t real_desc = nullptr, mock_desc = nullptr;
  ASSERT_EQ(cublasLtMatmulDescCreate(&real_desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
            CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(desc_create(&mock_desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), CUBLAS_STATUS_SUCCESS);
  for (cublasLtMatmulDescAttributes_t a :
       {CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, CUBLASLT_MATMUL_DESC_SCALE_TYPE,
        CUBLASLT_MATMUL_DESC_POINTER_MODE, CUBLASLT_MATMUL_DESC_TRANSA, CUBLASLT_MATMUL_DESC_TRANSB,
        CUBLASLT_MATMUL_DESC_TRANSC, CUBLASLT_MATMUL_DESC_EPILOGUE,
        CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
        CUBLASLT_MATMUL_DESC_C_SCALE_POINTER, CUBLASLT_MATMUL_DESC_D_SCALE_POINTER,
        CUBLASLT_MATMUL_DESC_AMAX_D_POINTER, CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
        CUBLASLT_MATMUL_DESC_B_SCALE_MODE, CUBLASLT_MATMUL_DESC_C_SCALE_MODE,
        CUBLASLT_MATMUL_DESC_D_SCALE_MODE, CUBLASLT_MATMUL_DESC_D_OUT_SCALE_POINTER,
        CUBLASLT_MATMUL_DESC_D_OUT_SCALE_MODE})
    compare(&cublasLtMatmulDescGetAttribute, desc_get, real_desc, mock_desc, a);
  EXPECT_EQ(cublasLtMatmulDescDestroy(real_desc), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(desc_destroy(mock_desc), CUBLAS_STATUS_SUCCESS);

  cublasLtMatrixLayout_t real_layout = nullptr, mock_layout = nullptr;
  ASSERT_EQ(cublasLtMatrixLayoutCreate(&real_layout, CUDA_R_8F_E4M3, kK, kM, kK),
            CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(layout_create(&mock_layout, CUDA_R_8F_E4M3, kK, kM, kK), CUBLAS_STATUS_SUCCESS);
  for (cublasLtMatrixLayoutAttribute_t a :
       {CUBLASLT_MATRIX_LAYOUT_TYPE, CUBLASLT_MATRIX_LAYOUT_ORDER, CUBLASLT_MATRIX_LAYOUT_ROWS,
        CUBLASLT_MATRIX_LAYOUT_COLS, CUBLASLT_MATRIX_LAYOUT_LD, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
        CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, CUBLASLT_MATRIX_LAYOUT_PLANE_OFFSET,
        CUBLASLT_MATRIX_LAYOUT_BATCH_MODE})
    compare(&cublasLtMatrixLayoutGetAttribute, layout_get, real_layout, mock_layout, a);
  EXPECT_EQ(cublasLtMatrixLayoutDestroy(real_layout), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(layout_destroy(mock_layout), CUBLAS_STATUS_SUCCESS);
  dlclose(lib);
}

// Issue 16 item 9: with POINTER_MODE_DEVICE, beta is in device memory and the probe reads no
// device memory on the host: C is not known to be read, so it is not measured (here it holds NaN
// and beta is 0, so reading it would report NaN the GEMM never saw). D is measured as ever.
TEST(MockLt, WithDevicePointerModeCIsNotMeasuredUnlessKnownToBeRead) {
  const proc::Output p = plain("--steps 2 --device-scalars");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const Result r = record("", "--steps 2 --device-scalars");
  ASSERT_EQ(r.run.exit_code, 0) << r.run.err;
  EXPECT_EQ(program_lines(r.run.out), program_lines(p.out));
  ASSERT_TRUE(r.read);
  EXPECT_EQ(tensor(r.trace, "lt_devptr.C"), nullptr);
  const trace::TensorInfo* d = tensor(r.trace, "lt_devptr.D");
  ASSERT_NE(d, nullptr);
  int measured = 0;
  for (const auto& o : r.trace.observations) {
    const std::string& id = r.trace.tensors[o.tensor].id;
    if (id.rfind("lt_devptr.", 0) != 0) continue;
    EXPECT_EQ(o.stats.nan, 0u) << id << " step " << o.step;
    if (o.tensor == d->index) {
      EXPECT_EQ(o.stats.count, static_cast<uint64_t>(kM) * kN);
      ++measured;
    }
  }
  EXPECT_EQ(measured, 2);
}

}  // namespace
}  // namespace fpscope::cuda
