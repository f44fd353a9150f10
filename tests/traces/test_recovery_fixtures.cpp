// Truncation at byte offsets and bit flips on two more inputs than test_recovery.cpp's synthetic
// trace, checked against an independent walk of the file (trace_fixture.h), for read_trace (one
// and two decoding threads) and TraceFile:
//  - the every-kind fixture (~20 KiB: every record kind, metadata, plain and zstd chunks, an
//    unknown chunk type, a footer): EVERY byte offset is a cut, and every byte gets one bit
//    flipped (bit = offset % 8), with both readers and both thread counts.
//  - a real probe trace (tests/traces/data/pytorch_cpu_sample.fpst, 105 KiB, 22 RECORDS chunks):
//    every byte offset of the first and the last 8 KiB (the header, the first chunks, the last
//    chunks and the footer), every chunk boundary +-2, and every 101st offset in between
//    (~17 000 cuts); 2 000 seeded random bit flips plus one in every byte of the footer. Every
//    7th cut is also read with two threads; TraceFile opens every cut and decodes every 13th.
// Runtime on the 2-core CI box: a few seconds for the whole file.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "fpscope/trace_file.h"
#include "fpscope/trace_io.h"
#include "trace_fixture.h"

namespace fpscope::trace {
namespace {

using namespace test;

constexpr uint64_t kAll = UINT64_MAX;

::testing::AssertionResult same_prefix(const Trace& t, const Trace& whole) {
  if (t.observations.size() > whole.observations.size())
    return ::testing::AssertionFailure() << "more observations than the whole file";
  uint64_t hist = 0;
  for (size_t i = 0; i < t.observations.size(); ++i) {
    const ObservationRecord& a = t.observations[i];
    const ObservationRecord& b = whole.observations[i];
    if (a.seq != b.seq || a.step != b.step || a.tensor != b.tensor ||
        a.stats.count != b.stats.count || a.hist_len != b.hist_len || a.hist_begin != hist)
      return ::testing::AssertionFailure() << "observation " << i << " differs";
    for (uint32_t j = 0; j < a.hist_len; ++j) {
      if (t.hist_bins[a.hist_begin + j] != whole.hist_bins[b.hist_begin + j] ||
          t.hist_counts[a.hist_begin + j] != whole.hist_counts[b.hist_begin + j])
        return ::testing::AssertionFailure() << "observation " << i << " histogram differs";
    }
    hist += a.hist_len;
  }
  if (t.hist_bins.size() != hist || t.hist_counts.size() != hist)
    return ::testing::AssertionFailure()
           << "histogram pool of " << t.hist_bins.size() << " entries, observations use " << hist;
  for (size_t i = 0; i < t.tensors.size(); ++i)
    if (t.tensors[i].id != whole.tensors[i].id || t.tensors[i].index != i)
      return ::testing::AssertionFailure() << "tensor " << i << " differs";
  // Value sketches: those of the observations read, no other.
  for (size_t i = 0; i < t.sketches.size(); ++i)
    if (i >= whole.sketches.size() || t.sketches[i].observation != whole.sketches[i].observation ||
        t.sketches[i].observation >= t.observations.size() ||
        t.sketches[i].v != whole.sketches[i].v)
      return ::testing::AssertionFailure() << "sketch " << i << " differs";
  size_t sketched = 0;
  while (sketched < whole.sketches.size() &&
         whole.sketches[sketched].observation < t.observations.size())
    ++sketched;
  if (t.sketches.size() != sketched)
    return ::testing::AssertionFailure()
           << t.sketches.size() << " sketches, the observations read have " << sketched;
  for (size_t i = 0; i < t.weight_updates.size(); ++i)
    if (t.weight_updates[i].changed != whole.weight_updates[i].changed ||
        t.weight_updates[i].ratio_hist != whole.weight_updates[i].ratio_hist)
      return ::testing::AssertionFailure() << "weight update " << i << " differs";
  for (size_t i = 0; i < t.events.size(); ++i)
    if (t.events[i].text != whole.events[i].text)
      return ::testing::AssertionFailure() << "event " << i << " differs";
  for (size_t i = 0; i < t.loss_scales.size(); ++i)
    if (t.loss_scales[i].scale != whole.loss_scales[i].scale)
      return ::testing::AssertionFailure() << "loss scale " << i << " differs";
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult kinds_are(const Trace& t, const uint64_t* k) {
  const uint64_t got[9] = {0,
                           t.tensors.size(),
                           t.observations.size(),
                           t.steps.size(),
                           t.loss_scales.size(),
                           t.weight_updates.size(),
                           t.events.size(),
                           t.losses.size(),
                           t.sketches.size()};
  for (int i = 1; i < 9; ++i)
    if (got[i] != k[i])
      return ::testing::AssertionFailure()
             << "kind " << i << ": " << got[i] << " records, expected " << k[i];
  return ::testing::AssertionSuccess();
}

// read_trace on a prefix of `full_size` bytes cut at `cut`.
::testing::AssertionResult read_cut(const std::string& path, size_t cut, size_t full_size,
                                    const FixtureLayout& lay, const Trace& whole,
                                    unsigned threads) {
  Trace t;
  ReadError e;
  const bool ok = read_trace(path, &t, &e, ReadOptions{threads});
  if (cut < lay.header_end) {
    if (ok) return ::testing::AssertionFailure() << "a cut header was read";
    if (e.kind != ReadErrorKind::CorruptHeader && e.kind != ReadErrorKind::NotATrace)
      return ::testing::AssertionFailure() << "wrong error kind: " << e.message;
    if (e.message.find(path) == std::string::npos)
      return ::testing::AssertionFailure() << "message does not name the file";
    return ::testing::AssertionSuccess();
  }
  if (!ok) return ::testing::AssertionFailure() << e.message;
  const Expected x = expected_for_cut(lay, cut);
  if (auto r = kinds_are(t, x.kinds); !r) return r;
  if (t.dropped_bytes != cut - x.good_end)
    return ::testing::AssertionFailure()
           << "dropped " << t.dropped_bytes << ", expected " << cut - x.good_end;
  if (t.file_bytes != cut) return ::testing::AssertionFailure() << "file_bytes";
  if (t.clean_close != (cut == full_size) || t.truncated == t.clean_close ||
      t.truncation_reason.empty() != t.clean_close)
    return ::testing::AssertionFailure() << "clean/truncated flags: " << t.truncation_reason;
  if (t.unknown_chunks != x.unknown_chunks)
    return ::testing::AssertionFailure() << "unknown chunks " << t.unknown_chunks;
  return same_prefix(t, whole);
}

// TraceFile on the same prefix; `deep` also decodes every chunk through read_steps.
::testing::AssertionResult open_cut(const std::string& path, size_t cut, size_t full_size,
                                    const FixtureLayout& lay, const Trace& whole, bool deep) {
  ReadError e;
  auto f = TraceFile::open(path, &e);
  if (cut < lay.header_end) {
    if (f) return ::testing::AssertionFailure() << "TraceFile opened a cut header";
    return ::testing::AssertionSuccess();
  }
  if (!f) return ::testing::AssertionFailure() << e.message;
  const Expected x = expected_for_cut(lay, cut);
  if (f->footer_index_used() != (cut == full_size))
    return ::testing::AssertionFailure()
           << "footer index used: " << f->footer_index_used() << " (" << f->footer_note() << ")";
  if (f->chunks().size() != x.records_chunks)
    return ::testing::AssertionFailure()
           << f->chunks().size() << " chunks indexed, expected " << x.records_chunks;
  uint64_t records = 0, want = 0;
  for (const ChunkInfo& c : f->chunks()) records += c.records;
  for (int k = 1; k < 9; ++k) want += x.kinds[k];
  if (records != want) return ::testing::AssertionFailure() << records << " records indexed";
  if (f->dropped_bytes() != cut - x.good_end || f->truncated() != (cut != full_size))
    return ::testing::AssertionFailure() << "dropped/truncated: " << f->truncation_reason();
  if (f->unknown_chunks() != x.unknown_chunks)
    return ::testing::AssertionFailure() << "unknown chunks " << f->unknown_chunks();
  if (!deep) return ::testing::AssertionSuccess();
  Trace t;
  std::string why;
  if (!f->read_steps(0, kAll, &t, &why)) return ::testing::AssertionFailure() << why;
  if (auto r = kinds_are(t, x.kinds); !r) return r;
  if (!f->verify() != (cut != full_size)) return ::testing::AssertionFailure() << "verify()";
  return same_prefix(t, whole);
}

// After one flipped bit at `byte`: everything before the chunk holding it, nothing after.
::testing::AssertionResult read_flip(const std::string& path, size_t byte, size_t full_size,
                                     const FixtureLayout& lay, const Trace& whole, unsigned threads,
                                     bool with_file) {
  Trace t;
  ReadError e;
  const bool ok = read_trace(path, &t, &e, ReadOptions{threads});
  if (byte < lay.header_end) {
    if (ok) return ::testing::AssertionFailure() << "flipped header accepted";
    return ::testing::AssertionSuccess();
  }
  if (!ok) return ::testing::AssertionFailure() << e.message;
  // CRC32C detects every single-bit error: exactly the chunks that end before the flip survive.
  const Expected x = expected_for_cut(lay, byte);
  if (auto r = kinds_are(t, x.kinds); !r) return r;
  if (!t.truncated || t.clean_close || t.truncation_reason.empty())
    return ::testing::AssertionFailure() << "not reported as truncated";
  if (t.dropped_bytes != full_size - x.good_end)
    return ::testing::AssertionFailure() << "dropped " << t.dropped_bytes;
  if (auto r = same_prefix(t, whole); !r) return r;
  if (!with_file) return ::testing::AssertionSuccess();
  auto f = TraceFile::open(path, &e);
  if (!f) return ::testing::AssertionFailure() << e.message;
  Trace s;
  std::string why;
  f->read_steps(0, kAll, &s, &why);  // false when the flip is in a chunk the footer indexed
  if (auto r = kinds_are(s, x.kinds); !r) return r << " (TraceFile)";
  if (!f->truncated() || f->dropped_bytes() != full_size - x.good_end)
    return ::testing::AssertionFailure()
           << "TraceFile: dropped " << f->dropped_bytes() << ": " << f->truncation_reason();
  return same_prefix(s, whole);
}

struct Input {
  std::string path;  // a scratch copy
  std::vector<uint8_t> bytes;
  FixtureLayout lay;
  Trace whole;
};

Input prepare(const std::string& name, const std::vector<uint8_t>& bytes) {
  Input in;
  in.path = temp_path(name);
  in.bytes = bytes;
  write_file(in.path, bytes);
  in.lay = walk_layout(bytes);
  ReadError e;
  EXPECT_TRUE(read_trace(in.path, &in.whole, &e)) << e.message;
  return in;
}

TEST(Fixture, AllKindsFixtureHoldsWhatItClaims) {
  const Input in = prepare("kinds.fpst", all_kinds_fixture(temp_path("kinds_raw.fpst")));
  const Trace& t = in.whole;
  EXPECT_TRUE(t.clean_close) << t.truncation_reason;
  EXPECT_EQ(t.metadata_json, probe_like_metadata());
  EXPECT_EQ(t.tensors.size(), 4u);
  EXPECT_EQ(t.observations.size(), 96u);
  EXPECT_EQ(t.steps.size(), 8u);
  EXPECT_EQ(t.loss_scales.size(), 8u);
  EXPECT_EQ(t.weight_updates.size(), 8u);
  EXPECT_EQ(t.events.size(), 8u);
  ASSERT_EQ(t.sketches.size(), 48u);  // every other observation
  ASSERT_NE(t.sketch_of(94), nullptr);
  EXPECT_EQ(t.sketch_of(94)->v, (std::vector<float>{94.0f, -94.0f, 23.5f, 94.5f}));
  EXPECT_EQ(t.sketch_of(95), nullptr);
  EXPECT_EQ(t.unknown_chunks, 1u);
  EXPECT_EQ(t.step_source, StepSource::Api);
  EXPECT_EQ(t.events[5].text, "step 5 done");
  EXPECT_EQ(t.weight_updates[3].master_dtype, Format::BF16);
  EXPECT_EQ(t.weight_updates[2].ratio_hist[1].second, 82u);
  for (const auto& u : t.weight_updates) EXPECT_EQ(u.watched, u.elements);  // whole tensors
  EXPECT_TRUE(t.loss_scales[1].found_inf);
  size_t zstd = 0, plain = 0;
  for (const FixtureChunk& c : in.lay.chunks) {
    if (c.type != 1) continue;
    (c.flags & 1 ? zstd : plain) += 1;
  }
  EXPECT_GE(zstd, 2u);
  EXPECT_GE(plain, 2u);
  EXPECT_EQ(in.lay.chunks.back().type, 2);
  EXPECT_EQ(in.lay.chunks.back().end, in.bytes.size());
}

TEST(Fixture, AllKindsEveryByteOffset) {
  Input in = prepare("kinds_cut.fpst", all_kinds_fixture(temp_path("kinds_raw2.fpst")));
  ASSERT_TRUE(in.whole.clean_close);
  const int fd = ::open(in.path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  for (size_t cut = in.bytes.size() + 1; cut-- > 0;) {
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(cut)), 0);
    ASSERT_TRUE(read_cut(in.path, cut, in.bytes.size(), in.lay, in.whole, 1)) << "cut " << cut;
    ASSERT_TRUE(read_cut(in.path, cut, in.bytes.size(), in.lay, in.whole, 2)) << "cut " << cut;
    ASSERT_TRUE(open_cut(in.path, cut, in.bytes.size(), in.lay, in.whole, true)) << "cut " << cut;
  }
  ::close(fd);
}

TEST(Fixture, AllKindsOneBitFlippedInEveryByte) {
  const Input in = prepare("kinds_flip_src.fpst", all_kinds_fixture(temp_path("kinds_raw3.fpst")));
  const std::string path = temp_path("kinds_flip.fpst");
  write_file(path, in.bytes);
  FlipFile f(path);
  for (size_t byte = 0; byte < in.bytes.size(); ++byte) {
    f.set(byte, in.bytes[byte] ^ static_cast<uint8_t>(1u << (byte % 8)));
    ASSERT_TRUE(read_flip(path, byte, in.bytes.size(), in.lay, in.whole, byte % 2 ? 2 : 1, true))
        << "flip at " << byte;
    f.set(byte, in.bytes[byte]);
  }
}

TEST(RealTrace, SampleTraceIsAMultiChunkProbeTrace) {
  const Input in = prepare("sample.fpst", read_file(sample_trace_path()));
  ASSERT_FALSE(in.bytes.empty()) << sample_trace_path();
  EXPECT_TRUE(in.whole.clean_close) << in.whole.truncation_reason;
  EXPECT_GE(in.lay.chunks.size(), 10u);
  EXPECT_GT(in.whole.observations.size(), 100u);
  EXPECT_GT(in.whole.steps.size(), 10u);
  EXPECT_NE(in.whole.metadata_json.find("\"probe\":\"libfpscope_probe\""), std::string::npos);
}

TEST(RealTrace, TruncatedAtEdgesBoundariesAndAStride) {
  const Input in = prepare("sample_cut.fpst", read_file(sample_trace_path()));
  ASSERT_GE(in.lay.chunks.size(), 10u);
  const size_t n = in.bytes.size();
  std::set<size_t, std::greater<>> cuts;
  constexpr size_t kEdge = 8 << 10;
  for (size_t c = 0; c <= std::min(n, kEdge); ++c) cuts.insert(c);
  for (size_t c = n > kEdge ? n - kEdge : 0; c <= n; ++c) cuts.insert(c);
  for (size_t c = 0; c <= n; c += 101) cuts.insert(c);
  for (const FixtureChunk& ch : in.lay.chunks)
    for (size_t d = 0; d <= 4; ++d)
      if (ch.begin + d >= 2 && ch.begin + d - 2 <= n) cuts.insert(ch.begin + d - 2);
  const int fd = ::open(in.path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  size_t k = 0;
  for (size_t cut : cuts) {  // descending: each cut shortens the file further
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(cut)), 0);
    ASSERT_TRUE(read_cut(in.path, cut, n, in.lay, in.whole, 1)) << "cut " << cut;
    if (k % 7 == 0) {
      ASSERT_TRUE(read_cut(in.path, cut, n, in.lay, in.whole, 2)) << "cut " << cut;
    }
    ASSERT_TRUE(open_cut(in.path, cut, n, in.lay, in.whole, k % 13 == 0)) << "cut " << cut;
    ++k;
  }
  ::close(fd);
  EXPECT_GT(k, 16000u);
}

TEST(RealTrace, BitFlips) {
  const Input in = prepare("sample_flip_src.fpst", read_file(sample_trace_path()));
  const std::string path = temp_path("sample_flip.fpst");
  const size_t n = in.bytes.size();
  std::vector<size_t> bytes;
  std::mt19937_64 rng(20261201);
  for (int i = 0; i < 2000; ++i) bytes.push_back(static_cast<size_t>(rng() % n));
  for (size_t b = in.lay.chunks.back().begin; b < n; ++b) bytes.push_back(b);  // the footer
  write_file(path, in.bytes);
  FlipFile f(path);
  for (size_t i = 0; i < bytes.size(); ++i) {
    const size_t byte = bytes[i];
    const uint8_t mask = static_cast<uint8_t>(1u << (rng() % 8));
    f.set(byte, in.bytes[byte] ^ mask);
    ASSERT_TRUE(read_flip(path, byte, n, in.lay, in.whole, i % 5 == 0 ? 2 : 1, i % 3 == 0))
        << "flip at " << byte;
    f.set(byte, in.bytes[byte]);
  }
}

}  // namespace
}  // namespace fpscope::trace
