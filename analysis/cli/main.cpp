// fpscope: the command-line front end (summary, report, diff, compare, export, record).
#include <cstring>
#include <exception>
#include <string>

#include <fmt/format.h>

#include "cli_common.h"
#include "cmd_compare.h"
#include "cmd_record.h"
#include "fpscope/version.h"

int main(int argc, char** argv) {
  CLI::App app{"fpscope: numerics debugger for mixed-precision training"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fpscope " FPSCOPE_VERSION);
  register_record_command(app);
  fpscope::cli::register_summary_command(app);
  fpscope::cli::register_report_command(app);
  fpscope::cli::register_diff_command(app);
  fpscope::cli::register_compare_command(app);
  fpscope::cli::register_export_command(app);
  // Set after the subcommands exist: CLI11 copies a parent's footer into subcommands created
  // after it, and these examples belong to `fpscope --help` only.
  app.footer(
      "Examples:\n"
      "  fpscope record -o run.fpst -- python train.py\n"
      "  fpscope summary run.fpst\n"
      "  fpscope report run.fpst -o report.html\n"
      "  fpscope diff base.fpst new.fpst --fail-on overflow,sqnr=3\n"
      "  fpscope compare fp32.fpst bf16.fpst -o compare.md\n"
      "  fpscope export run.fpst --format sqlite -o run.sqlite\n"
      "Exit codes: 0 ok, 1 regression (diff), 2 error.");

  // The first argument that is not an option names the command: say so when it is unknown
  // (CLI11 alone would report "The following arguments were not expected").
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      known = known || sub->check_name(argv[1]);
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      fmt::print(stderr, "fpscope: unknown command '{}' (commands: {}; see fpscope --help)\n",
                 argv[1], names);
      return fpscope::cli::kExitError;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // the command's own exit code; it printed its message
  } catch (const CLI::ParseError& e) {
    // Usage errors are bad input: one line, exit 2.
    fmt::print(stderr, "fpscope: {} (see fpscope --help)\n", e.what());
    return fpscope::cli::kExitError;
  } catch (const std::exception& e) {
    fmt::print(stderr, "fpscope: error: {}\n", e.what());
    return fpscope::cli::kExitError;
  }
  return 0;
}
