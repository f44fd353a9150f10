// fpscope: the command-line front end (summary, report, diff, export, record).
#include <exception>

#include <fmt/format.h>

#include "cli_common.h"
#ifdef FPSCOPE_HAVE_RECORD
#include "cmd_record.h"
#endif

int main(int argc, char** argv) {
  CLI::App app{"fpscope: numerics debugger for mixed-precision training"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fpscope " FPSCOPE_VERSION);
  app.footer(
      "Examples:\n"
      "  fpscope record -o run.fpst -- python train.py\n"
      "  fpscope summary run.fpst\n"
      "  fpscope report run.fpst -o report.html\n"
      "  fpscope diff base.fpst new.fpst --fail-on overflow,sqnr=3\n"
      "  fpscope export run.fpst --format sqlite -o run.sqlite\n"
      "Exit codes: 0 ok, 1 regression (diff), 2 error.");
#ifdef FPSCOPE_HAVE_RECORD
  register_record_command(app);
#endif
  fpscope::cli::register_summary_command(app);
  fpscope::cli::register_report_command(app);
  fpscope::cli::register_diff_command(app);
  fpscope::cli::register_export_command(app);
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
