// Backend-neutral pieces of the full-text search both backends share: entity-name checks, the
// per-entity fts table name, query term splitting and LIKE patterns. Internal to storage/.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace rapport::storage::detail {

// [a-z_][a-z0-9_]*, short enough that "<name>_fts" fits PostgreSQL's 63-byte identifiers.
bool valid_identifier(std::string_view name);
// The quoted FTS table name for an entity, or kInternal for a name that is not an identifier.
Result<std::string> fts_table(std::string_view entity);
std::size_t code_points(std::string_view s);
// Splits on ASCII whitespace and the ideographic space U+3000 (common in CJK input).
std::vector<std::string_view> split_terms(std::string_view q);
// A LIKE pattern matching `term` anywhere, with \ as the escape character.
std::string like_pattern(std::string_view term);

}  // namespace rapport::storage::detail
