// Writes the "extreme" corpus: VALID traces (every CRC right, a footer that matches, unless the
// name says otherwise) holding the values a hostile or broken producer can put in a file: steps,
// counts and sequence numbers of 2^64-1, NaN/Inf/-0/subnormal statistics, histograms of 1024 bins
// of 2^64-1, invalid UTF-8, control characters and markup in names, hostile metadata JSON, extreme
// shapes, many tensors and steps, zstd chunks at the size limits and decompression bombs. Written
// at test time (tests/fuzz/run_extreme_corpus.sh) from traces/FORMAT.md alone (trace_craft.h),
// then read by the reader (fuzz_read_trace's checks) and by `fpscope summary/report/export`.
// Usage: gen_extreme DIR
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "../traces/trace_craft.h"

using namespace fpscope::trace::test;
using namespace fpscope::trace::test::craft;

namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
const float kNaNf = std::numeric_limits<float>::quiet_NaN();
const float kInff = std::numeric_limits<float>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

std::string g_dir;
int g_files = 0;

void save(const std::string& name, const Bytes& b) {
  write_file(g_dir + "/" + name, b);
  ++g_files;
}

Tensor tensor(uint64_t index, const std::string& id, uint8_t role = 3, uint8_t dtype = 0) {
  Tensor t;
  t.index = index;
  t.id = id;
  t.role = role;
  t.dtype = dtype;
  return t;
}

// A plausible observation of `tensor` at `step`.
Obs obs(uint64_t tensor, uint64_t step, uint64_t seq) {
  Obs o;
  o.tensor = tensor;
  o.step = step;
  o.seq = seq;
  o.time_ns = seq * 1000;
  o.count = 4096;
  o.zero = 16;
  o.amax = 3.5f;
  o.min = -3.5f;
  o.max = 2.0f;
  o.sum = 1.25;
  o.sum_sq = 900.0;
  o.targets[1].underflow = 3;
  o.hist = {{100, 80}, {500, 3000}, {508, 1000}};
  return o;
}

Obs minimal_obs() {
  Obs o;
  o.targets.clear();
  return o;
}

// ---- steps, sequence numbers and times at the top of u64 ---------------------------------------
void steps_u64max() {
  File f;
  f.chunk({rec(tensor(0, "gemm#0.D")), rec(tensor(1, "w", 4, 1))});
  std::vector<Rec> r;
  const uint64_t steps[] = {0, 1, uint64_t{1} << 63, kMax - 1, kMax};
  for (uint64_t s : steps) {
    r.push_back(step_rec(s, 1, kMax, kMax));
    Obs o = obs(0, s, kMax);
    o.stream = kMax;
    o.time_ns = kMax;
    o.targets[0].overflow = 1;  // first_overflow at each of these steps
    r.push_back(rec(o));
    r.push_back(loss_rec(s, 65536.0, 32768.0, true));
    WeightUpdate w;
    w.step = s;
    w.tensor = 1;
    w.elements = 10;
    w.changed = 5;
    w.ratio_hist = {{-10, 5}};
    r.push_back(rec(w));
    r.push_back(event_rec(s, "step " + std::to_string(s)));
  }
  f.chunk({r.begin(), r.begin() + 10});
  f.chunk({r.begin() + 10, r.end()}, true);
  // A chunk whose only step is 2^64-1.
  f.chunk({rec(obs(0, kMax, 7))});
  f.footer();
  save("steps_u64max.fpst", f.bytes());
  // The same, torn: cut inside its last chunks (the footer and the chunk before it).
  Bytes torn = f.bytes();
  torn.resize(torn.size() - 120);
  save("steps_u64max_torn.fpst", torn);
}

// Steps descending, repeated and interleaved; step marks out of order; duplicate seq.
void steps_disorder() {
  File f;
  f.chunk({rec(tensor(0, "a")), rec(tensor(1, "b"))});
  std::vector<Rec> r;
  for (uint64_t i = 0; i < 200; ++i) {
    const uint64_t s = (i % 3 == 0) ? kMax - i : (i % 3 == 1 ? i * 7919 % 13 : uint64_t{1} << 40);
    r.push_back(step_rec(s, static_cast<uint8_t>(i % 6), 0, 5));
    r.push_back(rec(obs(i % 2, s, 5)));
  }
  f.chunk(r);
  f.footer();
  save("steps_disorder.fpst", f.bytes());
}

// Observations spread over 300k distinct steps 2^44 apart (a step span near 2^63).
void steps_sparse_many() {
  File f;
  f.chunk({rec(tensor(0, "gemm#0.D"))});
  std::vector<Rec> r;
  for (uint64_t i = 0; i < 300000; ++i) {
    Obs o = minimal_obs();
    o.step = i << 44;
    o.seq = i;
    o.count = 1;
    r.push_back(rec(o));
    if (r.size() == 50000) {
      f.chunk(r, true);
      r.clear();
    }
  }
  f.chunk(r, true);
  f.footer();
  save("steps_sparse_many.fpst", f.bytes());
}

// ---- counts ------------------------------------------------------------------------------------
void counts_u64max() {
  File f;
  f.chunk({rec(tensor(0, "gemm#0.D")), rec(tensor(1, "gemm#1.D", 3, 2))});
  std::vector<Rec> r;
  for (uint64_t i = 0; i < 6; ++i) {
    Obs o = obs(i % 2, i / 2, i);
    o.count = o.nan = o.pos_inf = o.neg_inf = o.zero = kMax;
    for (Target& t : o.targets) t.overflow = t.underflow = t.subnormal = kMax;
    o.hist.clear();
    for (uint64_t b = 0; b < 1024; ++b) o.hist.emplace_back(b, kMax);
    r.push_back(rec(o));
  }
  f.chunk(r, true);
  f.footer();
  save("counts_u64max.fpst", f.bytes());
}

// Counts that contradict each other: nan > count, zero > count, overflow > count, a histogram
// holding more than count, count 0 with statistics.
void counts_inconsistent() {
  File f;
  f.chunk({rec(tensor(0, "gemm#0.D"))});
  std::vector<Rec> r;
  Obs o = obs(0, 0, 0);
  o.count = 0;
  r.push_back(rec(o));
  o = obs(0, 1, 1);
  o.count = 5;
  o.nan = 7;
  o.pos_inf = kMax;
  o.zero = 9;
  r.push_back(rec(o));
  o = obs(0, 2, 2);
  o.count = 1;
  o.targets[2].overflow = 1000;
  o.targets[3].subnormal = kMax;
  o.hist = {{0, kMax}, {1023, kMax}};
  r.push_back(rec(o));
  o = obs(0, 3, 3);
  o.count = 0;
  o.hist.clear();
  o.amax = o.min = o.max = 0;
  o.sum = o.sum_sq = 0;
  r.push_back(rec(o));
  f.chunk(r);
  f.footer();
  save("counts_inconsistent.fpst", f.bytes());
}

// ---- non-finite and odd floating-point statistics ----------------------------------------------
void stats_nonfinite() {
  File f;
  f.chunk({rec(tensor(0, "gemm#0.D")), rec(tensor(1, "w", 4, 1))});
  const float fvals[] = {kNaNf,
                         -kNaNf,
                         kInff,
                         -kInff,
                         -0.0f,
                         std::numeric_limits<float>::denorm_min(),
                         std::numeric_limits<float>::max(),
                         std::bit_cast<float>(0x7fa00001u)};  // a signalling NaN payload
  const double dvals[] = {kNaN, kInf, -kInf, -0.0, -1.0, 1e308, 4.9e-324};
  std::vector<Rec> r;
  uint64_t seq = 0;
  for (float fv : fvals) {
    for (double dv : dvals) {
      Obs o = obs(0, seq / 8, seq);
      ++seq;
      o.amax = fv;
      o.min = fv;
      o.max = -fv;
      o.sum = dv;
      o.sum_sq = -dv;
      for (Target& t : o.targets) {
        t.flags = 3;
        t.scale = fv;
        t.sum_err2 = dv;
      }
      r.push_back(rec(o));
    }
  }
  for (double dv : dvals) {
    r.push_back(loss_rec(1, dv, -dv, std::isnan(dv)));
    WeightUpdate w;
    w.step = 2;
    w.tensor = 1;
    w.elements = 4;
    w.changed = 4;
    w.bf16_lost = w.fp16_delta = dv;
    w.bf16_delta = w.fp16_lost = -dv;
    r.push_back(rec(w));
  }
  f.chunk(r);
  f.footer();
  save("stats_nonfinite.fpst", f.bytes());
}

// ---- strings -----------------------------------------------------------------------------------
const std::vector<std::string>& hostile_strings() {
  static const std::vector<std::string> s = {
      std::string("\xff\xfe\xfd", 3),                   // not UTF-8 at all
      std::string("over\xc0\x80long", 10),              // overlong NUL
      std::string("surrogate\xed\xa0\x80", 12),         // UTF-16 surrogate
      std::string("cut\xe2\x82", 5),                    // truncated sequence
      std::string("nul\0inside", 10),                   // embedded NUL
      "\x1b[2J\x1b[31mred\x1b[0m\r\x07",                // terminal escapes
      "line\nbreak\ttab\"quote'apos\\back,comma;semi",  // CSV/JSON/markdown metacharacters
      "<script>alert(1)</script>&amp;<b>",              // HTML
      "=cmd|' /C calc'!A0",                             // spreadsheet formula injection
      "| md | table |\n|---|",                          // markdown table
      "",                                               // empty
      std::string(65536, 'x'),                          // the writer's cap
      "\xf0\x9f\x98\x80 emoji \xe2\x80\xae rtl-override",
  };
  return s;
}

void names_hostile() {
  File f;
  std::vector<Rec> defs;
  const auto& s = hostile_strings();
  for (size_t i = 0; i < s.size(); ++i) {
    Tensor t = tensor(i, s[i], static_cast<uint8_t>(i % 5), static_cast<uint8_t>(i % 5));
    t.name = s[(i + 1) % s.size()];
    t.op = s[(i + 2) % s.size()];
    defs.push_back(rec(t));
  }
  defs.push_back(rec(tensor(s.size(), s[0])));  // duplicate ids
  defs.push_back(rec(tensor(s.size() + 1, s[0])));
  f.chunk(defs);
  std::vector<Rec> r;
  for (uint64_t i = 0; i < s.size() + 2; ++i) {
    r.push_back(rec(obs(i, i % 3, i)));
    r.push_back(event_rec(i % 3, s[i % s.size()], static_cast<uint8_t>(i % 3)));
  }
  f.chunk(r);
  f.footer();
  save("names_hostile.fpst", f.bytes());
}

void metadata_hostile() {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::pair<const char*, std::string> metas[] = {
      {"metadata_not_json.fpst", "{\"probe\": \"libfpscope_probe\", \"pid\": "},
      {"metadata_deep.fpst", "{\"config\": " + deep + "}"},
      {"metadata_wrong_types.fpst",
       "{\"probe\": 7, \"pid\": \"x\", \"command_line\": {\"a\": null}, \"config\": [1,2], "
       "\"start_time_unix_ns\": -1e999, \"host_blas\": \"yes\", \"rank\": 1e400}"},
      {"metadata_bad_utf8.fpst", std::string("{\"host\": \"\xff\xfe\", \"command_line\": "
                                             "[\"\x1b[2J\", \"\\ud800\"]}")},
      {"metadata_array.fpst", "[1, 2, 3]"},
      {"metadata_nul.fpst", std::string("{\"a\": 1}\0garbage", 16)},
  };
  for (const auto& [name, meta] : metas) {
    File f(meta);
    f.chunk({rec(tensor(0, "gemm#0.D")), rec(obs(0, 0, 0)), step_rec(0)});
    f.footer();
    save(name, f.bytes());
  }
}

// ---- shapes and signatures ---------------------------------------------------------------------
void shapes_extreme() {
  File f;
  std::vector<Rec> r;
  const int64_t ints[] = {kI64Min, -1, 0, kI64Max};
  for (uint64_t i = 0; i < 8; ++i) {
    Tensor t = tensor(i, "gemm#" + std::to_string(i) + ".D", static_cast<uint8_t>(i % 5),
                      static_cast<uint8_t>(i % 5));
    t.rows = i % 2 ? kMax : 0;
    t.cols = i % 3 ? kMax : 0;
    t.ld = kMax - i;
    t.device = i % 2 ? std::numeric_limits<int32_t>::min() : std::numeric_limits<int32_t>::max();
    t.transa = static_cast<uint8_t>(i % 2 ? 0 : 0xff);
    t.transb = 'C';
    t.m = ints[i % 4];
    t.n = ints[(i + 1) % 4];
    t.k = ints[(i + 2) % 4];
    t.lda = t.ldb = t.ldc = ints[(i + 3) % 4];
    t.alpha = i % 2 ? kNaN : -kInf;
    t.beta = i % 2 ? kInf : -0.0;
    t.batch = ints[i % 4];
    t.op = i == 0 ? "watch" : "cublasLtMatmul";
    r.push_back(rec(t));
    Obs o = obs(i, 0, i);
    o.count = kMax;
    r.push_back(rec(o));
  }
  f.chunk(r);
  f.footer();
  save("shapes_extreme.fpst", f.bytes());
}

// ---- histograms --------------------------------------------------------------------------------
void histograms_extreme() {
  File f;
  f.chunk({rec(tensor(0, "gemm#0.D")), rec(tensor(1, "w", 4, 1))});
  std::vector<Rec> r;
  Obs o = obs(0, 0, 0);
  o.hist.clear();
  for (uint64_t b = 0; b < 1024; ++b) o.hist.emplace_back(b, b * 0x9E3779B97F4A7C15ull);
  r.push_back(rec(o));
  o.step = 1;
  o.hist = {{1023, 1}};  // the top bin only
  r.push_back(rec(o));
  WeightUpdate w;
  w.tensor = 1;
  w.elements = kMax;
  w.changed = kMax;
  w.bf16_stagnant = w.fp16_stagnant = kMax;
  for (int64_t b = -32768; b <= 32767; b += 7) w.ratio_hist.emplace_back(b, kMax);
  w.ratio_hist.emplace_back(32767, kMax);
  w.ratio_hist.emplace_back(-32768, kMax);  // unsorted, repeated
  r.push_back(rec(w));
  w.step = 1;
  w.elements = 0;
  w.changed = 5;  // changed > elements
  w.master_dtype = 0;
  r.push_back(rec(w));
  f.chunk(r, true);
  f.footer();
  save("histograms_extreme.fpst", f.bytes());
}

// ---- sizes -------------------------------------------------------------------------------------
void many_tensors() {
  File f;
  std::vector<Rec> r;
  constexpr uint64_t kN = 100000;
  for (uint64_t i = 0; i < kN; ++i) {
    r.push_back(rec(tensor(i, "gemm#" + std::to_string(i) + ".D", static_cast<uint8_t>(i % 5))));
    if (r.size() == 20000) {
      f.chunk(r, true);
      r.clear();
    }
  }
  for (uint64_t i = 0; i < kN; ++i) {
    Obs o = minimal_obs();
    o.tensor = i;
    o.seq = i;
    o.count = 10;
    o.nan = i % 1000 == 0;
    r.push_back(rec(o));
    if (r.size() == 50000) {
      f.chunk(r, true);
      r.clear();
    }
  }
  f.footer();
  save("many_tensors.fpst", f.bytes());
}

void empty_and_degenerate() {
  {
    File f;
    f.footer();
    save("footer_only.fpst", f.bytes());
    save("header_only.fpst", File().bytes());
  }
  {
    File f;
    f.chunk({rec(tensor(0, "")), step_rec(0), step_rec(kMax), event_rec(0, "only events")});
    f.footer();
    save("no_observations.fpst", f.bytes());
  }
  {
    File f;
    Obs o = minimal_obs();  // count 0, no targets, no histogram
    f.chunk({rec(tensor(0, "zero")), rec(o), rec(o)});
    f.footer();
    save("observations_all_zero.fpst", f.bytes());
  }
  {
    // A later minor: unknown chunk types and flags, unknown record tags, appended fields, 64
    // targets, a footer with K > 6 totals (written by hand).
    File f("{}", 9);
    Obs o = obs(0, 0, 0);
    o.targets.resize(64);
    Rec ro = rec(o);
    ro.body.insert(ro.body.end(), {0xde, 0xad, 0xbe, 0xef});
    Rec unknown{0x77, {1, 2, 3}, false, 0, 0};
    f.raw_chunk(0x99, 0, {1, 2, 3});
    f.raw_chunk(1, 0x80, {4, 5, 6});
    f.chunk({rec(tensor(0, "t")), ro, unknown});
    f.footer();
    save("later_minor.fpst", f.bytes());
  }
}

// ---- zstd chunks at the limits, and bombs ------------------------------------------------------

// One zstd RECORDS chunk of `raw` bytes of copies of `r` (R exactly `raw` when r divides it).
uint64_t bomb_chunk(File& f, const Rec& r, uint64_t raw) {
  const uint64_t n = raw / (r.body.size() + 2);
  const Bytes payload = repeated_payload(r, n);
  ChunkSum sum;
  sum.add(r, n);
  f.stored_chunk(zstd_payload(payload, 3), true, sum);
  return payload.size();
}

void zstd_limits() {
  const Rec tensor0 = rec(tensor(0, "gemm#0.D"));
  Obs o = minimal_obs();
  o.count = 1;
  const Rec ob = rec(o);
  {
    // The default floor (64 MiB) of identical observations in one chunk: accepted, 1.6M records.
    File f;
    f.chunk({tensor0});
    bomb_chunk(f, ob, 64u << 20);
    f.footer();
    save("zstd_observations_at_floor.fpst", f.bytes());
  }
  {
    // 64 MiB of empty events (the most records per decoded byte): accepted, 11M events.
    File f;
    f.chunk({tensor0});
    bomb_chunk(f, event_rec(0, ""), 64u << 20);
    f.footer();
    save("zstd_events_at_floor.fpst", f.bytes());
  }
  {
    // Two chunks at the per-chunk maximum: past max(64 MiB, 100 x size), refused.
    File f;
    f.chunk({tensor0});
    bomb_chunk(f, ob, 64u << 20);
    bomb_chunk(f, ob, 64u << 20);
    f.footer();
    save("zstd_two_chunks_64mib.fpst", f.bytes());
  }
  {
    // R = 64 MiB + 1 declared: the walk stops there (truncated), nothing past it is read.
    File f;
    f.chunk({tensor0, rec(obs(0, 0, 0))});
    Bytes stored = zstd_payload(Bytes(16, 0));
    const uint32_t r = (64u << 20) + 1;
    std::copy_n(reinterpret_cast<const uint8_t*>(&r), 4, stored.begin());
    f.raw_chunk(1, 1, stored);
    save("zstd_chunk_over_64mib.fpst", f.bytes());
  }
  {
    // The tester's bomb: 24 chunks at 64 MiB of identical observations (~1.5 GiB from ~100 KB).
    File f;
    f.chunk({tensor0});
    for (int i = 0; i < 24; ++i) bomb_chunk(f, ob, 64u << 20);
    f.footer();
    save("zstd_bomb.fpst", f.bytes());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  steps_u64max();
  steps_disorder();
  steps_sparse_many();
  counts_u64max();
  counts_inconsistent();
  stats_nonfinite();
  names_hostile();
  metadata_hostile();
  shapes_extreme();
  histograms_extreme();
  many_tensors();
  empty_and_degenerate();
  zstd_limits();
  std::printf("gen_extreme: wrote %d traces to %s\n", g_files, g_dir.c_str());
  return 0;
}
