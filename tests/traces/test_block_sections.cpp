// Format 1.3's block-format section of OBSERVATION records (FORMAT.md 5.2): writer -> reader round
// trips on both read paths (read_trace with and without the histogram thread, TraceFile), a
// hand-encoded section read field by field, older files (1.2, no section) and a later minor's
// unknown tail still read, a malformed section of a 1.3 or 1.4 file makes its chunk malformed, and
// a file with sections torn at every byte recovers a prefix of whole observations with their
// sections.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "block_counts_expect.h"
#include "fpscope/trace_file.h"
#include "fpscope/trace_io.h"
#include "trace_craft.h"
#include "trace_test_util.h"

namespace fpscope::trace {
namespace {

using test::make_obs;
using test::make_tensor;
using test::temp_path;

BlockStatsSet make_blocks(uint64_t i) {
  BlockStatsSet b;
  b.mask = i % 5 == 0 ? kAllBlockFormats : static_cast<uint32_t>((i * 7) & kAllBlockFormats);
  if (b.mask == 0) b.mask = 1u << (i % kNumBlockFormats);
  b.axis = i % 2 ? BlockAxis::Cols : BlockAxis::Rows;
  b.nvfp4_tensor_scale = 2688.0f / static_cast<float>(i + 1);
  for (int f = 0; f < kNumBlockFormats; ++f) {
    if (!(b.mask >> f & 1u)) continue;
    BlockFormatCounts& c = b.fmt[f];
    c.blocks = 1000 + i + static_cast<uint64_t>(f);
    c.elements = 32 * c.blocks - i % 3;
    c.flushed = i * 11 + static_cast<uint64_t>(f);
    c.saturated = i % 4;
    c.zero_blocks = f == 2 ? std::numeric_limits<uint64_t>::max() : i % 6;
    c.scale_underflow = i % 7;
    c.scale_overflow = f == 5 ? i % 2 : 0;
    c.nan_scale = i % 9 == 0 ? 1 : 0;
    c.sum_err2 = 1e-3 * static_cast<double>(i + 1) * (f + 1);
    c.sum_x2 = 12.5 * static_cast<double>(i + 1);
    for (int k = 0; k < static_cast<int>(i % 6) + f; ++k)
      b.scale_hist[f][(100 + k * 3 + static_cast<int>(i)) % kBlockScaleBins] += 1 + i + k;
    if (i == 3) b.scale_hist[f][255] = std::numeric_limits<uint64_t>::max();
  }
  return b;
}

void expect_same_blocks(const BlockStatsSet& got, const BlockStatsSet& want) {
  EXPECT_EQ(got.mask, want.mask);
  EXPECT_EQ(got.axis, want.axis);
  EXPECT_EQ(got.nvfp4_tensor_scale, want.nvfp4_tensor_scale);
  for (int f = 0; f < kNumBlockFormats; ++f) {
    SCOPED_TRACE(f);
    const BlockFormatCounts &g = got.fmt[f], &w = want.fmt[f];
    fpscope::test::expect_same_block_counts(g, w);
    EXPECT_EQ(g.sum_err2, w.sum_err2);
    EXPECT_EQ(g.sum_x2, w.sum_x2);
    for (int b = 0; b < kBlockScaleBins; ++b)
      EXPECT_EQ(got.scale_hist[f][b], want.scale_hist[f][b]) << "bin " << b;
  }
}

// Observations 0..n-1; those with i % 3 != 1 carry a block section.
std::vector<Observation> write_trace(const std::string& path, uint64_t n, bool zstd) {
  WriterOptions opt;
  opt.flush_bytes = 4096;
  opt.zstd = zstd;
  std::string err;
  auto tw = TraceWriter::open(path, "{}", opt, &err);
  EXPECT_TRUE(tw) << err;
  std::vector<Observation> obs;
  if (!tw) return obs;
  for (uint32_t k = 0; k < 3; ++k) {
    TensorInfo t = make_tensor(k);
    tw->define_tensor(t);
  }
  for (uint64_t i = 0; i < n; ++i) {
    Observation o = make_obs(static_cast<uint32_t>(i % 3), i, static_cast<int>(i % 20));
    if (i % 3 != 1) o.stats.blocks = make_blocks(i);
    tw->observe(o);
    obs.push_back(o);
  }
  EXPECT_TRUE(tw->close()) << tw->error();
  return obs;
}

void expect_trace_has(const Trace& t, const std::vector<Observation>& obs) {
  ASSERT_EQ(t.observations.size(), obs.size());
  size_t with = 0;
  for (size_t i = 0; i < obs.size(); ++i) {
    SCOPED_TRACE(i);
    const BlockStatsRecord* b = t.blocks_of(i);
    ASSERT_EQ(b != nullptr, obs[i].stats.blocks.mask != 0);
    with += b != nullptr;
    const TensorStats s = t.full_stats(t.observations[i]);
    expect_same_blocks(s.blocks, obs[i].stats.blocks);
    EXPECT_EQ(s.hist[(i * 7) % kHistBins], obs[i].stats.hist[(i * 7) % kHistBins]);
  }
  EXPECT_EQ(t.block_stats.size(), with);
}

TEST(BlockSections, RoundTripOnEveryReadPath) {
  for (bool zstd : {false, true}) {
    const std::string p = temp_path(zstd ? "blocks_zstd.fpst" : "blocks.fpst");
    const std::vector<Observation> obs = write_trace(p, 200, zstd);
    for (unsigned threads : {1u, 2u}) {
      SCOPED_TRACE(threads);
      Trace t;
      ReadError e;
      ReadOptions ro;
      ro.threads = threads;
      ASSERT_TRUE(read_trace(p, &t, &e, ro)) << e.message;
      EXPECT_TRUE(t.clean_close);
      EXPECT_EQ(t.version_minor, kFormatMinor);
      expect_trace_has(t, obs);
    }
    auto tf = TraceFile::open(p, nullptr);
    ASSERT_TRUE(tf);
    Trace t;
    std::string why;
    ASSERT_TRUE(tf->read_steps(0, std::numeric_limits<uint64_t>::max(), &t, &why)) << why;
    expect_trace_has(t, obs);
    ChunkRecords c;
    ASSERT_TRUE(tf->read_chunk(0, &c, &why)) << why;
    ASSERT_FALSE(c.observations.empty());
    expect_same_blocks(c.full_stats(c.observations[0]).blocks, obs[0].stats.blocks);
  }
}

TEST(BlockSections, TornAtEveryByteKeepsWholeObservations) {
  const std::string p = temp_path("blocks_torn.fpst");
  const std::vector<Observation> obs = write_trace(p, 24, false);
  const std::vector<uint8_t> whole = test::read_file(p);
  const std::string q = temp_path("blocks_torn_cut.fpst");
  size_t last = 0;
  for (size_t cut = 0; cut <= whole.size(); ++cut) {
    test::write_file(
        q, std::vector<uint8_t>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut)));
    for (unsigned threads : {1u, 2u}) {
      Trace t;
      ReadError e;
      ReadOptions ro;
      ro.threads = threads;
      if (!read_trace(q, &t, &e, ro)) continue;  // a cut inside the header
      ASSERT_LE(t.observations.size(), obs.size());
      ASSERT_GE(t.observations.size(), last) << cut;  // recovery only grows with the file
      if (threads == 2) last = t.observations.size();
      for (size_t i = 0; i < t.observations.size(); ++i)
        expect_same_blocks(t.full_stats(t.observations[i]).blocks, obs[i].stats.blocks);
      if (::testing::Test::HasFailure()) return;
    }
  }
  EXPECT_EQ(last, obs.size());
}

// FORMAT.md 5.2 by hand: one observation with a section for MXFP4 (format 4) only.
test::craft::Bytes section_mxfp4(bool truncate_hist) {
  test::craft::Bytes s;
  s.push_back(1);                 // axis: cols
  test::craft::put_f32(s, 0.5f);  // NVFP4 tensor scale
  test::put_varint(s, 1u << 4);   // mask: mxfp4
  test::craft::Bytes e;
  for (uint64_t v : {10u, 320u, 7u, 2u, 1u, 0u, 0u, 0u}) test::put_varint(e, v);
  test::craft::put_f64(e, 0.75);
  test::craft::put_f64(e, 96.0);
  test::put_varint(e, 2);  // two scale bins: 127 (x9), 130 (x1)
  test::put_varint(e, 127);
  test::put_varint(e, 9);
  test::put_varint(e, 3);
  test::put_varint(e, truncate_hist ? 300 : 1);  // a count, or (truncated) the entry ends early
  if (truncate_hist) e.pop_back();
  test::put_varint(s, e.size());
  s.insert(s.end(), e.begin(), e.end());
  return s;
}

test::craft::Obs plain_obs() {
  test::craft::Obs o;
  o.count = 320;
  o.amax = 4.0f;
  o.hist = {{500, 320}};
  return o;
}

Trace read_crafted(const std::string& name, uint16_t minor, const test::craft::Bytes& tail,
                   bool* ok = nullptr) {
  test::craft::File f("{}", minor);
  test::craft::Rec o = test::craft::rec(plain_obs());
  o.body.insert(o.body.end(), tail.begin(), tail.end());
  f.chunk({test::craft::rec(test::craft::Tensor{}), o});
  f.footer();
  const std::string p = temp_path(name);
  test::write_file(p, f.bytes());
  Trace t;
  ReadError e;
  const bool r = read_trace(p, &t, &e);
  if (ok) *ok = r;
  EXPECT_TRUE(r) << e.message;
  return t;
}

TEST(BlockSections, HandEncodedSectionReadsFieldByField) {
  const Trace t = read_crafted("blocks_hand.fpst", 3, section_mxfp4(false));
  ASSERT_EQ(t.observations.size(), 1u);
  EXPECT_FALSE(t.truncated) << t.truncation_reason;
  const TensorStats s = t.full_stats(t.observations[0]);
  EXPECT_EQ(s.hist[500], 320u);
  EXPECT_EQ(s.blocks.mask, 1u << 4);
  EXPECT_EQ(s.blocks.axis, BlockAxis::Cols);
  EXPECT_EQ(s.blocks.nvfp4_tensor_scale, 0.5f);
  const BlockFormatCounts& c = s.blocks.fmt[4];
  EXPECT_EQ(c.blocks, 10u);
  EXPECT_EQ(c.elements, 320u);
  EXPECT_EQ(c.flushed, 7u);
  EXPECT_EQ(c.saturated, 2u);
  EXPECT_EQ(c.zero_blocks, 1u);
  EXPECT_EQ(c.sum_err2, 0.75);
  EXPECT_EQ(c.sum_x2, 96.0);
  EXPECT_EQ(s.blocks.scale_hist[4][127], 9u);
  EXPECT_EQ(s.blocks.scale_hist[4][130], 1u);
  EXPECT_EQ(s.blocks.fmt[0].blocks, 0u);
}

TEST(BlockSections, OlderFilesReadWithoutSections) {
  // A 1.2 file (the previous writer's): no section; bytes after its histogram are ignored.
  for (int minor : {0, 1, 2}) {
    const Trace t = read_crafted("blocks_old.fpst", static_cast<uint16_t>(minor), {});
    ASSERT_EQ(t.observations.size(), 1u);
    EXPECT_FALSE(t.truncated) << t.truncation_reason;
    EXPECT_TRUE(t.block_stats.empty());
    EXPECT_EQ(t.full_stats(t.observations[0]).blocks.mask, 0u);
    EXPECT_EQ(t.full_stats(t.observations[0]).hist[500], 320u);
  }
  const Trace t = read_crafted("blocks_old_tail.fpst", 2, section_mxfp4(false));
  EXPECT_TRUE(t.block_stats.empty());  // a 1.2 file's tail is not a 1.3 section
  ASSERT_EQ(t.observations.size(), 1u);
}

TEST(BlockSections, MalformedSectionIsMalformedIn13And14AndIgnoredInLaterMinors) {
  for (uint16_t minor : {uint16_t{3}, uint16_t{4}}) {  // 1.4 appends nothing to OBSERVATION
    const Trace t = read_crafted("blocks_bad.fpst", minor, section_mxfp4(true));
    EXPECT_TRUE(t.observations.empty());
    EXPECT_TRUE(t.truncated);
    EXPECT_NE(t.truncation_reason.find("block"), std::string::npos) << t.truncation_reason;
  }
  const Trace later =
      read_crafted("blocks_later.fpst", kFormatMinor + 1, {0xAA, 0xBB, 0xCC});  // a later minor
  ASSERT_EQ(later.observations.size(), 1u);
  EXPECT_TRUE(later.block_stats.empty());
  EXPECT_FALSE(later.truncated) << later.truncation_reason;
}

}  // namespace
}  // namespace fpscope::trace
