#include "fpscope/gui/view_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <string>

namespace fpscope::gui {

std::shared_ptr<const Run> load_run(const std::string& path) {
  auto run = std::make_shared<Run>();
  run->path = path;
  run->label = std::filesystem::path(path).filename().string();
  try {
    const auto t0 = std::chrono::steady_clock::now();
    run->trace = std::make_unique<trace::Trace>();
    trace::ReadError err;
    if (!trace::read_trace(path, run->trace.get(), &err)) {
      run->error = err.message.empty() ? path + ": cannot be read" : err.message;
      run->trace.reset();
      return run;
    }
    run->model = std::make_unique<trace::TraceModel>(*run->trace);
    const auto t1 = std::chrono::steady_clock::now();
    run->analysis = analysis::analyze(*run->model);
    run->blocks = block_columns(*run->trace);
    run->loss = loss_curve(*run->trace);
    run->no_observations = no_observations_text(run->analysis);
    const auto t2 = std::chrono::steady_clock::now();
    run->load_seconds = std::chrono::duration<double>(t1 - t0).count();
    run->analysis_seconds = std::chrono::duration<double>(t2 - t1).count();
    auto& ts = run->timeline_steps;
    ts.assign(run->model->steps().begin(), run->model->steps().end());
    for (const auto& ls : run->trace->loss_scales) ts.push_back(ls.step);
    std::sort(ts.begin(), ts.end());
    ts.erase(std::unique(ts.begin(), ts.end()), ts.end());
    run->ok = true;
  } catch (const std::exception& e) {
    run->ok = false;
    run->error = path + ": " + e.what();
    run->model.reset();
    run->trace.reset();
  }
  return run;
}

std::string no_observations_text(const analysis::RunAnalysis& a) {
  return a.not_measured.empty()
             ? "no observations in this trace (no matrix multiply reached the probe; no tensor "
               "statistics were recorded)"
             : "no observations in this trace: " + a.not_measured;
}

StepExtent step_extent(const Run& run) {
  const auto& ts = run.timeline_steps;
  const auto& ls = run.loss.steps;  // ascending
  if (ts.empty() && ls.empty()) return {};
  double lo = ts.empty() ? ls.front() : static_cast<double>(ts.front());
  double hi = ts.empty() ? ls.back() : static_cast<double>(ts.back());
  if (!ls.empty()) lo = std::min(lo, ls.front()), hi = std::max(hi, ls.back());
  return {lo, hi + 1.0};
}

std::vector<std::string> run_labels(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  std::vector<std::string> out(paths.size());
  // label(i, d): the last d + 1 components of path i.
  auto label = [&](size_t i, int d) {
    fs::path p = fs::path(paths[i]).lexically_normal();
    std::vector<std::string> parts;
    for (const auto& c : p) {
      const std::string s = c.string();
      if (!s.empty() && s != "/") parts.push_back(s);
    }
    std::string r;
    const int n = static_cast<int>(parts.size());
    for (int k = std::max(0, n - 1 - d); k < n; ++k)
      r += (r.empty() ? "" : "/") + parts[static_cast<size_t>(k)];
    return r.empty() ? paths[i] : r;
  };
  std::vector<int> depth(paths.size(), 0);
  for (size_t i = 0; i < paths.size(); ++i) out[i] = label(i, 0);
  // Deepen every member of a group of equal labels until the group splits (at most 8 levels).
  for (int round = 0; round < 8; ++round) {
    bool changed = false;
    std::vector<bool> dup(paths.size(), false);  // decided for all before any label changes
    for (size_t i = 0; i < paths.size(); ++i)
      for (size_t j = 0; j < paths.size(); ++j)
        if (j != i && out[j] == out[i] && paths[j] != paths[i]) dup[i] = true;
    for (size_t i = 0; i < paths.size(); ++i) {
      if (!dup[i]) continue;
      const std::string deeper = label(i, depth[i] + 1);
      if (deeper != out[i]) {
        ++depth[i];
        out[i] = deeper;
        changed = true;
      }
    }
    if (!changed) break;
  }
  return out;
}

double SqnrShown::plot_value() const {
  switch (kind) {
    case SqnrKind::Value:
      return db;
    case SqnrKind::Exact:
      return std::numeric_limits<double>::infinity();
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

SqnrShown shown_sqnr(double sqnr_db, double overflow) {
  SqnrShown s;
  if (overflow > 0.0) {
    s.kind = SqnrKind::Undefined;  // whatever the library returned (NaN once it knows)
  } else if (std::isnan(sqnr_db)) {
    s.kind = SqnrKind::NoSignal;
  } else if (std::isinf(sqnr_db)) {
    s.kind = sqnr_db > 0 ? SqnrKind::Exact : SqnrKind::NoSignal;
  } else {
    s.kind = SqnrKind::Value;
    s.db = sqnr_db;
  }
  return s;
}

std::string sqnr_text(const SqnrShown& s) {
  switch (s.kind) {
    case SqnrKind::Value: {
      char b[32];
      std::snprintf(b, sizeof b, "%.1f", s.db);
      return b;
    }
    case SqnrKind::Exact:
      return "exact";
    case SqnrKind::Undefined:
      return "n/a";
    case SqnrKind::NoSignal:
      break;
  }
  return "-";
}

namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool icontains(std::string_view hay, std::string_view needle) {
  if (needle.empty()) return true;
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t k = 0;
    while (k < needle.size() && lower(hay[i + k]) == lower(needle[k])) ++k;
    if (k == needle.size()) return true;
  }
  return false;
}

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool term_matches(const analysis::TensorRisk& r, std::string_view term) {
  if (term.size() > 4 && ieq(term.substr(0, 4), "sev:")) {
    const auto want = term.substr(4);
    for (int s = 0; s <= static_cast<int>(analysis::Severity::Critical); ++s) {
      const auto sev = static_cast<analysis::Severity>(s);
      if (ieq(want, analysis::severity_name(sev))) return r.severity >= sev;
    }
    return false;
  }
  return icontains(r.id, term) || icontains(r.name, term) || icontains(r.op, term) ||
         ieq(trace::role_name(r.role), term) || ieq(spec(r.dtype).name, term);
}

// -1, 0, 1 with NaN after every number in both directions (handled by the caller's flip).
int cmp_double(double a, double b) {
  const bool na = std::isnan(a), nb = std::isnan(b);
  if (na || nb) return na == nb ? 0 : (na ? 2 : -2);  // |2|: NaN ordering, never flipped
  return a < b ? -1 : (a > b ? 1 : 0);
}

int cmp_str(std::string_view a, std::string_view b) {
  const int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

double col_value(const analysis::TensorRisk& r, Col c, int t, const BlockColumns* blocks,
                 const std::vector<int64_t>* div) {
  if (c == Col::Divergence) {
    // Minus the rank position: descending puts position 0 (the earliest divergence) first.
    if (!div || r.tensor >= div->size() || (*div)[r.tensor] < 0)
      return std::numeric_limits<double>::quiet_NaN();
    return -static_cast<double>((*div)[r.tensor]);
  }
  if (c == Col::BlockLoss || c == Col::BlockSqnr) {
    const BlockCell* b = blocks ? blocks->cell(r.tensor, t) : nullptr;
    if (!b) return std::numeric_limits<double>::quiet_NaN();
    return c == Col::BlockLoss ? block_loss(b->counts) : block_sqnr(b->counts);  // NaN: no signal
  }
  const auto& f = r.formats[static_cast<size_t>(std::clamp(t, 0, kNumTargets - 1))];
  switch (c) {
    case Col::Severity:
      return r.score;
    case Col::Shape:
      return static_cast<double>(r.rows) * static_cast<double>(r.cols);
    case Col::Amax:
      return r.amax;
    case Col::NonFinite:
      return static_cast<double>(r.nan + r.pos_inf + r.neg_inf);
    case Col::Overflow:
      return f.overflow_frac;
    case Col::Underflow:
      return f.underflow_frac;
    case Col::Subnormal:
      return f.subnormal_frac;
    case Col::Sqnr:
      return shown_sqnr(f.sqnr_db, static_cast<double>(f.overflow)).plot_value();
    default:
      return 0.0;
  }
}

int compare(const analysis::TensorRisk& a, const analysis::TensorRisk& b, const SortSpec& s,
            const BlockColumns* blocks, const std::vector<int64_t>* div) {
  switch (s.col) {
    case Col::Id:
      return cmp_str(a.id, b.id);
    case Col::Role:
      return cmp_str(trace::role_name(a.role), trace::role_name(b.role));
    case Col::Op:
      return cmp_str(a.op, b.op);
    case Col::Dtype:
      return cmp_str(spec(a.dtype).name, spec(b.dtype).name);
    default:
      return cmp_double(col_value(a, s.col, s.target, blocks, div),
                        col_value(b, s.col, s.target, blocks, div));
  }
}

}  // namespace

bool matches_filter(const analysis::TensorRisk& r, std::string_view filter) {
  size_t i = 0;
  while (i < filter.size()) {
    while (i < filter.size() && (filter[i] == ' ' || filter[i] == '\t')) ++i;
    size_t j = i;
    while (j < filter.size() && filter[j] != ' ' && filter[j] != '\t') ++j;
    if (j > i) {
      std::string_view term = filter.substr(i, j - i);
      const bool negate = term.front() == '!';
      if (negate) term.remove_prefix(1);
      if (!term.empty() && term_matches(r, term) == negate) return false;
    }
    i = j;
  }
  return true;
}

std::vector<uint32_t> filter_sort(const std::vector<analysis::TensorRisk>& rows,
                                  std::string_view filter, const std::vector<SortSpec>& sort,
                                  const BlockColumns* blocks,
                                  const std::vector<int64_t>* divergence_rank) {
  std::vector<uint32_t> idx;
  idx.reserve(rows.size());
  for (uint32_t i = 0; i < rows.size(); ++i)
    if (matches_filter(rows[i], filter)) idx.push_back(i);
  std::stable_sort(idx.begin(), idx.end(), [&](uint32_t ia, uint32_t ib) {
    for (const auto& s : sort) {
      int c = compare(rows[ia], rows[ib], s, blocks, divergence_rank);
      if (c == 2 || c == -2) return c == -2;  // NaN last, whatever the direction
      if (s.descending) c = -c;
      if (c != 0) return c < 0;
    }
    return false;
  });
  return idx;
}

analysis::Severity metric_severity(const analysis::FormatRisk& r, Col metric,
                                   const analysis::RiskOptions& opt, std::string* reason) {
  analysis::FormatRisk only = r;
  if (metric != Col::Overflow) {
    only.overflow = 0;
    only.overflow_frac = 0.0;
  }
  if (metric != Col::Underflow) {
    only.underflow = 0;
    only.underflow_frac = 0.0;
  }
  if (metric != Col::Subnormal) {
    only.subnormal = 0;
    only.subnormal_frac = 0.0;
  }
  if (metric != Col::Sqnr) {
    only.sqnr_db = std::numeric_limits<double>::quiet_NaN();
  } else {
    // Undefined (the format overflows) or no signal: nothing to judge; the overflow cell says it.
    only.sqnr_db = shown_sqnr(r.sqnr_db, static_cast<double>(r.overflow)).plot_value();
  }
  int score = 0;
  return analysis::format_severity(only, opt, &score, reason);
}

std::string shape_text(uint64_t rows, uint64_t cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

}  // namespace fpscope::gui
