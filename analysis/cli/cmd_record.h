// `fpscope record [-o FILE] [--every N] [--formats LIST] [--ops LIST] [--log LEVEL]
//  [--no-python-hooks] [--] CMD ...`
// Runs CMD with the probe preloaded (LD_PRELOAD, appended to an existing value) and the FPSCOPE_*
// configuration, forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to fpscope, and exits with CMD's exit
// code (128 + signal when CMD was killed). Says on stderr where the trace went.
// The probe: $FPSCOPE_PROBE, else <dir of the fpscope executable>/../lib/libfpscope_probe.so.
// Unless --no-python-hooks, <probe dir>/python/fpscope_hooks goes first on PYTHONPATH (the
// PyTorch integration's sitecustomize, probe/python/fpscope_hooks).
// The subcommand callback reports the exit code by throwing CLI::RuntimeError(code).
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

struct RecordOptions {
  std::string output = "fpscope.fpst";
  std::string every;
  std::string formats;
  std::string ops;
  std::string log;
  std::string watch;
  std::string emulate;       // "", or a SPEC (emulate_spec_error)
  std::string emulate_skip;  // "", or comma-separated name patterns
  bool sketch = false;       // FPSCOPE_SKETCH=1 (else the probe's default)
  bool no_python_hooks = false;
  std::vector<std::string> command;
};

// Runs o.command under the probe as `fpscope record` does (sets this process's environment:
// call it in a child process to run several recordings). Returns the command's exit code, 2
// when it could not be started.
int run_record(const RecordOptions& o);

// Why `spec` is not an --emulate SPEC ("" when it is).
std::string emulate_spec_error(const std::string& spec);

void register_record_command(CLI::App& app);
