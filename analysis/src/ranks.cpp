// Rank sets (ranks.h): rank identity, the bounded per-rank summary, trace arguments, and the
// rank set's summary JSON and text. The cross-rank findings are in findings_ranks.cpp.
#include "fpscope/analysis/ranks.h"

#include <glob.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "fpscope/analysis/causes.h"
#include "fpscope/analysis/summary.h"
#include "fpscope/analysis/text_escape.h"
#include "fpscope/trace_file.h"

namespace fpscope::analysis {
namespace {

// A metadata value written as a string ("3", as the probe writes the launcher's variables) or
// an integer; -1 when absent or not a non-negative integer.
int64_t meta_int(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) return -1;
  if (it->is_number_integer()) return it->get<int64_t>() >= 0 ? it->get<int64_t>() : -1;
  if (!it->is_string()) return -1;
  const std::string s = it->get<std::string>();
  if (s.empty() || s.size() > 18) return -1;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
  return std::stoll(s);
}

// The last run of digits in the file name's stem: what `%r` expanded to in "run-%r.fpst".
int64_t rank_from_name(const std::string& path) {
  const std::string stem = std::filesystem::path(path).stem().string();
  size_t end = stem.size();
  while (end > 0 && !std::isdigit(static_cast<unsigned char>(stem[end - 1]))) --end;
  size_t begin = end;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(stem[begin - 1]))) --begin;
  if (begin == end || end - begin > 18) return -1;
  return std::stoll(stem.substr(begin, end - begin));
}

bool has_glob_chars(const std::string& s) {
  return s.find_first_of("*?[") != std::string::npos;
}

using json = nlohmann::ordered_json;

json finding_json(const RankFinding& rf) {
  json j = analysis::finding_json(rf.finding);  // summary.h: the one writer of a finding
  j["ranks"] = rf.ranks;
  return j;
}

// The cross-rank findings as a RunAnalysis, so that causes.cpp groups them and derives the verdict.
RunAnalysis as_analysis(const RankSet& set) {
  RunAnalysis a;
  for (const auto& f : set.findings) a.findings.push_back(f.finding);
  for (const auto& r : set.ranks) a.gemm_calls += r.gemm_calls;  // 0: the verdict says so
  return a;
}

// Two traces of one rank (sorted neighbours).
std::string duplicate_rank_error(const RankIdentity& a, const RankIdentity& b) {
  return fmt::format(
      "{} and {}: both traces are rank {} (from the {}): one run has one trace per rank", a.path,
      b.path, b.rank, rank_source_name(b.source));
}

// "0 (run-0.fpst), 2 (run-2.fpst)": ranks with their files, the first `max` of them.
std::string ranks_with_files(const std::vector<const RankIdentity*>& ids, size_t max = 8) {
  std::string s;
  for (size_t i = 0; i < ids.size() && i < max; ++i)
    s += fmt::format("{}{} ({})", i ? ", " : "", ids[i]->rank, printable(ids[i]->path));
  if (ids.size() > max) s += fmt::format(", ... {} more", ids.size() - max);
  return s;
}

}  // namespace

const char* rank_source_name(RankSource s) {
  switch (s) {
    case RankSource::Metadata:
      return "metadata";
    case RankSource::FileName:
      return "file_name";
    case RankSource::Order:
      return "order";
  }
  return "unknown";
}

bool RankCell::same_values(const RankCell& o) const {
  return count == o.count && std::bit_cast<uint64_t>(sum) == std::bit_cast<uint64_t>(o.sum) &&
         std::bit_cast<uint64_t>(sum_sq) == std::bit_cast<uint64_t>(o.sum_sq) &&
         std::bit_cast<uint32_t>(amax) == std::bit_cast<uint32_t>(o.amax) &&
         std::bit_cast<uint32_t>(min) == std::bit_cast<uint32_t>(o.min) &&
         std::bit_cast<uint32_t>(max) == std::bit_cast<uint32_t>(o.max);
}

RankIdentity identify_rank(const trace::Trace& trace, const std::string& path, size_t order) {
  return identify_rank_from_metadata(trace.metadata_json, path, order);
}

RankIdentity identify_rank_from_metadata(const std::string& metadata_json, const std::string& path,
                                         size_t order) {
  RankIdentity id;
  id.path = path;
  id.rank = static_cast<int64_t>(order);
  const auto j = nlohmann::json::parse(metadata_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    id.world_size = meta_int(j, "world_size");
    id.local_rank = meta_int(j, "local_rank");
    if (const auto it = j.find("host"); it != j.end() && it->is_string())
      id.host = it->get<std::string>();
    if (const int64_t r = meta_int(j, "rank"); r >= 0) {
      id.rank = r;
      id.source = RankSource::Metadata;
      return id;
    }
  }
  if (const int64_t r = rank_from_name(path); r >= 0) {
    id.rank = r;
    id.source = RankSource::FileName;
  }
  return id;
}

RankSummary summarize_rank(const trace::TraceModel& model, const RunAnalysis& a,
                           const RankIdentity& id, const RankOptions& opt) {
  RankSummary s;
  s.identity = id;
  if (opt.keep_summary_json) s.summary = summary_json(model.trace(), a);
  s.verdict = build_causes(a, a.findings).verdict.headline;
  s.findings = a.findings.size();
  s.first_step = a.first_step;
  s.last_step = a.last_step;
  s.steps = a.steps;
  s.gemm_calls = a.gemm_calls;
  const auto& t = model.trace();
  uint64_t cells = 0;
  for (uint32_t ti = 0; ti < model.num_tensors(); ++ti) {
    const auto& info = model.tensor(ti);
    RankTensor rt;
    rt.id = info.id;
    rt.role = info.role;
    rt.rows = info.rows;
    rt.cols = info.cols;
    StatsScalars merged;
    uint64_t step = trace::TraceModel::kNoStep, seq = 0;
    auto flush = [&] {
      if (step == trace::TraceModel::kNoStep) return;
      if (cells >= opt.max_cells) {
        ++s.dropped_cells;
        return;
      }
      ++cells;
      RankCell c;
      c.step = step;
      c.first_seq = seq;
      c.count = merged.count;
      c.nonfinite = merged.count - merged.finite_count();
      c.amax = merged.amax;
      c.min = merged.min;
      c.max = merged.max;
      c.sum = merged.sum;
      c.sum_sq = merged.sum_sq;
      const double n = merged.count ? static_cast<double>(merged.count) : 1.0;
      for (int k = 0; k < kNumTargets; ++k) {
        c.overflow[k] = static_cast<float>(static_cast<double>(merged.fmt[k].overflow) / n);
        c.underflow[k] = static_cast<float>(static_cast<double>(merged.fmt[k].underflow) / n);
      }
      rt.cells.push_back(c);
    };
    // series() is in file order, which is step order within one tensor (steps only grow).
    for (uint32_t oi : model.series(ti)) {
      const auto& o = t.observations[oi];
      if (o.step != step) {
        flush();
        step = o.step;
        seq = o.seq;
        merged = o.stats;
        continue;
      }
      seq = std::min(seq, o.seq);
      merged.merge_scalars(o.stats);
      for (int k = 0; k < kNumTargets; ++k) {
        merged.fmt[k].overflow += o.stats.fmt[k].overflow;
        merged.fmt[k].underflow += o.stats.fmt[k].underflow;
      }
    }
    flush();
    std::sort(rt.cells.begin(), rt.cells.end(),
              [](const RankCell& x, const RankCell& y) { return x.step < y.step; });
    s.tensors.push_back(std::move(rt));
  }
  std::stable_sort(s.tensors.begin(), s.tensors.end(),
                   [](const RankTensor& x, const RankTensor& y) { return x.id < y.id; });
  for (const auto& l : t.loss_scales) {
    if (!s.loss_scales.empty() && s.loss_scales.back().step == l.step) {
      s.loss_scales.back() = {l.step, l.scale, l.found_inf};
      continue;
    }
    s.loss_scales.push_back({l.step, l.scale, l.found_inf});
  }
  std::stable_sort(s.loss_scales.begin(), s.loss_scales.end(),
                   [](const RankLossScale& x, const RankLossScale& y) { return x.step < y.step; });
  return s;
}

bool build_rank_set(std::vector<RankSummary> ranks, const FindingOptions& opt, RankSet* out,
                    std::string* error) {
  std::stable_sort(ranks.begin(), ranks.end(), [](const RankSummary& x, const RankSummary& y) {
    return x.identity.rank < y.identity.rank;
  });
  for (size_t i = 1; i < ranks.size(); ++i)
    if (ranks[i].identity.rank == ranks[i - 1].identity.rank) {
      *error = duplicate_rank_error(ranks[i - 1].identity, ranks[i].identity);
      return false;
    }
  out->findings = rank_findings_of(ranks, opt);
  out->ranks = std::move(ranks);
  return true;
}

bool expand_trace_args(const std::vector<std::string>& args, std::vector<std::string>* paths,
                       std::string* error) {
  std::set<std::string> seen;
  auto add = [&](const std::string& p) {
    if (seen.insert(p).second) paths->push_back(p);
  };
  for (const auto& arg : args) {
    std::error_code ec;
    std::vector<std::string> found;
    if (std::filesystem::is_directory(arg, ec)) {
      for (const auto& e : std::filesystem::directory_iterator(arg, ec))
        if (e.path().extension() == ".fpst" && !e.is_directory(ec)) found.push_back(e.path());
      if (ec) {
        *error = fmt::format("{}: cannot list the directory: {}", arg, ec.message());
        return false;
      }
      if (found.empty()) {
        *error = fmt::format("{}: no .fpst trace in this directory", arg);
        return false;
      }
    } else if (has_glob_chars(arg) && !std::filesystem::exists(arg, ec)) {
      glob_t g{};
      const int rc = ::glob(arg.c_str(), 0, nullptr, &g);
      for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) found.push_back(g.gl_pathv[i]);
      globfree(&g);
      if (found.empty()) {
        *error = fmt::format("{}: no file matches this pattern", arg);
        return false;
      }
    } else {
      found.push_back(arg);
    }
    std::sort(found.begin(), found.end());
    for (const auto& p : found) add(p);
  }
  return true;
}

bool identify_rank_paths(const std::vector<std::string>& paths, std::vector<RankIdentity>* out,
                         std::string* error) {
  out->clear();
  for (size_t i = 0; i < paths.size(); ++i) {
    trace::ReadError err;
    const auto f = trace::TraceFile::open(paths[i], &err);
    if (!f) {
      *error = err.message;
      return false;
    }
    out->push_back(identify_rank_from_metadata(f->metadata_json(), paths[i], i));
  }
  std::stable_sort(out->begin(), out->end(),
                   [](const RankIdentity& x, const RankIdentity& y) { return x.rank < y.rank; });
  for (size_t i = 1; i < out->size(); ++i)
    if ((*out)[i].rank == (*out)[i - 1].rank) {
      *error = duplicate_rank_error((*out)[i - 1], (*out)[i]);
      return false;
    }
  return true;
}

bool match_rank_sets(const std::vector<RankIdentity>& base, const std::vector<RankIdentity>& neu,
                     std::string* error) {
  // Both sorted by rank: one merge walk finds the ranks only one side has.
  std::vector<const RankIdentity*> only_base, only_new;
  std::vector<std::pair<const RankIdentity*, const RankIdentity*>> both;
  for (size_t i = 0, j = 0; i < base.size() || j < neu.size();) {
    if (j == neu.size() || (i < base.size() && base[i].rank < neu[j].rank))
      only_base.push_back(&base[i++]);
    else if (i == base.size() || neu[j].rank < base[i].rank)
      only_new.push_back(&neu[j++]);
    else
      both.emplace_back(&base[i++], &neu[j++]);
  }
  if (!only_base.empty() || !only_new.empty()) {
    std::string s = fmt::format(
        "the rank sets differ: BASE has {} trace{}, NEW {}; a rank-set diff compares the same "
        "ranks of two runs",
        base.size(), base.size() == 1 ? "" : "s", neu.size());
    if (!only_base.empty()) s += "; only in BASE: rank " + ranks_with_files(only_base);
    if (!only_new.empty()) s += "; only in NEW: rank " + ranks_with_files(only_new);
    *error = s;
    return false;
  }
  for (const auto& [b, n] : both)
    if (b->world_size >= 0 && n->world_size >= 0 && b->world_size != n->world_size) {
      *error = fmt::format(
          "the rank sets differ: {} was recorded with world size {}, {} with world size {}; a "
          "rank-set diff compares the same ranks of two runs of one size",
          printable(b->path), b->world_size, printable(n->path), n->world_size);
      return false;
    }
  return true;
}

nlohmann::ordered_json rank_set_json(const RankSet& set) {
  json j;
  j["summary_version"] = kSummaryVersion;
  json rs;
  rs["traces"] = set.ranks.size();
  json ids = json::array();
  for (const auto& r : set.ranks) ids.push_back(r.identity.rank);
  rs["ranks"] = std::move(ids);
  j["rank_set"] = std::move(rs);
  add_causes_json(as_analysis(set), &j);
  json fs = json::array();
  for (const auto& f : set.findings) fs.push_back(finding_json(f));
  j["findings"] = std::move(fs);
  json ranks = json::array();
  for (const auto& r : set.ranks) {
    json x;
    x["rank"] = r.identity.rank;
    x["rank_source"] = rank_source_name(r.identity.source);
    x["path"] = printable(r.identity.path);
    x["world_size"] = r.identity.world_size >= 0 ? json(r.identity.world_size) : json(nullptr);
    x["local_rank"] = r.identity.local_rank >= 0 ? json(r.identity.local_rank) : json(nullptr);
    x["host"] = r.identity.host.empty() ? json(nullptr) : json(printable(r.identity.host));
    x["dropped_cells"] = r.dropped_cells;
    x["summary"] = r.summary;
    ranks.push_back(std::move(x));
  }
  j["ranks"] = std::move(ranks);
  return j;
}

std::string rank_set_text(const RankSet& set, int width) {
  std::string out;
  const RunAnalysis a = as_analysis(set);
  out += fmt::format("rank set   {} traces, ranks {}..{}\n", set.ranks.size(),
                     set.ranks.empty() ? 0 : set.ranks.front().identity.rank,
                     set.ranks.empty() ? 0 : set.ranks.back().identity.rank);
  out += "\nACROSS RANKS\n";
  out += causes_text(a, width);
  if (!set.findings.empty()) {
    out += "FINDINGS ACROSS RANKS\n";
    for (const auto& f : set.findings)
      out += wrap_text(fmt::format("[{}] {} ({}): {}. -> {}", severity_name(f.finding.severity),
                                   printable(f.finding.title), kind_name(f.finding.kind),
                                   printable(f.finding.evidence), f.finding.recommendation),
                       width, 2);
    out += "\n";
  }
  out += "RANK  STEPS      FINDINGS  VERDICT                 TRACE\n";
  for (const auto& r : set.ranks) {
    const std::string steps =
        r.steps ? fmt::format("{}..{}", r.first_step, r.last_step) : std::string("-");
    std::string line = fmt::format("{:<5} {:<10} {:<9} {:<23} {}", r.identity.rank, steps,
                                   r.findings, r.verdict, printable(r.identity.path));
    if (r.identity.source != RankSource::Metadata)
      line += fmt::format(" (rank from the {})", rank_source_name(r.identity.source));
    if (r.dropped_cells)
      line += fmt::format(" ({} step cells over the limit not compared)", r.dropped_cells);
    out += wrap_text(line, width, 6);
  }
  out += "\nEach rank's own summary: fpscope summary <trace>.\n";
  return out;
}

}  // namespace fpscope::analysis
