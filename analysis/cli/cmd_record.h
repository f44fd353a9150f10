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

namespace CLI {
class App;
}

void register_record_command(CLI::App& app);
