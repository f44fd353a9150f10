// The SQLite export of a rank set (`fpscope export` of several traces of one run): one database
// for the whole run. Its schema is export_sqlite's (docs/cli.md "export --format sqlite") with a
// first column `rank` in every table but the ENUM_* ones, ids unique per rank (keys (rank, id)),
// strings interned per rank, plus a table `ranks` (rank, path, rank_source, world_size,
// local_rank, host). A rank's rows are exactly its single-trace export's with its rank in front,
// so per-rank exports merge into it with INSERT ... SELECT <rank>, * (docs/ranks.md).
#pragma once

#include <memory>
#include <string>

#include "cli_common.h"
#include "fpscope/analysis/ranks.h"
#include "fpscope/trace_io.h"

namespace fpscope::cli {

// open() once, add() each trace (any order; one trace in memory at a time is the caller's
// choice), finish() once. Each returns false with *error naming the database (and the trace).
class RankSqliteExport {
 public:
  RankSqliteExport();
  ~RankSqliteExport();
  bool open(const std::string& path, std::string* error);
  bool add(const trace::Trace& t, const analysis::RankIdentity& id, Progress* progress,
           std::string* error);
  bool finish(std::string* error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fpscope::cli
