// Shared full-text helpers of the SQLite and PostgreSQL backends.
#include "storage/text_search.h"
#include "storage/sqlite/term_codes.h"
#include "storage/term_build.h"

#include <cstdint>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <limits>
#include <memory>
#include <utility>

#include "base/heap.h"
#include "base/utf8.h"
#include "core/parallel.h"

namespace rapport::storage::detail {

bool valid_identifier(std::string_view name) {
  if (name.empty() || name.size() > 54) return false;  // room for "_terms_id" within 63 bytes
  auto first = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
  if (!first(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return first(c) || (c >= '0' && c <= '9'); });
}

Result<std::string> fts_table(std::string_view entity) {
  if (!valid_identifier(entity)) {
    return make_error(Errc::kInternal,
                      "invalid entity name for full-text index: '" + std::string(entity) + "'");
  }
  return "\"" + std::string(entity) + "_terms\"";
}

std::string term_lists_table(std::string_view entity) {
  return "\"" + std::string(entity) + "_terms_of\"";
}

std::string legacy_fts_table(std::string_view entity) {
  return "\"" + std::string(entity) + "_fts\"";
}

std::size_t code_points(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::vector<std::string_view> split_terms(std::string_view q) {
  std::vector<std::string_view> terms;
  std::size_t start = 0;
  std::size_t i = 0;
  auto flush = [&](std::size_t end) {
    if (end > start) terms.push_back(q.substr(start, end - start));
  };
  while (i < q.size()) {
    std::size_t sep = 0;
    char c = q[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      sep = 1;
    } else if (q.substr(i, 3) == "\xE3\x80\x80") {
      sep = 3;
    }
    if (sep != 0) {
      flush(i);
      i += sep;
      start = i;
    } else {
      ++i;
    }
  }
  flush(q.size());
  return terms;
}

std::string like_pattern(std::string_view term) {
  std::string out = "%";
  for (char c : term) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  out += '%';
  return out;
}

namespace {

// tx.exec as a Status (the row count is not needed).
Status exec_status(Tx& tx, const std::string& sql, std::span<const SqlValue> params) {
  RP_TRY(tx.exec(sql, params));
  return {};
}

// The code point at s[i] (advancing i); a malformed byte is taken as itself.
char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + n > s.size()) n = 1;
  char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (std::size_t k = 1; k < n; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

// Han, kana and Hangul: written without spaces, so indexed by characters and bigrams.
bool is_cjk(char32_t c) {
  return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7AF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x3FFFF);
}

// Letters and digits of words; punctuation, symbols and spaces separate them.
bool is_word(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (c < 0xC0 || c == 0xD7 || c == 0xF7) return false;  // Latin-1 punctuation
  if (c >= 0x2000 && c <= 0x2BFF) return false;          // punctuation, symbols
  if (c >= 0x3000 && c <= 0x303F) return false;          // CJK punctuation
  if (c >= 0xFE10 && c <= 0xFE6F) return false;          // vertical/small forms
  if ((c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) ||
      (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65))
    return false;                                  // full-width punctuation
  if (c >= 0xFFF0 && c <= 0xFFFF) return false;    // specials
  if (c >= 0x1F000 && c <= 0x1FAFF) return false;  // emoji
  return true;
}

// `s` cut to at most kMaxTermBytes at a code point boundary.
std::string cut(std::string s) {
  if (s.size() <= kMaxTermBytes) return s;
  std::size_t n = kMaxTermBytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
  return s;
}

// Calls word(w) for each word (ASCII lowercased) and cjk(chars) for each CJK run of `text`.
template <typename Word, typename Cjk>
void scan(std::string_view text, Word&& word, Cjk&& cjk) {
  std::string w;
  std::vector<std::string_view> run;
  auto flush = [&] {
    if (!w.empty()) word(std::exchange(w, {}));
    if (!run.empty()) {
      cjk(run);
      run.clear();
    }
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t start = i;
    const char32_t c = next_code_point(text, i);
    if (is_cjk(c)) {
      if (!w.empty()) flush();
      run.push_back(text.substr(start, i - start));
    } else if (is_word(c)) {
      if (!run.empty()) flush();
      if (c >= 'A' && c <= 'Z')
        w += static_cast<char>(c - 'A' + 'a');
      else
        w.append(text.substr(start, i - start));
    } else {
      flush();
    }
  }
  flush();
}

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Bits of term_signature: 0-25 a term starts with that ASCII letter, 26-35 with that digit,
// 36-62 a hash of any other first character and of a non-digit term's first two characters.
constexpr int kSigHashed = 36, kSigHashBits = 27;

std::int64_t hashed_bit(std::string_view s) {
  std::uint32_t h = 2166136261U;
  for (unsigned char c : s) h = (h ^ c) * 16777619U;
  return std::int64_t{1} << (kSigHashed + static_cast<int>(h % kSigHashBits));
}

// The signature bits every term starting with `t` has (its first one and two characters).
std::int64_t head_bits(std::string_view t) {
  if (t.empty()) return 0;
  std::size_t i = 0;
  const char32_t first = next_code_point(t, i);
  std::int64_t bits = first >= 'a' && first <= 'z'   ? std::int64_t{1} << (first - 'a')
                      : first >= '0' && first <= '9' ? std::int64_t{1} << (26 + first - '0')
                                                     : hashed_bit(t.substr(0, i));
  if (i < t.size() && !(first >= '0' && first <= '9')) {
    next_code_point(t, i);
    bits |= hashed_bit(t.substr(0, i));
  }
  return bits;
}

// `w` reversed after kReversedMarker: the term that finds an all-digit word by its end.
std::string reversed_term(std::string_view w) {
  std::string out(1, kReversedMarker);
  out.append(w.rbegin(), w.rend());
  return cut(std::move(out));
}

std::string key_sql(std::string_view alias, const TermKey& k, std::vector<SqlValue>& params) {
  const std::string col = std::string(alias) + ".term";
  params.emplace_back(k.term);
  if (!k.prefix) return col + " = ?";
  params.emplace_back(prefix_end(k.term));
  if (k.alt.empty()) return col + " >= ? AND " + col + " < ?";
  // A digit key: the words starting with it or (reversed) ending with it.
  params.emplace_back(k.alt);
  params.emplace_back(prefix_end(k.alt));
  return "((" + col + " >= ? AND " + col + " < ?) OR (" + col + " >= ? AND " + col + " < ?))";
}

// " AND contains(o.terms, ?) > 0": the record's term list `o` has key `k` (either form of a
// digit key).
std::string list_has(std::string_view contains, const TermKey& k, std::vector<SqlValue>& params) {
  const std::string c(contains);
  params.emplace_back("\n" + k.term + (k.prefix ? "" : "\n"));
  if (k.alt.empty()) return " AND " + c + "(o.terms, ?) > 0";
  params.emplace_back("\n" + k.alt);
  return " AND (" + c + "(o.terms, ?) > 0 OR " + c + "(o.terms, ?) > 0)";
}

// The key's entries as one FROM-able statement "SELECT 1 FROM <table> d WHERE ... LIMIT <limit>"
// (`limit` an expression without parameters, or "?" for `cap`): for a digit key each form's
// range limited on its own, then the two together (an OR of the two would not be one range).
std::string key_rows(const std::string& table, const TermKey& k, const std::string& limit, int cap,
                     std::vector<SqlValue>& params) {
  const auto lim = [&] {
    if (limit == "?") params.emplace_back(static_cast<std::int64_t>(cap));
    return " LIMIT " + limit;
  };
  if (k.alt.empty()) {
    std::string sql = "SELECT 1 FROM " + table + " d WHERE " + key_sql("d", k, params);
    return sql + lim();
  }
  std::string sql;
  const TermKey forms[] = {{k.term, true}, {k.alt, true}};
  for (int i = 0; i < 2; ++i) {
    sql += std::string(i ? " UNION ALL " : "") + "SELECT 1 FROM (SELECT 1 FROM " + table +
           " d WHERE " + key_sql("d", forms[i], params);
    sql += lim() + ") fts_r" + std::to_string(i);
  }
  return sql + lim();
}

// The ids of key `k`'s entries whose record's signature has every bit of `sig` (0: every
// entry), as a statement (for a digit key its two ranges).
std::string key_ids(const std::string& table, const TermKey& k, std::int64_t sig,
                    std::vector<SqlValue>& params) {
  std::string sql;
  for (const std::string* start : {&k.term, &k.alt}) {
    if (start->empty()) continue;
    sql += std::string(sql.empty() ? "" : " UNION ALL ") + "SELECT d.id FROM " + table +
           " d WHERE d.term >= ? AND d.term < ?";
    params.emplace_back(*start);
    params.emplace_back(prefix_end(*start));
    if (sig != 0) {
      sql += " AND (d.sig & ?) = ?";
      params.emplace_back(sig);
      params.emplace_back(sig);
    }
  }
  return sql;
}

// The key that drives the lookup: an exact one before a prefix, the longest (most selective).
std::size_t driver_key(const std::vector<TermKey>& keys) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < keys.size(); ++i) {
    const auto& a = keys[i];
    const auto& b = keys[best];
    if (a.prefix != b.prefix ? !a.prefix : a.term.size() > b.term.size()) best = i;
  }
  return best;
}

// The keys but the driver, checked on the record's term list: " JOIN <lists> o ON o.id = d.id"
// and " AND contains(o.terms, ?) > 0" per key (one primary-key read per candidate record, then
// a substring test of a short text).
struct OtherKeys {
  std::string join, conditions;
};
OtherKeys other_keys_sql(std::string_view entity, const std::vector<TermKey>& keys,
                         std::size_t driver, std::string_view contains,
                         std::vector<SqlValue>& params) {
  OtherKeys out;
  if (keys.size() > 1) {
    // The entry's signature first: it rules out most candidates without reading a term list.
    const std::int64_t sig = keys_signature(keys, driver);
    out.conditions += " AND (d.sig & ?) = ?";
    params.emplace_back(sig);
    params.emplace_back(sig);
  }
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (i != driver) out.conditions += list_has(contains, keys[i], params);
  if (!out.conditions.empty()) out.join = " JOIN " + term_lists_table(entity) + " o ON o.id = d.id";
  return out;
}

// Rows in a statement for `n` rows: the next power of two (at most `most`), the missing ones
// repeating the last, so that few statement texts reach the prepared-statement caches.
std::size_t padded(std::size_t n, std::size_t most) {
  std::size_t p = 1;
  while (p < n && p < most) p *= 2;
  return p;
}

}  // namespace

std::vector<std::string> index_terms(std::string_view body) {
  std::vector<std::string> out;
  scan(
      body,
      [&](std::string w) {
        if (w.size() >= 5 && all_digits(w)) out.push_back(reversed_term(w));
        out.push_back(cut(std::move(w)));
      },
      [&](const std::vector<std::string_view>& run) {
        // Bigrams, and the last character alone: a character's prefix range then finds it
        // wherever it stands, at half the rows of indexing every character.
        for (std::size_t k = 0; k + 1 < run.size(); ++k)
          out.push_back(std::string(run[k]) + std::string(run[k + 1]));
        out.emplace_back(run.back());
      });
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::int64_t term_signature(std::span<const std::string> terms) {
  std::int64_t sig = 0;
  // Not the reversed digit terms: no key demands their bits (keys_signature).
  for (const auto& t : terms)
    if (!t.starts_with(kReversedMarker)) sig |= head_bits(t);
  return sig;
}

std::int64_t keys_signature(std::span<const TermKey> keys, std::size_t skip) {
  std::int64_t sig = 0;
  for (std::size_t i = 0; i < keys.size(); ++i)
    // A digit key finds a record by either form, which share no bit: it demands none.
    if (i != skip && keys[i].alt.empty()) sig |= head_bits(keys[i].term);
  return sig;
}

std::vector<TermKey> query_keys(std::string_view query) {
  std::vector<TermKey> keys;
  auto add = [&](TermKey k) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(std::move(k));
  };
  for (std::string_view term : split_terms(query)) {
    scan(
        term,
        [&](std::string w) {
          std::string alt = all_digits(w) ? reversed_term(w) : std::string();
          add({cut(std::move(w)), true, std::move(alt)});
        },
        [&](const std::vector<std::string_view>& run) {
          if (run.size() == 1) add({std::string(run[0]), true});
          for (std::size_t k = 0; k + 1 < run.size(); ++k)
            add({std::string(run[k]) + std::string(run[k + 1]), false});
        });
  }
  return keys;
}

std::vector<TermKey> word_keys(std::string_view text) {
  // query_keys' keys, each exact: whole words (a number as written, not reversed), CJK bigrams
  // and a lone CJK character (the last character of a longer run is not a key: the body holds
  // that run's own last character only)
  std::vector<TermKey> keys;
  for (auto& k : query_keys(text)) {
    TermKey exact{std::move(k.term), false};
    if (std::find(keys.begin(), keys.end(), exact) == keys.end()) keys.push_back(std::move(exact));
  }
  return keys;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  // The last code point's successor (UTF-8's byte order is code point order), so that the bound
  // is valid UTF-8: PostgreSQL refuses text that is not (incrementing the last byte of 长,
  // E9 95 BF, gave E9 95 C0). A code point without a successor is dropped, and the one before
  // it is incremented.
  while (!end.empty()) {
    std::size_t start = end.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(end[start]) & 0xC0) == 0x80) --start;
    const auto lead = static_cast<unsigned char>(end[start]);
    const std::size_t len = end.size() - start;
    const std::size_t want = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (lead >= 0xF8 || (lead & 0xC0) == 0x80 || len != want) {
      // Not UTF-8: the last byte's successor (SQLite compares bytes; PostgreSQL never gets here).
      while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xFF) end.pop_back();
      if (end.empty()) return "\xFF";
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    std::uint32_t cp = want == 1 ? lead : lead & (0xFF >> (want + 1));
    for (std::size_t i = 1; i < want; ++i)
      cp = (cp << 6) | (static_cast<unsigned char>(end[start + i]) & 0x3F);
    end.resize(start);
    ++cp;
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xE000;  // no surrogates in UTF-8
    if (cp > 0x10FFFF) continue;
    append_utf8(end, cp);
    return end;
  }
  return "\xFF";  // only U+10FFFF: above every UTF-8 string
}

std::string terms_condition(std::string_view entity, std::string_view query,
                            std::string_view contains, std::vector<SqlValue>& params) {
  auto table = fts_table(entity);
  auto keys = query_keys(query);
  if (!table.ok() || keys.empty()) return "1 = 0";
  const std::size_t driver = driver_key(keys);
  std::string sql = "\"id\" IN (SELECT d.id FROM " + *table + " d";
  std::vector<SqlValue> driver_params;
  const std::string where = key_sql("d", keys[driver], driver_params);
  std::vector<SqlValue> other_params;
  OtherKeys others = other_keys_sql(entity, keys, driver, contains, other_params);
  params.insert(params.end(), driver_params.begin(), driver_params.end());
  params.insert(params.end(), other_params.begin(), other_params.end());
  return sql + others.join + " WHERE " + where + others.conditions + ")";
}

std::string terms_key_counts(std::string_view entity, std::string_view query, int cap,
                             std::vector<SqlValue>& params) {
  auto table = fts_table(entity);
  auto keys = query_keys(query);
  if (!table.ok() || keys.empty() || cap <= 0) return {};
  std::string sql = "SELECT ";
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i) sql += ", ";
    sql += "(SELECT count(*) FROM (" + key_rows(*table, keys[i], "?", cap, params) + ") c" +
           std::to_string(i) + ")";
  }
  return sql;
}

std::string terms_key_counts_falling(std::string_view entity, std::string_view query, int cap,
                                     std::vector<SqlValue>& params) {
  auto table = fts_table(entity);
  auto keys = query_keys(query);
  if (!table.ok() || keys.empty() || cap <= 0) return {};
  // WITH fts_kN(n) AS (… LIMIT ?), fts_kN-1(n) AS (… LIMIT (SELECT n FROM fts_kN)), …: each
  // count's LIMIT is the one before it, itself never above the ones before that, so the fewest
  // so far (an uncorrelated subquery: SQLite takes no column of the query for a LIMIT, and
  // evaluates each item once).
  std::string sql = "WITH ";
  const auto name = [](std::size_t i) { return "fts_k" + std::to_string(i); };
  for (std::size_t n = keys.size(); n-- > 0;) {
    if (n + 1 != keys.size()) sql += ", ";
    const std::string limit = n + 1 == keys.size() ? "?" : "(SELECT n FROM " + name(n + 1) + ")";
    sql += name(n) + "(n) AS (SELECT count(*) FROM (" +
           key_rows(*table, keys[n], limit, cap, params) + ") c)";
  }
  sql += " SELECT ";
  for (std::size_t i = 0; i < keys.size(); ++i) sql += (i ? ", " : "") + name(i) + ".n";
  sql += " FROM ";
  for (std::size_t i = 0; i < keys.size(); ++i) sql += (i ? ", " : "") + name(i);
  return sql;
}

std::string terms_pair_counts(std::string_view entity, std::string_view query, int first,
                              int second, int cap, std::vector<SqlValue>& params) {
  auto table = fts_table(entity);
  auto keys = query_keys(query);
  const auto valid = [&](int k) { return k >= 0 && static_cast<std::size_t>(k) < keys.size(); };
  if (!table.ok() || !valid(first) || !valid(second) || first == second || cap <= 0) return {};
  // fts_p1's LIMIT one more than fts_p0's count (an uncorrelated subquery, as in
  // terms_key_counts_falling): enough to tell whether `second` has more entries than `first`.
  // In turn (each appends its parameters; the operands of one + expression are not ordered).
  const std::string a = key_rows(*table, keys[static_cast<std::size_t>(first)], "?", cap, params);
  const std::string b = key_rows(*table, keys[static_cast<std::size_t>(second)],
                                 "(SELECT m FROM fts_p0)", cap, params);
  return "WITH fts_p0(n, m) AS (SELECT count(*), count(*) + 1 FROM (" + a +
         ") c), fts_p1(n) AS (SELECT count(*) FROM (" + b +
         ") c) SELECT fts_p0.n, fts_p1.n FROM fts_p0, fts_p1";
}

namespace {

// The entries of key `k` in index order (term, then newest id first) after `after` (none: from
// the start) as a FROM item with columns fts_term, fts_id and fts_sig, ending with `limit`
// ("LIMIT ?" or "LIMIT 1 OFFSET ?", its value `n`). One ordered, limited range of the
// (term, id DESC) key per part: the rest of the term `after` stopped in, then the terms after it
// (a single OR condition would not be a range). `written_order`: the engine runs a UNION ALL's
// parts in turn, each in its own order (SQLite), so the parts need no ORDER BY of their own,
// which SQLite would carry out with two sorts of the whole window (it does not see that each
// part comes in the key's order); elsewhere the ORDER BY, which PostgreSQL merges without a sort.
std::string key_entries(const std::string& table, const TermKey& k, const FtsPosition* after,
                        const std::string& limit, int n, bool written_order,
                        std::vector<SqlValue>& params) {
  auto part = [&](const std::string& where, std::vector<SqlValue> where_params,
                  const std::string& part_limit, std::int64_t value) {
    params.insert(params.end(), where_params.begin(), where_params.end());
    params.emplace_back(value);
    return "SELECT d.term AS fts_term, d.id AS fts_id, d.sig AS fts_sig FROM " + table +
           " d WHERE " + where + " ORDER BY d.term, d.id DESC " + part_limit;
  };
  // One term as a range of one (PostgreSQL): with `d.term = ?` its planner takes the term for a
  // constant, drops it from the order the subquery gives, and then sorts the joined window for
  // the outer ORDER BY fts_term, fts_id DESC instead of stopping at its LIMIT.
  const std::string one_term = written_order ? "d.term = ?" : "d.term >= ? AND d.term <= ?";
  const auto term_params = [&](const std::string& term, std::vector<SqlValue> more) {
    std::vector<SqlValue> out{term};
    if (!written_order) out.emplace_back(term);
    out.insert(out.end(), more.begin(), more.end());
    return out;
  };
  if (after == nullptr && k.alt.empty()) {
    if (!k.prefix) return "(" + part(one_term, term_params(k.term, {}), limit, n) + ")";
    std::vector<SqlValue> p;
    const std::string where = key_sql("d", k, p);
    return "(" + part(where, std::move(p), limit, n) + ")";
  }
  if (!k.prefix)
    return "(" + part(one_term + " AND d.id < ?", term_params(after->term, {after->id}), limit, n) +
           ")";
  // Each part reads at most the entries the whole can need (an OFFSET's row is among the first
  // n + 1).
  const std::int64_t most = limit == "LIMIT ?" ? n : std::int64_t{n} + 1;
  // Named in turn: each call appends its parameters, in the order of the text. The rest of the
  // term `after` stopped in, then per range of the key (a digit key's reversed form sorts after
  // its own: kReversedMarker is above every digit) the part after `after`.
  std::vector<std::string> parts;
  if (after != nullptr)
    parts.push_back(
        part(one_term + " AND d.id < ?", term_params(after->term, {after->id}), "LIMIT ?", most));
  for (const std::string* start : {&k.term, &k.alt}) {
    if (start->empty()) continue;
    const std::string end = prefix_end(*start);
    if (after == nullptr || after->term < *start)
      parts.push_back(part("d.term >= ? AND d.term < ?", {*start, end}, "LIMIT ?", most));
    else if (after->term < end)
      parts.push_back(part("d.term > ? AND d.term < ?", {after->term, end}, "LIMIT ?", most));
  }
  std::string sql = "(SELECT * FROM (" + parts[0] + ") fts_a";
  for (std::size_t i = 1; i < parts.size(); ++i)
    sql += " UNION ALL SELECT * FROM (" + parts[i] + ") fts_" + static_cast<char>('a' + i);
  sql += std::string(written_order ? " " : " ORDER BY fts_term, fts_id DESC ") + limit + ")";
  params.emplace_back(static_cast<std::int64_t>(n));
  return sql;
}

// SQLite's rapport_term_codes(entity, id, a, b, n, writer) of the page's entry p with the codes
// `codes` ("?, ?" or "?, -1") and the row of the last term write in the statement's snapshot
// (each subquery run once per statement): the codes answer only for a snapshot they cover.
std::string codes_call(std::string_view entity, std::string_view codes) {
  const std::string writes(kTermWritesTable);
  return "rapport_term_codes('" + std::string(entity) + "', p.fts_id, " + std::string(codes) +
         ", (SELECT n FROM " + writes + "), (SELECT writer FROM " + writes + "))";
}

std::size_t chosen_driver(const std::vector<TermKey>& keys, int hint) {
  return hint >= 0 && static_cast<std::size_t>(hint) < keys.size() ? static_cast<std::size_t>(hint)
                                                                   : driver_key(keys);
}

}  // namespace

std::string terms_page(std::string_view entity, std::string_view query, int driver_hint,
                       const FtsPosition* after, int page, std::string_view contains,
                       bool written_order, bool key_lookups, std::vector<SqlValue>& params) {
  auto table = fts_table(entity);
  auto keys = query_keys(query);
  if (!table.ok() || keys.empty() || page <= 0) return {};
  const std::size_t driver = chosen_driver(keys, driver_hint);
  const TermKey& k = keys[driver];
  // The other keys, tested on each entry's signature and then, only where it has their bits,
  // on its term list: fts_match says whether all are there. Outside the LIMIT, so that a page
  // costs `page` entries however few of them match; the signature spares most of them the
  // term-list read (a CASE evaluates its branches in order). When every other key is an exact
  // term (Chinese bigrams: "重庆海泰建" driven by 庆海), each is looked up in the index itself,
  // one (term, id) key read per key: the same answer (a record's term list holds exactly its
  // index terms) from the few index pages of that term, where a term-list read is a random
  // row of a table of a million (0.6 instead of 3 ms of SQLite for 641 entries of 庆海, whose
  // signatures hardly rule out anything: a Han record's many terms set most hashed bits).
  std::string sql = "(SELECT p.fts_term, p.fts_id, ";
  if (keys.size() == 1) {
    sql += "1 AS fts_match FROM ";
  } else {
    const std::int64_t sig = keys_signature(keys, driver);
    sql += "CASE WHEN (p.fts_sig & ?) <> ? THEN 0 WHEN ";
    params.emplace_back(sig);
    params.emplace_back(sig);
    bool others_exact = true;
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (i != driver && keys[i].prefix) others_exact = false;
    if (others_exact) {
      // From the last key to the first: AND stops at the first key an entry lacks, and a
      // company name's first bigrams are its city, which most entries of the driving key share
      // ("哈尔滨海嘉汽" driven by 滨海, 620 entries at 1M accounts: 哈尔 and 尔滨 hold for nearly
      // every one, 嘉汽 for 2; 2.1 instead of 7.5 ms in the sqlite3 module).
      bool first = true;
      for (std::size_t i = keys.size(); i-- > 0;) {
        if (i == driver) continue;
        sql += std::string(first ? "" : " AND ") + "EXISTS (SELECT 1 FROM " + *table +
               " e WHERE e.term = ? AND e.id = p.fts_id)";
        params.emplace_back(keys[i].term);
        first = false;
      }
    } else {
      const std::size_t other = driver == 0 ? 1 : 0;
      const TermKey& o = keys[other];
      const bool digits = !o.alt.empty();
      if (key_lookups && keys.size() == 2 && !digits) {
        // One other key, a prefix of at most kFewKeyTerms distinct terms (a Chinese given
        // name's character, "王 芳": its terms are 芳 alone): a (term, id) lookup per term in the
        // index instead of the term list, as for exact keys above (a few hot index pages instead
        // of a random row of the term-list table: 2.1 instead of 8.8 ms for the 8,192 entries of
        // 王 at 300,000 accounts). Its terms are found by a chain of min(term) lookups, one per
        // term, up to one more than kFewKeyTerms; with more, the set below or the term list.
        const std::string table_name = *table;
        const auto terms_of_key = [&] {
          params.emplace_back(o.term);
          params.emplace_back(prefix_end(o.term));
          params.emplace_back(prefix_end(o.term));
          params.emplace_back(static_cast<std::int64_t>(kFewKeyTerms));
          return "SELECT fts_v.term FROM (WITH RECURSIVE fts_v(term, n) AS (SELECT (SELECT "
                 "min(d.term) FROM " +
                 table_name +
                 " d WHERE d.term >= ? AND d.term < ?), 1 UNION ALL SELECT (SELECT min(d.term) "
                 "FROM " +
                 table_name +
                 " d WHERE d.term > fts_v.term AND d.term < ?), fts_v.n + 1 FROM fts_v WHERE "
                 "fts_v.term IS NOT NULL AND fts_v.n <= ?) SELECT term FROM fts_v WHERE term IS "
                 "NOT NULL) fts_v";
        };
        // A Chinese character ("何 雪": 雪, in most Han records' signatures): first the
        // record's first-character codes in memory (storage/sqlite/term_codes.h, 2: not built
        // yet), which rule out the records without a term starting with it.
        if (const int c = sqlite::TermCodes::char_code(o.term);
            c >= 0 && code_points(o.term) == 1) {
          sql += codes_call(entity, "?, -1") + " = 0 THEN 0 WHEN ";
          params.emplace_back(static_cast<std::int64_t>(c));
        }
        sql += "(SELECT count(*) FROM (" + terms_of_key() + ") fts_c) <= ?";
        params.emplace_back(static_cast<std::int64_t>(kFewKeyTerms));
        sql += " THEN (CASE WHEN EXISTS (SELECT 1 FROM " + table_name + " e WHERE e.term IN (" +
               terms_of_key() + ") AND e.id = p.fts_id) THEN 1 ELSE 0 END) WHEN ";
      }
      if (key_lookups && keys.size() == 2 && (!digits || o.term.size() >= kSmallKeyDigits)) {
        // One other key with few entries: a number fragment of at least kSmallKeyDigits digits
        // ("zhou 114", "zhao 179"), or a prefix of more than kFewKeyTerms terms ("xu" in a
        // window of "8655"). A digit key demands no signature bit, and a common word's bits rule
        // out few entries, so without this most entries of a window would read their term lists
        // (8,192 random rows of the term-list table when the matches are few: 40 ms at 300,000
        // accounts, 33 ms for "zhao 179" at 1M). Instead the entry's record is looked up in a
        // set: the ids of the key's entries whose record's signature has every key's bits (the
        // driver's too, which a match has: 12-30% of a number fragment's entries for a name),
        // read once per statement (an index range; the same answer: a record's term list holds
        // exactly its index terms, and each entry carries its record's signature). The key's
        // entries are counted first, once per statement, up to one more than a cap:
        // - a number fragment of at most kSmallKeyEntries: the set from the first entry on;
        // - one of at most kSmallNumberEntries (a mobile's first three digits at 1M), or a
        //   prefix of at most kSmallKeyEntries: only past the window's kSetAfterEntries-th
        //   entry, whose position is read once (an index range of that many entries). A window
        //   that finds its matches among its first entries (an area code with a name of that
        //   city, "chen 0571") reads their term lists as before and never counts or builds the
        //   set; one that reads on (few matches) reads the rest against the set.
        // A shorter fragment ("zhang 13") is never that rare, and its matches are dense enough
        // that the window stops early. In turn: each appends its parameters in the order of the
        // text.
        const std::int64_t every_bit = keys_signature(keys, keys.size());
        const auto count_at_most = [&](int cap) {
          sql += "(SELECT count(*) FROM (" + key_rows(*table, o, "?", cap + 1, params) +
                 ") fts_n) <= ?";
          params.emplace_back(static_cast<std::int64_t>(cap));
        };
        const auto in_set = [&] {
          sql += " THEN (CASE WHEN p.fts_id IN (" + key_ids(*table, o, every_bit, params) +
                 ") THEN 1 ELSE 0 END) WHEN ";
        };
        if (digits) {
          count_at_most(kSmallKeyEntries);
          in_set();
          // A number fragment of at least three digits: the record's number codes in memory
          // (storage/sqlite/term_codes.h), a superset of its terms' number starts and ends, rule
          // out nearly every entry ("zhao 179": a record of zhao without a number starting with
          // 179 or ending with 971), and the few left are checked on their term lists. Before the
          // codes are built (2: not known), the set or the term list below.
          const std::string call = codes_call(entity, "?, ?");
          const int start = sqlite::TermCodes::code(o.term, false);
          const int end = sqlite::TermCodes::code(std::string_view(o.alt).substr(1), true);
          sql += call + " = 0 THEN 0 WHEN " + call + " = 1 THEN (CASE WHEN EXISTS (SELECT 1 FROM " +
                 term_lists_table(entity) + " o WHERE o.id = p.fts_id";
          for (int i = 0; i < 2; ++i) {
            params.emplace_back(static_cast<std::int64_t>(start));
            params.emplace_back(static_cast<std::int64_t>(end));
          }
          for (std::size_t i = 0; i < keys.size(); ++i)
            if (i != driver) sql += list_has(contains, keys[i], params);
          sql += ") THEN 1 ELSE 0 END) WHEN ";
        }
        // Past the window's kSetAfterEntries-th entry in index order (term, then id falling);
        // no such entry (a shorter key): never.
        sql += "(p.fts_term, -p.fts_id) > (SELECT fts_k.fts_term, -fts_k.fts_id FROM " +
               key_entries(*table, k, after, "LIMIT 1 OFFSET ?", kSetAfterEntries - 1,
                           written_order, params) +
               " fts_k) AND ";
        count_at_most(digits ? kSmallNumberEntries : kSmallKeyEntries);
        in_set();
      }
      sql += "EXISTS (SELECT 1 FROM " + term_lists_table(entity) + " o WHERE o.id = p.fts_id";
      for (std::size_t i = 0; i < keys.size(); ++i)
        if (i != driver) sql += list_has(contains, keys[i], params);
      sql += ")";
    }
    sql += " THEN 1 ELSE 0 END AS fts_match FROM ";
  }
  sql += key_entries(*table, k, after, "LIMIT ?", page, written_order, params) + " p";
  return sql + ")";
}

std::string terms_window_end(std::string_view entity, std::string_view query, int driver_hint,
                             const FtsPosition* after, int page, bool written_order,
                             std::vector<SqlValue>& params) {
  auto table = fts_table(entity);
  auto keys = query_keys(query);
  if (!table.ok() || keys.empty() || page <= 0) return {};
  const TermKey& k = keys[chosen_driver(keys, driver_hint)];
  return "SELECT e.fts_term, e.fts_id FROM " +
         key_entries(*table, k, after, "LIMIT 1 OFFSET ?", page - 1, written_order, params) + " e";
}

std::string terms_scoped(std::string_view entity, std::string_view query, std::string_view ids_sql,
                         std::span<const SqlValue> ids_params, std::string_view contains,
                         std::vector<SqlValue>& params) {
  auto table = fts_table(entity);
  auto keys = query_keys(query);
  if (!table.ok() || keys.empty()) return {};
  const TermKey& k = keys[driver_key(keys)];
  const std::string c(contains);
  // A digit key's own form where the record has it, else its reversed form.
  const std::string at = k.alt.empty()
                             ? c + "(o.terms, ?)"
                             : "coalesce(nullif(" + c + "(o.terms, ?), 0), " + c + "(o.terms, ?))";
  const std::string first = at + " + 1";
  // The term list is sorted: the first term the key finds in it is the record's first entry
  // of that key in the index (term from just after the key's newline to the next newline).
  std::string sql = "(SELECT substr(o.terms, " + first + ", " + c + "(substr(o.terms, " + first +
                    "), ?) - 1) AS fts_term, o.id AS fts_id, 1 AS fts_match FROM " +
                    term_lists_table(entity) + " o WHERE o.id IN (" + std::string(ids_sql) + ")";
  for (int i = 0; i < 2; ++i) {
    params.emplace_back("\n" + k.term + (k.prefix ? "" : "\n"));
    if (!k.alt.empty()) params.emplace_back("\n" + k.alt);
  }
  params.emplace_back(std::string("\n"));
  params.insert(params.end(), ids_params.begin(), ids_params.end());
  for (const auto& key : keys) sql += list_has(contains, key, params);
  return sql + ")";
}

std::string terms_search_sql(std::string_view entity, const std::vector<TermKey>& keys, int limit,
                             std::string_view contains, std::vector<SqlValue>& params) {
  const std::size_t driver = driver_key(keys);
  std::vector<SqlValue> driver_params;
  const std::string where = key_sql("d", keys[driver], driver_params);
  std::vector<SqlValue> other_params;
  OtherKeys others = other_keys_sql(entity, keys, driver, contains, other_params);
  params.insert(params.end(), driver_params.begin(), driver_params.end());
  params.insert(params.end(), other_params.begin(), other_params.end());
  params.emplace_back(static_cast<std::int64_t>(limit));
  return "SELECT d.id FROM " + *fts_table(entity) + " d" + others.join + " WHERE " + where +
         others.conditions + " GROUP BY d.id ORDER BY MIN(d.term), d.id DESC LIMIT ?";
}

Status remove_terms(std::string_view entity, std::span<const std::int64_t> ids, Tx& tx) {
  RP_ASSIGN(std::string table, fts_table(entity));
  const std::string lists = term_lists_table(entity);
  constexpr std::size_t kIdChunk = 256, kTermChunk = 512;
  std::vector<SqlValue> params;
  for (std::size_t at = 0, n = 0; at < ids.size(); at += n) {
    n = std::min(kIdChunk, ids.size() - at);
    const std::size_t shape = padded(n, kIdChunk);
    std::string in;
    params.clear();
    for (std::size_t i = 0; i < shape; ++i) {
      in += i ? ",?" : "?";
      params.emplace_back(ids[at + std::min(i, n - 1)]);
    }
    RP_ASSIGN(Rows found,
              tx.query("SELECT id, terms FROM " + lists + " WHERE id IN (" + in + ")", params));
    for (const auto& row : found.rows) {
      const auto id = std::get<std::int64_t>(row[0]);
      const auto& text = std::get<std::string>(row[1]);
      std::vector<std::string_view> terms;
      for (std::size_t p = 1; p < text.size();) {
        const std::size_t end = text.find('\n', p);
        if (end == std::string::npos) break;
        if (end > p) terms.push_back(std::string_view(text).substr(p, end - p));
        p = end + 1;
      }
      for (std::size_t t = 0, m = 0; t < terms.size(); t += m) {
        m = std::min(kTermChunk, terms.size() - t);
        const std::size_t tshape = padded(m, kTermChunk);
        std::vector<SqlValue> tp{id};
        std::string tin;
        for (std::size_t i = 0; i < tshape; ++i) {
          tin += i ? ",?" : "?";
          tp.emplace_back(std::string(terms[t + std::min(i, m - 1)]));
        }
        RP_TRY(exec_status(tx, "DELETE FROM " + table + " WHERE id = ? AND term IN (" + tin + ")",
                           tp));
      }
    }
    RP_TRY(exec_status(tx, "DELETE FROM " + lists + " WHERE id IN (" + in + ")", params));
  }
  return {};
}

namespace {

// A record's terms, term list and signature (see Tx::FtsTerms).
Tx::FtsTerms terms_of(std::string_view text) {
  Tx::FtsTerms out;
  out.terms = index_terms(text);
  out.list = "\n";
  for (const auto& t : out.terms) {
    out.list += t;
    out.list += '\n';
  }
  out.sig = term_signature(out.terms);
  return out;
}

std::string staging_table(std::string_view entity) {
  return "\"" + std::string(entity) + "_terms_in\"";
}

// put_terms of new records into `table` (the term table or the staging table).
Status insert_terms(std::string_view entity, const std::string& table,
                    const std::vector<const Tx::FtsRow*>& unique, std::string_view insert,
                    std::string_view insert_suffix, Tx& tx, bool lists_only = false) {
  // Each record's terms, then every (term, record) in term order, as views into them.
  struct TermRow {
    std::string_view term;
    const Tx::FtsRow* row;
    std::int64_t sig;
  };
  // The terms, lists and signatures of the records, and the sort of their term rows, are pure
  // work: on core/parallel.h's worker pool, so that the writer (which runs this at COMMIT) only
  // binds and steps (about a third of put_terms' CPU at 100,000 imported rows). A create brings
  // its record's terms worked out before it waited for the writer (FtsRow::terms).
  const std::size_t records = unique.size();
  std::vector<Tx::FtsTerms> computed(records);
  std::vector<const Tx::FtsTerms*> of(records);
  parallel::for_ranges(records, [&](std::size_t begin, std::size_t end) {
    for (std::size_t k = begin; k < end; ++k) {
      if (unique[k]->terms) {
        of[k] = unique[k]->terms.get();
        continue;
      }
      computed[k] = terms_of(unique[k]->text);
      of[k] = &computed[k];
    }
  });
  for (std::size_t k = 0; k < records; ++k) tx.fts_noted(entity, unique[k]->id, of[k]->list);
  std::vector<std::size_t> first(records + 1, 0);  // the records' first term rows
  for (std::size_t k = 0; k < records; ++k) first[k + 1] = first[k] + of[k]->terms.size();
  std::vector<TermRow> terms(lists_only ? 0 : first[records]);
  if (!lists_only)
    parallel::for_ranges(records, [&](std::size_t begin, std::size_t end) {
      for (std::size_t k = begin; k < end; ++k)
        for (std::size_t t = 0; t < of[k]->terms.size(); ++t)
          terms[first[k] + t] = {of[k]->terms[t], unique[k], of[k]->sig};
    });
  const auto before = [](const TermRow& a, const TermRow& b) {
    const int c = a.term.compare(b.term);
    return c != 0 ? c < 0 : a.row->id < b.row->id;
  };
  parallel::sort(terms, before);  // one part per thread, then the parts merged
  // Statements of 512 rows and the rest in power-of-two sizes (few distinct texts for the
  // statement cache), every row a real one: padding a statement by repeating its last row cost
  // a B-tree seek per repeat, up to as many as the real rows of a small batch.
  std::vector<SqlValue> params;
  constexpr std::size_t kInsertChunk = 512;
  for (std::size_t at = 0, n = 0; at < terms.size(); at += n) {
    n = rows_in_next_statement(terms.size() - at, kInsertChunk);
    params.clear();
    params.reserve(4 * n);
    std::string sql = std::string(insert) + " " + table + " (term, id, account_id, sig) VALUES ";
    for (std::size_t i = 0; i < n; ++i) {
      const TermRow& t = terms[at + i];
      sql += i ? ",(?,?,?,?)" : "(?,?,?,?)";
      params.emplace_back(std::string(t.term));
      params.emplace_back(t.row->id);
      params.push_back(t.row->account_id);
      params.emplace_back(t.sig);
    }
    RP_TRY(exec_status(tx, sql.append(insert_suffix), params));
  }
  constexpr std::size_t kListChunk = 256;
  for (std::size_t at = 0, n = 0; at < unique.size(); at += n) {
    n = rows_in_next_statement(unique.size() - at, kListChunk);
    params.clear();
    std::string sql =
        std::string(insert) + " " + term_lists_table(entity) + " (id, account_id, terms) VALUES ";
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t k = at + i;
      sql += i ? ",(?,?,?)" : "(?,?,?)";
      params.emplace_back(unique[k]->id);
      params.push_back(unique[k]->account_id);
      params.emplace_back(of[k]->list);
    }
    RP_TRY(exec_status(tx, sql.append(insert_suffix), params));
  }
  return {};
}

}  // namespace

Status put_terms(std::string_view entity, std::span<const Tx::FtsRow> rows, bool fresh,
                 std::string_view insert, std::string_view insert_suffix, Tx& tx, bool lists_only) {
  RP_ASSIGN(std::string table, fts_table(entity));
  const auto unique = last_per_id(rows);
  if (!fresh) {
    std::vector<std::int64_t> ids;
    ids.reserve(unique.size());
    for (const auto* r : unique) ids.push_back(r->id);
    RP_TRY(remove_terms(entity, ids, tx));
  }
  return insert_terms(entity, table, unique, insert, insert_suffix, tx, lists_only);
}

Status load_terms(std::string_view entity, std::span<const Tx::FtsRow> rows,
                  std::string_view insert, std::string_view insert_suffix, Tx& tx) {
  RP_TRY(fts_table(entity));
  const std::string staging = staging_table(entity);
  RP_TRY(exec_status(
      tx,
      "CREATE TABLE IF NOT EXISTS " + staging +
          " (term TEXT NOT NULL, id INTEGER NOT NULL, account_id INTEGER, sig INTEGER NOT NULL)",
      {}));
  return insert_terms(entity, staging, last_per_id(rows), insert, insert_suffix, tx);
}

Status finish_load_terms(std::string_view entity, std::string_view insert,
                         std::string_view insert_suffix, Tx& tx) {
  RP_ASSIGN(std::string table, fts_table(entity));
  const std::string staging = staging_table(entity);
  RP_TRY(exec_status(
      tx,
      "CREATE TABLE IF NOT EXISTS " + staging +
          " (term TEXT NOT NULL, id INTEGER NOT NULL, account_id INTEGER, sig INTEGER NOT NULL)",
      {}));
  RP_TRY(exec_status(tx,
                     std::string(insert) + " " + table +
                         " (term, id, account_id, sig) SELECT term, id, account_id, sig FROM " +
                         staging + " ORDER BY term, id DESC" + std::string(insert_suffix),
                     {}));
  return exec_status(tx, "DROP TABLE " + staging, {});
}

Status clear_terms(std::string_view entity, const std::vector<std::string>& create, Tx& tx) {
  RP_ASSIGN(std::string table, fts_table(entity));
  RP_TRY(exec_status(tx, "DROP TABLE IF EXISTS " + table, {}));
  RP_TRY(exec_status(tx, "DROP TABLE IF EXISTS " + term_lists_table(entity), {}));
  RP_TRY(exec_status(tx, "DROP TABLE IF EXISTS " + staging_table(entity), {}));
  for (const auto& sql : create) RP_TRY(exec_status(tx, sql, {}));
  return {};
}

}  // namespace rapport::storage::detail

namespace rapport::storage {

std::shared_ptr<const Tx::FtsTerms> fts_terms_of(std::string_view text) {
  return std::make_shared<const Tx::FtsTerms>(detail::terms_of(text));
}

bool fts_text_matches(std::string_view text, std::string_view query) {
  const auto keys = detail::query_keys(query);
  if (keys.empty()) return false;
  const auto terms = detail::index_terms(text);
  const auto has = [&](const std::string& term, bool prefix) {
    auto it = std::lower_bound(terms.begin(), terms.end(), term);
    return it != terms.end() && (prefix ? it->starts_with(term) : *it == term);
  };
  return std::all_of(keys.begin(), keys.end(), [&](const detail::TermKey& k) {
    return has(k.term, k.prefix) || (!k.alt.empty() && has(k.alt, true));
  });
}

bool fts_keys_exact(std::string_view query) {
  const auto keys = detail::query_keys(query);
  return !keys.empty() &&
         std::none_of(keys.begin(), keys.end(), [](const detail::TermKey& k) { return k.prefix; });
}

std::size_t fts_rarest_key(std::span<const std::int64_t> counts) {
  std::size_t rarest = counts.empty() ? 0 : counts.size() - 1;
  for (std::size_t i = rarest; i-- > 0;)
    if (counts[i] < counts[rarest]) rarest = i;
  return rarest;
}

std::vector<int> fts_driver_order(std::string_view query) {
  const auto keys = detail::query_keys(query);
  std::vector<int> order;
  if (keys.empty()) return order;
  const auto first = static_cast<int>(detail::driver_key(keys));
  order.push_back(first);
  for (int k = 0; k < static_cast<int>(keys.size()); ++k)
    if (k != first) order.push_back(k);
  return order;
}

}  // namespace rapport::storage

namespace rapport::storage {

bool PendingTerms::begin(std::string_view entity) {
  std::lock_guard lock(mu_);
  auto [it, added] = entries_.try_emplace(std::string(entity));
  if (added) count_.fetch_add(1);
  return added;
}

void PendingTerms::end(std::string_view entity) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(entity);
  if (it == entries_.end()) return;
  entries_.erase(it);
  count_.fetch_sub(1);
}

bool PendingTerms::pending(std::string_view entity) const {
  if (count_.load() == 0) return false;
  std::lock_guard lock(mu_);
  return entries_.find(entity) != entries_.end();
}

void PendingTerms::touched(std::string_view entity, std::int64_t id) {
  if (count_.load() == 0) return;
  std::lock_guard lock(mu_);
  auto it = entries_.find(entity);
  if (it != entries_.end()) it->second.insert(id);
}

std::vector<std::int64_t> PendingTerms::take_touched(std::string_view entity) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(entity);
  if (it == entries_.end()) return {};
  std::vector<std::int64_t> out(it->second.begin(), it->second.end());
  it->second.clear();
  return out;
}

namespace {

// The term lists of the records a build covers, in id order, in blocks of 16 MiB that never
// move (a growing buffer would hold its old and new copy at once: 1M accounts' lists are
// ~300 MB).
struct HeldLists {
  static constexpr std::size_t kBlock = std::size_t{16} << 20;
  std::vector<std::unique_ptr<char[]>> blocks;
  std::size_t left = 0;                // free bytes of the last block
  std::vector<std::int64_t> ids;       // ascending
  std::vector<const char*> at;         // a list's first byte
  std::vector<std::uint32_t> size;     // its bytes (0: the record is gone)
  std::vector<std::int64_t> accounts;  // account_id, or kNoAccount
  std::vector<std::int64_t> sigs;
  std::vector<std::uint32_t> next;  // next_range_rows: where to read a list on
  bool ordered = true;              // every list's terms in ascending order (as written)
  static constexpr std::int64_t kNoAccount = std::numeric_limits<std::int64_t>::min();

  std::string_view list(std::size_t k) const { return {at[k], size[k]}; }
  const char* copy(std::string_view terms) {
    if (terms.size() > left) {
      const std::size_t n = std::max(kBlock, terms.size());
      blocks.push_back(std::make_unique_for_overwrite<char[]>(n));
      left = n;
    }
    char* to = blocks.back().get() + (terms.size() > kBlock ? 0 : kBlock - left);
    if (terms.size() > kBlock)
      left = 0;
    else
      left -= terms.size();
    std::memcpy(to, terms.data(), terms.size());
    return to;
  }
  // Sets record k's list (copied into the blocks) and signature.
  void set(std::size_t k, const SqlView& account, std::string_view terms) {
    at[k] = copy(terms);
    size[k] = static_cast<std::uint32_t>(terms.size());
    const auto* a = std::get_if<std::int64_t>(&account);
    accounts[k] = a ? *a : kNoAccount;
    next[k] = 0;
    std::int64_t sig = 0;
    std::string_view last;
    for_each_term(k, [&](std::string_view t) {
      if (!t.starts_with(detail::kReversedMarker)) sig |= detail::head_bits(t);
      if (t < last) ordered = false;
      last = t;
    });
    sigs[k] = sig;
  }
  void add(std::int64_t id, const SqlView& account, std::string_view terms) {
    ids.push_back(id);
    at.push_back(nullptr);
    size.push_back(0);
    accounts.push_back(kNoAccount);
    sigs.push_back(0);
    next.push_back(0);
    set(ids.size() - 1, account, terms);
  }
  template <typename F>
  void for_each_term(std::size_t k, F&& f) const {
    const std::string_view l = list(k);
    for (std::size_t p = 1; p < l.size();) {
      const std::size_t end = l.find('\n', p);
      if (end == std::string_view::npos) break;
      if (end > p) f(l.substr(p, end - p));
      p = end + 1;
    }
  }
};

// The first two bytes of a term, as a number (a one-byte term: its byte and 0). Never falls
// as a sorted list goes on (the lists are sorted bytewise; HeldLists::ordered checks it).
unsigned bucket_of(std::string_view t) {
  return (static_cast<unsigned>(static_cast<unsigned char>(t[0])) << 8) |
         (t.size() > 1 ? static_cast<unsigned char>(t[1]) : 0U);
}

// A term row to insert: its term (with its first 8 bytes as a big-endian number, compared
// first: most comparisons of the sort end there) and the held record it belongs to.
struct BuildRow {
  std::uint64_t head;
  const char* p;
  std::uint32_t len;
  std::uint32_t k;
  std::string_view term() const { return {p, len}; }
};

BuildRow build_row(std::string_view t, std::size_t k) {
  std::uint64_t head = 0;
  for (std::size_t i = 0; i < 8 && i < t.size(); ++i)
    head |= std::uint64_t{static_cast<unsigned char>(t[i])} << (56 - 8 * i);
  return {head, t.data(), static_cast<std::uint32_t>(t.size()), static_cast<std::uint32_t>(k)};
}

// Sorts `rows` by (term, id DESC) as the index holds them.
void sort_rows(const HeldLists& held, std::vector<BuildRow>& rows) {
  const auto before = [&](const BuildRow& a, const BuildRow& b) {
    if (a.head != b.head) return a.head < b.head;
    const int c = a.term().compare(b.term());
    return c != 0 ? c < 0 : held.ids[a.k] > held.ids[b.k];
  };
  parallel::sort(rows, before);
}

// The term rows of `held` whose term's bucket is in [lo, hi) and whose term is >= `from`
// (when not empty), sorted by (term, id DESC) as the index holds them. Reads every list.
std::vector<BuildRow> range_rows(const HeldLists& held, unsigned lo, unsigned hi,
                                 std::string_view from) {
  std::vector<BuildRow> rows;
  for (std::size_t k = 0; k < held.ids.size(); ++k)
    held.for_each_term(k, [&](std::string_view t) {
      const unsigned b = bucket_of(t);
      if (b >= lo && b < hi && (from.empty() || t >= from)) rows.push_back(build_row(t, k));
    });
  sort_rows(held, rows);
  return rows;
}

// The same for ranges taken in ascending order, when every held list is sorted
// (held.ordered): each list is read from held.next[k], the first of its terms not yet taken
// (or any earlier position), up to its first term of a bucket >= hi, where next[k] is left. So
// the lists are read once over all ranges instead of once a range.
std::vector<BuildRow> next_range_rows(HeldLists& held, unsigned lo, unsigned hi,
                                      std::size_t expect) {
  std::vector<BuildRow> rows;
  rows.reserve(expect);
  for (std::size_t k = 0; k < held.ids.size(); ++k) {
    const std::string_view l = held.list(k);
    std::size_t p = std::max<std::size_t>(held.next[k], 1);
    while (p < l.size()) {
      const std::size_t end = l.find('\n', p);
      if (end == std::string_view::npos) break;
      if (end > p) {
        const std::string_view t = l.substr(p, end - p);
        const unsigned b = bucket_of(t);
        if (b >= hi) break;
        if (b >= lo) rows.push_back(build_row(t, k));
      }
      p = end + 1;
    }
    held.next[k] = static_cast<std::uint32_t>(std::min<std::size_t>(p, l.size()));
  }
  sort_rows(held, rows);
  return rows;
}

// Reads again the lists of the held records among `ids` (a write beside the build changed or
// removed them); true when any was held.
Result<bool> refresh(HeldLists& held, std::vector<std::int64_t> ids, const std::string& lists,
                     Tx& tx) {
  std::sort(ids.begin(), ids.end());
  std::vector<std::size_t> ks;
  for (std::int64_t id : ids) {
    auto it = std::lower_bound(held.ids.begin(), held.ids.end(), id);
    if (it != held.ids.end() && *it == id) ks.push_back(it - held.ids.begin());
  }
  for (std::size_t at = 0; at < ks.size(); at += 256) {
    const std::size_t n = std::min<std::size_t>(256, ks.size() - at);
    std::vector<SqlValue> params;
    std::string in;
    for (std::size_t i = 0; i < n; ++i) {
      in += i ? ",?" : "?";
      params.emplace_back(held.ids[ks[at + i]]);
      held.size[ks[at + i]] = 0;  // gone unless read below
    }
    RP_TRY(tx.each_row("SELECT id, account_id, terms FROM " + lists + " WHERE id IN (" + in + ")",
                       params, [&](std::span<const SqlView> row) {
                         const auto id = std::get<std::int64_t>(row[0]);
                         const auto k = static_cast<std::size_t>(
                             std::lower_bound(held.ids.begin(), held.ids.end(), id) -
                             held.ids.begin());
                         held.set(k, row[1], std::get<std::string_view>(row[2]));
                         return true;
                       }));
  }
  return !ks.empty();
}

}  // namespace

Result<TermBuildStats> build_term_rows(Store& store, std::string_view entity, std::int64_t from_id,
                                       const TermBuildOptions& options) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  RP_ASSIGN(std::string table, detail::fts_table(entity));
  const std::string lists = detail::term_lists_table(entity);
  TermBuildStats stats;
  const auto held_for = [&](Clock::time_point since) {
    stats.longest_part_s =
        std::max(stats.longest_part_s, std::chrono::duration<double>(Clock::now() - since).count());
  };
  // The lists, read in id order in write transactions of their own: a write beside the build
  // runs before or after each of them, and one after it is noted in pending_terms().
  heap::release_free_memory();  // the load's freed heap, before the lists take their room
  HeldLists held;
  std::vector<std::size_t> in_bucket(1 << 16, 0);
  std::int64_t after = from_id - 1;
  for (bool first = true;; first = false) {
    RP_ASSIGN(auto tx, store.write());
    const auto since = Clock::now();
    if (first) store.pending_terms().take_touched(entity);  // read from here on
    const SqlValue bound[] = {after, static_cast<std::int64_t>(options.read_records)};
    std::size_t n = 0;
    RP_TRY(tx->each_row(
        "SELECT id, account_id, terms FROM " + lists + " WHERE id > ? ORDER BY id LIMIT ?", bound,
        [&](std::span<const SqlView> row) {
          after = std::get<std::int64_t>(row[0]);
          held.add(after, row[1], std::get<std::string_view>(row[2]));
          tx->fts_noted(entity, after, std::get<std::string_view>(row[2]));
          ++n;
          return true;
        }));
    RP_TRY(tx->commit());
    held_for(since);
    if (n < options.read_records) break;
  }
  stats.records = held.ids.size();
  for (std::size_t k = 0; k < held.ids.size(); ++k)
    held.for_each_term(k, [&](std::string_view t) { ++in_bucket[bucket_of(t)]; });
  // ranges of buckets of about range_rows rows (one bucket at least), and their rows
  struct Range {
    unsigned lo, hi;
    std::size_t rows;
  };
  std::vector<Range> ranges;
  for (unsigned lo = 0; lo < in_bucket.size();) {
    unsigned hi = lo;
    std::size_t in_range = 0;
    while (hi < in_bucket.size() && (hi == lo || in_range + in_bucket[hi] <= options.range_rows))
      in_range += in_bucket[hi++];
    if (in_range > 0) ranges.push_back({lo, hi, in_range});
    lo = hi;
  }
  // The next range's rows are cut and sorted on a thread of their own while the writer inserts
  // the current one's (declared after `held`, which it reads: destroyed, i.e. waited for, first).
  const auto prepare = [&held, &ranges](std::size_t r) {
    return std::async(std::launch::async, [&held, range = ranges[r]] {
      return held.ordered ? next_range_rows(held, range.lo, range.hi, range.rows)
                          : range_rows(held, range.lo, range.hi, {});
    });
  };
  std::future<std::vector<BuildRow>> ahead;
  if (!ranges.empty()) ahead = prepare(0);
  bool ahead_stale = false;  // cut before a refresh(): cut again from every current list
  std::vector<SqlValue> params;
  for (std::size_t r = 0; r < ranges.size(); ++r) {
    const auto [lo, hi, expect] = ranges[r];
    std::vector<BuildRow> rows = ahead.get();
    if (ahead_stale) {
      rows = range_rows(held, lo, hi, {});
      ahead_stale = false;
    }
    if (r + 1 < ranges.size()) ahead = prepare(r + 1);
    std::string from;  // rows below it are written (the last term written; its rows may go on)
    for (std::size_t pos = 0; pos < rows.size();) {
      RP_ASSIGN(auto tx, store.write());
      const auto since = Clock::now();
      auto touched = store.pending_terms().take_touched(entity);
      if (!touched.empty()) {
        stats.refreshed += touched.size();
        if (pos > 0) from = std::string(rows[pos - 1].term());
        if (ahead.valid()) ahead.wait();  // it reads the lists refresh() replaces
        RP_ASSIGN(bool held_one, refresh(held, std::move(touched), lists, *tx));
        if (held_one) {  // this range's rows not yet written, from the current lists
          rows = range_rows(held, lo, hi, from);
          pos = 0;
          ahead_stale = ahead.valid();
          if (rows.empty()) break;
        }
      }
      const std::size_t end = std::min(rows.size(), pos + options.part_rows);
      constexpr std::size_t kInsertChunk = 512;
      for (std::size_t at = pos, m = 0; at < end; at += m) {
        m = rows_in_next_statement(end - at, kInsertChunk);
        params.clear();
        params.reserve(4 * m);
        std::string sql = "INSERT OR IGNORE INTO " + table + " (term, id, account_id, sig) VALUES ";
        for (std::size_t i = 0; i < m; ++i) {
          const BuildRow& row = rows[at + i];
          sql += i ? ",(?,?,?,?)" : "(?,?,?,?)";
          params.emplace_back(std::string(row.term()));
          params.emplace_back(held.ids[row.k]);
          if (held.accounts[row.k] == HeldLists::kNoAccount)
            params.emplace_back();
          else
            params.emplace_back(held.accounts[row.k]);
          params.emplace_back(held.sigs[row.k]);
        }
        RP_TRY(detail::exec_status(*tx, sql, params));
      }
      RP_TRY(tx->commit());
      held_for(since);
      stats.rows += end - pos;
      ++stats.parts;
      pos = end;
      if (options.after_part) RP_TRY(options.after_part());
    }
    rows = {};
    heap::release_free_memory();  // the range's rows and statements
  }
  stats.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return stats;
}

}  // namespace rapport::storage
