// The SQLite backend of the Store interface: one writer connection, a pool of snapshot readers,
// WAL with synchronous=FULL, FTS5 trigram tables for search. sqlite3.h stays in the .cc file.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/store.h"

namespace rapport::storage::sqlite {

class Connection;  // one sqlite3 handle and its prepared-statement cache (sqlite_store.cc)

// SQLite spellings of the dialect-specific fragments. Stateless; usable from any thread.
class SqliteDialect final : public Dialect {
 public:
  std::string column_type(ColumnType t) const override;
  // Throws std::invalid_argument when `entity` is not a valid identifier (a metadata bug).
  std::vector<std::string> fts_create(std::string_view entity) const override;
  std::string ilike() const override { return "LIKE"; }
  std::string fts_condition(std::string_view entity, std::string_view query,
                            std::vector<SqlValue>& params) const override;
};

// Owns the writer connection (serialised by writer_mu_) and the reader connections (handed out
// under pool_mu_). Any thread may call its methods; each Tx stays on the thread that opened it
// and must be destroyed before the store.
class SqliteStore final : public Store {
 public:
  // Opens (creating if missing) the database file at `path`. The directory must exist.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path,
                                                   const StoreOptions& options);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Result<std::unique_ptr<Tx>> write() override;
  Result<std::unique_ptr<Tx>> read() override;
  Status migrate(std::span<const Migration> migrations) override;
  Result<int> schema_version() override;
  Status backup_to(const std::string& path) override;
  Result<std::string> integrity_check() override;
  const Dialect& dialect() const override { return dialect_; }
  std::string_view backend_name() const override { return "sqlite"; }

  const std::string& path() const { return path_; }

 private:
  SqliteStore(std::string path, const StoreOptions& options);
  void return_reader(Connection* reader);

  std::string path_;
  StoreOptions options_;
  SqliteDialect dialect_;

  std::timed_mutex writer_mu_;  // held from write() until the Tx commits or is destroyed
  std::unique_ptr<Connection> writer_;

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Connection>> readers_;
  std::vector<Connection*> free_readers_;  // guarded by pool_mu_
};

// Replaces the SQLite database at `target_path` with the backup at `backup_path` after checking
// that the backup is a sound SQLite database. The server must be stopped.
Status restore(const std::string& target_path, const std::string& backup_path);

}  // namespace rapport::storage::sqlite
