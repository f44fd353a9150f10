// Test fixtures for the trace readers, built and checked independently of traces/src:
//  - walk_layout(): FORMAT.md's chunk framing walked by hand (zstd payloads decompressed here),
//    counting the records of each kind in each chunk: what a reader must return for any prefix.
//  - all_kinds_fixture(): a trace holding EVERY record kind (tensor, observation, step, loss
//    scale, weight update, event, value sketch), metadata JSON as the probe writes it, several
//    RECORDS chunks of which every other one is zstd-compressed, an unknown chunk type (a later
//    minor's) and a footer rebuilt for the new offsets: the writer's output re-framed byte by byte.
//  - sample_trace_path(): a real probe trace, tests/traces/data/pytorch_cpu_sample.fpst: a copy of
//    samples/pytorch_cpu/sample.fpst (train.py --steps 100 under the CPU probe; 22 RECORDS chunks
//    and a footer, 105 KiB), kept here so that regenerating the sample does not move the test.
#pragma once

#include <zstd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fpscope/trace_io.h"
#include "trace_test_util.h"

namespace fpscope::trace::test {

struct FixtureChunk {
  size_t begin = 0, end = 0;  // [begin, end) of the whole chunk
  uint8_t type = 0, flags = 0;
  uint64_t kinds[9] = {};  // records per tag (RECORDS chunks; 7 LOSS, 8 VALUE_SKETCH)
  uint64_t records = 0;
  uint64_t first_step = UINT64_MAX, last_step = 0;  // step-bearing records
};

struct FixtureLayout {
  size_t header_end = 0;
  std::vector<FixtureChunk> chunks;
};

inline uint32_t le32_at(const std::vector<uint8_t>& b, size_t at) {
  return uint32_t{b[at]} | uint32_t{b[at + 1]} << 8 | uint32_t{b[at + 2]} << 16 |
         uint32_t{b[at + 3]} << 24;
}

inline uint64_t varint_at(const uint8_t* b, size_t* at) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const uint8_t c = b[(*at)++];
    v |= uint64_t{c & 0x7Fu} << shift;
    if (!(c & 0x80)) return v;
  }
}

// The payload of a chunk of a well-formed file, decompressed when flagged.
inline std::vector<uint8_t> chunk_payload(const std::vector<uint8_t>& f, const FixtureChunk& c) {
  std::vector<uint8_t> p(f.begin() + static_cast<long>(c.begin + 12),
                         f.begin() + static_cast<long>(c.end));
  if (!(c.flags & 1)) return p;
  const uint32_t raw = le32_at(p, 0);
  std::vector<uint8_t> out(raw);
  const size_t got = ZSTD_decompress(out.data(), raw, p.data() + 4, p.size() - 4);
  if (ZSTD_isError(got) || got != raw) throw std::runtime_error("fixture: bad zstd chunk");
  return out;
}

// Walks a well-formed file (every chunk complete) by FORMAT.md's framing.
inline FixtureLayout walk_layout(const std::vector<uint8_t>& f) {
  FixtureLayout l;
  l.header_end = 20 + le32_at(f, 16) + 4;
  size_t pos = l.header_end;
  while (pos + 12 <= f.size()) {
    FixtureChunk c;
    c.begin = pos;
    c.end = pos + 12 + le32_at(f, pos + 4);
    c.type = f[pos];
    c.flags = f[pos + 1];
    if (c.end > f.size()) break;
    if (c.type == 1 && (c.flags & ~1) == 0) {
      const std::vector<uint8_t> p = chunk_payload(f, c);
      size_t r = 0;
      while (r < p.size()) {
        const uint8_t tag = p[r++];
        const uint64_t n = varint_at(p.data(), &r);
        ++c.records;
        if (tag < 9) ++c.kinds[tag];
        if (tag >= 2 && tag <= 6) {  // step-bearing: the step is the first field but for tag 2
          size_t q = r;
          if (tag == 2) varint_at(p.data(), &q);  // tensor
          const uint64_t step = varint_at(p.data(), &q);
          c.first_step = std::min(c.first_step, step);
          c.last_step = std::max(c.last_step, step);
        }
        r += n;
      }
    }
    l.chunks.push_back(c);
    pos = c.end;
  }
  return l;
}

// What a reader must return for the prefix [0, cut) of the file `l` describes: the records of
// every chunk that ends at or before the cut (the walk stops at the first that does not).
struct Expected {
  uint64_t kinds[9] = {};
  size_t good_end = 0;  // end of the last complete chunk (header end when none)
  size_t records_chunks = 0;
  size_t unknown_chunks = 0;
};
inline Expected expected_for_cut(const FixtureLayout& l, size_t cut) {
  Expected e;
  e.good_end = l.header_end;
  for (const FixtureChunk& c : l.chunks) {
    if (c.end > cut) break;
    for (int k = 0; k < 9; ++k) e.kinds[k] += c.kinds[k];
    if (c.type == 1 && (c.flags & ~1) == 0) {
      ++e.records_chunks;
    } else if (c.type != 2) {
      ++e.unknown_chunks;
    }
    e.good_end = c.end;
  }
  return e;
}

// The metadata keys the probe writes (probe/src/recorder.cpp), with plausible values.
inline std::string probe_like_metadata() {
  return R"({"command_line":["/usr/bin/python3","train.py","--steps","8"],)"
         R"("config":{"every":1,"flush_bytes":4096,"flush_ms":100,)"
         R"("formats":["bf16","fp16","e4m3","e5m2"],"ops":[],"output":"fixture.fpst",)"
         R"("period_window":4096,"roles":["A","B","C","D"],"stats_threads":1,"steps":"auto",)"
         R"("watch_max_elements":1048576,"zstd":false},"host":"ci","host_blas":true,"pid":4242,)"
         R"("probe":"libfpscope_probe","probe_version":"0.1.0","rank":"0",)"
         R"("start_time_unix_ns":1795575511405628733})";
}

// The value sketch of the fixture's observation i (even i only).
inline std::vector<float> fixture_sketch(uint64_t i) {
  const float x = static_cast<float>(i);
  return {x, -x, 0.25f * x, x + 0.5f};
}

// Writes the raw trace with the writer: 4 tensors, `steps` steps of 12 observations each (every
// other one with a 4-bucket value sketch, format 1.4) plus a step mark, a loss-scale record, a
// weight update and an event per step. Small chunks.
inline std::vector<uint8_t> write_all_kinds(const std::string& path, int steps, int nbins) {
  WriterOptions opt;
  opt.flush_bytes = 4096;
  std::string err;
  auto w = TraceWriter::open(path, probe_like_metadata(), opt, &err);
  if (!w) throw std::runtime_error(err);
  for (uint32_t k = 0; k < 3; ++k) w->define_tensor(make_tensor(k));
  TensorInfo weight = make_tensor(3);
  weight.role = Role::Weight;
  weight.op = "watch";
  w->define_tensor(weight);
  uint64_t i = 0;
  for (int s = 0; s < steps; ++s) {
    const uint64_t step = static_cast<uint64_t>(s);
    w->step(StepMark{step, s == 0 ? StepSource::None : StepSource::Api, 100 * step, i});
    for (int k = 0; k < 12; ++k, ++i) {
      Observation o = make_obs(static_cast<uint32_t>(i % 3), i, nbins);
      o.step = step;
      if (i % 2 == 0) o.sketch = fixture_sketch(i);
      w->observe(o);
    }
    w->loss_scale(LossScaleRecord{step, 65536.0 / (1 + s % 3), s % 3 == 1, 32768.0,
                                  s % 2 ? LossScaleSource::Kernel : LossScaleSource::Api,
                                  100 * step + 7});
    WeightUpdateRecord u;
    u.step = step;
    u.tensor = 3;
    u.master_dtype = s % 4 == 3 ? Format::BF16 : Format::FP32;
    u.elements = 4096;
    u.changed = 4000 - step;
    u.bf16 = {100 + step, 0.5, 2.0};
    u.fp16 = {7, 0.25, 2.0};
    u.ratio_hist = {{-24, 5}, {-9, 80 + step}, {0, 5}};
    w->weight_update(u);
    w->event(EventRecord{step, 100 * step + 9, static_cast<EventLevel>(s % 3),
                         "step " + std::to_string(s) + " done"});
  }
  if (!w->close()) throw std::runtime_error(w->error());
  return read_file(path);
}

// Re-frames a writer's plain trace: RECORDS chunk i is zstd-compressed when i is odd, an unknown
// chunk type 0x30 follows the second RECORDS chunk, and the footer is rebuilt with the new chunk
// offsets (same totals, same per-chunk records and steps).
inline std::vector<uint8_t> reframe(const std::vector<uint8_t>& plain) {
  const FixtureLayout l = walk_layout(plain);
  std::vector<uint8_t> out(plain.begin(), plain.begin() + static_cast<long>(l.header_end));
  std::vector<uint64_t> offsets;
  size_t n_records = 0;
  for (const FixtureChunk& c : l.chunks) {
    if (c.type == 2) {  // the footer: totals kept, index offsets replaced
      const std::vector<uint8_t> p = chunk_payload(plain, c);
      size_t r = 0;
      std::vector<uint8_t> q;
      const uint64_t nk = varint_at(p.data(), &r);
      put_varint(q, nk);
      for (uint64_t k = 0; k < nk + 1; ++k) put_varint(q, varint_at(p.data(), &r));  // + hist
      const uint64_t nc = varint_at(p.data(), &r);
      if (nc != offsets.size()) throw std::runtime_error("fixture: footer index size");
      put_varint(q, nc);
      for (uint64_t i = 0; i < nc; ++i) {
        varint_at(p.data(), &r);
        put_varint(q, offsets[i]);
        for (int k = 0; k < 3; ++k) put_varint(q, varint_at(p.data(), &r));
      }
      put_le(q, out.size(), 8);
      q.insert(q.end(), {'F', 'E', 'N', 'D'});
      append_chunk(out, 2, 0, q);
      continue;
    }
    std::vector<uint8_t> p = chunk_payload(plain, c);
    offsets.push_back(out.size());
    if (n_records % 2 == 1) {
      std::vector<uint8_t> z(4 + ZSTD_compressBound(p.size()));
      const uint32_t raw = static_cast<uint32_t>(p.size());
      std::memcpy(z.data(), &raw, 4);
      const size_t zn = ZSTD_compress(z.data() + 4, z.size() - 4, p.data(), p.size(), 3);
      if (ZSTD_isError(zn)) throw std::runtime_error("fixture: zstd");
      z.resize(4 + zn);
      append_chunk(out, 1, 1, z);
    } else {
      append_chunk(out, 1, 0, p);
    }
    if (++n_records == 2) append_chunk(out, 0x30, 0, {'l', 'a', 't', 'e', 'r'});
  }
  return out;
}

// The every-kind fixture (about 20 KiB; 8 steps, 96 observations with 6 histogram entries).
inline std::vector<uint8_t> all_kinds_fixture(const std::string& scratch_path) {
  return reframe(write_all_kinds(scratch_path, 8, 6));
}

// A footer's fields (FORMAT.md 6), to rebuild footers that lie.
struct TestFooter {
  std::vector<uint64_t> totals;  // per tag 1..K
  uint64_t hist = 0;
  std::vector<std::array<uint64_t, 4>> index;  // offset, records, first step, last step
};

inline TestFooter parse_test_footer(const std::vector<uint8_t>& f, const FixtureChunk& c) {
  const std::vector<uint8_t> p = chunk_payload(f, c);
  TestFooter t;
  size_t r = 0;
  const uint64_t k = varint_at(p.data(), &r);
  for (uint64_t i = 0; i < k; ++i) t.totals.push_back(varint_at(p.data(), &r));
  t.hist = varint_at(p.data(), &r);
  const uint64_t n = varint_at(p.data(), &r);
  for (uint64_t i = 0; i < n; ++i) {
    std::array<uint64_t, 4> e{};
    for (uint64_t& v : e) v = varint_at(p.data(), &r);
    t.index.push_back(e);
  }
  return t;
}

inline std::vector<uint8_t> footer_payload(const TestFooter& t, uint64_t offset, bool fend = true) {
  std::vector<uint8_t> p;
  put_varint(p, t.totals.size());
  for (uint64_t v : t.totals) put_varint(p, v);
  put_varint(p, t.hist);
  put_varint(p, t.index.size());
  for (const auto& e : t.index)
    for (uint64_t v : e) put_varint(p, v);
  put_le(p, offset, 8);
  if (fend) {
    p.insert(p.end(), {'F', 'E', 'N', 'D'});
  } else {
    p.insert(p.end(), {'F', 'E', 'N', 'X'});  // a wrong end marker
  }
  return p;
}

inline std::string sample_trace_path() {
  return std::string(FPSCOPE_SOURCE_DIR) + "/tests/traces/data/pytorch_cpu_sample.fpst";
}

}  // namespace fpscope::trace::test
