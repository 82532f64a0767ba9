// Row helpers shared by duplicates.cc and merge.cc (not part of the record layer's interface).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "schema/schema.h"
#include "storage/store.h"

namespace rapport::record::detail {

// Position of a field's (first) column in a select_list row.
size_t column_of(const schema::Entity& e, std::string_view name);

// Positions of the columns every record has.
struct Columns {
  size_t id, version, owner, team, deleted, merged;
  explicit Columns(const schema::Entity& e);
};

// Every column of the entity's table in select_list order (deleted_at, merged_into last).
std::vector<std::string> all_columns(const schema::Entity& e);
// The record's title as text.
std::string title_of(const schema::Entity& e, const std::vector<storage::SqlValue>& row);
// A positive id in decimal; kBadRequest on `field` otherwise.
Result<std::int64_t> parse_id(std::string_view s, std::string_view field);
// A score with three decimals ("0.935").
std::string score_text(double score);

}  // namespace rapport::record::detail
