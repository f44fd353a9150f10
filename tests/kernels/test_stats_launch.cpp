// The statistics kernels' launchers (stats_cuda.h, kernels/src/stats_launch.cpp) through a
// KernelQueue over host memory that runs each launch in the kernels' CPU model
// (stats_kernel_host.h): the results against the host passes (compute_stats,
// compute_update_loss, decode_storage), and the launches themselves (entry, grid, block) against
// what the CUDA-runtime launchers they replace enqueued.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "block_counts_expect.h"
#include "fpscope/host_stats.h"
#include "fpscope/numerics.h"
#include "fpscope/stats_cuda.h"
#include "fpscope/stats_kernel_host.h"
#include "fpscope/stats_sim.h"
#include "fpscope/update_loss.h"
#include "tensor_stats_expect.h"

namespace {
using fpscope::BlockAxis;
using fpscope::Format;
using fpscope::StatsKernel;
using fpscope::TensorStats;

// Host memory as "device" memory; every call is logged ("memset <bytes>", "copy <bytes>",
// "<entry> <grid>x<block>").
class HostQueue : public fpscope::KernelQueue {
 public:
  unsigned resident = 0;  // what resident_blocks answers
  std::vector<std::string> log;

  CUresult memset_zero(void* d_dst, size_t bytes) override {
    log.push_back("memset " + std::to_string(bytes));
    std::memset(d_dst, 0, bytes);
    return CUDA_SUCCESS;
  }
  CUresult copy_device(void* d_dst, const void* d_src, size_t bytes) override {
    log.push_back("copy " + std::to_string(bytes));
    std::memcpy(d_dst, d_src, bytes);
    return CUDA_SUCCESS;
  }
  CUresult launch(StatsKernel k, unsigned grid, unsigned block, const void* args) override {
    log.push_back(std::string(fpscope::stats_kernel_name(k)) + " " + std::to_string(grid) + "x" +
                  std::to_string(block));
    return fpscope::run_stats_kernel_on_host(k, grid, block, args);
  }
  unsigned resident_blocks(StatsKernel) override { return resident; }
};

const float kScales[fpscope::kNumTargets] = {1.0f, 2.0f, 448.0f / 30.0f, 0.125f};

// Normal values times 2^[-30, 18], FP32 subnormals, NaN, -Inf and zeros.
std::vector<float> fp32_data(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_int_distribution<int> ex(-30, 18);
  std::vector<float> v(n);
  for (auto& x : v) x = std::ldexp(g(rng), ex(rng));
  for (size_t i = 0; i < n; i += 113) v[i] = NAN;
  for (size_t i = 1; i < n; i += 457) v[i] = -INFINITY;
  for (size_t i = 2; i < n; i += 59) v[i] = 0.0f;
  for (size_t i = 3; i < n; i += 211) v[i] = 1e-40f;
  return v;
}

// Storage bytes of n elements of dtype: FP32 from fp32_data, the others every code at random.
std::vector<unsigned char> storage(Format dtype, size_t n, uint32_t seed) {
  if (dtype == Format::FP32) {
    const auto v = fp32_data(n, seed);
    std::vector<unsigned char> b(n * 4);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  }
  const size_t width = dtype == Format::BF16 || dtype == Format::FP16 ? 2 : 1;
  std::mt19937 rng(seed);
  std::vector<unsigned char> b(n * width);
  for (auto& c : b) c = static_cast<unsigned char>(rng());
  return b;
}
size_t width_of(Format dtype) {
  return dtype == Format::FP32 ? 4 : (dtype == Format::BF16 || dtype == Format::FP16 ? 2 : 1);
}

// a (through the launchers) against b (the host pass): tests/support/tensor_stats_expect.h.
using fpscope::test::expect_same;

// The elements of a batched strided view, packed column by column (what compute_stats reads).
std::vector<unsigned char> pack(const std::vector<unsigned char>& all, size_t width, uint64_t rows,
                                uint64_t cols, uint64_t ld, uint64_t batch, uint64_t stride) {
  std::vector<unsigned char> out;
  for (uint64_t b = 0; b < batch; ++b)
    for (uint64_t j = 0; j < cols; ++j) {
      const unsigned char* col = all.data() + (b * stride + j * ld) * width;
      out.insert(out.end(), col, col + rows * width);
    }
  return out;
}

const Format kDtypes[] = {Format::FP32, Format::BF16, Format::FP16, Format::E4M3, Format::E5M2};
// The entries' dtype suffix (stats_kernel_abi.h), written out.
const char* suffix(Format dtype) {
  switch (dtype) {
    case Format::FP32:
      return "fp32";
    case Format::BF16:
      return "bf16";
    case Format::FP16:
      return "fp16";
    case Format::E4M3:
      return "e4m3";
    default:
      return "e5m2";
  }
}

TEST(StatsLaunch, TensorStatsEqualHostPassEveryDtype) {
  for (Format dtype : kDtypes) {
    SCOPED_TRACE(fpscope::kFormats[static_cast<int>(dtype)].name);
    const uint64_t rows = 700, cols = 90;  // 63000 elements: 16 blocks of the kernel
    const auto data = storage(dtype, rows * cols, 7);
    HostQueue q;
    auto dev = std::make_unique<TensorStats>();
    ASSERT_EQ(
        fpscope::launch_tensor_stats(q, data.data(), dtype, rows, cols, rows, kScales, dev.get()),
        CUDA_SUCCESS);
    fpscope::StatsOptions opt;
    std::copy(kScales, kScales + fpscope::kNumTargets, opt.scale);
    auto host = std::make_unique<TensorStats>();
    fpscope::compute_stats(data.data(), dtype, rows, cols, rows, opt, host.get());
    expect_same(*dev, *host);
    EXPECT_EQ(q.log.at(2), std::string("fpscope_tensor_stats_") + suffix(dtype) + " 16x256");
  }
}

TEST(StatsLaunch, StridedBatchedViewEqualsHostPassOfItsElements) {
  for (Format dtype : kDtypes) {
    SCOPED_TRACE(fpscope::kFormats[static_cast<int>(dtype)].name);
    const uint64_t rows = 37, cols = 23, ld = 41, batch = 3, stride = 41 * 23 + 5;
    const size_t w = width_of(dtype);
    const auto all = storage(dtype, stride * batch, 11);
    HostQueue q;
    q.resident = 1;  // one block grid-strides over everything
    auto dev = std::make_unique<TensorStats>();
    ASSERT_EQ(fpscope::launch_tensor_stats_batched(q, all.data(), dtype, rows, cols, ld, batch,
                                                   stride, kScales, dev.get()),
              CUDA_SUCCESS);
    const auto packed = pack(all, w, rows, cols, ld, batch, stride);
    fpscope::StatsOptions opt;
    std::copy(kScales, kScales + fpscope::kNumTargets, opt.scale);
    auto host = std::make_unique<TensorStats>();
    fpscope::compute_stats(packed.data(), dtype, packed.size() / w, 1, packed.size() / w, opt,
                           host.get());
    expect_same(*dev, *host);
  }
}

// The launchers' result is the CPU model of the kernel run with the grid the launcher chose,
// bit for bit (same order of every sum), with a ValueScale read from "device" memory.
TEST(StatsLaunch, ValueScaleBitIdenticalToTheKernelModelAtTheLaunchedGrid) {
  const uint64_t rows = 1000, cols = 300, ld = 1003;
  const auto codes = storage(Format::E4M3, ld * cols, 5);
  const float scale = 0.0371f;
  for (auto op : {fpscope::ValueScaleOp::Multiply, fpscope::ValueScaleOp::Divide}) {
    HostQueue q;
    q.resident = 13;
    const fpscope::ValueScale vs{&scale, op};
    auto dev = std::make_unique<TensorStats>();
    ASSERT_EQ(fpscope::launch_tensor_stats(q, codes.data(), Format::E4M3, rows, cols, ld, kScales,
                                           dev.get(), vs),
              CUDA_SUCCESS);
    ASSERT_EQ(q.log.at(2), "fpscope_tensor_stats_e4m3 13x256");
    auto model = std::make_unique<TensorStats>();
    fpscope::simulate_tensor_stats_kernel(codes.data(), Format::E4M3, rows, cols, ld, 1, 0, kScales,
                                          model.get(), 13, vs);
    EXPECT_EQ(std::memcmp(dev.get(), model.get(), sizeof(TensorStats)), 0);
    // And the values measured are the scaled ones: the host pass over fl(decode(code) op s).
    std::vector<float> values;
    for (uint64_t j = 0; j < cols; ++j)
      for (uint64_t i = 0; i < rows; ++i) {
        const float x = fpscope::decode_storage(Format::E4M3, codes[j * ld + i]);
        values.push_back(op == fpscope::ValueScaleOp::Divide ? x / scale : x * scale);
      }
    fpscope::StatsOptions opt;
    std::copy(kScales, kScales + fpscope::kNumTargets, opt.scale);
    auto host = std::make_unique<TensorStats>();
    fpscope::compute_stats(values.data(), Format::FP32, values.size(), 1, values.size(), opt,
                           host.get());
    expect_same(*dev, *host);
  }
}

// Block formats: the launchers' pass against compute_stats with every block format on (the
// same block_numerics.h math per block): counts and scale histograms exactly.
void expect_same_blocks(const fpscope::BlockStatsSet& d, const fpscope::BlockStatsSet& h) {
  EXPECT_EQ(d.mask, h.mask);
  EXPECT_EQ(d.axis, h.axis);
  EXPECT_EQ(d.nvfp4_tensor_scale, h.nvfp4_tensor_scale);
  for (int f = 0; f < fpscope::kNumBlockFormats; ++f) {
    SCOPED_TRACE(fpscope::kBlockFormats[f]->name);
    const auto &a = d.fmt[f], &b = h.fmt[f];
    fpscope::test::expect_same_block_counts(a, b);
    EXPECT_NEAR(a.sum_err2, b.sum_err2, 1e-4 * b.sum_err2);
    EXPECT_NEAR(a.sum_x2, b.sum_x2, 1e-9 * b.sum_x2);
    for (int i = 0; i < fpscope::kBlockScaleBins; ++i)
      ASSERT_EQ(d.scale_hist[f][i], h.scale_hist[f][i]) << "bin " << i;
  }
}

TEST(StatsLaunch, BlockStatsEqualHostBlockPass) {
  struct Case {
    Format dtype;
    uint64_t rows, cols, ld;
    BlockAxis axis;
  };
  for (const Case& c : {Case{Format::FP32, 1000, 40, 1003, BlockAxis::Rows},
                        Case{Format::FP32, 111, 100, 123, BlockAxis::Cols},
                        Case{Format::BF16, 333, 20, 333, BlockAxis::Rows},
                        Case{Format::FP16, 64, 70, 64, BlockAxis::Cols},
                        Case{Format::E4M3, 100, 50, 100, BlockAxis::Rows},
                        Case{Format::E5M2, 12345, 1, 12345, BlockAxis::Cols}}) {
    SCOPED_TRACE(std::string(fpscope::kFormats[static_cast<int>(c.dtype)].name) + " " +
                 std::to_string(c.rows) + "x" + std::to_string(c.cols));
    const auto data = storage(c.dtype, c.ld * c.cols, 3);
    HostQueue q;
    auto dev = std::make_unique<TensorStats>();
    ASSERT_EQ(fpscope::launch_tensor_stats(q, data.data(), c.dtype, c.rows, c.cols, c.ld, kScales,
                                           dev.get()),
              CUDA_SUCCESS);
    ASSERT_EQ(fpscope::launch_block_stats(q, data.data(), c.dtype, c.rows, c.cols, c.ld, 1, 0,
                                          fpscope::kAllBlockFormats, c.axis, dev.get()),
              CUDA_SUCCESS);
    fpscope::StatsOptions opt;
    std::copy(kScales, kScales + fpscope::kNumTargets, opt.scale);
    opt.block_formats = fpscope::kAllBlockFormats;
    opt.block_axis = c.axis;
    auto host = std::make_unique<TensorStats>();
    fpscope::compute_stats(data.data(), c.dtype, c.rows, c.cols, c.ld, opt, host.get());
    expect_same_blocks(dev->blocks, host->blocks);
    expect_same(*dev, *host);  // the block pass leaves the statistics as they were
  }
}

// A batched view's block pass: the sum of the host passes of its matrices, each at the NVFP4
// scale of the whole batch's amax (what the launcher's slot holds).
TEST(StatsLaunch, BatchedBlockStatsSumTheMatrices) {
  const uint64_t rows = 96, cols = 17, ld = 100, batch = 3, stride = 100 * 17 + 9;
  const auto all = storage(Format::BF16, stride * batch, 9);
  HostQueue q;
  auto dev = std::make_unique<TensorStats>();
  ASSERT_EQ(fpscope::launch_tensor_stats_batched(q, all.data(), Format::BF16, rows, cols, ld, batch,
                                                 stride, kScales, dev.get()),
            CUDA_SUCCESS);
  const uint32_t mask = 0b100101;  // a subset: the others stay zero
  ASSERT_EQ(fpscope::launch_block_stats(q, all.data(), Format::BF16, rows, cols, ld, batch, stride,
                                        mask, BlockAxis::Rows, dev.get()),
            CUDA_SUCCESS);
  fpscope::StatsOptions opt;
  opt.block_formats = mask;
  opt.tensor_amax = dev->amax;
  fpscope::BlockStatsSet sum;
  for (uint64_t b = 0; b < batch; ++b) {
    auto host = std::make_unique<TensorStats>();
    fpscope::compute_stats(all.data() + b * stride * 2, Format::BF16, rows, cols, ld, opt,
                           host.get());
    sum.merge(host->blocks);
    sum.nvfp4_tensor_scale = host->blocks.nvfp4_tensor_scale;
  }
  expect_same_blocks(dev->blocks, sum);
}

TEST(StatsLaunch, UpdateLossEqualsHostPass) {
  for (uint64_t n : {uint64_t{7}, uint64_t{4097}, uint64_t{300000}}) {
    SCOPED_TRACE(n);
    auto prev = fp32_data(n, 21);
    std::vector<float> cur(prev);
    std::mt19937 rng(22);
    std::uniform_int_distribution<int> ex(-40, -2);
    for (size_t i = 0; i < n; ++i)
      if (i % 5 != 0) cur[i] = prev[i] + std::ldexp(prev[i], ex(rng));  // i % 5 == 0: unchanged
    HostQueue q;
    fpscope::UpdateLoss dev;
    ASSERT_EQ(fpscope::launch_update_loss(q, prev.data(), cur.data(), n, &dev), CUDA_SUCCESS);
    fpscope::UpdateLoss host;
    fpscope::compute_update_loss(prev.data(), cur.data(), n, &host.bf16, &host.fp16, &host.changed,
                                 host.ratio_hist);
    ASSERT_GT(host.changed, 0u);
    EXPECT_EQ(dev.changed, host.changed);
    for (int f = 0; f < 2; ++f) {
      const auto &a = f ? dev.fp16 : dev.bf16, &b = f ? host.fp16 : host.bf16;
      EXPECT_EQ(a.stagnant, b.stagnant);
      EXPECT_NEAR(a.lost_abs, b.lost_abs, 1e-12 * b.lost_abs);
      EXPECT_NEAR(a.delta_abs, b.delta_abs, 1e-12 * b.delta_abs);
    }
    for (int b = 0; b < fpscope::kRatioBins; ++b) EXPECT_EQ(dev.ratio_hist[b], host.ratio_hist[b]);
  }
}

TEST(StatsLaunch, WidenIsExact) {
  std::vector<uint16_t> codes(70000);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint16_t>(i * 7919u);
  for (Format dtype : {Format::BF16, Format::FP16}) {
    HostQueue q;
    std::vector<float> out(codes.size(), -1.0f);
    ASSERT_EQ(fpscope::launch_widen_to_fp32(q, codes.data(), dtype, codes.size(), out.data()),
              CUDA_SUCCESS);
    for (size_t i = 0; i < codes.size(); ++i) {
      const float want = fpscope::decode_storage(dtype, codes[i]);
      uint32_t a, b;
      std::memcpy(&a, &out[i], 4);
      std::memcpy(&b, &want, 4);
      ASSERT_EQ(a, b) << i;
    }
    ASSERT_EQ(q.log,
              std::vector<std::string>{
                  std::string(dtype == Format::BF16 ? "fpscope_widen_bf16" : "fpscope_widen_fp16") +
                  " 274x256"});
  }
  HostQueue q;
  const std::vector<float> src = {1.5f, -0.0f, NAN};
  std::vector<float> dst(3);
  ASSERT_EQ(fpscope::launch_widen_to_fp32(q, src.data(), Format::FP32, 3, dst.data()),
            CUDA_SUCCESS);
  EXPECT_EQ(std::memcmp(src.data(), dst.data(), 12), 0);
  EXPECT_EQ(q.log, std::vector<std::string>{"copy 12"});
}

TEST(StatsLaunch, DtypesTheKernelsDoNotReadAreInvalidValue) {
  std::vector<unsigned char> data(4096);
  auto slot = std::make_unique<TensorStats>();
  HostQueue q;
  EXPECT_EQ(fpscope::launch_tensor_stats(q, data.data(), fpscope::kUnlistedFormat, 64, 1, 64,
                                         kScales, slot.get()),
            CUDA_ERROR_INVALID_VALUE);
  // The old launchers' order: the slot is reset and initialized, then the dtype is refused.
  EXPECT_EQ(q.log, (std::vector<std::string>{"memset " + std::to_string(sizeof(TensorStats)),
                                             "fpscope_init_slot 1x1"}));
  EXPECT_EQ(fpscope::launch_block_stats(q, data.data(), static_cast<Format>(7), 64, 1, 64, 1, 0, 1,
                                        BlockAxis::Rows, slot.get()),
            CUDA_ERROR_INVALID_VALUE);
  std::vector<float> out(64);
  EXPECT_EQ(fpscope::launch_widen_to_fp32(q, data.data(), Format::E4M3, 64, out.data()),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(q.log.size(), 2u);  // nothing more was enqueued
}

// The launches, grids and block sizes the CUDA-runtime launchers enqueued (their code:
// stats_chunk_blocks(n, resident or 1024) for the statistics, one thread per 32-element group in
// at most 4096 blocks for the block formats, one thread per element in at most 1024 blocks for
// the update loss and the widening), with the numbers worked out here by hand.
TEST(StatsLaunch, LaunchSequenceIsTheRuntimeLaunchers) {
  const std::string slot_memset = "memset " + std::to_string(sizeof(TensorStats));
  auto slot = std::make_unique<TensorStats>();
  const auto v = fp32_data(300000, 1);
  {
    HostQueue q;  // resident unknown: at most 1024 blocks; 300000 / 4096 elements per block
    ASSERT_EQ(fpscope::launch_tensor_stats(q, v.data(), Format::FP32, 1000, 300, 1000, kScales,
                                           slot.get()),
              CUDA_SUCCESS);
    EXPECT_EQ(q.log, (std::vector<std::string>{slot_memset, "fpscope_init_slot 1x1",
                                               "fpscope_tensor_stats_fp32 74x256",
                                               "fpscope_finalize_slot 1x1"}));
  }
  {
    HostQueue q;
    q.resident = 10;
    ASSERT_EQ(fpscope::launch_tensor_stats_batched(q, v.data(), Format::BF16, 1000, 100, 1000, 3,
                                                   100000, kScales, slot.get()),
              CUDA_SUCCESS);
    EXPECT_EQ(q.log[2], "fpscope_tensor_stats_bf16 10x256");
  }
  {
    HostQueue q;  // empty view and no data: reset, init, finalize only
    ASSERT_EQ(fpscope::launch_tensor_stats(q, v.data(), Format::FP32, 0, 5, 1, kScales, slot.get()),
              CUDA_SUCCESS);
    ASSERT_EQ(fpscope::launch_tensor_stats(q, nullptr, Format::FP32, 5, 5, 5, kScales, slot.get()),
              CUDA_SUCCESS);
    const std::vector<std::string> empty = {slot_memset, "fpscope_init_slot 1x1",
                                            "fpscope_finalize_slot 1x1"};
    std::vector<std::string> twice(empty);
    twice.insert(twice.end(), empty.begin(), empty.end());
    EXPECT_EQ(q.log, twice);
  }
  {
    HostQueue q;  // 40 lines of 32 groups (1000 rows): 1280 threads, 5 blocks
    ASSERT_EQ(fpscope::launch_block_stats(q, v.data(), Format::E4M3, 1000, 40, 1000, 1, 0,
                                          fpscope::kAllBlockFormats, BlockAxis::Rows, slot.get()),
              CUDA_SUCCESS);
    // 2^20 rows x 1 column along columns: 2^20 groups of one element -> capped at 4096 blocks;
    // mask 0 (or only bits beyond the six formats) enqueues nothing.
    std::vector<float> big(1 << 20, 1.0f);
    ASSERT_EQ(fpscope::launch_block_stats(q, big.data(), Format::FP32, 1 << 20, 1, 1 << 20, 1, 0, 1,
                                          BlockAxis::Cols, slot.get()),
              CUDA_SUCCESS);
    ASSERT_EQ(fpscope::launch_block_stats(q, v.data(), Format::FP32, 10, 10, 10, 1, 0, 1u << 6,
                                          BlockAxis::Rows, slot.get()),
              CUDA_SUCCESS);
    EXPECT_EQ(q.log, (std::vector<std::string>{"fpscope_block_stats_e4m3 5x256",
                                               "fpscope_block_stats_fp32 4096x256"}));
  }
  {
    HostQueue q;
    fpscope::UpdateLoss ul;
    ASSERT_EQ(fpscope::launch_update_loss(q, v.data(), v.data(), 300000, &ul), CUDA_SUCCESS);
    ASSERT_EQ(fpscope::launch_update_loss(q, v.data(), v.data(), 1000, &ul), CUDA_SUCCESS);
    ASSERT_EQ(fpscope::launch_update_loss(q, v.data(), v.data(), 0, &ul), CUDA_SUCCESS);
    const std::string m = "memset " + std::to_string(sizeof(fpscope::UpdateLoss));
    EXPECT_EQ(q.log, (std::vector<std::string>{m, "fpscope_update_loss 1024x256", m,
                                               "fpscope_update_loss 4x256", m}));
  }
}

// The CPU model refuses what the kernels cannot run: a wrong block size, an empty grid.
TEST(StatsKernelHost, RefusesBlockSizesTheKernelsCannotRun) {
  auto slot = std::make_unique<TensorStats>();
  const fpscope::FinalizeSlotArgs fin{slot.get()};
  EXPECT_EQ(fpscope::run_stats_kernel_on_host(StatsKernel::FinalizeSlot, 1, 1, &fin), CUDA_SUCCESS);
  EXPECT_EQ(fpscope::run_stats_kernel_on_host(StatsKernel::FinalizeSlot, 1, 32, &fin),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(fpscope::run_stats_kernel_on_host(StatsKernel::FinalizeSlot, 0, 1, &fin),
            CUDA_ERROR_INVALID_VALUE);
  std::vector<float> src(8, 1.0f), dst(8);
  const fpscope::WidenArgs w{src.data(), 8, dst.data()};
  EXPECT_EQ(fpscope::run_stats_kernel_on_host(StatsKernel::WidenBF16, 1, 128, &w),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(fpscope::run_stats_kernel_on_host(StatsKernel::WidenBF16, 1, 256, &w), CUDA_SUCCESS);
  EXPECT_EQ(fpscope::run_stats_kernel_on_host(StatsKernel::kCount, 1, 256, &w),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(fpscope::run_stats_kernel_on_host(StatsKernel::WidenBF16, 1, 256, nullptr),
            CUDA_ERROR_INVALID_VALUE);
}

}  // namespace
