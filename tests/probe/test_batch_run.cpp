// Which consecutive calls are one batched GEMM (probe/src/batch_run.h), on the address patterns
// of PyTorch's CPU bmm, an RNN's time steps, q/k/v projections and a loop over fresh arrays.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "batch_run.h"

using namespace fpscope::probe;
using fpscope::trace::Role;

namespace {

// An 8 x 8 x 8 sgemm with A, B, D at the given addresses.
GemmDesc call(const float* a, const float* b, const float* d) {
  GemmDesc g;
  g.op = "sgemm";
  g.sig.m = g.sig.n = g.sig.k = 8;
  g.sig.lda = g.sig.ldb = g.sig.ldc = 8;
  const float* p[3] = {a, b, d};
  const Role r[3] = {Role::A, Role::B, Role::D};
  for (int i = 0; i < 3; ++i) {
    g.operands[i].role = r[i];
    g.operands[i].rows = g.operands[i].cols = g.operands[i].ld = 8;
    g.operands[i].data = p[i];
  }
  g.num_operands = 3;
  return g;
}

constexpr int kMat = 64;  // elements of one 8 x 8 matrix

TEST(BatchRun, BmmOverBatchAndHeadsIsOneRun) {
  std::vector<float> q(8 * kMat), k(8 * kMat), s(8 * kMat);
  BatchRun run;
  run.start(call(&q[0], &k[0], &s[0]), "attn");
  for (int i = 1; i < 8; ++i)
    EXPECT_TRUE(run.extend(call(&q[i * kMat], &k[i * kMat], &s[i * kMat]), "attn")) << i;
  EXPECT_EQ(run.count(), 8u);
  // The next op (another scope, or a stride that breaks the pattern) is not part of it.
  EXPECT_FALSE(run.extend(call(&q[0], &k[0], &s[0]), "attn"));
  EXPECT_FALSE(run.extend(call(&q[0], &k[0], &s[0]), "proj"));
}

TEST(BatchRun, InterleavedHeadsAsInputs) {
  // Q of 8 heads interleaved in one [tokens, heads * 8] tensor: matrix i at 8 * i, ld 64.
  std::vector<float> q(8 * kMat), k(8 * kMat), s(8 * kMat);
  auto interleaved = [&](int i) {
    GemmDesc g = call(&q[8 * i], &k[i * kMat], &s[i * kMat]);
    g.sig.lda = 64;
    g.operands[0].ld = 64;
    return g;
  };
  BatchRun run;
  run.start(interleaved(0), "");
  for (int i = 1; i < 8; ++i) EXPECT_TRUE(run.extend(interleaved(i), "")) << i;
}

TEST(BatchRun, RnnTimeStepsAreSeparateCalls) {
  // h_{t+1} = W h_t: the weight is shared (stride 0) and each input is the last output.
  std::vector<float> w(kMat), h(9 * kMat);
  BatchRun run;
  run.start(call(&w[0], &h[0], &h[kMat]), "");
  EXPECT_FALSE(run.extend(call(&w[0], &h[kMat], &h[2 * kMat]), ""));
  // Even with a weight that advances, reading the run's own output ends it.
  std::vector<float> ws(9 * kMat);
  run.start(call(&ws[0], &h[0], &h[kMat]), "");
  EXPECT_FALSE(run.extend(call(&ws[kMat], &h[kMat], &h[2 * kMat]), ""));
}

TEST(BatchRun, SharedInputOrLooseArraysAreSeparateOps) {
  // q, k, v projections of one input x: x is read by every call (stride 0).
  std::vector<float> x(kMat), w(3 * kMat), out(3 * kMat);
  BatchRun run;
  run.start(call(&w[0], &x[0], &out[0]), "");
  EXPECT_FALSE(run.extend(call(&w[kMat], &x[0], &out[kMat]), ""));
  // A loop over separately allocated arrays (a 16-byte allocator header between them): farther
  // apart than one matrix.
  constexpr int kGap = kMat + 4;
  std::vector<float> heap(3 * 3 * kGap);
  auto loose = [&](int i) {
    return call(&heap[i * kGap], &heap[(3 + i) * kGap], &heap[(6 + i) * kGap]);
  };
  run.start(loose(0), "");
  EXPECT_FALSE(run.extend(loose(1), ""));
}

}  // namespace
