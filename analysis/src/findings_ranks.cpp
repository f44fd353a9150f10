// Cross-rank findings of a rank set (ranks.h): the first rank to fail, rank skew, replica desync,
// loss-scale disagreement. Inputs are the bounded RankSummaries only, never the traces.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "findings_families.h"
#include "fpscope/analysis/ranks.h"

namespace fpscope::analysis {
namespace {

// "rank 1", "ranks 1 and 3", "ranks 1, 2 and 5".
std::string ranks_phrase(const std::vector<int64_t>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i)
    s += fmt::format("{}{}", i == 0 ? "" : i + 1 == ranks.size() ? " and " : ", ", ranks[i]);
  return s;
}

// The rank index's cells of one tensor id (nullptr where a rank lacks it or runs another shape).
struct Aligned {
  std::string id;
  trace::Role role = trace::Role::D;
  std::vector<const RankTensor*> per_rank;
};

std::vector<Aligned> align(const std::vector<RankSummary>& ranks) {
  std::map<std::string, Aligned> by_id;
  for (size_t r = 0; r < ranks.size(); ++r)
    for (const auto& t : ranks[r].tensors) {
      auto& a = by_id[t.id];
      if (a.per_rank.empty()) {
        a.id = t.id;
        a.role = t.role;
        a.per_rank.assign(ranks.size(), nullptr);
      }
      a.per_rank[r] = &t;
    }
  std::vector<Aligned> out;
  for (auto& [id, a] : by_id) {
    // The same op on every rank: the shape of the lowest rank holding it.
    const RankTensor* ref = nullptr;
    for (auto*& t : a.per_rank) {
      if (!t) continue;
      if (!ref) ref = t;
      if (t->rows != ref->rows || t->cols != ref->cols) t = nullptr;
    }
    out.push_back(std::move(a));
  }
  return out;
}

// Calls fn(step, cells) for each step of `a`, cells[r] nullptr where rank r has none.
template <typename Fn>
void for_each_step(const Aligned& a, Fn&& fn) {
  const size_t n = a.per_rank.size();
  std::vector<size_t> pos(n, 0);
  std::vector<const RankCell*> cells(n);
  for (;;) {
    uint64_t step = trace::TraceModel::kNoStep;
    for (size_t r = 0; r < n; ++r)
      if (a.per_rank[r] && pos[r] < a.per_rank[r]->cells.size())
        step = std::min(step, a.per_rank[r]->cells[pos[r]].step);
    if (step == trace::TraceModel::kNoStep) return;
    for (size_t r = 0; r < n; ++r) {
      cells[r] = nullptr;
      if (a.per_rank[r] && pos[r] < a.per_rank[r]->cells.size() &&
          a.per_rank[r]->cells[pos[r]].step == step)
        cells[r] = &a.per_rank[r]->cells[pos[r]++];
    }
    fn(step, cells);
  }
}

struct Onset {
  uint64_t step = trace::TraceModel::kNoStep;
  uint64_t seq = 0;
  std::string op;  // tensor id
};

// First NaN/Inf (target < 0) or first overflow of kTargets[target] per rank, then one finding
// when some rank has it: the earliest rank(s), the op, and the order it reached the others.
void first_fault(const std::vector<RankSummary>& ranks, const std::vector<Aligned>& al, int target,
                 const FindingOptions& opt, std::vector<RankFinding>* out) {
  std::vector<Onset> on(ranks.size());
  for (const auto& a : al)
    for (size_t r = 0; r < ranks.size(); ++r) {
      if (!a.per_rank[r]) continue;
      for (const auto& c : a.per_rank[r]->cells) {
        const bool hit = target < 0 ? c.nonfinite > 0 : c.overflow[target] > 0.0f;
        if (!hit) continue;
        if (c.step < on[r].step || (c.step == on[r].step && c.first_seq < on[r].seq))
          on[r] = {c.step, c.first_seq, a.id};
        break;  // cells ascend by step: the tensor's first
      }
    }
  uint64_t first = trace::TraceModel::kNoStep;
  size_t with = 0;
  for (const auto& o : on) {
    first = std::min(first, o.step);
    with += o.step != trace::TraceModel::kNoStep;
  }
  if (with == 0) return;
  std::vector<int64_t> first_ranks;
  for (size_t r = 0; r < ranks.size(); ++r)
    if (on[r].step == first) first_ranks.push_back(ranks[r].identity.rank);
  // An overflow every rank starts at the same step is each rank's own finding, not a rank story.
  if (target >= 0 && first_ranks.size() == ranks.size()) return;
  const size_t r0 = [&] {
    for (size_t r = 0; r < ranks.size(); ++r)
      if (on[r].step == first) return r;
    return size_t{0};
  }();
  // How it spread: each later rank with its first step, in step order.
  std::vector<std::pair<uint64_t, int64_t>> later;
  size_t never = 0;
  for (size_t r = 0; r < ranks.size(); ++r) {
    if (on[r].step == trace::TraceModel::kNoStep)
      ++never;
    else if (on[r].step != first)
      later.emplace_back(on[r].step, ranks[r].identity.rank);
  }
  std::sort(later.begin(), later.end());
  std::string spread;
  for (size_t i = 0; i < later.size() && i < opt.evidence_list_max; ++i)
    spread +=
        fmt::format("{}rank {} at step {}", i == 0 ? "" : ", ", later[i].second, later[i].first);
  if (later.size() > opt.evidence_list_max)
    spread += fmt::format("; ... {} more", later.size() - opt.evidence_list_max);
  const std::string what =
      target < 0 ? std::string("NaN/Inf") : fmt::format("{} overflow", spec(kTargets[target]).name);
  RankFinding f;
  f.ranks = first_ranks;
  Finding& g = f.finding;
  g.kind = FindingKind::RankFirstFault;
  g.severity = target < 0 ? opt.rank_first_nonfinite : opt.rank_first_overflow;
  // Earlier onsets on fewer ranks rank higher: magnitude from the share of ranks spared at first.
  g.score = level_score(g.severity,
                        linear_magnitude(static_cast<double>(ranks.size() - first_ranks.size() + 1),
                                         static_cast<double>(ranks.size())));
  if (target >= 0) g.format = kTargets[target];
  g.tensor_id = on[r0].op;
  g.first_step = static_cast<int64_t>(first);
  g.last_step = later.empty() ? g.first_step : static_cast<int64_t>(later.back().first);
  const bool all = first_ranks.size() == ranks.size();
  g.title = all ? fmt::format("{} appears on every rank at step {} ({})", what, first, on[r0].op)
                : fmt::format("{} appears first on {} at step {} ({})", what,
                              ranks_phrase(first_ranks), first, on[r0].op);
  g.evidence = fmt::format(
      "first op on rank {}: {} at step {}; {}{}", ranks[r0].identity.rank, on[r0].op, first,
      all             ? std::string("every rank at once")
      : later.empty() ? std::string("no other rank")
                      : "then " + spread,
      never ? fmt::format("; {} never", never == 1 ? "1 rank" : fmt::format("{} ranks", never))
            : std::string());
  g.recommendation =
      first_ranks.size() < ranks.size()
          ? fmt::format(
                "Look at what differs on {} at step {}: its input batch (data shard), "
                "its hardware, its seed; the other ranks {} through the all-reduced "
                "gradients.",
                ranks_phrase(first_ranks), first, later.empty() ? "stayed clean" : "followed")
          : fmt::format("Every rank shows it at step {}: start from {} (summary of rank {}).",
                        first, on[r0].op, ranks[r0].identity.rank);
  out->push_back(std::move(f));
}

// Per tensor: steps where a rank's amax is >= rank_skew_ratio x the median of the others'.
void skew(const std::vector<RankSummary>& ranks, const std::vector<Aligned>& al,
          const FindingOptions& opt, std::vector<RankFinding>* out) {
  for (const auto& a : al) {
    std::set<int64_t> outliers;
    int64_t first = -1, last = -1;
    double worst = 0.0;
    int64_t worst_rank = -1, worst_step = -1;
    float worst_amax = 0.0f;
    double worst_ref = 0.0;
    for_each_step(a, [&](uint64_t step, const std::vector<const RankCell*>& cells) {
      size_t present = 0;
      for (const auto* c : cells) present += c != nullptr;
      if (present < 2) return;
      // The finite amaxes sorted once; each rank's reference is the median of the others
      // (the sorted list without its own entry): O(n log n) per step, not O(n^2 log n).
      std::vector<std::pair<double, size_t>> sorted;
      for (size_t r = 0; r < cells.size(); ++r)
        if (cells[r] && std::isfinite(cells[r]->amax)) sorted.emplace_back(cells[r]->amax, r);
      if (sorted.size() < 2) return;
      std::sort(sorted.begin(), sorted.end());
      const size_t m = sorted.size() - 1;  // the others' count
      for (size_t p = 0; p < sorted.size(); ++p) {
        const size_t r = sorted[p].second;
        auto other = [&](size_t i) { return sorted[i < p ? i : i + 1].first; };
        const double ref = m % 2 ? other(m / 2) : 0.5 * (other(m / 2 - 1) + other(m / 2));
        if (!(ref > 0.0)) continue;
        const double ratio = cells[r]->amax / ref;
        if (ratio < opt.rank_skew_ratio) continue;
        outliers.insert(ranks[r].identity.rank);
        if (first < 0) first = static_cast<int64_t>(step);
        last = static_cast<int64_t>(step);
        if (ratio > worst) {
          worst = ratio;
          worst_rank = ranks[r].identity.rank;
          worst_step = static_cast<int64_t>(step);
          worst_amax = cells[r]->amax;
          worst_ref = ref;
        }
      }
    });
    if (outliers.empty()) continue;
    RankFinding f;
    f.ranks.assign(outliers.begin(), outliers.end());
    Finding& g = f.finding;
    g.kind = FindingKind::RankSkew;
    g.severity = opt.rank_skew;
    g.score =
        level_score(g.severity, linear_magnitude(std::log10(worst), opt.rank_skew_full_decades));
    g.tensor_id = a.id;
    g.first_step = first;
    g.last_step = last;
    g.title = fmt::format("{}: amax on {} far above the other replicas' from step {}", a.id,
                          ranks_phrase(f.ranks), first);
    g.evidence = fmt::format(
        "worst: rank {} at step {}: amax {:.3g} = {:.3g} x the median of the other ranks ({:.3g}); "
        "threshold {:g} x",
        worst_rank, worst_step, worst_amax, worst, worst_ref, opt.rank_skew_ratio);
    g.recommendation = fmt::format(
        "The replicas run the same op on different data: check {}'s input batch and data "
        "pipeline at step {} (unnormalized or corrupt samples), then the op's inputs on that rank.",
        ranks_phrase(f.ranks), first);
    out->push_back(std::move(f));
  }
}

// The ranks outside the reference group of `keys` (one key per present rank): the strict
// majority, else the group holding the lowest rank (DDP broadcasts rank 0's state).
template <typename Key, typename Eq>
std::vector<size_t> minority(const std::vector<std::pair<size_t, Key>>& keys, Eq eq) {
  size_t best = 0, best_n = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    size_t n = 0;
    for (const auto& k : keys) n += eq(k.second, keys[i].second);
    if (n * 2 > keys.size() && n > best_n) {
      best = i;
      best_n = n;
    }
  }
  // No strict majority: best stays 0, the lowest rank present.
  std::vector<size_t> out;
  for (const auto& k : keys)
    if (!eq(k.second, keys[best].second)) out.push_back(k.first);
  return out;
}

// Replicated operands: read operands (A, B, C) or watched weights whose values are identical on
// every rank at their first step held by all ranks (weights under data parallelism). The first
// later step where they differ is a desync.
void desync(const std::vector<RankSummary>& ranks, const std::vector<Aligned>& al,
            const FindingOptions& opt, std::vector<RankFinding>* out) {
  for (const auto& a : al) {
    if (a.role == trace::Role::D) continue;
    // The ranks that run this op (pipeline stages hold different ops; tensor-parallel shards
    // differ from the first step and are never taken for replicas).
    size_t holders = 0;
    for (const auto* t : a.per_rank) holders += t != nullptr;
    if (holders < 2) continue;
    bool replicated = a.role == trace::Role::Weight, decided = replicated, found = false;
    for_each_step(a, [&](uint64_t step, const std::vector<const RankCell*>& cells) {
      if (found) return;
      std::vector<std::pair<size_t, const RankCell*>> keys;
      bool zeros = true;  // every value zero on every rank: proves nothing (zeroed buffers)
      for (size_t r = 0; r < cells.size(); ++r)
        if (cells[r]) {
          keys.emplace_back(r, cells[r]);
          zeros &= cells[r]->sum_sq == 0.0 && cells[r]->nonfinite == 0;
        }
      if (keys.size() < 2) return;
      const auto odd =
          minority(keys, [](const RankCell* x, const RankCell* y) { return x->same_values(*y); });
      if (!decided) {
        // Classify on the first step every holder has, with some nonzero value.
        if (keys.size() < holders || zeros) return;
        decided = true;
        replicated = odd.empty();
        return;
      }
      if (!replicated || odd.empty()) return;
      found = true;
      RankFinding f;
      for (size_t r : odd) f.ranks.push_back(ranks[r].identity.rank);
      size_t ref_r = keys.front().first;
      for (const auto& k : keys)
        if (std::find(odd.begin(), odd.end(), k.first) == odd.end()) {
          ref_r = k.first;
          break;
        }
      const RankCell& ref = *cells[ref_r];
      const RankCell& bad = *cells[odd.front()];
      Finding& g = f.finding;
      g.kind = FindingKind::RankDesync;
      g.severity = opt.rank_desync;
      g.score = level_score(g.severity, linear_magnitude(static_cast<double>(odd.size()),
                                                         static_cast<double>(cells.size())));
      g.tensor_id = a.id;
      g.first_step = g.last_step = static_cast<int64_t>(step);
      g.title = fmt::format("replicas out of sync: {} differs on {} from step {}", a.id,
                            ranks_phrase(f.ranks), step);
      g.evidence = fmt::format(
          "{} held identical values on all {} ranks running it before step {}; at step {} rank {} "
          "has amax {:.9g}, mean {:.9g} against {:.9g}, {:.9g} on the others",
          a.id, holders, step, step, ranks[odd.front()].identity.rank, bad.amax,
          bad.count ? bad.sum / static_cast<double>(bad.count) : 0.0, ref.amax,
          ref.count ? ref.sum / static_cast<double>(ref.count) : 0.0);
      g.recommendation = fmt::format(
          "Data-parallel replicas must hold identical weights after every optimizer step: find "
          "what wrote the weights on {} outside the optimizer before step {} (a rank-dependent "
          "branch, an unsynchronized buffer or parameter, a non-deterministic reduction), or "
          "re-broadcast them from rank 0.",
          ranks_phrase(f.ranks), step);
      out->push_back(std::move(f));
    });
  }
}

// Steps where the ranks' loss scalers (scale, found_inf) disagree.
void loss_scale(const std::vector<RankSummary>& ranks, const FindingOptions& opt,
                std::vector<RankFinding>* out) {
  std::map<uint64_t, std::vector<std::pair<size_t, const RankLossScale*>>> by_step;
  for (size_t r = 0; r < ranks.size(); ++r)
    for (const auto& l : ranks[r].loss_scales) by_step[l.step].emplace_back(r, &l);
  std::set<int64_t> odd_ranks;
  int64_t first = -1, last = -1;
  size_t n_steps = 0;
  std::string first_text;
  for (const auto& [step, keys] : by_step) {
    if (keys.size() < 2) continue;
    const auto odd = minority(keys, [](const RankLossScale* x, const RankLossScale* y) {
      return x->scale == y->scale && x->found_inf == y->found_inf;
    });
    if (odd.empty()) continue;
    ++n_steps;
    for (size_t r : odd) odd_ranks.insert(ranks[r].identity.rank);
    if (first < 0) {
      first = static_cast<int64_t>(step);
      for (const auto& [r, l] : keys)
        first_text += fmt::format("{}rank {}: scale {:g}{}", first_text.empty() ? "" : ", ",
                                  ranks[r].identity.rank, l->scale,
                                  l->found_inf ? " (found inf, skipped)" : "");
    }
    last = static_cast<int64_t>(step);
  }
  if (odd_ranks.empty()) return;
  RankFinding f;
  f.ranks.assign(odd_ranks.begin(), odd_ranks.end());
  Finding& g = f.finding;
  g.kind = FindingKind::RankLossScale;
  g.severity = opt.rank_loss_scale;
  g.score = level_score(g.severity, linear_magnitude(static_cast<double>(n_steps),
                                                     static_cast<double>(by_step.size())));
  g.first_step = first;
  g.last_step = last;
  g.title = fmt::format("loss scalers disagree between ranks: {} from step {}",
                        ranks_phrase(f.ranks), first);
  g.evidence = fmt::format("{} of {} steps disagree; at step {}: {}", n_steps, by_step.size(),
                           first, first_text);
  g.recommendation =
      "GradScaler decisions must agree on every rank (found_inf is all-reduced by DDP/FSDP's "
      "scaler): make sure every rank unscales and checks the same all-reduced gradients before "
      "scaler.step(), and that no rank skips scaler.update().";
  out->push_back(std::move(f));
}

}  // namespace

std::vector<RankFinding> rank_findings_of(const std::vector<RankSummary>& ranks,
                                          const FindingOptions& opt) {
  std::vector<RankFinding> out;
  if (ranks.size() < 2) return out;
  const auto al = align(ranks);
  first_fault(ranks, al, -1, opt, &out);
  for (int t = 0; t < kNumTargets; ++t)
    if (kTargets[t] == Format::BF16 || kTargets[t] == Format::FP16)
      first_fault(ranks, al, t, opt, &out);
  skew(ranks, al, opt, &out);
  desync(ranks, al, opt, &out);
  loss_scale(ranks, opt, &out);
  // The one ranking, carrying each finding's ranks along.
  std::vector<Finding> fs;
  for (size_t i = 0; i < out.size(); ++i) {
    fs.push_back(out[i].finding);
    fs.back().tensor = -static_cast<int64_t>(i) - 2;  // a tag through the sort
  }
  rank_findings(&fs);
  std::vector<RankFinding> ranked;
  for (auto& f : fs) {
    const size_t i = static_cast<size_t>(-f.tensor - 2);
    ranked.push_back(std::move(out[i]));
  }
  return ranked;
}

}  // namespace fpscope::analysis
