// List queries: the JSON filter language compiled to parameterised SQL, sort keys and keyset
// cursors. Field names come from metadata only; values are always bound parameters.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "access/access.h"
#include "core/json.h"
#include "schema/schema.h"
#include "storage/store.h"

namespace rapport::record {

constexpr int kMaxFilterDepth = 16;
constexpr int kMaxFilterConditions = 200;
constexpr int kMaxInValues = 1000;
constexpr int kMaxSortKeys = 3;

// Compiles a filter expression (see docs/API.md) into a SQL boolean expression; appends the
// bound values to `params`. Fields the principal cannot read are refused like unknown ones.
// The columns of the fields in `unindexed` are written `+"tier"` (SQLite: no index on them).
Result<std::string> compile_filter(const json::Value& expr, const schema::Entity& e,
                                   const access::Principal& p, const storage::Dialect& d,
                                   std::vector<storage::SqlValue>& params,
                                   std::span<const schema::Field* const> unindexed = {});

// The filter text {"field": field, "op": "=", "value": value}.
std::string equals_filter(std::string_view field, std::string_view value);

struct SortKey {
  const schema::Field* field;
  bool desc;
};
// Parses "-created_at,name" into keys; the id is appended as the final tie-breaker. One field
// other than created_at that is not unique (`sort=tier`, indexed or not; docs/API.md) is
// followed by created_at in its direction before the id: an indexed field's index is
// (field, created_at), so a page is read from it in order instead of a whole group of equal
// values being sorted by id.
Result<std::vector<SortKey>> parse_sort(std::string_view sort, const schema::Entity& e,
                                        const access::Principal& p);
std::string order_by(const std::vector<SortKey>& keys);

// Cursor = the sort-key values of the last row of a page, opaque to clients, and, when the
// list plan counted the filter's equalities, its decision (`plan`: the fields it writes
// unindexed, RecordService::common_equalities), so that the next pages need not count again:
// a trailing {"unindexed": [names]}. decode_cursor refuses that part without `plan`.
std::string encode_cursor(const std::vector<storage::SqlValue>& values,
                          const std::vector<std::string>* plan = nullptr);
Result<std::vector<storage::SqlValue>> decode_cursor(
    std::string_view cursor, size_t arity, std::optional<std::vector<std::string>>* plan = nullptr);
// The rows strictly after the cursor position as at most two conditions that an index in the
// sort's order seeks to: every row of `first` comes before every row of `then` in that order.
// For keys in one direction whose keys after the first are never NULL (`tier, created_at, id`):
// a row-value comparison, and for a first key that may be NULL the NULLs on the far side of it
// (`then`: NULLs come last in descending order). Otherwise none (after_cursor's one condition).
struct CursorArms {
  std::string first;
  std::vector<storage::SqlValue> first_params;
  std::string then;  // empty: none
  std::vector<storage::SqlValue> then_params;
};
std::optional<CursorArms> cursor_arms(const std::vector<SortKey>& keys,
                                      const std::vector<storage::SqlValue>& values);
// Condition selecting rows strictly after the cursor position in the given order.
std::string after_cursor(const std::vector<SortKey>& keys,
                         const std::vector<storage::SqlValue>& values,
                         std::vector<storage::SqlValue>& params);

// Scope-limiting SQL condition of list queries (owner / team / all / nothing); appends its values.
// `unindexed`: the columns written `+"owner_id"`, `+"team_id"`, so that a planner without
// statistics (Dialect::plans_by_written_order) reads no owner or team index for them.
std::string scope_sql(const access::Principal& p, access::Scope s,
                      std::vector<storage::SqlValue>& params, bool unindexed = false);

}  // namespace rapport::record
