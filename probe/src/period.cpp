#include "period.h"

#include <algorithm>

namespace fpscope::probe {
namespace {

// KMP prefix function of s.
std::vector<size_t> prefix_function(const std::vector<uint64_t>& s) {
  std::vector<size_t> pi(s.size(), 0);
  for (size_t i = 1; i < s.size(); ++i) {
    size_t k = pi[i - 1];
    while (k > 0 && s[i] != s[k]) k = pi[k - 1];
    if (s[i] == s[k]) ++k;
    pi[i] = k;
  }
  return pi;
}

}  // namespace

bool PeriodDetector::feed(uint64_t sig) {
  seq_.push_back(sig);
  const size_t i = seq_.size() - 1;
  size_t k = i == 0 ? 0 : pi_.back();
  if (i > 0) {
    while (k > 0 && seq_[i] != seq_[k]) k = pi_[k - 1];
    if (seq_[i] == seq_[k]) ++k;
  }
  pi_.push_back(k);
  const size_t p = prefix_period();
  return p < seq_.size() && seq_.size() >= static_cast<size_t>(repeats_) * p;
}

PeriodResult PeriodDetector::decide(int min_repeats, size_t min_len) const {
  const size_t n = seq_.size();
  const size_t reps = static_cast<size_t>(std::max(min_repeats, 2));
  if (n == 0) return {};
  const size_t p = prefix_period();
  if (p < n && n >= reps * p) return {0, p};
  // Longest suffix that repeats `reps` times: the prefix function of the reversed sequence.
  std::vector<uint64_t> r(seq_.rbegin(), seq_.rend());
  const std::vector<size_t> pi = prefix_function(r);
  for (size_t len = n; len >= 2 && len >= min_len; --len) {
    const size_t q = len - pi[len - 1];
    if (q < len && len >= reps * q) return {n - len, q};
  }
  return {};
}

StepTracker::Label StepTracker::next(uint64_t sig) {
  Label l;
  const size_t p = pattern_.size();
  if (p == 0) return l;
  if (sig == pattern_[pos_]) {
    l.new_step = pos_ == 0;
    l.ordinal = static_cast<long>(pos_);
    pos_ = (pos_ + 1) % p;
    extras_in_row_ = 0;
    return l;
  }
  if (sig == pattern_[0]) {  // the period starts again before the previous one ended
    l.new_step = true;
    l.partial = true;
    l.ordinal = 0;
    pos_ = 1 % p;
    extras_in_row_ = 0;
    return l;
  }
  ++extras_in_row_;
  l.lost = extras_in_row_ > 2 * p + 16;
  return l;
}

std::optional<PeriodDecision> PeriodSearch::add(uint64_t sig, uint64_t coarse_sig) {
  coarse_.feed(coarse_sig);
  if (full_.feed(sig) && full_.size() >= kMinCallsForPrefixPeriod)
    return make(PeriodResult{0, full_.prefix_period()}, false);
  if (full_.size() >= window_) {
    PeriodDecision d = last_resort();
    d.window_full = true;
    return d;
  }
  if (full_.size() % 8 == 0) {  // steps after warm-up calls
    const PeriodResult r = full_.decide(3, full_.size() / 2);
    if (r.period > 0) return make(r, false);
  }
  return std::nullopt;
}

PeriodDecision PeriodSearch::finish() const {
  return last_resort();
}

PeriodDecision PeriodSearch::last_resort() const {
  const PeriodResult r = full_.decide(2);
  if (r.period > 0) return make(r, false);
  // Shapes that change every step (dynamic batch or sequence length): the ops may still repeat.
  const PeriodResult c = coarse_.decide(3);
  return make(c, c.period > 0);
}

PeriodDecision PeriodSearch::make(PeriodResult r, bool coarse) const {
  PeriodDecision d;
  d.result = r;
  d.coarse = coarse;
  if (r.period > 0) {
    const std::vector<uint64_t>& s = coarse ? coarse_.sequence() : full_.sequence();
    d.pattern.assign(s.begin() + static_cast<long>(r.offset),
                     s.begin() + static_cast<long>(r.offset + r.period));
  }
  return d;
}

}  // namespace fpscope::probe
