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

// Number of distinct signatures in s[b, e).
size_t distinct(const std::vector<uint64_t>& s, size_t b, size_t e) {
  std::vector<uint64_t> v(s.begin() + static_cast<long>(b), s.begin() + static_cast<long>(e));
  std::sort(v.begin(), v.end());
  return static_cast<size_t>(std::unique(v.begin(), v.end()) - v.begin());
}

// Z function of s[o, n): z[i] = length of the longest common prefix of s[o + i, n) and s[o, n).
std::vector<size_t> z_function(const std::vector<uint64_t>& s, size_t o) {
  const size_t n = s.size() - o;
  std::vector<size_t> z(n, 0);
  if (n == 0) return z;
  z[0] = n;
  for (size_t i = 1, l = 0, r = 0; i < n; ++i) {
    if (i < r) z[i] = std::min(r - i, z[i - l]);
    while (i + z[i] < n && s[o + z[i]] == s[o + i + z[i]]) ++z[i];
    if (i + z[i] > r) l = i, r = i + z[i];
  }
  return z;
}

}  // namespace

PeriodFit fit_period(const std::vector<uint64_t>& s, size_t offset, size_t period) {
  PeriodFit f;
  const size_t n = s.size();
  if (period == 0 || offset + period > n) return f;
  f.period = period;
  size_t pos = 0, run = 0;
  bool in_extras = false;
  for (size_t i = offset; i < n; ++i) {
    if (s[i] == s[offset + pos]) {
      if (pos == 0) ++f.steps;
      ++f.matched;
      pos = (pos + 1) % period;
      in_extras = false;
      continue;
    }
    if (pos != 0) {  // a call inside an iteration that the period does not expect
      f.contradicted = true;
      return f;
    }
    ++f.extras;
    if (!in_extras) ++f.extra_runs, run = 0;
    f.longest_extra_run = std::max(f.longest_extra_run, ++run);
    in_extras = true;
  }
  if (pos != 0) --f.steps;  // the last, partial step is not a full repetition
  return f;
}

bool PeriodFit::explains(size_t min_repeats) const {
  // Extra calls (an evaluation pass) come between iterations, in fewer runs than half the steps,
  // and are fewer than half the calls that follow the period: a run of identical calls, an
  // identical layer or an RNN time step inside the real iteration leaves most calls out.
  return !contradicted && steps >= min_repeats && 2 * extra_runs <= steps &&
         2 * extras <= matched && longest_extra_run < period;
}

PeriodResult best_period(const std::vector<uint64_t>& s, size_t min_repeats) {
  const size_t n = s.size();
  const size_t reps = std::max<size_t>(min_repeats, 2);
  size_t budget = 256 * n + 4096;  // calls simulated at most (a window without a period)
  // The explained window is at least half the calls: a repetition at the tail alone (the last
  // iteration's own sub-structure) does not make everything before it warm-up.
  for (size_t o = 0; 2 * o <= n && o <= PeriodSearch::kMaxWarmUp && reps <= n - o; ++o) {
    const std::vector<size_t> z = z_function(s, o);
    for (size_t p = 1; reps * p <= n - o; ++p) {
      if (z[p] < p) continue;  // the second repetition already differs
      const size_t cost = n - o;
      if (cost > budget) return {};
      budget -= cost;
      if (fit_period(s, o, p).explains(reps)) return {o, p};
    }
  }
  return {};
}

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

bool PeriodSearch::early_ok(PeriodResult r) const {
  // A period of one signature (a run of identical calls: one GEMM per batch and head, an RNN time
  // step) may be a run inside the iteration: only the full window or the end of the run decides.
  return r.period > 0 &&
         distinct(full_.sequence(), r.offset, r.offset + r.period) >= kMinDistinctEarly;
}

PeriodResult PeriodSearch::early(PeriodResult r) const {
  // A smaller period with extra calls between its iterations (an evaluation pass every k steps)
  // explains the window too: that one is the iteration, not k iterations and the pass.
  const PeriodResult b = best_period(full_.sequence(), 3);
  return b.period > 0 && b.offset <= r.offset ? b : r;
}

std::optional<PeriodDecision> PeriodSearch::add(uint64_t sig, uint64_t coarse_sig) {
  coarse_.feed(coarse_sig);
  if (full_.feed(sig) && full_.size() >= kMinCallsForPrefixPeriod &&
      early_ok(PeriodResult{0, full_.prefix_period()}))
    return make(early(PeriodResult{0, full_.prefix_period()}), false);
  if (full_.size() >= window_) {
    PeriodDecision d = last_resort();
    d.window_full = true;
    return d;
  }
  if (full_.size() % 8 == 0) {  // steps after warm-up calls
    const PeriodResult r = full_.decide(kEarlyRepeats, full_.size() / 2);
    if (early_ok(r)) return make(early(r), false);
  }
  return std::nullopt;
}

PeriodDecision PeriodSearch::finish() const {
  return last_resort();
}

PeriodDecision PeriodSearch::last_resort() const {
  // The period that explains the longest held window (fewest warm-up calls), extra calls only
  // between iterations; then, for shapes that change every step (dynamic batch or sequence
  // length), the same on the op sequence; then the plain repetition rules.
  PeriodResult r = best_period(full_.sequence(), 2);
  if (r.period > 0) return make(r, false);
  const PeriodResult c = best_period(coarse_.sequence(), 3);
  if (c.period > 0) return make(c, true);
  r = full_.decide(2);
  if (r.period > 0) return make(r, false);
  const PeriodResult c2 = coarse_.decide(3);
  return make(c2, c2.period > 0);
}

PeriodDecision PeriodSearch::make(PeriodResult r, bool coarse) const {
  PeriodDecision d;
  d.result = r;
  d.coarse = coarse;
  if (r.period > 0) {
    const std::vector<uint64_t>& s = coarse ? coarse_.sequence() : full_.sequence();
    d.pattern.assign(s.begin() + static_cast<long>(r.offset),
                     s.begin() + static_cast<long>(r.offset + r.period));
    // As fit_period follows it: in order, extra calls between iterations.
    size_t pos = 0;
    for (size_t i = r.offset; i < s.size(); ++i) {
      if (s[i] == d.pattern[pos] || s[i] == d.pattern[0]) {
        if (s[i] != d.pattern[pos]) pos = 0;  // not after best_period: a restart, as StepTracker
        d.ordinals.push_back(static_cast<long>(pos));
        pos = (pos + 1) % r.period;
      } else {
        d.ordinals.push_back(-1);
      }
    }
    d.next_pos = pos;
  }
  return d;
}

}  // namespace fpscope::probe
