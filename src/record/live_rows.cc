// for_each_live_row_batched and record_derived_version (table.h): apart from table.cc, whose
// pure helpers the fuzz targets link without any storage backend.
#include <algorithm>
#include <string>

#include "record/table.h"

namespace rapport::record {

using storage::SqlValue;

Status for_each_live_row_batched(storage::Store& store, const schema::Entity& e, int batch,
                                 const std::function<Status(storage::Tx& tx, std::int64_t id,
                                                            const std::vector<SqlValue>& row)>& fn,
                                 const std::function<Status(storage::Tx& tx)>& end_batch) {
  batch = std::max(1, batch);
  const size_t id_col = column_index(e, "id");
  const std::string sql = "SELECT " + select_list(e) + " FROM " + quote(e.name) +
                          " WHERE \"id\" > ? AND deleted_at IS NULL ORDER BY \"id\" LIMIT ?";
  std::int64_t after = 0;
  for (;;) {
    RP_ASSIGN(auto tx, store.write());
    SqlValue params[] = {after, std::int64_t{batch}};
    RP_ASSIGN(auto rows, tx->query(sql, params));
    for (const auto& row : rows.rows) {
      after = as_int(row[id_col]);
      RP_TRY(fn(*tx, after, row));
    }
    if (end_batch) RP_TRY(end_batch(*tx));
    RP_TRY(tx->commit());
    if (static_cast<int>(rows.rows.size()) < batch) return {};
  }
}

Status record_derived_version(storage::Tx& tx, const std::string& name,
                              const std::string& version) {
  storage::SqlValue row[] = {name, version};
  RP_TRY(
      tx.exec("INSERT INTO derived_index (name, version) VALUES (?, ?) "
              "ON CONFLICT (name) DO UPDATE SET version = excluded.version",
              row));
  return {};
}

}  // namespace rapport::record
