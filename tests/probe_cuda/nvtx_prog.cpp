// NVTX test program (no GPU): NVTX v3 ranges (header-only, nvtx3/nvToolsExt.h) around host BLAS
// sgemm_ calls (libfpscope_testblas.so). Run under the preloaded probe with NVTX_INJECTION64_PATH
// pointing at it, the ranges must name the tensors and mark the steps.
//
//   nvtx_prog push STEPS    each step inside nvtxRangePushA("step"); GEMMs in ranges:
//                             "fc1" (nvtxRangePushA)             1 GEMM, operand product 3
//                             "fc2" (nvtxRangePushA)             2 GEMMs, products 1.5, 0.5
//                             "head" (registered string, nvtxDomainRangePushEx) product 7
//                             L"wide\u00e9" (nvtxRangePushW)     product 2.5
//                             (no range)                         product 0.25
//   nvtx_prog start STEPS   the same GEMMs, the step marked by nvtxRangeStartA("Step <s>") ...
//                           nvtxRangeEnd, inner names by nvtxRangePushEx (ASCII messages)
// Every GEMM is m=8, n=6, k=4, A and B constant, so D = 4 * product * (s + 1) everywhere in step
// s (0-based): the test checks each observation's amax against the step it lands in.
#include <nvtx3/nvToolsExt.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b,
                       const int* ldb, const float* beta, float* c, const int* ldc);

namespace {

constexpr int kM = 8, kN = 6, kK = 4;

void gemm(float product, int step) {
  std::vector<float> a(kM * kK, product * static_cast<float>(step + 1)), b(kK * kN, 1.0f),
      c(kM * kN, 0.0f);
  const float alpha = 1.0f, beta = 0.0f;
  sgemm_("N", "N", &kM, &kN, &kK, &alpha, a.data(), &kM, b.data(), &kK, &beta, c.data(), &kM);
  const float want = static_cast<float>(kK) * product * static_cast<float>(step + 1);
  if (c[0] != want) {
    std::fprintf(stderr, "nvtx_prog: sgemm_ gave %g, expected %g\n", c[0], want);
    std::exit(1);
  }
}

nvtxEventAttributes_t ascii_attr(const char* m) {
  nvtxEventAttributes_t a;
  std::memset(&a, 0, sizeof a);
  a.version = NVTX_VERSION;
  a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  a.messageType = NVTX_MESSAGE_TYPE_ASCII;
  a.message.ascii = m;
  return a;
}

void body(int s, bool ex) {
  if (ex) {
    const nvtxEventAttributes_t a = ascii_attr("fc1");
    nvtxRangePushEx(&a);
  } else {
    nvtxRangePushA("fc1");
  }
  gemm(3.0f, s);
  nvtxRangePop();

  nvtxRangePushA("fc2");
  gemm(1.5f, s);
  gemm(0.5f, s);
  nvtxRangePop();

  static const nvtxStringHandle_t head = nvtxDomainRegisterStringA(nullptr, "head");
  nvtxEventAttributes_t h;
  std::memset(&h, 0, sizeof h);
  h.version = NVTX_VERSION;
  h.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  h.messageType = NVTX_MESSAGE_TYPE_REGISTERED;
  h.message.registered = head;
  nvtxDomainRangePushEx(nullptr, &h);
  gemm(7.0f, s);
  nvtxDomainRangePop(nullptr);

  nvtxRangePushW(L"wide\u00e9");
  gemm(2.5f, s);
  nvtxRangePop();

  gemm(0.25f, s);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: nvtx_prog push|start STEPS\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int steps = std::atoi(argv[2]);
  for (int s = 0; s < steps; ++s) {
    if (mode == "push") {
      nvtxRangePushA("step");
      body(s, false);
      nvtxRangePop();
    } else if (mode == "start") {
      const std::string name = "Step " + std::to_string(s);
      const nvtxRangeId_t id = nvtxRangeStartA(name.c_str());
      body(s, true);
      nvtxRangeEnd(id);
    } else {
      std::fprintf(stderr, "nvtx_prog: unknown mode %s\n", mode.c_str());
      return 2;
    }
  }
  std::printf("nvtx_prog: %d steps\n", steps);
  return 0;
}
