// `fpscope summary`: the one writer of the summary JSON (docs/summary-json.md), from one
// RunAnalysis; its text form is summary_text.cpp.
#include "fpscope/analysis/summary.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "block_totals.h"
#include "fpscope/analysis/causes.h"
#include "fpscope/analysis/text_escape.h"
#include "json_utf8.h"

namespace fpscope::analysis {

namespace {

using json = nlohmann::ordered_json;

json num(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}
json step_or_null(int64_t s) {
  return s >= 0 ? json(s) : json(nullptr);
}

}  // namespace

nlohmann::ordered_json finding_json(const Finding& f) {
  json j;
  j["severity"] = severity_name(f.severity);
  j["score"] = f.score;
  j["kind"] = kind_name(f.kind);
  j["tensor"] = f.tensor_id.empty() ? json(nullptr) : json(f.tensor_id);
  j["format"] = f.format ? json(spec(*f.format).name) : json(nullptr);
  j["first_step"] = step_or_null(f.first_step);
  j["last_step"] = step_or_null(f.last_step);
  j["title"] = f.title;
  j["evidence"] = f.evidence;
  j["recommendation"] = f.recommendation;
  return j;
}

namespace {

using detail::BlockTotals;

// The FP8 what-if's format comparison of one tensor (format_choice.h): the measured formats and
// the recommendation.
json format_choice_json(const FormatChoice& ch) {
  json fs = json::object();
  for (int c = 0; c < kCandidateBf16; ++c) {
    const FormatResult& r = ch.result[c];
    if (!r.measured) continue;
    json y;
    y["elements"] = r.elements;
    y["lost"] = {r.lost_lo, r.lost_hi};
    y["loss_frac"] = num(r.loss_lo);
    y["loss_frac_hi"] = num(r.loss_hi);
    y["sqnr_db"] = num(r.sqnr_db);  // null: undefined (no signal, an overflow) or exact
    y["sqnr_estimated"] = r.histogram_observations > 0;
    y["holds"] = r.holds;
    y["bits_per_element"] = kFormatCandidates[c].bits;
    y["observations"] = r.observations;
    y["first_step"] = step_or_null(r.first_step);
    y["last_step"] = step_or_null(r.last_step);
    fs[kFormatCandidates[c].key] = std::move(y);
  }
  json j;
  j["formats"] = std::move(fs);
  j["recommended"] = kFormatCandidates[ch.recommended].key;
  return j;
}

// Block-scaled formats (trace format 1.3): one tensor's totals (block_totals.h).
json block_json(const BlockTotals& b) {
  json j;
  j["observations"] = b.observations;
  j["axis"] = b.axis == 0 ? json("rows") : b.axis == 1 ? json("cols") : json("mixed");
  for (int f = 0; f < kNumBlockFormats; ++f) {
    if (!(b.mask >> f & 1u)) continue;
    const BlockFormatCounts& c = b.fmt[f];
    json y;
    y["blocks"] = c.blocks;
    y["elements"] = c.elements;
    y["flushed"] = c.flushed;
    y["saturated"] = c.saturated;
    y["zero_blocks"] = c.zero_blocks;
    y["scale_underflow"] = c.scale_underflow;
    y["scale_overflow"] = c.scale_overflow;
    y["nan_scale"] = c.nan_scale;
    const double e = static_cast<double>(c.elements);
    y["flushed_frac"] = c.elements ? num(static_cast<double>(c.flushed) / e) : json(nullptr);
    y["saturated_frac"] = c.elements ? num(static_cast<double>(c.saturated) / e) : json(nullptr);
    y["sum_err2"] = num(c.sum_err2);
    y["sum_x2"] = num(c.sum_x2);
    y["sqnr_db"] = num(detail::block_sqnr_db(c));  // null: no signal, or exact
    // Block-scale exponents: floor(log2 scale) -> blocks ("nan": NaN scales; NVFP4's zero
    // scales and MX's 2^-127 under "-127").
    json h = json::object();
    for (const auto& [bin, k] : b.scale_hist[f])
      h[bin == kBlockScaleBins - 1 ? std::string("nan") : std::to_string(bin - 127)] = k;
    y["scale_exponents"] = std::move(h);
    j[kBlockFormats[f]->name] = std::move(y);
  }
  return j;
}

}  // namespace

nlohmann::ordered_json summary_json(const trace::Trace& t, const RunAnalysis& a,
                                    const trace::Trace* baseline) {
  json j;
  j["summary_version"] = kSummaryVersion;
  json tr;
  tr["path"] = t.path;
  tr["version"] = fmt::format("{}.{}", t.version_major, t.version_minor);
  tr["truncated"] = t.truncated;
  tr["truncation_reason"] = t.truncation_reason;
  tr["clean_close"] = t.clean_close;
  tr["file_bytes"] = t.file_bytes;
  tr["dropped_bytes"] = t.dropped_bytes;
  tr["steps"] = a.steps;
  tr["first_step"] = a.steps ? json(a.first_step) : json(nullptr);
  tr["last_step"] = a.steps ? json(a.last_step) : json(nullptr);
  tr["run_steps"] = a.run_steps;
  tr["run_first_step"] = a.run_steps ? json(a.run_first_step) : json(nullptr);
  tr["run_last_step"] = a.run_steps ? json(a.run_last_step) : json(nullptr);
  tr["sampled_steps"] = a.sampled_steps;
  tr["sample_every"] = a.meta.sample_every >= 0 ? json(a.meta.sample_every) : json(nullptr);
  tr["step_source"] = trace::step_source_name(t.step_source);
  tr["observations"] = t.observations.size();
  tr["gemm_calls"] = a.gemm_calls;
  tr["tensors"] = a.risks.size();
  tr["command_line"] = a.meta.command_line;
  tr["host"] = a.meta.host.empty() ? json(nullptr) : json(a.meta.host);
  tr["probe"] = a.meta.probe.empty() ? json(nullptr) : json(a.meta.probe);
  tr["probe_version"] = a.meta.probe_version.empty() ? json(nullptr) : json(a.meta.probe_version);
  tr["emulate"] = a.meta.emulate.empty() ? json(nullptr) : json(a.meta.emulate);
  if (!a.meta.emulate.empty())  // only in emulated runs: the other outputs stay as they were
    tr["emulate_skip"] = a.meta.emulate_skip.empty() ? json(nullptr) : json(a.meta.emulate_skip);
  j["trace"] = std::move(tr);
  j["baseline"] = baseline ? json(baseline->path) : json(nullptr);
  if (baseline != nullptr) {  // the value difference (value sketches), as `fpscope compare`'s
    json vd = json::array();
    for (size_t i : rank_by_divergence(a.baseline_drift)) {
      const CrossRunDrift& d = a.baseline_drift[i];
      auto step = [](int64_t s) { return s >= 0 ? json(s) : json(nullptr); };
      vd.push_back(
          {{"tensor", d.id},
           {"first_step_rel_1pct", step(d.first_step_rel_1pct)},
           {"first_step_rel_10pct", step(d.first_step_rel_10pct)},
           {"max_rel_diff", std::isfinite(d.max_rel_diff) ? json(d.max_rel_diff) : json(nullptr)}});
    }
    j["baseline_value_difference"] = std::move(vd);
  }

  const std::vector<BlockTotals> blocks = detail::block_totals(t);
  json tensors = json::array();
  for (const auto& r : a.risks) {
    json x;
    x["id"] = r.id;
    x["name"] = r.name;
    x["op"] = r.op;
    x["role"] = trace::role_name(r.role);
    x["dtype"] = spec(r.dtype).name;
    x["shape"] = json::array({r.rows, r.cols});
    x["observations"] = r.observations;
    x["steps"] = r.steps;
    x["elements"] = r.elements;
    x["amax"] = static_cast<double>(r.amax);
    x["nan"] = r.nan;
    x["pos_inf"] = r.pos_inf;
    x["neg_inf"] = r.neg_inf;
    x["zero"] = r.zero;
    x["first_step"] = r.first_step;
    x["last_step"] = r.last_step;
    x["first_nonfinite_step"] = step_or_null(r.first_nonfinite_step);
    json fm;
    for (int i = 0; i < kNumTargets; ++i) {
      const auto& f = r.formats[i];
      json y;
      y["overflow"] = f.overflow;
      y["underflow"] = f.underflow;
      y["subnormal"] = f.subnormal;
      y["sqnr_db"] = num(f.sqnr_db);
      y["eligible"] = f.eligible;
      y["overflow_frac"] = f.overflow_frac;
      y["underflow_frac"] = f.underflow_frac;
      y["subnormal_frac"] = f.subnormal_frac;
      y["first_overflow_step"] = step_or_null(f.first_overflow_step);
      y["first_underflow_step"] = step_or_null(f.first_underflow_step);
      y["first_subnormal_step"] = step_or_null(f.first_subnormal_step);
      y["scaled"] = f.scaled;
      y["trend"] = trend_name(f.trend);
      fm[spec(kTargets[i]).name] = std::move(y);
    }
    x["formats"] = std::move(fm);
    x["severity"] = severity_name(r.severity);
    x["score"] = r.score;
    x["severity_format"] =
        r.severity == Severity::None ? json(nullptr) : json(spec(r.severity_format).name);
    x["severity_reason"] = r.severity_reason;
    // Only for traces that carry block sections (format 1.3, FPSCOPE_FORMATS).
    if (r.tensor < blocks.size() && blocks[r.tensor].observations > 0)
      x["block_formats"] = block_json(blocks[r.tensor]);
    // Only for traces that carry block sections, like block_formats (the FP8 what-if ran).
    if (const FormatChoice* ch = format_choice_of(a.format_choices, r.tensor))
      x["format_choice"] = format_choice_json(*ch);
    tensors.push_back(std::move(x));
  }
  j["tensors"] = std::move(tensors);

  json ls = json::array();
  for (const auto& r : a.loss_scale.series) {
    json x;
    x["step"] = r.step;
    x["scale"] = num(r.scale);
    x["found_inf"] = r.found_inf;
    x["next_scale"] = r.next_scale > 0.0 ? num(r.next_scale) : json(nullptr);
    ls.push_back(std::move(x));
  }
  j["loss_scale"] = std::move(ls);

  const auto& la = a.loss_scale;
  json lsum;
  lsum["records"] = la.series.size();
  lsum["skipped_steps"] = la.skipped.size();
  lsum["backoffs"] = la.backoffs;
  lsum["growths"] = la.growths;
  lsum["min_scale"] = la.present ? num(la.min_scale) : json(nullptr);
  lsum["max_scale"] = la.present ? num(la.max_scale) : json(nullptr);
  lsum["final_scale"] = la.present ? num(la.final_scale) : json(nullptr);
  lsum["steps_at_min"] = la.steps_at_min;
  lsum["collapsed"] = la.collapsed;
  lsum["collapse_step"] = step_or_null(la.collapse_step);
  lsum["collapse_reason"] = la.collapse_reason;
  json sk = json::array();
  for (const auto& s : la.skipped) {
    json x;
    x["step"] = s.step;
    x["scale"] = num(s.scale);
    x["first_offender"] = s.offender_tensor >= 0 ? json(s.offender_id) : json(nullptr);
    x["offender_seq"] = s.offender_tensor >= 0 ? json(s.offender_seq) : json(nullptr);
    x["reason"] = s.reason;
    sk.push_back(std::move(x));
  }
  lsum["skipped"] = std::move(sk);
  j["loss_scale_summary"] = std::move(lsum);

  json ws = json::array();
  for (const auto& w : a.weights) {
    json x;
    x["name"] = w.name;
    x["updates"] = w.updates;
    x["bf16"] = {{"stagnant", w.bf16_stagnant},
                 {"stagnant_lo", w.bf16_stagnant_lo},
                 {"stagnant_hi", w.bf16_stagnant_hi},
                 {"lost_mass", w.bf16_lost_mass}};
    x["fp16"] = {{"stagnant", w.fp16_stagnant},
                 {"stagnant_lo", w.fp16_stagnant_lo},
                 {"stagnant_hi", w.fp16_stagnant_hi},
                 {"lost_mass", w.fp16_lost_mass}};
    x["master_dtype"] = spec(w.master_dtype).name;
    x["not_fp32"] = w.not_fp32;
    x["elements"] = w.elements;
    x["watched"] = w.watched;
    x["sampled"] = w.sampled;
    x["changed"] = w.changed;
    x["below_bf16_half_ulp"] = w.below_bf16_half_ulp;
    x["below_fp16_half_ulp"] = w.below_fp16_half_ulp;
    json rh = json::array();
    for (const auto& [bin, n] : w.ratio_hist) rh.push_back({{"log2_ratio", bin}, {"count", n}});
    x["ratio_hist"] = std::move(rh);
    ws.push_back(std::move(x));
  }
  j["weights"] = std::move(ws);
  json left = json::array();
  for (const auto& l : left_out_weights(t))
    left.push_back({{"name", l.name}, {"reason", l.reason}, {"step", l.step}});
  j["weights_left_out"] = std::move(left);

  json wi = json::array();
  for (const auto& w : a.whatif) {
    json x;
    x["tensor"] = w.id;
    x["format"] = spec(w.format).name;
    x["steps"] = w.steps.size();
    x["saturate_steps"] = w.saturate_steps;
    x["underflow_steps"] = w.underflow_steps;
    x["first_saturate_step"] = step_or_null(w.first_saturate_step);
    x["first_underflow_step"] = step_or_null(w.first_underflow_step);
    x["eligible"] = w.eligible;
    x["overflow"] = {w.overflow_lo, w.overflow_hi};
    x["underflow"] = {w.underflow_lo, w.underflow_hi};
    x["overflow_frac"] = w.overflow_frac;
    x["underflow_frac"] = w.underflow_frac;
    x["exact_steps"] = w.exact_steps;
    x["histogram_steps"] = w.histogram_steps;
    x["counts"] = w.histogram_steps == 0 ? "exact" : w.exact_steps == 0 ? "histogram" : "mixed";
    x["seed_steps"] = w.seed_steps;
    x["first_seed_step"] = step_or_null(w.first_seed_step);
    x["worst_step"] = step_or_null(w.worst_step);
    x["worst_overflow_frac"] = w.worst_overflow_frac;
    x["worst_scale"] = w.worst_step >= 0 ? num(w.worst_scale) : json(nullptr);
    wi.push_back(std::move(x));
  }
  j["fp8_whatif_available"] = a.options.run_whatif;
  j["fp8_whatif"] = std::move(wi);

  json dr = json::array();
  for (const auto& d : a.drift) {
    json x;
    x["tensor"] = d.id;
    json cps = json::array();
    for (const auto& c : d.change_points)
      cps.push_back({{"step", c.step},
                     {"series", c.series},
                     {"before", num(c.before)},
                     {"after", num(c.after)}});
    x["change_points"] = std::move(cps);
    dr.push_back(std::move(x));
  }
  j["drift_available"] = a.options.run_drift;
  j["drift"] = std::move(dr);

  json fs = json::array();
  for (const auto& f : a.findings) fs.push_back(finding_json(f));
  j["findings"] = std::move(fs);
  // At most kMaxWarningsJson of them (a hostile trace can hold millions), with the total.
  constexpr uint64_t kMaxWarningsJson = 1000;
  json warnings = json::array();
  uint64_t n_warnings = 0;
  for (const auto& e : t.events) {
    if (e.level < trace::EventLevel::Warning) continue;
    if (n_warnings++ >= kMaxWarningsJson) continue;
    json w;
    w["step"] = e.step;
    w["level"] = e.level == trace::EventLevel::Error ? "error" : "warning";
    w["text"] = e.text;
    warnings.push_back(std::move(w));
  }
  j["warnings"] = std::move(warnings);
  j["warnings_total"] = n_warnings;
  add_causes_json(a, &j);  // "verdict" and "causes" (causes.h)
  detail::make_utf8(j);    // names are bytes: one replacement rule (text_escape.h)
  return j;
}

}  // namespace fpscope::analysis
