// The statistics pass's block-scaled formats (compute_stats with StatsOptions::block_formats)
// against an independent per-element computation: crafted tensors whose blocks sit at each
// boundary (block_ref.h: amax at a power of two and just below, one outlier per block, all-zero
// blocks, FP32-subnormal-only blocks, NaN / Inf in a block, tiny and huge blocks, a short tail),
// laid out along both block axes, with leading-dimension padding, in FP32 and BF16 storage and
// with threads; each block's expected counts come from block_ref.h's ref_mx / ref_nvfp4 (frexp
// scales and CUDA's own conversions), summed here. Also: FPSCOPE_FORMATS-style masks, the
// reference pass (compute_stats_reference) and the plain statistics unchanged by the blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "block_counts_expect.h"
#include "block_ref.h"
#include "fpscope/host_stats.h"

namespace {

using fpscope::BlockAxis;
using fpscope::BlockFormatCounts;
using fpscope::Format;
using fpscope::TensorStats;

constexpr Kind kMxKinds[5] = {Kind::E4M3, Kind::E5M2, Kind::E3M2, Kind::E2M3, Kind::E2M1};

struct Expected {
  BlockFormatCounts c[fpscope::kNumBlockFormats];
  long double err2[fpscope::kNumBlockFormats] = {}, x2[fpscope::kNumBlockFormats] = {};
  uint64_t hist[fpscope::kNumBlockFormats][256] = {};
};

int bin_of(double scale) {
  if (std::isnan(scale)) return 255;
  if (scale == 0) return 0;
  int e = 0;
  std::frexp(scale, &e);
  return std::max(0, e - 1 + 127);
}

void add(Expected& x, int f, const Ref& r, size_t n) {
  BlockFormatCounts& c = x.c[f];
  c.blocks += 1;
  c.elements += r.nan_scale ? 0 : n;
  c.flushed += r.flushed;
  c.saturated += r.saturated;
  c.zero_blocks += r.zero_block;
  c.scale_underflow += r.scale_underflow;
  c.scale_overflow += r.scale_overflow;
  c.nan_scale += r.nan_scale;
  x.err2[f] += r.err2;
  x.x2[f] += r.x2;
  ++x.hist[f][bin_of(r.scale)];
}

// The tensor as lines (blocks run along each line) -> expected statistics, per element.
Expected expected_of(const std::vector<std::vector<float>>& lines, float tensor_amax) {
  Expected x;
  const float s_enc = fpscope::nvfp4_tensor_scale(tensor_amax);
  for (const std::vector<float>& line : lines) {
    for (int f = 0; f < fpscope::kNumBlockFormats; ++f) {
      const size_t bs = f == 5 ? 16 : 32;
      for (size_t k = 0; k < line.size(); k += bs) {
        const std::vector<float> b(
            line.begin() + static_cast<std::ptrdiff_t>(k),
            line.begin() + static_cast<std::ptrdiff_t>(std::min(line.size(), k + bs)));
        add(x, f, f == 5 ? ref_nvfp4(b, s_enc) : ref_mx(kMxKinds[f], b), b.size());
      }
    }
  }
  return x;
}

void expect_matches(const TensorStats& s, const Expected& x, uint32_t mask,
                    const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(s.blocks.mask, mask);
  for (int f = 0; f < fpscope::kNumBlockFormats; ++f) {
    SCOPED_TRACE(fpscope::kBlockFormats[f]->name);
    const BlockFormatCounts& g = s.blocks.fmt[f];
    if (!(mask >> f & 1u)) {
      EXPECT_EQ(g.blocks, 0u);
      continue;
    }
    const BlockFormatCounts& w = x.c[f];
    fpscope::test::expect_same_block_counts(g, w);
    // sum x^2 in double sums, err2 within the pass's FP32-lane bound (1e-4 relative, or far
    // below the signal).
    EXPECT_NEAR(g.sum_x2, static_cast<double>(x.x2[f]), 1e-12 * static_cast<double>(x.x2[f]));
    const double we = static_cast<double>(x.err2[f]);
    EXPECT_NEAR(g.sum_err2, we, 1e-4 * we + 1e-30 * static_cast<double>(x.x2[f]));
    for (int b = 0; b < 256; ++b) EXPECT_EQ(s.blocks.scale_hist[f][b], x.hist[f][b]) << "bin " << b;
  }
}

// Crafted lines: every crafted block of block_ref.h (32-element form), concatenated along the
// line, each line a shuffle of them, plus a line ending in a partial block.
std::vector<std::vector<float>> crafted_lines(int nlines, size_t len, uint32_t seed) {
  const std::vector<std::vector<float>> blocks = crafted_blocks(32);
  std::mt19937 rng(seed);
  std::vector<std::vector<float>> lines(static_cast<size_t>(nlines));
  for (auto& line : lines) {
    while (line.size() < len) {
      const auto& b = blocks[rng() % blocks.size()];
      line.insert(line.end(), b.begin(), b.end());
    }
    line.resize(len);
  }
  return lines;
}

float finite_amax(const std::vector<std::vector<float>>& lines) {
  float m = 0;
  for (const auto& l : lines)
    for (float v : l) m = std::isfinite(v) ? std::max(m, std::fabs(v)) : m;
  return m;
}

// Stores lines as a column-major rows x cols view with leading dimension ld: Rows axis: line j
// is column j; Cols axis: line i is row i.
std::vector<float> store(const std::vector<std::vector<float>>& lines, BlockAxis axis,
                         uint64_t* rows, uint64_t* cols, uint64_t pad) {
  const uint64_t nl = lines.size(), len = lines[0].size();
  *rows = axis == BlockAxis::Rows ? len : nl;
  *cols = axis == BlockAxis::Rows ? nl : len;
  const uint64_t ld = *rows + pad;
  std::vector<float> v(static_cast<size_t>(ld * *cols), 12345.0f);  // padding must not count
  for (uint64_t l = 0; l < nl; ++l)
    for (uint64_t k = 0; k < len; ++k) {
      const uint64_t i = axis == BlockAxis::Rows ? k : l, j = axis == BlockAxis::Rows ? l : k;
      v[static_cast<size_t>(i + j * ld)] = lines[l][k];
    }
  return v;
}

void run_case(int nlines, size_t len, BlockAxis axis, uint64_t pad, unsigned threads,
              uint32_t seed) {
  const auto lines = crafted_lines(nlines, len, seed);
  uint64_t rows = 0, cols = 0;
  const std::vector<float> v = store(lines, axis, &rows, &cols, pad);
  fpscope::StatsOptions opt;
  opt.block_formats = fpscope::kAllBlockFormats;
  opt.block_axis = axis;
  opt.threads = threads;
  auto s = std::make_unique<TensorStats>();
  fpscope::compute_stats(v.data(), Format::FP32, rows, cols, rows + pad, opt, s.get());
  const Expected x = expected_of(lines, finite_amax(lines));
  const std::string what = std::string(axis == BlockAxis::Rows ? "rows" : "cols") + " " +
                           std::to_string(rows) + "x" + std::to_string(cols) + " pad " +
                           std::to_string(pad) + " threads " + std::to_string(threads);
  expect_matches(*s, x, fpscope::kAllBlockFormats, what);
  EXPECT_EQ(s->blocks.axis, axis);
  EXPECT_EQ(s->blocks.nvfp4_tensor_scale, fpscope::nvfp4_tensor_scale(finite_amax(lines)));
  // The block-by-block reference pass agrees too.
  auto r = std::make_unique<TensorStats>();
  fpscope::compute_stats_reference(v.data(), Format::FP32, rows, cols, rows + pad, opt, r.get());
  expect_matches(*r, x, fpscope::kAllBlockFormats, what + " (reference pass)");
  // The plain statistics do not depend on the block formats being measured.
  auto plain = std::make_unique<TensorStats>();
  fpscope::StatsOptions off = opt;
  off.block_formats = 0;
  fpscope::compute_stats(v.data(), Format::FP32, rows, cols, rows + pad, off, plain.get());
  EXPECT_EQ(plain->blocks.mask, 0u);
  EXPECT_EQ(plain->count, s->count);
  EXPECT_EQ(plain->nan, s->nan);
  EXPECT_EQ(plain->zero, s->zero);
  EXPECT_EQ(plain->amax, s->amax);
  for (int f = 0; f < fpscope::kNumTargets; ++f) {
    EXPECT_EQ(plain->fmt[f].overflow, s->fmt[f].overflow);
    EXPECT_EQ(plain->fmt[f].underflow, s->fmt[f].underflow);
    EXPECT_EQ(plain->fmt[f].subnormal, s->fmt[f].subnormal);
  }
  for (int b = 0; b < fpscope::kHistBins; ++b) EXPECT_EQ(plain->hist[b], s->hist[b]);
}

TEST(BlockPass, CraftedColumnsAlongRows) {
  run_case(5, 32 * 20, BlockAxis::Rows, 0, 1, 1);       // whole blocks, contiguous
  run_case(7, 32 * 70 + 19, BlockAxis::Rows, 3, 1, 2);  // > one piece, partial tail, padding
  run_case(3, 8, BlockAxis::Rows, 0, 1, 3);             // one short block per line
}

TEST(BlockPass, CraftedRowsAlongCols) {
  run_case(70, 32 * 3, BlockAxis::Cols, 0, 1, 4);      // full panels, > one tile of rows
  run_case(9, 32 * 2 + 21, BlockAxis::Cols, 5, 1, 5);  // a partial last panel
}

TEST(BlockPass, ThreadsSplitOnBlockBoundaries) {
  // 2^20 elements per thread at least: 2 threads over 8 columns of 2^18 + 40 rows, and over
  // rows (fewer columns than threads: the split falls inside the lines), both axes.
  run_case(8, (size_t{1} << 18) + 40, BlockAxis::Rows, 0, 2, 6);
  run_case(1, (size_t{1} << 21) + 17, BlockAxis::Rows, 0, 2, 7);
  run_case(3, (size_t{1} << 20) + 9, BlockAxis::Cols, 0, 2, 11);  // split by columns
  run_case((1 << 15) + 5, 64, BlockAxis::Cols, 0, 2, 8);
}

TEST(BlockPass, MaskSelectsFormatsAndNvfp4UsesTheGivenAmax) {
  const auto lines = crafted_lines(4, 32 * 6, 9);
  uint64_t rows = 0, cols = 0;
  const std::vector<float> v = store(lines, BlockAxis::Rows, &rows, &cols, 0);
  fpscope::StatsOptions opt;
  opt.block_formats = (1u << 0) | (1u << 4);  // mxfp8_e4m3, mxfp4
  auto s = std::make_unique<TensorStats>();
  fpscope::compute_stats(v.data(), Format::FP32, rows, cols, rows, opt, s.get());
  expect_matches(*s, expected_of(lines, finite_amax(lines)), opt.block_formats, "mask 0x11");
  // NVFP4 with a caller's tensor amax below the data's: 0.001x (block scales saturate E4M3),
  // 2^-100x (the tensor scale caps at FP32's max) and a fixed 1000.
  opt.block_formats = 1u << 5;
  opt.tensor_amax = 1e-3f * finite_amax(lines);
  fpscope::compute_stats(v.data(), Format::FP32, rows, cols, rows, opt, s.get());
  expect_matches(*s, expected_of(lines, opt.tensor_amax), opt.block_formats, "nvfp4 amax/1e3");
  EXPECT_GT(s->blocks.fmt[5].scale_overflow, 0u);
  opt.tensor_amax = std::ldexp(finite_amax(lines), -100);
  fpscope::compute_stats(v.data(), Format::FP32, rows, cols, rows, opt, s.get());
  expect_matches(*s, expected_of(lines, opt.tensor_amax), opt.block_formats, "nvfp4 amax*2^-100");
  opt.tensor_amax = 1e3f;
  fpscope::compute_stats(v.data(), Format::FP32, rows, cols, rows, opt, s.get());
  expect_matches(*s, expected_of(lines, opt.tensor_amax), opt.block_formats, "nvfp4 amax 1000");
}

TEST(BlockPass, Bf16StorageIsDecodedFirst) {
  auto lines = crafted_lines(6, 32 * 40 + 7, 10);
  for (auto& l : lines)
    for (float& v : l) {  // BF16 values (truncated FP32), stored as BF16 below
      uint32_t u;
      std::memcpy(&u, &v, 4);
      u &= 0xffff0000u;
      std::memcpy(&v, &u, 4);
    }
  const uint64_t rows = lines[0].size(), cols = lines.size();
  std::vector<uint16_t> v(static_cast<size_t>(rows * cols));
  for (uint64_t j = 0; j < cols; ++j)
    for (uint64_t i = 0; i < rows; ++i) {
      uint32_t u;
      std::memcpy(&u, &lines[j][i], 4);
      v[static_cast<size_t>(i + j * rows)] = static_cast<uint16_t>(u >> 16);
    }
  fpscope::StatsOptions opt;
  opt.block_formats = fpscope::kAllBlockFormats;
  auto s = std::make_unique<TensorStats>();
  fpscope::compute_stats(v.data(), Format::BF16, rows, cols, rows, opt, s.get());
  expect_matches(*s, expected_of(lines, finite_amax(lines)), fpscope::kAllBlockFormats, "bf16");
}

// Hand-computed: one MXFP4 block along rows whose amax is exactly 4 = 2^emax (X = 1): 0.25
// flushes (tie to 0), 7 would saturate in another block but here is the amax of block 2.
TEST(BlockPass, HandComputedTwoMxfp4Blocks) {
  std::vector<float> v(64, 0.0f);
  v[0] = 4.0f;    // block 0: X = 2^(2 - 2) = 1
  v[1] = 0.25f;   // flushes (0.25 is half of E2M1's smallest subnormal 0.5: tie to 0)
  v[2] = 0.3f;    // -> 0.5
  v[32] = 7.0f;   // block 1: floor(log2 7) = 2: X = 1, 7 > 6 + 1: saturates
  v[33] = 1e-3f;  // flushes
  fpscope::StatsOptions opt;
  opt.block_formats = 1u << 4;
  auto s = std::make_unique<TensorStats>();
  fpscope::compute_stats(v.data(), Format::FP32, 64, 1, 64, opt, s.get());
  const BlockFormatCounts& c = s->blocks.fmt[4];
  EXPECT_EQ(c.blocks, 2u);
  EXPECT_EQ(c.elements, 64u);
  EXPECT_EQ(c.flushed, 2u);
  EXPECT_EQ(c.saturated, 1u);
  EXPECT_EQ(c.zero_blocks, 0u);
  EXPECT_EQ(s->blocks.scale_hist[4][127], 2u);  // both scales 2^0
  const double err2 = 0.25 * 0.25 + 0.2 * 0.2 + 1.0 + 1e-3 * 1e-3;
  EXPECT_NEAR(c.sum_err2, err2, 1e-6);
}

// Blocks at the host pass's fast-path boundaries (the fused MX loop takes blocks whose amax has
// biased exponent 15..253 and a mantissa below 1.75; the others take the per-format loops):
// amax exponents and mantissas on both sides of those limits, elements spread over 40 binades
// below the amax with few significant bits (RNE ties of every element format, exact flush
// thresholds 2^k), zeros, FP32 subnormals, signs; all six formats and a mask without MXFP8
// E4M3 (no fused loop), against block_ref.h and compute_stats_reference.
std::vector<std::vector<float>> boundary_lines(int nlines, size_t len, uint32_t seed) {
  std::mt19937 rng(seed);
  const int kE[] = {1, 14, 15, 16, 60, 127, 140, 200, 252, 253, 254};
  const uint32_t kMant[] = {0,         0x1u,      0x400000u, 0x5fffffu, 0x600000u,
                            0x680000u, 0x700000u, 0x780000u, 0x7fffffu};
  std::vector<std::vector<float>> lines(static_cast<size_t>(nlines));
  for (auto& line : lines) {
    while (line.size() < len) {
      const int e = kE[rng() % std::size(kE)];
      const uint32_t amax_bits = static_cast<uint32_t>(e) << 23 | kMant[rng() % std::size(kMant)];
      std::vector<float> b(32);
      for (float& v : b) {
        const uint32_t kind = rng() % 8;
        uint32_t bits = 0;
        if (kind == 0) {
          bits = 0;  // zero
        } else if (kind == 1) {
          bits = static_cast<uint32_t>(rng()) & 0x7fffffu;  // FP32 subnormal
        } else {
          // Few significant bits (ties at 1, 2 and 3 mantissa bits) or random ones, at 0..40
          // binades below the amax's (exact powers of two among them: flush thresholds).
          const int down = static_cast<int>(rng() % 41);
          const int ev = e - down;
          const uint32_t m = kind < 5 ? (static_cast<uint32_t>(rng()) & 0x1fu) << 18
                                      : static_cast<uint32_t>(rng()) & 0x7fffffu;
          bits = ev >= 1 ? static_cast<uint32_t>(ev) << 23 | m : m >> 9;
          if (bits > amax_bits) bits = amax_bits;
        }
        v = from_bits(bits | (rng() % 2 ? 0x80000000u : 0u));
      }
      b[rng() % 32] = from_bits(amax_bits | (rng() % 2 ? 0x80000000u : 0u));
      line.insert(line.end(), b.begin(), b.end());
    }
    line.resize(len);
  }
  return lines;
}

TEST(BlockPass, FastPathBoundaries) {
  for (uint32_t mask : {fpscope::kAllBlockFormats, fpscope::kAllBlockFormats & ~1u}) {
    for (BlockAxis axis : {BlockAxis::Rows, BlockAxis::Cols}) {
      const auto lines = boundary_lines(6, 32 * 150 + 16, 40 + mask);
      uint64_t rows = 0, cols = 0;
      const std::vector<float> v = store(lines, axis, &rows, &cols, 0);
      fpscope::StatsOptions opt;
      opt.block_formats = mask;
      opt.block_axis = axis;
      auto s = std::make_unique<TensorStats>();
      fpscope::compute_stats(v.data(), Format::FP32, rows, cols, rows, opt, s.get());
      const Expected x = expected_of(lines, finite_amax(lines));
      const std::string what =
          "mask " + std::to_string(mask) + (axis == BlockAxis::Rows ? " rows" : " cols");
      expect_matches(*s, x, mask, what);
      auto r = std::make_unique<TensorStats>();
      fpscope::compute_stats_reference(v.data(), Format::FP32, rows, cols, rows, opt, r.get());
      expect_matches(*r, x, mask, what + " (reference pass)");
      // The histogram: counted inside mx_fused for its blocks (every MX format on), by the
      // plain loop otherwise; the same counts as the pass without block formats.
      auto plain = std::make_unique<TensorStats>();
      fpscope::StatsOptions off = opt;
      off.block_formats = 0;
      fpscope::compute_stats(v.data(), Format::FP32, rows, cols, rows, off, plain.get());
      for (int b = 0; b < fpscope::kHistBins; ++b)
        ASSERT_EQ(plain->hist[b], s->hist[b]) << what << " bin " << b;
    }
  }
}

}  // namespace
