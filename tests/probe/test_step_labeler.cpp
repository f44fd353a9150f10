// The step labeler (probe/src/step_labeler.h) driven by signature sequences, without a trace
// writer: a listener writes down every decision, and the tests compare them with labels worked
// out by hand from the sequence (step k = the k-th iteration, name = position in the period).
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "step_labeler.h"

using namespace fpscope::probe;
using fpscope::trace::StepSource;

namespace {

// Writes down the labeler's decisions; like the recorder, a warning is a record, held while calls
// are held.
struct Log final : StepLabeler::Listener {
  StepLabeler* labeler = nullptr;
  std::vector<std::string> events;
  std::vector<std::string> warnings;
  size_t held = 0;  // calls held and not released yet

  void call_held(size_t index) override {
    EXPECT_EQ(index, held);
    ++held;
  }
  void step_begins(const StepLabeler::StepStart& s) override {
    using At = StepLabeler::StepStart::At;
    std::string e = "step " + std::to_string(s.step);
    if (s.at == At::Live) e += " live@" + std::to_string(s.first_seq);
    if (s.at == At::HeldCall) e += " @held" + std::to_string(s.held);
    if (s.at == At::RunStart) e += " start";
    events.push_back(e + " " + fpscope::trace::step_source_name(s.source));
  }
  void call_released(size_t index, uint64_t step, const std::string& name,
                     const std::string&) override {
    events.push_back("call " + std::to_string(index) + ": " + std::to_string(step) + " " + name);
  }
  void record_released(size_t index, uint64_t step) override {
    events.push_back("record " + std::to_string(index) + ": " + std::to_string(step));
  }
  void released_all() override {
    held = 0;
    events.push_back("released");
  }
  void warning(const std::string& text) override {
    warnings.push_back(text);
    if (labeler->hold_record()) events.push_back("warning held");
  }
};

struct Labelling {
  explicit Labelling(StepLabeler::Options o = {}) : labeler(o) { log.labeler = &labeler; }
  // Feeds `sig` (full and coarse alike unless `coarse` is given) and returns its label.
  StepLabeler::Label feed(uint64_t sig, const std::string& scope = "") {
    return labeler.feed(CallSignature{sig, sig}, scope, seq++, log);
  }
  StepLabeler::Label feed_coarse(uint64_t full, uint64_t coarse) {
    return labeler.feed(CallSignature{full, coarse}, "", seq++, log);
  }
  std::string label(uint64_t sig) {
    const StepLabeler::Label l = feed(sig);
    return l.held ? "held" : std::to_string(l.step) + " " + l.name;
  }
  StepLabeler labeler;
  Log log;
  uint64_t seq = 0;
};

// The events of a release of `n` held calls labelled by hand: period `period` after `offset`
// warm-up calls, starting at step 0.
std::vector<std::string> released(size_t n, size_t offset, size_t period) {
  std::vector<std::string> e = {"step 0 @held0 gemm_period"};
  for (size_t i = 0; i < n; ++i) {
    if (i < offset) {
      e.push_back("call " + std::to_string(i) + ": 0 gemm#w" + std::to_string(i));
      continue;
    }
    const size_t step = (i - offset) / period, pos = (i - offset) % period;
    if (pos == 0 && step > 0)
      e.push_back("step " + std::to_string(step) + " @held" + std::to_string(i) + " gemm_period");
    e.push_back("call " + std::to_string(i) + ": " + std::to_string(step) + " gemm#" +
                std::to_string(pos));
  }
  e.push_back("released");
  return e;
}

TEST(StepLabeler, PeriodThreeAfterAnEvalPass) {
  Labelling r;
  // An evaluation pass (two GEMMs of other shapes), then iterations of 3 GEMMs: 7, 8, 9.
  const std::vector<uint64_t> seq = {101, 102, 7, 8, 9, 7, 8, 9, 7, 8, 9, 7, 8, 9, 7, 8};
  for (size_t i = 0; i + 1 < seq.size(); ++i) EXPECT_TRUE(r.feed(seq[i]).held) << i;
  // The 16th call: a suffix of 14 calls repeats 3 calls: every held call is released at once.
  const StepLabeler::Label last = r.feed(seq.back());
  EXPECT_TRUE(last.held);
  EXPECT_EQ(last.step, 0u);  // provisional
  EXPECT_EQ(r.log.events, released(16, 2, 3));
  EXPECT_FALSE(r.labeler.detecting());
  // Tracking: the step goes on where the held calls left it (call 15 was gemm#1 of step 4).
  r.log.events.clear();
  EXPECT_EQ(r.label(9), "4 gemm#2");
  EXPECT_EQ(r.label(7), "5 gemm#0");
  EXPECT_EQ(r.log.events, std::vector<std::string>{"step 5 live@17 gemm_period"});
  EXPECT_EQ(r.label(55), "5 gemm#x0");  // an extra call (another shape) inside the step
  EXPECT_EQ(r.label(8), "5 gemm#1");
  EXPECT_EQ(r.label(9), "5 gemm#2");
  EXPECT_EQ(r.labeler.step(), 5u);
}

TEST(StepLabeler, PartialStepsWhileTrackingAndAtTheEnd) {
  Labelling r;
  for (int k = 0; k < 4; ++k)
    for (uint64_t s : {1, 2, 3, 4}) r.feed(s);  // the 16th call decides (prefix period 4)
  EXPECT_EQ(r.log.events, released(16, 0, 4));
  r.log.events.clear();
  EXPECT_EQ(r.label(1), "4 gemm#0");
  EXPECT_EQ(r.label(2), "4 gemm#1");
  // The step ends early (a forward-only pass): the period starts again, a new step at gemm#0.
  EXPECT_EQ(r.label(1), "5 gemm#0");
  EXPECT_EQ(r.label(2), "5 gemm#1");
  EXPECT_EQ(r.log.events,
            (std::vector<std::string>{"step 4 live@16 gemm_period", "step 5 live@18 gemm_period"}));

  // A run that ends during detection with a partial last step: finish() labels the held calls
  // with the period it can decide (2 repetitions are enough at the end).
  Labelling e;
  for (uint64_t s : {1, 2, 3, 4, 1, 2, 3, 4, 1, 2}) EXPECT_TRUE(e.feed(s).held);
  EXPECT_TRUE(e.log.events.empty());
  e.labeler.finish(e.log);
  EXPECT_EQ(e.log.events, released(10, 0, 4));
  EXPECT_EQ(e.labeler.step(), 2u);
}

TEST(StepLabeler, HeldRecordsAreReleasedWithTheStepOfTheCallBefore) {
  Labelling r;
  EXPECT_FALSE(r.labeler.hold_record());  // nothing held: written at once
  const std::vector<uint64_t> unit = {1, 2, 3, 4, 5};
  size_t fed = 0;
  for (int k = 0; k < 3; ++k)
    for (uint64_t s : unit) {
      r.feed(s);
      ++fed;
      if (fed == 2 || fed == 7) {
        EXPECT_TRUE(r.labeler.hold_record());  // e.g. a loss scale
      }
    }
  EXPECT_TRUE(r.log.events.empty());  // 15 calls: period 5 repeated 3 times, but under 16 calls
  r.feed(1);                          // 16: the prefix period decides
  std::vector<std::string> want = released(16, 0, 5);
  // Record 0 came after 2 calls (step 0), record 1 after 7 calls (call 6 is in step 1).
  want.insert(want.begin() + 3, "record 0: 0");   // after "call 1"
  want.insert(want.begin() + 10, "record 1: 1");  // after "call 6"
  EXPECT_EQ(r.log.events, want);
  EXPECT_FALSE(r.labeler.hold_record());  // tracking: records are written at once
}

TEST(StepLabeler, ScopesNameCallsPerStep) {
  Labelling r;
  for (int k = 0; k < 5; ++k) {
    r.feed(1, "attn");
    r.feed(1, "attn");
    r.feed(2);
  }
  r.feed(1, "attn");  // the 16th call: period 3 decided
  // Calls of one scope in a step: "attn", "attn#1"; the count starts again every step.
  std::vector<std::string> want = {"step 0 @held0 gemm_period"};
  for (size_t i = 0; i < 16; ++i) {
    const size_t step = i / 3, pos = i % 3;
    if (pos == 0 && step > 0)
      want.push_back("step " + std::to_string(step) + " @held" + std::to_string(i) +
                     " gemm_period");
    const char* name = pos == 0 ? "attn" : pos == 1 ? "attn#1" : "gemm#2";
    want.push_back("call " + std::to_string(i) + ": " + std::to_string(step) + " " + name);
  }
  want.push_back("released");
  EXPECT_EQ(r.log.events, want);
  const StepLabeler::Label l = r.feed(1, "attn");  // tracked, in step 5 after its "attn"
  EXPECT_EQ(l.step, 5u);
  EXPECT_EQ(l.name, "attn#1");
}

TEST(StepLabeler, WindowFullWithoutPeriodWarnsOnce) {
  Labelling r({.mode = StepMode::Auto, .window = 8});
  for (uint64_t s = 1; s <= 8; ++s) r.feed(s);
  std::vector<std::string> want = {"warning held"};
  for (size_t i = 0; i < 8; ++i)
    want.push_back("call " + std::to_string(i) + ": 0 gemm#" + std::to_string(i));
  want.push_back("record 0: 0");  // the warning, after every call it counted
  want.push_back("released");
  EXPECT_EQ(r.log.events, want);
  ASSERT_EQ(r.log.warnings.size(), 1u);
  EXPECT_EQ(r.log.warnings[0].rfind("no repeating GEMM sequence in 8 calls", 0), 0u);
  EXPECT_TRUE(r.labeler.detecting());  // still looking
  r.log.events.clear();
  for (uint64_t s = 11; s <= 18; ++s) r.feed(s);
  EXPECT_EQ(r.log.warnings.size(), 1u);            // once
  EXPECT_EQ(r.log.events.size(), 9u);              // 8 calls and "released"
  EXPECT_EQ(r.log.events[0], "call 0: 0 gemm#8");  // the ordinal goes on: step 0 never ended
}

TEST(StepLabeler, ShapesThatVaryEveryStepUseTheCoarseSequence) {
  Labelling r({.mode = StepMode::Auto, .window = 16});
  // Full signatures never repeat (a new batch size every step); the op sequence 1, 2, 3 does.
  for (uint64_t i = 0; i < 16; ++i) r.feed_coarse(1000 + i, 1 + i % 3);
  EXPECT_EQ(r.log.events, released(16, 0, 3));
  EXPECT_TRUE(r.log.warnings.empty());
  r.log.events.clear();
  const StepLabeler::Label l = r.feed_coarse(5000, 2);  // tracked by the coarse signature
  EXPECT_FALSE(l.held);
  EXPECT_EQ(l.step, 5u);
  EXPECT_EQ(l.name, "gemm#1");
}

TEST(StepLabeler, LostPeriodHoldsCallsAgain) {
  Labelling r;
  for (int k = 0; k < 16; ++k) r.feed(1 + k % 2);  // period 2 (decided at the 8th call)
  ASSERT_FALSE(r.labeler.detecting());
  r.log.events.clear();
  // More than 2 * period + 16 calls out of the period: the period is lost.
  int labelled = 0;
  while (labelled < 100 && !r.feed(77).held) ++labelled;
  EXPECT_EQ(labelled, 2 * 2 + 16);
  ASSERT_EQ(r.log.warnings.size(), 1u);
  EXPECT_EQ(r.log.warnings[0].rfind("step period lost", 0), 0u);
  EXPECT_TRUE(r.log.events.empty());  // the warning was written at once (nothing held then)
  EXPECT_TRUE(r.labeler.detecting());
}

TEST(StepLabeler, ExplicitStepsTakeOver) {
  Labelling r;
  r.feed(1);
  r.feed(2);
  EXPECT_TRUE(r.labeler.hold_record());
  // fpscope_step(): the held calls are released in step 0 (no period), step 1 begins.
  EXPECT_TRUE(r.labeler.mark(StepSource::Api, r.seq, r.log));
  EXPECT_EQ(r.log.events,
            (std::vector<std::string>{"call 0: 0 gemm#0", "call 1: 0 gemm#1", "record 0: 0",
                                      "released", "step 0 start api", "step 1 live@2 api"}));
  EXPECT_EQ(r.label(1), "1 gemm#0");
  EXPECT_EQ(r.label(1), "1 gemm#1");  // explicit steps: the ordinal in the step
  EXPECT_FALSE(r.labeler.mark(StepSource::Nvtx, r.seq, r.log));  // the API owns the steps
  EXPECT_TRUE(r.labeler.mark(StepSource::Api, r.seq, r.log));
  EXPECT_EQ(r.label(1), "2 gemm#0");
}

TEST(StepLabeler, NvtxFirstRangeStartsStepZeroAndApiWins) {
  Labelling r;
  EXPECT_FALSE(r.labeler.mark(StepSource::Nvtx, 0, r.log));  // before any call: starts step 0
  EXPECT_EQ(r.log.events, std::vector<std::string>{"step 0 start nvtx"});
  EXPECT_EQ(r.label(3), "0 gemm#0");
  EXPECT_TRUE(r.labeler.mark(StepSource::Nvtx, r.seq, r.log));
  EXPECT_TRUE(r.labeler.mark(StepSource::Api, r.seq, r.log));  // the API always wins
  EXPECT_FALSE(r.labeler.mark(StepSource::Nvtx, r.seq, r.log));
  EXPECT_EQ(r.labeler.step(), 2u);
}

TEST(StepLabeler, StepModes) {
  Labelling api({.mode = StepMode::Api, .window = 4096});
  EXPECT_FALSE(api.labeler.detecting());
  EXPECT_EQ(api.label(1), "0 gemm#0");  // labelled at once, never held
  EXPECT_FALSE(api.labeler.mark(StepSource::Nvtx, api.seq, api.log));
  EXPECT_TRUE(api.labeler.mark(StepSource::Api, api.seq, api.log));
  Labelling none({.mode = StepMode::None, .window = 4096});
  EXPECT_FALSE(none.labeler.mark(StepSource::Api, 0, none.log));
  EXPECT_EQ(none.label(1), "0 gemm#0");
  Labelling period({.mode = StepMode::Period, .window = 4096});
  EXPECT_TRUE(period.feed(1).held);
  EXPECT_FALSE(period.labeler.mark(StepSource::Api, period.seq, period.log));
  EXPECT_TRUE(period.log.events.empty());
}

TEST(StepLabeler, ForkedChildSearchesAgain) {
  Labelling r;
  for (int k = 0; k < 16; ++k) r.feed(1 + k % 4);
  ASSERT_FALSE(r.labeler.detecting());
  r.labeler.after_fork(false);  // a child that does not record: nothing changes
  EXPECT_FALSE(r.labeler.detecting());
  r.labeler.after_fork(true);
  EXPECT_TRUE(r.labeler.detecting());
  r.log.held = 0;
  EXPECT_TRUE(r.feed(1).held);  // held again, as held call 0
}

}  // namespace
