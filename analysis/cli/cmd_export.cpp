#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "cli_common.h"
#include "fpscope/analysis/export.h"

namespace fpscope::cli {

void register_export_command(CLI::App& app) {
  struct Opts {
    std::string file, format, out, tensor;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "export",
      "Export observations: csv, jsonl, sqlite (like nsys export), perfetto (Chrome JSON)");
  cmd->add_option("FILE", o->file, "Trace file (.fpst)")->required();
  cmd->add_option("--format", o->format, "csv | jsonl | sqlite | perfetto")
      ->required()
      ->check(CLI::IsMember({"csv", "jsonl", "sqlite", "perfetto"}));
  cmd->add_option("-o,--output", o->out, "Output file; - writes csv/jsonl/perfetto to stdout")
      ->required();
  cmd->add_option("--tensor", o->tensor, "Only this tensor's observations (id or name)");
  cmd->footer(
      "Examples:\n"
      "  fpscope export run.fpst --format csv -o run.csv\n"
      "  fpscope export run.fpst --format sqlite -o run.sqlite && sqlite3 run.sqlite '.tables'\n"
      "  fpscope export run.fpst --format perfetto -o run.json   # open in ui.perfetto.dev\n"
      "Schemas: docs/cli.md.");
  cmd->callback([o]() {
    if (o->out == "-" && o->format == "sqlite")
      fail("-o -: a SQLite database cannot be written to stdout; give a file name");
    Progress progress("export");
    trace::Trace t;
    load_trace(o->file, &t, &progress);
    if (!o->tensor.empty()) {
      const uint32_t keep = find_tensor(t, o->tensor);
      std::erase_if(t.observations, [&](const auto& r) { return r.tensor != keep; });
      std::erase_if(t.weight_updates, [&](const auto& r) { return r.tensor != keep; });
    }
    progress.phase("writing " + o->out, 0.0);
    if (o->format == "sqlite") {
      AtomicOutput out(o->out);
      std::string err;
      if (!export_sqlite(t, out.tmp_path(), &progress, &err)) {
        if (err.rfind(out.tmp_path(), 0) == 0) err = o->out + err.substr(out.tmp_path().size());
        fail(err);
      }
      out.commit();
    } else {
      auto write = [&](std::ostream& f) {
        if (o->format == "csv") analysis::export_csv(t, f);
        if (o->format == "jsonl") analysis::export_jsonl(t, f);
        if (o->format == "perfetto") analysis::export_perfetto(t, f);
      };
      if (o->out == "-") {
        write(std::cout);
        std::cout.flush();
        if (!std::cout) fail(fmt::format("stdout: cannot write: {}", std::strerror(errno)));
      } else {
        AtomicOutput out(o->out);
        errno = 0;
        std::ofstream f(out.tmp_path(), std::ios::binary | std::ios::trunc);
        if (!f) fail(fmt::format("{}: cannot write: {}", o->out, std::strerror(errno)));
        write(f);
        f.close();
        if (!f)
          fail(fmt::format("{}: cannot write: {}", o->out, std::strerror(errno ? errno : EIO)));
        out.commit();
      }
    }
    progress.done();
    if (o->out != "-")
      fmt::print("wrote {} ({} observations, {})\n", o->out, t.observations.size(), o->format);
  });
}

}  // namespace fpscope::cli
