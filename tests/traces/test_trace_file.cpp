// TraceFile: indexed access through a verified footer, the scan fallback, seeking to a step range
// without decoding the rest, lazy detection of bad chunks, and hostile footers (offsets, counts
// and steps that lie, with valid CRCs) that must never be trusted.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <functional>

#include "fpscope/trace_file.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"
#include "trace_fixture.h"

namespace fpscope::trace {
namespace {

using namespace test;

constexpr uint64_t kAll = UINT64_MAX;

// A clean plain trace of `steps` steps (16 observations each, all record kinds), small chunks.
std::vector<uint8_t> stepped_trace(const std::string& path, int steps) {
  return write_all_kinds(path, steps, 10);
}

std::unique_ptr<TraceFile> open_or_fail(const std::string& path) {
  ReadError e;
  auto f = TraceFile::open(path, &e);
  EXPECT_TRUE(f) << e.message;
  return f;
}

TEST(TraceFile, FooterIndexMatchesTheFileAndReadTrace) {
  const std::string path = temp_path("tf_clean.fpst");
  const std::vector<uint8_t> bytes = stepped_trace(path, 30);
  const FixtureLayout lay = walk_layout(bytes);
  Trace whole;
  ReadError e;
  ASSERT_TRUE(read_trace(path, &whole, &e)) << e.message;
  ASSERT_TRUE(whole.clean_close);

  auto f = open_or_fail(path);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->footer_index_used()) << f->footer_note();
  EXPECT_TRUE(f->footer_note().empty());
  EXPECT_TRUE(f->clean_close());
  EXPECT_EQ(f->metadata_json(), probe_like_metadata());
  EXPECT_EQ(f->file_bytes(), bytes.size());
  EXPECT_EQ(f->version_major(), 1);
  ASSERT_EQ(f->chunks().size(), lay.chunks.size() - 1);  // all but the footer
  ASSERT_GE(f->chunks().size(), 6u);
  for (size_t k = 0; k < f->chunks().size(); ++k) {
    const ChunkInfo& c = f->chunks()[k];
    const FixtureChunk& want = lay.chunks[k];
    EXPECT_EQ(c.offset, want.begin) << k;
    EXPECT_EQ(c.bytes, want.end - want.begin) << k;
    EXPECT_EQ(c.records, want.records) << k;
    EXPECT_EQ(c.first_step, want.first_step == UINT64_MAX ? 0 : want.first_step) << k;
    EXPECT_EQ(c.last_step, want.last_step) << k;
    EXPECT_FALSE(c.compressed);
  }
  // Every chunk decoded one by one gives read_trace's records, in order.
  ChunkRecords cr;
  std::string why;
  size_t obs = 0, tensors = 0, events = 0;
  uint64_t hist = 0;
  for (uint32_t k = 0; k < f->chunks().size(); ++k) {
    ASSERT_TRUE(f->read_chunk(k, &cr, &why)) << why;
    EXPECT_EQ(cr.chunk, k);
    EXPECT_EQ(cr.tensors_before, tensors);
    EXPECT_EQ(cr.order.size(), f->chunks()[k].records);
    for (const TensorInfo& t : cr.tensors) EXPECT_EQ(t.id, whole.tensors[tensors++].id);
    for (const ObservationRecord& o : cr.observations) {
      const ObservationRecord& w = whole.observations[obs++];
      EXPECT_EQ(o.seq, w.seq);
      EXPECT_EQ(o.tensor, w.tensor);
      EXPECT_EQ(o.stats.sum, w.stats.sum);
      const TensorStats a = cr.full_stats(o), b = whole.full_stats(w);
      for (int bin = 0; bin < kHistBins; ++bin) ASSERT_EQ(a.hist[bin], b.hist[bin]);
      hist += o.hist_len;
    }
    for (const EventRecord& ev : cr.events) EXPECT_EQ(ev.text, whole.events[events++].text);
  }
  EXPECT_EQ(obs, whole.observations.size());
  EXPECT_EQ(tensors, whole.tensors.size());
  EXPECT_EQ(events, whole.events.size());
  EXPECT_EQ(hist, whole.hist_bins.size());
  EXPECT_TRUE(f->verify());
  EXPECT_EQ(f->tensors().size(), 4u);
  EXPECT_FALSE(f->read_chunk(static_cast<uint32_t>(f->chunks().size()), &cr, &why));
  EXPECT_NE(why.find("no chunk"), std::string::npos);
}

TEST(TraceFile, SeeksToAStepRangeWithoutDecodingTheRest) {
  const std::string path = temp_path("tf_seek.fpst");
  stepped_trace(path, 40);
  Trace whole;
  ReadError e;
  ASSERT_TRUE(read_trace(path, &whole, &e)) << e.message;
  auto f = open_or_fail(path);
  ASSERT_TRUE(f && f->footer_index_used());

  const std::vector<uint32_t> sel = f->chunks_for_steps(20, 22);
  ASSERT_FALSE(sel.empty());
  EXPECT_LT(sel.size(), f->chunks().size() / 3);
  for (uint32_t k : sel) {
    EXPECT_LE(f->chunks()[k].first_step, 22u);
    EXPECT_GE(f->chunks()[k].last_step, 20u);
  }
  EXPECT_TRUE(f->chunks_for_steps(5, 4).empty());

  Trace part;
  std::string why;
  ASSERT_TRUE(f->read_steps(20, 22, &part, &why)) << why;
  std::vector<uint64_t> want_seq;
  for (const ObservationRecord& o : whole.observations)
    if (o.step >= 20 && o.step <= 22) want_seq.push_back(o.seq);
  ASSERT_EQ(part.observations.size(), want_seq.size());
  ASSERT_EQ(want_seq.size(), 36u);  // 12 per step
  for (size_t i = 0; i < want_seq.size(); ++i) {
    EXPECT_EQ(part.observations[i].seq, want_seq[i]);
    const TensorStats a = part.full_stats(part.observations[i]);
    EXPECT_EQ(a.count, part.observations[i].stats.count);
  }
  EXPECT_EQ(part.steps.size(), 3u);
  EXPECT_EQ(part.loss_scales.size(), 3u);
  EXPECT_EQ(part.weight_updates.size(), 3u);
  EXPECT_EQ(part.events.size(), 3u);
  EXPECT_EQ(part.events[0].text, "step 20 done");
  EXPECT_EQ(part.tensors.size(), 4u);
  EXPECT_TRUE(part.clean_close);
  EXPECT_EQ(part.path, path);
  const TraceModel m(part);
  ASSERT_EQ(m.steps().size(), 3u);
  EXPECT_EQ(m.first_step(), 20u);
  EXPECT_EQ(m.last_step(), 22u);
  EXPECT_EQ(m.step_observations(21).size(), 12u);

  // The visitor sees the same records in file order, and can stop early.
  size_t seen = 0, seen_obs = 0;
  uint64_t last_seq = 0;
  ASSERT_TRUE(f->for_each_in_steps(
      20, 22,
      [&](const ChunkRecords& c, RecordKind kind, uint32_t i) {
        EXPECT_GE(c.step_of(kind, i), 20u);
        EXPECT_LE(c.step_of(kind, i), 22u);
        EXPECT_NE(kind, RecordKind::Tensor);
        if (kind == RecordKind::Observation) {
          if (seen_obs > 0) {
            EXPECT_GT(c.observations[i].seq, last_seq);
          }
          last_seq = c.observations[i].seq;
          ++seen_obs;
        }
        ++seen;
        return true;
      },
      &why))
      << why;
  EXPECT_EQ(seen_obs, 36u);
  EXPECT_EQ(seen, 36u + 18u + 4 * 3);  // observations, their sketches (every other), 4 kinds
  size_t calls = 0;
  ASSERT_TRUE(f->for_each_in_steps(
      0, kAll, [&](const ChunkRecords&, RecordKind, uint32_t) { return ++calls < 5; }, &why));
  EXPECT_EQ(calls, 5u);
}

TEST(TraceFile, TornFileIsIndexedByTheScanLikeReadTrace) {
  const std::string src = temp_path("tf_torn_src.fpst");
  const std::vector<uint8_t> bytes = stepped_trace(src, 20);
  const FixtureLayout lay = walk_layout(bytes);
  const size_t cut = (lay.chunks[4].begin + lay.chunks[4].end) / 2;  // inside chunk 4
  const std::string path = temp_path("tf_torn.fpst");
  write_file(path, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(cut)));
  Trace t;
  ReadError e;
  ASSERT_TRUE(read_trace(path, &t, &e)) << e.message;
  auto f = open_or_fail(path);
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->footer_index_used());
  EXPECT_NE(f->footer_note().find("FEND"), std::string::npos) << f->footer_note();
  EXPECT_EQ(f->chunks().size(), 4u);
  EXPECT_TRUE(f->truncated());
  EXPECT_EQ(f->dropped_bytes(), t.dropped_bytes);
  EXPECT_EQ(f->dropped_bytes(), cut - lay.chunks[4].begin);
  EXPECT_EQ(f->truncation_reason(), t.truncation_reason);
  Trace part;
  std::string why;
  ASSERT_TRUE(f->read_steps(0, kAll, &part, &why)) << why;
  EXPECT_EQ(part.observations.size(), t.observations.size());
  EXPECT_EQ(part.tensors.size(), t.tensors.size());
  EXPECT_TRUE(part.truncated);
}

TEST(TraceFile, ACorruptChunkBehindAValidFooterIsFoundWhenRead) {
  const std::string src = temp_path("tf_bad_src.fpst");
  std::vector<uint8_t> bytes = stepped_trace(src, 20);
  const FixtureLayout lay = walk_layout(bytes);
  ASSERT_GE(lay.chunks.size(), 6u);
  bytes[lay.chunks[3].begin + 40] ^= 0x10;  // inside chunk 3's payload: its CRC no longer holds
  const std::string path = temp_path("tf_bad.fpst");
  write_file(path, bytes);
  Trace t;
  ReadError e;
  ASSERT_TRUE(read_trace(path, &t, &e)) << e.message;
  auto f = open_or_fail(path);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->footer_index_used());  // only chunk headers were read: not noticed yet
  EXPECT_FALSE(f->truncated());
  ChunkRecords c;
  std::string why;
  EXPECT_TRUE(f->read_chunk(1, &c, &why)) << why;
  EXPECT_FALSE(f->read_chunk(3, &c, &why));
  EXPECT_NE(why.find("checksum mismatch"), std::string::npos) << why;
  EXPECT_NE(why.find(std::to_string(lay.chunks[3].begin)), std::string::npos) << why;
  EXPECT_TRUE(c.observations.empty());
  EXPECT_FALSE(f->read_chunk(4, &c, &why));  // after the first bad chunk: unreadable
  EXPECT_TRUE(f->read_chunk(2, &c, &why)) << why;
  EXPECT_TRUE(f->truncated());
  EXPECT_FALSE(f->verify());
  EXPECT_EQ(f->dropped_bytes(), t.dropped_bytes);
  EXPECT_EQ(f->dropped_bytes(), bytes.size() - lay.chunks[3].begin);
  Trace part;
  EXPECT_FALSE(f->read_steps(0, kAll, &part, &why));
  EXPECT_EQ(part.observations.size(), t.observations.size());  // chunks 0-2
  EXPECT_TRUE(part.truncated);
  EXPECT_EQ(f->tensors().size(), t.tensors.size());
}

// Finds observation records in a plain RECORDS payload and the offset of their histogram's
// first pair (FORMAT.md 5.2), to break a histogram without touching the framing.
std::vector<size_t> histogram_offsets(const std::vector<uint8_t>& p) {
  std::vector<size_t> out;
  size_t r = 0;
  while (r < p.size()) {
    const uint8_t tag = p[r++];
    const uint64_t n = varint_at(p.data(), &r);
    if (tag == 2) {
      size_t q = r;
      for (int i = 0; i < 10; ++i) varint_at(p.data(), &q);
      q += 3 * 4 + 2 * 8;
      const uint64_t targets = varint_at(p.data(), &q);
      for (uint64_t t = 0; t < targets; ++t) {
        const uint8_t flags = p[q++];
        for (int i = 0; i < 3; ++i) varint_at(p.data(), &q);
        q += (flags & 2 ? 8 : 0) + (flags & 1 ? 4 : 0);
      }
      const uint64_t bins = varint_at(p.data(), &q);
      if (bins >= 2) out.push_back(q);
    }
    r += n;
  }
  return out;
}

TEST(TraceFile, AMalformedHistogramStopsBothReadersAtItsChunkWithEitherThreadCount) {
  // No footer (scan mode): chunk 2 has a valid CRC but a histogram whose second delta is 0.
  const std::string src = temp_path("tf_hist_src.fpst");
  const std::vector<uint8_t> bytes = stepped_trace(src, 20);
  const FixtureLayout lay = walk_layout(bytes);
  std::vector<uint8_t> f(bytes.begin(), bytes.begin() + static_cast<long>(lay.header_end));
  for (size_t k = 0; k + 1 < lay.chunks.size(); ++k) {
    std::vector<uint8_t> p = chunk_payload(bytes, lay.chunks[k]);
    if (k == 2) {
      const std::vector<size_t> at = histogram_offsets(p);
      ASSERT_FALSE(at.empty());
      size_t q = at[at.size() / 2];
      varint_at(p.data(), &q);  // first delta
      varint_at(p.data(), &q);  // first count
      ASSERT_LT(p[q], 0x80);    // a one-byte second delta
      p[q] = 0;
    }
    append_chunk(f, 1, 0, p);
  }
  const std::string path = temp_path("tf_hist.fpst");
  write_file(path, f);
  const uint64_t want_obs = lay.chunks[0].kinds[2] + lay.chunks[1].kinds[2];
  const size_t bad_at = lay.chunks[2].begin;
  std::string reasons[2];
  for (unsigned threads : {1u, 2u}) {
    Trace t;
    ReadError e;
    ASSERT_TRUE(read_trace(path, &t, &e, ReadOptions{threads})) << e.message;
    EXPECT_EQ(t.observations.size(), want_obs) << threads;
    EXPECT_EQ(t.dropped_bytes, f.size() - bad_at) << threads;
    EXPECT_EQ(t.hist_bins.size(), t.hist_counts.size());
    uint64_t hist = 0;
    for (const ObservationRecord& o : t.observations) hist += o.hist_len;
    EXPECT_EQ(t.hist_bins.size(), hist) << threads;
    EXPECT_NE(t.truncation_reason.find("malformed observation histogram"), std::string::npos)
        << t.truncation_reason;
    reasons[threads - 1] = t.truncation_reason;
  }
  EXPECT_EQ(reasons[0], reasons[1]);
  auto tf = open_or_fail(path);
  ASSERT_TRUE(tf);
  EXPECT_FALSE(tf->footer_index_used());
  EXPECT_EQ(tf->chunks().size(), lay.chunks.size() - 1);  // the light scan does not see it
  ChunkRecords c;
  std::string why;
  EXPECT_TRUE(tf->read_chunk(1, &c, &why)) << why;
  EXPECT_FALSE(tf->read_chunk(2, &c, &why));
  EXPECT_EQ(why, reasons[0]);
  EXPECT_EQ(tf->dropped_bytes(), f.size() - bad_at);
  EXPECT_FALSE(tf->read_chunk(3, &c, &why));
}

TEST(TraceFile, OpenErrorsNameTheFile) {
  ReadError e;
  EXPECT_FALSE(TraceFile::open(temp_path("nope.fpst"), &e));
  EXPECT_EQ(e.kind, ReadErrorKind::NotFound);
  const std::string text = temp_path("tf_text.fpst");
  write_file(text, {'h', 'i', '\n'});
  EXPECT_FALSE(TraceFile::open(text, &e));
  EXPECT_EQ(e.kind, ReadErrorKind::NotATrace);
  EXPECT_NE(e.message.find(text), std::string::npos);
  const std::string v2 = temp_path("tf_v2.fpst");
  write_file(v2, make_header(2, 1, "{}"));
  EXPECT_FALSE(TraceFile::open(v2, &e));
  EXPECT_EQ(e.kind, ReadErrorKind::UnsupportedVersion);
  EXPECT_NE(e.message.find("2.1"), std::string::npos);
  // A header alone: an empty, truncated trace.
  const std::string bare = temp_path("tf_bare.fpst");
  write_file(bare, make_header(1, 0, "{}"));
  auto f = TraceFile::open(bare, &e);
  ASSERT_TRUE(f) << e.message;
  EXPECT_TRUE(f->chunks().empty());
  EXPECT_TRUE(f->truncated());
  EXPECT_NE(f->truncation_reason().find("no footer"), std::string::npos);
  EXPECT_TRUE(f->tensors().empty());
}

// ---- hostile footers -----------------------------------------------------------------------

struct Hostile {
  const char* name;
  // Edits the footer (and may change the bytes before it); returns the footer_offset to write
  // (normally the offset of the footer chunk, `at`).
  std::function<uint64_t(TestFooter&, std::vector<uint8_t>& body, uint64_t at)> edit;
  bool footer_used;      // TraceFile may use the index
  const char* note;      // part of footer_note() when it may not
  int lazily_bad_chunk;  // with footer_used: the chunk found lying when read (-1: none)
  bool fend = true;
};

std::vector<Hostile> hostile_footers() {
  return {
      {"entry offset one byte into its chunk",
       [](TestFooter& t, auto&, uint64_t at) { return t.index[2][0] += 1, at; }, false, "offset",
       -1},
      {"entry offset beyond the end of the file",
       [](TestFooter& t, auto&, uint64_t at) { return t.index[1][0] = 1ull << 62, at; }, false,
       "offset", -1},
      {"entry offset at the footer itself",
       [](TestFooter& t, auto&, uint64_t at) { return t.index.back()[0] = at, at; }, false,
       "offset", -1},
      {"an entry missing",
       [](TestFooter& t, auto&, uint64_t at) {
         t.totals[1] -= t.index.back()[1];  // keep the sums consistent: only the index lies
         t.index.pop_back();
         return at;
       },
       false, "fewer chunks", -1},
      {"an extra entry",
       [](TestFooter& t, auto&, uint64_t at) {
         t.index.push_back({at, 0, 0, 0});
         return at;
       },
       false, "more chunks", -1},
      {"records far beyond what the chunk can hold",
       [](TestFooter& t, auto&, uint64_t at) {
         t.index[1][1] = 1ull << 40;
         t.totals[1] += (1ull << 40);
         return at;
       },
       false, "impossible", -1},
      {"totals that do not add up to the index",
       [](TestFooter& t, auto&, uint64_t at) { return t.totals[0] += 1, at; }, false, "add up", -1},
      {"one record too many in a chunk (sums kept consistent)",
       [](TestFooter& t, auto&, uint64_t at) {
         t.index[3][1] += 1;
         t.totals[1] += 1;
         return at;
       },
       true, "", 3},
      {"a step range that lies",
       [](TestFooter& t, auto&, uint64_t at) {
         t.index[2][2] = 1000000;
         t.index[2][3] = 1000001;
         return at;
       },
       true, "", 2},
      {"footer_offset pointing at the first RECORDS chunk",
       [](TestFooter&, auto& body, uint64_t) {
         return static_cast<uint64_t>(walk_layout(body).header_end);
       },
       false, "does not point at the closing FOOTER", -1},
      {"footer_offset beyond the file",
       [](TestFooter&, auto&, uint64_t at) { return at + (1ull << 40); }, false, "outside", -1},
      {"footer_offset zero", [](TestFooter&, auto&, uint64_t) { return uint64_t{0}; }, false,
       "outside", -1},
      {"no FEND marker", [](TestFooter&, auto&, uint64_t at) { return at; }, false, "FEND", -1,
       false},
      {"a second FOOTER chunk before the last",
       [](TestFooter& t, auto& body, uint64_t) {
         const uint64_t first = body.size();
         append_chunk(body, 2, 0, footer_payload(t, first));
         return static_cast<uint64_t>(body.size());
       },
       false, "FOOTER chunk before the last", -1},
  };
}

TEST(HostileFooter, NeverTrustedBothReadersKeepEveryGoodRecord) {
  const std::string src = temp_path("hf_src.fpst");
  const std::vector<uint8_t> clean = stepped_trace(src, 16);
  const FixtureLayout lay = walk_layout(clean);
  ASSERT_GE(lay.chunks.size(), 6u);
  const TestFooter original = parse_test_footer(clean, lay.chunks.back());
  Trace whole;
  ReadError e;
  ASSERT_TRUE(read_trace(src, &whole, &e));
  int n = 0;
  for (const Hostile& h : hostile_footers()) {
    SCOPED_TRACE(h.name);
    std::vector<uint8_t> body(clean.begin(),
                              clean.begin() + static_cast<long>(lay.chunks.back().begin));
    TestFooter t = original;
    const uint64_t declared = h.edit(t, body, body.size());
    append_chunk(body, 2, 0, footer_payload(t, declared, h.fend));
    const std::string path = temp_path("hf" + std::to_string(n++) + ".fpst");
    write_file(path, body);

    // read_trace: every RECORDS chunk is good; the footer may not make the trace clean.
    Trace r;
    ASSERT_TRUE(read_trace(path, &r, &e)) << e.message;
    EXPECT_EQ(r.observations.size(), whole.observations.size());
    EXPECT_EQ(r.events.size(), whole.events.size());
    EXPECT_FALSE(r.clean_close);
    EXPECT_TRUE(r.truncated);
    EXPECT_FALSE(r.truncation_reason.empty());

    auto f = TraceFile::open(path, &e);
    ASSERT_TRUE(f) << e.message;
    EXPECT_EQ(f->footer_index_used(), h.footer_used) << f->footer_note();
    if (!h.footer_used) {
      EXPECT_NE(f->footer_note().find(h.note), std::string::npos) << f->footer_note();
      // The scan: the same chunks read_trace read.
      EXPECT_EQ(f->chunks().size(), lay.chunks.size() - 1);
      EXPECT_TRUE(f->truncated());
      Trace part;
      std::string why;
      EXPECT_TRUE(f->read_steps(0, kAll, &part, &why)) << why;
      EXPECT_EQ(part.observations.size(), whole.observations.size());
      EXPECT_EQ(part.tensors.size(), whole.tensors.size());
      continue;
    }
    // Used: the lie is found when the chunk it is about is scanned, and reported.
    ASSERT_GE(h.lazily_bad_chunk, 0);
    const uint32_t bad = static_cast<uint32_t>(h.lazily_bad_chunk);
    if (std::string(h.name).find("step range") != std::string::npos) {
      EXPECT_EQ(f->chunks_for_steps(1000000, 1000000), std::vector<uint32_t>{bad});
    }
    ChunkRecords c;
    std::string why;
    EXPECT_TRUE(f->read_chunk(bad - 1, &c, &why)) << why;
    EXPECT_FALSE(f->read_chunk(bad, &c, &why));
    EXPECT_NE(why.find("does not match its footer index entry"), std::string::npos) << why;
    EXPECT_TRUE(f->truncated());
    EXPECT_EQ(f->dropped_bytes(), body.size() - lay.chunks[bad].begin);
    Trace part;
    EXPECT_FALSE(f->read_steps(0, kAll, &part, &why));
    uint64_t before = 0;
    for (uint32_t k = 0; k < bad; ++k) before += lay.chunks[k].kinds[2];
    EXPECT_EQ(part.observations.size(), before);
  }
}

TEST(HostileFooter, HugeCountsNeverAllocate) {
  // Footers whose counts ask for 2^60 entries; each file has one good chunk before them.
  std::vector<std::string> paths;
  for (int variant = 0; variant < 3; ++variant) {
    // The writer's header and first chunk (one tensor definition), then the hostile footer.
    const std::string src = temp_path("hf_huge_src.fpst");
    auto w = TraceWriter::open(src, "", WriterOptions{}, nullptr);
    ASSERT_TRUE(w);
    w->define_tensor(make_tensor(0));
    ASSERT_TRUE(w->close());
    const std::vector<uint8_t> b = read_file(src);
    std::vector<uint8_t> f(b.begin(), b.begin() + static_cast<long>(walk_layout(b).chunks[0].end));
    std::vector<uint8_t> p;
    if (variant == 0) {  // K = 2^60 totals
      put_varint(p, 1ull << 60);
    } else {
      put_varint(p, 6);
      for (int k = 0; k < 6; ++k) put_varint(p, variant == 1 ? 1ull << 60 : 1);
      put_varint(p, 1ull << 60);                     // histogram entries
      put_varint(p, variant == 2 ? 1ull << 60 : 1);  // index entries
      if (variant == 1) {
        const std::array<uint64_t, 4> e{f.size() - 100, 1ull << 60, 0, 0};
        for (uint64_t v : e) put_varint(p, v);
      }
    }
    put_le(p, f.size(), 8);
    p.insert(p.end(), {'F', 'E', 'N', 'D'});
    append_chunk(f, 2, 0, p);
    paths.push_back(temp_path("hf_huge" + std::to_string(variant) + ".fpst"));
    write_file(paths.back(), f);
  }
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    struct rlimit rl {};
    ::getrlimit(RLIMIT_AS, &rl);
    rl.rlim_cur = 1ull << 30;
    ::setrlimit(RLIMIT_AS, &rl);
#endif
    int bad = 0;
    for (size_t i = 0; i < paths.size(); ++i) {
      ReadError e;
      auto f = TraceFile::open(paths[i], &e);
      if (!f || f->footer_index_used() || f->chunks().size() != 1 || f->tensors().size() != 1)
        bad |= 1 << i;
      Trace t;
      if (!read_trace(paths[i], &t, &e) || t.tensors.size() != 1 || t.clean_close) bad |= 8 << i;
    }
    ::_exit(bad);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died with signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace fpscope::trace
