// An FP8 cuBLASLt program for the strict mock driver (tests/mock_cuda): issue 16 item 8 end to end
// in CI. Driver API + the computing mock cuBLASLt (mock_cublaslt.cpp); the fpscope API is looked
// up at run time (a no-op without the probe). Each step, on the program's stream (mock_lt_data.h
// for the data):
//   scope "lt_f32d":   E4M3 A (stored k x m, TRANSA = T) and B with per-tensor scale pointers
//                      scale_A, scale_B (device floats), FP32 D;
//   scope "lt_e4m3d":  the same A and B and scales, E4M3 D quantized with D_SCALE_POINTER scale_D
//                      and AMAX_D_POINTER; C (never read: beta 0) its own BF16 matrix, the C
//                      type cuBLASLt requires with an E4M3 D;
//   scope "lt_mx":     E4M3 A and B with A/B_SCALE_MODE VEC32_UE8M0 (block exponents), FP32 D;
// then copies the Ds back, prints their checksums ("step ..." lines), uploads the next step's
// operands and scales (the "update") and calls fpscope_step(). Output is the same with and
// without the probe.
//   --steps N        steps (default 3)
//   --device-scalars one more GEMM per step, scope "lt_devptr": lt_f32d's operands with
//                    POINTER_MODE_DEVICE (alpha 1 and beta 0 in device memory) and its own C, full
//                    of NaN (never read: beta is 0). The probe cannot know beta without a
//                    synchronization, so it must not measure C.
//   --no-block       leave the block-scaled GEMM out (its scales are the mock's layout, not
//                    cuBLASLt's swizzled one, and a real one needs sm_100): the real-driver build
//                    (tests/gpu's gpu_lt_prog) runs with it
//   --dump-dir DIR   write each step's Ds as copied back to DIR/lt_f32d.D.<step>.bin (FP32) and
//                    DIR/lt_e4m3d.D.<step>.bin (E4M3 codes): a real cuBLASLt sums in its own
//                    order, so a checker measures the D it produced (tests/gpu/gpu_path_check.cpp)
#include <cublasLt.h>
#include <cuda.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "mock_lt_data.h"
#include "mock_prog_util.h"

namespace {

using mock_prog::api;

template <class T>
void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, T v) {
  CHECK_BLAS(cublasLtMatmulDescSetAttribute(d, a, &v, sizeof v));
}

template <class T>
double checksum(const std::vector<T>& d) {
  double s = 0.0;
  for (size_t i = 0; i < d.size(); ++i)
    s += static_cast<double>(d[i]) * static_cast<double>(i % 7 + 1);
  return s;
}

CUdeviceptr alloc(size_t bytes) {
  CUdeviceptr p = 0;
  CHECK_CU(cuMemAlloc(&p, bytes));
  return p;
}
void* ptr(CUdeviceptr p) {
  return reinterpret_cast<void*>(p);
}

// D's bytes as copied back, to DIR/NAME.STEP.bin (--dump-dir).
template <class T>
void dump(const std::string& dir, const char* name, int step, const std::vector<T>& d) {
  if (dir.empty()) return;
  const std::string path = dir + "/" + name + "." + std::to_string(step) + ".bin";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(d.data(), sizeof(T), d.size(), f) != d.size() ||
      std::fclose(f) != 0) {
    std::fprintf(stderr, "mock_lt_prog: cannot write %s\n", path.c_str());
    std::exit(4);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 3;
  bool block = true, device_scalars = false;
  std::string dump_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (a == "--no-block") {
      block = false;
    } else if (a == "--device-scalars") {
      device_scalars = true;
    } else if (a == "--dump-dir" && i + 1 < argc) {
      dump_dir = argv[++i];
    } else {
      std::fprintf(stderr, "mock_lt_prog: unknown argument %s\n", a.c_str());
      return 64;
    }
  }
  auto step = api<void (*)()>("fpscope_step");
  auto push = api<void (*)(const char*)>("fpscope_scope_push");
  auto pop = api<void (*)()>("fpscope_scope_pop");
  using namespace mock_lt;

  CHECK_CU(cuInit(0));
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  CUstream s = nullptr;
  CHECK_CU(cuDeviceGet(&dev, 0));
  CHECK_CU(cuDevicePrimaryCtxRetain(&ctx, dev));
  CHECK_CU(cuCtxSetCurrent(ctx));
  CHECK_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  cublasLtHandle_t lt = nullptr;
  CHECK_BLAS(cublasLtCreate(&lt));

  const size_t na = size_t{kK} * kM, nb = size_t{kK} * kN, nd = size_t{kM} * kN;
  const CUdeviceptr a = alloc(na), b = alloc(nb), mxa = alloc(na), mxb = alloc(nb);
  const CUdeviceptr ea = alloc(size_t{kM} * kKBlocks), eb = alloc(size_t{kN} * kKBlocks);
  const CUdeviceptr d32 = alloc(nd * sizeof(float)), d8 = alloc(nd),
                    dmx = alloc(nd * sizeof(float));
  const CUdeviceptr sa = alloc(sizeof(float)), sb = alloc(sizeof(float)), sd = alloc(sizeof(float));
  const CUdeviceptr amax = alloc(sizeof(float));
  const CUdeviceptr c16 = alloc(nd * 2);  // the E4M3-D GEMM's C: never read (beta 0)
  // --device-scalars: alpha, beta, a C of NaN and the D of lt_devptr.
  const CUdeviceptr dalpha = alloc(sizeof(float)), dbeta = alloc(sizeof(float));
  const CUdeviceptr cnan = alloc(nd * sizeof(float)), ddev = alloc(nd * sizeof(float));

  // Layouts: A stored k x m (used transposed), B k x n, D (and C, never read: beta 0) m x n.
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, l32 = nullptr, l8 = nullptr, l16 = nullptr;
  CHECK_BLAS(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, kK, kM, kK));
  CHECK_BLAS(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, kK, kN, kK));
  CHECK_BLAS(cublasLtMatrixLayoutCreate(&l32, CUDA_R_32F, kM, kN, kM));
  CHECK_BLAS(cublasLtMatrixLayoutCreate(&l8, CUDA_R_8F_E4M3, kM, kN, kM));
  CHECK_BLAS(cublasLtMatrixLayoutCreate(&l16, CUDA_R_16BF, kM, kN, kM));
  // The three matmul descriptors.
  cublasLtMatmulDesc_t mm[4] = {};
  for (auto& m : mm) {
    CHECK_BLAS(cublasLtMatmulDescCreate(&m, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    set_desc<int32_t>(m, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
    set_desc<int32_t>(m, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
  }
  set_desc<int32_t>(mm[3], CUBLASLT_MATMUL_DESC_POINTER_MODE, CUBLASLT_POINTER_MODE_DEVICE);
  for (int i : {0, 1, 3}) {
    set_desc<const void*>(mm[i], CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, ptr(sa));
    set_desc<const void*>(mm[i], CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, ptr(sb));
  }
  set_desc<const void*>(mm[1], CUBLASLT_MATMUL_DESC_D_SCALE_POINTER, ptr(sd));
  set_desc<void*>(mm[1], CUBLASLT_MATMUL_DESC_AMAX_D_POINTER, ptr(amax));
  if (block) {  // the scale modes are cuBLASLt 12.8's: an older one refuses the attribute
    set_desc<int32_t>(mm[2], CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
                      CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0);
    set_desc<int32_t>(mm[2], CUBLASLT_MATMUL_DESC_B_SCALE_MODE,
                      CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0);
    set_desc<const void*>(mm[2], CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, ptr(ea));
    set_desc<const void*>(mm[2], CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, ptr(eb));
  }

  std::vector<uint8_t> ha(na), hb(nb), hmxa(na), hmxb(nb), hea(size_t{kM} * kKBlocks),
      heb(size_t{kN} * kKBlocks), hd8(nd);
  std::vector<float> hd32(nd), hdmx(nd);
  auto upload = [&](uint32_t t) {
    for (uint32_t i = 0; i < na; ++i) ha[i] = code(0, i, t), hmxa[i] = code(2, i, t);
    for (uint32_t i = 0; i < nb; ++i) hb[i] = code(1, i, t), hmxb[i] = code(3, i, t);
    for (uint32_t r = 0; r < kM; ++r)
      for (uint32_t k = 0; k < kKBlocks; ++k) hea[r * kKBlocks + k] = block_exponent(0, r, k, t);
    for (uint32_t c = 0; c < kN; ++c)
      for (uint32_t k = 0; k < kKBlocks; ++k) heb[c * kKBlocks + k] = block_exponent(1, c, k, t);
    const float fa = scale_a(t), fb = scale_b(t), fd = scale_d(t);
    CHECK_CU(cuMemcpyHtoD(a, ha.data(), na));
    CHECK_CU(cuMemcpyHtoD(b, hb.data(), nb));
    CHECK_CU(cuMemcpyHtoD(mxa, hmxa.data(), na));
    CHECK_CU(cuMemcpyHtoD(mxb, hmxb.data(), nb));
    CHECK_CU(cuMemcpyHtoD(ea, hea.data(), hea.size()));
    CHECK_CU(cuMemcpyHtoD(eb, heb.data(), heb.size()));
    CHECK_CU(cuMemcpyHtoD(sa, &fa, sizeof fa));
    CHECK_CU(cuMemcpyHtoD(sb, &fb, sizeof fb));
    CHECK_CU(cuMemcpyHtoD(sd, &fd, sizeof fd));
  };
  const float one = 1.0f, zero = 0.0f;
  auto matmul = [&](const char* scope, cublasLtMatmulDesc_t m, CUdeviceptr A, CUdeviceptr B,
                    CUdeviceptr C, cublasLtMatrixLayout_t lc, CUdeviceptr D,
                    cublasLtMatrixLayout_t ld) {
    if (push != nullptr) push(scope);
    CHECK_BLAS(cublasLtMatmul(lt, m, &one, ptr(A), la, ptr(B), lb, &zero, ptr(C), lc, ptr(D), ld,
                              nullptr, nullptr, 0, reinterpret_cast<cudaStream_t>(s)));
    if (pop != nullptr) pop();
  };

  {
    const float one_f = 1.0f, zero_f = 0.0f;
    const std::vector<float> nan(nd, std::numeric_limits<float>::quiet_NaN());
    CHECK_CU(cuMemcpyHtoD(dalpha, &one_f, sizeof one_f));
    CHECK_CU(cuMemcpyHtoD(dbeta, &zero_f, sizeof zero_f));
    CHECK_CU(cuMemcpyHtoD(cnan, nan.data(), nd * sizeof(float)));
  }
  upload(0);
  for (int t = 0; t < steps; ++t) {
    matmul("lt_f32d", mm[0], a, b, d32, l32, d32, l32);
    matmul("lt_e4m3d", mm[1], a, b, c16, l16, d8, l8);
    if (block) matmul("lt_mx", mm[2], mxa, mxb, dmx, l32, dmx, l32);
    if (device_scalars) {
      if (push != nullptr) push("lt_devptr");
      CHECK_BLAS(cublasLtMatmul(lt, mm[3], ptr(dalpha), ptr(a), la, ptr(b), lb, ptr(dbeta),
                                ptr(cnan), l32, ptr(ddev), l32, nullptr, nullptr, 0,
                                reinterpret_cast<cudaStream_t>(s)));
      if (pop != nullptr) pop();
    }
    CHECK_CU(cuStreamSynchronize(s));
    CHECK_CU(cuMemcpyDtoH(hd32.data(), d32, nd * sizeof(float)));
    CHECK_CU(cuMemcpyDtoH(hd8.data(), d8, nd));
    if (block) CHECK_CU(cuMemcpyDtoH(hdmx.data(), dmx, nd * sizeof(float)));
    float hamax = 0.0f;
    CHECK_CU(cuMemcpyDtoH(&hamax, amax, sizeof hamax));
    dump(dump_dir, "lt_f32d.D", t, hd32);
    dump(dump_dir, "lt_e4m3d.D", t, hd8);
    std::printf("step %d f32d %.17g e4m3d %.17g amax %.9g", t, checksum(hd32), checksum(hd8),
                static_cast<double>(hamax));
    if (block) std::printf(" mx %.17g", checksum(hdmx));
    if (device_scalars) {
      CHECK_CU(cuMemcpyDtoH(hdmx.data(), ddev, nd * sizeof(float)));
      std::printf(" devptr %.17g", checksum(hdmx));
    }
    std::printf("\n");
    upload(static_cast<uint32_t>(t + 1));  // the "optimizer update" and the new scales
    if (step != nullptr) step();
  }
  for (auto m : mm) CHECK_BLAS(cublasLtMatmulDescDestroy(m));
  for (auto l : {la, lb, l32, l8, l16}) CHECK_BLAS(cublasLtMatrixLayoutDestroy(l));
  CHECK_BLAS(cublasLtDestroy(lt));
  for (CUdeviceptr p :
       {a, b, mxa, mxb, ea, eb, d32, d8, dmx, sa, sb, sd, amax, c16, dalpha, dbeta, cnan, ddev})
    CHECK_CU(cuMemFree(p));
  CHECK_CU(cuStreamDestroy(s));
  return 0;
}
