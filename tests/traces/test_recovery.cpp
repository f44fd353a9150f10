// Crash safety and hostile input: truncation at every byte offset, bit flips, crafted files
// (hand-encoded from FORMAT.md), version rules, unknown chunk/record kinds, hostile lengths.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <random>

#include "fpscope/trace_io.h"
#include "trace_test_util.h"

namespace fpscope::trace {
namespace {

using namespace test;

struct ChunkSpan {
  size_t begin, end;
  uint8_t type;
  uint64_t observations;  // counted by walking the record framing (plain chunks only)
};

struct Layout {
  size_t header_end = 0;
  std::vector<ChunkSpan> chunks;
};

uint32_t le32(const std::vector<uint8_t>& b, size_t at) {
  return uint32_t{b[at]} | uint32_t{b[at + 1]} << 8 | uint32_t{b[at + 2]} << 16 |
         uint32_t{b[at + 3]} << 24;
}

uint64_t get_varint(const std::vector<uint8_t>& b, size_t* at) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const uint8_t c = b[(*at)++];
    v |= uint64_t{c & 0x7Fu} << shift;
    if (!(c & 0x80)) return v;
  }
}

// Walks the file by FORMAT.md's framing, independently of the reader.
Layout layout_of(const std::vector<uint8_t>& f) {
  Layout l;
  l.header_end = 20 + le32(f, 16) + 4;
  size_t pos = l.header_end;
  while (pos + 12 <= f.size()) {
    const uint32_t len = le32(f, pos + 4);
    ChunkSpan c{pos, pos + 12 + len, f[pos], 0};
    if (c.type == 1 && f[pos + 1] == 0) {
      size_t r = pos + 12;
      while (r < c.end) {
        const uint8_t tag = f[r++];
        const uint64_t n = get_varint(f, &r);
        c.observations += tag == 2;
        r += n;
      }
    }
    l.chunks.push_back(c);
    pos = c.end;
  }
  return l;
}

// A real multi-chunk trace: 1 tensor definition chunk-mixed with observations, several chunks.
std::vector<uint8_t> real_trace(const std::string& path, bool zstd, uint64_t n_obs = 90) {
  WriterOptions opt;
  opt.flush_bytes = 4096;
  opt.zstd = zstd;
  std::string err;
  auto w = TraceWriter::open(path, R"({"sample":true})", opt, &err);
  EXPECT_TRUE(w) << err;
  for (uint32_t k = 0; k < 3; ++k) w->define_tensor(make_tensor(k));
  for (uint64_t i = 0; i < n_obs; ++i) {
    w->observe(make_obs(static_cast<uint32_t>(i % 3), i, 12));
    if (i % 30 == 0) w->step(StepMark{i / 16, StepSource::Api, i, i});
  }
  EXPECT_TRUE(w->close()) << w->error();
  return read_file(path);
}

TEST(Truncation, EveryByteOffsetOfAMultiChunkTrace) {
  const std::string path = temp_path("trunc.fpst");
  const std::vector<uint8_t> full = real_trace(path, false);
  const Layout lay = layout_of(full);
  ASSERT_GE(lay.chunks.size(), 4u) << "want several RECORDS chunks and a footer";
  ASSERT_EQ(lay.chunks.back().end, full.size());
  ASSERT_EQ(lay.chunks.back().type, 2);  // footer last

  Trace whole;
  ReadError err;
  ASSERT_TRUE(read_trace(path, &whole, &err)) << err.message;
  ASSERT_TRUE(whole.clean_close);
  ASSERT_EQ(whole.observations.size(), 90u);

  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  for (size_t cut = full.size() + 1; cut-- > 0;) {
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(cut)), 0);
    Trace t;
    ReadError e;
    const bool ok = read_trace(path, &t, &e);
    if (cut < lay.header_end) {
      ASSERT_FALSE(ok) << cut;
      EXPECT_TRUE(e.kind == ReadErrorKind::CorruptHeader || e.kind == ReadErrorKind::NotATrace)
          << cut;
      EXPECT_NE(e.message.find(path), std::string::npos);
      continue;
    }
    ASSERT_TRUE(ok) << cut << ": " << e.message;
    // Expected: every chunk that ends at or before the cut, nothing else.
    uint64_t want_obs = 0;
    size_t good_end = lay.header_end;
    for (const ChunkSpan& c : lay.chunks) {
      if (c.end > cut) break;
      want_obs += c.observations;
      good_end = c.end;
    }
    ASSERT_EQ(t.observations.size(), want_obs) << "cut at " << cut;
    ASSERT_EQ(t.dropped_bytes, cut - good_end) << "cut at " << cut;
    ASSERT_EQ(t.file_bytes, cut);
    ASSERT_EQ(t.clean_close, cut == full.size()) << cut;
    ASSERT_EQ(t.truncated, cut != full.size()) << cut;
    ASSERT_EQ(t.truncation_reason.empty(), cut == full.size()) << cut;
    ASSERT_EQ(t.tensors.size(), good_end > lay.header_end ? 3u : 0u) << cut;  // all in chunk 1
    for (size_t i = 0; i < t.observations.size(); ++i) {
      ASSERT_EQ(t.observations[i].seq, i);
      ASSERT_EQ(t.observations[i].stats.count, whole.observations[i].stats.count);
      ASSERT_EQ(t.observations[i].hist_len, 12u);
    }
  }
  ::close(fd);
}

TEST(Truncation, EveryByteOffsetOfAZstdTrace) {
  const std::string path = temp_path("trunc_z.fpst");
  const std::vector<uint8_t> full = real_trace(path, true, 200);
  const Layout lay = layout_of(full);
  ASSERT_GE(lay.chunks.size(), 3u);
  // Observations per chunk from the chunk-boundary prefixes.
  std::vector<uint64_t> at_boundary;
  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  for (size_t cut = full.size() + 1; cut-- > lay.header_end;) {
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(cut)), 0);
    Trace t;
    ReadError e;
    ASSERT_TRUE(read_trace(path, &t, &e)) << cut << ": " << e.message;
    size_t good_end = lay.header_end;
    size_t complete = 0;
    for (const ChunkSpan& c : lay.chunks) {
      if (c.end > cut) break;
      good_end = c.end;
      ++complete;
    }
    ASSERT_EQ(t.dropped_bytes, cut - good_end) << cut;
    if (at_boundary.size() <= complete) at_boundary.resize(complete + 1, UINT64_MAX);
    if (at_boundary[complete] == UINT64_MAX) at_boundary[complete] = t.observations.size();
    ASSERT_EQ(t.observations.size(), at_boundary[complete]) << cut;
    for (size_t i = 0; i < t.observations.size(); ++i) ASSERT_EQ(t.observations[i].seq, i);
  }
  ::close(fd);
  EXPECT_EQ(at_boundary[0], 0u);
  EXPECT_EQ(at_boundary.back(), 200u);
  for (size_t k = 1; k + 1 < at_boundary.size(); ++k) EXPECT_LT(at_boundary[k - 1], at_boundary[k]);
}

TEST(BitFlips, NeverCrashAndKeepEverythingBeforeTheFlippedChunk) {
  const std::string src = temp_path("flip_src.fpst");
  const std::vector<uint8_t> full = real_trace(src, false);
  const Layout lay = layout_of(full);
  const std::string path = temp_path("flip.fpst");
  size_t last_byte = 0;
  std::mt19937_64 rng(12345);
  write_file(path, full);
  FlipFile file(path);
  for (int iter = 0; iter < 3000; ++iter) {
    if (iter > 0) file.set(last_byte, full[last_byte]);  // undo the previous flip
    const size_t byte = static_cast<size_t>(rng() % full.size());
    file.set(byte, full[byte] ^ static_cast<uint8_t>(1u << (rng() % 8)));
    last_byte = byte;
    Trace t;
    ReadError e;
    const bool ok = read_trace(path, &t, &e);
    if (byte < lay.header_end) {
      EXPECT_FALSE(ok) << "flip in the header at " << byte;
      continue;
    }
    ASSERT_TRUE(ok) << byte << ": " << e.message;
    uint64_t before = 0;
    for (const ChunkSpan& c : lay.chunks) {
      if (c.end > byte) break;
      before += c.observations;
    }
    // CRC32C detects every single-bit error: exactly the chunks before the flip survive.
    ASSERT_EQ(t.observations.size(), before) << "flip at " << byte;
    EXPECT_TRUE(t.truncated);
    EXPECT_FALSE(t.clean_close);
    EXPECT_FALSE(t.truncation_reason.empty());
    for (size_t i = 0; i < t.observations.size(); ++i) ASSERT_EQ(t.observations[i].seq, i);
  }
}

// ---- crafted files (encoded by hand from FORMAT.md) -------------------------------------

std::vector<uint8_t> record(uint8_t tag, const std::vector<uint8_t>& body) {
  std::vector<uint8_t> r = {tag};
  put_varint(r, body.size());
  r.insert(r.end(), body.begin(), body.end());
  return r;
}

std::vector<uint8_t> tensor_body(uint64_t index, const std::string& id) {
  std::vector<uint8_t> b;
  put_varint(b, index);
  put_varint(b, id.size());
  b.insert(b.end(), id.begin(), id.end());
  put_varint(b, 0);  // name
  put_varint(b, 5);
  for (char c : std::string("sgemm")) b.push_back(static_cast<uint8_t>(c));
  b.push_back(3);  // role D
  b.push_back(2);  // dtype fp16
  put_varint(b, 64);
  put_varint(b, 32);
  put_varint(b, 64);
  put_varint(b, 1);  // device -1 zigzag
  b.push_back('N');
  b.push_back('T');
  for (uint64_t v : {128u, 64u, 2u, 128u, 64u, 128u}) put_varint(b, v);  // m n k ... zigzag
  put_le(b, std::bit_cast<uint64_t>(1.0), 8);
  put_le(b, std::bit_cast<uint64_t>(0.0), 8);
  put_varint(b, 2);  // batch 1 zigzag
  return b;
}

// An observation body: tensor 0, step 4, seq 9; `ntargets` targets; bins {100: 5, 103: 7}.
std::vector<uint8_t> obs_body(uint64_t ntargets, bool extra_tail) {
  std::vector<uint8_t> b;
  for (uint64_t v : {0u, 4u, 9u, 0u, 1234u, 20u, 1u, 0u, 2u, 5u}) put_varint(b, v);
  put_le(b, std::bit_cast<uint32_t>(8.0f), 4);
  put_le(b, std::bit_cast<uint32_t>(-8.0f), 4);
  put_le(b, std::bit_cast<uint32_t>(6.0f), 4);
  put_le(b, std::bit_cast<uint64_t>(1.5), 8);
  put_le(b, std::bit_cast<uint64_t>(99.0), 8);
  put_varint(b, ntargets);
  for (uint64_t k = 0; k < ntargets; ++k) {
    b.push_back(k == 2 ? 3 : 0);  // target 2 has sum_err2 and scale
    put_varint(b, k);             // overflow
    put_varint(b, 10 + k);        // underflow
    put_varint(b, 300);           // subnormal (two-byte varint)
    if (k == 2) {
      put_le(b, std::bit_cast<uint64_t>(0.25), 8);
      put_le(b, std::bit_cast<uint32_t>(56.0f), 4);
    }
  }
  put_varint(b, 2);
  put_varint(b, 100);
  put_varint(b, 5);
  put_varint(b, 3);
  put_varint(b, 7);
  if (extra_tail) b.insert(b.end(), {0xAA, 0xBB, 0xCC});  // a newer minor's appended fields
  return b;
}

std::string write_temp(const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string p = temp_path(name);
  write_file(p, bytes);
  return p;
}

TEST(Crafted, HandEncodedRecordsDecodeAsSpecified) {
  std::vector<uint8_t> f = make_header(1, 0, "{\"a\":1}");
  std::vector<uint8_t> payload = record(1, tensor_body(0, "gemm#0.D"));
  const auto o = record(2, obs_body(4, false));
  payload.insert(payload.end(), o.begin(), o.end());
  append_chunk(f, 1, 0, payload);
  const std::string p = write_temp("crafted.fpst", f);
  Trace t;
  ReadError e;
  ASSERT_TRUE(read_trace(p, &t, &e)) << e.message;
  EXPECT_EQ(t.metadata_json, "{\"a\":1}");
  ASSERT_EQ(t.tensors.size(), 1u);
  EXPECT_EQ(t.tensors[0].id, "gemm#0.D");
  EXPECT_EQ(t.tensors[0].op, "sgemm");
  EXPECT_EQ(t.tensors[0].role, Role::D);
  EXPECT_EQ(t.tensors[0].dtype, Format::FP16);
  EXPECT_EQ(t.tensors[0].device, -1);
  EXPECT_EQ(t.tensors[0].gemm.transb, 'T');
  EXPECT_EQ(t.tensors[0].gemm.m, 64);  // zigzag 128 -> 64
  EXPECT_EQ(t.tensors[0].gemm.k, 1);
  EXPECT_EQ(t.tensors[0].gemm.batch, 1);
  ASSERT_EQ(t.observations.size(), 1u);
  const ObservationRecord& r = t.observations[0];
  EXPECT_EQ(r.step, 4u);
  EXPECT_EQ(r.seq, 9u);
  EXPECT_EQ(r.time_ns, 1234u);
  EXPECT_EQ(r.stats.count, 20u);
  EXPECT_EQ(r.stats.nan, 1u);
  EXPECT_EQ(r.stats.neg_inf, 2u);
  EXPECT_EQ(r.stats.zero, 5u);
  EXPECT_EQ(r.stats.amax, 8.0f);
  EXPECT_EQ(r.stats.min, -8.0f);
  EXPECT_EQ(r.stats.sum_sq, 99.0);
  EXPECT_EQ(r.stats.fmt[1].overflow, 1u);
  EXPECT_EQ(r.stats.fmt[3].underflow, 13u);
  EXPECT_EQ(r.stats.fmt[0].subnormal, 300u);
  EXPECT_EQ(r.stats.fmt[2].sum_err2, 0.25);
  EXPECT_EQ(r.stats.fmt[2].scale, 56.0f);
  EXPECT_EQ(r.stats.fmt[0].scale, 1.0f);
  EXPECT_EQ(r.stats.fmt[0].sum_err2, 0.0);
  const TensorStats s = t.full_stats(r);
  EXPECT_EQ(s.hist[100], 5u);
  EXPECT_EQ(s.hist[103], 7u);
  EXPECT_EQ(r.hist_len, 2u);
  EXPECT_TRUE(t.truncated);  // no footer
  EXPECT_FALSE(t.clean_close);
  EXPECT_EQ(t.dropped_bytes, 0u);
  EXPECT_NE(t.truncation_reason.find("no footer"), std::string::npos);
}

TEST(Crafted, UnknownChunkTypesRecordKindsAndAppendedFieldsAreSkipped) {
  std::vector<uint8_t> f = make_header(1, 9, "");  // a newer minor of the same major
  append_chunk(f, 1, 0, record(1, tensor_body(0, "t0")));
  append_chunk(f, 0x40, 0, {1, 2, 3, 4, 5});               // unknown chunk type
  append_chunk(f, 1, 0x80, {9, 9, 9});                     // unknown chunk flag
  std::vector<uint8_t> payload = record(0x55, {1, 2, 3});  // unknown record kind
  for (const auto& r : {record(2, obs_body(6, true)), record(2, obs_body(2, false))})
    payload.insert(payload.end(), r.begin(), r.end());
  append_chunk(f, 1, 0, payload);
  const std::string p = write_temp("unknown.fpst", f);
  Trace t;
  ReadError e;
  ASSERT_TRUE(read_trace(p, &t, &e)) << e.message;
  EXPECT_EQ(t.version_minor, 9);
  EXPECT_EQ(t.unknown_chunks, 2u);
  EXPECT_EQ(t.unknown_records, 1u);
  ASSERT_EQ(t.observations.size(), 2u);
  // 6 targets: the first four kept, the tail ignored.
  EXPECT_EQ(t.observations[0].stats.fmt[3].underflow, 13u);
  EXPECT_EQ(t.observations[0].stats.fmt[2].scale, 56.0f);
  EXPECT_EQ(t.full_stats(t.observations[0]).hist[103], 7u);
  // 2 targets: the others keep their defaults.
  EXPECT_EQ(t.observations[1].stats.fmt[1].underflow, 11u);
  EXPECT_EQ(t.observations[1].stats.fmt[2].underflow, 0u);
  EXPECT_EQ(t.observations[1].stats.fmt[2].scale, 1.0f);
  EXPECT_EQ(t.dropped_bytes, 0u);
}

TEST(Crafted, OtherMajorVersionIsRefusedNamingTheFile) {
  for (uint16_t major : {uint16_t{0}, uint16_t{2}, uint16_t{65535}}) {
    std::vector<uint8_t> f = make_header(major, 0, "{}");
    append_chunk(f, 1, 0, record(1, tensor_body(0, "t0")));
    const std::string p = write_temp("major.fpst", f);
    Trace t;
    ReadError e;
    EXPECT_FALSE(read_trace(p, &t, &e));
    EXPECT_EQ(e.kind, ReadErrorKind::UnsupportedVersion);
    EXPECT_NE(e.message.find(p + ": "), std::string::npos) << e.message;
    EXPECT_NE(e.message.find(std::to_string(major) + ".0"), std::string::npos) << e.message;
    EXPECT_EQ(e.message.find('\n'), std::string::npos);
  }
}

TEST(Crafted, HeaderErrors) {
  Trace t;
  ReadError e;
  EXPECT_FALSE(read_trace(temp_path("does-not-exist.fpst"), &t, &e));
  EXPECT_EQ(e.kind, ReadErrorKind::NotFound);
  EXPECT_FALSE(read_trace(write_temp("text.fpst", {'h', 'e', 'l', 'l', 'o', '\n'}), &t, &e));
  EXPECT_EQ(e.kind, ReadErrorKind::NotATrace);
  EXPECT_NE(e.message.find("not an fpscope trace"), std::string::npos);
  EXPECT_FALSE(read_trace(write_temp("empty.fpst", {}), &t, &e));
  EXPECT_EQ(e.kind, ReadErrorKind::NotATrace);
  std::vector<uint8_t> h = make_header(1, 0, "{}");
  h[h.size() - 1] ^= 1;  // header CRC
  EXPECT_FALSE(read_trace(write_temp("hcrc.fpst", h), &t, &e));
  EXPECT_EQ(e.kind, ReadErrorKind::CorruptHeader);
  std::vector<uint8_t> big = make_header(1, 0, "{}");
  big[16] = big[17] = big[18] = big[19] = 0xFF;  // metadata length 4 GiB
  EXPECT_FALSE(read_trace(write_temp("hlen.fpst", big), &t, &e));
  EXPECT_EQ(e.kind, ReadErrorKind::CorruptHeader);
  EXPECT_FALSE(read_trace("/tmp", &t, &e));  // a directory
  EXPECT_EQ(e.kind, ReadErrorKind::Io);
}

// Hostile lengths: each file holds one good chunk and then a hostile one.
std::vector<std::vector<uint8_t>> hostile_files() {
  std::vector<std::vector<uint8_t>> out;
  const std::vector<uint8_t> good_rec = record(1, tensor_body(0, "t0"));
  auto with = [&](auto&& add) {
    std::vector<uint8_t> f = make_header(1, 0, "");
    append_chunk(f, 1, 0, good_rec);
    add(f);
    out.push_back(f);
  };
  // Chunk length far beyond the file.
  with([](auto& f) { f.insert(f.end(), {1, 0, 0, 0, 0xF0, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0}); });
  // zstd chunk claiming 4 GiB and 60 MiB of decompressed data.
  for (uint32_t raw : {0xFFFFFFFFu, 60u << 20}) {
    with([raw](auto& f) {
      std::vector<uint8_t> p;
      put_le(p, raw, 4);
      p.insert(p.end(), {0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0});
      append_chunk(f, 1, 1, p);
    });
  }
  // Record length varint of 2^63.
  with([](auto& f) {
    std::vector<uint8_t> p = {2};
    put_varint(p, uint64_t{1} << 63);
    append_chunk(f, 1, 0, p);
  });
  // Observation claiming 2^40 histogram bins; weight update claiming 2^40 ratio bins.
  with([](auto& f) {
    std::vector<uint8_t> b = obs_body(4, false);
    b.resize(b.size() - 5);  // drop the histogram
    put_varint(b, uint64_t{1} << 40);
    append_chunk(f, 1, 0, record(2, b));
  });
  with([](auto& f) {
    std::vector<uint8_t> b;
    for (int i = 0; i < 2; ++i) put_varint(b, 0);
    b.push_back(0);
    put_varint(b, 1);
    put_varint(b, 1);
    for (int i = 0; i < 2; ++i) {
      put_varint(b, 0);
      put_le(b, 0, 8);
      put_le(b, 0, 8);
    }
    put_varint(b, uint64_t{1} << 40);
    append_chunk(f, 1, 0, record(5, b));
  });
  // String length 2^50 inside a tensor definition.
  with([](auto& f) {
    std::vector<uint8_t> b;
    put_varint(b, 1);
    put_varint(b, uint64_t{1} << 50);
    append_chunk(f, 1, 0, record(1, b));
  });
  // A footer whose totals claim 2^60 observations (valid CRC, at the end).
  with([](auto& f) {
    std::vector<uint8_t> p;
    put_varint(p, 6);
    for (int k = 0; k < 6; ++k) put_varint(p, uint64_t{1} << 60);
    put_varint(p, uint64_t{1} << 60);
    put_varint(p, 0);
    put_le(p, f.size(), 8);
    p.insert(p.end(), {'F', 'E', 'N', 'D'});
    append_chunk(f, 2, 0, p);
  });
  return out;
}

TEST(Hostile, LengthsNeverAllocateUnboundedMemory) {
  const auto files = hostile_files();
  std::vector<std::string> paths;
  for (size_t i = 0; i < files.size(); ++i)
    paths.push_back(write_temp("hostile" + std::to_string(i) + ".fpst", files[i]));
  // In a child with an address-space limit (not under sanitizers, which reserve terabytes).
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    struct rlimit rl {};
    ::getrlimit(RLIMIT_AS, &rl);
    rl.rlim_cur = 1ull << 30;  // 1 GiB: far below what any hostile length asks for
    ::setrlimit(RLIMIT_AS, &rl);
#endif
    int bad = 0;
    for (size_t i = 0; i < paths.size(); ++i) {
      Trace t;
      ReadError e;
      if (!read_trace(paths[i], &t, &e))
        bad |= 1 << i;  // must read the good part
      else if (t.tensors.size() != 1 || t.clean_close)
        bad |= 1 << i;  // and nothing more
    }
    ::_exit(bad == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died with signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // And in-process, checking the reasons.
  for (const auto& p : paths) {
    Trace t;
    ReadError e;
    ASSERT_TRUE(read_trace(p, &t, &e)) << p << ": " << e.message;
    EXPECT_EQ(t.tensors.size(), 1u) << p;
    EXPECT_TRUE(t.truncated) << p;
    EXPECT_FALSE(t.truncation_reason.empty()) << p;
  }
}

}  // namespace
}  // namespace fpscope::trace
