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
  std::vector<uint64_t> seq = {101, 102};
  for (int k = 0; k < 10; ++k) seq.insert(seq.end(), {7, 8, 9});
  for (size_t i = 0; i + 1 < seq.size(); ++i) EXPECT_TRUE(r.feed(seq[i]).held) << i;
  // The 32nd call: a suffix of 30 calls repeats 3 calls kEarlyRepeats times and more: every held
  // call is released at once.
  const StepLabeler::Label last = r.feed(9);
  EXPECT_TRUE(last.held);
  EXPECT_EQ(last.step, 0u);  // provisional
  EXPECT_EQ(r.log.events, released(32, 2, 3));
  EXPECT_FALSE(r.labeler.detecting());
  // Tracking: the step goes on where the held calls left it (call 31 was gemm#2 of step 9).
  r.log.events.clear();
  EXPECT_EQ(r.label(7), "10 gemm#0");
  EXPECT_EQ(r.log.events, std::vector<std::string>{"step 10 live@32 gemm_period"});
  EXPECT_EQ(r.label(55), "10 gemm#x0");  // an extra call (another shape) inside the step
  EXPECT_EQ(r.label(8), "10 gemm#1");
  EXPECT_EQ(r.label(9), "10 gemm#2");
  EXPECT_EQ(r.labeler.step(), 10u);
}

TEST(StepLabeler, PartialStepsWhileTrackingAndAtTheEnd) {
  Labelling r;
  for (int k = 0; k < 8; ++k)
    for (uint64_t s : {1, 2, 3, 4}) r.feed(s);  // the 32nd call decides (prefix period 4, 8 times)
  EXPECT_EQ(r.log.events, released(32, 0, 4));
  r.log.events.clear();
  EXPECT_EQ(r.label(1), "8 gemm#0");
  EXPECT_EQ(r.label(2), "8 gemm#1");
  // The step ends early (a forward-only pass): the period starts again, a new step at gemm#0.
  EXPECT_EQ(r.label(1), "9 gemm#0");
  EXPECT_EQ(r.label(2), "9 gemm#1");
  EXPECT_EQ(r.log.events,
            (std::vector<std::string>{"step 8 live@32 gemm_period", "step 9 live@34 gemm_period"}));

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
  for (int k = 0; k < 8; ++k)
    for (uint64_t s : unit) {
      if (fed == 39) {
        EXPECT_TRUE(r.log.events.empty());  // period 5 repeated 7 times and more
      }
      r.feed(s);
      ++fed;
      if (fed == 2 || fed == 7) {
        EXPECT_TRUE(r.labeler.hold_record());  // e.g. a loss scale
      }
    }
  // The 40th call: 8 repetitions, the prefix period decides.
  std::vector<std::string> want = released(40, 0, 5);
  // Record 0 came after 2 calls (step 0), record 1 after 7 calls (call 6 is in step 1).
  want.insert(want.begin() + 3, "record 0: 0");   // after "call 1"
  want.insert(want.begin() + 10, "record 1: 1");  // after "call 6"
  EXPECT_EQ(r.log.events, want);
  EXPECT_FALSE(r.labeler.hold_record());  // tracking: records are written at once
}

TEST(StepLabeler, ScopesNameCallsPerStep) {
  Labelling r;
  for (int k = 0; k < 8; ++k) {
    r.feed(1, "attn");
    r.feed(1, "attn");
    r.feed(2);  // the 24th call: period 3 decided (not 1: the "2" between would be a whole step)
  }
  // Calls of one scope in a step: "attn", "attn#1"; the count starts again every step.
  std::vector<std::string> want = {"step 0 @held0 gemm_period"};
  for (size_t i = 0; i < 24; ++i) {
    const size_t step = i / 3, pos = i % 3;
    if (pos == 0 && step > 0)
      want.push_back("step " + std::to_string(step) + " @held" + std::to_string(i) +
                     " gemm_period");
    const char* name = pos == 0 ? "attn" : pos == 1 ? "attn#1" : "gemm#2";
    want.push_back("call " + std::to_string(i) + ": " + std::to_string(step) + " " + name);
  }
  want.push_back("released");
  EXPECT_EQ(r.log.events, want);
  EXPECT_EQ(r.feed(1, "attn").name, "attn");  // tracked, in step 8
  const StepLabeler::Label l = r.feed(1, "attn");
  EXPECT_EQ(l.step, 8u);
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
  for (int k = 0; k < 32; ++k) r.feed(1 + k % 4);
  ASSERT_FALSE(r.labeler.detecting());
  r.labeler.after_fork(false);  // a child that does not record: nothing changes
  EXPECT_FALSE(r.labeler.detecting());
  r.labeler.after_fork(true);
  EXPECT_TRUE(r.labeler.detecting());
  r.log.held = 0;
  EXPECT_TRUE(r.feed(1).held);  // held again, as held call 0
}

// ---- Periods of real training-loop shapes, without any framework signal ----

// The step of every call of `seq` (full and coarse signatures from `coarse`, or equal), fed and
// finished: what the trace would say.
std::vector<uint64_t> steps_of(const std::vector<uint64_t>& seq,
                               const std::vector<uint64_t>& coarse = {}) {
  struct Steps final : StepLabeler::Listener {
    std::vector<uint64_t> step;  // per call
    void call_held(size_t) override {}
    void step_begins(const StepLabeler::StepStart&) override {}
    void call_released(size_t, uint64_t s, const std::string&, const std::string&) override {
      step.push_back(s);
    }
    void record_released(size_t, uint64_t) override {}
    void released_all() override {}
    void warning(const std::string&) override {}
  } l;
  StepLabeler labeler({.mode = StepMode::Auto, .window = 4096});
  for (size_t i = 0; i < seq.size(); ++i) {
    const StepLabeler::Label lab =
        labeler.feed(CallSignature{seq[i], coarse.empty() ? seq[i] : coarse[i]}, "", i, l);
    if (!lab.held) l.step.push_back(lab.step);
  }
  labeler.finish(l);
  EXPECT_EQ(l.step.size(), seq.size());
  return l.step;
}

// `iterations` copies of `body`, with `between(k)` appended after iteration k (an eval pass).
std::vector<uint64_t> loop(const std::vector<uint64_t>& body, size_t iterations,
                           std::vector<uint64_t> (*between)(size_t) = nullptr,
                           std::vector<size_t>* first = nullptr) {
  std::vector<uint64_t> s;
  for (size_t k = 0; k < iterations; ++k) {
    if (first) first->push_back(s.size());
    s.insert(s.end(), body.begin(), body.end());
    if (between) {
      const std::vector<uint64_t> b = between(k);
      s.insert(s.end(), b.begin(), b.end());
    }
  }
  return s;
}

std::vector<uint64_t> repeat(uint64_t sig, size_t n) {
  return std::vector<uint64_t>(n, sig);
}

void append(std::vector<uint64_t>& s, const std::vector<uint64_t>& t) {
  s.insert(s.end(), t.begin(), t.end());
}

// Every call of iteration k in step k: the iteration begins at first[k].
void expect_iterations(const std::vector<uint64_t>& steps, const std::vector<size_t>& first) {
  for (size_t k = 0; k < first.size(); ++k) {
    const size_t end = k + 1 < first.size() ? first[k + 1] : steps.size();
    for (size_t i = first[k]; i < end; ++i) ASSERT_EQ(steps[i], k) << "call " << i;
  }
}

// An attention layer as PyTorch's CPU bmm issues it: one sgemm per batch and head.
std::vector<uint64_t> attention_iteration() {
  std::vector<uint64_t> it;
  for (int layer = 0; layer < 2; ++layer) {  // forward: in_proj, QK^T x 8, AV x 8, out_proj, FFN
    it.push_back(1);
    append(it, repeat(2, 8));
    append(it, repeat(3, 8));
    append(it, {4, 5, 6});
  }
  it.push_back(7);                           // the head
  for (int layer = 0; layer < 2; ++layer) {  // backward
    append(it, {8, 9, 10, 11});
    append(it, repeat(12, 8));
    append(it, repeat(2, 8));
    append(it, repeat(3, 8));
    append(it, {13, 14});
  }
  return it;
}

TEST(StepPeriod, RunOfIdenticalBmmCallsInsideTheIteration) {
  std::vector<size_t> first;
  const std::vector<uint64_t> s = loop(attention_iteration(), 20, nullptr, &first);
  const std::vector<uint64_t> steps = steps_of(s);
  EXPECT_EQ(steps.back(), 19u);
  expect_iterations(steps, first);
  // The run alone is no step: fit_period leaves the rest of the iteration as extras.
  EXPECT_FALSE(fit_period(s, 1, 1).explains(2));
  EXPECT_EQ(best_period(s, 2).period, attention_iteration().size());
}

TEST(StepPeriod, NIdenticalLayersAtTheStart) {
  // 6 identical layers of 3 GEMMs open every iteration (no call before them), then the head and
  // the backward pass: the layer repeats 6 times before anything else is seen.
  std::vector<uint64_t> it;
  for (int l = 0; l < 6; ++l) append(it, {10, 11, 12});
  it.push_back(20);
  for (int l = 0; l < 6; ++l) append(it, {21, 22, 23});
  std::vector<size_t> first;
  const std::vector<uint64_t> s = loop(it, 10, nullptr, &first);
  const std::vector<uint64_t> steps = steps_of(s);
  EXPECT_EQ(steps.back(), 9u);
  expect_iterations(steps, first);
}

TEST(StepPeriod, NIdenticalSingleGemmLayers) {
  std::vector<uint64_t> it = repeat(1, 4);  // stacked.py: 4 blocks of one Linear each
  append(it, {2, 3, 4});
  for (int l = 0; l < 4; ++l) append(it, {5, 6});
  std::vector<size_t> first;
  const std::vector<uint64_t> s = loop(it, 8, nullptr, &first);
  const std::vector<uint64_t> steps = steps_of(s);
  EXPECT_EQ(steps.back(), 7u);
  expect_iterations(steps, first);
}

TEST(StepPeriod, RnnTimeSteps) {
  // Input projection, 9 time steps of the hidden GEMM per layer, then backward through time.
  std::vector<uint64_t> it = {1};
  append(it, repeat(2, 9));
  it.push_back(3);
  append(it, repeat(4, 9));
  it.push_back(5);
  for (int t = 0; t < 9; ++t) append(it, {6, 7});
  append(it, {8, 9});
  for (int t = 0; t < 9; ++t) append(it, {6, 7});
  std::vector<size_t> first;
  const std::vector<uint64_t> s = loop(it, 10, nullptr, &first);
  const std::vector<uint64_t> steps = steps_of(s);
  EXPECT_EQ(steps.back(), 9u);
  expect_iterations(steps, first);
}

TEST(StepPeriod, EvalPassEveryThirdStepBelongsToItsStep) {
  // 9 iterations of 5 GEMMs; after every 3rd an eval pass of 2 GEMMs of another batch size.
  std::vector<size_t> first;
  const std::vector<uint64_t> s = loop(
      {1, 2, 3, 4, 5}, 9,
      [](size_t k) {
        return (k + 1) % 3 == 0 ? std::vector<uint64_t>{6, 7} : std::vector<uint64_t>{};
      },
      &first);
  const std::vector<uint64_t> steps = steps_of(s);
  EXPECT_EQ(steps.back(), 8u);
  expect_iterations(steps, first);  // the eval calls: in the step before them
  const PeriodFit f = fit_period(s, 0, 5);
  EXPECT_EQ(f.steps, 9u);
  EXPECT_EQ(f.extras, 6u);
  EXPECT_EQ(f.extra_runs, 3u);
}

TEST(StepPeriod, SequenceLengthChangesBetweenSteps) {
  // The sizes change every step (full signatures never repeat), the op sequence does not.
  std::vector<uint64_t> full, coarse;
  std::vector<size_t> first;
  for (uint64_t k = 0; k < 8; ++k) {
    first.push_back(full.size());
    for (uint64_t op : {1, 2, 2, 2, 3, 4, 4}) {
      full.push_back(1000 * (k + 1) + op);
      coarse.push_back(op);
    }
  }
  const std::vector<uint64_t> steps = steps_of(full, coarse);
  EXPECT_EQ(steps.back(), 7u);
  expect_iterations(steps, first);
}

TEST(StepPeriod, ContradictedPeriodIsNotTaken) {
  // 1 2 1 2 1 2 then 1 3: period 2 holds for 6 calls and a call inside the iteration contradicts
  // it; the period that explains the whole window is 4 (1 2 1 2 1 3 ... is not periodic).
  const std::vector<uint64_t> s = {1, 2, 1, 2, 1, 3, 1, 2, 1, 2, 1, 3, 1, 2, 1, 2, 1, 3};
  EXPECT_TRUE(fit_period(s, 0, 2).contradicted);
  EXPECT_EQ(best_period(s, 2).period, 6u);
}

}  // namespace
