#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli_common.h"
#include "export_sqlite.h"
#include "fpscope/analysis/export.h"

namespace fpscope::cli {

namespace {

struct Opts {
  std::vector<std::string> files;
  std::string file, format, out, tensor;
};

// Keeps only `x`'s records (id, else name, as find_tensor); false when the trace has no such
// tensor (a rank may not run it: pipeline stages hold different ops).
bool keep_tensor(trace::Trace* t, const std::string& x) {
  int64_t keep = -1;
  for (const auto& info : t->tensors)
    if (info.id == x) keep = info.index;
  for (const auto& info : t->tensors)
    if (keep < 0 && !info.name.empty() && info.name == x) keep = info.index;
  std::erase_if(t->observations, [&](const auto& r) { return r.tensor != keep; });
  std::erase_if(t->weight_updates, [&](const auto& r) { return r.tensor != keep; });
  return keep >= 0;
}

// Writes `fn(stream)` to o.out ("-": stdout) whole or not at all.
template <typename Fn>
void write_stream(const std::string& path, Fn&& fn) {
  if (path == "-") {
    fn(std::cout);
    std::cout.flush();
    if (!std::cout) fail(fmt::format("stdout: cannot write: {}", std::strerror(errno)));
    return;
  }
  AtomicOutput out(path);
  errno = 0;
  std::ofstream f(out.tmp_path(), std::ios::binary | std::ios::trunc);
  if (!f) fail(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
  fn(f);
  f.close();
  if (!f) fail(fmt::format("{}: cannot write: {}", path, std::strerror(errno ? errno : EIO)));
  out.commit();
}

// Several traces of one run (ranks.h): every rank's rows in one output, each with its rank, in
// ascending rank; one trace in memory at a time.
void export_rank_set(const Opts& o, const std::vector<std::string>& paths) {
  std::vector<analysis::RankIdentity> ids;
  std::string err;
  if (!analysis::identify_rank_paths(paths, &ids, &err)) fail(err);
  Progress progress("export");
  uint64_t rows = 0;
  size_t with_tensor = 0;
  // Calls fn(trace, identity, index) for each rank in order.
  auto each_rank = [&](auto&& fn) {
    for (size_t i = 0; i < ids.size(); ++i) {
      progress.phase(fmt::format("writing {} ranks", ids.size()),
                     static_cast<double>(i) / static_cast<double>(ids.size()));
      trace::Trace t;
      load_trace(ids[i].path, &t);
      if (!o.tensor.empty()) with_tensor += keep_tensor(&t, o.tensor);
      rows += t.observations.size();
      fn(t, ids[i], i);
    }
    if (!o.tensor.empty() && with_tensor == 0)
      fail(fmt::format("no tensor '{}' in any of the {} traces ({} ... {}; see fpscope summary)",
                       o.tensor, ids.size(), ids.front().path, ids.back().path));
  };
  if (o.format == "sqlite") {
    AtomicOutput out(o.out);
    RankSqliteExport db;
    auto check = [&](bool ok) {
      if (ok) return;
      if (err.rfind(out.tmp_path(), 0) == 0) err = o.out + err.substr(out.tmp_path().size());
      fail(err);
    };
    check(db.open(out.tmp_path(), &err));
    each_rank([&](const trace::Trace& t, const analysis::RankIdentity& id, size_t) {
      check(db.add(t, id, nullptr, &err));
    });
    check(db.finish(&err));
    out.commit();
  } else {
    write_stream(o.out, [&](std::ostream& f) {
      if (o.format == "perfetto")
        analysis::export_perfetto_begin(fmt::format("rank set of {} traces", ids.size()), f);
      each_rank([&](const trace::Trace& t, const analysis::RankIdentity& id, size_t i) {
        if (o.format == "csv") analysis::export_csv_rank(t, id.rank, i == 0, f);
        if (o.format == "jsonl") analysis::export_jsonl_rank(t, id.rank, f);
        if (o.format == "perfetto")
          analysis::export_perfetto_process(t, id.rank + 1,
                                            fmt::format("rank {} {}", id.rank, t.path), i == 0, f);
      });
      if (o.format == "perfetto") analysis::export_perfetto_end(f);
    });
  }
  progress.done();
  if (o.out != "-")
    fmt::print("wrote {} ({} observations of {} ranks, {})\n", o.out, rows, ids.size(), o.format);
}

}  // namespace

void register_export_command(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "export",
      "Export observations: csv, jsonl, sqlite (like nsys export), perfetto (Chrome JSON)");
  cmd->add_option("FILE", o->files,
                  "Trace file (.fpst); several traces of one multi-rank run (paths, a glob, a "
                  "directory) are written into one output with a rank column")
      ->required();
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
      "  fpscope export 'runs/run-*.fpst' --format sqlite -o run.sqlite   # every rank\n"
      "Rank sets: the traces are matched by rank (metadata, else file name) and written in\n"
      "ascending rank into one output: CSV/JSONL rows with a leading rank column/key, one\n"
      "SQLite database whose tables have a rank column (and a ranks table), Perfetto with one\n"
      "process per rank. Loading them into a database: docs/ranks.md.\n"
      "Schemas: docs/cli.md.");
  cmd->callback([o]() {
    if (o->out == "-" && o->format == "sqlite")
      fail("-o -: a SQLite database cannot be written to stdout; give a file name");
    const std::vector<std::string> paths = trace_paths(o->files);
    if (paths.size() > 1) {
      export_rank_set(*o, paths);
      return;
    }
    o->file = paths.front();
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
      write_stream(o->out, write);
    }
    progress.done();
    if (o->out != "-")
      fmt::print("wrote {} ({} observations, {})\n", o->out, t.observations.size(), o->format);
  });
}

}  // namespace fpscope::cli
