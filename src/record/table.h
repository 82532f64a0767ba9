// How an entity maps onto a table: columns per field type, DDL that brings a table up to its
// metadata, and conversion between stored values and JSON. Money takes two columns
// (`name` = minor units, `name__cur` = ISO 4217); lists, addresses and json are JSON text.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "schema/schema.h"
#include "storage/store.h"

namespace rapport::record {

// Double-quoted identifier (names are validated [a-z_][a-z0-9_]* by the schema).
std::string quote(std::string_view ident);

// Columns of a field, in order (one, or two for money).
std::vector<std::string> field_columns(const schema::Field& f);
// field_columns(f).size() without building the names (money: amount and currency, else one).
inline size_t column_count(const schema::Field& f) {
  return f.type == schema::FieldType::kMoney ? 2 : 1;
}
// "SELECT" column list for all fields of the entity plus the internal columns
// deleted_at and merged_into (always last two).
std::string select_list(const schema::Entity& e);
// The columns of every field, as select_list without the internal two (an INSERT's column list).
std::string field_column_list(const schema::Entity& e);
// Position of a field's (first) column in a select_list row.
size_t column_index(const schema::Entity& e, std::string_view field);
// The distribution key (docs/SCALING.md) of records of `e`, where `key_entity` is the entity
// that shards the data (RecordOptions::distribution_entity): `self` when e is it (the key is the
// record's id), else `field` is e's first reference field to it; neither: no key (NULL).
struct DistributionKey {
  bool self = false;
  const schema::Field* field = nullptr;
};
DistributionKey distribution_key(const schema::Entity& e, std::string_view key_entity);
// The key's value for one record (its select_list row), or NULL.
storage::SqlValue distribution_value(const schema::Entity& e, std::string_view key_entity,
                                     std::int64_t id, const std::vector<storage::SqlValue>& row);
// Visits every live (not deleted) record in id order (derived-index rebuilds), each batch of
// `batch` rows in a write transaction of its own (committed before the next batch is read), so
// rebuilding derived data of a large table never holds one giant
// transaction. `fn` gets the batch's transaction. A failure stops the walk; batches committed
// before it stay. `end_batch`, when given, runs in each batch's transaction after its last row
// (for writes collected over the batch).
Status for_each_live_row_batched(
    storage::Store& store, const schema::Entity& e, int batch,
    const std::function<Status(storage::Tx& tx, std::int64_t id,
                               const std::vector<storage::SqlValue>& row)>& fn,
    const std::function<Status(storage::Tx& tx)>& end_batch = {});
// Records that derived data `name` (search bodies, phone index, match index, …) is built at
// `version` (table derived_index). An upsert, so that two servers opening one fresh database
// at the same moment both succeed (a DELETE then INSERT let the second fail on the key).
Status record_derived_version(storage::Tx& tx, const std::string& name, const std::string& version);
// Number of columns select_list yields before the two internal ones.
size_t field_column_count(const schema::Entity& e);

// The field a "did you mean" search compares with a misspelt query (Dialect::fuzzy_titles):
// the title field of an entity that has searchable fields, when it is a one-line text field;
// else nullptr.
const schema::Field* fuzzy_title(const schema::Entity& e);
// Creates the table, adds missing columns and creates indexes; idempotent. `defer_indexes`:
// not the deferrable ones (below): the caller creates them later (a start-up after a killed
// large import: RecordService::start_term_builds).
Status sync_table(storage::Tx& tx, const storage::Dialect& d, const schema::Entity& e,
                  bool defer_indexes = false);
// The entity's non-unique indexes (its fields' list indexes, declared and count indexes): the
// ones a bulk load into a nearly empty table drops and builds once after it. Unique indexes are
// not among them (they enforce the keys while the load runs). Each create statement is
// sync_table's own (CREATE INDEX IF NOT EXISTS), so start-up re-creates an index a killed load
// left dropped.
struct IndexDdl {
  std::string name;
  std::string create;
};
std::vector<IndexDdl> deferrable_indexes(const schema::Entity& e, const storage::Dialect& d);
// DDL for one newly added field (custom field).
std::vector<std::string> add_field_ddl(const storage::Dialect& d, const schema::Entity& e,
                                       const schema::Field& f);

// A validated, normalised JSON value → stored value(s) for the field's columns.
void to_sql(const schema::Field& f, const json::Value& v, std::vector<storage::SqlValue>& out);
// Stored value(s) at row[col…] → JSON on a writer. Returns the number of columns consumed.
size_t write_json(json::Writer& w, const schema::Field& f,
                  const std::vector<storage::SqlValue>& row, size_t col);
// Same, into a Value (for diffs and hooks).
size_t to_json(const schema::Field& f, const std::vector<storage::SqlValue>& row, size_t col,
               json::Value& out, json::Allocator& a);
// Stored value → text for CSV export and full-text indexing.
std::string to_text(const schema::Field& f, const std::vector<storage::SqlValue>& row, size_t col);

// The first conditional requirement (schema::Field::required_when) that a record breaks as it
// will be stored: `changed` (validated values, e.g. a PATCH's; nullptr: none) over its stored
// `row` (a select_list row) for the fields `changed` leaves out. As schema::required_error.
Status check_required_when(const schema::Entity& e, const json::Value* changed,
                           const std::vector<storage::SqlValue>& row);

std::int64_t as_int(const storage::SqlValue& v);
std::string as_text(const storage::SqlValue& v);

}  // namespace rapport::record
