// The PostgreSQL backend of the Store interface, on libpq: a pool of connections shared by write
// and read transactions, `?` placeholders rewritten to $n and sent as prepared statements with
// text parameters, pg_trgm tables for search. libpq-fe.h stays in the .cc file.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/store.h"

namespace rapport::storage::postgres {

class PgConnection;  // one PGconn and its prepared-statement cache (pg_store.cc)

// PostgreSQL spellings of the dialect-specific fragments. Stateless; usable from any thread.
class PgDialect final : public Dialect {
 public:
  std::string column_type(ColumnType t) const override;
  // Throws std::invalid_argument when `entity` is not a valid identifier (a metadata bug).
  std::vector<std::string> fts_create(std::string_view entity) const override;
  std::string ilike() const override { return "ILIKE"; }
  // A B-tree column ASC NULLS FIRST: read backwards it is DESC NULLS LAST, the list order.
  std::string index_key_column(const std::string& quoted) const override {
    return quoted + " NULLS FIRST";
  }
  bool index_key_ends_with_id() const override { return false; }
  std::string fts_condition(std::string_view entity, std::string_view query,
                            std::vector<SqlValue>& params) const override;
  std::string fts_key_counts(std::string_view entity, std::string_view query, int cap,
                             std::vector<SqlValue>& params) const override;
  std::string fts_key_counts_falling(std::string_view entity, std::string_view query, int cap,
                                     std::vector<SqlValue>& params) const override;
  std::string fts_pair_counts(std::string_view entity, std::string_view query, int first,
                              int second, int cap, std::vector<SqlValue>& params) const override;
  std::string fts_scoped(std::string_view entity, std::string_view query, std::string_view ids_sql,
                         std::span<const SqlValue> ids_params,
                         std::vector<SqlValue>& params) const override;
  std::string fts_page(std::string_view entity, std::string_view query, int driver,
                       const FtsPosition* after, int page,
                       std::vector<SqlValue>& params) const override;
  std::string fts_window_end(std::string_view entity, std::string_view query, int driver,
                             const FtsPosition* after, int page,
                             std::vector<SqlValue>& params) const override;
  // pg_trgm: a GIN gin_trgm_ops index on the column; the `%` operator (similarity at least
  // pg_trgm.similarity_threshold, 0.3 by default) read through it, ranked by similarity().
  // Both throw std::invalid_argument when a name is not a valid identifier (a metadata bug).
  std::vector<std::string> fuzzy_index_create(std::string_view entity,
                                              std::string_view column) const override;
  std::optional<std::string> fuzzy_titles(std::string_view entity, std::string_view column,
                                          std::string_view query,
                                          std::vector<SqlValue>& params) const override;
};

// `sql` in PostgreSQL's spelling: each `?` outside quoted literals, quoted identifiers and
// comments becomes $1..$n (n is stored in `*count`), and in CREATE TABLE / ALTER TABLE the
// SQLite type names INTEGER and REAL become BIGINT and DOUBLE PRECISION (SQLite's INTEGER is
// 64-bit and its REAL 8-byte; PostgreSQL's are 32-bit and 4-byte). A trailing `;` is dropped.
// Fails (kInternal) when the text holds more than one statement.
Result<std::string> translate_sql(std::string_view sql, int* count);

// Owns the connection pool. Any thread may call its methods; each Tx stays on the thread that
// opened it and must be destroyed before the store.
class PgStore final : public Store {
 public:
  // Connects to `url` (a libpq URI: postgresql://user:pass@host:port/db?…), checks the server
  // answers and enables pg_trgm. kStorage "cannot connect to PostgreSQL: …" when unreachable.
  static Result<std::unique_ptr<PgStore>> open(const std::string& url, const StoreOptions& options);
  ~PgStore() override;
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  // Both take a connection from the pool (waiting up to busy_timeout_ms for a free one). The
  // BEGIN is deferred and sent in one pipeline with the transaction's first statement (a
  // transaction that runs none sends nothing), so its snapshot is taken at that statement.
  // write() runs BEGIN (READ COMMITTED); row locks are waited for up to busy_timeout_ms.
  Result<std::unique_ptr<Tx>> write() override;
  // BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; its end (commit or rollback) is sent
  // without waiting for the answer, which the connection's next user reads. A read of one
  // statement thus waits for one round trip. With
  // replicas and a thread ReadRouting that allows them, a replica serves it (round robin) when
  // its pg_last_wal_replay_lsn(), read just before the snapshot, is at or past both the
  // routing's `after` and the lag floor (a commit position of this process at least
  // kMaxReplicaLagMs old). A replica that fails to connect or answer is left alone for
  // kReplicaRetryMs; a busy, lagging or failed one hands the read to the primary.
  Result<std::unique_ptr<Tx>> read() override;
  static constexpr int kMaxReplicaLagMs = 5000;
  static constexpr int kReplicaRetryMs = 2000;
  bool has_replicas() const override { return !replicas_.empty(); }
  // Exchanges with the primary that a caller waited for (a statement, a pipeline, a COMMIT)
  // since the store opened: what the round-trip figures in docs/SCALING.md count.
  std::uint64_t round_trips() const;
  Status migrate(std::span<const Migration> migrations) override;
  Result<int> schema_version() override;
  // Not supported: kBadRequest "use pg_dump for PostgreSQL backups".
  Status backup_to(const std::string& path) override;
  Result<std::string> integrity_check() override;
  const Dialect& dialect() const override { return dialect_; }
  std::string_view backend_name() const override { return "postgresql"; }

  // NOTIFY / LISTEN on one dedicated connection (not from the pool) owned by a background
  // thread, started on first use: notify() queues pg_notify(channel, payload) for that thread
  // (at most 10000 queued; the oldest are dropped beyond), listen() adds a LISTEN and runs
  // callbacks on that thread. A lost connection is re-opened with back-off and LISTENs again;
  // then the on_listen_resumed() callbacks run (not after the first connection).
  Status notify(std::string_view channel, std::string_view payload) override;
  bool notifies_others() const override { return true; }
  Status listen(std::string_view channel, std::function<void(std::string)> on_message) override;
  void on_listen_resumed(std::function<void()> cb) override;
  void stop_listening() override;
  // pg_try_advisory_lock(key, n) for n from a random start until one is free; the lock's
  // connection stays open (outside the pool) until the store closes, or dies with the process.
  Result<int> claim_node_id() override;
  // pg_try_advisory_lock(kJobLockKey, key) on a new connection that the handle owns.
  Result<std::unique_ptr<JobLock>> try_job_lock(std::int32_t key) override;

 private:
  class Notifier;  // pg_store.cc
  class Pool;      // pg_store.cc: the connections to one server
  struct Replica;  // pg_store.cc: a replica's pool and health
  Notifier& notifier();

  PgStore(std::string url, const StoreOptions& options);
  Result<std::unique_ptr<Tx>> begin(const char* begin_sql, bool writable);
  // A read transaction on a replica, or nullptr when none may serve it now.
  std::unique_ptr<Tx> replica_read(std::uint64_t after);
  // Called with the WAL position after each commit when replicas are configured.
  void committed(std::uint64_t position);
  std::uint64_t lag_floor();

  std::string url_;
  StoreOptions options_;
  PgDialect dialect_;
  std::unique_ptr<Pool> pool_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::atomic<unsigned> next_replica_{0};

  std::mutex lag_mu_;
  std::uint64_t lag_floor_ = 0;  // committed at least kMaxReplicaLagMs ago; guarded by lag_mu_
  std::uint64_t lag_mark_ = 0;   // a later commit position; guarded by lag_mu_
  std::chrono::steady_clock::time_point lag_mark_at_{};  // guarded by lag_mu_

  std::mutex node_mu_;
  std::unique_ptr<PgConnection> node_conn_;  // holds the node lock; guarded by node_mu_
  int node_id_ = -1;                         // guarded by node_mu_

  std::mutex notifier_mu_;
  std::unique_ptr<Notifier> notifier_;  // guarded by notifier_mu_ (created once)
};

}  // namespace rapport::storage::postgres
