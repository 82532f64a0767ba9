// The implementation of the PostgreSQL backend: SQL translation (`?` → $n), connections with a
// prepared-statement cache, the connection pool, transactions, pg_trgm search and migrations.
#include "storage/postgres/pg_store.h"
#include "base/blocking.h"
#include "storage/migrations.h"
#include "storage/shared_read.h"
#include "storage/text_search.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

namespace rapport::storage::postgres {
namespace {

using detail::fts_table;

// Above this many cached statements the cache is dropped (DEALLOCATE ALL) and rebuilt; bounds
// the server memory that dynamically shaped SQL (fts_search with varying term counts) can pin.
constexpr std::size_t kStatementCacheLimit = 512;

// pg_advisory_xact_lock key serialising schema changes across processes: extension set-up,
// migrations, and write transactions that inspect the schema (table_columns) before changing it
// ("rapport1" in ASCII).
constexpr std::int64_t kSchemaLockKey = 0x7261707061727431;
// First key of the two-key advisory locks that hand out id node numbers ("rapp").
constexpr std::int64_t kNodeLockKey = 0x72617070;
// First key of the two-key advisory locks of background jobs (try_job_lock; "rapj").
constexpr std::int64_t kJobLockKey = 0x7261706a;

// Type OIDs from the server's catalog/pg_type.h (not shipped with libpq-dev).
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kOidOid = 26;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

bool ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         (static_cast<unsigned char>(c) & 0x80) != 0;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x >= 'A' && x <= 'Z' ? x + 32 : x) == (y >= 'A' && y <= 'Z' ? y + 32 : y);
         });
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The column named by a key detail: `Key (email)=(a@x.org) already exists.` → "email";
// first column of a composite key; empty for an expression index.
std::string key_field(std::string_view detail) {
  auto start = detail.find("Key (");
  if (start == std::string_view::npos) return {};
  std::string_view rest = detail.substr(start + 5);
  auto end = std::min(rest.find(", "), rest.find(")="));
  if (end == std::string_view::npos) return {};
  std::string_view col = rest.substr(0, end);
  if (col.size() >= 2 && col.front() == '"' && col.back() == '"') {
    col = col.substr(1, col.size() - 2);
  }
  if (col.empty() || !std::all_of(col.begin(), col.end(), ident_char)) return {};
  return std::string(col);
}

// The column a unique constraint or index is on, from PostgreSQL's default names
// ("<table>_<col>_key") or the record layer's ("ix_<table>__<col>").
std::string constraint_field(std::string_view constraint, std::string_view table) {
  std::string_view c = constraint;
  std::string ix = "ix_" + std::string(table) + "__";
  if (c.starts_with(ix)) {
    c.remove_prefix(ix.size());
    return std::string(c.substr(0, c.find("__")));
  }
  if (!table.empty() && c.starts_with(std::string(table) + "_") && c.ends_with("_key")) {
    c.remove_prefix(table.size() + 1);
    c.remove_suffix(4);
    return std::string(c);
  }
  return {};
}

// Maps a failed result (or a connection failure when `res` is null) to an Error.
Error pg_error(PGconn* conn, const PGresult* res, std::string_view context = {}) {
  auto field = [&](int code) -> std::string {
    const char* v = res != nullptr ? PQresultErrorField(res, code) : nullptr;
    return v != nullptr ? v : "";
  };
  std::string state = field(PG_DIAG_SQLSTATE);
  std::string msg = field(PG_DIAG_MESSAGE_PRIMARY);
  if (msg.empty()) {
    msg = trim(res != nullptr && *PQresultErrorMessage(res) != '\0' ? PQresultErrorMessage(res)
                                                                    : PQerrorMessage(conn));
  }
  std::string detail = field(PG_DIAG_MESSAGE_DETAIL);
  if (!detail.empty()) msg += " (" + detail + ")";
  if (!context.empty()) msg = std::string(context) + ": " + msg;

  if (PQstatus(conn) == CONNECTION_BAD || state.starts_with("08") || state == "57P01" ||
      state == "57P02" || state == "57P03") {
    return make_error(Errc::kStorage, "connection to PostgreSQL lost: " + msg);
  }
  if (state == "23505") {
    std::string col = key_field(detail);
    if (col.empty())
      col = constraint_field(field(PG_DIAG_CONSTRAINT_NAME), field(PG_DIAG_TABLE_NAME));
    return make_error(Errc::kDuplicate, std::move(msg), std::move(col));
  }
  if (state.starts_with("23") || state.starts_with("22")) {
    std::string col = field(PG_DIAG_COLUMN_NAME);
    if (col.empty()) col = key_field(detail);
    return make_error(Errc::kValidation, std::move(msg), std::move(col));
  }
  if (state == "40001" || state == "40P01" || state == "55P03") {
    return make_error(Errc::kBusy, std::move(msg));
  }
  return make_error(Errc::kStorage, std::move(msg));
}

std::string format_double(double d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  std::string s = buf;
  if (s == "nan" || s == "-nan") return "NaN";
  if (s == "inf") return "Infinity";
  if (s == "-inf") return "-Infinity";
  return s;
}

// A numeric column value: an int64 when it is a whole number that fits (SUM over BIGINT columns
// is numeric in PostgreSQL and an integer in SQLite), else a double.
SqlValue numeric_value(const char* text) {
  std::string_view s = text;
  bool integral = !s.empty() && s.find_first_not_of("-0123456789") == std::string_view::npos;
  if (integral) {
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(text, &end, 10);
    if (errno == 0 && end != nullptr && *end == '\0') return static_cast<std::int64_t>(v);
  }
  return std::strtod(text, nullptr);
}

void ignore_notice(void* /*arg*/, const char* /*message*/) {}

// A WAL location "16/B374D848" as a number; nullopt for NULL or anything else.
std::optional<std::uint64_t> parse_lsn(const SqlValue& v) {
  const auto* s = std::get_if<std::string>(&v);
  if (s == nullptr) return std::nullopt;
  auto slash = s->find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= s->size()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long long hi = std::strtoull(s->c_str(), &end, 16);
  if (errno != 0 || end != s->c_str() + slash) return std::nullopt;
  unsigned long long lo = std::strtoull(s->c_str() + slash + 1, &end, 16);
  if (errno != 0 || *end != '\0' || hi > 0xffffffffULL || lo > 0xffffffffULL) return std::nullopt;
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

}  // namespace

Result<std::string> translate_sql(std::string_view sql, int* count) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  int words = 0;  // unquoted words seen so far
  std::string_view first_words[3];
  bool ddl = false;  // CREATE [TEMP|UNLOGGED] TABLE or ALTER TABLE
  std::size_t end_of_statement = std::string_view::npos;  // position of a top-level ';'
  std::size_t i = 0;
  const std::size_t size = sql.size();

  auto only_one = [&]() -> Error {
    return make_error(Errc::kInternal,
                      "only one SQL statement per call is supported: " + std::string(sql));
  };
  while (i < size) {
    char c = sql[i];
    // Comments: copied (before a ';') or skipped (after it).
    if (c == '-' && i + 1 < size && sql[i + 1] == '-') {
      std::size_t e = sql.find('\n', i);
      e = e == std::string_view::npos ? size : e;
      if (end_of_statement == std::string_view::npos) out.append(sql.substr(i, e - i));
      i = e;
      continue;
    }
    if (c == '/' && i + 1 < size && sql[i + 1] == '*') {
      std::size_t start = i;
      int depth = 0;
      while (i < size) {
        if (sql[i] == '/' && i + 1 < size && sql[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (sql[i] == '*' && i + 1 < size && sql[i + 1] == '/') {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
      if (end_of_statement == std::string_view::npos) out.append(sql.substr(start, i - start));
      continue;
    }
    if (end_of_statement != std::string_view::npos) {
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == ';') {
        ++i;
        continue;
      }
      return only_one();
    }
    if (c == ';') {
      end_of_statement = i;
      ++i;
      continue;
    }
    if (c == '\'') {
      // E'…' strings take backslash escapes; standard strings (standard_conforming_strings=on,
      // set on every connection) do not. '' is a quote in both.
      bool escapes =
          i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') && (i < 2 || !ident_char(sql[i - 2]));
      std::size_t start = i++;
      while (i < size) {
        if (escapes && sql[i] == '\\') {
          i += 2;
        } else if (sql[i] == '\'') {
          if (i + 1 < size && sql[i + 1] == '\'') {
            i += 2;
          } else {
            ++i;
            break;
          }
        } else {
          ++i;
        }
      }
      out.append(sql.substr(start, std::min(i, size) - start));
      continue;
    }
    if (c == '"') {
      std::size_t start = i++;
      while (i < size) {
        if (sql[i] == '"') {
          if (i + 1 < size && sql[i + 1] == '"') {
            i += 2;
          } else {
            ++i;
            break;
          }
        } else {
          ++i;
        }
      }
      out.append(sql.substr(start, std::min(i, size) - start));
      continue;
    }
    if (c == '$' && (i == 0 || !ident_char(sql[i - 1]))) {
      // Dollar quoting: $$…$$ or $tag$…$tag$.
      std::size_t j = i + 1;
      while (j < size && ident_char(sql[j]) && !(sql[j] >= '0' && sql[j] <= '9' && j == i + 1)) {
        ++j;
      }
      if (j < size && sql[j] == '$') {
        std::string_view tag = sql.substr(i, j - i + 1);
        std::size_t close = sql.find(tag, j + 1);
        std::size_t e = close == std::string_view::npos ? size : close + tag.size();
        out.append(sql.substr(i, e - i));
        i = e;
        continue;
      }
    }
    if (c == '?') {
      out += '$';
      out += std::to_string(++n);
      ++i;
      continue;
    }
    if (ident_char(c) && !(c >= '0' && c <= '9') && (i == 0 || !ident_char(sql[i - 1]))) {
      std::size_t j = i;
      while (j < size && ident_char(sql[j])) ++j;
      std::string_view word = sql.substr(i, j - i);
      if (words < 3) {
        first_words[words] = word;
        if (words == 1) {
          ddl = (iequals(first_words[0], "ALTER") && iequals(word, "TABLE")) ||
                (iequals(first_words[0], "CREATE") && iequals(word, "TABLE"));
        } else if (words == 2 && !ddl) {
          ddl = iequals(first_words[0], "CREATE") && iequals(word, "TABLE") &&
                (iequals(first_words[1], "TEMP") || iequals(first_words[1], "TEMPORARY") ||
                 iequals(first_words[1], "UNLOGGED"));
        }
      }
      ++words;
      if (ddl && (iequals(word, "INTEGER") || iequals(word, "INT"))) {
        out += "BIGINT";
      } else if (ddl && iequals(word, "REAL")) {
        out += "DOUBLE PRECISION";
      } else {
        out.append(word);
      }
      i = j;
      continue;
    }
    out += c;
    ++i;
  }
  if (count != nullptr) *count = n;
  return out;
}

// One PGconn and the statements prepared on it. Used by one thread at a time (the holder of
// the transaction that took it from the pool).
class PgConnection {
 public:
  static Result<std::unique_ptr<PgConnection>> connect(const std::string& url,
                                                       const StoreOptions& options,
                                                       const char* connect_timeout = "10") {
    // Later entries override earlier ones: the URL may set connect_timeout, never the encoding.
    const char* keys[] = {"connect_timeout", "dbname", "client_encoding",
                          "fallback_application_name", nullptr};
    const char* values[] = {connect_timeout, url.c_str(), "UTF8", "rapport", nullptr};
    PGconn* conn;
    {
      ScopedBlocking waiting;  // for the server to accept the connection
      conn = PQconnectdbParams(keys, values, 1);
    }
    if (conn == nullptr)
      return make_error(Errc::kStorage, "cannot connect to PostgreSQL: out of memory");
    if (PQstatus(conn) != CONNECTION_OK) {
      std::string msg = trim(PQerrorMessage(conn));
      PQfinish(conn);
      return make_error(Errc::kStorage, "cannot connect to PostgreSQL: " + msg);
    }
    PQsetNoticeProcessor(conn, ignore_notice, nullptr);
    std::unique_ptr<PgConnection> c(new PgConnection(conn));
    // lock_timeout: a row lock held by another transaction longer than the busy timeout is
    // kBusy (55P03), as SQLite's busy timeout is.
    std::string setup =
        "SET standard_conforming_strings = on; SET client_min_messages = warning; "
        "SET lock_timeout = " +
        std::to_string(std::max(1, options.busy_timeout_ms));
    if (auto s = c->simple(setup); !s.ok()) {
      return make_error(Errc::kStorage, "cannot connect to PostgreSQL: " + s.error().message);
    }
    return c;
  }

  ~PgConnection() { PQfinish(conn_); }
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  bool healthy() const { return !broken_ && PQstatus(conn_) == CONNECTION_OK; }
  // Idle: no transaction open and no answer outstanding.
  bool idle() const { return !pending_ && PQtransactionStatus(conn_) == PQTRANS_IDLE; }
  bool in_failed_transaction() const { return PQtransactionStatus(conn_) == PQTRANS_INERROR; }
  // An end of transaction sent by end_async() whose answer has not been read yet.
  bool pending() const { return pending_; }
  // Counts the exchanges this connection waits for (one per query, prepare or pipeline).
  void count_round_trips(std::atomic<std::uint64_t>* counter) { round_trips_ = counter; }

  // Runs SQL without parameters through the simple query protocol (several statements allowed).
  Status simple(const std::string& sql) {
    RP_TRY(settle());
    waited();
    PGresult* res;
    {
      ScopedBlocking waiting;  // for the server's answer
      res = PQexec(conn_, sql.c_str());
    }
    Status s = check(res);
    PQclear(res);
    return s;
  }

  // Ends any open transaction, ignoring errors (used on paths that are already failing).
  void rollback_quietly() {
    if (healthy() && !pending_ && !idle()) (void)simple("ROLLBACK");
  }

  // Sends `sql` (COMMIT or ROLLBACK of a read-only transaction) without waiting for its answer:
  // the server ends the transaction (and drops its snapshot) at once, the answer is read by
  // settle() at the connection's next use. A send failure marks the connection broken.
  void end_async(const char* sql) {
    if (PQenterPipelineMode(conn_) == 0 ||
        PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 0 ||
        PQpipelineSync(conn_) == 0) {
      broken_ = true;
      return;
    }
    pending_ = true;
  }

  // Reads the answer of an end_async(); kStorage when it failed (the connection is then broken).
  Status settle() {
    if (!pending_) return {};
    pending_ = false;
    std::optional<Error> error;
    {
      // The answer has normally arrived long ago; when not, this waits for the server.
      std::optional<ScopedBlocking> waiting;
      if (PQconsumeInput(conn_) == 0 || PQisBusy(conn_) != 0) waiting.emplace();
      while (PGresult* r = PQgetResult(conn_)) {
        if (PQresultStatus(r) == PGRES_FATAL_ERROR && !error) error = pg_error(conn_, r);
        PQclear(r);
      }
      if (PGresult* sync = PQgetResult(conn_)) PQclear(sync);  // PGRES_PIPELINE_SYNC
    }
    if (PQexitPipelineMode(conn_) == 0 || error) {
      broken_ = true;
      return error ? *error : pg_error(conn_, nullptr, "ending a read transaction");
    }
    return {};
  }

  // One statement of run_many: its rows go to `out` when given, the number of rows it changed
  // (0 for DDL and queries) to `changed`.
  struct Statement {
    std::string_view sql;
    std::span<const SqlValue> params;
    Rows* out = nullptr;
    std::int64_t changed = 0;
  };

  // Runs one statement as a cached prepared statement; collects result rows into `out` when
  // given. Returns the number of rows changed (0 for DDL and queries). When `*begin` is set
  // (a transaction's deferred BEGIN), it is sent ahead of the statement in the same pipeline
  // and `*begin` is cleared; a statement not yet prepared is prepared in that pipeline too, so
  // every call waits for one round trip.
  Result<std::int64_t> run(std::string_view sql, std::span<const SqlValue> params,
                           Rows* out = nullptr, const char** begin = nullptr) {
    Statement one{sql, params, out};
    RP_TRY(run_many(std::span<Statement>(&one, 1), begin));
    return one.changed;
  }

  // run() of several statements in one pipeline (one round trip; `*begin` and the statements
  // not prepared yet go in it too). The first failure is returned: in a transaction the
  // server has aborted it then and skipped the statements after it (PIPELINE_ABORTED); a
  // statement refused before anything was sent (parameter count, NUL in text) sends none.
  // The connection stays usable either way (the holder rolls the transaction back).
  Status run_many(std::span<Statement> stmts, const char** begin = nullptr) {
    RP_TRY(settle());
    struct Item {
      const Prepared* stmt = nullptr;  // cached, or prepared earlier in this pipeline
      std::string translated;          // the text to prepare when `stmt` is null
      int count = 0;
      std::string name;
      bool prepares = false;  // this item sends the Parse of its statement
      std::vector<std::string> text;
      std::vector<const char*> values;
    };
    std::vector<Item> items(stmts.size());
    for (std::size_t k = 0; k < stmts.size(); ++k) {
      Item& it = items[k];
      const Statement& st = stmts[k];
      if (auto c = cache_.find(st.sql); c != cache_.end()) {
        it.stmt = &c->second;
        it.count = it.stmt->params;
      } else {
        RP_ASSIGN(it.translated, translate_sql(st.sql, &it.count));
      }
      if (it.count != static_cast<int>(st.params.size())) {
        return make_error(Errc::kInternal,
                          "statement expects " + std::to_string(it.count) + " parameters, got " +
                              std::to_string(st.params.size()) + ": " + std::string(st.sql));
      }
      it.text.resize(st.params.size());
      it.values.assign(st.params.size(), nullptr);
      for (std::size_t i = 0; i < st.params.size(); ++i) {
        const SqlValue& v = st.params[i];
        if (const auto* n = std::get_if<std::int64_t>(&v)) {
          it.text[i] = std::to_string(*n);
        } else if (const auto* d = std::get_if<double>(&v)) {
          it.text[i] = format_double(*d);
        } else if (const auto* s = std::get_if<std::string>(&v)) {
          if (s->find('\0') != std::string::npos) {
            return make_error(Errc::kValidation, "text must not contain the NUL character");
          }
          it.values[i] = s->c_str();
          continue;
        } else {
          continue;  // NULL
        }
        it.values[i] = it.text[i].c_str();
      }
    }
    const bool with_begin = begin != nullptr && *begin != nullptr;
    if (stmts.size() == 1 && items[0].stmt != nullptr && !with_begin) {
      waited();
      PGresult* res;
      {
        ScopedBlocking waiting;  // for the server's answer
        res = PQexecPrepared(conn_, items[0].stmt->name.c_str(), items[0].count,
                             items[0].values.data(), nullptr, nullptr, 0);
      }
      RP_ASSIGN(stmts[0].changed, finish_exec(stmts[0].sql, res, stmts[0].out));
      return {};
    }
    std::size_t new_statements = 0;
    for (const Item& it : items) new_statements += it.stmt == nullptr ? 1 : 0;
    // Outside a transaction (a deferred BEGIN) or in one that has not failed: DEALLOCATE can run.
    if (new_statements > 0) {
      if (cache_.size() + new_statements > kStatementCacheLimit) {
        RP_TRY(simple("DEALLOCATE ALL"));
        cache_.clear();
        stale_.clear();
        for (std::size_t k = 0; k < items.size(); ++k) {
          if (items[k].stmt == nullptr) continue;
          items[k].stmt = nullptr;
          RP_ASSIGN(items[k].translated, translate_sql(stmts[k].sql, &items[k].count));
        }
      }
      for (; !stale_.empty(); stale_.pop_back()) RP_TRY(simple("DEALLOCATE " + stale_.back()));
    }
    // A text that comes twice is prepared once, by its first item.
    std::unordered_map<std::string_view, std::size_t> preparing;
    for (std::size_t k = 0; k < items.size(); ++k) {
      Item& it = items[k];
      if (it.stmt != nullptr) {
        it.name = it.stmt->name;
      } else if (auto p = preparing.find(stmts[k].sql); p != preparing.end()) {
        it.name = items[p->second].name;
      } else {
        it.name = "rp" + std::to_string(++next_statement_);
        it.prepares = true;
        preparing.emplace(stmts[k].sql, k);
      }
    }
    waited();
    int sent = 0;
    bool ok = PQenterPipelineMode(conn_) != 0;
    if (ok && with_begin) {
      ok = PQsendQueryParams(conn_, *begin, 0, nullptr, nullptr, nullptr, nullptr, 0) != 0;
      sent += ok ? 1 : 0;
      *begin = nullptr;
    }
    for (Item& it : items) {
      if (ok && it.prepares) {
        ok = PQsendPrepare(conn_, it.name.c_str(), it.translated.c_str(), it.count, nullptr) != 0;
        sent += ok ? 1 : 0;
      }
      if (ok) {
        ok = PQsendQueryPrepared(conn_, it.name.c_str(), it.count, it.values.data(), nullptr,
                                 nullptr, 0) != 0;
        sent += ok ? 1 : 0;
      }
    }
    ok = ok && PQpipelineSync(conn_) != 0;
    if (!ok) {
      broken_ = true;  // a send failed: the connection is not usable any more
      return pg_error(conn_, nullptr);
    }
    // One result per message sent (an earlier failure makes the later ones PIPELINE_ABORTED).
    std::vector<PGresult*> results(sent, nullptr);
    {
      ScopedBlocking waiting;  // for the server's answers
      for (int i = 0; i < sent; ++i) {
        while (PGresult* r = PQgetResult(conn_)) {
          if (results[i] == nullptr) {
            results[i] = r;
          } else {
            PQclear(r);
          }
        }
      }
      if (PGresult* sync = PQgetResult(conn_)) PQclear(sync);  // PGRES_PIPELINE_SYNC
    }
    if (PQexitPipelineMode(conn_) == 0) broken_ = true;
    struct ClearAll {
      std::vector<PGresult*>& rs;
      ~ClearAll() {
        for (PGresult* r : rs) PQclear(r);
      }
    } clear_all{results};
    std::size_t at = 0;
    std::optional<Error> first_error;
    if (with_begin) {
      if (Status s = check(results[at]); !s.ok()) first_error = std::move(s).error();
      ++at;
    }
    // Every statement whose Parse succeeded is cached, whatever failed around it.
    for (std::size_t k = 0; k < items.size(); ++k) {
      Item& it = items[k];
      if (it.prepares) {
        if (Status s = check(results[at]); !s.ok()) {
          if (!first_error) first_error = std::move(s).error();
        } else {
          cache_.emplace(std::string(stmts[k].sql), Prepared{it.name, it.count});
        }
        ++at;
      }
      PGresult* res = std::exchange(results[at], nullptr);
      ++at;
      if (first_error) {
        PQclear(res);
        continue;
      }
      if (broken_) {
        PQclear(res);
        first_error = pg_error(conn_, nullptr);
        continue;
      }
      auto changed = finish_exec(stmts[k].sql, res, stmts[k].out);
      if (!changed.ok()) {
        first_error = std::move(changed).error();
      } else {
        stmts[k].changed = *changed;
      }
    }
    if (first_error) return *first_error;
    return {};
  }

 private:
  struct Prepared {
    std::string name;
    int params = 0;
  };

  explicit PgConnection(PGconn* conn) : conn_(conn) {}

  Status check(PGresult* res) {
    ExecStatusType status = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
      return {};
    }
    return pg_error(conn_, res);
  }

  void waited() {
    if (round_trips_ != nullptr) round_trips_->fetch_add(1, std::memory_order_relaxed);
  }

  // The outcome of executing `sql` (its result `res`, which this frees).
  Result<std::int64_t> finish_exec(std::string_view sql, PGresult* res, Rows* out) {
    struct Clear {
      PGresult* r;
      ~Clear() { PQclear(r); }
    } clear{res};
    ExecStatusType status = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK) {
      if (out != nullptr) *out = Rows{};
      const char* n = PQcmdTuples(res);
      return static_cast<std::int64_t>(n != nullptr && *n != '\0' ? std::strtoll(n, nullptr, 10)
                                                                  : 0);
    }
    if (status != PGRES_TUPLES_OK) {
      // "cached plan must not change result type": a `SELECT *` prepared before its table
      // gained a column. Forget it so the next use prepares it afresh (this use has failed
      // and aborted the transaction); the server-side statement is deallocated later.
      const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
      if (state != nullptr && std::string_view(state) == "0A000") {
        if (auto it = cache_.find(sql); it != cache_.end()) {
          stale_.push_back(std::move(it->second.name));
          cache_.erase(it);
        }
      }
      return pg_error(conn_, res);
    }
    if (out == nullptr) return std::int64_t{0};
    convert(res, *out);
    return std::int64_t{0};
  }

  static void convert(const PGresult* res, Rows& out) {
    int ncols = PQnfields(res);
    int nrows = PQntuples(res);
    out.columns.clear();
    out.rows.clear();
    std::vector<Oid> types(ncols);
    for (int c = 0; c < ncols; ++c) {
      out.columns.emplace_back(PQfname(res, c));
      types[c] = PQftype(res, c);
    }
    out.rows.reserve(nrows);
    for (int r = 0; r < nrows; ++r) {
      std::vector<SqlValue>& row = out.rows.emplace_back();
      row.reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res, r, c)) {
          row.emplace_back(std::monostate{});
          continue;
        }
        const char* v = PQgetvalue(res, r, c);
        switch (types[c]) {
          case kInt2Oid:
          case kInt4Oid:
          case kInt8Oid:
          case kOidOid:
            row.emplace_back(static_cast<std::int64_t>(std::strtoll(v, nullptr, 10)));
            break;
          case kFloat4Oid:
          case kFloat8Oid:
            row.emplace_back(std::strtod(v, nullptr));  // also "NaN", "Infinity"
            break;
          case kNumericOid:
            row.emplace_back(numeric_value(v));
            break;
          case kBoolOid:  // booleans are integers 0/1 everywhere else
            row.emplace_back(static_cast<std::int64_t>(v[0] == 't' ? 1 : 0));
            break;
          default:
            row.emplace_back(std::string(v, static_cast<std::size_t>(PQgetlength(res, r, c))));
        }
      }
    }
  }

  PGconn* conn_;
  std::unordered_map<std::string, Prepared, StringHash, std::equal_to<>> cache_;
  std::vector<std::string> stale_;  // statement names to deallocate
  std::uint64_t next_statement_ = 0;
  bool pending_ = false;  // an end_async() answer is outstanding
  bool broken_ = false;   // a pipeline went wrong: dropped when released
  std::atomic<std::uint64_t>* round_trips_ = nullptr;
};

namespace {

// A transaction on one pooled connection. Lives on the thread that opened it. PostgreSQL aborts
// a transaction at its first failed statement, so every later call (and commit) returns that
// first error; the connection goes back to the pool rolled back.
//
// Round trips: the BEGIN (`begin_sql`, when given) is deferred and sent in one pipeline with
// the first statement, so a transaction's snapshot is taken at its first statement; a read-only
// transaction's end is sent without waiting (PgConnection::end_async). A read of one statement
// thus waits for one round trip, not three. When the deferred BEGIN finds the pooled connection
// dead (closed by the server while idle), the statement is retried once on a fresh connection
// from `reacquire`.
class PgTx final : public Tx {
 public:
  using Release = std::function<void(PgConnection*)>;
  using Reacquire = std::function<Result<PgConnection*>()>;
  PgTx(PgConnection* conn, bool writable, const char* begin_sql, Release release,
       Reacquire reacquire = {}, std::function<void(std::uint64_t)> on_commit = {})
      : conn_(conn),
        writable_(writable),
        begin_sql_(begin_sql),
        begin_(begin_sql),
        release_(std::move(release)),
        reacquire_(std::move(reacquire)),
        on_commit_(std::move(on_commit)) {}
  ~PgTx() override {
    if (conn_ != nullptr) {
      end_quietly();
      finish();
    }
  }
  PgTx(const PgTx&) = delete;
  PgTx& operator=(const PgTx&) = delete;

  Result<Rows> query(std::string_view sql, std::span<const SqlValue> params) override {
    RP_TRY(check_usable());
    Rows rows;
    RP_TRY(run(sql, params, &rows));
    return rows;
  }

  // One pipeline: one round trip for all of them (and the deferred BEGIN).
  Result<std::vector<Rows>> query_many(std::span<const Query> queries) override {
    RP_TRY(check_usable());
    std::vector<Rows> rows(queries.size());
    std::vector<PgConnection::Statement> stmts;
    stmts.reserve(queries.size());
    for (std::size_t k = 0; k < queries.size(); ++k)
      stmts.push_back({queries[k].sql, queries[k].params, &rows[k]});
    RP_TRY(run_many(stmts));
    return rows;
  }

  // plan_cache_mode force_generic_plan (or back to auto) for this transaction: a SET LOCAL sent
  // in the pipeline of the next statement (no round trip of its own). A cached prepared
  // statement then reuses its generic plan instead of planning each execution for its values.
  void plan_once(bool on) override { plan_once_ = on; }

  Result<std::int64_t> exec(std::string_view sql, std::span<const SqlValue> params) override {
    RP_TRY(check_usable());
    return run(sql, params);
  }

  Status commit() override {
    if (conn_ == nullptr) {
      if (failed_) return *failed_;
      return make_error(Errc::kInternal, "transaction already finished");
    }
    if (failed_) {
      end_quietly();
      finish();
      return *failed_;
    }
    if (begin_ != nullptr || !writable_) {
      // Nothing ran (no transaction was opened), or a read-only one: nothing to make durable.
      end_quietly();
      finish();
      return {};
    }
    Status s = conn_->simple("COMMIT");
    if (!s.ok()) {
      conn_->rollback_quietly();
    } else if (on_commit_) {
      // At or past the end of this commit's WAL record: a replica that has replayed this far
      // shows the commit.
      Rows rows;
      if (conn_->run("SELECT pg_current_wal_insert_lsn()::text", {}, &rows).ok() &&
          !rows.rows.empty()) {
        if (auto lsn = parse_lsn(rows.rows[0][0])) on_commit_(*lsn);
      }
    }
    finish();
    return s;
  }

  Status fts_put(std::string_view entity, std::int64_t id, std::string_view text,
                 const SqlValue& account_id) override {
    const FtsRow row{id, std::string(text), account_id};
    return fts_put_many(entity, std::span<const FtsRow>(&row, 1), false);
  }

  // Padded statements repeat their last row: the inserts ignore duplicates.
  Status fts_put_many(std::string_view entity, std::span<const FtsRow> rows, bool fresh) override {
    RP_TRY(check_usable());
    return detail::put_terms(entity, rows, fresh, "INSERT INTO", " ON CONFLICT DO NOTHING", *this);
  }

  Status fts_clear(std::string_view entity) override {
    RP_TRY(check_usable());
    RP_TRY(fts_table(entity));  // fts_create throws on a bad name
    return detail::clear_terms(entity, PgDialect().fts_create(entity), *this);
  }

  Status fts_delete(std::string_view entity, std::int64_t id) override {
    RP_TRY(check_usable());
    return detail::remove_terms(entity, std::span<const std::int64_t>(&id, 1), *this);
  }

  Status fts_load(std::string_view entity, std::span<const FtsRow> rows) override {
    RP_TRY(check_usable());
    return detail::load_terms(entity, rows, "INSERT INTO", " ON CONFLICT DO NOTHING", *this);
  }

  Status fts_load_finish(std::string_view entity) override {
    RP_TRY(check_usable());
    return detail::finish_load_terms(entity, "INSERT INTO", " ON CONFLICT DO NOTHING", *this);
  }

  Result<std::optional<std::vector<std::string>>> table_columns(std::string_view table) override {
    RP_TRY(check_usable());
    if (writable_ && !schema_locked_) {
      const SqlValue key[] = {kSchemaLockKey};
      RP_TRY(run("SELECT pg_advisory_xact_lock(?)", key));
      schema_locked_ = true;
    }
    const SqlValue name[] = {std::string(table)};
    Rows rows;
    RP_TRY(
        // From the catalog itself, not information_schema.columns: that view checks privileges
        // on every relation of the database before the schema filter, and a relation another
        // process dropped meanwhile failed the statement with "cache lookup failed for relation
        // N" (seen once: two servers starting on one database).
        run("SELECT a.attname::text FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relname = ? "
            "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            name, &rows));
    if (rows.rows.empty()) return std::optional<std::vector<std::string>>();
    std::vector<std::string> cols;
    for (const auto& r : rows.rows) cols.push_back(std::get<std::string>(r[0]));
    return std::optional<std::vector<std::string>>(std::move(cols));
  }

  // An empty query (or one without indexable words) or a non-positive limit matches nothing.
  Result<std::vector<std::int64_t>> fts_search(std::string_view entity, std::string_view query,
                                               int limit) override {
    return search_keys(entity, detail::query_keys(query), limit);
  }

  Result<std::vector<std::int64_t>> fts_search_words(std::string_view entity, std::string_view text,
                                                     int limit) override {
    return search_keys(entity, detail::word_keys(text), limit);
  }

  // The records holding every key (fts_search, fts_search_words), newest first.
  Result<std::vector<std::int64_t>> search_keys(std::string_view entity,
                                                const std::vector<detail::TermKey>& keys,
                                                int limit) {
    RP_TRY(check_usable());
    RP_ASSIGN(std::string table, fts_table(entity));
    std::vector<std::int64_t> ids;
    if (keys.empty() || limit <= 0) return ids;
    std::vector<SqlValue> params;
    std::string sql = detail::terms_search_sql(entity, keys, limit, "strpos", params);
    Rows rows;
    RP_TRY(run(sql, params, &rows));
    ids.reserve(rows.rows.size());
    for (const auto& row : rows.rows) ids.push_back(std::get<std::int64_t>(row[0]));
    return ids;
  }

 private:
  Status check_usable() const {
    if (failed_) {
      return make_error(failed_->code,
                        "transaction aborted by an earlier error: " + failed_->message,
                        failed_->field);
    }
    if (conn_ == nullptr) return make_error(Errc::kInternal, "transaction already finished");
    return {};
  }

  // Records the first failure: PostgreSQL has aborted the transaction. A statement refused
  // before it reached the server (a bad parameter count, several statements, a NUL in text)
  // leaves the transaction intact, as on SQLite.
  Status remember(Status r) {
    if (!r.ok() && !failed_ && (!conn_->healthy() || conn_->in_failed_transaction())) {
      failed_ = r.error();
    }
    return r;
  }

  // One statement on the connection (with the deferred BEGIN, if still due); a connection found
  // dead by that first exchange is replaced once. Every statement of the transaction must go
  // through here: conn_->run() directly would run a first statement outside the transaction.
  Result<std::int64_t> run(std::string_view sql, std::span<const SqlValue> params,
                           Rows* out = nullptr) {
    PgConnection::Statement one{sql, params, out};
    RP_TRY(run_many(std::span<PgConnection::Statement>(&one, 1)));
    return one.changed;
  }

  // run() of several statements in one pipeline, with plan_once()'s SET LOCAL ahead of them
  // when the transaction's setting is not the one asked for.
  Status run_many(std::span<PgConnection::Statement> stmts) {
    const bool first = begin_ != nullptr;
    auto attempt = [&]() -> Status {
      if (plan_once_ == plan_once_sent_) return conn_->run_many(stmts, &begin_);
      std::vector<PgConnection::Statement> with_set;
      with_set.reserve(stmts.size() + 1);
      with_set.push_back({plan_once_ ? "SET LOCAL plan_cache_mode = force_generic_plan"
                                     : "SET LOCAL plan_cache_mode = auto",
                          {}});
      with_set.insert(with_set.end(), stmts.begin(), stmts.end());
      Status s = conn_->run_many(with_set, &begin_);
      for (std::size_t k = 0; k < stmts.size(); ++k) stmts[k].changed = with_set[k + 1].changed;
      if (s.ok()) plan_once_sent_ = plan_once_;
      return s;
    };
    Status r = attempt();
    if (!r.ok() && first && begin_ == nullptr && !conn_->healthy() && reacquire_) {
      release_(std::exchange(conn_, nullptr));
      auto fresh = reacquire_();
      if (!fresh.ok()) {
        release_ = nullptr;
        failed_ = fresh.error();
        return std::move(fresh).error();
      }
      conn_ = *fresh;
      begin_ = begin_sql_;
      plan_once_sent_ = false;
      r = attempt();
    }
    return remember(std::move(r));
  }

  // Ends the transaction without reporting errors: nothing when it never began, a ROLLBACK sent
  // without waiting for a read-only one, a waited ROLLBACK for a writer.
  void end_quietly() {
    if (begin_ != nullptr) return;
    if (!writable_ && conn_->healthy() && !conn_->idle()) {
      conn_->end_async("ROLLBACK");
    } else {
      conn_->rollback_quietly();
    }
  }

  void finish() {
    PgConnection* conn = std::exchange(conn_, nullptr);
    if (release_) std::exchange(release_, nullptr)(conn);
  }

  PgConnection* conn_;
  bool writable_;
  const char* begin_sql_;  // the BEGIN statement (nullptr: the caller has begun already)
  const char* begin_;      // begin_sql_ until it has been sent
  bool schema_locked_ = false;
  bool plan_once_ = false;       // plan_once(): asked for the statements that follow
  bool plan_once_sent_ = false;  // the transaction's plan_cache_mode is force_generic_plan
  Release release_;
  Reacquire reacquire_;
  std::function<void(std::uint64_t)> on_commit_;
  std::optional<Error> failed_;
};

}  // namespace

std::string PgDialect::column_type(ColumnType t) const {
  switch (t) {
    case ColumnType::kInteger:
      return "BIGINT";
    case ColumnType::kReal:
      return "DOUBLE PRECISION";
    case ColumnType::kText:
      return "TEXT";
  }
  return "TEXT";
}

// The term table and the records' term lists (see text_search.h) with the distribution key
// account_id; COLLATE "C" so that a prefix range compares bytes, as on SQLite, and uses the
// unique (term, id DESC) B-tree "<entity>_terms_pk" (a primary key cannot order a column
// descending), whose first entries of a range are the best matches. The pg_trgm table of
// earlier versions is dropped (RecordService rebuilds the terms).
std::vector<std::string> PgDialect::fts_create(std::string_view entity) const {
  auto table = fts_table(entity);
  if (!table.ok()) throw std::invalid_argument(table.error().message);
  return {"DROP TABLE IF EXISTS " + detail::legacy_fts_table(entity),
          "CREATE TABLE IF NOT EXISTS " + *table +
              " (term TEXT COLLATE \"C\" NOT NULL, id INTEGER NOT NULL, account_id INTEGER, "
              "sig INTEGER NOT NULL)",
          "CREATE UNIQUE INDEX IF NOT EXISTS \"" + std::string(entity) + "_terms_pk\" ON " +
              *table + " (term, id DESC)",
          "CREATE TABLE IF NOT EXISTS " + detail::term_lists_table(entity) +
              " (id INTEGER PRIMARY KEY, account_id INTEGER, terms TEXT NOT NULL)"};
}

std::string PgDialect::fts_condition(std::string_view entity, std::string_view query,
                                     std::vector<SqlValue>& params) const {
  return detail::terms_condition(entity, query, "strpos", params);
}

std::string PgDialect::fts_scoped(std::string_view entity, std::string_view query,
                                  std::string_view ids_sql, std::span<const SqlValue> ids_params,
                                  std::vector<SqlValue>& params) const {
  return detail::terms_scoped(entity, query, ids_sql, ids_params, "strpos", params);
}

std::string PgDialect::fts_key_counts(std::string_view entity, std::string_view query, int cap,
                                      std::vector<SqlValue>& params) const {
  return detail::terms_key_counts(entity, query, cap, params);
}

std::string PgDialect::fts_key_counts_falling(std::string_view entity, std::string_view query,
                                              int cap, std::vector<SqlValue>& params) const {
  return detail::terms_key_counts_falling(entity, query, cap, params);
}

std::string PgDialect::fts_pair_counts(std::string_view entity, std::string_view query, int first,
                                       int second, int cap, std::vector<SqlValue>& params) const {
  return detail::terms_pair_counts(entity, query, first, second, cap, params);
}

std::string PgDialect::fts_page(std::string_view entity, std::string_view query, int driver,
                                const FtsPosition* after, int page,
                                std::vector<SqlValue>& params) const {
  return detail::terms_page(entity, query, driver, after, page, "strpos", false, false, params);
}

std::string PgDialect::fts_window_end(std::string_view entity, std::string_view query, int driver,
                                      const FtsPosition* after, int page,
                                      std::vector<SqlValue>& params) const {
  return detail::terms_window_end(entity, query, driver, after, page, false, params);
}

namespace {
void check_fuzzy_names(std::string_view entity, std::string_view column) {
  if (!detail::valid_identifier(entity) || !detail::valid_identifier(column))
    throw std::invalid_argument("invalid name for a fuzzy title index: '" + std::string(entity) +
                                "." + std::string(column) + "'");
}
}  // namespace

std::vector<std::string> PgDialect::fuzzy_index_create(std::string_view entity,
                                                       std::string_view column) const {
  check_fuzzy_names(entity, column);
  const std::string e(entity), c(column);
  return {"CREATE INDEX IF NOT EXISTS \"ix_" + e + "__" + c + "__trgm\" ON \"" + e +
          "\" USING gin (\"" + c + "\" gin_trgm_ops)"};
}

std::optional<std::string> PgDialect::fuzzy_titles(std::string_view entity, std::string_view column,
                                                   std::string_view query,
                                                   std::vector<SqlValue>& params) const {
  check_fuzzy_names(entity, column);
  const std::string e(entity), c(column);
  params.emplace_back(std::string(query));
  params.emplace_back(std::string(query));
  return "(SELECT \"id\" AS fuzzy_id, similarity(\"" + c + "\", ?) AS fuzzy_score FROM \"" + e +
         "\" WHERE \"" + c + "\" % ?)";
}

// The LISTEN/NOTIFY thread: one connection of its own, a queue of outgoing notifications, the
// callbacks per channel. The thread sleeps in poll() on the connection's socket and a wake-up
// pipe; it sends what is queued, LISTENs to new channels and dispatches what arrives.
class PgStore::Notifier {
 public:
  explicit Notifier(std::string url) : url_(std::move(url)) {
    if (::pipe2(wake_, O_NONBLOCK | O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
    thread_ = std::thread([this] { run(); });
  }
  ~Notifier() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake();
    thread_.join();
    for (int fd : wake_)
      if (fd >= 0) ::close(fd);
  }
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  void send(std::string channel, std::string payload) {
    {
      std::lock_guard lock(mu_);
      if (queue_.size() >= kMaxQueued) {
        queue_.pop_front();
        if (!warned_full_) spdlog::warn("PostgreSQL NOTIFY queue full: oldest events dropped");
        warned_full_ = true;
      }
      queue_.emplace_back(std::move(channel), std::move(payload));
    }
    wake();
  }

  void listen(std::string channel, std::function<void(std::string)> cb) {
    {
      std::lock_guard lock(mu_);
      callbacks_[std::move(channel)].push_back(std::move(cb));
    }
    wake();
  }

  void on_resumed(std::function<void()> cb) {
    std::lock_guard lock(mu_);
    resumed_callbacks_.push_back(std::move(cb));
  }

  void stop_listening() {
    std::lock_guard dispatching(dispatch_mu_);
    std::lock_guard lock(mu_);
    callbacks_.clear();
    resumed_callbacks_.clear();
  }

 private:
  static constexpr std::size_t kMaxQueued = 10000;

  void wake() {
    if (wake_[1] < 0) return;
    char c = 1;
    [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);  // a full pipe already wakes the thread
  }

  bool stopping() {
    std::lock_guard lock(mu_);
    return stop_;
  }

  // Sleeps up to `ms` or until woken (a stop, a new message or channel).
  void sleep_ms(int ms, int socket) {
    pollfd fds[2] = {{wake_[0], POLLIN, 0}, {socket, POLLIN, 0}};
    ::poll(fds, socket >= 0 ? 2 : 1, ms);
    char buf[64];
    while (wake_[0] >= 0 && ::read(wake_[0], buf, sizeof buf) > 0) {
    }
  }

  PGconn* connect() {
    const char* keys[] = {"connect_timeout", "dbname", "client_encoding",
                          "fallback_application_name", nullptr};
    const char* values[] = {"10", url_.c_str(), "UTF8", "rapport-notify", nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, 1);
    if (conn != nullptr && PQstatus(conn) == CONNECTION_OK) {
      PQsetNoticeProcessor(conn, ignore_notice, nullptr);
      return conn;
    }
    spdlog::warn("PostgreSQL LISTEN/NOTIFY connection failed: {}",
                 conn != nullptr ? trim(PQerrorMessage(conn)) : "out of memory");
    PQfinish(conn);
    return nullptr;
  }

  // Runs a statement; false when it failed (the reason is logged).
  static bool exec(PGconn* conn, const char* sql, int nparams = 0,
                   const char* const* params = nullptr) {
    PGresult* res = PQexecParams(conn, sql, nparams, nullptr, params, nullptr, nullptr, 0);
    ExecStatusType status = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    bool ok = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
    if (!ok) spdlog::warn("PostgreSQL {}: {}", sql, pg_error(conn, res).message);
    PQclear(res);
    return ok;
  }

  void dispatch(const char* channel, const char* payload) {
    std::lock_guard dispatching(dispatch_mu_);
    std::vector<std::function<void(std::string)>> cbs;
    {
      std::lock_guard lock(mu_);
      auto it = callbacks_.find(channel);
      if (it == callbacks_.end()) return;
      cbs = it->second;
    }
    for (auto& cb : cbs) {
      try {
        cb(payload);
      } catch (const std::exception& e) {
        spdlog::error("notification handler on {} failed: {}", channel, e.what());
      }
    }
  }

  // The connection was lost and is listening again: tell the resumed callbacks.
  void dispatch_resumed() {
    std::lock_guard dispatching(dispatch_mu_);
    std::vector<std::function<void()>> cbs;
    {
      std::lock_guard lock(mu_);
      cbs = resumed_callbacks_;
    }
    spdlog::info("PostgreSQL LISTEN connection re-established: resynchronising");
    for (auto& cb : cbs) {
      try {
        cb();
      } catch (const std::exception& e) {
        spdlog::error("LISTEN resume handler failed: {}", e.what());
      }
    }
  }

  void run() {
    PGconn* conn = nullptr;
    std::vector<std::string> listening;  // channels LISTENed on `conn`
    bool connected_before = false;       // a connection existed, so one was lost
    bool resume_pending = false;         // re-connected; resumed callbacks not yet run
    int backoff_ms = 100;
    while (!stopping()) {
      if (conn != nullptr && PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        conn = nullptr;
      }
      if (conn == nullptr) {
        listening.clear();
        conn = connect();
        if (conn == nullptr) {
          sleep_ms(backoff_ms, -1);
          backoff_ms = std::min(backoff_ms * 2, 5000);
          continue;
        }
        backoff_ms = 100;
        resume_pending = connected_before;
        connected_before = true;
      }
      // LISTEN to channels added since the last round.
      std::vector<std::string> wanted;
      {
        std::lock_guard lock(mu_);
        for (const auto& [channel, cbs] : callbacks_) wanted.push_back(channel);
      }
      bool healthy = true;
      for (const auto& channel : wanted) {
        if (std::find(listening.begin(), listening.end(), channel) != listening.end()) continue;
        char* quoted = PQescapeIdentifier(conn, channel.data(), channel.size());
        if (quoted == nullptr) break;
        std::string sql = std::string("LISTEN ") + quoted;
        PQfreemem(quoted);
        if (!exec(conn, sql.c_str())) {
          healthy = false;
          break;
        }
        listening.push_back(channel);
      }
      // Send what is queued, in order; on a failure the rest waits for the next round.
      while (healthy) {
        std::pair<std::string, std::string> next;
        {
          std::lock_guard lock(mu_);
          if (queue_.empty()) break;
          next = std::move(queue_.front());
          queue_.pop_front();
        }
        const char* params[] = {next.first.c_str(), next.second.c_str()};
        if (!exec(conn, "SELECT pg_notify($1, $2)", 2, params)) {
          healthy = PQstatus(conn) == CONNECTION_OK;
          if (!healthy) {
            std::lock_guard lock(mu_);
            queue_.push_front(std::move(next));  // retried on the new connection
          }
        }
      }
      if (!healthy) {
        if (PQstatus(conn) == CONNECTION_OK) sleep_ms(1000, -1);  // a LISTEN refused: retry later
        continue;
      }
      // Every channel is listened to again: what was sent while none was is re-read now, and
      // anything sent from here on arrives as a message.
      if (resume_pending) {
        resume_pending = false;
        dispatch_resumed();
      }
      // Receive.
      if (PQconsumeInput(conn) == 0) continue;  // connection lost: reconnect next round
      while (PGnotify* n = PQnotifies(conn)) {
        dispatch(n->relname, n->extra);
        PQfreemem(n);
      }
      bool idle;
      {
        std::lock_guard lock(mu_);
        idle = queue_.empty();
      }
      if (idle) sleep_ms(1000, PQsocket(conn));
    }
    PQfinish(conn);
  }

  std::string url_;
  int wake_[2] = {-1, -1};
  std::mutex dispatch_mu_;  // held while callbacks run; stop_listening() waits for it
  std::mutex mu_;
  bool stop_ = false;                                      // guarded by mu_
  bool warned_full_ = false;                               // guarded by mu_
  std::deque<std::pair<std::string, std::string>> queue_;  // guarded by mu_
  std::map<std::string, std::vector<std::function<void(std::string)>>, std::less<>>
      callbacks_;                                         // guarded by mu_
  std::vector<std::function<void()>> resumed_callbacks_;  // guarded by mu_
  std::thread thread_;
};

PgStore::Notifier& PgStore::notifier() {
  std::lock_guard lock(notifier_mu_);
  if (!notifier_) notifier_ = std::make_unique<Notifier>(url_);
  return *notifier_;
}

Status PgStore::notify(std::string_view channel, std::string_view payload) {
  RP_TRY(Store::notify(channel, payload));
  if (channel.empty() || payload.find('\0') != std::string_view::npos) {
    return make_error(Errc::kBadRequest, "a notification needs a channel and no NUL character");
  }
  notifier().send(std::string(channel), std::string(payload));
  return {};
}

Status PgStore::listen(std::string_view channel, std::function<void(std::string)> on_message) {
  if (channel.empty() || !on_message) {
    return make_error(Errc::kBadRequest, "listen needs a channel and a callback");
  }
  notifier().listen(std::string(channel), std::move(on_message));
  return {};
}

void PgStore::on_listen_resumed(std::function<void()> cb) {
  if (cb) notifier().on_resumed(std::move(cb));
}

Result<int> PgStore::claim_node_id() {
  std::lock_guard lock(node_mu_);
  if (node_id_ >= 0) return node_id_;
  RP_ASSIGN(auto conn, PgConnection::connect(url_, options_));
  std::random_device rd;
  const int start = static_cast<int>(rd() % 256);
  for (int i = 0; i < 256; ++i) {
    const int n = (start + i) % 256;
    const SqlValue key[] = {kNodeLockKey, std::int64_t{n}};
    Rows rows;
    RP_TRY(conn->run("SELECT pg_try_advisory_lock(CAST(? AS INTEGER), CAST(? AS INTEGER))", key,
                     &rows));
    if (rows.rows[0][0] == SqlValue(std::int64_t{1})) {
      node_conn_ = std::move(conn);
      node_id_ = n;
      return n;
    }
  }
  return make_error(Errc::kBusy, "all 256 id node numbers are held by other processes");
}

namespace {
class PgJobLock final : public Store::JobLock {
 public:
  explicit PgJobLock(std::unique_ptr<PgConnection> conn) : conn_(std::move(conn)) {}

 private:
  std::unique_ptr<PgConnection> conn_;  // closing it releases the session lock
};
}  // namespace

Result<std::unique_ptr<Store::JobLock>> PgStore::try_job_lock(std::int32_t key) {
  RP_ASSIGN(auto conn, PgConnection::connect(url_, options_));
  const SqlValue k[] = {kJobLockKey, std::int64_t{key}};
  Rows rows;
  RP_TRY(
      conn->run("SELECT pg_try_advisory_lock(CAST(? AS INTEGER), CAST(? AS INTEGER))", k, &rows));
  if (rows.rows[0][0] != SqlValue(std::int64_t{1})) return std::unique_ptr<JobLock>();
  return std::unique_ptr<JobLock>(std::make_unique<PgJobLock>(std::move(conn)));
}

void PgStore::stop_listening() {
  std::lock_guard lock(notifier_mu_);
  if (notifier_) notifier_->stop_listening();
}

// The connections to one server (the primary or a replica), opened on demand up to `size`.
class PgStore::Pool {
 public:
  Pool(std::string url, const StoreOptions& options, const char* connect_timeout)
      : url_(std::move(url)),
        options_(options),
        size_(std::max(1, options.pool_size)),
        connect_timeout_(connect_timeout) {}

  void adopt(std::unique_ptr<PgConnection> conn) {
    conn->count_round_trips(&round_trips_);
    std::lock_guard lock(mu_);
    free_.push_back(conn.get());
    conns_.push_back(std::move(conn));
  }

  // A free or new connection; waits up to busy_timeout_ms for one when `wait`, else returns
  // nullptr (no error) when all are taken.
  Result<PgConnection*> acquire(bool wait = true) {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(std::max(0, options_.busy_timeout_ms));
    std::unique_lock lock(mu_);
    while (true) {
      if (!free_.empty()) {
        PgConnection* conn = free_.back();
        free_.pop_back();
        if (!conn->pending()) return conn;
        // The previous read's end was sent without waiting: its answer is read now (it has
        // normally arrived long ago). A connection that fails this is closed.
        lock.unlock();
        bool usable = conn->settle().ok() && conn->healthy() && conn->idle();
        lock.lock();
        if (usable) return conn;
        close_locked(conn);
        continue;
      }
      if (static_cast<int>(conns_.size()) + connecting_ < size_) {
        ++connecting_;
        lock.unlock();
        auto conn = PgConnection::connect(url_, options_, connect_timeout_);
        lock.lock();
        --connecting_;
        if (!conn.ok()) {
          cv_.notify_one();  // another waiter may try in our place
          return std::move(conn).error();
        }
        PgConnection* raw = conn->get();
        raw->count_round_trips(&round_trips_);
        conns_.push_back(std::move(conn).value());
        return raw;
      }
      if (!wait) return static_cast<PgConnection*>(nullptr);
      std::cv_status woke;
      {
        ScopedBlocking waiting;  // for another transaction to give its connection back
        woke = cv_.wait_until(lock, deadline);
      }
      if (woke == std::cv_status::timeout && free_.empty() &&
          static_cast<int>(conns_.size()) + connecting_ >= size_) {
        return make_error(Errc::kBusy, "timed out waiting for a PostgreSQL connection");
      }
    }
  }

  // Takes a connection back: kept when healthy and idle, else closed.
  void release(PgConnection* conn) {
    conn->rollback_quietly();
    std::unique_ptr<PgConnection> dropped;  // closed outside the lock
    {
      std::lock_guard lock(mu_);
      if (conn->healthy() && (conn->pending() || conn->idle())) {
        free_.push_back(conn);
      } else {
        auto it = std::find_if(conns_.begin(), conns_.end(),
                               [&](const auto& c) { return c.get() == conn; });
        if (it != conns_.end()) {
          dropped = std::move(*it);
          conns_.erase(it);
        }
      }
    }
    cv_.notify_one();
  }

  // Closes every idle connection (a replica found unusable: a later try starts afresh).
  void drop_idle() {
    std::vector<std::unique_ptr<PgConnection>> dropped;
    std::lock_guard lock(mu_);
    for (PgConnection* conn : free_) {
      auto it = std::find_if(conns_.begin(), conns_.end(),
                             [&](const auto& c) { return c.get() == conn; });
      if (it != conns_.end()) {
        dropped.push_back(std::move(*it));
        conns_.erase(it);
      }
    }
    free_.clear();
  }

  std::uint64_t round_trips() const { return round_trips_.load(std::memory_order_relaxed); }

 private:
  // Forgets a connection taken out of free_ (closing it: it holds no lock of ours).
  void close_locked(PgConnection* conn) {
    auto it =
        std::find_if(conns_.begin(), conns_.end(), [&](const auto& c) { return c.get() == conn; });
    if (it != conns_.end()) conns_.erase(it);
    cv_.notify_one();
  }

  std::string url_;
  StoreOptions options_;
  int size_;
  const char* connect_timeout_;
  std::atomic<std::uint64_t> round_trips_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> conns_;  // guarded by mu_
  std::vector<PgConnection*> free_;                   // guarded by mu_
  int connecting_ = 0;  // connections being opened outside the lock; guarded by mu_
};

struct PgStore::Replica {
  std::string url;
  std::unique_ptr<Pool> pool;
  // steady_clock milliseconds before which the replica is not tried (after a failure).
  std::atomic<std::int64_t> retry_at_ms{0};
  std::atomic<bool> failing{false};  // logged once per outage
};

namespace {
std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

PgStore::PgStore(std::string url, const StoreOptions& options)
    : url_(std::move(url)), options_(options), pool_(std::make_unique<Pool>(url_, options, "10")) {
  for (const auto& r : options.replicas) {
    auto replica = std::make_unique<Replica>();
    replica->url = r;
    // A replica that does not answer quickly is skipped: the primary serves meanwhile.
    replica->pool = std::make_unique<Pool>(r, options, "2");
    replicas_.push_back(std::move(replica));
  }
}

PgStore::~PgStore() = default;

Result<std::unique_ptr<PgStore>> PgStore::open(const std::string& url,
                                               const StoreOptions& options) {
  std::unique_ptr<PgStore> store(new PgStore(url, options));
  RP_ASSIGN(auto first, PgConnection::connect(url, options));
  store->pool_->adopt(std::move(first));

  // pg_trgm backs full-text search; enabled once, under the migration lock so that two
  // processes opening a fresh database at once do not both try to create it.
  Status trgm = [&]() -> Status {
    RP_ASSIGN(auto tx, store->write());
    const SqlValue key[] = {kSchemaLockKey};
    RP_TRY(tx->query("SELECT pg_advisory_xact_lock(?)", key));
    RP_TRY(tx->exec("CREATE EXTENSION IF NOT EXISTS pg_trgm"));
    return tx->commit();
  }();
  if (!trgm.ok()) {
    Error e = std::move(trgm).error();
    e.message = "cannot enable the pg_trgm extension: " + e.message;
    return e;
  }
  return store;
}

Result<std::unique_ptr<Tx>> PgStore::begin(const char* begin_sql, bool writable) {
  // The BEGIN itself is deferred to the transaction's first statement (PgTx).
  std::function<void(std::uint64_t)> on_commit;
  if (writable && !replicas_.empty()) on_commit = [this](std::uint64_t lsn) { committed(lsn); };
  RP_ASSIGN(PgConnection * conn, pool_->acquire());
  return std::unique_ptr<Tx>(std::make_unique<PgTx>(
      conn, writable, begin_sql, [this](PgConnection* c) { pool_->release(c); },
      [this] { return pool_->acquire(); }, on_commit));
}

std::uint64_t PgStore::round_trips() const { return pool_->round_trips(); }

void PgStore::committed(std::uint64_t position) {
  if (ReadRouting* routing = current_read_routing()) {
    routing->committed = std::max(routing->committed, position);
  }
  // Two marks: lag_floor_ was committed at least kMaxReplicaLagMs ago, so a replica that has
  // not replayed it lags by more than that.
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(lag_mu_);
  if (now - lag_mark_at_ >= std::chrono::milliseconds(kMaxReplicaLagMs)) {
    lag_floor_ = lag_mark_;
    lag_mark_ = position;
    lag_mark_at_ = now;
  }
}

std::uint64_t PgStore::lag_floor() {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(lag_mu_);
  // The latest mark has aged enough to be a floor too.
  if (now - lag_mark_at_ >= std::chrono::milliseconds(kMaxReplicaLagMs)) return lag_mark_;
  return lag_floor_;
}

std::unique_ptr<Tx> PgStore::replica_read(std::uint64_t after) {
  const std::uint64_t floor = std::max(after, lag_floor());
  const unsigned n = static_cast<unsigned>(replicas_.size());
  const unsigned first = next_replica_.fetch_add(1, std::memory_order_relaxed);
  for (unsigned i = 0; i < n; ++i) {
    Replica& r = *replicas_[(first + i) % n];
    if (r.retry_at_ms.load(std::memory_order_relaxed) > steady_ms()) continue;
    auto fail = [&](const std::string& why) {
      r.retry_at_ms.store(steady_ms() + kReplicaRetryMs, std::memory_order_relaxed);
      r.pool->drop_idle();
      if (!r.failing.exchange(true)) {
        spdlog::warn("read replica {} not used for {} ms: {}", r.url, kReplicaRetryMs, why);
      }
    };
    auto conn = r.pool->acquire(/*wait=*/false);
    if (!conn.ok()) {
      fail(conn.error().message);
      continue;
    }
    if (*conn == nullptr) continue;  // all its connections busy
    PgConnection* c = *conn;
    // The replay position first, then the snapshot: the snapshot shows at least that position.
    Rows rows;
    auto lsn_read = c->run("SELECT pg_last_wal_replay_lsn()::text", {}, &rows);
    std::optional<std::uint64_t> replayed;
    if (lsn_read.ok() && !rows.rows.empty()) replayed = parse_lsn(rows.rows[0][0]);
    if (!lsn_read.ok() || !replayed) {
      std::string why =
          lsn_read.ok() ? "not a streaming replica (not in recovery)" : lsn_read.error().message;
      r.pool->release(c);
      fail(why);
      continue;
    }
    if (*replayed < floor) {  // behind this caller's writes or lagging: try another
      r.pool->release(c);
      continue;
    }
    if (r.failing.exchange(false)) spdlog::info("read replica {} in use again", r.url);
    Pool* pool = r.pool.get();
    Replica* replica = &r;
    // The BEGIN is deferred to the first statement, as on the primary: its snapshot, taken
    // after the replay position was read, shows at least that position.
    return std::make_unique<PgTx>(c, false, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                                  [pool, replica](PgConnection* used) {
                                    // A connection lost during the transaction takes the replica
                                    // out of rotation for a while.
                                    if (!used->healthy()) {
                                      replica->retry_at_ms.store(steady_ms() + kReplicaRetryMs,
                                                                 std::memory_order_relaxed);
                                      pool->drop_idle();
                                    }
                                    pool->release(used);
                                  });
  }
  return nullptr;
}

Result<std::unique_ptr<Tx>> PgStore::write() {
  // Reads after this write see it: they no longer share the snapshot taken before. (The shared
  // transaction ends now unless a read handle still holds it.)
  if (ReadRouting* routing = current_read_routing()) {
    if (routing->no_wait) {
      routing->would_wait = true;
      return make_error(Errc::kBusy, "a write waits for the network: not on this thread");
    }
    routing->shared_read.reset();
  }
  return begin("BEGIN", true);
}

Result<std::unique_ptr<Tx>> PgStore::read() {
  constexpr const char* kBeginRead = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
  ReadRouting* routing = current_read_routing();
  if (routing != nullptr && routing->no_wait) {
    // Every statement is a round trip; an open shared transaction is not reused either (its
    // connection is only ever used by one thread at a time).
    routing->would_wait = true;
    return make_error(Errc::kBusy, "a read waits for the network: not on this thread");
  }
  if (routing != nullptr && routing->replica_allowed && !replicas_.empty()) {
    if (auto tx = replica_read(routing->after)) {
      ++routing->replica_reads;
      routing->shared_read.reset();  // the primary's connection is not needed meanwhile
      return tx;
    }
  }
  // The snapshot of a REPEATABLE READ transaction is taken at its first statement, which
  // carries the deferred BEGIN with it (one round trip for both).
  if (routing != nullptr && routing->share_reads) {
    if (!routing->shared_read) {
      RP_ASSIGN(auto tx, begin(kBeginRead, false));
      routing->shared_read = std::shared_ptr<Tx>(std::move(tx));
    }
    return std::unique_ptr<Tx>(std::make_unique<SharedReadTx>(routing->shared_read, routing));
  }
  return begin(kBeginRead, false);
}

Status PgStore::migrate(std::span<const Migration> migrations) {
  return detail::apply_migrations(*this, migrations, [](Tx& tx) -> Status {
    const SqlValue key[] = {kSchemaLockKey};
    RP_TRY(tx.query("SELECT pg_advisory_xact_lock(?)", key));
    return {};
  });
}

Result<int> PgStore::schema_version() {
  RP_ASSIGN(auto tx, read());
  RP_ASSIGN(auto cols, tx->table_columns("_migrations"));
  if (!cols) return 0;
  RP_ASSIGN(Rows max, tx->query("SELECT coalesce(max(version), 0) FROM _migrations"));
  return static_cast<int>(std::get<std::int64_t>(max.rows[0][0]));
}

Status PgStore::backup_to(const std::string& /*path*/) {
  return make_error(Errc::kBadRequest, "use pg_dump for PostgreSQL backups");
}

Result<std::string> PgStore::integrity_check() {
  RP_ASSIGN(auto tx, read());
  RP_TRY(tx->query("SELECT 1"));
  return std::string("ok");
}

}  // namespace rapport::storage::postgres
