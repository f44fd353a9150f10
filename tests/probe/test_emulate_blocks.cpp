// Block-scaled emulated precision (issue 18 item 1: `fpscope record --emulate mxfp8|...|nvfp4`):
// the SPECs and their canonical names, the plan, and the operand copy's blocks along the view's
// block axis (the numerics of one block: tests/kernels/test_block_qdq.cpp against CUDA's casts).
#include <stdlib.h>

#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "config.h"
#include "emulate.h"
#include "fpscope/block_numerics.h"

using namespace fpscope::probe;
using fpscope::Format;

namespace {

TEST(EmulateBlocks, SpecsParseCaseInsensitivelyAndStampTheTableName) {
  struct Case {
    const char* spec;
    EmulateMode mode;
    const char* name;
  };
  const Case cases[] = {{"mxfp8", EmulateMode::Mxfp8E4M3, "mxfp8_e4m3"},
                        {"MXFP8_E4M3", EmulateMode::Mxfp8E4M3, "mxfp8_e4m3"},
                        {"mxfp8_e5m2", EmulateMode::Mxfp8E5M2, "mxfp8_e5m2"},
                        {"MxFp6_E3M2", EmulateMode::Mxfp6E3M2, "mxfp6_e3m2"},
                        {"mxfp6_e2m3", EmulateMode::Mxfp6E2M3, "mxfp6_e2m3"},
                        {"mxfp4", EmulateMode::Mxfp4, "mxfp4"},
                        {"NVFP4", EmulateMode::Nvfp4, "nvfp4"}};
  for (const Case& c : cases) {
    EmulateSettings e;
    ASSERT_TRUE(parse_emulate_spec(c.spec, &e)) << c.spec;
    EXPECT_EQ(e.mode, c.mode) << c.spec;
    EXPECT_FALSE(e.fp8()) << c.spec;  // no per-tensor scaling policy
    EXPECT_EQ(emulate_spec_name(e), c.name) << c.spec;
    EXPECT_EQ(std::string(fpscope::kBlockFormats[emulate_block_format(e.mode)]->name), c.name);
  }
  EXPECT_EQ(emulate_block_format(EmulateMode::Hybrid), -1);
  EXPECT_EQ(emulate_block_format(EmulateMode::BF16), -1);
  for (const char* bad :
       {"mxfp8:current", "nvfp4:delayed", "mxfp6", "mxfp8_e4m2", "fp4", "mxfp4_e2m1", "nvfp8"}) {
    EmulateSettings e;
    EXPECT_FALSE(parse_emulate_spec(bad, &e)) << bad;
  }
  // Through the environment: the gate is on, the config stamps the canonical name; a bad SPEC
  // is one warning and emulation stays off.
  setenv("FPSCOPE_EMULATE", "Mxfp8", 1);
  Config c = load_config();
  EXPECT_NE(c.emulate, Format::FP32);
  EXPECT_EQ(nlohmann::json::parse(config_json(c))["emulate"], "mxfp8_e4m3");
  setenv("FPSCOPE_EMULATE", "nvfp4", 1);
  EXPECT_NE(load_config().emulate, Format::FP32);
  EXPECT_EQ(loaded_emulation().mode, EmulateMode::Nvfp4);  // what the hooks read
  setenv("FPSCOPE_EMULATE", "nvfp4:current", 1);
  testing::internal::CaptureStderr();
  EXPECT_EQ(load_config().emulate, Format::FP32);
  const std::string err = testing::internal::GetCapturedStderr();
  const std::string line = "[fpscope] warning: FPSCOPE_EMULATE='nvfp4:current'";
  const size_t at = err.find(line);
  EXPECT_NE(at, std::string::npos) << err;
  EXPECT_EQ(err.find(line, at + 1), std::string::npos) << err;
  unsetenv("FPSCOPE_EMULATE");
}

TEST(EmulateBlocks, PlanIsTheBlockFormatWithBf16OutputAndSkipsApply) {
  for (int f = 0; f < fpscope::kNumBlockFormats; ++f) {
    EmulateSettings s;
    s.mode = static_cast<EmulateMode>(static_cast<int>(EmulateMode::Mxfp8E4M3) + f);
    s.skip = {"lm_head"};
    Emulator e(s);
    // --emulate-skip as for the other modes: the op and its backward stay FP32.
    EXPECT_TRUE(e.skipped("lm_head"));
    EXPECT_TRUE(e.skipped("lm_head.bwd"));
    EXPECT_FALSE(e.skipped("layers.0.fc1"));
    EXPECT_FALSE(e.fp8());
    fpscope::probe::GemmDesc d;
    const float amax[2] = {0.0f, 0.0f};
    const EmulatePlan p = e.plan(d, "", 0, amax);
    EXPECT_FALSE(p.skip);
    EXPECT_EQ(p.block, f);
    EXPECT_EQ(p.out, Format::BF16);
  }
}

// A column-major view with gaps (ld > rows). Element (i, j) of the view: v(i, j).
struct View {
  OperandDesc o;
  std::vector<float> data;
  float& at(uint64_t i, uint64_t j) { return data[i + j * o.ld]; }
};
View make_view(uint64_t rows, uint64_t cols, fpscope::BlockAxis axis) {
  View v;
  v.o.rows = rows;
  v.o.cols = cols;
  v.o.ld = rows + 3;
  v.o.block_axis = axis;
  v.data.assign(v.o.ld * cols, 1e30f);  // the gaps: huge, so that reading one shows
  for (uint64_t j = 0; j < cols; ++j)
    for (uint64_t i = 0; i < rows; ++i)
      v.at(i, j) = std::ldexp(static_cast<float>((i * 7 + j * 13) % 23) - 11.0f,
                              static_cast<int>((i + 2 * j) % 9) - 4);
  return v;
}

// The copy's blocks: consecutive elements of one stored column (Rows) or of one stored row
// across consecutive columns (Cols), a line's last block shorter; each block's values those of
// the per-block function on the block gathered by hand.
void check_copy(int f, fpscope::BlockAxis axis, uint64_t rows, uint64_t cols) {
  View v = make_view(rows, cols, axis);
  const float s_enc = fpscope::nvfp4_tensor_scale(emulate_amax(v.data.data(), v.o));
  EmulatePlan p;
  p.block = f;
  const auto got = emulate_operand_copy(p, 0, v.data.data(), v.o);
  const auto bs = static_cast<uint64_t>(fpscope::block_size_of(f));
  const bool rows_axis = axis == fpscope::BlockAxis::Rows;
  const uint64_t lines = rows_axis ? cols : rows, len = rows_axis ? rows : cols;
  for (uint64_t l = 0; l < lines; ++l)
    for (uint64_t s = 0; s < len; s += bs) {
      const uint64_t n = std::min(bs, len - s);
      std::vector<float> x, y(n);
      for (uint64_t t = s; t < s + n; ++t) x.push_back(rows_axis ? v.at(t, l) : v.at(l, t));
      fpscope::block_qdq_of(f, x.data(), static_cast<int>(n), s_enc, y.data());
      for (uint64_t t = 0; t < n; ++t) {
        const uint64_t i = rows_axis ? s + t : l, j = rows_axis ? l : s + t;
        ASSERT_EQ(got[i + j * v.o.ld], y[t])
            << "format " << f << " axis " << rows_axis << " (" << i << ", " << j << ")";
      }
    }
}

TEST(EmulateBlocks, CopyQuantizesBlocksAlongTheViewsBlockAxis) {
  for (int f = 0; f < fpscope::kNumBlockFormats; ++f)
    for (fpscope::BlockAxis axis : {fpscope::BlockAxis::Rows, fpscope::BlockAxis::Cols}) {
      check_copy(f, axis, 70, 5);
      check_copy(f, axis, 5, 70);
    }
  // The axis matters (so the check above can fail): MXFP4 of a view whose columns have very
  // different magnitudes; along Rows each column keeps its own scale, along Cols the small
  // column's elements share a row block with a large one and flush to 0.
  View v = make_view(32, 32, fpscope::BlockAxis::Rows);
  for (uint64_t i = 0; i < 32; ++i) {
    v.at(i, 0) = 1000.0f;
    v.at(i, 1) = 0.001f;
  }
  EmulatePlan p;
  p.block = 4;
  EXPECT_EQ(emulate_operand_copy(p, 0, v.data.data(), v.o)[1 * v.o.ld], 0.0009765625f);
  v.o.block_axis = fpscope::BlockAxis::Cols;
  EXPECT_EQ(emulate_operand_copy(p, 0, v.data.data(), v.o)[1 * v.o.ld], 0.0f);
}

TEST(EmulateBlocks, Nvfp4TensorScaleIsTheViewsAmax) {
  // One 16-element block of 1..16 (amax 16: s_enc = 2688 / 16 = 168, sf = E4M3(16 / 6 * 168 =
  // 448) = 448, factor 168 / 448 = 0.375); the gaps' 1e30 must not count. 16 * 0.375 = 6 -> 6,
  // decoded 6 * 448 / 168 = 16; 1 * 0.375 -> 0.5 (nearer than 0), decoded 0.5 * 448 / 168 =
  // 1.333...
  OperandDesc o;
  o.rows = 16;
  o.cols = 1;
  o.ld = 20;
  std::vector<float> x(20, 1e30f);
  for (int i = 0; i < 16; ++i) x[i] = static_cast<float>(i + 1);
  EmulatePlan p;
  p.block = 5;
  const auto q = emulate_operand_copy(p, 0, x.data(), o);
  EXPECT_EQ(q[15], 16.0f);
  EXPECT_EQ(q[0], 224.0f / 168.0f);
}

}  // namespace
