// Format 1.4's VALUE_SKETCH records (FORMAT.md 5.8): producer threads writing observations with
// and without sketches, read back through read_trace (one and two threads) and TraceFile (chunk
// by chunk, a step range, everything), plain and zstd; the file walked by hand to check that each
// sketch sits right after its own observation in one chunk whatever the chunk boundaries; crafted
// malformed sketches make their chunk malformed; a minor-3 file's tag 8 is an unknown record; a
// file with sketches cut at every byte recovers whole observations with their sketches.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fpscope/trace_file.h"
#include "fpscope/trace_io.h"
#include "fpscope/value_sketch.h"
#include "trace_craft.h"
#include "trace_fixture.h"
#include "trace_test_util.h"

namespace fpscope::trace {
namespace {

using test::make_obs;
using test::make_tensor;
using test::temp_path;
namespace craft = test::craft;

constexpr uint64_t kAll = std::numeric_limits<uint64_t>::max();

// The sketch observation `seq` carries (empty: none), every bucket a function of seq, so that a
// sketch attached to the wrong observation is caught. Bucket counts vary (1, the probe's 256,
// the format's 4096, small ones); some buckets hold -0.0 and a NaN payload (kept bit for bit).
std::vector<float> sketch_for(uint64_t seq) {
  if (seq % 4 == 3) return {};
  size_t k = kSketchBuckets;
  if (seq % 9 == 1) k = 1;
  if (seq % 9 == 5) k = 3 + seq % 13;
  if (seq == 10) k = 4096;
  std::vector<float> v(k);
  for (size_t j = 0; j < k; ++j)
    v[j] = static_cast<float>(seq) * 0.001f + static_cast<float>(j) - 100.0f;
  v[0] = static_cast<float>(seq);
  if (k > 2) v[1] = -0.0f;
  if (k > 3 && seq % 2) v[2] = std::bit_cast<float>(0x7FC00000u | static_cast<uint32_t>(seq));
  return v;
}

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t j = 0; j < got.size(); ++j)
    ASSERT_EQ(std::bit_cast<uint32_t>(got[j]), std::bit_cast<uint32_t>(want[j])) << "bucket " << j;
}

// kThreads producers, kPer observations each; thread t's seq are t * 1000 + i.
constexpr int kThreads = 4;
constexpr uint64_t kPer = 150;

void write_threaded(const std::string& path, bool zstd) {
  WriterOptions opt;
  opt.flush_bytes = 4096;  // the smallest chunks: many boundaries between the records
  opt.zstd = zstd;
  std::string err;
  auto w = TraceWriter::open(path, "{}", opt, &err);
  ASSERT_TRUE(w) << err;
  for (uint32_t k = 0; k < kThreads; ++k) w->define_tensor(make_tensor(k));
  std::vector<std::thread> th;
  for (int t = 0; t < kThreads; ++t) {
    th.emplace_back([&w, t] {
      for (uint64_t i = 0; i < kPer; ++i) {
        const uint64_t seq = static_cast<uint64_t>(t) * 1000 + i;
        Observation o = make_obs(static_cast<uint32_t>(t), seq, static_cast<int>(seq % 7));
        o.step = i / 10;
        o.sketch = sketch_for(seq);
        w->observe(o);
        if (i % 25 == 0) w->step(StepMark{i / 10, StepSource::Api, i, seq});
      }
    });
  }
  for (auto& x : th) x.join();
  ASSERT_TRUE(w->close()) << w->error();
  EXPECT_EQ(w->records_dropped(), 0u);
}

uint64_t expected_sketches() {
  uint64_t n = 0;
  for (int t = 0; t < kThreads; ++t)
    for (uint64_t i = 0; i < kPer; ++i)
      n += !sketch_for(static_cast<uint64_t>(t) * 1000 + i).empty();
  return n;
}

// Every observation has exactly the sketch its seq calls for; sketches are in observation order.
void expect_sketches_match(const Trace& t) {
  ASSERT_EQ(t.observations.size(), kThreads * kPer);
  EXPECT_EQ(t.sketches.size(), expected_sketches());
  EXPECT_EQ(t.unknown_records, 0u);
  for (size_t i = 1; i < t.sketches.size(); ++i)
    ASSERT_LT(t.sketches[i - 1].observation, t.sketches[i].observation);
  for (size_t i = 0; i < t.observations.size(); ++i) {
    SCOPED_TRACE(t.observations[i].seq);
    const std::vector<float> want = sketch_for(t.observations[i].seq);
    const SketchRecord* s = t.sketch_of(i);
    ASSERT_EQ(s != nullptr, !want.empty());
    if (s) {
      EXPECT_EQ(s->observation, i);
      expect_same_bits(s->v, want);
    }
  }
  EXPECT_EQ(t.sketch_of(t.observations.size()), nullptr);
}

// FORMAT.md walked by hand: every tag-8 record immediately follows a tag-2 record of the same
// RECORDS payload, and holds K then K f32 equal to sketch_for(that observation's seq).
void expect_file_pairs_each_sketch_with_its_observation(const std::vector<uint8_t>& f,
                                                        uint64_t* sketches, uint64_t* chunks) {
  const test::FixtureLayout lay = test::walk_layout(f);
  *sketches = *chunks = 0;
  for (const test::FixtureChunk& c : lay.chunks) {
    if (c.type != 1) continue;
    ++*chunks;
    const std::vector<uint8_t> p = test::chunk_payload(f, c);
    size_t r = 0;
    uint8_t prev = 0;
    uint64_t prev_seq = 0;
    while (r < p.size()) {
      const uint8_t tag = p[r++];
      const uint64_t n = test::varint_at(p.data(), &r);
      const size_t body = r;
      if (tag == 2) {
        size_t q = body;
        test::varint_at(p.data(), &q);  // tensor
        test::varint_at(p.data(), &q);  // step
        prev_seq = test::varint_at(p.data(), &q);
      } else if (tag == 8) {
        ASSERT_EQ(prev, 2) << "a sketch not right after an observation, chunk at " << c.begin;
        size_t q = body;
        const uint64_t k = test::varint_at(p.data(), &q);
        const std::vector<float> want = sketch_for(prev_seq);
        ASSERT_EQ(k, want.size()) << prev_seq;
        ASSERT_EQ(body + n, q + 4 * k);  // the writer appends nothing after the buckets
        std::vector<float> got(k);
        std::memcpy(got.data(), p.data() + q, 4 * k);
        expect_same_bits(got, want);
        ++*sketches;
      }
      prev = tag;
      r = body + n;
    }
  }
}

TEST(SketchRecords, ThreadsRoundTripOnEveryReadPathEachSketchOnItsObservation) {
  for (bool zstd : {false, true}) {
    SCOPED_TRACE(zstd ? "zstd" : "plain");
    const std::string p = temp_path(zstd ? "sketch_threads_z.fpst" : "sketch_threads.fpst");
    write_threaded(p, zstd);
    if (HasFatalFailure()) return;
    const std::vector<uint8_t> bytes = test::read_file(p);
    uint64_t in_file = 0, chunks = 0;
    expect_file_pairs_each_sketch_with_its_observation(bytes, &in_file, &chunks);
    EXPECT_EQ(in_file, expected_sketches());
    EXPECT_GE(chunks, 20u);  // many chunk boundaries crossed
    // The footer: 8 per-kind totals (1.4), the eighth the sketches.
    const test::FixtureLayout lay = test::walk_layout(bytes);
    const test::TestFooter foot = test::parse_test_footer(bytes, lay.chunks.back());
    ASSERT_EQ(foot.totals.size(), 8u);
    EXPECT_EQ(foot.totals[1], kThreads * kPer);
    EXPECT_EQ(foot.totals[7], expected_sketches());

    for (unsigned threads : {1u, 2u}) {
      SCOPED_TRACE(threads);
      Trace t;
      ReadError e;
      ReadOptions ro;
      ro.threads = threads;
      ASSERT_TRUE(read_trace(p, &t, &e, ro)) << e.message;
      EXPECT_TRUE(t.clean_close) << t.truncation_reason;  // footer totals and index agree
      EXPECT_EQ(t.version_minor, kFormatMinor);
      EXPECT_EQ(kFormatMinor, 4);
      expect_sketches_match(t);
    }

    auto tf = TraceFile::open(p, nullptr);
    ASSERT_TRUE(tf);
    EXPECT_TRUE(tf->footer_index_used()) << tf->footer_note();
    EXPECT_TRUE(tf->verify()) << tf->truncation_reason();
    Trace all;
    std::string why;
    ASSERT_TRUE(tf->read_steps(0, kAll, &all, &why)) << why;
    expect_sketches_match(all);
    // Chunk by chunk: in `order`, each sketch comes right after its observation.
    ChunkRecords cr;
    uint64_t seen = 0;
    for (uint32_t k = 0; k < tf->chunks().size(); ++k) {
      ASSERT_TRUE(tf->read_chunk(k, &cr, &why)) << why;
      EXPECT_EQ(cr.order.size(), tf->chunks()[k].records);
      for (size_t i = 0; i < cr.order.size(); ++i) {
        if (cr.order[i].first != RecordKind::Sketch) continue;
        ASSERT_GT(i, 0u);
        ASSERT_EQ(cr.order[i - 1].first, RecordKind::Observation);
        const SketchRecord& s = cr.sketches[cr.order[i].second];
        ASSERT_EQ(s.observation, cr.order[i - 1].second);
        ASSERT_EQ(cr.sketch_of(s.observation), &s);
        EXPECT_EQ(cr.step_of(RecordKind::Sketch, cr.order[i].second),
                  cr.observations[s.observation].step);
        expect_same_bits(s.v, sketch_for(cr.observations[s.observation].seq));
        ++seen;
      }
    }
    EXPECT_EQ(seen, expected_sketches());
    // A step range: the sketches of exactly the observations in it, re-indexed.
    Trace part;
    ASSERT_TRUE(tf->read_steps(3, 5, &part, &why)) << why;
    uint64_t want = 0;
    for (size_t i = 0; i < all.observations.size(); ++i) {
      const uint64_t s = all.observations[i].step;
      want += s >= 3 && s <= 5 && all.sketch_of(i) != nullptr;
    }
    EXPECT_GT(want, 0u);
    EXPECT_EQ(part.sketches.size(), want);
    for (size_t i = 0; i < part.observations.size(); ++i) {
      const SketchRecord* s = part.sketch_of(i);
      ASSERT_EQ(s != nullptr, !sketch_for(part.observations[i].seq).empty());
      if (s) expect_same_bits(s->v, sketch_for(part.observations[i].seq));
    }
    uint64_t visited = 0;
    ASSERT_TRUE(tf->for_each_in_steps(
        3, 5,
        [&](const ChunkRecords& c, RecordKind kind, uint32_t index) {
          if (kind != RecordKind::Sketch) return true;
          const uint64_t s = c.step_of(kind, index);
          EXPECT_TRUE(s >= 3 && s <= 5) << s;
          ++visited;
          return true;
        },
        &why))
        << why;
    EXPECT_EQ(visited, want);
  }
}

TEST(SketchRecords, TracesWithoutSketchesHoldNoSketchMemory) {
  const std::string p = temp_path("sketch_none.fpst");
  std::string err;
  auto w = TraceWriter::open(p, "{}", WriterOptions{}, &err);
  ASSERT_TRUE(w) << err;
  w->define_tensor(make_tensor(0));
  for (uint64_t i = 0; i < 50; ++i) w->observe(make_obs(0, i, 5));
  ASSERT_TRUE(w->close());
  EXPECT_EQ(w->records_written(), 51u);
  for (unsigned threads : {1u, 2u}) {
    Trace t;
    ReadError e;
    ReadOptions ro;
    ro.threads = threads;
    ASSERT_TRUE(read_trace(p, &t, &e, ro)) << e.message;
    EXPECT_TRUE(t.clean_close) << t.truncation_reason;
    EXPECT_EQ(t.observations.size(), 50u);
    EXPECT_EQ(t.sketches.capacity(), 0u);  // nothing reserved
    EXPECT_EQ(t.sketch_of(0), nullptr);
  }
}

TEST(SketchRecords, OversizedSketchIsDroppedNotTheObservation) {
  const std::string p = temp_path("sketch_big.fpst");
  std::string err;
  auto w = TraceWriter::open(p, "{}", WriterOptions{}, &err);
  ASSERT_TRUE(w) << err;
  w->define_tensor(make_tensor(0));
  Observation o = make_obs(0, 1, 3);
  o.sketch.assign(4097, 1.0f);
  w->observe(o);
  o.seq = 2;
  o.sketch.assign(4096, 2.0f);
  w->observe(o);
  ASSERT_TRUE(w->close());
  EXPECT_EQ(w->records_dropped(), 1u);
  EXPECT_EQ(w->records_written(), 4u);  // tensor, two observations, one sketch
  Trace t;
  ReadError e;
  ASSERT_TRUE(read_trace(p, &t, &e)) << e.message;
  EXPECT_TRUE(t.clean_close) << t.truncation_reason;
  ASSERT_EQ(t.observations.size(), 2u);
  EXPECT_EQ(t.sketch_of(0), nullptr);
  ASSERT_NE(t.sketch_of(1), nullptr);
  EXPECT_EQ(t.sketch_of(1)->v, std::vector<float>(4096, 2.0f));
}

// ---- crafted files (FORMAT.md 5.8 by hand) -------------------------------------------------

craft::Obs obs_at(uint64_t seq, uint64_t step = 2) {
  craft::Obs o;
  o.seq = seq;
  o.step = step;
  o.count = 16;
  o.hist = {{500, 16}};
  return o;
}

// A good first chunk (a tensor, an observation and its 2-bucket sketch), then `second`, then a
// footer; read by read_trace (both thread counts) and TraceFile.
struct Crafted {
  Trace seq[2];
  bool chunk1_ok = false;
  std::string chunk1_why;
  uint64_t chunk1_unknown = 0;
  size_t chunk1_sketches = 0;
  bool clean_file = false;
};
Crafted read_two_chunks(const std::string& name, uint16_t minor,
                        const std::vector<craft::Rec>& second) {
  craft::File f("{}", minor);
  f.chunk({craft::rec(craft::Tensor{}), craft::rec(obs_at(0)),
           craft::sketch_rec(craft::sketch_body({0.5f, -2.0f}), 2)});
  f.chunk(second);
  f.footer();
  const std::string p = temp_path(name);
  test::write_file(p, f.bytes());
  Crafted c;
  for (unsigned threads : {1u, 2u}) {
    ReadError e;
    ReadOptions ro;
    ro.threads = threads;
    EXPECT_TRUE(read_trace(p, &c.seq[threads - 1], &e, ro)) << e.message;
  }
  auto tf = TraceFile::open(p, nullptr);
  EXPECT_TRUE(tf);
  if (!tf) return c;
  ChunkRecords cr;
  EXPECT_TRUE(tf->read_chunk(0, &cr, &c.chunk1_why)) << c.chunk1_why;
  EXPECT_EQ(cr.sketches.size(), minor >= 4 ? 1u : 0u);
  c.chunk1_ok = tf->read_chunk(1, &cr, &c.chunk1_why);
  c.chunk1_unknown = cr.unknown_records;
  c.chunk1_sketches = cr.sketches.size();
  c.clean_file = tf->verify();
  return c;
}

TEST(SketchRecords, MalformedSketchesMakeTheirChunkMalformed) {
  std::vector<float> b256(256, 1.0f), b255(255, 1.0f), b4097(4097, 0.0f);
  const craft::Bytes partial_k = {0x80};  // K's varint cut short
  struct Case {
    const char* name;
    std::vector<craft::Rec> recs;
  };
  const std::vector<Case> cases = {
      {"K = 0", {craft::rec(obs_at(1)), craft::sketch_rec(craft::sketch_body({}), 2)}},
      {"K = 4097", {craft::rec(obs_at(1)), craft::sketch_rec(craft::sketch_body(b4097), 2)}},
      {"255 of 256 buckets",
       {craft::rec(obs_at(1)), craft::sketch_rec(craft::sketch_body(b255, 256), 2)}},
      {"truncated K", {craft::rec(obs_at(1)), craft::sketch_rec(partial_k, 2)}},
      // No observation before it: no step either (a 1.3 reader's range for this chunk is [0, 0]).
      {"first record of its payload", {craft::Rec{8, craft::sketch_body(b256), false, 0, 0}}},
      {"after a step mark",
       {craft::rec(obs_at(1)), craft::step_rec(2), craft::sketch_rec(craft::sketch_body(b256), 2)}},
      {"after an unknown record",
       {craft::rec(obs_at(1)), craft::Rec{0x55, {1, 2, 3}, false, 0, 0},
        craft::sketch_rec(craft::sketch_body(b256), 2)}},
      {"a second sketch",
       {craft::rec(obs_at(1)), craft::sketch_rec(craft::sketch_body(b256), 2),
        craft::sketch_rec(craft::sketch_body(b256), 2)}},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    const Crafted c = read_two_chunks("sketch_bad.fpst", 4, k.recs);
    for (const Trace& t : c.seq) {
      EXPECT_TRUE(t.truncated);
      EXPECT_NE(t.truncation_reason.find("sketch"), std::string::npos) << t.truncation_reason;
      ASSERT_EQ(t.observations.size(), 1u);  // the first chunk's, with its sketch
      ASSERT_EQ(t.sketches.size(), 1u);
      EXPECT_EQ(t.sketches[0].v, (std::vector<float>{0.5f, -2.0f}));
    }
    EXPECT_FALSE(c.chunk1_ok);
    EXPECT_NE(c.chunk1_why.find("sketch"), std::string::npos) << c.chunk1_why;
    EXPECT_FALSE(c.clean_file);
  }
}

TEST(SketchRecords, ValidEdgesAndALaterMinorsTailAreRead) {
  std::vector<float> b4096(4096);
  for (size_t j = 0; j < b4096.size(); ++j) b4096[j] = static_cast<float>(j) * 0.5f;
  for (uint16_t minor : {uint16_t{4}, uint16_t{5}}) {
    SCOPED_TRACE(minor);
    const Crafted c =
        read_two_chunks("sketch_edges.fpst", minor,
                        {craft::rec(obs_at(1, 3)), craft::sketch_rec(craft::sketch_body({7.0f}), 3),
                         craft::rec(obs_at(2, 3)), craft::rec(obs_at(3, 4)),
                         craft::sketch_rec(craft::sketch_body(b4096, -1, {0xAA, 0xBB, 0xCC}), 4)});
    for (const Trace& t : c.seq) {
      EXPECT_TRUE(t.clean_close) << t.truncation_reason;
      ASSERT_EQ(t.observations.size(), 4u);
      ASSERT_EQ(t.sketches.size(), 3u);
      ASSERT_NE(t.sketch_of(1), nullptr);
      EXPECT_EQ(t.sketch_of(1)->v, std::vector<float>{7.0f});
      EXPECT_EQ(t.sketch_of(2), nullptr);
      ASSERT_NE(t.sketch_of(3), nullptr);
      EXPECT_EQ(t.sketch_of(3)->v, b4096);  // the three bytes after the buckets ignored
      EXPECT_EQ(t.unknown_records, 0u);
    }
    EXPECT_TRUE(c.chunk1_ok) << c.chunk1_why;
    EXPECT_EQ(c.chunk1_sketches, 2u);
    EXPECT_TRUE(c.clean_file);
  }
}

TEST(SketchRecords, AMinor3FileReadsTag8AsUnknownRecords) {
  // Even bodies that would be malformed in 1.4: a 1.3 reader skips them by their length. The
  // footer (K = 8) counts them among the totals of tags it does not know.
  const Crafted c =
      read_two_chunks("sketch_minor3.fpst", 3,
                      {craft::rec(obs_at(1)), craft::sketch_rec(craft::sketch_body({}), 2),
                       craft::sketch_rec(craft::sketch_body({1.0f}), 2), craft::step_rec(2)});
  for (const Trace& t : c.seq) {
    EXPECT_EQ(t.version_minor, 3);
    EXPECT_TRUE(t.clean_close) << t.truncation_reason;
    EXPECT_EQ(t.observations.size(), 2u);
    EXPECT_EQ(t.steps.size(), 1u);
    EXPECT_TRUE(t.sketches.empty());
    EXPECT_EQ(t.unknown_records, 3u);  // one in the first chunk, two in the second
  }
  EXPECT_TRUE(c.chunk1_ok) << c.chunk1_why;
  EXPECT_EQ(c.chunk1_unknown, 2u);
  EXPECT_EQ(c.chunk1_sketches, 0u);
  EXPECT_TRUE(c.clean_file);
}

// ---- truncation --------------------------------------------------------------------------

TEST(SketchRecords, CutAtEveryByteKeepsWholeObservationsWithTheirSketches) {
  const std::string p = temp_path("sketch_cut.fpst");
  std::map<uint64_t, std::vector<float>> want;  // by seq
  {
    WriterOptions opt;
    opt.flush_bytes = 4096;
    std::string err;
    auto w = TraceWriter::open(p, "{}", opt, &err);
    ASSERT_TRUE(w) << err;
    w->define_tensor(make_tensor(0));
    for (uint64_t i = 0; i < 40; ++i) {
      Observation o = make_obs(0, i, 6);
      std::vector<float> v = sketch_for(i);
      if (v.size() > 64) v.resize(64);  // a small file: every cut is read
      o.sketch = v;
      want[i] = v;
      w->observe(o);
    }
    ASSERT_TRUE(w->close()) << w->error();
  }
  const std::vector<uint8_t> full = test::read_file(p);
  const test::FixtureLayout lay = test::walk_layout(full);
  ASSERT_GE(lay.chunks.size(), 4u);  // several RECORDS chunks and the footer
  const int fd = ::open(p.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  size_t after = std::numeric_limits<size_t>::max();
  for (size_t cut = full.size() + 1; cut-- > lay.header_end;) {
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(cut)), 0);
    size_t n_obs[3] = {};
    for (unsigned threads : {1u, 2u}) {
      Trace t;
      ReadError e;
      ReadOptions ro;
      ro.threads = threads;
      ASSERT_TRUE(read_trace(p, &t, &e, ro)) << cut << ": " << e.message;
      n_obs[threads - 1] = t.observations.size();
      uint64_t with = 0;
      for (size_t i = 0; i < t.observations.size(); ++i) {
        const SketchRecord* s = t.sketch_of(i);
        const std::vector<float>& w = want.at(t.observations[i].seq);
        ASSERT_EQ(s != nullptr, !w.empty()) << "cut " << cut << ", observation " << i;
        if (s) expect_same_bits(s->v, w);
        with += s != nullptr;
      }
      ASSERT_EQ(t.sketches.size(), with) << cut;  // none of an observation not read
      ASSERT_EQ(t.clean_close, cut == full.size()) << cut;
    }
    auto tf = TraceFile::open(p, nullptr);
    ASSERT_TRUE(tf) << cut;
    Trace part;
    std::string why;
    tf->read_steps(0, kAll, &part, &why);
    n_obs[2] = part.observations.size();
    for (size_t i = 0; i < part.observations.size(); ++i)
      ASSERT_EQ(part.sketch_of(i) != nullptr, !want.at(part.observations[i].seq).empty()) << cut;
    ASSERT_EQ(n_obs[0], n_obs[1]) << cut;
    ASSERT_EQ(n_obs[0], n_obs[2]) << cut;
    ASSERT_LE(n_obs[0], after) << cut;  // recovery shrinks with the file, never grows
    after = n_obs[0];
  }
  ::close(fd);
  EXPECT_EQ(after, 0u);  // a cut right after the header
}

}  // namespace
}  // namespace fpscope::trace
