#include "step_labeler.h"

#include <cstdint>
#include <utility>

#include "log.h"

namespace fpscope::probe {

using trace::StepSource;

namespace {

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}
uint64_t hash_str(const char* s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ull;
  return h;
}

}  // namespace

CallSignature call_signature(const GemmDesc& d, const std::string& scope) {
  const uint64_t head = mix(mix(hash_str(d.op), static_cast<uint64_t>(d.sig.transa)),
                            static_cast<uint64_t>(d.sig.transb));
  uint64_t full = head;
  for (int64_t v : {d.sig.m, d.sig.n, d.sig.k, d.sig.batch})
    full = mix(full, static_cast<uint64_t>(v));
  uint64_t tail[2] = {full, head};  // the dtypes, layout and scope go into both
  const uint64_t scope_hash = scope.empty() ? 0 : hash_str(scope.c_str());
  for (uint64_t& h : tail) {
    h = mix(h, static_cast<uint64_t>(d.layout));
    for (int i = 0; i < d.num_operands; ++i)
      h = mix(h, static_cast<uint64_t>(d.operands[i].dtype) * 8 +
                     static_cast<uint64_t>(d.operands[i].role));
    if (!scope.empty()) h = mix(h, scope_hash);
  }
  return CallSignature{tail[0], tail[1]};
}

StepLabeler::StepLabeler(Options o)
    : opt_(o),
      phase_(o.mode == StepMode::None || o.mode == StepMode::Api ? Phase::Off : Phase::Detect),
      search_(o.window) {}

std::string StepLabeler::name(const std::string& scope, long ordinal) {
  if (!scope.empty()) {
    const uint32_t j = scope_counts_[scope]++;
    return j == 0 ? scope : scope + "#" + std::to_string(j);
  }
  if (ordinal >= 0) return "gemm#" + std::to_string(ordinal);
  return "gemm#x" + std::to_string(extras_++);
}

void StepLabeler::begin_live(uint64_t first_seq, Listener& l) {
  ++step_;
  ordinal_ = 0;
  extras_ = 0;
  scope_counts_.clear();
  l.step_begins(StepStart{
      .at = StepStart::At::Live, .step = step_, .source = source_, .first_seq = first_seq});
}

StepLabeler::Label StepLabeler::feed(const CallSignature& sig, const std::string& scope,
                                     uint64_t seq, Listener& l) {
  switch (phase_) {
    case Phase::Off:
      return Label{.step = step_, .name = name(scope, static_cast<long>(ordinal_++))};
    case Phase::Tracking: {
      const StepTracker::Label t = tracker_.next(coarse_ ? sig.coarse : sig.full);
      if (t.new_step) begin_live(seq, l);
      if (!t.lost) return Label{.step = step_, .name = name(scope, t.ordinal)};
      l.warning("step period lost (too many calls out of the pattern); re-detecting");
      phase_ = Phase::Detect;
      break;  // held below
    }
    case Phase::Detect:
      break;
  }
  const uint64_t provisional = step_;
  held_.push_back(scope);
  l.call_held(held_.size() - 1);
  if (std::optional<PeriodDecision> d = search_.add(sig.full, sig.coarse)) {
    if (d->window_full && d->result.period == 0 && !no_period_warned_) {
      no_period_warned_ = true;
      l.warning("no repeating GEMM sequence in " + std::to_string(held_.size()) +
                " calls: steps are unknown and every call is measured; mark steps "
                "with fpscope.step() or an NVTX range (FPSCOPE_STEP_RANGE)");
      log(LogLevel::Warn, "no repeating GEMM sequence in %zu calls; see the trace's events",
          held_.size());
    }
    commit(*d, l);
  }
  return Label{.held = true, .step = provisional, .name = {}};
}

void StepLabeler::release_records(size_t calls, size_t* next, Listener& l) {
  for (; *next < records_after_.size() && records_after_[*next] <= calls; ++*next)
    l.record_released(*next, step_);
}

void StepLabeler::commit(const PeriodDecision& d, Listener& l) {
  const PeriodResult r = d.result;
  const size_t n = held_.size();
  size_t next_record = 0;
  if (r.period > 0) {
    source_ = StepSource::GemmPeriod;
    if (step_ == 0 && n > 0)
      l.step_begins(StepStart{.at = StepStart::At::HeldCall, .step = 0, .source = source_});
  }
  for (size_t i = 0; i < n; ++i) {
    const std::string& scope = held_[i];
    long ordinal = static_cast<long>(i);
    std::string lab;
    if (r.period > 0 && i < r.offset) {
      lab = "gemm#w" + std::to_string(i);  // warm-up calls before the first step
    } else if (r.period > 0) {
      ordinal = d.ordinals[i - r.offset];  // -1: an extra call between iterations (gemm#x<k>)
      // Warm-up calls share step 0 with the first period, so that step k is the k-th iteration
      // of the program's loop.
      if (ordinal == 0 && i > r.offset) {
        ++step_;
        extras_ = 0;
        scope_counts_.clear();
        l.step_begins(
            StepStart{.at = StepStart::At::HeldCall, .step = step_, .source = source_, .held = i});
      }
    } else {
      ordinal = static_cast<long>(ordinal_++);
    }
    if (lab.empty() || !scope.empty()) lab = name(scope, ordinal);
    l.call_released(i, step_, lab, scope);
    release_records(i + 1, &next_record, l);
  }
  release_records(SIZE_MAX, &next_record, l);
  if (r.period > 0) {
    coarse_ = d.coarse;
    tracker_ = StepTracker(d.pattern, d.next_pos);
    phase_ = Phase::Tracking;
    FPSCOPE_LOG(Info, "steps: GEMM period %zu calls (after %zu warm-up calls)%s", r.period,
                r.offset, coarse_ ? " from op sequence (shapes vary)" : "");
  } else {
    FPSCOPE_LOG(Info, "steps: no repeating GEMM sequence in %zu calls; still looking", n);
  }
  held_.clear();
  records_after_.clear();
  search_.reset();
  l.released_all();
}

void StepLabeler::take_over(StepSource source, Listener& l) {
  explicit_ = true;
  source_ = source;
  if (phase_ == Phase::Detect && !held_.empty()) commit(PeriodDecision{}, l);
  phase_ = Phase::Off;
  if (step_ == 0)
    l.step_begins(StepStart{.at = StepStart::At::RunStart, .step = 0, .source = source_});
}

bool StepLabeler::mark(StepSource source, uint64_t next_seq, Listener& l) {
  const StepMode mode = opt_.mode;
  if (mode == StepMode::None || mode == StepMode::Period) return false;
  if (mode == StepMode::Api && source != StepSource::Api) return false;
  if (!explicit_) {
    take_over(source, l);
    // NVTX step ranges mark step STARTS: the first one, with nothing recorded before it, starts
    // step 0 (so that step k is the program's k-th iteration, as with fpscope_step() at the end
    // of each iteration).
    if (source == StepSource::Nvtx && next_seq == 0) return false;
  } else if (source != source_) {
    if (source != StepSource::Api) return false;  // the first explicit source owns the steps ...
    source_ = StepSource::Api;                    // ... except the API, which always wins
    FPSCOPE_LOG(Info, "steps now come from fpscope_step()");
  }
  begin_live(next_seq, l);
  return true;
}

bool StepLabeler::claim(StepSource source, Listener& l) {
  const StepMode mode = opt_.mode;
  if (explicit_ || mode == StepMode::None || mode == StepMode::Period) return false;
  if (mode == StepMode::Api && source != StepSource::Api) return false;
  take_over(source, l);
  return true;
}

bool StepLabeler::hold_record() {
  if (phase_ != Phase::Detect || held_.empty()) return false;
  records_after_.push_back(held_.size());
  return true;
}

void StepLabeler::finish(Listener& l) {
  if (phase_ == Phase::Detect && !held_.empty()) commit(search_.finish(), l);
}

void StepLabeler::after_fork(bool recording) {
  drop_held();
  if (recording && phase_ == Phase::Tracking) phase_ = Phase::Detect;
}

void StepLabeler::drop_held() {
  held_.clear();
  records_after_.clear();
  search_.reset();
}

}  // namespace fpscope::probe
