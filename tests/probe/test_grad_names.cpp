// Backward GEMMs named after their forward GEMM by the buffers they read (probe/src/grad_names.h),
// on the calls nn.Linear and numpy issue, worked out by hand.
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "grad_names.h"

using namespace fpscope::probe;
using fpscope::trace::Role;

namespace {

OperandDesc op(Role role, const void* data, uint64_t rows, uint64_t cols) {
  OperandDesc o;
  o.role = role;
  o.rows = rows;
  o.cols = cols;
  o.ld = rows;
  o.data = data;
  return o;
}

GemmDesc gemm(const char* name, int layout, OperandDesc a, OperandDesc b, OperandDesc d) {
  GemmDesc g;
  g.op = name;
  g.layout = layout;
  g.operands[0] = a;
  g.operands[1] = b;
  g.operands[2] = d;
  g.num_operands = 3;
  return g;
}

// nn.Linear(in 16, out 32) on 5 rows, as PyTorch's CPU sgemm_ sees it (column-major):
//   forward y^T (32 x 5)  = W (A, stored 16 x 32, op T) . x^T (B, stored 16 x 5)
//   dgrad   dx^T (16 x 5) = W (A, stored 16 x 32)       . dy^T (B, stored 32 x 5)
//   wgrad   dW^T (16 x 32) = x^T (A, stored 16 x 5)     . dy (B, op T, stored 32 x 5)
float W[16 * 32], X[16 * 5], Y[32 * 5], DY[32 * 5], DX[16 * 5], DW[16 * 32];

TEST(GradNamer, LinearBackwardInAModuleScope) {
  GradNamer n(false);
  const GemmDesc fwd =
      gemm("sgemm", 0, op(Role::A, W, 16, 32), op(Role::B, X, 16, 5), op(Role::D, Y, 32, 5));
  const GemmDesc dgrad =
      gemm("sgemm", 0, op(Role::A, W, 16, 32), op(Role::B, DY, 32, 5), op(Role::D, DX, 16, 5));
  const GemmDesc wgrad =
      gemm("sgemm", 0, op(Role::A, X, 16, 5), op(Role::B, DY, 32, 5), op(Role::D, DW, 16, 32));
  EXPECT_EQ(n.name("fc", "fc", fwd, 0), "fc");
  EXPECT_EQ(n.name("fc.bwd", "fc.bwd", dgrad, 0), "fc.dgrad");
  EXPECT_EQ(n.name("fc.bwd#1", "fc.bwd", wgrad, 0), "fc.wgrad");
  EXPECT_EQ(n.name("fc.bwd#2", "fc.bwd", wgrad, 0), "fc.wgrad#1");  // a second one in the step
  // Another step: the forward of the last step is forgotten (its buffers may be reused).
  EXPECT_EQ(n.name("fc.bwd", "fc.bwd", dgrad, 1), "fc.bwd");
  // Unscoped calls stay as labelled unless asked for.
  EXPECT_EQ(n.name("gemm#0", "", fwd, 2), "gemm#0");
  EXPECT_EQ(n.name("gemm#1", "", dgrad, 2), "gemm#1");
}

TEST(GradNamer, NumpyRowMajorWithoutScopes) {
  // y (5 x 32) = x (5 x 16) @ W (16 x 32), CblasRowMajor: stored column-major views are the
  // transposes: A = x (16 x 5), B = W (32 x 16), D = y (32 x 5). The weight is B.
  // dx (5 x 16) = dy (5 x 32) @ W^T: A = dy, B = W (read), D stored 16 x 5 = x's view.
  // dW (16 x 32) = x^T @ dy: A = x (read), B = dy, D stored 32 x 16 = W's view.
  const int kRow = 101;
  GradNamer n(true);
  const GemmDesc fwd = gemm("cblas_sgemm", kRow, op(Role::A, X, 16, 5), op(Role::B, W, 32, 16),
                            op(Role::D, Y, 32, 5));
  const GemmDesc dgrad = gemm("cblas_sgemm", kRow, op(Role::A, DY, 32, 5), op(Role::B, W, 32, 16),
                              op(Role::D, DX, 16, 5));
  const GemmDesc wgrad = gemm("cblas_sgemm", kRow, op(Role::A, X, 16, 5), op(Role::B, DY, 32, 5),
                              op(Role::D, DW, 32, 16));
  EXPECT_EQ(n.name("gemm#0", "", fwd, 0), "gemm#0");
  EXPECT_EQ(n.name("gemm#1", "", dgrad, 0), "gemm#0.dgrad");
  EXPECT_EQ(n.name("gemm#2", "", wgrad, 0), "gemm#0.wgrad");
  // A GEMM that reads the weight but writes neither shape is a forward GEMM of its own.
  const GemmDesc other = gemm("cblas_sgemm", kRow, op(Role::A, DY, 32, 7), op(Role::B, W, 32, 16),
                              op(Role::D, DX, 16, 7));
  EXPECT_EQ(n.name("gemm#3", "", other, 0), "gemm#3");
}

TEST(GradNamer, SameShapeOtherBufferIsNoMatch) {
  GradNamer n(true);
  float w2[16 * 32];
  const GemmDesc fwd =
      gemm("sgemm", 0, op(Role::A, W, 16, 32), op(Role::B, X, 16, 5), op(Role::D, Y, 32, 5));
  const GemmDesc unrelated =
      gemm("sgemm", 0, op(Role::A, w2, 16, 32), op(Role::B, DY, 32, 5), op(Role::D, DX, 16, 5));
  EXPECT_EQ(n.name("gemm#0", "", fwd, 0), "gemm#0");
  EXPECT_EQ(n.name("gemm#1", "", unrelated, 0), "gemm#1");
}

// Seen on tests/models/transformer.py: a backward call of "self_attn.bwd" reading a buffer whose
// address a linear1 forward GEMM also read (the allocator reuses freed memory within a step) was
// named "linear1.wgrad#1", and which name it got changed from run to run. A "<path>.bwd" call
// matches only forward GEMMs made in <path> or its submodules.
TEST(GradNamer, BackwardScopeMatchesOnlyForwardsOfItsModule) {
  GradNamer n(false);
  const GemmDesc fwd =
      gemm("sgemm", 0, op(Role::A, W, 16, 32), op(Role::B, X, 16, 5), op(Role::D, Y, 32, 5));
  const GemmDesc wgrad =
      gemm("sgemm", 0, op(Role::A, X, 16, 5), op(Role::B, DY, 32, 5), op(Role::D, DW, 16, 32));
  EXPECT_EQ(n.name("layer.linear1", "layer.linear1", fwd, 0), "layer.linear1");
  EXPECT_EQ(n.name("layer.attn.bwd", "layer.attn.bwd", wgrad, 0), "layer.attn.bwd");
  // The module's own backward, and a parent's (its output hook fired last), still match.
  EXPECT_EQ(n.name("layer.linear1.bwd", "layer.linear1.bwd", wgrad, 0), "layer.linear1.wgrad");
  EXPECT_EQ(n.name("layer.bwd", "layer.bwd", wgrad, 0), "layer.linear1.wgrad#1");
  // "layer.lin" is not a parent of "layer.linear1".
  EXPECT_EQ(n.name("layer.lin.bwd", "layer.lin.bwd", wgrad, 0), "layer.lin.bwd");
}

// A buffer that a later GEMM writes no longer holds what the forward GEMM read there.
TEST(GradNamer, BufferOverwrittenByALaterGemmIsNoMatch) {
  GradNamer n(true);
  float t[16 * 5];
  const GemmDesc fwd =
      gemm("sgemm", 0, op(Role::A, W, 16, 32), op(Role::B, X, 16, 5), op(Role::D, Y, 32, 5));
  const GemmDesc writes_x =
      gemm("sgemm", 0, op(Role::A, t, 16, 5), op(Role::B, t, 16, 5), op(Role::D, X, 16, 5));
  const GemmDesc wgrad =
      gemm("sgemm", 0, op(Role::A, X, 16, 5), op(Role::B, DY, 32, 5), op(Role::D, DW, 16, 32));
  const GemmDesc dgrad =
      gemm("sgemm", 0, op(Role::A, W, 16, 32), op(Role::B, DY, 32, 5), op(Role::D, DX, 16, 5));
  EXPECT_EQ(n.name("gemm#0", "", fwd, 0), "gemm#0");
  EXPECT_EQ(n.name("gemm#1", "", writes_x, 0), "gemm#1");
  EXPECT_EQ(n.name("gemm#2", "", dgrad, 0), "gemm#0.dgrad");  // W was not overwritten
  EXPECT_EQ(n.name("gemm#3", "", wgrad, 0), "gemm#3");        // X was
}

}  // namespace
