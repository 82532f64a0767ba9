// The Store interface: the only way the layers above reach a database. Backends live in
// storage/sqlite/ (default) and storage/postgres/ (later); nothing above storage/ names either.
//
// SQL text passed in uses `?` placeholders and the portable subset both backends speak
// (CREATE TABLE/INDEX, SELECT/INSERT/UPDATE/DELETE, ANSI joins). Anything dialect-specific
// (column types, full-text search, upsert) goes through Dialect or a Tx method.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/error.h"
#include "storage/term_build.h"

namespace rapport::storage {

// One SQL value. Text also carries JSON documents; blobs are not used.
using SqlValue = std::variant<std::monostate, std::int64_t, double, std::string>;

inline bool is_null(const SqlValue& v) { return v.index() == 0; }

// A value of a row that Tx::each_row hands over: text points into the backend's row, valid only
// during the call that receives it.
using SqlView = std::variant<std::monostate, std::int64_t, double, std::string_view>;
// Called with each row of Tx::each_row in turn; returning false stops the statement there.
using RowVisitor = std::function<bool(std::span<const SqlView> row)>;
inline SqlView view_of(const SqlValue& v) {
  return std::visit(
      [](const auto& x) -> SqlView {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::string>)
          return std::string_view(x);
        else
          return x;
      },
      v);
}
inline SqlValue value_of(const SqlView& v) {
  return std::visit(
      [](const auto& x) -> SqlValue {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::string_view>)
          return std::string(x);
        else
          return x;
      },
      v);
}

struct Rows {
  std::vector<std::string> columns;
  std::vector<std::vector<SqlValue>> rows;
};

enum class ColumnType { kInteger, kReal, kText };

// A transaction. Rolled back on destruction unless commit() succeeded.
// Lives on the thread that opened it; never shared between threads.
class Tx {
 public:
  virtual ~Tx() = default;
  virtual Result<Rows> query(std::string_view sql, std::span<const SqlValue> params = {}) = 0;
  // query() without copying the rows out: `visit` sees each row as the backend holds it (for
  // writing a page of JSON straight from the columns). The default runs query() and shows its
  // rows; SQLite hands over its own column buffers.
  virtual Status each_row(std::string_view sql, std::span<const SqlValue> params,
                          const RowVisitor& visit) {
    RP_ASSIGN(Rows rows, query(sql, params));
    std::vector<SqlView> view;
    for (const auto& r : rows.rows) {
      view.clear();
      for (const auto& v : r) view.push_back(view_of(v));
      if (!visit(view)) break;
    }
    return {};
  }
  // Several queries none of which needs another's answer, answered in order. The default runs
  // them in turn; PostgreSQL sends them in one pipeline (one round trip for all). Fails with
  // the first error; the queries after the failed one may not have run (on PostgreSQL the
  // transaction is then aborted, as by a failed query()).
  struct Query {
    std::string_view sql;
    std::span<const SqlValue> params;
  };
  virtual Result<std::vector<Rows>> query_many(std::span<const Query> queries) {
    std::vector<Rows> out;
    out.reserve(queries.size());
    for (const Query& q : queries) {
      RP_ASSIGN(Rows rows, query(q.sql, q.params));
      out.push_back(std::move(rows));
    }
    return out;
  }
  // plan_once(true): until plan_once(false), the statements run have plans whose shape does not
  // depend on their parameters' values (search's index windows, read in index order up to a
  // LIMIT): a backend that plans a prepared statement anew for each execution's values
  // (PostgreSQL's custom plans: planning search's statements costs more than running them)
  // plans each one once per connection instead. No-op by default (SQLite prepares once).
  virtual void plan_once(bool /*on*/) {}
  // Runs a statement; returns the number of rows changed.
  virtual Result<std::int64_t> exec(std::string_view sql,
                                    std::span<const SqlValue> params = {}) = 0;
  virtual Status commit() = 0;
  // For caches of read answers (RecordService's search answers): a number taken before this
  // read transaction's snapshot, equal for two read transactions only when no write was
  // committed to the database between the two numbers' moments, by this process or another.
  // A cached answer computed in a transaction with stamp S may be served to one with stamp S.
  // nullopt when the backend cannot tell (PostgreSQL: other servers write to the same
  // database; a write transaction; a read transaction whose snapshot began after a change
  // the stamp did not yet count), so that nothing is cached or served then.
  virtual std::optional<std::uint64_t> change_stamp() const { return std::nullopt; }

  // Full-text index per entity (created by Dialect::fts_create): a term table holding the words
  // of `text` (the concatenation of the record's searchable fields), their digit suffixes and
  // the CJK characters and bigrams, so that a query matches word prefixes and Chinese
  // substrings (see storage/text_search.h). `account_id`: the record's distribution key
  // (NULL when it has none), stored beside each term. fts_put replaces the record's terms.
  virtual Status fts_put(std::string_view entity, std::int64_t id, std::string_view text,
                         const SqlValue& account_id = {}) = 0;
  virtual Status fts_delete(std::string_view entity, std::int64_t id) = 0;
  // Removes every record's entry (before a rebuild).
  virtual Status fts_clear(std::string_view entity) = 0;
  // Called by the shared term writes (detail::put_terms, build_term_rows) with each record's
  // term list ("\nterm\nterm\n") before its terms are written in this transaction, for a
  // backend that keeps a summary of the index in memory (SQLite's term codes,
  // storage/sqlite/term_codes.h). The default does nothing.
  virtual void fts_noted(std::string_view /*entity*/, std::int64_t /*id*/,
                         std::string_view /*list*/) {}
  // fts_put of many records in a few statements (bulk inserts and imports). `fresh`: none of
  // the ids has an entry yet (records just created), so nothing is looked up to be replaced.
  // When an id appears twice the last text wins. The default puts them one by one.
  // A record's index entries as put_terms writes them, worked out from its text: its terms
  // (sorted, distinct), its term list ("\nterm\nterm\n") and its signature. See fts_terms_of.
  struct FtsTerms {
    std::vector<std::string> terms;
    std::string list;
    std::int64_t sig = 0;
  };
  struct FtsRow {
    std::int64_t id;
    std::string text;
    SqlValue account_id{};
    // fts_terms_of(text), when the caller worked it out before the write (a create, before it
    // waits for the writer): the writer, which puts the terms at COMMIT, then only binds and
    // steps. Must be the terms of `text`; null: worked out from `text` at the write.
    std::shared_ptr<const FtsTerms> terms{};
  };
  // Defined here, not in a .cc: Tx keeps no out-of-line virtual function, so its type
  // information is emitted wherever it is used (the fuzz targets link no storage backend).
  virtual Status fts_put_many(std::string_view entity, std::span<const FtsRow> rows,
                              bool /*fresh*/) {
    for (const auto& r : rows) RP_TRY(fts_put(entity, r.id, r.text, r.account_id));
    return {};
  }
  // Rebuilding an index from scratch (after fts_clear): fts_load takes new records' entries
  // as fts_put_many(fresh) does, but may hold their terms back in a staging table, unordered
  // and unindexed, until fts_load_finish (in a later transaction) moves them into the index
  // in key order in one statement. Searches do not see the held-back terms until then. Much
  // cheaper than fts_put_many for a whole table: each batch of terms spans the whole key
  // space, so indexing it batch by batch rewrites most of the index's pages every batch.
  // The defaults index at once.
  virtual Status fts_load(std::string_view entity, std::span<const FtsRow> rows) {
    return fts_put_many(entity, rows, /*fresh=*/true);
  }
  virtual Status fts_load_finish(std::string_view /*entity*/) { return {}; }
  // New records (as fts_put_many(fresh)) whose term lists are written now and whose term rows
  // build_term_rows() inserts later (storage/term_build.h): until then the term index does not
  // find them. The default writes the term rows at once.
  virtual Status fts_put_lists(std::string_view entity, std::span<const FtsRow> rows) {
    return fts_put_many(entity, rows, /*fresh=*/true);
  }
  // Column names of `table`, or nullopt when no such table exists (without failing the
  // transaction, which matters on PostgreSQL where an error aborts it).
  virtual Result<std::optional<std::vector<std::string>>> table_columns(std::string_view table) = 0;
  // Ids of up to `limit` records that match every whitespace-separated term of `query` (as
  // Dialect::fts_condition), best match first: the one whose matching term sorts first (an
  // exact word before longer words it begins), then the newest.
  virtual Result<std::vector<std::int64_t>> fts_search(std::string_view entity,
                                                       std::string_view query, int limit) = 0;
  // Ids of up to `limit` records indexed under every term of `text` exactly, as the index holds
  // a body's terms (its whole words, its CJK bigrams and last characters; not as prefixes),
  // newest first: the candidates for records whose searchable text holds `text`'s words
  // (RecordService::ids_by_title compares their titles). None when `text` has no indexable word.
  virtual Result<std::vector<std::int64_t>> fts_search_words(std::string_view entity,
                                                             std::string_view text, int limit) = 0;
};

// Dialect-specific SQL fragments.
// The rows of an fts_put_many with each id once (its last text), in first-seen order.
inline std::vector<const Tx::FtsRow*> last_per_id(std::span<const Tx::FtsRow> rows) {
  std::unordered_map<std::int64_t, std::size_t> at;
  std::vector<const Tx::FtsRow*> out;
  out.reserve(rows.size());
  for (const auto& r : rows) {
    auto [it, added] = at.emplace(r.id, out.size());
    if (added)
      out.push_back(&r);
    else
      out[it->second] = &r;
  }
  return out;
}
// Rows in the next multi-row statement of `remaining`: `most`, and below it the largest power of
// two, so that few distinct statement texts reach the prepared-statement caches.
inline std::size_t rows_in_next_statement(std::size_t remaining, std::size_t most) {
  if (remaining >= most) return most;
  std::size_t n = 1;
  while (n * 2 <= remaining) n *= 2;
  return n;
}

// A position in a full-text index: the last entry a page of Dialect::fts_page returned.
struct FtsPosition {
  std::string term;
  std::int64_t id = 0;
};

class Dialect {
 public:
  virtual ~Dialect() = default;
  virtual std::string column_type(ColumnType t) const = 0;
  // Statements that create the full-text table for an entity.
  virtual std::vector<std::string> fts_create(std::string_view entity) const = 0;
  // Case-insensitive LIKE operator ("LIKE" on SQLite where LIKE is already ASCII case-insensitive).
  virtual std::string ilike() const = 0;
  // The verb of a multi-row INSERT whose failure abandons the whole transaction (bulk imports):
  // on SQLite "INSERT OR FAIL", which spares each statement its statement journal (the rows a
  // failed statement wrote before the error stay until the transaction is rolled back, which
  // the caller then must do); plain INSERT elsewhere.
  virtual std::string bulk_insert() const { return "INSERT"; }
  // The key of a derived list index, so that the list statements' orders (every key
  // `ASC NULLS FIRST`, or every key `DESC NULLS LAST`, the id last) read it in order, forwards
  // or backwards, without a sort. SQLite sorts NULLs first and ends every index entry with the
  // rowid (the id): the quoted columns as they are. PostgreSQL sorts NULLs last unless told and
  // keeps no id in an index entry: each column NULLS FIRST (see index_key_ends_with_id).
  virtual std::string index_key_column(const std::string& quoted) const { return quoted; }
  // Whether index entries end with the record's id already (SQLite's rowid); when not, the
  // derived list indexes add "id" as their last column.
  virtual bool index_key_ends_with_id() const { return true; }
  // Whether the database plans without statistics of the data (SQLite here: no ANALYZE), so
  // that a statement must say which index drives it: such a planner keeps the written order of
  // a CROSS JOIN's tables and uses no index for a term on `+"column"`. Lists then choose by the
  // size of the caller's scope (RecordService::list_statement). PostgreSQL plans with its own
  // statistics and gets the plain statement.
  virtual bool plans_by_written_order() const { return false; }
  // A boolean SQL expression on the entity table's "id" column that holds when the record
  // matches every whitespace-separated term of `query`: each word of a term is the prefix of a
  // word of the record's text, each CJK character or bigram of it occurs there. Appends its
  // parameters. A query without such words (empty, punctuation) matches nothing. Unbounded:
  // its cost grows with the records that match (lists and reports over every match).
  virtual std::string fts_condition(std::string_view entity, std::string_view query,
                                    std::vector<SqlValue>& params) const = 0;
  // For search as you type (query words, CJK bigrams): a statement giving one row with, per
  // key, how many index entries it has, counted up to `cap` — the cheapest key to drive
  // fts_page, 0 when nothing can match, and whether a window of fts_page read all of a key.
  // Empty when the query has no keys. Appends its parameters.
  virtual std::string fts_key_counts(std::string_view entity, std::string_view query, int cap,
                                     std::vector<SqlValue>& params) const = 0;
  // The same row, the keys counted from the last to the first, each only up to the fewest
  // entries counted before it (a column is then min(its key's entries, the columns after it,
  // cap)): the rarest key is the last one (from the end) whose count is below those after it,
  // and no key with more entries than that one is read past it. For a query whose keys are all
  // exact terms (fts_keys_exact), where any key with the fewest entries drives to the same
  // answer (see fts_rarest_key). This default counts every key up to `cap` (fts_key_counts),
  // which the same rule reads right too.
  virtual std::string fts_key_counts_falling(std::string_view entity, std::string_view query,
                                             int cap, std::vector<SqlValue>& params) const {
    return fts_key_counts(entity, query, cap, params);
  }
  // For search as you type, two keys of `query` (positions of fts_key_counts' columns) whose
  // entries are compared: a statement giving one row of two counts, key `first` counted up to
  // `cap` (a), then key `second` only up to a + 1 (b): b < a when `second` has fewer entries
  // (both below `cap`), else `first` has at most as many, min(a, b) being the fewer one's count
  // up to `cap` either way; no key is read past one entry more than the other has. Empty when
  // the dialect has no such statement (the default; then fts_key_counts) or the positions are
  // not two keys of the query. Appends its parameters.
  virtual std::string fts_pair_counts(std::string_view entity, std::string_view query, int first,
                                      int second, int cap, std::vector<SqlValue>& params) const {
    (void)entity, (void)query, (void)first, (void)second, (void)cap, (void)params;
    return {};
  }
  // For search as you type: one page of the index entries of one key of `query`, `driver` (the
  // position of a column of fts_key_counts; -1: the longest key), in index order (term, then newest
  // id first) after `after` (none: from the start), at most `page` entries. A subquery for FROM
  // with columns fts_term, fts_id and fts_match (1 when the record has every other key, else
  // 0); ORDER BY fts_term, fts_id DESC gives the index order, in which a record's first entry
  // is its best match (the exact word before longer ones it begins, then newer records). Each
  // page costs `page` index entries (plus one term-list read per entry for a query with
  // several keys), however many or few of them match. Empty when nothing can match. Appends
  // its parameters.
  virtual std::string fts_page(std::string_view entity, std::string_view query, int driver,
                               const FtsPosition* after, int page,
                               std::vector<SqlValue>& params) const = 0;
  // Where the window fts_page(entity, query, driver, after, page) ends: a statement giving one
  // row (fts_term, fts_id), the last of those `page` entries, from which the next window goes
  // on; no row when fewer than `page` entries are left (that window read the key to its end).
  // Costs `page` index entries, no term list and no record. Empty when nothing can match.
  virtual std::string fts_window_end(std::string_view entity, std::string_view query, int driver,
                                     const FtsPosition* after, int page,
                                     std::vector<SqlValue>& params) const = 0;
  // "Did you mean": records whose title is similar to a misspelt query (PostgreSQL's pg_trgm;
  // SQLite has none). fuzzy_index_create: the statements creating the index that serves
  // fuzzy_titles on the text column `column` of `entity` (none where not supported).
  // fuzzy_titles: a subquery for FROM with columns fuzzy_id (a record of `entity` whose
  // `column` is similar to `query`, deleted ones too) and fuzzy_score (in (0, 1], higher is more
  // similar), its cost bounded by the records sharing enough trigrams with `query`; appends its
  // parameters. nullopt when the backend does not support fuzzy matching (SQLite).
  virtual std::vector<std::string> fuzzy_index_create(std::string_view /*entity*/,
                                                      std::string_view /*column*/) const {
    return {};
  }
  virtual std::optional<std::string> fuzzy_titles(std::string_view /*entity*/,
                                                  std::string_view /*column*/,
                                                  std::string_view /*query*/,
                                                  std::vector<SqlValue>& /*params*/) const {
    return std::nullopt;
  }
  // For search as you type by a caller who sees few records: a subquery for FROM with the
  // columns of fts_page (fts_match always 1) whose rows are the records of `ids_sql` (a SELECT
  // of ids, with its parameters `ids_params`) that have every key of `query`, each with its
  // best entry of the longest key (its first such term), read from their term lists instead of
  // the index: its cost grows with those records, not with the matches the caller may not
  // see. Unordered. Empty when the backend has no such plan or nothing can match.
  virtual std::string fts_scoped(std::string_view /*entity*/, std::string_view /*query*/,
                                 std::string_view /*ids_sql*/,
                                 std::span<const SqlValue> /*ids_params*/,
                                 std::vector<SqlValue>& /*params*/) const {
    return {};
  }
};

struct Migration {
  int version;
  std::string name;
  std::vector<std::string> statements;  // portable SQL, run in one transaction
};

class Store {
 public:
  virtual ~Store() = default;
  // The single writer transaction (serialised inside the process; waits for other processes up
  // to the busy timeout). Commit is durable when it returns; a failed commit left nothing of the
  // transaction behind. (SQLite batches overlapping write transactions into one COMMIT: each
  // runs in a savepoint of the shared transaction and its commit() returns once that COMMIT
  // has succeeded, so callers see the same contract.)
  virtual Result<std::unique_ptr<Tx>> write() = 0;
  // One durable write transaction that runs `work` and commits it, as write() + work +
  // commit(). Returns `work`'s error (nothing of it written) or the commit's result. The SQLite
  // store may run `work` on another thread: whichever thread holds the writer connection runs
  // the queued work items back to back in one savepoint of the shared transaction, and
  // commits them together (flat combining), so a group of small writes costs no hand-over of
  // the connection between threads per member. `work` must not rely on thread-local state and
  // must not call commit(); it runs before write_grouped returns. It may run more than once:
  // when a later item of its run fails, the run is rolled back and the items before the
  // failing one run again, so `work` writes only through its Tx and sets nothing outside it
  // that a second run would not set again.
  virtual Status write_grouped(const std::function<Status(Tx&)>& work) {
    RP_ASSIGN(auto tx, write());
    RP_TRY(work(*tx));
    return tx->commit();
  }
  // write_grouped() that does not wait: `done` is called once with what write_grouped would
  // have returned, after the COMMIT that made `work` durable (or with `work`'s own error,
  // nothing of it written). It may be called before this returns, on this thread, or later on
  // another (SQLite: the store's completion thread, which calls the `done`s of ended batches in
  // order, while the next batch runs); `work` may run on another thread, as for
  // write_grouped. `done` must not throw and must not wait for another write (the `done`s
  // after it wait for it). This default runs write_grouped
  // here and calls `done` before returning (PostgreSQL).
  virtual void write_grouped_async(std::function<Status(Tx&)> work,
                                   std::function<void(Status)> done) {
    done(write_grouped(work));
  }
  // A read-only snapshot transaction from the reader pool.
  virtual Result<std::unique_ptr<Tx>> read() = 0;
  // Applies migrations whose version is above the stored one, each in its own transaction.
  virtual Status migrate(std::span<const Migration> migrations) = 0;
  virtual Result<int> schema_version() = 0;
  // Consistent online copy of the whole database to `path`, safe while serving.
  virtual Status backup_to(const std::string& path) = 0;
  // The backend's own consistency check: "ok" when the database is sound, else its findings.
  virtual Result<std::string> integrity_check() {
    return make_error(Errc::kStorage, "integrity check not supported by this backend");
  }
  virtual const Dialect& dialect() const = 0;
  virtual std::string_view backend_name() const = 0;

  // Messages between the processes that serve one database (several app servers on one
  // PostgreSQL): committed record events fan out to every server's WebSocket clients.
  // notify() queues `payload` for every listener on `channel`, in this process too, and returns
  // at once (delivery is asynchronous and best effort; call it after the change has committed).
  // kBadRequest when the payload is longer than kMaxNotifyPayload bytes.
  // listen() calls `on_message` with each payload sent on `channel` by any process, on a
  // background thread of the store, in the order each sender sent them; a dropped connection is
  // re-established (messages sent meanwhile are lost). on_listen_resumed() adds a callback run
  // on that same thread each time the listening connection has been re-established after a loss
  // and every channel is listened to again, before any later message is passed on: whatever the
  // lost messages would have announced is to be re-read then. stop_listening() removes every
  // callback: none is running or will run once it returns.
  // SQLite: one server per database file, so these are no-ops (no message is ever delivered).
  static constexpr std::size_t kMaxNotifyPayload = 7999;  // PostgreSQL: below 8000 bytes
  virtual Status notify(std::string_view /*channel*/, std::string_view payload) {
    if (payload.size() > kMaxNotifyPayload) {
      return make_error(Errc::kBadRequest, "notification payload longer than " +
                                               std::to_string(kMaxNotifyPayload) + " bytes");
    }
    return {};
  }
  virtual Status listen(std::string_view /*channel*/,
                        std::function<void(std::string)> /*on_message*/) {
    return {};
  }
  virtual void on_listen_resumed(std::function<void()> /*cb*/) {}
  virtual void stop_listening() {}
  // Whether notify() can reach another process (false on SQLite): a caller with nothing else to
  // send its message to may skip building it.
  virtual bool notifies_others() const { return false; }

  // A number in [0, 256) for this process's generated ids (IdGenerator::set_node), held by no
  // other live process on this database. PostgreSQL: a session advisory lock that a connection
  // of its own holds until the store closes (kBusy when all 256 are taken). SQLite: a random
  // number (one server per database file; other processes are short command-line tools).
  virtual Result<int> claim_node_id();

  // A lock named by `key` across every process on this database, for background jobs that one
  // server at a time should run (the duplicate scan). Held until the returned handle is
  // destroyed; nullptr (no error) when another holder has it. PostgreSQL: a session advisory
  // lock (pg_try_advisory_lock) on a connection of its own, released when the handle closes it
  // or the process dies. SQLite (one server per database file): a lock within this process.
  class JobLock {
   public:
    virtual ~JobLock() = default;
  };
  virtual Result<std::unique_ptr<JobLock>> try_job_lock(std::int32_t key);

  // True when read() may be served by read replicas (PostgreSQL --database-replica); commit
  // positions are then recorded in the thread's ReadRouting (see below).
  virtual bool has_replicas() const { return false; }

  // Memory the backend keeps in this process for its caches: what it holds now and the most
  // its settings let it hold (both 0 when it keeps none here, as PostgreSQL, whose caches live in
  // the database server). SQLite: its whole heap (sqlite::heap_bytes(): page caches, statements)
  // against the page caches' bound (the writer's plus every reader's cache_size).
  // `mapped`: the bytes of the database file the readers may memory-map, over all of them
  // (SQLite's mmap_size per reader; StoreOptions::reader_map_mib), not counted in `used`.
  struct CacheMemory {
    std::int64_t used = 0;
    std::int64_t bound = 0;
    std::int64_t mapped = 0;
  };
  virtual CacheMemory cache_memory() const { return {}; }

  // The backend's durable write path since it opened (GET /api/v1/admin/writes), all zero when
  // it keeps no such figures (PostgreSQL). SQLite: its group commits (`batches`, each one
  // COMMIT, and the writes they made durable), the time the writer connection ran grouped
  // writes and COMMITs (`busy_ns`, and the CPU time of its threads meanwhile `busy_cpu_ns`; of
  // it `commit_ns` in COMMIT, which holds the WAL sync when that is not deferred), the writer's WAL
  // syncs (fdatasync) and their time, and the time a batch's holder waited for the previous batch's
  // deferred sync before its own COMMIT.
  struct WriteStats {
    std::int64_t batches = 0;
    std::int64_t committed = 0;
    std::int64_t busy_ns = 0;
    std::int64_t busy_cpu_ns = 0;  // the CPU time of busy_ns (the thread's, not the clock's)
    std::int64_t commit_ns = 0;
    std::int64_t wal_syncs = 0;
    std::int64_t wal_sync_ns = 0;
    std::int64_t sync_wait_ns = 0;
  };
  virtual WriteStats write_stats() const { return {}; }

  // A bulk load (an import) writes large transactions back to back while the returned handle
  // lives. The backend may then defer upkeep that it would otherwise do after each of them, and
  // do it once when the last handle goes. Each commit() stays durable when it returns; only
  // when the backend tidies up changes. nullptr when it has nothing to defer (PostgreSQL).
  // SQLite: the writer checkpoints the WAL at StoreOptions::bulk_wal_max_frames instead of
  // wal_max_frames, the background checkpointer is not woken, and the handle's end checkpoints
  // the whole WAL and truncates its file. A handle is destroyed before the store.
  class BulkWrites {
   public:
    virtual ~BulkWrites() = default;
  };
  virtual std::unique_ptr<BulkWrites> bulk_writes() { return nullptr; }

  // The entities with term rows pending in this process (storage/term_build.h); the backend
  // notes in it every write that replaces or removes a record's terms.
  PendingTerms& pending_terms() { return pending_terms_; }

 private:
  PendingTerms pending_terms_;
};

// Routing of Store::read() to read replicas for the current thread (one request on a worker
// thread). Backends without replicas ignore it. A position is a PostgreSQL WAL location (LSN)
// as a number; 0 means none.
struct ReadRouting {
  bool replica_allowed = false;  // in: read() may use a replica
  std::uint64_t after = 0;       // in: …one that has replayed at least this commit position
  std::uint64_t committed = 0;   // out: highest commit position of writes on this thread
  int replica_reads = 0;         // out: read transactions a replica served
  // in: read() transactions on the primary share one transaction (one snapshot) while this
  // routing is installed, until the thread begins a write() or a shared statement fails.
  // PostgreSQL: a GET's authentication and its reads then send one BEGIN and one end.
  bool share_reads = false;
  std::shared_ptr<Tx> shared_read;  // the backend's: the open shared transaction, if any
  // in: the thread must not wait (an I/O thread trying a quick request in place): read() answers
  // kBusy at once instead of waiting for a free connection or for the network (PostgreSQL: every
  // read), and write() always does; either sets `would_wait`, so the caller runs the request
  // again where it may wait, whatever the error became on its way up.
  bool no_wait = false;
  bool would_wait = false;  // out
};
// The routing installed on this thread, or nullptr.
ReadRouting* current_read_routing();
// Installs `routing` for the current thread for its lifetime (restoring the previous one).
class ScopedReadRouting {
 public:
  explicit ScopedReadRouting(ReadRouting& routing);
  ~ScopedReadRouting();
  ScopedReadRouting(const ScopedReadRouting&) = delete;
  ScopedReadRouting& operator=(const ScopedReadRouting&) = delete;

 private:
  ReadRouting& routing_;
  ReadRouting* previous_;
};

struct StoreOptions {
  // Reader connections in the pool. `serve` opens one per worker thread and I/O thread, so that
  // a quick read tried on an I/O thread never finds every reader held by the workers (it would
  // then be handed to a worker: measured at 1M in the mixed benchmark, 15-44% of phone lookups).
  int readers = 4;
  int busy_timeout_ms = 5000;  // wait for another process's write lock before kBusy
  int pool_size = 8;           // PostgreSQL: connections shared by write and read transactions
  // PostgreSQL: URLs of streaming replicas that serve read() when the thread's ReadRouting
  // allows it (each with its own pool of pool_size connections).
  std::vector<std::string> replicas;
  // SQLite group commit: write transactions that overlap share one COMMIT (one fsync). A batch
  // is committed once no other writer is waiting, or when it holds this many transactions, or
  // when it has been open this long (0: no time bound), so no member waits indefinitely.
  // 30 ms rather than 10: under a saturated CPU the members' serial work (and the holder's
  // waits for a core) filled 10 ms with about 15 members while more were waiting, and every
  // early COMMIT re-wrote the hot pages (table and index tails, audit log) and synced again:
  // at 30 ms batches hold more members and a create cost ~10% less CPU, with no worse p99
  // (clients that wait behind a closed batch wait for its COMMIT anyway).
  int group_commit_max_members = 64;
  int group_commit_max_ms = 30;
  // SQLite (serve --wal-sync-beside): a group COMMIT's WAL sync runs on the store's sync thread
  // while the writer goes on with the next batch (wal_buffer.h, DeferWalSync); its members are
  // answered only after that sync returned, but other connections may read the batch before.
  // Off by default: at 1M its gain in creates/s is not shown (bench/README, sessions 18 and 20).
  bool defer_wal_sync = false;
  // SQLite: WAL frames (pages) after a COMMIT at which the committing writer checkpoints the
  // WAL itself, waiting for readers, and starts the log again from the beginning of its file
  // (whose size stays at most about this bound). Under back-to-back writes the
  // background checkpointer never catches up and the WAL would grow without bound (22 GB in
  // one index rebuild). 48,000 frames of 4 KiB and their headers: ~189 MiB, three times the
  // background checkpointer's interval (SqliteStore::kCheckpointFrames), so that its PASSIVE
  // copy, not this one, is what normally lets the log start again.
  int wal_max_frames = 48000;
  // SQLite: the same bound while a bulk load holds Store::bulk_writes(). An import's 5,000-row
  // batch rewrites pages all over the term index: ~27,700 frames (113 MB) a batch at 100,000
  // rows, more than wal_max_frames, so the writer checkpointed after every batch and copied
  // each index page into the database once per batch (15% of an import's CPU). With this bound
  // it checkpoints every few batches and copies each such page once for all of them. 131,072
  // frames of 4 KiB: 512 MiB of WAL file at most (plus one transaction), truncated at the end.
  int bulk_wal_max_frames = 131072;
  // SQLite: the write connection's page cache in MiB. Bulk loaders (rapport-gen) raise it: the
  // random-key indexes of a large data set otherwise leave the cache on almost every insert.
  int writer_cache_mib = 64;
  // SQLite: the reader connections memory-map the database file (PRAGMA mmap_size) when all of
  // it fits in this many MiB at start-up, else read it with pread (0: never map). Each reader maps
  // the file on its own, and every mapped page it touches counts in the process's RSS once per
  // reader (on a kernel that caches files in large folios a random touch maps ~200 KiB), so a
  // mapping pays only when it holds the whole file: at 1M accounts (a 14 GB file) the first
  // 256 MiB held ~2% of the pages a customer 360 or a search reads, saved no CPU, and added
  // ~350 MB of RSS.
  int reader_map_mib = 256;
  // SQLite: rows of a term table the term codes' build (at open, on a thread of its own) reads
  // per statement, each its own read transaction: tens of milliseconds. One statement a range
  // held a snapshot for seconds at 1M, and the writer's RESTART checkpoint waited the busy
  // timeout for it while holding the writer (creates stalled 5 s while a server started).
  int term_codes_chunk_rows = 50000;
  // A piece also ends at the row it is on when a checkpoint of the store waits for readers,
  // and the next begins once that checkpoint is over (the busy timeout at most).
  // Tests: called on the build's thread after each such statement (with its rows), its
  // snapshot let go.
  std::function<void(std::int64_t rows)> after_term_codes_chunk;
};

// Opens the store named by `url`: "sqlite:PATH" or a plain path to a SQLite file (created if
// missing), or "postgresql://…" / "postgres://…" (a libpq connection URI) for PostgreSQL.
Result<std::unique_ptr<Store>> open_store(const std::string& url, const StoreOptions& options = {});

// Replaces the database at `target_url` with the backup file at `backup_path` (server stopped).
Status restore_store(const std::string& target_url, const std::string& backup_path);

// Whether a record whose search body is `text` has every key of `query` (as the full-text
// index would find it): for checking a match against only part of a record's text, such as
// the fields a caller may see.
bool fts_text_matches(std::string_view text, std::string_view query);
// The index entries of a record with this text (Tx::FtsRow::terms), the same as a write of the
// text alone stores: for working them out before the write transaction.
std::shared_ptr<const Tx::FtsTerms> fts_terms_of(std::string_view text);
// The order in which search as you type would rather drive by the keys of `query` when their
// entry counts do not tell (Dialect::fts_key_counts' columns, the default driver first: an
// exact key before a prefix, the longest).
std::vector<int> fts_driver_order(std::string_view query);
// Whether every key of `query` is an exact term (CJK bigrams: "北京华信" → 北京, 京华, 华信), so
// that each key's entries are one term, newest first: any of them drives to the same answer.
bool fts_keys_exact(std::string_view query);
// The column of the key with the fewest entries in a row of Dialect::fts_key_counts_falling
// (counts as integers, in key order): read from the last column, the first one with fewer
// entries than every column after it.
std::size_t fts_rarest_key(std::span<const std::int64_t> counts);

}  // namespace rapport::storage
