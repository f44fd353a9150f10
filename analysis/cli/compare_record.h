// The recording half of `fpscope compare --emulate LIST -- CMD`: runs CMD once per precision
// setting under the probe (as `fpscope record` does, each in its own child process so that one
// run's environment never leaks into the next), with value sketches on, one trace per setting in
// the output directory.
#pragma once

#include <string>
#include <vector>

struct CompareRecordOptions {
  std::vector<std::string> settings;  // --emulate SPECs; "fp32" is "off"
  std::string out_dir;
  std::string every;         // FPSCOPE_EVERY ("" = the probe's default)
  std::string watch;         // FPSCOPE_WATCH
  std::string emulate_skip;  // FPSCOPE_EMULATE_SKIP, for every emulated run
  bool no_python_hooks = false;
  std::vector<std::string> command;
};

struct RecordedRun {
  std::string label;  // the setting as given ("fp32", "bf16", "e4m3:delayed")
  std::string spec;   // what the probe got ("off", "bf16", ...)
  std::string path;   // <out_dir>/<label with ':' as '_'>.fpst
  int exit_code = 0;  // the command's (128 + signal when killed; 2: could not start)
  double seconds = 0.0;
  bool has_trace = false;
};

// Why `settings` cannot be used ("" when it can): each must be fp32 or an --emulate SPEC, no
// two the same.
std::string compare_settings_error(const std::vector<std::string>& settings);

// Runs the command once per setting, in order, printing progress on stderr. Creates out_dir.
// Returns one entry per setting; *error is set (and nothing run) when out_dir cannot be made.
std::vector<RecordedRun> record_each_setting(const CompareRecordOptions& o, std::string* error);
