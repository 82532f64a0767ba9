// Codes of each record's index terms held in memory per entity, so that a several-word search
// checks the other key of a page ("zhao 179", "Emma 5678", "何 雪") on an entry of the driving
// key without reading the record's term list, every entry of the key, or the index per term
// (SQLite only; see detail::terms_page and docs/ARCHITECTURE.md).
//
// A record's codes: for each of its terms whose first three bytes are digits, those three digits
// (the start of a number); for each reversed digit term ("~8765…") its first three digits (the
// end of a number, reversed); for each term starting with a CJK unified ideograph, that
// character. A digit key of three or more digits matches a record only when one of its terms
// starts with the key or with the key's reversed form, so only when the record has the key's
// start code or its end code; a one-character Chinese key only when the record has that
// character's code. A record known here without them cannot match. At most 12 codes a record
// (a Chinese contact: its name's three characters and four or five number codes); one with
// more always may match.
//
// Kept as a superset of what the index holds: codes are only ever added (a record's terms
// written anew add the new codes and keep the old; a deleted record keeps its codes), each
// before the write that stores the terms commits (Tx::fts_noted from detail::put_terms and
// build_term_rows), and the whole built once at start-up from the digit and CJK ranges of every
// term table (SqliteStore::build_term_codes). A reader in any snapshot therefore finds at least
// the codes its snapshot's terms have: a code missing here means no term of that record has
// it, and a record with the code is checked as before. Until the start-up build has run,
// check() answers kUnknown and the search takes its earlier path. Only this process's writes
// are noted: a database written by another process while a server runs on it (the CLI's
// `user add` or `demo` beside `serve`) may be searched without them until the server restarts.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace rapport::storage::sqlite {

class TermCodes {
 public:
  enum Answer : int { kNo = 0, kMaybe = 1, kUnknown = 2 };
  // The code of a number start (`reversed` false) or end of three digits, or -1 when `digits`
  // does not begin with three ASCII digits.
  static int code(std::string_view digits, bool reversed);
  // The code of a term's or a key's first character when it is a CJK unified ideograph
  // (U+4E00-U+9FFF: a Chinese name's or company's characters), else -1.
  static int char_code(std::string_view term);
  static constexpr int kCharCodes = 2000;  // the first character code (below: number codes)

  TermCodes();
  ~TermCodes();
  TermCodes(const TermCodes&) = delete;
  TermCodes& operator=(const TermCodes&) = delete;

  // Adds the codes of a record's term list ("\nterm\nterm\n", or the terms one a line).
  void note(std::string_view entity, std::int64_t id, std::string_view list);
  // Adds one code (the start-up build).
  void add(std::string_view entity, std::int64_t id, int code);
  // Whether record `id` of `entity` may have code `a` or code `b` (-1: none).
  Answer check(std::string_view entity, std::int64_t id, int a, int b) const;
  // The start-up build has added every term table's codes: check() answers from here on.
  void set_built() { built_.store(true, std::memory_order_release); }
  bool built() const { return built_.load(std::memory_order_acquire); }
  // Records held (tests, observability).
  std::size_t records(std::string_view entity) const;

  struct Entity;
  // The entity's codes (created when missing); the pointer stays valid while this lives.
  Entity* entity(std::string_view name);
  const Entity* find(std::string_view name) const;
  static Answer check(const Entity* e, std::int64_t id, int a, int b);
  static void add(Entity& e, std::int64_t id, int code);

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entity>, std::less<>> entities_;
  std::atomic<bool> built_{false};
};

}  // namespace rapport::storage::sqlite
