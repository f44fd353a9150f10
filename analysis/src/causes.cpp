// Findings grouped by cause, and the run's verdict (contract: fpscope/analysis/causes.h).
// (~640 lines: one table of causes, one switch per finding kind, the verdict; the next cause
// family should move the per-kind classification into its own file.)
#include "fpscope/analysis/causes.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "findings_families.h"
#include "fpscope/analysis/text_escape.h"

namespace fpscope::analysis {

const char* cause_kind_name(CauseKind k) {
  switch (k) {
    case CauseKind::NonfiniteProduced:
      return "nonfinite";
    case CauseKind::LossScaler:
      return "loss_scaler";
    case CauseKind::NonfiniteInSkipped:
      return "nonfinite_in_skipped_steps";
    case CauseKind::RangeOverflow:
      return "range_overflow";
    case CauseKind::Underflow:
      return "underflow";
    case CauseKind::Precision:
      return "precision";
    case CauseKind::MasterWeights:
      return "master_weights";
    case CauseKind::LossScaledOverflow:
      return "loss_scaled_overflow";
    case CauseKind::Fp8Saturation:
      return "fp8_scaling_lag";
    case CauseKind::Fp8Underflow:
      return "fp8_underflow";
    case CauseKind::IntendedInfinity:
      return "intended_infinity";
    case CauseKind::Drift:
      return "drift";
    case CauseKind::BaselineDrift:
      return "baseline_drift";
    case CauseKind::ReplicaDesync:
      return "replica_desync";
    case CauseKind::RankSkew:
      return "rank_skew";
    case CauseKind::BlockFormats:
      return "block_formats";
  }
  return "unknown";
}

const char* verdict_state_name(VerdictState s) {
  switch (s) {
    case VerdictState::Healthy:
      return "healthy";
    case VerdictState::AtRisk:
      return "at_risk";
    case VerdictState::Broken:
      return "broken";
    case VerdictState::Unmeasured:
      return "unmeasured";
  }
  return "unknown";
}

std::string tensor_list(const std::vector<std::string>& ids, size_t shown) {
  std::string s;
  const size_t n = std::min(ids.size(), shown);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) s += (i + 1 == n && ids.size() == n) ? " and " : ", ";
    s += ids[i];
  }
  if (ids.size() > n) s += fmt::format(" and {} more", ids.size() - n);
  return s;
}

namespace {

// What a cause says about the run: something that happened in it, what a cast it can make would
// do, or a what-if / hint that never moves the verdict.
enum class Bearing { Happened, Cast, Hint };

Bearing bearing(CauseKind k, const Cause& c, const std::vector<Finding>& fs) {
  switch (k) {
    case CauseKind::NonfiniteProduced:
    case CauseKind::LossScaler:
    case CauseKind::NonfiniteInSkipped:
    case CauseKind::ReplicaDesync:
    case CauseKind::RankSkew:
      return Bearing::Happened;
    case CauseKind::RangeOverflow:
    case CauseKind::Underflow:
    case CauseKind::Precision:
      return c.what_if ? Bearing::Hint : Bearing::Cast;
    case CauseKind::MasterWeights:
      // Master weights that are not FP32 are the run's; a BF16 copy that would lose updates is a
      // what-if.
      for (size_t i : c.findings)
        if (fs[i].kind == FindingKind::MasterNotFp32 ||
            fs[i].kind == FindingKind::OptimizerStateLowPrecision ||
            fs[i].kind == FindingKind::Fp16MasterStagnant)
          return Bearing::Happened;
      return Bearing::Hint;
    default:
      return Bearing::Hint;
  }
}

std::string upper(Format f) {
  std::string s = spec(f).name;
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

const TensorRisk* risk_of(const RunAnalysis& a, int64_t tensor) {
  for (const auto& r : a.risks)
    if (static_cast<int64_t>(r.tensor) == tensor) return &r;
  return nullptr;
}

const WhatIfTensor* whatif_of(const RunAnalysis& a, int64_t tensor, Format f) {
  for (const auto& w : a.whatif)
    if (static_cast<int64_t>(w.tensor) == tensor && w.format == f) return &w;
  return nullptr;
}

CauseKind cause_kind(const Finding& f, const RunAnalysis& a, const std::vector<uint64_t>& skipped) {
  const FindingOptions& opt = a.options.findings;
  switch (f.kind) {
    case FindingKind::Nonfinite: {
      const TensorRisk* r = risk_of(a, f.tensor);
      return r && nonfinite_only_in_skipped(*r, skipped) ? CauseKind::NonfiniteInSkipped
                                                         : CauseKind::NonfiniteProduced;
    }
    case FindingKind::Overflow: {
      const TensorRisk* r = risk_of(a, f.tensor);
      return f.format == Format::FP16 && r && families::loss_scaled_overflow(*r, a.loss_scale, opt)
                 ? CauseKind::LossScaledOverflow
                 : CauseKind::RangeOverflow;
    }
    case FindingKind::Underflow:
      return CauseKind::Underflow;
    case FindingKind::Sqnr:
      return CauseKind::Precision;
    case FindingKind::LossScaleCollapse:
    case FindingKind::SkippedSteps:
      return CauseKind::LossScaler;
    case FindingKind::MasterNotFp32:
    case FindingKind::MasterWeightLoss:
    case FindingKind::OptimizerStateLowPrecision:
    case FindingKind::Fp16MasterStagnant:
      return CauseKind::MasterWeights;
    case FindingKind::Fp8Saturation:
      return CauseKind::Fp8Saturation;
    case FindingKind::Fp8Underflow:
      return CauseKind::Fp8Underflow;
    case FindingKind::Drift:
      return CauseKind::Drift;
    case FindingKind::BaselineDrift:
      return CauseKind::BaselineDrift;
    case FindingKind::AdditiveMask:
      return CauseKind::IntendedInfinity;
    case FindingKind::RankFirstFault:
      return f.format ? CauseKind::RangeOverflow : CauseKind::NonfiniteProduced;
    case FindingKind::RankSkew:
      return CauseKind::RankSkew;
    case FindingKind::RankDesync:
      return CauseKind::ReplicaDesync;
    case FindingKind::RankLossScale:
      return CauseKind::LossScaler;
    case FindingKind::BlockLoss:
      return CauseKind::BlockFormats;
  }
  return CauseKind::Drift;
}

// "from step 5" / "at step 5" / "".
std::string steps_of(const Cause& c) {
  return families::steps_phrase(c.first_step, c.last_step);
}

std::string with_steps(std::string s, const Cause& c) {
  const std::string st = steps_of(c);
  return st.empty() ? s : s + " " + st;
}

// The aggregated title and evidence of a cause with more than one finding (one finding: its own).
void describe(const RunAnalysis& a, const std::vector<Finding>& fs, Cause* c) {
  const Finding& top = fs[c->findings.front()];
  c->recommendation = top.recommendation;
  if (c->findings.size() == 1 && c->kind != CauseKind::NonfiniteInSkipped &&
      c->kind != CauseKind::LossScaledOverflow) {
    c->title = top.title;
    c->evidence = top.evidence;
    return;
  }
  const size_t n = c->tensors.size();
  const std::string list = tensor_list(c->tensors);
  const std::string fmt_up = c->format ? upper(*c->format) : std::string();
  c->evidence = fmt::format("worst: {} ({})", top.title, top.evidence);
  const auto& ls = a.loss_scale;
  switch (c->kind) {
    case CauseKind::NonfiniteProduced: {
      c->title = with_steps(
          fmt::format("NaN/Inf reached the data of {} ({})", plural(n, "tensor"), list), *c);
      break;
    }
    case CauseKind::NonfiniteInSkipped: {
      const bool probing = families::scaler_probing(ls, a.options.findings);
      c->title = fmt::format("NaN/Inf in {} ({}), all in the {} the loss scaler skipped{}",
                             plural(n, "tensor"), list, plural(ls.skipped.size(), "step"),
                             probing ? " (expected with dynamic loss scaling)"
                                     : " (the scaler did not recover: see the loss scaler)");
      if (c->findings.size() == 1) c->evidence = top.evidence;
      if (!probing)
        c->recommendation =
            "Fix the loss scaler's cause first (the first offending op of the skipped steps): "
            "these NaN/Inf follow from it.";
      break;
    }
    case CauseKind::RangeOverflow:
    case CauseKind::LossScaledOverflow: {
      float amax = 0.0f;
      for (size_t i : c->findings)
        if (const TensorRisk* r = risk_of(a, fs[i].tensor)) amax = std::max(amax, r->amax);
      c->title = with_steps(
          fmt::format("{} would overflow {}{} ({})", fmt_up,
                      c->kind == CauseKind::LossScaledOverflow ? "the loss-scaled values of " : "",
                      plural(n, "tensor"), list),
          *c);
      c->title += fmt::format("; amax up to {} ({} max {})", fmt_num(amax), fmt_up,
                              fmt_num(max_finite(*c->format)));
      if (c->kind == CauseKind::LossScaledOverflow && ls.min_scale > 0.0)
        c->title += fmt::format(": the loss scaler backs off to {} or less and fits",
                                fmt_num(max_finite(Format::FP16) / (amax / ls.min_scale)));
      if (c->findings.size() == 1) c->evidence = top.evidence;
      break;
    }
    case CauseKind::Underflow: {
      double worst = 0.0;
      for (size_t i : c->findings)
        if (const TensorRisk* r = risk_of(a, fs[i].tensor))
          worst = std::max(worst, r->formats[target_index(*c->format)].underflow_frac);
      c->title = with_steps(fmt::format("{} would flush up to {} of {} ({}) to zero", fmt_up,
                                        fmt_pct(worst), plural(n, "tensor"), list),
                            *c);
      break;
    }
    case CauseKind::Precision: {
      double worst = INFINITY;
      for (size_t i : c->findings)
        if (const TensorRisk* r = risk_of(a, fs[i].tensor))
          worst = std::min(worst, r->formats[target_index(*c->format)].sqnr_db);
      c->title = fmt::format(
          "{} casts of {} ({}) lose precision: SQNR down to {:.1f} dB "
          "(nominal {:.1f} dB)",
          fmt_up, plural(n, "tensor"), list, worst, nominal_sqnr_db(*c->format));
      break;
    }
    case CauseKind::LossScaler: {
      // Collapse and skipped steps: the collapse (ranked first) says it; the skips are evidence.
      c->title = top.title;
      std::string ev;
      for (size_t i : c->findings) ev += (ev.empty() ? "" : "; ") + fs[i].title;
      c->evidence = ev + ". " + top.evidence;
      break;
    }
    case CauseKind::MasterWeights: {
      c->title = fmt::format("Master weights of {} ({}): {}", plural(n, "weight"), list, top.title);
      break;
    }
    case CauseKind::Fp8Saturation:
    case CauseKind::Fp8Underflow: {
      const bool sat = c->kind == CauseKind::Fp8Saturation;
      double worst = 0.0;
      for (size_t i : c->findings)
        if (const WhatIfTensor* w = whatif_of(a, fs[i].tensor, *c->format))
          worst = std::max(worst, sat ? w->worst_overflow_frac : w->underflow_frac);
      c->title = with_steps(
          sat ? fmt::format("{} with delayed scaling saturates {} ({}) in steps where the amax "
                            "jumps (up to {} of a step's elements)",
                            fmt_up, plural(n, "tensor"), list, fmt_pct(worst))
              : fmt::format("{} with delayed scaling flushes up to {} of {} ({}) to zero", fmt_up,
                            fmt_pct(worst), plural(n, "tensor"), list),
          *c);
      break;
    }
    case CauseKind::IntendedInfinity:
      c->title = fmt::format("Intended infinities (masks) in {} ({})", plural(n, "tensor"), list);
      break;
    case CauseKind::Drift:
      c->title = with_steps(
          fmt::format("amax or SQNR jumps within the run in {} ({})", plural(n, "tensor"), list),
          *c);
      break;
    case CauseKind::BaselineDrift:
      c->title = with_steps(
          fmt::format("{} ({}) drift from the baseline run", plural(n, "tensor"), list), *c);
      break;
    case CauseKind::ReplicaDesync:
      c->title = with_steps(fmt::format("replicas out of sync: {} ({}) differ between ranks",
                                        plural(n, "tensor"), list),
                            *c);
      break;
    case CauseKind::RankSkew:
      c->title = with_steps(fmt::format("a rank's amax far above its replicas' in {} ({})",
                                        plural(n, "tensor"), list),
                            *c);
      break;
    case CauseKind::BlockFormats:
      c->title = fmt::format(
          "block-scaled formats would flush or saturate elements of {} ({}) "
          "inside their blocks",
          plural(n, "tensor"), list);
      break;
  }
}

std::string sentence(std::string s) {
  if (!s.empty() && s.back() != '.') s += '.';
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

std::string hint_names(const std::vector<Cause>& hints) {
  std::vector<std::string> parts;
  auto add = [&](const std::string& p) {
    if (std::find(parts.begin(), parts.end(), p) == parts.end()) parts.push_back(p);
  };
  for (const auto& c : hints) {
    switch (c.kind) {
      case CauseKind::Fp8Saturation:
      case CauseKind::Fp8Underflow:
        add("the FP8 what-if");
        break;
      case CauseKind::MasterWeights:
        add("BF16 master weights");
        break;
      case CauseKind::LossScaledOverflow:
        add("FP16 overflow the loss scaler handles");
        break;
      case CauseKind::RangeOverflow:
      case CauseKind::Underflow:
      case CauseKind::Precision:
        if (c.format) add(upper(*c.format) + " casts this run does not make");
        break;
      case CauseKind::Drift:
      case CauseKind::BaselineDrift:
        add("drift hints");
        break;
      case CauseKind::BlockFormats:
        add("the block-format what-if");
        break;
      default:
        add("notes");
    }
  }
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i)
    s += (i == 0 ? "" : i + 1 == parts.size() ? " and " : ", ") + parts[i];
  return s;
}

Verdict decide(const RunAnalysis& a, const std::vector<Finding>& fs, std::vector<Cause>* causes) {
  Verdict v;
  std::vector<Cause*> broken, risky;
  for (auto& c : *causes) {
    const Bearing b = bearing(c.kind, c, fs);
    if (b == Bearing::Happened && c.severity >= Severity::Error) broken.push_back(&c);
    if (b != Bearing::Hint && c.severity >= Severity::Warning) risky.push_back(&c);
  }
  const auto& ls = a.loss_scale;
  std::vector<Cause*>& deciding = !broken.empty() ? broken : risky;
  for (Cause* c : deciding) c->decides_verdict = true;
  // Deciding causes first, then what happened in the run (the loss scaler's story), casts the
  // run can make, hints; then severity, best score, kind.
  std::stable_sort(causes->begin(), causes->end(), [&](const Cause& x, const Cause& y) {
    auto key = [&](const Cause& c) {
      return std::make_tuple(!c.decides_verdict, static_cast<int>(bearing(c.kind, c, fs)),
                             -static_cast<int>(c.severity), -c.score, c.kind);
    };
    return key(x) < key(y);
  });
  size_t n_deciding = 0, n_hints = 0;
  std::vector<Cause> hints;
  for (const auto& c : *causes) {
    n_deciding += c.decides_verdict;
    if (!c.decides_verdict && bearing(c.kind, c, fs) == Bearing::Hint) hints.push_back(c);
  }
  n_hints = hints.size();
  const Cause* first = n_deciding ? &causes->front() : nullptr;
  // The first deciding cause's recommendation, naming the tensors it speaks of ("this tensor").
  auto action = [&]() {
    return first->tensors.empty()
               ? first->recommendation
               : fmt::format("For {}: {}", tensor_list(first->tensors), first->recommendation);
  };

  if (!broken.empty()) {
    v.state = VerdictState::Broken;
    v.headline = "broken";
    v.why.push_back(sentence(first->title));
    for (const auto& c : *causes)
      if (&c != first && bearing(c.kind, c, fs) == Bearing::Happened) {
        v.why.push_back(sentence(c.title));
        break;
      }
    if (ls.present && !ls.skipped.empty())
      v.why.push_back(fmt::format("The optimizer skipped {} of {} steps.", ls.skipped.size(),
                                  ls.series.size()));
    v.next_action = action();
  } else if (!risky.empty()) {
    v.state = VerdictState::AtRisk;
    for (const auto& c : *causes)
      if (c.decides_verdict && c.format &&
          std::find(v.formats.begin(), v.formats.end(), *c.format) == v.formats.end())
        v.formats.push_back(*c.format);
    v.headline = "at risk";
    for (size_t i = 0; i < v.formats.size(); ++i)
      v.headline += (i == 0                      ? " in "
                     : i + 1 == v.formats.size() ? " and "
                                                 : ", ") +
                    std::string(spec(v.formats[i]).name);
    bool happened = false;
    for (const auto& c : *causes)
      happened |= bearing(c.kind, c, fs) == Bearing::Happened && c.severity >= Severity::Warning;
    if (!happened)
      v.why.push_back(ls.present ? "The run itself is clean: no NaN/Inf reached the weights "
                                   "and the loss scaler did not fail."
                                 : "The run itself is clean: no NaN/Inf reached the weights.");
    v.why.push_back(sentence(first->title));
    if (n_deciding > 1)
      v.why.push_back(
          fmt::format("{} more {} below.", n_deciding - 1,
                      n_deciding == 2 ? "cause of this verdict is" : "causes of this verdict are"));
    v.next_action = action();
  } else if (a.gemm_calls == 0) {
    v.state = VerdictState::Unmeasured;
    v.headline = "nothing measured";
    v.why.push_back(
        "No matrix multiply reached the probe, so no GEMM operand was measured: nothing here "
        "says the run is healthy.");
    v.why.push_back(!a.not_measured.empty()
                        ? sentence(a.not_measured)
                        : "Either the program does no matrix multiply, or it runs them where the "
                          "probe has no hook: PyTorch runs CPU convolutions and bfloat16 CPU "
                          "matmuls (torch.autocast(\"cpu\") included) in oneDNN, and a statically "
                          "linked BLAS is not hooked either.");
    v.next_action =
        "If the program does matrix multiplies, record them in FP32 on the CPU (without "
        "torch.autocast(\"cpu\") or bfloat16 weights): they go through BLAS sgemm, which the probe "
        "hooks, and the bf16 columns show what BF16 does to each tensor. On the GPU, cuBLAS and "
        "cuBLASLt are hooked.";
  } else {
    v.state = VerdictState::Healthy;
    v.headline = "healthy";
    v.why.push_back(
        "No NaN/Inf reached the weights and no cast the run makes crosses a warning threshold.");
    if (families::scaler_probing(ls, a.options.findings) && !ls.skipped.empty())
      v.why.push_back(fmt::format(
          "The loss scaler skipped {} of {} steps and grew back ({} backoffs, {} growths): dynamic "
          "loss scaling at work.",
          ls.skipped.size(), ls.series.size(), ls.backoffs, ls.growths));
    if (n_hints > 0)
      v.why.push_back(fmt::format("{} below {} about {}, not problems of this run.",
                                  plural(n_hints, "cause"), n_hints == 1 ? "is" : "are",
                                  hint_names(hints)));
    v.next_action = "Nothing to fix.";
    for (const auto& c : hints)
      if (c.kind == CauseKind::Fp8Saturation || c.kind == CauseKind::Fp8Underflow) {
        v.next_action += " Before moving this run to FP8, read the FP8 causes below.";
        break;
      }
  }
  // Some GEMMs measured and others not (CPU autocast), or none at all in a run that is at risk
  // for another reason (BF16 weights): the reader must know what the verdict rests on.
  if (v.state != VerdictState::Unmeasured) {
    if (!a.not_measured.empty())
      v.why.push_back(sentence(a.not_measured));
    else if (a.gemm_calls == 0)
      v.why.push_back("No matrix multiply reached the probe: no GEMM operand was measured.");
  }
  return v;
}

}  // namespace

RunCauses build_causes(const RunAnalysis& a, const std::vector<Finding>& findings) {
  std::vector<uint64_t> skipped;
  for (const auto& s : a.loss_scale.skipped) skipped.push_back(s.step);
  std::sort(skipped.begin(), skipped.end());

  RunCauses out;
  std::map<std::pair<int, int>, size_t> index;   // (kind, format or -1) -> position in causes
  std::vector<std::pair<size_t, int64_t>> seen;  // (cause, tensor index) already listed
  for (size_t i = 0; i < findings.size(); ++i) {
    const Finding& f = findings[i];
    const CauseKind k = cause_kind(f, a, skipped);
    // Master weights and the loss scaler are one cause whatever the format.
    const bool by_format = k != CauseKind::MasterWeights && k != CauseKind::LossScaler &&
                           k != CauseKind::NonfiniteInSkipped && k != CauseKind::NonfiniteProduced;
    const std::pair<int, int> key{static_cast<int>(k),
                                  by_format && f.format ? static_cast<int>(*f.format) : -1};
    auto [it, fresh] = index.emplace(key, out.causes.size());
    if (fresh) {
      Cause c;
      c.kind = k;
      if (by_format) c.format = f.format;
      out.causes.push_back(std::move(c));
    }
    Cause& c = out.causes[it->second];
    c.findings.push_back(i);
    c.severity = std::max(c.severity, f.severity);
    c.score = std::max(c.score, f.score);
    // Distinct tensors by index: two tensors may share an id (the list then repeats it).
    if (!f.tensor_id.empty()) {
      const std::pair<size_t, int64_t> who{it->second, f.tensor >= 0 ? f.tensor : -1 - int64_t(i)};
      if (std::find(seen.begin(), seen.end(), who) == seen.end()) {
        seen.push_back(who);
        c.tensors.push_back(f.tensor_id);
      }
    }
    if (f.first_step >= 0 && (c.first_step < 0 || f.first_step < c.first_step))
      c.first_step = f.first_step;
    c.last_step = std::max(c.last_step, std::max(f.last_step, f.first_step));
  }
  for (auto& c : out.causes) describe(a, findings, &c);
  // The formats the run stores its tensors in beyond FP32: a mixed-precision run's casts to other
  // formats are what-ifs.
  std::vector<Format> stored;
  for (const auto& r : a.risks)
    if (r.dtype != Format::FP32 && std::find(stored.begin(), stored.end(), r.dtype) == stored.end())
      stored.push_back(r.dtype);
  for (auto& c : out.causes) {
    const bool cast = c.kind == CauseKind::RangeOverflow || c.kind == CauseKind::Underflow ||
                      c.kind == CauseKind::Precision;
    c.what_if = cast && c.format && !stored.empty() &&
                std::find(stored.begin(), stored.end(), *c.format) == stored.end();
  }
  out.verdict = decide(a, findings, &out.causes);
  return out;
}

void add_causes_json(const RunAnalysis& a, nlohmann::ordered_json* j) {
  using json = nlohmann::ordered_json;
  const RunCauses rc = build_causes(a, a.findings);
  json v;
  v["state"] = verdict_state_name(rc.verdict.state);
  v["headline"] = rc.verdict.headline;
  json formats = json::array();
  for (Format f : rc.verdict.formats) formats.push_back(spec(f).name);
  v["formats"] = std::move(formats);
  v["why"] = rc.verdict.why;
  v["next_action"] = rc.verdict.next_action;
  json deciding = json::array();
  for (size_t i = 0; i < rc.causes.size(); ++i)
    if (rc.causes[i].decides_verdict) deciding.push_back(i);
  v["causes"] = std::move(deciding);
  (*j)["verdict"] = std::move(v);
  json cs = json::array();
  for (const auto& c : rc.causes) {
    json o;
    o["kind"] = cause_kind_name(c.kind);
    o["severity"] = severity_name(c.severity);
    o["format"] = c.format ? json(spec(*c.format).name) : json(nullptr);
    o["decides_verdict"] = c.decides_verdict;
    o["what_if"] = c.what_if;
    o["first_step"] = c.first_step >= 0 ? json(c.first_step) : json(nullptr);
    o["last_step"] = c.last_step >= 0 ? json(c.last_step) : json(nullptr);
    o["tensors"] = c.tensors;
    o["findings"] = c.findings;
    o["title"] = c.title;
    o["evidence"] = c.evidence;
    o["recommendation"] = c.recommendation;
    cs.push_back(std::move(o));
  }
  (*j)["causes"] = std::move(cs);
}

namespace {

// Word-wraps `text` to `width` columns: the first line after `first`, the rest indented by
// `indent` spaces (width 0: one line).
void wrap(const std::string& first, const std::string& text, size_t indent, int width,
          std::string* o) {
  std::string line = first;
  const std::string pad(indent, ' ');
  size_t pos = 0;
  bool line_has_word = false;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(pos, end - pos);
    pos = end + 1;
    if (word.empty()) continue;
    if (width > 0 && line_has_word && line.size() + 1 + word.size() > static_cast<size_t>(width)) {
      *o += line + "\n";
      line = pad;
      line_has_word = false;
    }
    line += (line_has_word ? " " : "") + word;
    line_has_word = true;
  }
  *o += line + "\n";
}

}  // namespace

std::string causes_text(const RunAnalysis& a, int width, size_t max_causes) {
  const RunCauses rc = build_causes(a, a.findings);
  std::string o;
  // Titles hold tensor names (someone else's bytes): printable() before a terminal sees them.
  wrap("verdict    ", rc.verdict.headline, 11, width, &o);
  for (const auto& s : rc.verdict.why) wrap("           ", printable(s), 11, width, &o);
  wrap("next       ", printable(rc.verdict.next_action), 11, width, &o);
  for (size_t i = 0; i < rc.causes.size() && i < max_causes; ++i) {
    const Cause& c = rc.causes[i];
    wrap(fmt::format("{:<11}", i == 0 ? "causes" : ""),
         fmt::format("{}. [{}] {}", i + 1, severity_name(c.severity), printable(c.title)), 14,
         width, &o);
  }
  if (rc.causes.size() > max_causes)
    wrap("           ",
         fmt::format("... {} more causes (fpscope report, or --json: .causes)",
                     rc.causes.size() - max_causes),
         11, width, &o);
  o += "\n";
  return o;
}

}  // namespace fpscope::analysis
