// Over 600 lines: the rules, the three outputs (text, Markdown, JSON) and their rank-set forms of
// one command; the next addition should move the rank-set outputs to their own file.
#include "fpscope/analysis/diff.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "block_totals.h"
#include "fpscope/analysis/text_escape.h"
#include "json_utf8.h"

namespace fpscope::analysis {

bool parse_fail_on(const std::string& spec_str, DiffRules* rules, std::string* error) {
  DiffRules r;
  r.overflow = r.sqnr = r.skipped = r.amax = r.truncated = false;
  std::stringstream ss(spec_str);
  std::string item;
  bool any = false;
  while (std::getline(ss, item, ',')) {
    item.erase(
        std::remove_if(item.begin(), item.end(), [](unsigned char c) { return std::isspace(c); }),
        item.end());
    if (item.empty()) continue;
    any = true;
    std::string name = item, value;
    if (auto eq = item.find('='); eq != std::string::npos) {
      name = item.substr(0, eq);
      value = item.substr(eq + 1);
    }
    double v = 0;
    if (!value.empty()) {
      char* end = nullptr;
      v = std::strtod(value.c_str(), &end);
      if (end == value.c_str() || *end != 0 || !(v > 0) || !std::isfinite(v)) {
        if (error) *error = fmt::format("--fail-on: bad threshold '{}' for rule '{}'", value, name);
        return false;
      }
    }
    if (name == "all") {
      r.overflow = r.sqnr = r.skipped = r.amax = r.truncated = true;
    } else if (name == "none") {
    } else if (name == "truncated") {
      r.truncated = true;
    } else if (name == "overflow") {
      r.overflow = true;
    } else if (name == "skipped") {
      r.skipped = true;
    } else if (name == "sqnr") {
      r.sqnr = true;
      if (!value.empty()) r.sqnr_drop_db = v;
    } else if (name == "divergence") {
      r.divergence = true;
      if (!value.empty()) r.divergence_max = v;
    } else if (name == "amax") {
      r.amax = true;
      if (!value.empty()) {
        if (v <= 1.0) {
          if (error) *error = fmt::format("--fail-on: amax factor must be > 1 (got {})", value);
          return false;
        }
        r.amax_growth = v;
      }
    } else {
      if (error)
        *error = fmt::format(
            "--fail-on: unknown rule '{}' (rules: overflow, sqnr[=dB], skipped, amax[=factor], "
            "truncated, divergence[=fraction], all, none)",
            name);
      return false;
    }
    if ((name == "overflow" || name == "skipped" || name == "truncated" || name == "all" ||
         name == "none") &&
        !value.empty()) {
      if (error) *error = fmt::format("--fail-on: rule '{}' takes no threshold", name);
      return false;
    }
  }
  if (!any) {
    if (error) *error = "--fail-on: empty rule list";
    return false;
  }
  *rules = r;
  return true;
}

namespace {

RunFacts run_facts(const trace::Trace& t, const RunAnalysis& a) {
  RunFacts f;
  f.path = t.path;
  f.truncated = t.truncated;
  f.truncation_reason = t.truncation_reason;
  f.dropped_bytes = t.dropped_bytes;
  f.run_steps = a.run_steps;
  f.sampled_steps = a.sampled_steps;
  f.last_step = a.run_last_step;
  f.observations = t.observations.size();
  const auto& ls = a.loss_scale;
  f.loss_scale = ls.present;
  f.skipped = ls.skipped.size();
  f.backoffs = ls.backoffs;
  f.growths = ls.growths;
  f.min_scale = ls.min_scale;
  f.final_scale = ls.final_scale;
  f.collapsed = ls.collapsed;
  return f;
}

std::string facts_text(const RunFacts& f) {
  std::string s = fmt::format("{}, {} sampled", plural(f.run_steps, "step"), f.sampled_steps);
  if (f.run_steps) s += fmt::format(", last step {}", f.last_step);
  s += f.truncated ? fmt::format("; TRUNCATED ({}; {} bytes dropped)",
                                 f.truncation_reason.empty() ? "no footer" : f.truncation_reason,
                                 f.dropped_bytes)
                   : "; complete";
  return s;
}

std::string loss_scale_text(const RunFacts& f) {
  if (!f.loss_scale) return "none recorded";
  return fmt::format("{}, {}, {}; min {}, final {}{}", plural(f.skipped, "skipped step"),
                     plural(f.backoffs, "backoff"), plural(f.growths, "growth"),
                     fmt_num(f.min_scale), fmt_num(f.final_scale),
                     f.collapsed ? ", COLLAPSED" : "");
}

std::string id_list(const std::vector<std::string>& ids, size_t max_list, const char* quote) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i == max_list) {
      s += fmt::format(", ... {} more", ids.size() - max_list);
      break;
    }
    s += fmt::format("{}{}{}{}", i ? ", " : "", quote, ids[i], quote);
  }
  return s;
}

// "0.5% -> 3.1% (SQNR 30.0 -> 25.0 dB)"
std::string block_change_text(const BlockLossChange& c) {
  return fmt::format("{} -> {} (SQNR {} -> {})", fmt_pct(c.base_loss), fmt_pct(c.new_loss),
                     fmt_sqnr(c.base_sqnr_db, false), fmt_sqnr(c.new_sqnr_db));
}

// "+2.60 pp": the loss change in percentage points.
std::string block_change_pp(const BlockLossChange& c) {
  return fmt::format("{:+.2f} pp", (c.new_loss - c.base_loss) * 100.0);
}

nlohmann::ordered_json facts_json(const RunFacts& f) {
  nlohmann::ordered_json j;
  j["path"] = f.path;
  j["truncated"] = f.truncated;
  j["truncation_reason"] = f.truncation_reason;
  j["dropped_bytes"] = f.dropped_bytes;
  j["steps"] = f.run_steps;
  j["sampled_steps"] = f.sampled_steps;
  j["last_step"] = f.run_steps ? nlohmann::ordered_json(f.last_step) : nullptr;
  j["observations"] = f.observations;
  nlohmann::ordered_json ls;
  ls["present"] = f.loss_scale;
  ls["skipped_steps"] = f.skipped;
  ls["backoffs"] = f.backoffs;
  ls["growths"] = f.growths;
  ls["min_scale"] = f.loss_scale ? nlohmann::ordered_json(f.min_scale) : nullptr;
  ls["final_scale"] = f.loss_scale ? nlohmann::ordered_json(f.final_scale) : nullptr;
  ls["collapsed"] = f.collapsed;
  j["loss_scale"] = std::move(ls);
  return j;
}

}  // namespace

DiffResult diff_runs(const trace::TraceModel& base_m, const RunAnalysis& base_a,
                     const trace::TraceModel& neu_m, const RunAnalysis& new_a,
                     const DiffRules& rules) {
  const auto& base = base_m.trace();
  const auto& neu = neu_m.trace();
  DiffResult d;
  CrossRunOptions co;
  co.sqnr_drop_db = rules.sqnr_drop_db;
  co.amax_ratio = rules.amax_growth;
  d.drift = compare_runs(base_m, neu_m, co);
  std::map<uint32_t, const TensorRisk*> rb, rn;
  for (const auto& r : base_a.risks) rb[r.tensor] = &r;
  for (const auto& r : new_a.risks) rn[r.tensor] = &r;
  std::vector<bool> mb(base.tensors.size()), mn(neu.tensors.size());
  for (const auto& x : d.drift) {
    mb[x.match.base] = true;
    mn[x.match.other] = true;
    const auto* b = rb.count(x.match.base) ? rb[x.match.base] : nullptr;
    const auto* n = rn.count(x.match.other) ? rn[x.match.other] : nullptr;
    if (!b || !n) continue;
    if (rules.overflow) {
      const uint64_t nf_b = b->nan + b->pos_inf + b->neg_inf,
                     nf_n = n->nan + n->pos_inf + n->neg_inf;
      if (nf_n > 0 && nf_b == 0)
        d.regressions.push_back(
            {"overflow", x.id,
             fmt::format("{}: data now holds NaN/Inf ({} NaN, {} Inf) from step {}", x.id, n->nan,
                         n->pos_inf + n->neg_inf, n->first_nonfinite_step)});
      for (int i = 0; i < kNumTargets; ++i) {
        const Format f = kTargets[i];
        if (f == Format::BF16) continue;  // rule: FP16 and FP8
        const bool fp8 = f != Format::FP16;
        // Unscaled FP8 counts say nothing about an FP8 recipe: only scaled ones count.
        if (fp8 && !n->formats[i].scaled) continue;
        if (n->formats[i].overflow > 0 && b->formats[i].overflow == 0)
          d.regressions.push_back(
              {"overflow", x.id,
               fmt::format("{}: new {} overflow: {} elements ({}) from step {}, none in base", x.id,
                           spec(f).name, n->formats[i].overflow,
                           fmt_pct(n->formats[i].overflow_frac),
                           n->formats[i].first_overflow_step)});
      }
    }
    if (rules.sqnr) {
      for (int i = 0; i < kNumTargets; ++i) {
        const double delta = x.sqnr_delta_db[i];
        if (std::isfinite(delta) && -delta > rules.sqnr_drop_db)
          d.regressions.push_back(
              {"sqnr", x.id,
               fmt::format("{}: {} SQNR fell {:.1f} dB ({:.1f} -> {:.1f} dB; limit {} dB)", x.id,
                           spec(kTargets[i]).name, -delta, x.base_sqnr_db[i], x.other_sqnr_db[i],
                           fmt_num(rules.sqnr_drop_db))});
        else if (std::isinf(x.base_sqnr_db[i]) && std::isfinite(x.other_sqnr_db[i]))
          d.regressions.push_back({"sqnr", x.id,
                                   fmt::format("{}: {} cast was exact in base, now SQNR {:.1f} dB",
                                               x.id, spec(kTargets[i]).name, x.other_sqnr_db[i])});
      }
    }
    if (rules.amax && x.amax_ratio > rules.amax_growth)
      d.regressions.push_back(
          {"amax", x.id,
           fmt::format("{}: amax grew x{} ({} -> {}; limit x{}){}", x.id, fmt_num(x.amax_ratio),
                       fmt_num(x.base_amax), fmt_num(x.other_amax), fmt_num(rules.amax_growth),
                       x.first_step_beyond >= 0
                           ? fmt::format(", first beyond at step {}", x.first_step_beyond)
                           : "")});
  }
  for (uint32_t i = 0; i < base.tensors.size(); ++i)
    if (!mb[i] && rb.count(i)) d.only_base.push_back(base.tensors[i].id);
  for (uint32_t i = 0; i < neu.tensors.size(); ++i)
    if (!mn[i] && rn.count(i)) d.only_new.push_back(neu.tensors[i].id);
  d.sketches = !base.sketches.empty() && !neu.sketches.empty();
  if (rules.divergence && d.sketches)
    for (const auto& x : d.drift) {
      const int64_t at = first_step_above(x.steps, x.rel_diff_series, rules.divergence_max);
      if (at < 0) continue;
      const auto it = std::find(x.steps.begin(), x.steps.end(), static_cast<uint64_t>(at));
      d.regressions.push_back(
          {"divergence", x.id,
           fmt::format("{}: values differ from base by {} at step {} (limit {}; max {})", x.id,
                       fmt_rel_diff(x.rel_diff_series[static_cast<size_t>(it - x.steps.begin())]),
                       at, fmt_rel_diff(rules.divergence_max), fmt_rel_diff(x.max_rel_diff))});
    }
  // Block-scaled formats: each matched tensor's loss in the formats both runs measured on it.
  if (!base.block_stats.empty() && !neu.block_stats.empty()) {
    const std::vector<detail::BlockTotals> bb = detail::block_totals(base),
                                           bn = detail::block_totals(neu);
    for (const auto& x : d.drift) {
      if (x.match.base >= bb.size() || x.match.other >= bn.size()) continue;
      const detail::BlockTotals &b = bb[x.match.base], &n = bn[x.match.other];
      for (int f = 0; f < kNumBlockFormats; ++f)
        if (b.measured(f) && n.measured(f))
          d.block_changes.push_back(
              {x.id, f, detail::block_loss_frac(b.fmt[f]), detail::block_loss_frac(n.fmt[f]),
               detail::block_sqnr_db(b.fmt[f]), detail::block_sqnr_db(n.fmt[f])});
    }
  }
  d.base = run_facts(base, base_a);
  d.neu = run_facts(neu, new_a);
  d.base_skipped = d.base.skipped;
  d.new_skipped = d.neu.skipped;
  if (rules.truncated) {
    if (neu.truncated)
      d.regressions.push_back(
          {"truncated", "",
           fmt::format("new trace is truncated ({}; {} bytes dropped): the run crashed or its "
                       "trace was cut after step {}; base {}",
                       neu.truncation_reason.empty() ? "no footer" : neu.truncation_reason,
                       neu.dropped_bytes, d.neu.last_step, plural(d.base.run_steps, "step"))});
    else if (d.neu.run_steps < d.base.run_steps)
      d.regressions.push_back(
          {"truncated", "",
           fmt::format("new run has fewer steps than base: {} < {} (last step {} vs {})",
                       d.neu.run_steps, d.base.run_steps, d.neu.last_step, d.base.last_step)});
  }
  if (rules.skipped && d.new_skipped > d.base_skipped)
    d.regressions.push_back(
        {"skipped", "",
         fmt::format("loss-scale-skipped steps {} -> {}{}", d.base_skipped, d.new_skipped,
                     new_a.loss_scale.collapsed ? " (loss scale collapsed)" : "")});
  std::stable_sort(d.regressions.begin(), d.regressions.end(),
                   [](const Regression& a, const Regression& b) {
                     return a.rule != b.rule ? a.rule < b.rule : a.tensor_id < b.tensor_id;
                   });
  return d;
}

namespace {

std::string step_or_dash(int64_t s) {
  return s >= 0 ? fmt::format("{}", s) : std::string("-");
}

// The tensors whose values differ by more than 1 % at some step, earliest first.
std::string value_difference_text(const DiffResult& d, size_t max_list) {
  std::vector<size_t> over;
  for (size_t i : rank_by_divergence(d.drift))
    if (d.drift[i].first_step_rel_1pct >= 0) over.push_back(i);
  std::string o = fmt::format(
      "value difference (sketches): {} of {} matched tensors differ by more than 1%{}\n",
      over.size(), d.drift.size(), over.empty() ? "" : ":");
  for (size_t n = 0; n < over.size(); ++n) {
    if (n == max_list) {
      o += fmt::format("  ... {} more (--json: value_difference)\n", over.size() - max_list);
      break;
    }
    const CrossRunDrift& x = d.drift[over[n]];
    o += fmt::format("  {}: > 1% from step {}, > 10% from step {}, max {}\n", printable(x.id),
                     x.first_step_rel_1pct, step_or_dash(x.first_step_rel_10pct),
                     fmt_rel_diff(x.max_rel_diff));
  }
  return o;
}

std::string value_difference_markdown(const DiffResult& d, size_t max_list, const char* sub) {
  const std::vector<size_t> ranked = rank_by_divergence(d.drift);
  std::string m = fmt::format(
      "\n{} Value difference\n\n||new - base|| / ||base|| per step, estimated from the value "
      "sketches (docs/metrics.md \"Cross-run difference\"); earliest divergence first.\n\n"
      "| tensor | first step > 1% | first step > 10% | max rel diff |\n|---|--:|--:|--:|\n",
      sub);
  for (size_t n = 0; n < ranked.size(); ++n) {
    if (n == max_list) {
      m +=
          fmt::format("\n... {} more rows (--json: value_difference).\n", ranked.size() - max_list);
      break;
    }
    const CrossRunDrift& x = d.drift[ranked[n]];
    m += fmt::format("| {} | {} | {} | {} |\n", md_text(x.id), step_or_dash(x.first_step_rel_1pct),
                     step_or_dash(x.first_step_rel_10pct), fmt_rel_diff(x.max_rel_diff));
  }
  if (ranked.empty()) m += "| (no matched tensor has sketches in both runs) | | | |\n";
  return m;
}

std::string diff_text_of(const DiffResult& d, const std::string& base_path,
                         const std::string& new_path, size_t max_list) {
  // Terminal text: every line through printable() (escape sequences in names, issue 17); a
  // newline inside a name would split its line, so the names are escaped where they go in.
  std::vector<std::string> only_base, only_new;
  for (const auto& id : d.only_base) only_base.push_back(printable(id));
  for (const auto& id : d.only_new) only_new.push_back(printable(id));
  std::string o =
      fmt::format("base {}\n     {}\nnew  {}\n     {}\n", printable(base_path),
                  printable(facts_text(d.base)), printable(new_path), printable(facts_text(d.neu)));
  o += fmt::format("matched {}; only in base {}; only in new {}\n",
                   plural(d.drift.size(), "tensor"), d.only_base.size(), d.only_new.size());
  if (!only_base.empty()) o += "  only in base: " + id_list(only_base, max_list, "") + "\n";
  if (!only_new.empty()) o += "  only in new:  " + id_list(only_new, max_list, "") + "\n";
  o += fmt::format("loss scale base: {}\n           new:  {}\n", loss_scale_text(d.base),
                   loss_scale_text(d.neu));
  if (d.regressions.empty()) {
    o += "no regressions\n";
  } else {
    o += fmt::format("{} regression{}:\n", d.regressions.size(),
                     d.regressions.size() == 1 ? "" : "s");
    for (const auto& r : d.regressions)
      o += fmt::format("  [{}] {}\n", r.rule, printable(r.message));
  }
  int shown = 0;
  for (const auto& x : d.drift) {
    if (x.first_step_beyond < 0) continue;
    if (shown++ == 0) o += "drift beyond thresholds:\n";
    o += fmt::format("  {}: {} at step {} (amax x{})\n", printable(x.id), x.first_beyond_reason,
                     x.first_step_beyond, fmt_num(x.amax_ratio));
  }
  if (d.sketches) o += value_difference_text(d, max_list);
  if (!d.block_changes.empty()) {
    std::vector<const BlockLossChange*> changed;
    for (const auto& c : d.block_changes)
      if (c.new_loss != c.base_loss) changed.push_back(&c);
    o += fmt::format(
        "block formats: loss (flushed + saturated inside blocks) changed in {} of {} "
        "tensor/format pairs both runs measured{}\n",
        changed.size(), d.block_changes.size(), changed.empty() ? "" : ":");
    for (size_t i = 0; i < changed.size(); ++i) {
      if (i == max_list) {
        o += fmt::format("  ... {} more (--json: block_formats)\n", changed.size() - max_list);
        break;
      }
      o += fmt::format("  {} {}: {}\n", printable(changed[i]->tensor_id),
                       detail::block_format_display_name(changed[i]->format),
                       block_change_text(*changed[i]));
    }
  }
  return o;
}

// `heading`: the title line ("## fpscope diff"); `sub`: the prefix of the section headings.
std::string diff_markdown_of(const DiffResult& d, const std::string& base_path,
                             const std::string& new_path, size_t max_list,
                             const std::string& heading, const char* sub) {
  // Markdown: every foreign text through md_text (text_escape.h), names as escaped plain text.
  std::vector<std::string> only_base, only_new;
  for (const auto& id : d.only_base) only_base.push_back(md_text(id));
  for (const auto& id : d.only_new) only_new.push_back(md_text(id));
  std::string m = fmt::format(
      "{}\n\n- base: {}: {}\n- new: {}: {}\n- matched tensors: {} (only in "
      "base: {}, only in new: {})\n",
      heading, md_text(base_path), md_text(facts_text(d.base)), md_text(new_path),
      md_text(facts_text(d.neu)), d.drift.size(), d.only_base.size(), d.only_new.size());
  if (!only_base.empty()) m += "  - only in base: " + id_list(only_base, max_list, "") + "\n";
  if (!only_new.empty()) m += "  - only in new: " + id_list(only_new, max_list, "") + "\n";
  m += fmt::format("- loss scale: base {}; new {}\n", loss_scale_text(d.base),
                   loss_scale_text(d.neu));
  m += fmt::format("\n{} Regressions ({})\n\n", sub, d.regressions.size());
  if (d.regressions.empty()) m += "None.\n";
  for (const auto& r : d.regressions) m += fmt::format("- **{}** {}\n", r.rule, md_text(r.message));
  m += fmt::format("\n{} Matched tensors\n\n", sub);
  m += "| tensor | amax base | amax new | ratio | first step beyond |\n|---|--:|--:|--:|---|\n";
  for (const auto& x : d.drift)
    m += fmt::format("| {} | {} | {} | {} | {} |\n", md_text(x.id), fmt_num(x.base_amax),
                     fmt_num(x.other_amax), fmt_num(x.amax_ratio),
                     x.first_step_beyond >= 0
                         ? fmt::format("{} ({})", x.first_step_beyond, x.first_beyond_reason)
                         : "-");
  if (d.sketches) m += value_difference_markdown(d, max_list, sub);
  if (!d.block_changes.empty()) {
    m += fmt::format(
        "\n{} Block-scaled formats\n\nLoss: flushed + saturated inside blocks, of the elements; "
        "only formats both runs measured on the tensor.\n\n| tensor | format | loss base | loss "
        "new | change | SQNR base | SQNR new |\n|---|---|--:|--:|--:|--:|--:|\n",
        sub);
    for (size_t i = 0; i < d.block_changes.size(); ++i) {
      if (i == max_list) {
        m += fmt::format("\n... {} more rows (--json: block_formats).\n",
                         d.block_changes.size() - max_list);
        break;
      }
      const BlockLossChange& c = d.block_changes[i];
      m += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", md_text(c.tensor_id),
                       detail::block_format_display_name(c.format), fmt_pct(c.base_loss),
                       fmt_pct(c.new_loss), block_change_pp(c), fmt_sqnr(c.base_sqnr_db),
                       fmt_sqnr(c.new_sqnr_db));
    }
  }
  return m;
}

}  // namespace

std::string diff_text(const DiffResult& d, const trace::Trace& base, const trace::Trace& neu,
                      size_t max_list) {
  return diff_text_of(d, base.path, neu.path, max_list);
}

std::string diff_markdown(const DiffResult& d, const trace::Trace& base, const trace::Trace& neu,
                          size_t max_list) {
  return diff_markdown_of(d, base.path, neu.path, max_list, "## fpscope diff", "###");
}

nlohmann::ordered_json diff_json(const DiffResult& d, const DiffRules& rules) {
  nlohmann::ordered_json j;
  j["base"] = facts_json(d.base);
  j["new"] = facts_json(d.neu);
  j["matched"] = d.drift.size();
  j["only_base"] = d.only_base;
  j["only_new"] = d.only_new;
  j["base_skipped"] = d.base_skipped;
  j["new_skipped"] = d.new_skipped;
  nlohmann::ordered_json r;
  r["overflow"] = rules.overflow;
  r["sqnr"] = rules.sqnr ? nlohmann::ordered_json(rules.sqnr_drop_db) : nullptr;
  r["skipped"] = rules.skipped;
  r["amax"] = rules.amax ? nlohmann::ordered_json(rules.amax_growth) : nullptr;
  r["truncated"] = rules.truncated;
  if (rules.divergence) r["divergence"] = rules.divergence_max;  // off: key absent, as before
  j["rules"] = std::move(r);
  auto regs = nlohmann::ordered_json::array();
  for (const auto& x : d.regressions)
    regs.push_back({{"rule", x.rule}, {"tensor", x.tensor_id}, {"message", x.message}});
  j["regressions"] = std::move(regs);
  if (!d.block_changes.empty()) {  // only when both traces carry block statistics
    auto bl = nlohmann::ordered_json::array();
    auto num = [](double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nullptr; };
    for (const auto& c : d.block_changes)
      bl.push_back({{"tensor", c.tensor_id},
                    {"format", kBlockFormats[c.format]->name},
                    {"base_loss", c.base_loss},
                    {"new_loss", c.new_loss},
                    {"base_sqnr_db", num(c.base_sqnr_db)},
                    {"new_sqnr_db", num(c.new_sqnr_db)}});
    j["block_formats"] = std::move(bl);
  }
  if (d.sketches) {  // only when both traces carry value sketches
    auto vd = nlohmann::ordered_json::array();
    auto step = [](int64_t s) { return s >= 0 ? nlohmann::ordered_json(s) : nullptr; };
    for (const auto& x : d.drift)
      vd.push_back(
          {{"tensor", x.id},
           {"first_step_rel_1pct", step(x.first_step_rel_1pct)},
           {"first_step_rel_10pct", step(x.first_step_rel_10pct)},
           {"max_rel_diff",
            std::isfinite(x.max_rel_diff) ? nlohmann::ordered_json(x.max_rel_diff) : nullptr}});
    j["value_difference"] = std::move(vd);
  }
  detail::make_utf8(j);  // names are bytes: one replacement rule (text_escape.h)
  return j;
}

namespace {

// "amax, overflow": the distinct rules that fired (regressions are sorted by rule).
std::string rules_fired(const DiffResult& d) {
  std::string s;
  for (size_t i = 0; i < d.regressions.size(); ++i)
    if (i == 0 || d.regressions[i].rule != d.regressions[i - 1].rule)
      s += (s.empty() ? "" : ", ") + d.regressions[i].rule;
  return s.empty() ? "-" : s;
}

// The rank-set headline: the ranks compared, then how many regressed and which.
std::string rank_set_headline(const std::vector<RankDiff>& ranks) {
  size_t total = 0;
  std::vector<int64_t> bad;
  for (const auto& r : ranks) {
    total += r.diff.regressions.size();
    if (!r.diff.regressions.empty()) bad.push_back(r.rank);
  }
  if (bad.empty()) return "no regressions on any rank";
  std::string list;
  for (size_t i = 0; i < bad.size(); ++i) list += fmt::format("{}{}", i ? ", " : "", bad[i]);
  return fmt::format("{} of {} regressed ({} {}), {} in all", plural(bad.size(), "rank"),
                     ranks.size(), bad.size() == 1 ? "rank" : "ranks", list,
                     plural(total, "regression"));
}

std::string rank_range(const std::vector<RankDiff>& ranks) {
  return ranks.empty() ? std::string("none")
                       : fmt::format("{}..{}", ranks.front().rank, ranks.back().rank);
}

}  // namespace

std::string rank_set_diff_text(const std::vector<RankDiff>& ranks, size_t max_list) {
  std::string o = fmt::format("rank set   {} in each run ({}), matched by rank\n",
                              plural(ranks.size(), "rank"), rank_range(ranks));
  o += "RANK  REGRESSIONS  RULES\n";
  for (const auto& r : ranks)
    o += fmt::format("{:<5} {:<12} {}\n", r.rank, r.diff.regressions.size(), rules_fired(r.diff));
  o += rank_set_headline(ranks) + "\n";
  for (const auto& r : ranks) {
    o += fmt::format("\nrank {}\n", r.rank);
    const std::string body = diff_text_of(r.diff, r.diff.base.path, r.diff.neu.path, max_list);
    size_t begin = 0;
    while (begin < body.size()) {
      const size_t end = body.find('\n', begin);
      const size_t stop = end == std::string::npos ? body.size() : end + 1;
      o += "  " + body.substr(begin, stop - begin);
      begin = stop;
    }
  }
  return o;
}

std::string rank_set_diff_markdown(const std::vector<RankDiff>& ranks, size_t max_list) {
  std::string m = fmt::format(
      "## fpscope diff: rank set\n\n- {} in each run ({}), matched by rank\n- {}\n\n"
      "| rank | regressions | rules |\n|--:|--:|---|\n",
      plural(ranks.size(), "rank"), rank_range(ranks), rank_set_headline(ranks));
  for (const auto& r : ranks)
    m += fmt::format("| {} | {} | {} |\n", r.rank, r.diff.regressions.size(), rules_fired(r.diff));
  for (const auto& r : ranks)
    m += "\n" + diff_markdown_of(r.diff, r.diff.base.path, r.diff.neu.path, max_list,
                                 fmt::format("### rank {}", r.rank), "####");
  return m;
}

nlohmann::ordered_json rank_set_diff_json(const std::vector<RankDiff>& ranks,
                                          const DiffRules& rules) {
  nlohmann::ordered_json j, ids = nlohmann::ordered_json::array();
  for (const auto& r : ranks) ids.push_back(r.rank);
  j["rank_set"] = {{"ranks", std::move(ids)}};
  auto per_rank = nlohmann::ordered_json::array();
  auto regs = nlohmann::ordered_json::array();
  for (const auto& r : ranks) {
    nlohmann::ordered_json d = diff_json(r.diff, rules);
    if (j.find("rules") == j.end()) j["rules"] = d["rules"];
    d.erase("rules");
    for (const auto& x : d["regressions"])
      regs.push_back({{"rank", r.rank},
                      {"rule", x["rule"]},
                      {"tensor", x["tensor"]},
                      {"message", x["message"]}});
    nlohmann::ordered_json e;
    e["rank"] = r.rank;
    for (auto& [k, v] : d.items()) e[k] = std::move(v);
    per_rank.push_back(std::move(e));
  }
  if (j.find("rules") == j.end()) j["rules"] = diff_json(DiffResult{}, rules)["rules"];
  j["regressions"] = std::move(regs);
  j["ranks"] = std::move(per_rank);
  return j;
}

}  // namespace fpscope::analysis
