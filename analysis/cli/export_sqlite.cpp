// SQLite export, like `nsys export`: an interned string table, integer ids, one table per record
// kind, ENUM_* tables naming the integer codes. Schema: docs/cli.md "export --format sqlite".
#include <sqlite3.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli_common.h"
#include "export_sqlite.h"
#include "fpscope/formats.h"
#include "fpscope/version.h"

namespace fpscope::cli {

namespace {

const char* kSchema = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE strings (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
CREATE TABLE ENUM_ROLE (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE ENUM_FORMAT (id INTEGER PRIMARY KEY, name TEXT NOT NULL, exp_bits INTEGER,
  man_bits INTEGER, max_finite REAL, min_normal REAL, min_subnormal REAL);
CREATE TABLE ENUM_STEP_SOURCE (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE ENUM_EVENT_LEVEL (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE ENUM_LOSS_SCALE_SOURCE (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE tensors (id INTEGER PRIMARY KEY, tensor_id INTEGER NOT NULL REFERENCES strings(id),
  name INTEGER REFERENCES strings(id), op INTEGER REFERENCES strings(id),
  role INTEGER REFERENCES ENUM_ROLE(id), dtype INTEGER REFERENCES ENUM_FORMAT(id),
  rows INTEGER, cols INTEGER, ld INTEGER, device INTEGER,
  transa TEXT, transb TEXT, m INTEGER, n INTEGER, k INTEGER, batch INTEGER);
CREATE TABLE observations (id INTEGER PRIMARY KEY, tensor INTEGER NOT NULL REFERENCES tensors(id),
  step INTEGER, seq INTEGER, stream INTEGER, time_ns INTEGER,
  count INTEGER, nan INTEGER, pos_inf INTEGER, neg_inf INTEGER, zero INTEGER,
  amax REAL, min REAL, max REAL, sum REAL, sum_sq REAL,
  bf16_overflow INTEGER, bf16_underflow INTEGER, bf16_subnormal INTEGER, bf16_sum_err2 REAL, bf16_scale REAL,
  fp16_overflow INTEGER, fp16_underflow INTEGER, fp16_subnormal INTEGER, fp16_sum_err2 REAL, fp16_scale REAL,
  e4m3_overflow INTEGER, e4m3_underflow INTEGER, e4m3_subnormal INTEGER, e4m3_sum_err2 REAL, e4m3_scale REAL,
  e5m2_overflow INTEGER, e5m2_underflow INTEGER, e5m2_subnormal INTEGER, e5m2_sum_err2 REAL, e5m2_scale REAL);
CREATE TABLE histograms (observation INTEGER NOT NULL REFERENCES observations(id),
  bin INTEGER NOT NULL, exponent INTEGER NOT NULL, count INTEGER NOT NULL);
CREATE TABLE steps (step INTEGER, source INTEGER REFERENCES ENUM_STEP_SOURCE(id), time_ns INTEGER,
  first_seq INTEGER);
CREATE TABLE loss_scales (step INTEGER, scale REAL, found_inf INTEGER, next_scale REAL,
  source INTEGER REFERENCES ENUM_LOSS_SCALE_SOURCE(id), time_ns INTEGER);
CREATE TABLE weight_updates (id INTEGER PRIMARY KEY, step INTEGER,
  tensor INTEGER REFERENCES tensors(id), master_dtype INTEGER REFERENCES ENUM_FORMAT(id),
  elements INTEGER, changed INTEGER,
  bf16_stagnant INTEGER, bf16_lost_abs REAL, bf16_delta_abs REAL,
  fp16_stagnant INTEGER, fp16_lost_abs REAL, fp16_delta_abs REAL);
CREATE TABLE weight_update_ratios (weight_update INTEGER NOT NULL REFERENCES weight_updates(id),
  log2_ratio INTEGER NOT NULL, count INTEGER NOT NULL);
CREATE TABLE events (step INTEGER, time_ns INTEGER, level INTEGER REFERENCES ENUM_EVENT_LEVEL(id),
  text INTEGER REFERENCES strings(id));
)sql";

const char* kIndexes = R"sql(
CREATE INDEX observations_tensor_step ON observations(tensor, step);
CREATE INDEX histograms_observation ON histograms(observation);
)sql";

// Rank sets: every table of kSchema but the ENUM_* ones with a first column `rank` and its ids
// unique per rank (keys (rank, id)), so that a rank's rows are its single-trace export's rows
// with the rank in front (docs/ranks.md: per-rank exports merge into this schema with
// INSERT ... SELECT <rank>, *). References are by (rank, id); not declared.
const char* kRankSchema = R"sql(
CREATE TABLE ranks (rank INTEGER PRIMARY KEY, path TEXT, rank_source TEXT, world_size INTEGER,
  local_rank INTEGER, host TEXT);
CREATE TABLE meta (rank INTEGER NOT NULL, key TEXT, value TEXT, PRIMARY KEY (rank, key));
CREATE TABLE strings (rank INTEGER NOT NULL, id INTEGER NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (rank, id), UNIQUE (rank, value));
CREATE TABLE ENUM_ROLE (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE ENUM_FORMAT (id INTEGER PRIMARY KEY, name TEXT NOT NULL, exp_bits INTEGER,
  man_bits INTEGER, max_finite REAL, min_normal REAL, min_subnormal REAL);
CREATE TABLE ENUM_STEP_SOURCE (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE ENUM_EVENT_LEVEL (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE ENUM_LOSS_SCALE_SOURCE (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE tensors (rank INTEGER NOT NULL, id INTEGER NOT NULL, tensor_id INTEGER NOT NULL,
  name INTEGER, op INTEGER, role INTEGER, dtype INTEGER,
  rows INTEGER, cols INTEGER, ld INTEGER, device INTEGER,
  transa TEXT, transb TEXT, m INTEGER, n INTEGER, k INTEGER, batch INTEGER, PRIMARY KEY (rank, id));
CREATE TABLE observations (rank INTEGER NOT NULL, id INTEGER NOT NULL, tensor INTEGER NOT NULL,
  step INTEGER, seq INTEGER, stream INTEGER, time_ns INTEGER,
  count INTEGER, nan INTEGER, pos_inf INTEGER, neg_inf INTEGER, zero INTEGER,
  amax REAL, min REAL, max REAL, sum REAL, sum_sq REAL,
  bf16_overflow INTEGER, bf16_underflow INTEGER, bf16_subnormal INTEGER, bf16_sum_err2 REAL, bf16_scale REAL,
  fp16_overflow INTEGER, fp16_underflow INTEGER, fp16_subnormal INTEGER, fp16_sum_err2 REAL, fp16_scale REAL,
  e4m3_overflow INTEGER, e4m3_underflow INTEGER, e4m3_subnormal INTEGER, e4m3_sum_err2 REAL, e4m3_scale REAL,
  e5m2_overflow INTEGER, e5m2_underflow INTEGER, e5m2_subnormal INTEGER, e5m2_sum_err2 REAL, e5m2_scale REAL,
  PRIMARY KEY (rank, id));
CREATE TABLE histograms (rank INTEGER NOT NULL, observation INTEGER NOT NULL,
  bin INTEGER NOT NULL, exponent INTEGER NOT NULL, count INTEGER NOT NULL);
CREATE TABLE steps (rank INTEGER NOT NULL, step INTEGER, source INTEGER, time_ns INTEGER,
  first_seq INTEGER);
CREATE TABLE loss_scales (rank INTEGER NOT NULL, step INTEGER, scale REAL, found_inf INTEGER,
  next_scale REAL, source INTEGER, time_ns INTEGER);
CREATE TABLE weight_updates (rank INTEGER NOT NULL, id INTEGER NOT NULL, step INTEGER,
  tensor INTEGER, master_dtype INTEGER, elements INTEGER, changed INTEGER,
  bf16_stagnant INTEGER, bf16_lost_abs REAL, bf16_delta_abs REAL,
  fp16_stagnant INTEGER, fp16_lost_abs REAL, fp16_delta_abs REAL, PRIMARY KEY (rank, id));
CREATE TABLE weight_update_ratios (rank INTEGER NOT NULL, weight_update INTEGER NOT NULL,
  log2_ratio INTEGER NOT NULL, count INTEGER NOT NULL);
CREATE TABLE events (rank INTEGER NOT NULL, step INTEGER, time_ns INTEGER, level INTEGER,
  text INTEGER);
)sql";

const char* kRankIndexes = R"sql(
CREATE INDEX observations_tensor_step ON observations(rank, tensor, step);
CREATE INDEX histograms_observation ON histograms(rank, observation);
)sql";

class Db {
 public:
  ~Db() {
    for (auto* s : stmts_) sqlite3_finalize(s);
    if (db_) sqlite3_close(db_);
  }
  bool open(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) return fail(path);
    return true;
  }
  bool exec(const char* sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
      error = msg ? msg : "sqlite error";
      sqlite3_free(msg);
      return false;
    }
    return true;
  }
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) {
      error = sqlite3_errmsg(db_);
      return nullptr;
    }
    stmts_.push_back(s);
    return s;
  }
  bool step(sqlite3_stmt* s) {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
      error = sqlite3_errmsg(db_);
      return false;
    }
    return true;
  }
  std::string error;

 private:
  bool fail(const std::string&) {
    error = db_ ? sqlite3_errmsg(db_) : "cannot open";
    return false;
  }
  sqlite3* db_ = nullptr;
  std::vector<sqlite3_stmt*> stmts_;
};

void bind(sqlite3_stmt* s, int i, int64_t v) {
  sqlite3_bind_int64(s, i, v);
}
void bind(sqlite3_stmt* s, int i, uint64_t v) {
  sqlite3_bind_int64(s, i, static_cast<int64_t>(v));
}
void bind(sqlite3_stmt* s, int i, uint32_t v) {
  sqlite3_bind_int64(s, i, v);
}
void bind(sqlite3_stmt* s, int i, int v) {
  sqlite3_bind_int64(s, i, v);
}
void bind(sqlite3_stmt* s, int i, double v) {
  sqlite3_bind_double(s, i, v);
}
void bind(sqlite3_stmt* s, int i, float v) {
  sqlite3_bind_double(s, i, static_cast<double>(v));
}
void bind(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

template <typename... A>
bool row(Db& db, sqlite3_stmt* s, const A&... a) {
  int i = 0;
  (bind(s, ++i, a), ...);
  return db.step(s);
}

// "INSERT INTO <table> VALUES (?, ...)" with `n` placeholders, one more for a rank set's rank.
std::string insert_sql(const char* table, int n, const int64_t* rank) {
  std::string s = fmt::format("INSERT INTO {} VALUES (?", table);
  for (int i = 1; i < n + (rank ? 1 : 0); ++i) s += ", ?";
  return s + ")";
}

// Rows of one trace: the rank first when it is part of a rank set.
struct RowWriter {
  Db& db;
  const int64_t* rank;  // nullptr: a single trace
  sqlite3_stmt* prepare(const char* table, int n) {
    return db.prepare(insert_sql(table, n, rank).c_str());
  }
  template <typename... A>
  bool operator()(sqlite3_stmt* s, const A&... a) {
    return rank ? row(db, s, *rank, a...) : row(db, s, a...);
  }
};

bool write_enums(Db& db) {
  auto* e_role = db.prepare("INSERT INTO ENUM_ROLE VALUES (?, ?)");
  auto* e_fmt = db.prepare("INSERT INTO ENUM_FORMAT VALUES (?, ?, ?, ?, ?, ?, ?)");
  auto* e_ss = db.prepare("INSERT INTO ENUM_STEP_SOURCE VALUES (?, ?)");
  auto* e_lvl = db.prepare("INSERT INTO ENUM_EVENT_LEVEL VALUES (?, ?)");
  auto* e_lss = db.prepare("INSERT INTO ENUM_LOSS_SCALE_SOURCE VALUES (?, ?)");
  if (!e_role || !e_fmt || !e_ss || !e_lvl || !e_lss) return false;
  bool ok = true;
  for (int r = 0; r <= static_cast<int>(trace::Role::Weight); ++r)
    ok = ok && row(db, e_role, r, std::string(trace::role_name(static_cast<trace::Role>(r))));
  for (const auto& f : kFormats)
    ok = ok && row(db, e_fmt, static_cast<int>(f.format), std::string(f.name), f.exp_bits,
                   f.man_bits, static_cast<double>(max_finite(f)),
                   static_cast<double>(min_normal(f)), static_cast<double>(min_subnormal(f)));
  for (int s = 0; s <= static_cast<int>(trace::StepSource::Framework); ++s)
    ok = ok &&
         row(db, e_ss, s, std::string(trace::step_source_name(static_cast<trace::StepSource>(s))));
  const char* levels[] = {"info", "warning", "error"};
  for (int i = 0; i < 3; ++i) ok = ok && row(db, e_lvl, i, std::string(levels[i]));
  ok = ok && row(db, e_lss, 0, std::string("api")) && row(db, e_lss, 1, std::string("kernel"));
  return ok;
}

// Every record of `t` (its strings interned on their own: ids per trace). On failure *what says
// which part and db.error why.
bool write_trace(Db& db, const trace::Trace& t, const int64_t* rank, Progress* progress,
                 std::string* what) {
  RowWriter put{db, rank};
  auto failed = [&](const char* part) {
    *what = part;
    return false;
  };
  std::map<std::string, int64_t> ids;
  auto* ins_str = put.prepare("strings", 2);
  if (!ins_str) return failed("prepare");
  bool ok = true;
  auto intern = [&](const std::string& s) -> int64_t {
    auto it = ids.find(s);
    if (it != ids.end()) return it->second;
    const int64_t id = static_cast<int64_t>(ids.size());
    ids.emplace(s, id);
    ok = ok && put(ins_str, id, s);
    return id;
  };

  auto* meta = put.prepare("meta", 2);
  if (!meta) return failed("prepare");
  const std::pair<const char*, std::string> metas[] = {
      {"path", t.path},
      {"format_version", fmt::format("{}.{}", t.version_major, t.version_minor)},
      {"metadata_json", t.metadata_json},
      {"step_source", trace::step_source_name(t.step_source)},
      {"truncated", t.truncated ? "1" : "0"},
      {"truncation_reason", t.truncation_reason},
      {"dropped_bytes", std::to_string(t.dropped_bytes)},
      {"file_bytes", std::to_string(t.file_bytes)},
      {"exporter", "fpscope " FPSCOPE_VERSION}};
  for (const auto& [k, v] : metas) ok = ok && put(meta, std::string(k), v);
  if (!ok) return failed("meta");

  auto* ins_t = put.prepare("tensors", 16);
  if (!ins_t) return failed("prepare");
  for (const auto& i : t.tensors) {
    ok = ok && put(ins_t, i.index, intern(i.id), intern(i.name), intern(i.op),
                   static_cast<int>(i.role), static_cast<int>(i.dtype), i.rows, i.cols, i.ld,
                   static_cast<int>(i.device), std::string(1, i.gemm.transa),
                   std::string(1, i.gemm.transb), i.gemm.m, i.gemm.n, i.gemm.k, i.gemm.batch);
  }
  if (!ok) return failed("tensors");

  auto* ins_o = put.prepare("observations", 36);
  auto* ins_h = put.prepare("histograms", 4);
  if (!ins_o || !ins_h) return failed("prepare");
  const size_t n = t.observations.size();
  for (size_t k = 0; k < n && ok; ++k) {
    const auto& o = t.observations[k];
    const auto& s = o.stats;
    const int64_t id = static_cast<int64_t>(k);
    int c = 0;
    auto b = [&](auto v) { bind(ins_o, ++c, v); };
    if (rank) b(*rank);
    b(id), b(o.tensor), b(o.step), b(o.seq), b(o.stream), b(o.time_ns), b(s.count), b(s.nan),
        b(s.pos_inf), b(s.neg_inf), b(s.zero), b(s.amax), b(s.min), b(s.max), b(s.sum), b(s.sum_sq);
    for (const auto& f : s.fmt)
      b(f.overflow), b(f.underflow), b(f.subnormal), b(f.sum_err2), b(f.scale);
    ok = db.step(ins_o);
    for (uint32_t j = 0; j < o.hist_len && ok; ++j) {
      const size_t h = static_cast<size_t>(o.hist_begin) + j;
      if (h >= t.hist_bins.size() || h >= t.hist_counts.size()) break;
      const int bin = t.hist_bins[h];
      ok = put(ins_h, id, bin, hist_bin_exponent(bin), t.hist_counts[h]);
    }
    if (progress && (k & 0xffff) == 0)
      progress->fraction(static_cast<double>(k) / static_cast<double>(n));
  }
  if (!ok) return failed("observations");

  auto* ins_s = put.prepare("steps", 4);
  auto* ins_l = put.prepare("loss_scales", 6);
  auto* ins_w = put.prepare("weight_updates", 12);
  auto* ins_r = put.prepare("weight_update_ratios", 3);
  auto* ins_e = put.prepare("events", 4);
  if (!ins_s || !ins_l || !ins_w || !ins_r || !ins_e) return failed("prepare");
  for (const auto& m : t.steps)
    ok = ok && put(ins_s, m.step, static_cast<int>(m.source), m.time_ns, m.first_seq);
  for (const auto& l : t.loss_scales)
    ok = ok && put(ins_l, l.step, l.scale, static_cast<int>(l.found_inf), l.next_scale,
                   static_cast<int>(l.source), l.time_ns);
  for (size_t k = 0; k < t.weight_updates.size() && ok; ++k) {
    const auto& w = t.weight_updates[k];
    const int64_t id = static_cast<int64_t>(k);
    ok = put(ins_w, id, w.step, w.tensor, static_cast<int>(w.master_dtype), w.elements, w.changed,
             w.bf16.stagnant, w.bf16.lost_abs, w.bf16.delta_abs, w.fp16.stagnant, w.fp16.lost_abs,
             w.fp16.delta_abs);
    for (const auto& [bin, cnt] : w.ratio_hist)
      ok = ok && put(ins_r, id, static_cast<int>(bin), cnt);
  }
  for (const auto& e : t.events)
    ok = ok && put(ins_e, e.step, e.time_ns, static_cast<int>(e.level), intern(e.text));
  if (!ok) return failed("records");
  return true;
}

}  // namespace

bool export_sqlite(const trace::Trace& t, const std::string& path, Progress* progress,
                   std::string* error) {
  std::error_code ec;
  std::filesystem::remove(path, ec);  // a fresh database, never appended to
  Db db;
  auto err = [&](const std::string& what) {
    if (error) *error = fmt::format("{}: {}: {}", path, what, db.error);
    return false;
  };
  if (!db.open(path)) return err("cannot create database");
  if (!db.exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN;")) return err("pragma");
  if (!db.exec(kSchema)) return err("schema");
  if (!write_enums(db)) return err("enum tables");
  std::string what;
  if (!write_trace(db, t, nullptr, progress, &what)) return err(what);
  if (!db.exec(kIndexes) || !db.exec("COMMIT;")) return err("commit");
  return true;
}

struct RankSqliteExport::Impl {
  Db db;
  std::string path;
  sqlite3_stmt* ins_rank = nullptr;
  bool fail(const std::string& what, std::string* error) {
    if (error) *error = fmt::format("{}: {}: {}", path, what, db.error);
    return false;
  }
};

RankSqliteExport::RankSqliteExport() : impl_(std::make_unique<Impl>()) {}
RankSqliteExport::~RankSqliteExport() = default;

bool RankSqliteExport::open(const std::string& path, std::string* error) {
  impl_->path = path;
  std::error_code ec;
  std::filesystem::remove(path, ec);  // a fresh database, never appended to
  auto& db = impl_->db;
  if (!db.open(path)) return impl_->fail("cannot create database", error);
  if (!db.exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN;"))
    return impl_->fail("pragma", error);
  if (!db.exec(kRankSchema)) return impl_->fail("schema", error);
  if (!write_enums(db)) return impl_->fail("enum tables", error);
  impl_->ins_rank = db.prepare("INSERT INTO ranks VALUES (?, ?, ?, ?, ?, ?)");
  if (!impl_->ins_rank) return impl_->fail("prepare", error);
  return true;
}

bool RankSqliteExport::add(const trace::Trace& t, const analysis::RankIdentity& id,
                           Progress* progress, std::string* error) {
  auto& db = impl_->db;
  auto* s = impl_->ins_rank;
  bind(s, 1, id.rank);
  bind(s, 2, id.path);
  const std::string source = analysis::rank_source_name(id.source);  // an lvalue: not std::bind
  bind(s, 3, source);
  auto opt_int = [&](int i, int64_t v) {
    if (v >= 0)
      bind(s, i, v);
    else
      sqlite3_bind_null(s, i);
  };
  opt_int(4, id.world_size);
  opt_int(5, id.local_rank);
  if (id.host.empty())
    sqlite3_bind_null(s, 6);
  else
    bind(s, 6, id.host);
  if (!db.step(s)) return impl_->fail(fmt::format("rank {} ({})", id.rank, id.path), error);
  std::string what;
  if (!write_trace(db, t, &id.rank, progress, &what))
    return impl_->fail(fmt::format("{} (rank {}, {})", what, id.rank, id.path), error);
  return true;
}

bool RankSqliteExport::finish(std::string* error) {
  auto& db = impl_->db;
  if (!db.exec(kRankIndexes) || !db.exec("COMMIT;")) return impl_->fail("commit", error);
  return true;
}

}  // namespace fpscope::cli
