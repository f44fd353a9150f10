// Writes the fuzzer's seed corpus: small real traces (plain, zstd, empty, every record kind,
// truncated), the every-kind fixture of the reader tests (plain and zstd chunks in one file, an
// unknown chunk type, a rebuilt footer), footers that lie (index offset, record count, step range,
// footer_offset, a missing FEND, a second footer) and the head of a real probe trace.
// Value sketches (format 1.4): sketches.fpst (with block sections and every kind), sketches_zstd.
// Usage: make_fuzz_corpus DIR   (the files in tests/fuzz/corpus/ came from it; those older than
// format 1.4 were kept as they were written, minor 3 seeds).
#include <unistd.h>

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "../traces/trace_fixture.h"
#include "fpscope/trace_io.h"

using namespace fpscope;
using namespace fpscope::trace;

// A block-format section (format 1.3) for observation i: some formats of kBlockFormats, both
// axes, sparse scale histograms, counts up to 2^64-1.
static BlockStatsSet corpus_blocks(uint64_t i) {
  BlockStatsSet b;
  b.mask = i % 4 == 0 ? kAllBlockFormats : static_cast<uint32_t>((i * 5 + 1) & kAllBlockFormats);
  b.axis = i % 2 ? BlockAxis::Cols : BlockAxis::Rows;
  b.nvfp4_tensor_scale = 2688.0f / static_cast<float>(i + 1);
  for (int f = 0; f < kNumBlockFormats; ++f) {
    if (!(b.mask >> f & 1u)) continue;
    BlockFormatCounts& c = b.fmt[f];
    c.blocks = 64 + i;
    c.elements = 32 * c.blocks;
    c.flushed = i * 3 + static_cast<uint64_t>(f);
    c.saturated = i % 4;
    c.zero_blocks = f == 3 ? UINT64_MAX : i % 5;
    c.scale_underflow = i % 3;
    c.nan_scale = i % 7 == 0 ? 1 : 0;
    c.sum_err2 = 1e-3 * static_cast<double>(i + 1);
    c.sum_x2 = 4.0 * static_cast<double>(i + 1);
    for (int k = 0; k < 3 + f; ++k) b.scale_hist[f][(120 + 2 * k + f) % kBlockScaleBins] += 1 + i;
  }
  return b;
}

// A value sketch (format 1.4) for observation i: none for every third, else 32 buckets (a small
// corpus file) or one, holding -0.0, a NaN payload and values that depend on i.
static std::vector<float> corpus_sketch(uint64_t i) {
  if (i % 3 == 1) return {};
  std::vector<float> v(i % 5 == 0 ? 1 : 32);
  for (size_t j = 0; j < v.size(); ++j) v[j] = static_cast<float>(i) - 0.5f * static_cast<float>(j);
  if (v.size() > 2) {
    v[1] = -0.0f;
    v[2] = std::bit_cast<float>(0x7FC00001u + static_cast<uint32_t>(i));
  }
  return v;
}

static bool write_trace(const std::string& path, bool zstd, int n_obs, int bins, bool all_kinds,
                        bool blocks = false, bool sketches = false) {
  WriterOptions opt;
  opt.zstd = zstd;
  opt.flush_bytes = 4096;
  std::string err;
  auto w = TraceWriter::open(path, R"({"corpus":true})", opt, &err);
  if (!w) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return false;
  }
  w->define_tensor(test::make_tensor(0));
  w->define_tensor(test::make_tensor(4));
  for (int i = 0; i < n_obs; ++i) {
    Observation o = test::make_obs(static_cast<uint32_t>(i % 2), static_cast<uint64_t>(i), bins);
    if (blocks && i % 3 != 2) o.stats.blocks = corpus_blocks(static_cast<uint64_t>(i));
    if (sketches) o.sketch = corpus_sketch(static_cast<uint64_t>(i));
    w->observe(o);
    if (all_kinds && i % 8 == 0) {
      const uint64_t s = static_cast<uint64_t>(i / 8);
      w->step(StepMark{s, StepSource::GemmPeriod, s * 10, static_cast<uint64_t>(i)});
      w->loss_scale(LossScaleRecord{s, 1024.0, i % 16 == 0, 512.0, LossScaleSource::Kernel, s});
      WeightUpdateRecord u;
      u.step = s;
      u.tensor = 1;
      u.elements = 100;
      u.changed = 90;
      u.bf16 = {3, 0.5, 2.0};
      u.fp16 = {1, 0.25, 2.0};
      u.ratio_hist = {{-20, 5}, {-9, 80}, {0, 5}};
      w->weight_update(u);
      w->event(EventRecord{s, s, EventLevel::Warning, "loss scale halved"});
    }
  }
  return w->close();
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string d = argv[1];
  bool ok = write_trace(d + "/all_kinds.fpst", false, 40, 6, true) &&
            write_trace(d + "/all_kinds_zstd.fpst", true, 40, 6, true) &&
            write_trace(d + "/multi_chunk.fpst", false, 60, 12, false) &&
            write_trace(d + "/blocks.fpst", false, 40, 6, true, true) &&
            write_trace(d + "/blocks_zstd.fpst", true, 60, 12, false, true) &&
            write_trace(d + "/sketches.fpst", false, 40, 6, true, true, true) &&
            write_trace(d + "/sketches_zstd.fpst", true, 40, 6, false, false, true) &&
            write_trace(d + "/empty.fpst", false, 0, 0, false);
  if (!ok) return 1;
  // A torn tail: the multi-chunk trace cut in the middle of its last RECORDS chunk.
  const auto full = test::read_file(d + "/multi_chunk.fpst");
  std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(full.size() * 3 / 4));
  test::write_file(d + "/torn.fpst", cut);

  // Every record kind, mixed plain/zstd chunks, an unknown chunk, a rebuilt footer (small).
  const std::string scratch = d + "/.scratch.fpst";
  const auto mixed = test::reframe(test::write_all_kinds(scratch, 4, 3));
  test::write_file(d + "/all_kinds_mixed.fpst", mixed);

  // Footers that lie, with valid CRCs, on a plain every-kind trace.
  const auto plain = test::write_all_kinds(scratch, 6, 3);
  std::remove(scratch.c_str());
  const auto lay = test::walk_layout(plain);
  const auto original = test::parse_test_footer(plain, lay.chunks.back());
  const std::vector<uint8_t> body(plain.begin(),
                                  plain.begin() + static_cast<long>(lay.chunks.back().begin));
  const uint64_t at = body.size();
  auto emit = [&](const std::string& name, const test::TestFooter& f, uint64_t offset, bool fend,
                  const std::vector<uint8_t>& before) {
    std::vector<uint8_t> out = before;
    test::append_chunk(out, 2, 0, test::footer_payload(f, offset, fend));
    test::write_file(d + "/" + name, out);
  };
  if (original.index.size() < 3) return 1;
  test::TestFooter f = original;
  f.index[1][0] += 1;
  emit("footer_bad_offset.fpst", f, at, true, body);
  f = original;
  f.index[2][1] += 1;
  f.totals[1] += 1;
  emit("footer_bad_records.fpst", f, at, true, body);
  f = original;
  f.index[1][2] = 1000;
  f.index[1][3] = 1001;
  emit("footer_bad_steps.fpst", f, at, true, body);
  emit("footer_bad_self.fpst", original, lay.header_end, true, body);
  emit("footer_no_fend.fpst", original, at, false, body);
  std::vector<uint8_t> twice = body;
  test::append_chunk(twice, 2, 0, test::footer_payload(original, at, true));
  emit("footer_twice.fpst", original, twice.size(), true, twice);

  // The head of a real probe trace (header, metadata, first chunks; no footer).
  const auto sample = test::read_file(test::sample_trace_path());
  if (sample.size() < 16384) return 1;
  test::write_file(d + "/sample_head.fpst",
                   std::vector<uint8_t>(sample.begin(), sample.begin() + 16384));
  return 0;
}
