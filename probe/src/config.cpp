#include "config.h"

#include <sched.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "../cuda/settings.h"
#include "op_names.h"

namespace fpscope::probe {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && v[0] != '\0') ? v : nullptr;
}

void bad(const char* name, const char* value, const char* expected, const char* def) {
  log(LogLevel::Warn, "%s='%s' is not %s; using the default (%s)", name, value, expected, def);
}

bool parse_u64(const char* s, uint64_t* out) {
  if (s == nullptr || *s < '0' || *s > '9') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return false;
  *out = v;
  return true;
}

// A byte size: digits, optionally followed by one of k, M, G, T (binary multiples: 256M = 256 MiB).
bool parse_size(const char* s, uint64_t* out) {
  if (s == nullptr || *s < '0' || *s > '9') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s) return false;
  int shift = 0;
  if (*end != '\0') {
    const char c = *end++;
    shift = c == 'k' || c == 'K' ? 10 : c == 'M' ? 20 : c == 'G' ? 30 : c == 'T' ? 40 : -1;
    if (shift < 0 || *end != '\0') return false;
  }
  if (shift > 0 && v > (~0ull >> shift)) return false;
  *out = static_cast<uint64_t>(v) << shift;
  return true;
}

// CPUs this process may run on (its affinity mask; 1 when it cannot be read).
int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return CPU_COUNT(&set);
}

// Boolean: 1/0, true/false, yes/no, on/off.
bool parse_bool(const char* s, bool* out) {
  static const char* yes[] = {"1", "true", "yes", "on", "TRUE", "True", "YES", "ON"};
  static const char* no[] = {"0", "false", "no", "off", "FALSE", "False", "NO", "OFF"};
  for (const char* y : yes)
    if (std::strcmp(s, y) == 0) return *out = true, true;
  for (const char* n : no)
    if (std::strcmp(s, n) == 0) return *out = false, true;
  return false;
}

std::string lower(const char* s) {
  std::string out(s);
  for (char& ch : out)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  return out;
}

std::vector<std::string> split(const char* s) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = s;; ++p) {
    if (*p == ',' || *p == '\0') {
      size_t b = cur.find_first_not_of(" \t");
      size_t e = cur.find_last_not_of(" \t");
      if (b != std::string::npos) out.push_back(cur.substr(b, e - b + 1));
      cur.clear();
      if (*p == '\0') break;
    } else {
      cur += *p;
    }
  }
  return out;
}

// An FPSCOPE_OPS name outside the hooks' op names matches nothing: worth a warning (a typo).
bool known_op(const std::string& name) {
  for (const char* k : kHostOps)
    if (name == k) return true;
  for (const char* k : kCudaOps)
    if (name == k) return true;
  return false;
}

std::vector<std::string> colon_parts(const std::string& v) {
  std::vector<std::string> parts;
  std::string cur;
  for (const char ch : v) {
    if (ch == ':') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  parts.push_back(cur);
  return parts;
}

// A scaling policy from parts[first..]: none (when `allow_none`) | current[:margin] |
// delayed[:history[:margin[:max|most_recent]]] (FPSCOPE_FP8_SCALING's grammar). Writes the
// outputs only when the whole is valid.
bool parse_scaling(const std::vector<std::string>& all, size_t first, bool allow_none,
                   ScalingPolicy* policy, int* history, int* margin, AmaxAlgo* algo) {
  const std::vector<std::string> parts(all.begin() + static_cast<std::ptrdiff_t>(first), all.end());
  if (parts.empty()) return false;
  ScalingPolicy p = *policy;
  int h = *history, m = *margin;
  AmaxAlgo a = *algo;
  bool ok = true;
  auto num = [&](size_t i, uint64_t lo, uint64_t hi, int* out) {
    uint64_t n = 0;
    if (i >= parts.size()) return;
    if (!parse_u64(parts[i].c_str(), &n) || n < lo || n > hi) {
      ok = false;
      return;
    }
    *out = static_cast<int>(n);
  };
  if (allow_none && parts[0] == "none" && parts.size() == 1) {
    p = ScalingPolicy::None;
  } else if (parts[0] == "current" && parts.size() <= 2) {
    p = ScalingPolicy::Current;
    num(1, 0, 64, &m);
  } else if (parts[0] == "delayed" && parts.size() <= 4) {
    p = ScalingPolicy::Delayed;
    num(1, 1, 1 << 20, &h);
    num(2, 0, 64, &m);
    if (parts.size() == 4) {
      if (parts[3] == "max")
        a = AmaxAlgo::Max;
      else if (parts[3] == "most_recent")
        a = AmaxAlgo::MostRecent;
      else
        ok = false;
    }
  } else {
    ok = false;
  }
  if (!ok) return false;
  *policy = p;
  *history = h;
  *margin = m;
  *algo = a;
  return true;
}

// The format the recorder reports for a mode (Recorder::emulate(): FP32 = off).
Format emulate_gate(EmulateMode m) {
  switch (m) {
    case EmulateMode::BF16:
      return Format::BF16;
    case EmulateMode::FP16:
      return Format::FP16;
    case EmulateMode::E4M3:
    case EmulateMode::Hybrid:
      return Format::E4M3;
    case EmulateMode::E5M2:
    case EmulateMode::Mxfp8E5M2:
      return Format::E5M2;
    case EmulateMode::Mxfp8E4M3:
      return Format::E4M3;
    case EmulateMode::Mxfp6E3M2:
    case EmulateMode::Mxfp6E2M3:
    case EmulateMode::Mxfp4:
    case EmulateMode::Nvfp4:
      return Format::BF16;  // no Format for FP6/FP4: the output's (only "not FP32" is read)
    case EmulateMode::Off:
      break;
  }
  return Format::FP32;
}

// kBlockFormats' index of the format named n (its table name, lower case); -1 if none.
int block_format_named(const std::string& n) {
  for (int i = 0; i < kNumBlockFormats; ++i)
    if (n == kBlockFormats[i]->name) return i;
  return -1;
}

EmulateSettings g_loaded_emulation;  // written by load_config() before the recorder exists

}  // namespace

bool parse_emulate_spec(const std::string& spec, EmulateSettings* out) {
  const std::vector<std::string> parts = colon_parts(lower(spec.c_str()));
  EmulateSettings e;
  e.skip = out->skip;
  const std::string& m = parts[0];
  if (m == "off" || m == "fp32" || m == "0")
    e.mode = EmulateMode::Off;
  else if (m == "bf16")
    e.mode = EmulateMode::BF16;
  else if (m == "fp16")
    e.mode = EmulateMode::FP16;
  else if (m == "e4m3")
    e.mode = EmulateMode::E4M3;
  else if (m == "e5m2")
    e.mode = EmulateMode::E5M2;
  else if (m == "hybrid")
    e.mode = EmulateMode::Hybrid;
  else if (m == "mxfp8")
    e.mode = EmulateMode::Mxfp8E4M3;
  else if (const int b = block_format_named(m); b >= 0)
    e.mode = static_cast<EmulateMode>(static_cast<int>(EmulateMode::Mxfp8E4M3) + b);
  else
    return false;
  if (parts.size() > 1 &&
      (!e.fp8() || !parse_scaling(parts, 1, false, &e.policy, &e.history, &e.margin, &e.algo)))
    return false;  // a policy for a format that needs none, or a bad one
  *out = e;
  return true;
}

std::string emulate_spec_name(const EmulateSettings& s) {
  if (const int b = emulate_block_format(s.mode); b >= 0) return kBlockFormats[b]->name;
  static const char* names[] = {"off", "bf16", "fp16", "e4m3", "e5m2", "hybrid"};
  std::string n = names[static_cast<int>(s.mode)];
  if (!s.fp8()) return n;
  if (s.policy == ScalingPolicy::Current)
    return n + ":current" + (s.margin != 0 ? ":" + std::to_string(s.margin) : std::string());
  return n + ":delayed:" + std::to_string(s.history) + ":" + std::to_string(s.margin) + ":" +
         (s.algo == AmaxAlgo::Max ? "max" : "most_recent");
}

const EmulateSettings& loaded_emulation() {
  return g_loaded_emulation;
}

bool Config::op_enabled(const char* op) const {
  if (ops.empty()) return true;
  for (const auto& o : ops)
    if (o == op) return true;
  return false;
}

Config load_config() {
  Config c;
  // The log level first, so that warnings about the others obey it.
  if (const char* v = env("FPSCOPE_LOG")) {
    const std::string s = v;
    if (s == "off" || s == "none" || s == "0") {
      c.log = LogLevel::Off;
    } else if (s == "error") {
      c.log = LogLevel::Error;
    } else if (s == "warn" || s == "warning") {
      c.log = LogLevel::Warn;
    } else if (s == "info") {
      c.log = LogLevel::Info;
    } else if (s == "debug") {
      c.log = LogLevel::Debug;
    } else {
      set_log_level(LogLevel::Warn);
      bad("FPSCOPE_LOG", v, "one of off, error, warn, info, debug", "warn");
    }
  }
  set_log_level(c.log);

  bool b = false;
  if (const char* v = env("FPSCOPE_DISABLE")) {
    if (!parse_bool(v, &b))
      bad("FPSCOPE_DISABLE", v, "a boolean (1/0)", "0");
    else if (b)
      c.enabled = false;
  }
  if (const char* v = env("FPSCOPE_ENABLE")) {
    if (!parse_bool(v, &b))
      bad("FPSCOPE_ENABLE", v, "a boolean (1/0)", "1");
    else if (!b)
      c.enabled = false;
  }
  if (const char* v = env("FPSCOPE_OUTPUT")) c.output = v;

  uint64_t u = 0;
  if (const char* v = env("FPSCOPE_EVERY")) {
    if (!parse_u64(v, &u) || u == 0)
      bad("FPSCOPE_EVERY", v, "a positive integer", "10");
    else
      c.every = u;
  }
  if (const char* v = env("FPSCOPE_FORMATS")) {
    // Per-tensor targets (bf16, fp16, e4m3, e5m2) and block-scaled formats (mxfp8_e4m3, ...,
    // nvfp4; `blocks`: all six); `all` is both. Block statistics only when named (the default is
    // the per-tensor four: Config::block_formats says why).
    bool f[kNumTargets] = {};
    uint32_t blocks = 0;
    bool ok = true;
    for (const auto& name : split(v)) {
      if (name == "all") {
        for (bool& x : f) x = true;
        blocks = kAllBlockFormats;
        continue;
      }
      if (name == "blocks") {
        blocks = kAllBlockFormats;
        continue;
      }
      int block = -1;
      for (int i = 0; i < kNumBlockFormats; ++i)
        if (name == kBlockFormats[i]->name) block = i;
      if (block >= 0) {
        blocks |= 1u << block;
        continue;
      }
      Format fmt{};
      const int idx = format_from_name(name.c_str(), &fmt) ? target_index(fmt) : -1;
      if (idx < 0) {
        ok = false;
        break;
      }
      f[idx] = true;
    }
    bool any = blocks != 0;
    for (bool x : f) any = any || x;
    if (!ok || !any) {
      bad("FPSCOPE_FORMATS", v,
          "a comma list of bf16, fp16, e4m3, e5m2, mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, "
          "mxfp6_e2m3, mxfp4, nvfp4 (or blocks, all)",
          "all");
    } else {
      std::memcpy(c.formats, f, sizeof f);
      c.block_formats = blocks;
    }
  }
  if (const char* v = env("FPSCOPE_OPS")) {
    bool roles[4] = {};
    bool any_role = false;
    std::vector<std::string> ops;
    bool all = false;
    for (const auto& t : split(v)) {
      if (t == "all") {
        all = true;
      } else if (t == "A" || t == "B" || t == "C" || t == "D") {
        roles[t[0] - 'A'] = true;
        any_role = true;
      } else {
        if (!known_op(t))
          log(LogLevel::Warn,
              "FPSCOPE_OPS: '%s' is not an op the probe records (sgemm, cblas_sgemm, sbgemm, "
              "cblas_sbgemm, cublasGemmEx, cublasLtMatmul, ...): it matches nothing",
              t.c_str());
        ops.push_back(t);
      }
    }
    if (!all || any_role || !ops.empty()) {
      if (any_role) std::memcpy(c.roles, roles, sizeof roles);
      c.ops = ops;
    }
    if (!all && !any_role && ops.empty())
      bad("FPSCOPE_OPS", v, "a comma list of roles (A,B,C,D) and op names (sgemm, ...)", "all");
  }
  if (const char* v = env("FPSCOPE_FLUSH_MS")) {
    if (!parse_u64(v, &u) || u == 0 || u > 3600000)
      bad("FPSCOPE_FLUSH_MS", v, "an integer in 1..3600000", "100");
    else
      c.flush_ms = static_cast<uint32_t>(u);
  }
  if (const char* v = env("FPSCOPE_FLUSH_BYTES")) {
    // The writer holds up to this many bytes in memory: 1 GiB is far past any useful chunk.
    if (!parse_u64(v, &u) || u < 4096 || u > kMaxFlushBytes)
      bad("FPSCOPE_FLUSH_BYTES", v, "an integer in 4096..1073741824", "1048576");
    else
      c.flush_bytes = u;
  }
  if (const char* v = env("FPSCOPE_ZSTD")) {
    if (!parse_bool(v, &b))
      bad("FPSCOPE_ZSTD", v, "a boolean (1/0)", "0");
    else
      c.zstd = b;
  }
  if (const char* v = env("FPSCOPE_EMULATE")) {
    EmulateSettings e;
    if (parse_emulate_spec(v, &e)) {
      c.emulation = e;
      c.emulate = emulate_gate(e.mode);
    } else {
      bad("FPSCOPE_EMULATE", v,
          "off, bf16, fp16, e4m3|e5m2|hybrid[:current[:MARGIN]|:delayed[:HISTORY[:MARGIN[:max|"
          "most_recent]]]] or mxfp8|mxfp8_e5m2|mxfp6_e3m2|mxfp6_e2m3|mxfp4|nvfp4",
          "off");
    }
  }
  c.sketch = c.emulation.mode != EmulateMode::Off;
  if (const char* v = env("FPSCOPE_SKETCH")) {
    if (!parse_bool(v, &b))
      bad("FPSCOPE_SKETCH", v, "a boolean (1/0)", c.sketch ? "1 (under FPSCOPE_EMULATE)" : "0");
    else
      c.sketch = b;
  }
  if (const char* v = env("FPSCOPE_EMULATE_SKIP")) {
    c.emulation.skip = split(v);
    if (c.emulation.skip.empty())
      bad("FPSCOPE_EMULATE_SKIP", v, "comma-separated name patterns", "none skipped");
  }
  if (const char* v = env("FPSCOPE_STEPS")) {
    const std::string s = v;
    if (s == "auto")
      c.steps = StepMode::Auto;
    else if (s == "api")
      c.steps = StepMode::Api;
    else if (s == "period")
      c.steps = StepMode::Period;
    else if (s == "none")
      c.steps = StepMode::None;
    else
      bad("FPSCOPE_STEPS", v, "one of auto, api, period, none", "auto");
  }
  if (const char* v = env("FPSCOPE_PERIOD_WINDOW")) {
    if (!parse_u64(v, &u) || u < 16 || u > 1000000)
      bad("FPSCOPE_PERIOD_WINDOW", v, "an integer in 16..1000000", "4096");
    else
      c.period_window = static_cast<uint32_t>(u);
  }
  if (const char* v = env("FPSCOPE_WATCH_MAX_ELEMENTS")) {
    if (!parse_u64(v, &u) || u == 0 || u > (uint64_t{1} << 34))
      bad("FPSCOPE_WATCH_MAX_ELEMENTS", v, "an integer in 1..17179869184", "67108864");
    else
      c.watch_max_elements = u;
  }
  if (const char* v = env("FPSCOPE_WATCH_BUDGET")) {
    // Bytes (suffix k, M or G: KiB, MiB, GiB); 0 turns host watches off.
    if (!parse_size(v, &u) || u > (uint64_t{1} << 40))
      bad("FPSCOPE_WATCH_BUDGET", v, "a size in 0..1T (bytes, or with a k/M/G suffix)", "256M");
    else
      c.watch_budget = u;
  }
  if (const char* v = env("FPSCOPE_FP8_SCALING")) {
    // none | current[:margin] | delayed[:history[:margin[:max|most_recent]]]
    if (!parse_scaling(colon_parts(v), 0, true, &c.fp8_policy, &c.fp8_history, &c.fp8_margin,
                       &c.fp8_algo))
      bad("FPSCOPE_FP8_SCALING", v,
          "none, current[:MARGIN] or delayed[:HISTORY[:MARGIN[:max|most_recent]]]", "none");
  }
  if (const char* v = env("FPSCOPE_STATS_THREADS")) {
    if (!parse_u64(v, &u) || u == 0 || u > 256)
      bad("FPSCOPE_STATS_THREADS", v, "an integer in 1..256", "1");
    else
      c.stats_threads = static_cast<unsigned>(u);
  }
  c.stats_helper = usable_cpus() >= 2;
  if (const char* v = env("FPSCOPE_STATS_HELPER")) {
    if (!parse_bool(v, &b))
      bad("FPSCOPE_STATS_HELPER", v, "a boolean (1/0)", c.stats_helper ? "1" : "0");
    else
      c.stats_helper = b;
  }
  // The CUDA path's settings (probe/cuda/settings.h) are checked here too, on every host: a bad
  // value in a launch script warns on the CPU machine it is tried on, not first on the GPU one.
  // Parsed once: the CUDA path reads the same cached values, no second warning.
  (void)cuda::cuda_slots_setting();
  (void)cuda::cuda_graphs_setting();
  (void)cuda::drain_ms_setting();
  (void)cuda::cupti_setting();
  g_loaded_emulation = c.emulation;
  return c;
}

std::string config_json(const Config& c) {
  nlohmann::json j;
  j["output"] = c.output;
  j["every"] = c.every;
  auto formats = nlohmann::json::array();
  for (int i = 0; i < kNumTargets; ++i)
    if (c.formats[i]) formats.push_back(spec(kTargets[i]).name);
  auto block_formats = nlohmann::json::array();
  for (int i = 0; i < kNumBlockFormats; ++i)
    if (c.block_formats >> i & 1u) block_formats.push_back(kBlockFormats[i]->name);
  j["formats"] = formats;
  j["block_formats"] = block_formats;
  auto roles = nlohmann::json::array();
  for (int i = 0; i < 4; ++i)
    if (c.roles[i]) roles.push_back(std::string(1, static_cast<char>('A' + i)));
  j["roles"] = roles;
  j["ops"] = c.ops;
  static const char* modes[] = {"auto", "api", "period", "none"};
  j["steps"] = modes[static_cast<int>(c.steps)];
  j["period_window"] = c.period_window;
  j["flush_ms"] = c.flush_ms;
  j["flush_bytes"] = c.flush_bytes;
  j["zstd"] = c.zstd;
  j["emulate"] = emulate_spec_name(c.emulation);
  j["emulate_skip"] = c.emulation.skip;
  j["sketch"] = c.sketch;
  j["stats_threads"] = c.stats_threads;
  j["watch_max_elements"] = c.watch_max_elements;
  j["watch_budget"] = c.watch_budget;
  j["fp8_scaling"] = {{"policy", scaling_policy_name(c.fp8_policy)},
                      {"history", c.fp8_history},
                      {"margin", c.fp8_margin},
                      {"amax_algo", c.fp8_algo == AmaxAlgo::Max ? "max" : "most_recent"}};
  // Settings are bytes from the environment (a path, op names): an invalid UTF-8 byte becomes
  // U+FFFD, the rule of the metadata dump (trace_metadata.cpp); the throwing default would abort
  // the traced program.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace fpscope::probe
