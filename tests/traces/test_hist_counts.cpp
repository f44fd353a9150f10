// HistCounts (Trace::hist_counts): 32-bit storage with an exact escape for counts >= 2^32 - 1,
// read as 64-bit values; and such counts through the writer and reader.
#include <gtest/gtest.h>

#include <numeric>

#include "fpscope/trace_io.h"
#include "fpscope/trace_model.h"
#include "trace_test_util.h"

namespace fpscope::trace {
namespace {

constexpr uint64_t kEsc = HistCounts::kEscape;  // 2^32 - 1

TEST(HistCounts, ReadsLikeAVectorOfUint64) {
  HistCounts c;
  EXPECT_TRUE(c.empty());
  const std::vector<uint64_t> v = {0,          1,          kEsc - 1, kEsc,     kEsc + 1, 7,
                                   1ull << 40, UINT64_MAX, 65536,    kEsc - 1, 3};
  for (uint64_t x : v) c.push_back(x);
  ASSERT_EQ(c.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(c[i], v[i]) << i;
  EXPECT_EQ(c.escaped_entries(), 4u);  // kEsc, kEsc + 1, 2^40, UINT64_MAX
  EXPECT_EQ(c.front(), 0u);
  EXPECT_EQ(c.back(), 3u);
  EXPECT_EQ(c.at(6), 1ull << 40);
  EXPECT_THROW(c.at(v.size()), std::out_of_range);
  // Range-for and iterator arithmetic see the exact values.
  std::vector<uint64_t> seen(c.begin(), c.end());
  EXPECT_EQ(seen, v);
  EXPECT_EQ(c.end() - c.begin(), static_cast<std::ptrdiff_t>(v.size()));
  EXPECT_EQ(*(c.begin() + 7), UINT64_MAX);
  uint64_t sum = 0;
  for (uint64_t x : c) sum += x >> 32;
  EXPECT_EQ(sum, (kEsc >> 32) + ((kEsc + 1) >> 32) + (1ull << 8) + (UINT64_MAX >> 32));
}

TEST(HistCounts, SetResizeAppendAndEquality) {
  HistCounts c = {5, 6, 7, 8};
  c.set(1, 1ull << 33);
  c.set(3, kEsc);
  EXPECT_EQ(c[1], 1ull << 33);
  EXPECT_EQ(c[3], kEsc);
  EXPECT_EQ(c.escaped_entries(), 2u);
  c.set(1, 9);  // back to a small value: the escape is dropped
  EXPECT_EQ(c[1], 9u);
  EXPECT_EQ(c.escaped_entries(), 1u);
  c.set(3, 1ull << 50);  // escaped -> escaped
  EXPECT_EQ(c[3], 1ull << 50);
  EXPECT_EQ(c.escaped_entries(), 1u);
  c.resize(6);  // grows with zeros
  EXPECT_EQ(c[4], 0u);
  EXPECT_EQ(c[5], 0u);
  c.resize(3);  // shrinking drops the escape at index 3
  EXPECT_EQ(c.escaped_entries(), 0u);
  c.resize(4);
  EXPECT_EQ(c[3], 0u);
  const uint64_t more[] = {kEsc + 5, 2, UINT64_MAX};
  c.append(more, 3);
  EXPECT_EQ(c.size(), 7u);
  EXPECT_EQ(c[4], kEsc + 5);
  EXPECT_EQ(c[6], UINT64_MAX);
  c.pop_back();
  EXPECT_EQ(c.size(), 6u);
  EXPECT_EQ(c.escaped_entries(), 1u);
  HistCounts d = {5, 9, 7, 0, kEsc + 5, 2};
  EXPECT_TRUE(c == d);
  d.set(4, kEsc + 6);
  EXPECT_FALSE(c == d);
  c.clear();
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.escaped_entries(), 0u);
  // 4 bytes per entry.
  HistCounts big;
  big.reserve(1000);
  EXPECT_EQ(big.memory_bytes(), 1000 * sizeof(uint32_t));
}

TEST(HistCounts, CountsOfFourBillionAndMoreSurviveTheTrace) {
  const std::string path = test::temp_path("hist_big.fpst");
  std::string err;
  auto w = TraceWriter::open(path, "{}", WriterOptions{}, &err);
  ASSERT_TRUE(w) << err;
  w->define_tensor(test::make_tensor(0));
  Observation o;
  const uint64_t counts[] = {kEsc - 1, kEsc, kEsc + 1, 1ull << 40, UINT64_MAX, 1};
  const int bins[] = {3, 100, 101, 500, 1000, 1023};
  for (int i = 0; i < 6; ++i) o.stats.hist[bins[i]] = counts[i];
  w->observe(o);
  o.seq = 1;
  o.stats.hist[100] = 12;  // a second observation, without escapes at that bin
  w->observe(o);
  ASSERT_TRUE(w->close());
  for (unsigned threads : {1u, 2u}) {
    Trace t;
    ReadError e;
    ASSERT_TRUE(read_trace(path, &t, &e, ReadOptions{threads})) << e.message;
    ASSERT_TRUE(t.clean_close) << t.truncation_reason;
    ASSERT_EQ(t.observations.size(), 2u);
    EXPECT_EQ(t.hist_counts.size(), 12u);
    EXPECT_EQ(t.hist_counts.escaped_entries(), 7u);
    const TensorStats s = t.full_stats(t.observations[0]);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(s.hist[bins[i]], counts[i]) << bins[i];
    EXPECT_EQ(t.full_stats(t.observations[1]).hist[100], 12u);
    const TraceModel m(t);
    const DenseHist h = m.histogram_range(0, 0, TraceModel::kNoStep);
    EXPECT_EQ(h[100], kEsc + 12);
    EXPECT_EQ(h[500], 2ull << 40);
  }
}

}  // namespace
}  // namespace fpscope::trace
