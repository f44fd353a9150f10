// Hand encoder for trace files with any field values, written from traces/FORMAT.md alone (no
// traces/src code): record bodies of every kind, RECORDS chunks (plain or zstd, with any declared
// size) and a footer computed from what was appended, so that crafted files are valid, CRC and
// footer included, whatever values they hold (2^64-1 steps and counts, NaN statistics, invalid
// UTF-8, decompression bombs). Used by the limit tests and tests/fuzz/gen_extreme.cpp.
#pragma once

#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "trace_test_util.h"

namespace fpscope::trace::test::craft {

using Bytes = std::vector<uint8_t>;

inline void put_str(Bytes& b, const std::string& s) {
  put_varint(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}
inline void put_sv(Bytes& b, int64_t v) {  // svarint: zigzag then varint
  put_varint(b, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}
inline void put_f32(Bytes& b, float v) {
  put_le(b, std::bit_cast<uint32_t>(v), 4);
}
inline void put_f64(Bytes& b, double v) {
  put_le(b, std::bit_cast<uint64_t>(v), 8);
}

// FORMAT.md 5.1.
struct Tensor {
  uint64_t index = 0;
  std::string id = "t", name, op = "sgemm";
  uint8_t role = 3, dtype = 0;
  uint64_t rows = 4, cols = 4, ld = 4;
  int64_t device = -1;
  uint8_t transa = 'N', transb = 'N';
  int64_t m = 4, n = 4, k = 4, lda = 4, ldb = 4, ldc = 4;
  double alpha = 1.0, beta = 0.0;
  int64_t batch = 1;
};
inline Bytes body(const Tensor& t) {
  Bytes b;
  put_varint(b, t.index);
  put_str(b, t.id);
  put_str(b, t.name);
  put_str(b, t.op);
  b.push_back(t.role);
  b.push_back(t.dtype);
  put_varint(b, t.rows);
  put_varint(b, t.cols);
  put_varint(b, t.ld);
  put_sv(b, t.device);
  b.push_back(t.transa);
  b.push_back(t.transb);
  for (int64_t v : {t.m, t.n, t.k, t.lda, t.ldb, t.ldc}) put_sv(b, v);
  put_f64(b, t.alpha);
  put_f64(b, t.beta);
  put_sv(b, t.batch);
  return b;
}

// FORMAT.md 5.2. `hist` holds (bin, count) pairs in increasing bin order; they are written as
// deltas.
struct Target {
  uint8_t flags = 0;
  uint64_t overflow = 0, underflow = 0, subnormal = 0;
  double sum_err2 = 0.0;
  float scale = 1.0f;
};
struct Obs {
  uint64_t tensor = 0, step = 0, seq = 0, stream = 0, time_ns = 0;
  uint64_t count = 0, nan = 0, pos_inf = 0, neg_inf = 0, zero = 0;
  float amax = 0, min = 0, max = 0;
  double sum = 0, sum_sq = 0;
  std::vector<Target> targets = std::vector<Target>(4);
  std::vector<std::pair<uint64_t, uint64_t>> hist;
};
inline Bytes body(const Obs& o) {
  Bytes b;
  for (uint64_t v :
       {o.tensor, o.step, o.seq, o.stream, o.time_ns, o.count, o.nan, o.pos_inf, o.neg_inf, o.zero})
    put_varint(b, v);
  put_f32(b, o.amax);
  put_f32(b, o.min);
  put_f32(b, o.max);
  put_f64(b, o.sum);
  put_f64(b, o.sum_sq);
  put_varint(b, o.targets.size());
  for (const Target& t : o.targets) {
    b.push_back(t.flags);
    put_varint(b, t.overflow);
    put_varint(b, t.underflow);
    put_varint(b, t.subnormal);
    if (t.flags & 2) put_f64(b, t.sum_err2);
    if (t.flags & 1) put_f32(b, t.scale);
  }
  put_varint(b, o.hist.size());
  uint64_t prev = 0;
  for (size_t i = 0; i < o.hist.size(); ++i) {
    put_varint(b, o.hist[i].first - (i == 0 ? 0 : prev));
    put_varint(b, o.hist[i].second);
    prev = o.hist[i].first;
  }
  return b;
}

// FORMAT.md 5.3 - 5.6.
inline Bytes step_body(uint64_t step, uint8_t source, uint64_t time_ns, uint64_t first_seq) {
  Bytes b;
  put_varint(b, step);
  b.push_back(source);
  put_varint(b, time_ns);
  put_varint(b, first_seq);
  return b;
}
inline Bytes loss_scale_body(uint64_t step, double scale, bool found_inf, double next,
                             uint8_t source, uint64_t time_ns) {
  Bytes b;
  put_varint(b, step);
  put_f64(b, scale);
  b.push_back(found_inf ? 1 : 0);
  put_f64(b, next);
  b.push_back(source);
  put_varint(b, time_ns);
  return b;
}
struct WeightUpdate {
  uint64_t step = 0, tensor = 0;
  uint8_t master_dtype = 1;
  uint64_t elements = 0, changed = 0;
  uint64_t bf16_stagnant = 0, fp16_stagnant = 0;
  double bf16_lost = 0, bf16_delta = 0, fp16_lost = 0, fp16_delta = 0;
  std::vector<std::pair<int64_t, uint64_t>> ratio_hist;
};
inline Bytes body(const WeightUpdate& w) {
  Bytes b;
  put_varint(b, w.step);
  put_varint(b, w.tensor);
  b.push_back(w.master_dtype);
  put_varint(b, w.elements);
  put_varint(b, w.changed);
  put_varint(b, w.bf16_stagnant);
  put_f64(b, w.bf16_lost);
  put_f64(b, w.bf16_delta);
  put_varint(b, w.fp16_stagnant);
  put_f64(b, w.fp16_lost);
  put_f64(b, w.fp16_delta);
  put_varint(b, w.ratio_hist.size());
  for (const auto& [bin, count] : w.ratio_hist) {
    put_sv(b, bin);
    put_varint(b, count);
  }
  return b;
}
inline Bytes event_body(uint64_t step, uint64_t time_ns, uint8_t level, const std::string& text) {
  Bytes b;
  put_varint(b, step);
  put_varint(b, time_ns);
  b.push_back(level);
  put_str(b, text);
  return b;
}
// FORMAT.md 5.8 (format 1.4): K, then K f32 buckets; `k` overrides the count written (hostile
// bodies), `tail` bytes are appended (a later minor's fields).
inline Bytes sketch_body(const std::vector<float>& v, int64_t k = -1, const Bytes& tail = {}) {
  Bytes b;
  put_varint(b, k < 0 ? v.size() : static_cast<uint64_t>(k));
  for (float x : v) put_f32(b, x);
  b.insert(b.end(), tail.begin(), tail.end());
  return b;
}

// One record of a RECORDS payload with what the footer needs to know about it.
struct Rec {
  uint8_t tag = 0;
  Bytes body;
  bool stepped = false;  // every known kind but TENSOR
  uint64_t step = 0;
  uint64_t hist_entries = 0;  // OBSERVATION
};
inline Rec rec(const Tensor& t) {
  return {1, body(t), false, 0, 0};
}
inline Rec rec(const Obs& o) {
  return {2, body(o), true, o.step, o.hist.size()};
}
inline Rec rec(const WeightUpdate& w) {
  return {5, body(w), true, w.step, 0};
}
inline Rec step_rec(uint64_t step, uint8_t source = 1, uint64_t time_ns = 0, uint64_t seq = 0) {
  return {3, step_body(step, source, time_ns, seq), true, step, 0};
}
inline Rec event_rec(uint64_t step, const std::string& text, uint8_t level = 1) {
  return {6, event_body(step, 0, level, text), true, step, 0};
}
inline Rec loss_rec(uint64_t step, double scale, double next, bool inf = false) {
  return {4, loss_scale_body(step, scale, inf, next, 0, 0), true, step, 0};
}
// A VALUE_SKETCH record; `step`: its observation's (the footer's step range is unchanged by it).
inline Rec sketch_rec(const Bytes& body, uint64_t step) {
  return {8, body, true, step, 0};
}

// What a RECORDS chunk holds, for the footer.
struct ChunkSum {
  uint64_t records = 0, hist_entries = 0;
  uint64_t kinds[9] = {};  // tags 1..8 (LOSS 1.1, VALUE_SKETCH 1.4)
  bool stepped = false;
  uint64_t first_step = 0, last_step = 0;
  void add(const Rec& r, uint64_t times = 1) {
    records += times;
    if (r.tag < 9) kinds[r.tag] += times;
    hist_entries += r.hist_entries * times;
    if (!r.stepped) return;
    first_step = stepped ? std::min(first_step, r.step) : r.step;
    last_step = stepped ? std::max(last_step, r.step) : r.step;
    stepped = true;
  }
};

inline Bytes zstd_payload(const Bytes& raw, int level = 1) {
  Bytes out(4 + ZSTD_compressBound(raw.size()));
  const uint32_t n = static_cast<uint32_t>(raw.size());
  std::copy_n(reinterpret_cast<const uint8_t*>(&n), 4, out.begin());
  const size_t z = ZSTD_compress(out.data() + 4, out.size() - 4, raw.data(), raw.size(), level);
  if (ZSTD_isError(z)) throw std::runtime_error("craft: zstd failed");
  out.resize(4 + z);
  return out;
}

// A trace built chunk by chunk; footer() closes it with the totals and index of what was
// appended (a valid footer, whatever the records hold).
class File {
 public:
  explicit File(const std::string& metadata = "{}", uint16_t minor = 0)
      : bytes_(make_header(1, minor, metadata)) {}

  // A RECORDS chunk holding `recs` (zstd-compressed when asked). Returns its offset.
  uint64_t chunk(const std::vector<Rec>& recs, bool zstd = false) {
    Bytes payload;
    ChunkSum sum;
    for (const Rec& r : recs) {
      payload.push_back(r.tag);
      put_varint(payload, r.body.size());
      payload.insert(payload.end(), r.body.begin(), r.body.end());
      sum.add(r);
    }
    return stored_chunk(zstd ? zstd_payload(payload) : payload, zstd, sum);
  }
  // A RECORDS chunk whose stored payload is given (e.g. one zstd frame reused N times).
  uint64_t stored_chunk(const Bytes& stored, bool zstd, const ChunkSum& sum) {
    const uint64_t at = bytes_.size();
    append_chunk(bytes_, 1, zstd ? 1 : 0, stored);
    index_.push_back({at, sum});
    return at;
  }
  // Any chunk, not indexed (unknown types and flags).
  void raw_chunk(uint8_t type, uint8_t flags, const Bytes& payload) {
    append_chunk(bytes_, type, flags, payload);
  }
  // K = 6 totals (a 1.0 footer), or up to the highest later tag appended (7, 8).
  void footer() {
    Bytes p;
    uint64_t kinds[9] = {}, hist = 0;
    int nk = 6;
    for (const auto& [at, s] : index_) {
      for (int k = 1; k < 9; ++k) {
        kinds[k] += s.kinds[k];
        if (s.kinds[k] > 0) nk = std::max(nk, k);
      }
      hist += s.hist_entries;
    }
    put_varint(p, static_cast<uint64_t>(nk));
    for (int k = 1; k <= nk; ++k) put_varint(p, kinds[k]);
    put_varint(p, hist);
    put_varint(p, index_.size());
    for (const auto& [at, s] : index_) {
      put_varint(p, at);
      put_varint(p, s.records);
      put_varint(p, s.stepped ? s.first_step : 0);
      put_varint(p, s.stepped ? s.last_step : 0);
    }
    put_le(p, bytes_.size(), 8);
    p.insert(p.end(), {'F', 'E', 'N', 'D'});
    append_chunk(bytes_, 2, 0, p);
  }
  const Bytes& bytes() const { return bytes_; }
  Bytes& mutable_bytes() { return bytes_; }

 private:
  Bytes bytes_;
  std::vector<std::pair<uint64_t, ChunkSum>> index_;
};

// A RECORDS payload of `n` copies of one record (a decompression bomb's content).
inline Bytes repeated_payload(const Rec& r, uint64_t n) {
  Bytes one;
  one.push_back(r.tag);
  put_varint(one, r.body.size());
  one.insert(one.end(), r.body.begin(), r.body.end());
  Bytes out;
  out.reserve(one.size() * n);
  for (uint64_t i = 0; i < n; ++i) out.insert(out.end(), one.begin(), one.end());
  return out;
}

}  // namespace fpscope::trace::test::craft
