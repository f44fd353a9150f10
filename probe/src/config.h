// Probe configuration from FPSCOPE_* environment variables (README: "Settings"). Every variable the
// probe reads is documented in README's table, with its default (tests/probe/check_settings.py
// checks both directions against the string literals in probe/). A bad value gets one warning
// naming the variable, and the default is used.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/scaling.h"
#include "fpscope/stats.h"
#include "fpscope/trace_types.h"
#include "log.h"

namespace fpscope::probe {

inline constexpr uint64_t kMaxFlushBytes = uint64_t{1} << 30;  // FPSCOPE_FLUSH_BYTES

enum class StepMode { Auto, Api, Period, None };

// FPSCOPE_EMULATE / FPSCOPE_EMULATE_SKIP (emulate.h): the precision host GEMMs run in.
// The block-scaled modes follow kBlockFormats' order (formats.h): emulate_block_format.
enum class EmulateMode : uint8_t {
  Off,
  BF16,
  FP16,
  E4M3,
  E5M2,
  Hybrid,
  Mxfp8E4M3,
  Mxfp8E5M2,
  Mxfp6E3M2,
  Mxfp6E2M3,
  Mxfp4,
  Nvfp4,
};
// kBlockFormats' index of a block-scaled mode's format; -1 for the others.
inline int emulate_block_format(EmulateMode m) {
  const int i = static_cast<int>(m) - static_cast<int>(EmulateMode::Mxfp8E4M3);
  return i >= 0 && i < kNumBlockFormats ? i : -1;
}
static_assert(static_cast<int>(EmulateMode::Nvfp4) - static_cast<int>(EmulateMode::Mxfp8E4M3) ==
              kNumBlockFormats - 1);
struct EmulateSettings {
  EmulateMode mode = EmulateMode::Off;
  // FP8 modes: the per-tensor scaling policy (Current or Delayed) and its parameters, with
  // FPSCOPE_FP8_SCALING's meaning (kernels/scaling.h).
  ScalingPolicy policy = ScalingPolicy::Current;
  int history = 1024;
  int margin = 0;
  AmaxAlgo algo = AmaxAlgo::Max;
  // Shell patterns (fnmatch, case-sensitive, as FPSCOPE_WATCH's) of op names kept in FP32.
  std::vector<std::string> skip;
  bool fp8() const {
    return mode == EmulateMode::E4M3 || mode == EmulateMode::E5M2 || mode == EmulateMode::Hybrid;
  }
};
// SPEC: off | bf16 | fp16 | (e4m3|e5m2|hybrid)[:current[:MARGIN] | :delayed[:HISTORY[:MARGIN[:max|
// most_recent]]]] (FP8 default: current) | mxfp8 (= mxfp8_e4m3) | mxfp8_e5m2 | mxfp6_e3m2 |
// mxfp6_e2m3 | mxfp4 | nvfp4 (block-scaled: no policy), case-insensitive. False for anything
// else.
bool parse_emulate_spec(const std::string& spec, EmulateSettings* out);
// The canonical SPEC of s ("off", "bf16", "e4m3:current", "hybrid:delayed:1024:0:max",
// "mxfp8_e4m3": block-scaled modes by their format table name): what the
// trace's config stamps ("emulate").
std::string emulate_spec_name(const EmulateSettings& s);

struct Config {
  bool enabled = true;
  std::string output = "fpscope-%p.fpst";                // %p pid, %r rank, %h host, %% a literal %
  uint64_t every = 10;                                   // record every N-th step (1 = every step)
  bool formats[kNumTargets] = {true, true, true, true};  // kTargets order
  // Block-scaled formats measured per operand (bit f: kBlockFormats[f]; FPSCOPE_FORMATS).
  // Off unless named: with all six the host pass runs at 0.12-0.23x of a plain sum instead of
  // 0.4-0.65x, which would more than double a sampled step's cost for every user (issue 15/21's
  // 5% overhead) before the fused MX pass exists (docs/benchmarks.md).
  uint32_t block_formats = 0;
  bool roles[4] = {true, true, true, true};  // A, B, C, D
  std::vector<std::string> ops;              // empty = every op
  LogLevel log = LogLevel::Warn;
  uint32_t flush_ms = 100;
  uint64_t flush_bytes = 1 << 20;
  bool zstd = false;
  StepMode steps = StepMode::Auto;
  uint32_t period_window = 4096;  // calls held back at most while detecting the step period
  unsigned stats_threads = 1;
  // FPSCOPE_STATS_HELPER: host GEMM operands measured on one background thread while the program
  // goes on (stats_helper.h). Default: on when the process may run on two CPUs or more.
  bool stats_helper = true;
  // Positions one watch follows at most (host: a sample of a larger tensor; device watches of
  // larger tensors are refused).
  uint64_t watch_max_elements = uint64_t{1} << 26;
  // Host memory all host watches may hold (8 bytes per followed position; weight_watch.h).
  uint64_t watch_budget = uint64_t{256} << 20;
  // FP8 scaling of the E4M3/E5M2 statistics (FPSCOPE_FP8_SCALING): the scale each observation's
  // FP8 casts use, per tensor (kernels/scaling.h, the same helper the analysis replays).
  ScalingPolicy fp8_policy = ScalingPolicy::None;
  int fp8_history = 1024;
  int fp8_margin = 0;
  AmaxAlgo fp8_algo = AmaxAlgo::Max;
  // FPSCOPE_EMULATE (emulate.h): host GEMMs run on operands rounded to this format (BF16, FP16;
  // E4M3 for e4m3 and hybrid, E5M2 for e5m2; the block-scaled modes: E4M3 or E5M2 for MXFP8, the
  // BF16 output format for the FP6/FP4 ones, which have no Format); FP32 = off, the default.
  // `emulation` has the rest.
  Format emulate = Format::FP32;
  EmulateSettings emulation;
  // FPSCOPE_SKETCH: each observation carries a value sketch (kernels value_sketch.h), from which
  // `fpscope compare`/`diff` estimate how far two runs' tensors differ. Default: on under
  // emulation (a run meant to be compared), else off (it costs a second pass over each operand).
  bool sketch = false;

  bool op_enabled(const char* op) const;
  bool role_enabled(trace::Role r) const {
    return static_cast<int>(r) < 4 ? roles[static_cast<int>(r)] : true;
  }
};

// Reads the environment (warnings for bad values go through log()).
Config load_config();
// The emulation settings of the last load_config() (the recorder's, loaded before Recorder::get()
// returns it): what the host hooks emulate once the recorder says emulation is on.
const EmulateSettings& loaded_emulation();

// The config as a JSON object (trace metadata). Never throws: bytes that are not UTF-8 (from
// FPSCOPE_OUTPUT, FPSCOPE_OPS) are written as U+FFFD, as in the rest of the metadata.
std::string config_json(const Config& c);

}  // namespace fpscope::probe
