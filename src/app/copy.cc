// `rapport copy --from sqlite:PATH --to postgresql://…`: schema, rows and full-text bodies in one
// target transaction, then row counts compared table by table.
#include "app/copy.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "app/app.h"
#include "record/table.h"

namespace rapport::app {
namespace {

namespace fs = std::filesystem;
using storage::Rows;
using storage::SqlValue;
using storage::Tx;

// Rows read per batch; an INSERT carries at most this many rows and 30000 parameters (SQLite
// allows 32766, PostgreSQL 65535).
constexpr std::int64_t kBatchRows = 1000;
constexpr std::size_t kMaxParams = 30000;

Result<std::int64_t> count_rows(Tx& tx, const std::string& table) {
  RP_ASSIGN(Rows r, tx.query("SELECT count(*) FROM " + record::quote(table)));
  return record::as_int(r.rows[0][0]);
}

// INSERT INTO t (cols) VALUES (?, …), (?, …) … for `rows` rows.
std::string insert_sql(const std::string& table, const std::vector<std::string>& cols,
                       std::size_t rows) {
  std::string sql = "INSERT INTO " + record::quote(table) + " (";
  std::string one = "(";
  for (std::size_t i = 0; i < cols.size(); ++i) {
    sql += (i ? ", " : "") + record::quote(cols[i]);
    one += i ? ", ?" : "?";
  }
  one += ")";
  sql += ") VALUES ";
  for (std::size_t r = 0; r < rows; ++r) sql += (r ? ", " : "") + one;
  return sql;
}

// Copies every row of `table` (paged by SQLite's rowid) into the same-named table on the
// target, whose columns must include the source's.
Status copy_table(Tx& src, Tx& dst, const std::string& table) {
  RP_ASSIGN(auto target_cols, dst.table_columns(table));
  if (!target_cols)
    return make_error(Errc::kStorage, "the target has no table " + table +
                                          " (is the source from a newer version of Rapport?)");
  std::int64_t after = std::numeric_limits<std::int64_t>::min();
  std::vector<std::string> cols;
  for (;;) {
    SqlValue page[] = {after, kBatchRows};
    RP_ASSIGN(Rows rows,
              src.query("SELECT rowid AS \"_copy_rowid\", * FROM " + record::quote(table) +
                            " WHERE rowid > ? ORDER BY rowid LIMIT ?",
                        page));
    if (cols.empty()) {
      cols.assign(rows.columns.begin() + 1, rows.columns.end());
      for (const auto& c : cols) {
        if (std::find(target_cols->begin(), target_cols->end(), c) == target_cols->end())
          return make_error(Errc::kStorage, "the target's table " + table + " has no column " + c);
      }
    }
    const std::size_t per_insert = std::max<std::size_t>(1, kMaxParams / cols.size());
    for (std::size_t start = 0; start < rows.rows.size(); start += per_insert) {
      std::size_t n = std::min(per_insert, rows.rows.size() - start);
      std::vector<SqlValue> params;
      params.reserve(n * cols.size());
      for (std::size_t r = start; r < start + n; ++r)
        params.insert(params.end(), rows.rows[r].begin() + 1, rows.rows[r].end());
      RP_TRY(dst.exec(insert_sql(table, cols, n), params));
    }
    if (rows.rows.empty()) break;
    after = record::as_int(rows.rows.back()[0]);
    if (static_cast<std::int64_t>(rows.rows.size()) < kBatchRows) break;
  }
  return {};
}

// Copies an entity's search terms ("<entity>_terms", a WITHOUT ROWID table: paged by its key
// (term, id DESC) instead of a rowid).
Result<std::int64_t> copy_terms(Tx& src, Tx& dst, const std::string& entity) {
  const std::string table = record::quote(entity + "_terms");
  std::string after_term;
  std::int64_t after_id = std::numeric_limits<std::int64_t>::max(), copied = 0;
  for (;;) {
    // The key range right after the last row, as two index ranges: the rest of the current
    // term (ids below the last one), then the terms after it. (One `term > ? OR (term = ? AND
    // id < ?)` made SQLite scan every earlier row of the current term again for each page, so a
    // term shared by many records, such as a mail domain, cost pages × rows.)
    SqlValue rest[] = {after_term, after_id, kBatchRows};
    RP_ASSIGN(Rows rows, src.query("SELECT term, id, account_id, sig FROM " + table +
                                       " WHERE term = ? AND id < ? ORDER BY id DESC LIMIT ?",
                                   rest));
    if (static_cast<std::int64_t>(rows.rows.size()) < kBatchRows) {
      SqlValue next[] = {after_term, kBatchRows - static_cast<std::int64_t>(rows.rows.size())};
      RP_ASSIGN(Rows more, src.query("SELECT term, id, account_id, sig FROM " + table +
                                         " WHERE term > ? ORDER BY term, id DESC LIMIT ?",
                                     next));
      for (auto& r : more.rows) rows.rows.push_back(std::move(r));
    }
    const std::size_t per_insert = kMaxParams / 4;
    for (std::size_t start = 0; start < rows.rows.size(); start += per_insert) {
      std::size_t n = std::min(per_insert, rows.rows.size() - start);
      std::vector<SqlValue> params;
      params.reserve(n * 4);
      for (std::size_t r = start; r < start + n; ++r)
        params.insert(params.end(), rows.rows[r].begin(), rows.rows[r].end());
      RP_TRY(
          dst.exec(insert_sql(entity + "_terms", {"term", "id", "account_id", "sig"}, n), params));
      copied += static_cast<std::int64_t>(n);
    }
    if (rows.rows.empty()) break;
    after_term = record::as_text(rows.rows.back()[0]);
    after_id = record::as_int(rows.rows.back()[1]);
    if (static_cast<std::int64_t>(rows.rows.size()) < kBatchRows) break;
  }
  return copied;
}

}  // namespace

Status copy_database(const std::string& from, const std::string& to, std::ostream& out,
                     const record::RecordOptions& options) {
  std::string path = from;
  if (path.starts_with("sqlite:")) path = path.substr(7);
  if (path.starts_with("//")) path = path.substr(2);
  if (path.find("://") != std::string::npos)
    return make_error(Errc::kBadRequest, "--from must name a SQLite file: sqlite:PATH");
  if (!fs::is_regular_file(path))
    return make_error(Errc::kNotFound, "no SQLite database at " + path);

  // The source, brought up to this version's schema, with its custom fields registered.
  RP_ASSIGN(auto source,
            open_app(fs::path(path).parent_path().string(), "sqlite:" + path, options));
  RP_ASSIGN(auto target, storage::open_store(to));
  std::error_code same_ec;
  if (target->backend_name() == "sqlite" &&
      fs::equivalent(path, to.starts_with("sqlite:") ? to.substr(7) : to, same_ec))
    return make_error(Errc::kBadRequest, "--from and --to are the same database");

  RP_ASSIGN(auto src, source->store->read());  // one snapshot for the copy and the counts
  RP_ASSIGN(Rows listed, src->query("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                    "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"));
  std::set<std::string> term_tables;
  for (const auto& e : source->registry.all()) term_tables.insert(e->name + "_terms");
  std::vector<std::string> tables;    // plain tables, copied row by row
  std::vector<std::string> terms_of;  // entities whose search term table exists
  for (const auto& r : listed.rows) {
    std::string name = record::as_text(r[0]);
    // The target's migrations write their own; the row of the last term write is the SQLite
    // store's own (storage/sqlite/term_codes.h).
    if (name == "_migrations" || name == "_term_writes") continue;
    if (term_tables.count(name))
      terms_of.push_back(name.substr(0, name.size() - 6));
    else
      tables.push_back(name);
  }

  // Refuse a target that holds anything.
  {
    RP_ASSIGN(auto check, target->read());
    for (const auto& t : tables) {
      RP_ASSIGN(auto cols, check->table_columns(t));
      if (!cols) continue;
      RP_ASSIGN(std::int64_t n, count_rows(*check, t));
      if (n > 0)
        return make_error(Errc::kConflict, "the target database is not empty: table " + t +
                                               " has " + std::to_string(n) +
                                               " rows (copy needs an empty database)");
    }
  }

  // Schema: the same migrations, then entity tables (with custom-field columns) and full-text
  // tables from the source's metadata; rows and bodies; all of it but the migrations in one
  // transaction.
  std::vector<storage::Migration> migrations = access::migrations();
  for (auto& m : record::RecordService::migrations()) migrations.push_back(std::move(m));
  RP_TRY(target->migrate(migrations));
  std::map<std::string, std::int64_t> fts_copied;
  {
    RP_ASSIGN(auto dst, target->write());
    for (const auto& e : source->registry.all())
      RP_TRY(record::sync_table(*dst, target->dialect(), *e));
    for (const auto& t : tables) {
      out << "copying " << t << " …\n" << std::flush;
      if (auto s = copy_table(*src, *dst, t); !s.ok()) {
        Error e = std::move(s).error();
        e.message = "copying table " + t + ": " + e.message;
        return e;
      }
    }
    for (const auto& e : terms_of) {
      RP_ASSIGN(auto cols, dst->table_columns(e + "_terms"));
      if (!cols) continue;  // the target keeps no search terms for this entity
      RP_ASSIGN(fts_copied[e], copy_terms(*src, *dst, e));
    }
    RP_TRY(dst->commit());
  }

  // Verify: every table's row count on both sides.
  RP_ASSIGN(auto check, target->read());
  std::int64_t total = 0;
  std::string mismatches;
  char line[160];
  std::snprintf(line, sizeof line, "%-32s %12s %12s\n", "table", "source", "target");
  out << line;
  auto compare = [&](const std::string& t) -> Status {
    RP_ASSIGN(std::int64_t s, count_rows(*src, t));
    RP_ASSIGN(std::int64_t d, count_rows(*check, t));
    std::snprintf(line, sizeof line, "%-32s %12lld %12lld%s\n", t.c_str(),
                  static_cast<long long>(s), static_cast<long long>(d), s == d ? "" : "  MISMATCH");
    out << line;
    if (s != d) mismatches += (mismatches.empty() ? "" : ", ") + t;
    total += d;
    return {};
  };
  for (const auto& t : tables) RP_TRY(compare(t));
  for (const auto& [e, n] : fts_copied) RP_TRY(compare(e + "_terms"));
  out << "copied " << total << " rows in " << tables.size() + fts_copied.size() << " tables"
      << std::endl;
  if (!mismatches.empty())
    return make_error(Errc::kStorage, "row counts differ after the copy: " + mismatches);
  return {};
}

}  // namespace rapport::app
