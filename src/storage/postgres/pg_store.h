// The PostgreSQL backend of the Store interface, on libpq: a pool of connections shared by write
// and read transactions, `?` placeholders rewritten to $n and sent as prepared statements with
// text parameters, pg_trgm tables for search. libpq-fe.h stays in the .cc file.
#pragma once

#include <condition_variable>
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
  std::string fts_condition(std::string_view entity, std::string_view query,
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

  // Both take a connection from the pool (waiting up to busy_timeout_ms for a free one).
  // write() runs BEGIN (READ COMMITTED); row locks are waited for up to busy_timeout_ms.
  Result<std::unique_ptr<Tx>> write() override;
  // BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY, with the snapshot taken at once.
  Result<std::unique_ptr<Tx>> read() override;
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
  // callbacks on that thread. A lost connection is re-opened with back-off and LISTENs again.
  Status notify(std::string_view channel, std::string_view payload) override;
  Status listen(std::string_view channel, std::function<void(std::string)> on_message) override;
  void stop_listening() override;
  // pg_try_advisory_lock(key, n) for n from a random start until one is free; the lock's
  // connection stays open (outside the pool) until the store closes, or dies with the process.
  Result<int> claim_node_id() override;

 private:
  class Notifier;  // pg_store.cc
  Notifier& notifier();

  PgStore(std::string url, const StoreOptions& options);
  Result<PgConnection*> acquire();
  void release(PgConnection* conn);
  Result<std::unique_ptr<Tx>> begin(const char* begin_sql, bool writable);

  std::string url_;
  StoreOptions options_;
  int pool_size_;
  PgDialect dialect_;

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<PgConnection>> conns_;  // guarded by pool_mu_
  std::vector<PgConnection*> free_;                   // guarded by pool_mu_
  int connecting_ = 0;  // connections being opened outside the lock; guarded by pool_mu_

  std::mutex node_mu_;
  std::unique_ptr<PgConnection> node_conn_;  // holds the node lock; guarded by node_mu_
  int node_id_ = -1;                         // guarded by node_mu_

  std::mutex notifier_mu_;
  std::unique_ptr<Notifier> notifier_;  // guarded by notifier_mu_ (created once)
};

}  // namespace rapport::storage::postgres
