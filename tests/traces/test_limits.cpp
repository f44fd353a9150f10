// The reader's resource bounds (FORMAT.md 4.4) and its overflow safety at 2^64-1 (issue 17):
// decompression bombs are refused by both readers before anything is decompressed, with an error
// naming the file, the chunk, the limit and how to raise it; a legitimate high-ratio trace still
// reads; memory per decompressed byte stays within the documented bound; steps, counts and footer
// totals near 2^64 never wrap. Files are crafted from FORMAT.md (trace_craft.h), not by the code
// under test.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <string>

#include "fpscope/trace_file.h"
#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"
#include "trace_craft.h"
#include "trace_fixture.h"
#include "trace_test_util.h"

namespace fpscope::trace {
namespace {

using namespace test;
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

std::string write_temp(const std::string& name, const craft::Bytes& bytes) {
  const std::string p = temp_path(name);
  write_file(p, bytes);
  return p;
}

// The smallest observation record the format allows: no targets, no histogram (42 bytes framed).
craft::Obs minimal_obs() {
  craft::Obs o;
  o.targets.clear();
  return o;
}

// Sum of the declared decompressed sizes R of a well-formed file's zstd chunks, read by hand
// from the chunk headers (FORMAT.md 4, 4.2).
uint64_t declared_raw(const craft::Bytes& f) {
  uint64_t total = 0;
  for (size_t pos = 20 + le32_at(f, 16) + 4; pos + 12 <= f.size(); pos += 12 + le32_at(f, pos + 4))
    if (f[pos + 1] == 1) total += le32_at(f, pos + 12);
  return total;
}

// Runs fn in a child process; returns its peak resident memory growth in bytes (VmHWM after fn
// minus VmRSS before, the high-water mark reset first), or -1 when fn failed or /proc is missing.
long long peak_rss_growth(const std::function<bool()>& fn) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    auto kb = [](const char* key) {
      std::ifstream f("/proc/self/status");
      std::string k;
      long long v = -1;
      while (f >> k) {
        if (k == key) {
          f >> v;
          break;
        }
      }
      return v;
    };
    { std::ofstream("/proc/self/clear_refs") << "5"; }  // resets VmHWM to the current RSS
    const long long before = kb("VmRSS:");
    const bool ok = fn();
    const long long peak = kb("VmHWM:");
    const long long growth = ok && before >= 0 && peak >= 0 ? (peak - before) * 1024 : -1;
    if (::write(fds[1], &growth, sizeof growth) != sizeof growth) ::_exit(1);
    ::_exit(0);
  }
  ::close(fds[1]);
  long long growth = -1;
  if (::read(fds[0], &growth, sizeof growth) != sizeof growth) growth = -1;
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return growth;
}

// ---- the bomb the tester reproduced: zstd chunks at the 64 MiB limit of identical records -----

struct Bomb {
  craft::Bytes file;
  std::vector<uint64_t> zstd_offsets;
  uint64_t raw = 0;  // R of each zstd chunk
};

Bomb make_bomb(int chunks, bool footer) {
  Bomb b;
  craft::File f;
  f.chunk({craft::rec(craft::Tensor{})});
  const craft::Rec r = craft::rec(minimal_obs());
  const uint64_t n = (uint64_t{64} << 20) / (r.body.size() + 2);
  const craft::Bytes raw = craft::repeated_payload(r, n);
  b.raw = raw.size();
  const craft::Bytes stored = craft::zstd_payload(raw, 3);
  craft::ChunkSum sum;
  sum.add(r, n);
  for (int i = 0; i < chunks; ++i) b.zstd_offsets.push_back(f.stored_chunk(stored, true, sum));
  if (footer) f.footer();
  b.file = f.bytes();
  return b;
}

TEST(ExpansionLimit, BombIsRefusedBeforeDecodingByBothReadersNamingFileChunkLimitAndRemedy) {
  for (const bool footer : {true, false}) {
    SCOPED_TRACE(footer ? "with footer (indexed path)" : "without footer (scan path)");
    const Bomb b = make_bomb(24, footer);
    ASSERT_LE(b.raw, uint64_t{64} << 20);
    const std::string p = write_temp("bomb.fpst", b.file);
    const uint64_t size = b.file.size();
    EXPECT_LT(size, 200u << 10);                  // a tiny attachment...
    EXPECT_GT(24 * b.raw, uint64_t{1500} << 20);  // ...that decodes to 1.5 GiB
    ASSERT_EQ(declared_raw(b.file), 24 * b.raw);

    // Independently: limit = max(64 MiB, 100 x size); the first chunk whose running sum exceeds
    // it is named.
    const uint64_t limit = std::max<uint64_t>(uint64_t{64} << 20, 100 * size);
    size_t k = 0;
    while ((k + 1) * b.raw <= limit) ++k;
    const uint64_t need = (24 * b.raw + size - 1) / size;

    Trace t;
    ReadError e;
    EXPECT_FALSE(read_trace(p, &t, &e, ReadOptions{1}));
    EXPECT_EQ(e.kind, ReadErrorKind::ExpansionLimit);
    EXPECT_EQ(
        e.message.rfind(p + ": chunk at offset " + std::to_string(b.zstd_offsets[k]) + ":", 0), 0u)
        << e.message;
    EXPECT_NE(e.message.find("limit of " + std::to_string(limit) + " bytes"), std::string::npos)
        << e.message;
    EXPECT_NE(e.message.find("FPSCOPE_MAX_EXPANSION=" + std::to_string(need)), std::string::npos)
        << e.message;
    EXPECT_NE(e.message.find("ratio from the default"), std::string::npos) << e.message;
    EXPECT_EQ(e.message.find('\n'), std::string::npos);
    EXPECT_TRUE(t.observations.empty());

    ReadError fe;
    EXPECT_EQ(TraceFile::open(p, &fe), nullptr);
    EXPECT_EQ(fe.kind, ReadErrorKind::ExpansionLimit);
    EXPECT_EQ(fe.message, e.message);

    // Refused before anything is decompressed: no 64 MiB buffer, no table.
    const long long grew = peak_rss_growth([&] {
      Trace t2;
      ReadError e2;
      return !read_trace(p, &t2, &e2, ReadOptions{2}) && e2.kind == ReadErrorKind::ExpansionLimit &&
             !TraceFile::open(p, &e2);
    });
    EXPECT_GE(grew, 0);
    EXPECT_LT(grew, 16ll << 20) << "peak RSS growth refusing the bomb";
  }
}

// A small trace: a tensor chunk, three zstd chunks of distinct records (declared R each), a footer.
struct Small {
  craft::File f;
  std::vector<uint64_t> zstd_offsets;
};
Small small_zstd_trace() {
  Small s;
  s.f.chunk({craft::rec(craft::Tensor{})});
  for (int c = 0; c < 3; ++c) {
    std::vector<craft::Rec> recs;
    for (int i = 0; i < 40; ++i) {
      craft::Obs o = minimal_obs();
      o.step = static_cast<uint64_t>(c);
      o.seq = static_cast<uint64_t>(c * 40 + i);
      o.count = 1000 + o.seq;
      recs.push_back(craft::rec(o));
    }
    s.zstd_offsets.push_back(s.f.chunk(recs, true));
  }
  return s;
}

TEST(ExpansionLimit, BoundIsExactAndCountsOnlyWhatTheWalkDecompresses) {
  Small s = small_zstd_trace();
  s.f.footer();
  const craft::Bytes& f = s.f.bytes();
  const uint64_t total = declared_raw(f);
  ASSERT_GT(total, f.size());  // ratio x size stays under the floor below: the floor decides
  const std::string p = write_temp("small.fpst", f);
  Trace t;
  ReadError e;
  ReadOptions at{1, 1, total};  // limit == total: read
  ASSERT_TRUE(read_trace(p, &t, &e, at)) << e.message;
  EXPECT_TRUE(t.clean_close) << t.truncation_reason;
  EXPECT_EQ(t.observations.size(), 120u);
  EXPECT_NE(TraceFile::open(p, &e, at), nullptr);
  ReadOptions below{1, 1, total - 1};  // one byte less: the third zstd chunk crosses it
  EXPECT_FALSE(read_trace(p, &t, &e, below));
  EXPECT_EQ(e.kind, ReadErrorKind::ExpansionLimit);
  EXPECT_NE(e.message.find("chunk at offset " + std::to_string(s.zstd_offsets[2]) + ":"),
            std::string::npos)
      << e.message;
  EXPECT_EQ(TraceFile::open(p, &e, below), nullptr);
  EXPECT_TRUE(read_trace(p, &t, &e, ReadOptions{1, kMax, 0})) << "UINT64_MAX: no bound";

  // A corrupt chunk stops the walk: what follows it is never decompressed, so it does not count.
  craft::Bytes bad = f;
  bad[s.zstd_offsets[2] + 20] ^= 0x01;
  const std::string pb = write_temp("small_bad.fpst", bad);
  ASSERT_TRUE(read_trace(pb, &t, &e, below)) << e.message;
  EXPECT_TRUE(t.truncated);
  EXPECT_EQ(t.observations.size(), 80u);
  EXPECT_NE(t.truncation_reason.find("checksum mismatch"), std::string::npos);
  EXPECT_NE(TraceFile::open(pb, &e, below), nullptr) << e.message;

  // Chunks the walk skips (unknown flag bits) or refuses (R over 64 MiB) do not count either.
  Small u = small_zstd_trace();
  craft::Bytes declared_huge = {0xFF, 0xFF, 0xFF, 0x03, 0x28, 0xB5, 0x2F, 0xFD};
  u.f.raw_chunk(1, 0x03, declared_huge);  // zstd bit + an unknown bit: skipped whole
  u.f.raw_chunk(1, 0x01, {0x01, 0x00, 0x00, 0x04, 0, 0, 0, 0});  // R = 64 MiB + 1: walk stops
  const std::string pu = write_temp("small_unknown.fpst", u.f.bytes());
  ASSERT_TRUE(read_trace(pu, &t, &e, at)) << e.message;
  EXPECT_EQ(t.observations.size(), 120u);
  EXPECT_EQ(t.unknown_chunks, 1u);
  EXPECT_NE(t.truncation_reason.find("over the 64 MiB limit"), std::string::npos)
      << t.truncation_reason;
}

TEST(ExpansionLimit, RaisedByTheEnvironmentOrTheOptionAndABadValueIsAnError) {
  Small s = small_zstd_trace();
  s.f.footer();
  const uint64_t size = s.f.bytes().size();
  const uint64_t need = (declared_raw(s.f.bytes()) + size - 1) / size;
  ASSERT_GE(need, 3u);  // a trace of ratio 2-3, like real ones
  const std::string p = write_temp("small_env.fpst", s.f.bytes());
  ReadOptions opt{1, 0, 0};  // max_expansion 0: the environment, else the default; no floor
  Trace t;
  ReadError e;
  ::unsetenv("FPSCOPE_MAX_EXPANSION");
  EXPECT_TRUE(read_trace(p, &t, &e, opt)) << e.message;  // the default, 100
  ::setenv("FPSCOPE_MAX_EXPANSION", "1", 1);
  ASSERT_FALSE(read_trace(p, &t, &e, opt));
  EXPECT_EQ(e.kind, ReadErrorKind::ExpansionLimit);
  EXPECT_NE(e.message.find("ratio from FPSCOPE_MAX_EXPANSION"), std::string::npos) << e.message;
  const size_t at = e.message.find("raise the limit: FPSCOPE_MAX_EXPANSION=");
  ASSERT_NE(at, std::string::npos) << e.message;
  EXPECT_EQ(std::stoull(e.message.substr(at + 39)), need) << e.message;
  EXPECT_EQ(TraceFile::open(p, &e, opt), nullptr);

  // Following the message's advice reads it, with either reader; one less is not enough.
  ::setenv("FPSCOPE_MAX_EXPANSION", std::to_string(need).c_str(), 1);
  EXPECT_TRUE(read_trace(p, &t, &e, opt)) << e.message;
  EXPECT_EQ(t.observations.size(), 120u);
  EXPECT_NE(TraceFile::open(p, &e, opt), nullptr) << e.message;
  ::setenv("FPSCOPE_MAX_EXPANSION", std::to_string(need - 1).c_str(), 1);
  EXPECT_FALSE(read_trace(p, &t, &e, opt));
  // The option wins over the environment.
  opt.max_expansion = need;
  EXPECT_TRUE(read_trace(p, &t, &e, opt)) << e.message;
  opt.max_expansion = 0;
  for (const char* v : {"abc", "0", "-5", "12x", "99999999999999999999999"}) {
    ::setenv("FPSCOPE_MAX_EXPANSION", v, 1);
    EXPECT_FALSE(read_trace(p, &t, &e, opt)) << v;
    EXPECT_EQ(e.kind, ReadErrorKind::ExpansionLimit) << v;
    EXPECT_EQ(e.message, p + ": FPSCOPE_MAX_EXPANSION='" + v +
                             "' is not a positive integer (decompressed bytes allowed per file "
                             "byte; default 100)");
    EXPECT_EQ(TraceFile::open(p, &e), nullptr) << v;
  }
  ::unsetenv("FPSCOPE_MAX_EXPANSION");
}

// The most compressible legitimate trace we know: one frozen tensor (the same statistics and
// histogram at every step, only step, seq and time moving), written by the real writer with zstd.
TEST(ExpansionLimit, LegitimateHighRatioTraceReadsOnTheRatioAlone) {
  const std::string p = temp_path("frozen.fpst");
  WriterOptions wo;
  wo.zstd = true;
  wo.flush_ms = 1000000;
  std::string err;
  auto w = TraceWriter::open(p, "{}", wo, &err);
  ASSERT_TRUE(w) << err;
  w->define_tensor(make_tensor(0));
  const Observation base = make_obs(0, 3, 35);
  constexpr uint64_t kObs = 60000;
  for (uint64_t i = 0; i < kObs; ++i) {
    Observation o = base;
    o.step = i;
    o.seq = i;
    o.time_ns = i * 1000 + 17 * (i % 7);
    w->observe(o);
  }
  ASSERT_TRUE(w->close());
  const craft::Bytes f = read_file(p);
  const double ratio = static_cast<double>(declared_raw(f)) / static_cast<double>(f.size());
  EXPECT_GT(ratio, 20.0) << "not a high-ratio trace";
  EXPECT_LT(ratio, static_cast<double>(kDefaultMaxExpansion) / 2);
  const ReadOptions no_floor{1, 0, 0};  // the ratio alone decides
  Trace t;
  ReadError e;
  ASSERT_TRUE(read_trace(p, &t, &e, no_floor)) << e.message;
  EXPECT_TRUE(t.clean_close) << t.truncation_reason;
  EXPECT_EQ(t.observations.size(), kObs);
  auto file = TraceFile::open(p, &e, no_floor);
  ASSERT_TRUE(file) << e.message;
  EXPECT_TRUE(file->footer_index_used()) << file->footer_note();
  // ... and a ratio just under its own is refused (the bound is live for it).
  const ReadOptions tight{1, static_cast<uint64_t>(ratio) - 1, 0};
  EXPECT_FALSE(read_trace(p, &t, &e, tight));
  EXPECT_EQ(e.kind, ReadErrorKind::ExpansionLimit);
}

// FORMAT.md 4.4 states at most 32 bytes of reader memory per decompressed byte (tables at their
// final size ~10x for the worst record kind, vector growth up to 3x of that). Checked for the two
// worst record kinds per encoded byte: minimal observations (42 bytes -> 280) and empty events
// (6 bytes -> 56), a bomb at exactly the limit.
TEST(ExpansionLimit, MemoryPerDecompressedByteStaysWithinTheDocumentedBound) {
  constexpr uint64_t kRaw = 8u << 20;
  for (const craft::Rec& r : {craft::rec(minimal_obs()), craft::event_rec(0, "")}) {
    SCOPED_TRACE(r.tag == 2 ? "observations" : "events");
    craft::File f;
    f.chunk({craft::rec(craft::Tensor{})});
    const uint64_t n = kRaw / (r.body.size() + 2);
    const craft::Bytes raw = craft::repeated_payload(r, n);
    const craft::Bytes stored = craft::zstd_payload(raw);
    craft::ChunkSum sum;
    sum.add(r, n);
    f.stored_chunk(stored, true, sum);
    f.footer();
    const std::string p = write_temp("within.fpst", f.bytes());
    const ReadOptions opt{1, 1, raw.size()};
    uint64_t records = 0;
    const long long grew = peak_rss_growth([&] {
      Trace t;
      ReadError e;
      if (!read_trace(p, &t, &e, opt) || !t.clean_close) return false;
      records = t.observations.size() + t.events.size();
      return records == n;
    });
    ASSERT_GE(grew, 0) << "the read failed";
    const double per_byte = static_cast<double>(grew) / static_cast<double>(raw.size());
    std::printf("  %s: %llu records, peak growth %.1f MiB = %.1f bytes per decompressed byte\n",
                r.tag == 2 ? "observations" : "events", static_cast<unsigned long long>(n),
                static_cast<double>(grew) / (1 << 20), per_byte);
    EXPECT_LE(per_byte, 32.0);
    Trace t;
    ReadError e;
    EXPECT_FALSE(read_trace(p, &t, &e, ReadOptions{1, 1, raw.size() - 1}));
  }
}

// ---- overflow safety at 2^64-1 ----------------------------------------------------------------

TEST(Overflow, HistogramDeltaNearTwoToThe64IsMalformedNotWrappedBack) {
  craft::File f;
  f.chunk({craft::rec(craft::Tensor{})});
  craft::Obs good = minimal_obs();
  good.hist = {{5, 1}, {6, 2}};
  f.chunk({craft::rec(good)});
  craft::Obs bad = minimal_obs();
  bad.step = 1;
  bad.hist = {{5, 1}, {4, 1}};  // written as deltas 5, 2^64-1: 5 + (2^64-1) wraps to bin 4
  const uint64_t at = f.chunk({craft::rec(bad)});
  f.footer();
  const std::string p = write_temp("hist_wrap.fpst", f.bytes());
  for (unsigned threads : {1u, 2u}) {
    Trace t;
    ReadError e;
    ASSERT_TRUE(read_trace(p, &t, &e, ReadOptions{threads})) << e.message;
    EXPECT_EQ(t.observations.size(), 1u) << threads;
    EXPECT_TRUE(t.truncated);
    EXPECT_EQ(t.truncation_reason,
              "chunk at offset " + std::to_string(at) + ": malformed observation histogram");
  }
  auto file = TraceFile::open(p, nullptr);
  ASSERT_TRUE(file);
  ChunkRecords c;
  std::string why;
  EXPECT_FALSE(file->read_chunk(2, &c, &why));
  EXPECT_NE(why.find("malformed observation histogram"), std::string::npos) << why;
}

// A chunk whose only step is 2^64-1 is indexed [2^64-1, 2^64-1], not as "no step" [0, 0], by the
// writer's footer, the footer-less scan and the crafted footer alike, and step ranges reach it.
TEST(Overflow, StepTwoToThe64Minus1IsAStepLikeAnyOther) {
  const std::string pw = temp_path("step_max.fpst");
  {
    WriterOptions wo;
    wo.flush_ms = 1000000;
    std::string err;
    auto w = TraceWriter::open(pw, "{}", wo, &err);
    ASSERT_TRUE(w) << err;
    w->define_tensor(make_tensor(0));
    w->flush();
    Observation o = make_obs(0, 1, 3);
    o.step = kMax;
    w->observe(o);
    w->flush();
    o.step = 0;
    w->observe(o);
    o.step = kMax;
    w->event(EventRecord{kMax, kMax, EventLevel::Error, "last"});
    w->observe(o);
    ASSERT_TRUE(w->close());
  }
  craft::File cf;
  cf.chunk({craft::rec(craft::Tensor{})});
  craft::Obs o = minimal_obs();
  o.step = kMax;
  cf.chunk({craft::rec(o)});
  o.step = 0;
  craft::Obs o2 = o;
  o2.step = kMax;
  cf.chunk({craft::rec(o), craft::event_rec(kMax, "last"), craft::rec(o2)});
  craft::File no_footer = cf;
  cf.footer();
  const std::string pc = write_temp("step_max_crafted.fpst", cf.bytes());
  const std::string pn = write_temp("step_max_nofooter.fpst", no_footer.bytes());

  for (const std::string& p : {pw, pc, pn}) {
    SCOPED_TRACE(p);
    const bool closed = p != pn;
    Trace t;
    ReadError e;
    ASSERT_TRUE(read_trace(p, &t, &e)) << e.message;
    EXPECT_EQ(t.clean_close, closed) << t.truncation_reason;
    ASSERT_EQ(t.observations.size(), 3u);
    auto f = TraceFile::open(p, &e);
    ASSERT_TRUE(f) << e.message;
    EXPECT_EQ(f->footer_index_used(), closed) << f->footer_note();
    ASSERT_EQ(f->chunks().size(), 3u);
    EXPECT_EQ(f->chunks()[0].first_step, 0u);  // tensors only: [0, 0]
    EXPECT_EQ(f->chunks()[0].last_step, 0u);
    EXPECT_EQ(f->chunks()[1].first_step, kMax);
    EXPECT_EQ(f->chunks()[1].last_step, kMax);
    EXPECT_EQ(f->chunks()[2].first_step, 0u);
    EXPECT_EQ(f->chunks()[2].last_step, kMax);
    EXPECT_EQ(f->chunks_for_steps(kMax, kMax), (std::vector<uint32_t>{1, 2}));
    EXPECT_EQ(f->chunks_for_steps(1, kMax - 1), (std::vector<uint32_t>{2}));
    Trace part;
    std::string why;
    ASSERT_TRUE(f->read_steps(kMax, kMax, &part, &why)) << why;
    EXPECT_EQ(part.observations.size(), 2u);
    EXPECT_EQ(part.events.size(), 1u);
    EXPECT_EQ(f->verify(), closed);
    EXPECT_EQ(f->clean_close(), closed) << f->truncation_reason();
    const TraceModel m(t);
    EXPECT_EQ(m.first_step(), 0u);
    EXPECT_EQ(m.last_step(), kMax);
    EXPECT_EQ(m.series_range(0, kMax, kMax).size(), 2u);
    EXPECT_EQ(m.step_observations(kMax).size(), 2u);
  }
}

// Footer totals whose sum wraps around 2^64 to the index's true record count are refused.
TEST(Overflow, FooterTotalsThatWrapAroundAreNotTrusted) {
  const std::vector<uint8_t> plain = write_all_kinds(temp_path("wrap_src.fpst"), 4, 3);
  const FixtureLayout lay = walk_layout(plain);
  TestFooter footer = parse_test_footer(plain, lay.chunks.back());
  ASSERT_GE(footer.totals.size(), 2u);
  // (2^64 - 1) + (t1 + t2 + 1) wraps to t1 + t2: the true sum.
  footer.totals[1] += footer.totals[0] + 1;
  footer.totals[0] = kMax;
  craft::Bytes f(plain.begin(), plain.begin() + static_cast<long>(lay.chunks.back().begin));
  append_chunk(f, 2, 0, footer_payload(footer, f.size()));
  const std::string p = write_temp("wrap.fpst", f);
  ReadError e;
  auto file = TraceFile::open(p, &e);
  ASSERT_TRUE(file) << e.message;
  EXPECT_FALSE(file->footer_index_used());
  EXPECT_EQ(file->footer_note(), "footer totals do not add up to its index's record counts");
  EXPECT_FALSE(file->verify());
  Trace t;
  ASSERT_TRUE(read_trace(p, &t, &e)) << e.message;
  EXPECT_FALSE(t.clean_close);
  EXPECT_EQ(t.truncation_reason, "footer totals do not match the records read");
  EXPECT_EQ(t.tensors.size(), 4u);  // every record kept
}

// Counts of 2^64-1 survive the file exactly and saturate in the model's sums (never wrap to a
// total smaller than a part).
TEST(Overflow, CountsOfTwoToThe64Minus1AreExactAndSaturateInTheModel) {
  craft::File f;
  f.chunk({craft::rec(craft::Tensor{})});
  craft::Obs o;
  o.count = o.nan = o.pos_inf = o.neg_inf = o.zero = kMax;
  for (craft::Target& tg : o.targets) tg.overflow = tg.underflow = tg.subnormal = kMax;
  for (uint64_t b = 0; b < 1024; ++b) o.hist.emplace_back(b, kMax);
  std::vector<craft::Rec> recs;
  for (uint64_t i = 0; i < 3; ++i) {
    o.step = i;
    o.seq = kMax - i;
    recs.push_back(craft::rec(o));
  }
  f.chunk(recs, true);
  f.footer();
  const std::string p = write_temp("counts_max.fpst", f.bytes());
  Trace t;
  ReadError e;
  ASSERT_TRUE(read_trace(p, &t, &e)) << e.message;
  EXPECT_TRUE(t.clean_close) << t.truncation_reason;
  ASSERT_EQ(t.observations.size(), 3u);
  ASSERT_EQ(t.hist_counts.size(), 3u * 1024);
  for (uint64_t c : t.hist_counts) ASSERT_EQ(c, kMax);
  EXPECT_EQ(t.observations[2].seq, kMax - 2);
  const TraceModel m(t);
  const StatsScalars& tot = m.totals(0);
  EXPECT_EQ(tot.count, kMax);
  EXPECT_EQ(tot.nan, kMax);
  EXPECT_EQ(tot.zero, kMax);
  EXPECT_EQ(tot.fmt[3].subnormal, kMax);
  const DenseHist h = m.histogram_range(0, 0, kMax);
  EXPECT_EQ(h[0], kMax);
  EXPECT_EQ(h[1023], kMax);
  EXPECT_EQ(m.histogram(1)[512], kMax);
  EXPECT_EQ(t.full_stats(t.observations[0]).hist[777], kMax);
}

}  // namespace
}  // namespace fpscope::trace
