// Test driver: `fpscope record` without the rest of the CLI (the analysis engineer's `fpscope`
// executable compiles the same cmd_record.cpp). Used by the e2e tests when bin/fpscope is absent.
#include <CLI/CLI.hpp>

#include "cmd_record.h"

int main(int argc, char** argv) {
  CLI::App app{"fpscope (record only, test driver)"};
  app.require_subcommand(1);
  register_record_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
