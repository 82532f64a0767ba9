// Backend-neutral pieces of the full-text search both backends share: entity-name checks, the
// per-entity term table name, the terms a body is indexed under, the keys of a query and the SQL
// that looks them up (both backends run the same). Internal to storage/.
//
// The index is an ordinary table per entity, "<entity>_terms" (term, id, account_id) with a
// B-tree on (term, id) and one on (id, term):
// - each word of the body (a run of letters and digits outside CJK, ASCII lowercased), which
//   also covers the pinyin (full spelling and initials) and folded forms the record layer puts
//   into the body;
// - for a word of >= 5 digits also its suffixes of >= 4 digits (phone number fragments);
// - each pair of adjacent CJK characters and the last character of a CJK run (substring search
//   in Chinese: a single character is the prefix of its bigram or the last character).
// A query term is a prefix of a word ("zh" → term >= 'zh' AND term < 'zi': a range scan that
// can stop at a bound, also for one and two characters) or, in CJK, its characters or bigrams.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "storage/store.h"

namespace rapport::storage::detail {

// [a-z_][a-z0-9_]*, short enough that "<name>_fts" fits PostgreSQL's 63-byte identifiers.
bool valid_identifier(std::string_view name);
// The quoted term table name for an entity ("<entity>_terms"), or kInternal for a name that
// is not an identifier.
Result<std::string> fts_table(std::string_view entity);
// The name of the full-text table of earlier versions ("<entity>_fts"), dropped on start-up.
std::string legacy_fts_table(std::string_view entity);
std::size_t code_points(std::string_view s);
// Splits on ASCII whitespace and the ideographic space U+3000 (common in CJK input).
std::vector<std::string_view> split_terms(std::string_view q);
// A LIKE pattern matching `term` anywhere, with \ as the escape character.
std::string like_pattern(std::string_view term);

// Longest term stored; longer words are cut (a query key is cut the same way and then matches
// as a prefix).
inline constexpr std::size_t kMaxTermBytes = 48;
// The distinct terms `body` is indexed under, sorted.
std::vector<std::string> index_terms(std::string_view body);

struct TermKey {
  std::string term;
  bool prefix;  // true: any term starting with `term`; false: exactly `term`
  bool operator==(const TermKey&) const = default;
};
// The keys of a query, every one of which a record must have: per whitespace-separated term its
// words as prefixes, and its CJK runs as the single character (a prefix) or the bigrams (two
// or more, each exact). Empty when the query has nothing indexable (punctuation only).
std::vector<TermKey> query_keys(std::string_view query);
// The least string above every string that starts with `prefix` (bytewise; UTF-8 never holds
// 0xFF, so the last byte is incremented).
std::string prefix_end(std::string_view prefix);

// The SQL both backends run (see Dialect::fts_condition and Dialect::fts_ranked); "1 = 0" /
// "" when the query has no keys or the entity name is invalid.
std::string terms_condition(std::string_view entity, std::string_view query,
                            std::vector<SqlValue>& params);
std::string terms_ranked(std::string_view entity, std::string_view query, int bound,
                         std::vector<SqlValue>& params);
// fts_put_many on either backend: unless `fresh`, DELETEs of the records' terms (by the (id,
// term) index), then multi-row INSERTs of every term row of the batch in term order
// (neighbouring B-tree pages), each statement ending with `insert_suffix`; `run` executes one.
Status put_terms(const std::string& table, std::span<const Tx::FtsRow> rows, bool fresh,
                 std::string_view insert_suffix,
                 const std::function<Status(const std::string&, std::span<const SqlValue>)>& run);
// fts_search on either backend: ids of up to `limit` records with every key, best match first.
std::string terms_search_sql(const std::string& table, const std::vector<TermKey>& keys, int limit,
                             std::vector<SqlValue>& params);

}  // namespace rapport::storage::detail
