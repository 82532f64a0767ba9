// The PostgreSQL backend of the Store interface, on libpq: a pool of connections shared by write
// and read transactions, `?` placeholders rewritten to $n and sent as prepared statements with
// text parameters, pg_trgm tables for search. libpq-fe.h stays in the .cc file.
#pragma once

#include <condition_variable>
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

 private:
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
};

}  // namespace rapport::storage::postgres
