// Picks the storage backend from a store URL: open_store() and restore_store() are the only
// places that know which backends exist.
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>

#include "storage/postgres/pg_store.h"
#include "storage/sqlite/sqlite_store.h"
#include "storage/store.h"

namespace rapport::storage {
namespace {

// The SQLite file path named by `url`, or an error for other or malformed URLs.
// Accepted: "sqlite:PATH", "sqlite://PATH" and a plain path.
Result<std::string> sqlite_path(const std::string& url) {
  std::string_view u = url;
  if (u.starts_with("sqlite:")) {
    u.remove_prefix(7);
    if (u.starts_with("//")) u.remove_prefix(2);
  } else if (u.find("://") != std::string_view::npos) {
    return make_error(Errc::kBadRequest, "unknown store URL scheme: " + url);
  }
  if (u.empty()) return make_error(Errc::kBadRequest, "store URL names no database file");
  // Each connection would get its own private in-memory database; readers would see nothing.
  if (u == ":memory:") {
    return make_error(Errc::kBadRequest, "in-memory SQLite databases are not supported");
  }
  return std::string(u);
}

bool is_postgres(std::string_view url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

}  // namespace

namespace {
thread_local ReadRouting* t_routing = nullptr;
}  // namespace

ReadRouting* current_read_routing() { return t_routing; }

ScopedReadRouting::ScopedReadRouting(ReadRouting& routing)
    : routing_(routing), previous_(t_routing) {
  t_routing = &routing;
}
ScopedReadRouting::~ScopedReadRouting() {
  routing_.shared_read.reset();  // the shared read ends with the scope
  t_routing = previous_;
}

Result<int> Store::claim_node_id() {
  std::random_device rd;
  return static_cast<int>(rd() % 256);
}

namespace {
std::mutex g_job_mu;
std::set<std::pair<const Store*, std::int32_t>> g_job_locks;  // guarded by g_job_mu

class LocalJobLock final : public Store::JobLock {
 public:
  explicit LocalJobLock(std::pair<const Store*, std::int32_t> key) : key_(key) {}
  ~LocalJobLock() override {
    std::lock_guard lock(g_job_mu);
    g_job_locks.erase(key_);
  }

 private:
  std::pair<const Store*, std::int32_t> key_;
};
}  // namespace

Result<std::unique_ptr<Store::JobLock>> Store::try_job_lock(std::int32_t key) {
  std::lock_guard lock(g_job_mu);
  if (!g_job_locks.emplace(this, key).second) return std::unique_ptr<JobLock>();
  return std::unique_ptr<JobLock>(std::make_unique<LocalJobLock>(std::make_pair(this, key)));
}

Result<std::unique_ptr<Store>> open_store(const std::string& url, const StoreOptions& options) {
  if (is_postgres(url)) {
    RP_ASSIGN(auto store, postgres::PgStore::open(url, options));
    return std::unique_ptr<Store>(std::move(store));
  }
  if (!options.replicas.empty()) {
    return make_error(Errc::kBadRequest, "read replicas need a PostgreSQL database",
                      "database-replica");
  }
  RP_ASSIGN(std::string path, sqlite_path(url));
  RP_ASSIGN(auto store, sqlite::SqliteStore::open(path, options));
  return std::unique_ptr<Store>(std::move(store));
}

Status restore_store(const std::string& target_url, const std::string& backup_path) {
  if (is_postgres(target_url)) {
    return make_error(Errc::kBadRequest, "use pg_restore (or psql) for PostgreSQL backups");
  }
  RP_ASSIGN(std::string path, sqlite_path(target_url));
  return sqlite::restore(path, backup_path);
}

}  // namespace rapport::storage
