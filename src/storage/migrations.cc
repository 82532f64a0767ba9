// Shared migration runner (see migrations.h).
#include "storage/migrations.h"

#include <algorithm>
#include <vector>

#include "base/clock.h"

namespace rapport::storage::detail {

Status apply_migrations(Store& store, std::span<const Migration> migrations,
                        const std::function<Status(Tx&)>& lock) {
  {
    RP_ASSIGN(auto tx, store.write());
    RP_TRY(lock(*tx));
    RP_TRY(
        tx->exec("CREATE TABLE IF NOT EXISTS _migrations("
                 "version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"));
    RP_TRY(tx->commit());
  }
  std::vector<const Migration*> ordered;
  for (const auto& m : migrations) ordered.push_back(&m);
  std::sort(ordered.begin(), ordered.end(),
            [](const Migration* a, const Migration* b) { return a->version < b->version; });
  for (std::size_t i = 1; i < ordered.size(); ++i) {
    if (ordered[i]->version == ordered[i - 1]->version) {
      return make_error(Errc::kInternal,
                        "duplicate migration version " + std::to_string(ordered[i]->version));
    }
  }

  RP_ASSIGN(int current, store.schema_version());
  SystemClock clock;
  for (const Migration* m : ordered) {
    if (m->version <= current) continue;
    RP_ASSIGN(auto tx, store.write());
    RP_TRY(lock(*tx));
    // Another process may have applied it since we looked; the lock makes this check exact.
    const SqlValue version[] = {std::int64_t{m->version}};
    RP_ASSIGN(Rows done, tx->query("SELECT 1 FROM _migrations WHERE version = ?", version));
    if (!done.rows.empty()) continue;
    for (const auto& sql : m->statements) {
      if (auto r = tx->exec(sql); !r.ok()) {
        Error e = std::move(r).error();
        e.message =
            "migration " + std::to_string(m->version) + " (" + m->name + ") failed: " + e.message;
        return e;
      }
    }
    const SqlValue row[] = {std::int64_t{m->version}, m->name, format_iso8601(clock.now_ms())};
    RP_TRY(tx->exec("INSERT INTO _migrations(version, name, applied_at) VALUES (?, ?, ?)", row));
    RP_TRY(tx->commit());
  }
  return {};
}

}  // namespace rapport::storage::detail
