// Round trip of every record kind (every field), with and without zstd, plus the header.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "fpscope/trace_file.h"
#include "fpscope/trace_io.h"
#include "trace_test_util.h"

namespace fpscope::trace {
namespace {

using test::make_obs;
using test::make_tensor;
using test::temp_path;

void expect_tensor_eq(const TensorInfo& a, const TensorInfo& b) {
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.op, b.op);
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.cols, b.cols);
  EXPECT_EQ(a.ld, b.ld);
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.gemm.transa, b.gemm.transa);
  EXPECT_EQ(a.gemm.transb, b.gemm.transb);
  EXPECT_EQ(a.gemm.m, b.gemm.m);
  EXPECT_EQ(a.gemm.n, b.gemm.n);
  EXPECT_EQ(a.gemm.k, b.gemm.k);
  EXPECT_EQ(a.gemm.lda, b.gemm.lda);
  EXPECT_EQ(a.gemm.ldb, b.gemm.ldb);
  EXPECT_EQ(a.gemm.ldc, b.gemm.ldc);
  EXPECT_EQ(a.gemm.alpha, b.gemm.alpha);
  EXPECT_EQ(a.gemm.beta, b.gemm.beta);
  EXPECT_EQ(a.gemm.batch, b.gemm.batch);
}

template <typename T>
auto bits(T v) {
  if constexpr (sizeof(T) == 4)
    return std::bit_cast<uint32_t>(v);
  else
    return std::bit_cast<uint64_t>(v);
}

void expect_obs_eq(const Observation& w, const ObservationRecord& r, const Trace& t) {
  EXPECT_EQ(w.tensor, r.tensor);
  EXPECT_EQ(w.step, r.step);
  EXPECT_EQ(w.seq, r.seq);
  EXPECT_EQ(w.stream, r.stream);
  EXPECT_EQ(w.time_ns, r.time_ns);
  const TensorStats full = t.full_stats(r);
  const TensorStats& s = w.stats;
  EXPECT_EQ(s.count, full.count);
  EXPECT_EQ(s.nan, full.nan);
  EXPECT_EQ(s.pos_inf, full.pos_inf);
  EXPECT_EQ(s.neg_inf, full.neg_inf);
  EXPECT_EQ(s.zero, full.zero);
  EXPECT_EQ(bits(s.amax), bits(full.amax));
  EXPECT_EQ(bits(s.min), bits(full.min));
  EXPECT_EQ(bits(s.max), bits(full.max));
  EXPECT_EQ(bits(s.sum), bits(full.sum));
  EXPECT_EQ(bits(s.sum_sq), bits(full.sum_sq));
  for (int k = 0; k < kNumTargets; ++k) {
    EXPECT_EQ(s.fmt[k].overflow, full.fmt[k].overflow) << k;
    EXPECT_EQ(s.fmt[k].underflow, full.fmt[k].underflow) << k;
    EXPECT_EQ(s.fmt[k].subnormal, full.fmt[k].subnormal) << k;
    EXPECT_EQ(bits(s.fmt[k].sum_err2), bits(full.fmt[k].sum_err2)) << k;
    EXPECT_EQ(bits(s.fmt[k].scale), bits(full.fmt[k].scale)) << k;
  }
  int nonzero = 0;
  for (int b = 0; b < kHistBins; ++b) {
    EXPECT_EQ(s.hist[b], full.hist[b]) << "bin " << b;
    nonzero += s.hist[b] != 0;
  }
  EXPECT_EQ(static_cast<uint32_t>(nonzero), r.hist_len);
  // The pool slice is sorted by bin.
  for (uint32_t i = 1; i < r.hist_len; ++i)
    EXPECT_LT(t.hist_bins[r.hist_begin + i - 1], t.hist_bins[r.hist_begin + i]);
}

struct Written {
  std::vector<TensorInfo> tensors;
  std::vector<Observation> obs;
  std::vector<StepMark> steps;
  std::vector<LossScaleRecord> scales;
  std::vector<WeightUpdateRecord> updates;
  std::vector<EventRecord> events;
};

Written write_everything(const std::string& path, bool zstd, const std::string& meta) {
  Written w;
  WriterOptions opt;
  opt.zstd = zstd;
  opt.flush_bytes = 8192;  // several chunks
  std::string err;
  auto tw = TraceWriter::open(path, meta, opt, &err);
  EXPECT_TRUE(tw) << err;
  if (!tw) return w;
  for (uint32_t k = 0; k < 7; ++k) {
    TensorInfo t = make_tensor(k);
    t.index = tw->define_tensor(t);
    EXPECT_EQ(t.index, k);
    w.tensors.push_back(t);
  }
  for (uint64_t i = 0; i < 300; ++i) {
    // Edge cases: empty histogram, every bin populated, extreme values.
    Observation o = make_obs(static_cast<uint32_t>(i % 7), i, static_cast<int>(i % 40));
    if (i == 5) {
      for (int b = 0; b < kHistBins; ++b) o.stats.hist[b] = static_cast<uint64_t>(b) + 1;
      o.stats.hist[kHistBins - 1] = std::numeric_limits<uint64_t>::max();
      o.stats.count = std::numeric_limits<uint64_t>::max();
      o.stats.amax = std::numeric_limits<float>::infinity();
      o.stats.sum = std::numeric_limits<double>::quiet_NaN();
      o.stats.min = -0.0f;
      o.step = std::numeric_limits<uint64_t>::max();
    }
    tw->observe(o);
    w.obs.push_back(o);
    if (i % 16 == 0) {
      StepMark m{i / 16, static_cast<StepSource>(i / 16 % 6), 5000 * i, i};
      tw->step(m);
      w.steps.push_back(m);
      LossScaleRecord l;
      l.step = i / 16;
      l.scale = 65536.0 / static_cast<double>(1 + i % 3);
      l.found_inf = i % 32 == 0;
      l.next_scale = l.found_inf ? l.scale / 2 : l.scale;
      l.source = i % 48 == 0 ? LossScaleSource::Kernel : LossScaleSource::Api;
      l.time_ns = 77 * i;
      tw->loss_scale(l);
      w.scales.push_back(l);
      WeightUpdateRecord u;
      u.step = i / 16;
      u.tensor = 4;
      u.master_dtype = i % 32 ? Format::FP32 : Format::BF16;
      u.elements = 4096 + i;
      u.changed = 4000 + i;
      u.bf16 = {100 + i, 0.5 * static_cast<double>(i), 3.25};
      u.fp16 = {7, 1e-9, 2.0 + static_cast<double>(i)};
      for (int b = kRatioLog2Min; b <= kRatioLog2Max; b += 3)
        u.ratio_hist.emplace_back(static_cast<int16_t>(b), static_cast<uint64_t>(b * b) + i);
      u.watched = i % 2 ? u.elements : 1000 + i;  // 1.2: a sampled watch, or the whole tensor
      tw->weight_update(u);
      w.updates.push_back(u);
      EventRecord e{i / 16, 9 * i, static_cast<EventLevel>(i % 3),
                    "event " + std::to_string(i) + " with \"quotes\"\n and a newline"};
      tw->event(e);
      w.events.push_back(e);
    }
  }
  EventRecord empty_event;  // all defaults, empty text
  tw->event(empty_event);
  w.events.push_back(empty_event);
  EXPECT_TRUE(tw->close()) << tw->error();
  EXPECT_TRUE(tw->ok());
  EXPECT_EQ(tw->records_dropped(), 0u);
  EXPECT_EQ(tw->records_written(), w.tensors.size() + w.obs.size() + w.steps.size() +
                                       w.scales.size() + w.updates.size() + w.events.size());
  return w;
}

void check_everything(const Written& w, const Trace& t) {
  ASSERT_EQ(t.tensors.size(), w.tensors.size());
  for (size_t i = 0; i < w.tensors.size(); ++i) expect_tensor_eq(w.tensors[i], t.tensors[i]);
  ASSERT_EQ(t.observations.size(), w.obs.size());
  for (size_t i = 0; i < w.obs.size(); ++i) expect_obs_eq(w.obs[i], t.observations[i], t);
  ASSERT_EQ(t.steps.size(), w.steps.size());
  for (size_t i = 0; i < w.steps.size(); ++i) {
    EXPECT_EQ(t.steps[i].step, w.steps[i].step);
    EXPECT_EQ(t.steps[i].source, w.steps[i].source);
    EXPECT_EQ(t.steps[i].time_ns, w.steps[i].time_ns);
    EXPECT_EQ(t.steps[i].first_seq, w.steps[i].first_seq);
  }
  ASSERT_EQ(t.loss_scales.size(), w.scales.size());
  for (size_t i = 0; i < w.scales.size(); ++i) {
    EXPECT_EQ(t.loss_scales[i].step, w.scales[i].step);
    EXPECT_EQ(t.loss_scales[i].scale, w.scales[i].scale);
    EXPECT_EQ(t.loss_scales[i].found_inf, w.scales[i].found_inf);
    EXPECT_EQ(t.loss_scales[i].next_scale, w.scales[i].next_scale);
    EXPECT_EQ(t.loss_scales[i].source, w.scales[i].source);
    EXPECT_EQ(t.loss_scales[i].time_ns, w.scales[i].time_ns);
  }
  ASSERT_EQ(t.weight_updates.size(), w.updates.size());
  for (size_t i = 0; i < w.updates.size(); ++i) {
    const auto& a = w.updates[i];
    const auto& b = t.weight_updates[i];
    EXPECT_EQ(a.step, b.step);
    EXPECT_EQ(a.tensor, b.tensor);
    EXPECT_EQ(a.master_dtype, b.master_dtype);
    EXPECT_EQ(a.elements, b.elements);
    EXPECT_EQ(a.changed, b.changed);
    EXPECT_EQ(a.bf16.stagnant, b.bf16.stagnant);
    EXPECT_EQ(a.bf16.lost_abs, b.bf16.lost_abs);
    EXPECT_EQ(a.bf16.delta_abs, b.bf16.delta_abs);
    EXPECT_EQ(a.fp16.stagnant, b.fp16.stagnant);
    EXPECT_EQ(a.fp16.lost_abs, b.fp16.lost_abs);
    EXPECT_EQ(a.fp16.delta_abs, b.fp16.delta_abs);
    EXPECT_EQ(a.ratio_hist, b.ratio_hist);
    EXPECT_EQ(a.watched, b.watched);
  }
  ASSERT_EQ(t.events.size(), w.events.size());
  for (size_t i = 0; i < w.events.size(); ++i) {
    EXPECT_EQ(t.events[i].step, w.events[i].step);
    EXPECT_EQ(t.events[i].time_ns, w.events[i].time_ns);
    EXPECT_EQ(t.events[i].level, w.events[i].level);
    EXPECT_EQ(t.events[i].text, w.events[i].text);
  }
  // The last non-None step source wins.
  StepSource last = StepSource::None;
  for (const auto& m : w.steps)
    if (m.source != StepSource::None) last = m.source;
  EXPECT_EQ(t.step_source, last);
}

class RoundTrip : public ::testing::TestWithParam<bool> {};

TEST_P(RoundTrip, EveryRecordKindEveryField) {
  const bool zstd = GetParam();
  const std::string path = temp_path(zstd ? "rt_zstd.fpst" : "rt_plain.fpst");
  const std::string meta = R"({"cmd":["python3","train.py"],"rank":3,"host":"h\u00e9"})";
  const Written w = write_everything(path, zstd, meta);
  Trace t;
  ReadError err;
  ASSERT_TRUE(read_trace(path, &t, &err)) << err.message;
  EXPECT_EQ(t.path, path);
  EXPECT_EQ(t.version_major, kFormatMajor);
  EXPECT_EQ(t.version_minor, kFormatMinor);
  EXPECT_EQ(t.metadata_json, meta);
  EXPECT_TRUE(t.clean_close);
  EXPECT_FALSE(t.truncated) << t.truncation_reason;
  EXPECT_EQ(t.dropped_bytes, 0u);
  EXPECT_EQ(t.unknown_chunks, 0u);
  EXPECT_TRUE(t.truncation_reason.empty());
  EXPECT_EQ(t.file_bytes, std::filesystem::file_size(path));
  check_everything(w, t);
}

INSTANTIATE_TEST_SUITE_P(Zstd, RoundTrip, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "zstd" : "plain"; });

TEST(RoundTrip, ZstdMakesTheFileSmallerAndChunksAreFlagged) {
  const std::string plain = temp_path("size_plain.fpst");
  const std::string packed = temp_path("size_zstd.fpst");
  write_everything(plain, false, "{}");
  write_everything(packed, true, "{}");
  const auto a = test::read_file(plain);
  const auto b = test::read_file(packed);
  EXPECT_LT(b.size(), a.size());
  // First chunk after the 26-byte header ("{}" metadata): flags byte at +1.
  ASSERT_GT(b.size(), 40u);
  EXPECT_EQ(a[26], 1);  // RECORDS
  EXPECT_EQ(a[27], 0);
  EXPECT_EQ(b[26], 1);
  EXPECT_EQ(b[27], 1);  // zstd
}

TEST(RoundTrip, EmptyTraceWithFooter) {
  const std::string path = temp_path("empty.fpst");
  std::string err;
  auto w = TraceWriter::open(path, "", WriterOptions{}, &err);
  ASSERT_TRUE(w) << err;
  EXPECT_TRUE(w->close());
  EXPECT_TRUE(w->close());  // idempotent
  Trace t;
  ReadError rerr;
  ASSERT_TRUE(read_trace(path, &t, &rerr)) << rerr.message;
  EXPECT_TRUE(t.clean_close);
  EXPECT_FALSE(t.truncated);
  EXPECT_TRUE(t.observations.empty());
  EXPECT_TRUE(t.metadata_json.empty());
  EXPECT_EQ(t.step_source, StepSource::None);
}

TEST(RoundTrip, FullStatsOfAnObservationWithoutHistogram) {
  Trace t;
  ObservationRecord r;
  r.stats.count = 9;
  r.stats.amax = 2.0f;
  const TensorStats s = t.full_stats(r);
  EXPECT_EQ(s.count, 9u);
  EXPECT_EQ(s.amax, 2.0f);
  for (int b = 0; b < kHistBins; ++b) EXPECT_EQ(s.hist[b], 0u);
}

TEST(Names, RoleAndStepSource) {
  EXPECT_STREQ(role_name(Role::A), "A");
  EXPECT_STREQ(role_name(Role::D), "D");
  EXPECT_STREQ(role_name(Role::Weight), "W");
  EXPECT_STREQ(step_source_name(StepSource::None), "none");
  EXPECT_STREQ(step_source_name(StepSource::Api), "api");
  EXPECT_STREQ(step_source_name(StepSource::Nvtx), "nvtx");
  EXPECT_STREQ(step_source_name(StepSource::LossScaleKernel), "loss_scale_kernel");
  EXPECT_STREQ(step_source_name(StepSource::OptimizerKernel), "optimizer_kernel");
  EXPECT_STREQ(step_source_name(StepSource::GemmPeriod), "gemm_period");
}

// Format 1.1: LOSS records (every value bit for bit) and the framework step source, through
// read_trace and TraceFile, with and without zstd; the footer counts the new kind (K = 7).
TEST(RoundTrip, LossRecordsAndFrameworkStepSource) {
  const double values[] = {2.302585092994046,
                           -0.0,
                           std::numeric_limits<double>::infinity(),
                           std::bit_cast<double>(uint64_t{0x7ff8000000000abcull}),  // NaN payload
                           std::numeric_limits<double>::denorm_min(),
                           1e300};
  for (const bool zstd : {false, true}) {
    const std::string path = temp_path(zstd ? "loss_zstd.fpst" : "loss_plain.fpst");
    WriterOptions opt;
    opt.zstd = zstd;
    opt.flush_bytes = 4096;
    std::string err;
    auto tw = TraceWriter::open(path, "{}", opt, &err);
    ASSERT_TRUE(tw) << err;
    std::vector<LossRecord> written;
    for (uint64_t s = 0; s < 400; ++s) {
      tw->step(StepMark{s, s == 0 ? StepSource::None : StepSource::Framework, 10 * s, 3 * s});
      for (uint64_t k = 0; k < 1 + s % 3; ++k) {  // 1..3 backward passes per step
        const LossRecord l{s, values[(s + k) % 6], 10 * s + k};
        tw->loss(l);
        written.push_back(l);
      }
    }
    ASSERT_TRUE(tw->close()) << tw->error();
    EXPECT_EQ(tw->records_written(), 400 + written.size());

    for (unsigned threads : {1u, 2u}) {
      Trace t;
      ReadError rerr;
      ASSERT_TRUE(read_trace(path, &t, &rerr, ReadOptions{threads})) << rerr.message;
      EXPECT_TRUE(t.clean_close) << t.truncation_reason;
      EXPECT_EQ(t.version_minor, kFormatMinor);
      EXPECT_EQ(t.unknown_records, 0u);
      EXPECT_EQ(t.step_source, StepSource::Framework);
      ASSERT_EQ(t.steps.size(), 400u);
      EXPECT_EQ(t.steps[0].source, StepSource::None);
      EXPECT_EQ(t.steps[399].source, StepSource::Framework);
      ASSERT_EQ(t.losses.size(), written.size());
      for (size_t i = 0; i < written.size(); ++i) {
        EXPECT_EQ(t.losses[i].step, written[i].step);
        EXPECT_EQ(bits(t.losses[i].value), bits(written[i].value)) << i;
        EXPECT_EQ(t.losses[i].time_ns, written[i].time_ns);
      }
    }
    ReadError rerr;
    auto f = TraceFile::open(path, &rerr);
    ASSERT_TRUE(f) << rerr.message;
    EXPECT_TRUE(f->footer_index_used()) << f->footer_note();
    Trace all;
    std::string why;
    ASSERT_TRUE(f->read_steps(0, 399, &all, &why)) << why;
    ASSERT_EQ(all.losses.size(), written.size());
    for (size_t i = 0; i < written.size(); ++i)
      EXPECT_EQ(bits(all.losses[i].value), bits(written[i].value)) << i;
    EXPECT_EQ(all.step_source, StepSource::Framework);
    size_t visited = 0;
    ASSERT_TRUE(f->for_each_in_steps(
        0, 399,
        [&](const ChunkRecords& c, RecordKind kind, uint32_t i) {
          if (kind == RecordKind::Loss) {
            EXPECT_EQ(c.losses[i].step, written[visited].step);
            ++visited;
          }
          return true;
        },
        &why))
        << why;
    EXPECT_EQ(visited, written.size());
    // A part: chunks are selected by the other records' steps (FORMAT.md 5.7), so a step's LOSS
    // records sealed into the next chunk, before its first STEP mark, may be left out.
    Trace part;
    ASSERT_TRUE(f->read_steps(100, 199, &part, &why)) << why;
    size_t want = 0;
    for (const LossRecord& l : written) want += l.step >= 100 && l.step <= 199;
    EXPECT_LE(part.losses.size(), want);
    EXPECT_GE(part.losses.size() + 3, want);
    for (const LossRecord& l : part.losses) EXPECT_TRUE(l.step >= 100 && l.step <= 199) << l.step;
    EXPECT_TRUE(f->verify());
  }
}

// The bytes of format 1.1's additions, written by hand from FORMAT.md: a framework step mark is
// `api` plus the refined source (a 1.0 reader reads "api"), a refined source this reader does not
// know keeps `api`, a base source beyond 1.0's list stays malformed, and a short LOSS record
// makes its chunk malformed.
TEST(RoundTrip, HandWrittenStepRefinementAndLossRecord) {
  auto record = [](std::vector<uint8_t>& payload, uint8_t tag, const std::vector<uint8_t>& body) {
    payload.push_back(tag);
    test::put_varint(payload, body.size());
    payload.insert(payload.end(), body.begin(), body.end());
  };
  auto step_body = [](uint64_t step, uint8_t source, int refined) {
    std::vector<uint8_t> b;
    test::put_varint(b, step);
    b.push_back(source);
    test::put_varint(b, 1000 + step);  // time_ns
    test::put_varint(b, 10 * step);    // first_seq
    if (refined >= 0) b.push_back(static_cast<uint8_t>(refined));
    return b;
  };
  std::vector<uint8_t> loss;
  test::put_varint(loss, 2);
  test::put_le(loss, std::bit_cast<uint64_t>(0.6931471805599453), 8);
  test::put_varint(loss, 77);

  std::vector<uint8_t> good;
  record(good, 3, step_body(1, 1, 6));    // framework
  record(good, 3, step_body(2, 1, 200));  // a later minor's refinement: stays api
  record(good, 7, loss);
  std::vector<uint8_t> file = test::make_header(1, 1, "");
  test::append_chunk(file, 1, 0, good);
  const std::string path = temp_path("refined.fpst");
  test::write_file(path, file);
  Trace t;
  ReadError rerr;
  ASSERT_TRUE(read_trace(path, &t, &rerr)) << rerr.message;
  ASSERT_EQ(t.steps.size(), 2u);
  EXPECT_EQ(t.steps[0].source, StepSource::Framework);
  EXPECT_EQ(t.steps[0].first_seq, 10u);
  EXPECT_EQ(t.steps[1].source, StepSource::Api);
  ASSERT_EQ(t.losses.size(), 1u);
  EXPECT_EQ(t.losses[0].step, 2u);
  EXPECT_EQ(t.losses[0].value, 0.6931471805599453);
  EXPECT_EQ(t.losses[0].time_ns, 77u);

  for (const auto& bad_record : {std::make_pair(uint8_t{3}, step_body(3, 6, -1)),
                                 std::make_pair(uint8_t{7}, std::vector<uint8_t>{2, 0, 0, 0})}) {
    std::vector<uint8_t> bad = good;
    record(bad, bad_record.first, bad_record.second);
    std::vector<uint8_t> f2 = test::make_header(1, 1, "");
    test::append_chunk(f2, 1, 0, good);
    test::append_chunk(f2, 1, 0, bad);
    test::write_file(path, f2);
    Trace t2;
    ASSERT_TRUE(read_trace(path, &t2, &rerr)) << rerr.message;
    EXPECT_TRUE(t2.truncated);
    EXPECT_EQ(t2.steps.size(), 2u) << "only the first chunk survives";
    EXPECT_EQ(t2.losses.size(), 1u);
  }
}

TEST(Names, FrameworkStepSource) {
  EXPECT_STREQ(step_source_name(StepSource::Framework), "framework");
}

// A chunk whose only step-bearing records are LOSS records (a flush right after a loss value,
// as a busy machine's flush timer makes it) has no indexed step range: the footer's entry for it
// must be (0, 0) like the reader's, or the trace reads as not cleanly closed.
TEST(RoundTrip, ChunkOfLossRecordsOnlyKeepsTheFooterIndexExact) {
  const std::string path = temp_path("loss_only_chunk.fpst");
  std::string err;
  auto tw = TraceWriter::open(path, "{}", WriterOptions{}, &err);
  ASSERT_TRUE(tw) << err;
  tw->step(StepMark{0, StepSource::Framework, 1, 0});
  ASSERT_TRUE(tw->flush());
  tw->loss(LossRecord{0, 2.5, 2});
  ASSERT_TRUE(tw->flush());  // a chunk holding one LOSS record and nothing else
  tw->step(StepMark{1, StepSource::Framework, 3, 0});
  tw->loss(LossRecord{1, 1.5, 4});
  ASSERT_TRUE(tw->close()) << tw->error();
  for (unsigned threads : {1u, 2u}) {
    Trace t;
    ReadError rerr;
    ASSERT_TRUE(read_trace(path, &t, &rerr, ReadOptions{threads})) << rerr.message;
    EXPECT_TRUE(t.clean_close) << t.truncation_reason;
    ASSERT_EQ(t.losses.size(), 2u);
  }
  ReadError ferr;
  auto f = TraceFile::open(path, &ferr);
  ASSERT_TRUE(f) << ferr.message;
  EXPECT_TRUE(f->clean_close());
}

}  // namespace
}  // namespace fpscope::trace

namespace {
// Removes this process's temporary trace directory after the run (children _exit without it).
class TempDirCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(
        std::filesystem::path(fpscope::trace::test::temp_path("x")).parent_path(), ec);
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new TempDirCleanup);
}  // namespace
