// Backend-neutral pieces of the full-text search both backends share: entity-name checks, the
// per-entity term table name, the terms a body is indexed under, the keys of a query and the SQL
// that looks them up (both backends run the same). Internal to storage/.
//
// The index is an ordinary table per entity, "<entity>_terms" (term, id, account_id, sig) with
// its B-tree on (term, id DESC), sig the record's term_signature, and beside it "<entity>_terms_of"
// (id, account_id, terms): each record's term list, for replacing a record's terms and for checking
// a query's further keys on a candidate without a second index on the terms (which would double the
// write cost). Terms:
// - each word of the body (a run of letters and digits outside CJK, ASCII lowercased), which
//   also covers the pinyin (full spelling and initials) and folded forms the record layer puts
//   into the body;
// - for a word of >= 5 digits also kReversedMarker followed by the word reversed, so that a
//   number is found by its start (the word) or by its end (a prefix of the reversed term:
//   "5678" → "~8765…", a phone number's last digits, a landline's local number without the
//   area code); a fragment from the middle of a number finds nothing (until session 13 every
//   suffix of >= 4 digits was a term: ~11 term rows per phone number instead of ~3);
// - each pair of adjacent CJK characters and the last character of a CJK run (substring search
//   in Chinese: a single character is the prefix of its bigram or the last character).
// A query term is a prefix of a word ("zh" → term >= 'zh' AND term < 'zi': a range scan that
// can stop at a bound, also for one and two characters) or, in CJK, its characters or bigrams;
// an all-digit one also the prefix of the reversed terms ("5678": '5678' <= term < '5679' or
// '~8765' <= term < '~8766'; a record matching both ranges is one record of the answer).
#pragma once

#include <cstddef>
#include <cstdint>
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
// The quoted name of the table of each record's terms ("<entity>_terms_of": id, account_id,
// terms as "\nterm\nterm\n"), read to remove a record's terms and to check a candidate's other
// query keys.
std::string term_lists_table(std::string_view entity);
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
// Starts the reversed form of an all-digit word: no word holds it (not a letter or digit) and
// it sorts above every ASCII letter and digit and below every non-ASCII byte, so no query
// key's range ('z' → 'z' to '{', 'é' ...) holds a reversed term.
inline constexpr char kReversedMarker = '~';
// The distinct terms `body` is indexed under, sorted.
std::vector<std::string> index_terms(std::string_view body);

// A record's signature, stored with each of its index entries: 63 bits, each set when one of
// its terms begins with a given letter or digit, or (hashed) with a given other character or
// pair of characters (the reversed digit terms set none). A record can have a query's further
// keys only when its signature has every bit of keys_signature, so that an entry is ruled out
// mostly without reading its term list; an all-digit key demands no bit (its two forms share
// none).
std::int64_t term_signature(std::span<const std::string> terms);

struct TermKey {
  std::string term;
  bool prefix;  // true: any term starting with `term`; false: exactly `term`
  // An all-digit key's reversed form (kReversedMarker + the digits reversed): a term starting
  // with it also matches (the key ends a number). Empty for every other key.
  std::string alt = {};
  bool operator==(const TermKey&) const = default;
};
// The keys of a query, every one of which a record must have: per whitespace-separated term its
// words as prefixes, and its CJK runs as the single character (a prefix) or the bigrams (two
// or more, each exact). Empty when the query has nothing indexable (punctuation only).
std::vector<TermKey> query_keys(std::string_view query);
// The keys of `text` as query_keys gives them (its words, CJK bigrams, a lone CJK character),
// each exact, not a prefix: Tx::fts_search_words.
std::vector<TermKey> word_keys(std::string_view text);
// The bits a record's signature has when it has every key of `keys` but keys[skip] (skip >=
// keys.size(): every key).
std::int64_t keys_signature(std::span<const TermKey> keys, std::size_t skip);
// The least string above every string that starts with `prefix` (bytewise): `prefix` with its
// last code point replaced by the next one, so valid UTF-8 stays valid (PostgreSQL refuses
// anything else); the last byte incremented when `prefix` is not UTF-8.
std::string prefix_end(std::string_view prefix);

// The SQL both backends run (see Dialect::fts_condition and Dialect::fts_page); "1 = 0" /
// "" when the query has no keys or the entity name is invalid. `contains`: the backend's
// function for the position of a substring (instr on SQLite, strpos on PostgreSQL).
std::string terms_condition(std::string_view entity, std::string_view query,
                            std::string_view contains, std::vector<SqlValue>& params);
std::string terms_key_counts(std::string_view entity, std::string_view query, int cap,
                             std::vector<SqlValue>& params);
// Dialect::fts_key_counts_falling (one statement: a chain of WITH items, the last key first).
std::string terms_key_counts_falling(std::string_view entity, std::string_view query, int cap,
                                     std::vector<SqlValue>& params);
// Dialect::fts_pair_counts (one statement: two WITH items, `first` then `second`).
std::string terms_pair_counts(std::string_view entity, std::string_view query, int first,
                              int second, int cap, std::vector<SqlValue>& params);
// terms_page: the one other key of a page, a number fragment of at least kSmallKeyDigits digits
// or a prefix of more than kFewKeyTerms terms, is tested against the set of the ids of its
// entries whose signature has every key's bits instead of on each candidate's term list: a
// fragment of at most kSmallKeyEntries entries from the page's first entry on, one of at most
// kSmallNumberEntries and a prefix of at most kSmallKeyEntries past the page's
// kSetAfterEntries-th entry (before it, the term lists of a window that finds its matches early
// cost less than counting the key and building the set). On SQLite a fragment of more than
// kSmallKeyEntries, and a one-character Chinese key, are first checked on the record's term
// codes in memory (rapport_term_codes, storage/sqlite/term_codes.h).
inline constexpr std::size_t kSmallKeyDigits = 3;
// SQLite's row of the last term write (n, writer), which rapport_term_codes takes from the
// statement's snapshot (storage/sqlite/term_codes.h: other processes' writes).
inline constexpr std::string_view kTermWritesTable = "_term_writes";
inline constexpr int kSmallKeyEntries = 8192;
inline constexpr int kSmallNumberEntries = 32768;
inline constexpr int kSetAfterEntries = 1024;
// terms_page: a prefix key (not a number) of at most this many distinct terms as the one other
// key of a page is looked up in the index, one (term, id) key per term, instead of on each
// candidate's term list (a lookup of a few hot index pages costs about a quarter of a
// term-list read: more than this many would cost more).
inline constexpr int kFewKeyTerms = 3;
// `written_order`: the backend runs a UNION ALL's parts in turn in their own order (SQLite), so
// a page after a position needs no ORDER BY over them (see Dialect::plans_by_written_order).
// `key_lookups`: the one other key checked on its entries' ids or per term in the index as
// above (kSmallKeyEntries, kFewKeyTerms) — SQLite, which evaluates those uncorrelated
// subqueries once per statement; PostgreSQL's generic plan ran them again per entry (400–870 ms
// for "高 杰", "Emma 5054" at 20,000 accounts instead of 3–100 ms), so there the term list.
std::string terms_page(std::string_view entity, std::string_view query, int driver,
                       const FtsPosition* after, int page, std::string_view contains,
                       bool written_order, bool key_lookups, std::vector<SqlValue>& params);
// Dialect::fts_window_end on either backend.
std::string terms_window_end(std::string_view entity, std::string_view query, int driver,
                             const FtsPosition* after, int page, bool written_order,
                             std::vector<SqlValue>& params);
std::string terms_scoped(std::string_view entity, std::string_view query, std::string_view ids_sql,
                         std::span<const SqlValue> ids_params, std::string_view contains,
                         std::vector<SqlValue>& params);
// fts_search on either backend: ids of up to `limit` records with every key, best match first.
// `entity` must be valid and `keys` non-empty.
std::string terms_search_sql(std::string_view entity, const std::vector<TermKey>& keys, int limit,
                             std::string_view contains, std::vector<SqlValue>& params);

// The writes, through the backend's transaction (its exec and query).
// fts_put_many: unless `fresh`, remove_terms of the ids; then multi-row INSERTs (`insert`:
// "INSERT INTO" or "INSERT OR IGNORE INTO", each statement ending with `insert_suffix`) of every
// term row of the batch in term order (neighbouring B-tree pages), and of each record's term
// list. Statements carry up to 512 (term rows) or 256 (lists) rows and below that a power of two
// (few statement texts), every row bound once. A row's terms, list and signature come from its
// FtsRow::terms when the caller worked them out ahead (a create), else from its text.
// `lists_only`: the term lists alone (Tx::fts_put_lists; build_term_rows adds the rows).
Status put_terms(std::string_view entity, std::span<const Tx::FtsRow> rows, bool fresh,
                 std::string_view insert, std::string_view insert_suffix, Tx& tx,
                 bool lists_only = false);
// fts_load: put_terms(fresh) of `rows` with the term rows going into the staging table
// "<entity>_terms_in" (term, id, account_id; no key, created here when missing).
Status load_terms(std::string_view entity, std::span<const Tx::FtsRow> rows,
                  std::string_view insert, std::string_view insert_suffix, Tx& tx);
// fts_load_finish: the staged term rows into the term table in its key order (one sorted
// INSERT ... SELECT), then the staging table dropped.
Status finish_load_terms(std::string_view entity, std::string_view insert,
                         std::string_view insert_suffix, Tx& tx);
// fts_delete: the records' terms, found through their term lists, and the lists.
Status remove_terms(std::string_view entity, std::span<const std::int64_t> ids, Tx& tx);
// fts_clear: drops the tables (and a staging table left by an interrupted load) and creates them
// anew (`create`: Dialect::fts_create), which is quicker than deleting every row, leaves no
// half-empty pages for a rebuild to fill, and brings a table of an earlier layout to the current
// one.
Status clear_terms(std::string_view entity, const std::vector<std::string>& create, Tx& tx);

}  // namespace rapport::storage::detail
