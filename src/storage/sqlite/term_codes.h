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
// character's code. A record known here without them cannot match. Up to 12 codes in a
// record's slot (a Chinese contact: its name's three characters and four or five number codes);
// a record with more (an account with many numbers) keeps them all in a list of its shard, read
// as the slot's.
//
// Kept as a superset of what the index holds: codes are only ever added (a record's terms
// written anew add the new codes and keep the old; a deleted record keeps its codes), each
// before the write that stores the terms commits (Tx::fts_noted from detail::put_terms and
// build_term_rows), and the whole built once at start-up from the digit and CJK ranges of every
// term table (SqliteStore::build_term_codes). A reader in any snapshot therefore finds at least
// the codes its snapshot's terms have: a code missing here means no term of that record has
// it, and a record with the code is checked as before. Until the start-up build has run,
// check() answers kUnknown and the search takes its earlier path.
//
// Each check first asks the entity's index of codes by code (per code a Bloom filter of the
// records holding it, 16 bits a record: one statement's checks read the filters of one or two
// codes, which stay in the CPU's caches), which rules out most records without a read of their
// slot, a random line of 128 MiB of slots for 2M contacts (a DRAM miss). Records noted after
// the index was made read their slot (see index()).
//
// Another process's writes (the CLI's `import`, `user add` or `demo` beside `serve`) are not
// noted here. Every transaction that writes terms (of any process running this code) sets the
// row of `_term_writes` (SqliteStore) to (n + 1, its store's writer id) before it commits, and a
// statement reads that row of its own snapshot (check's `n` and `writer`): the codes answer for a
// snapshot whose last term write was this store's own, or one at or before the row's state
// when the codes were last built from the file (covered). A foreign write seen by a reader (the
// row is another writer's and past what was covered) or by this store's writer at its next
// term write (the row it replaces is another writer's) makes the codes unknown (kUnknown: the
// search's earlier path) until they are built again from the file (the codes only ever gain;
// want() wakes the thread that builds them).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
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
  // The same for a reader's snapshot whose `_term_writes` row is (n, writer): kUnknown unless
  // fresh(n, writer).
  Answer check(std::string_view entity, std::int64_t id, int a, int b, std::int64_t n,
               std::int64_t writer) const;

  // Freshness against other processes' writes (see the top of this file). `own`: this store's
  // writer id, written with each of its term writes.
  void set_own_writer(std::int64_t own) { own_ = own; }
  std::int64_t own_writer() const { return own_; }
  // Whether the codes hold every term of a snapshot whose row is (n, writer); when the row is
  // another writer's past what was covered, asks for a build from the file (want(n)).
  bool fresh(std::int64_t n, std::int64_t writer) const;
  // A term write of another writer is in the file up to row state `n` (this store's writer saw
  // the row another's before replacing it): unknown until a build that read the row at `n` or
  // later. Wakes wait_wanted().
  void want(std::int64_t n) const;
  // A build from the file that read the row at `n` before reading the terms has added them
  // (the first such build also makes the codes built).
  void covered_to(std::int64_t n);
  std::int64_t covered() const { return covered_.load(std::memory_order_acquire); }
  // Makes each entity's index of codes by code again from its slots (one shard's mutex at a time,
  // then every shard's for the swap), after the start-up build and when the records noted
  // after the last index outnumber a 16th of those in it (want_index()).
  void index();
  void want_index();
  bool index_wanted() const;
  // A build from the file is wanted (a row state not covered); else wait_wanted() woke for an
  // index.
  bool build_wanted() const;
  // The builder's wait: true when a build or an index is wanted, false on stop().
  bool wait_wanted() const;
  void stop() const;
  // Waits `ms` milliseconds or until stop(); false on stop().
  bool pause(std::int64_t ms) const;
  // Waits until the codes are built and no build is wanted (tests), or stop().
  void wait_current() const;
  // The start-up build has added every term table's codes: check() answers from here on.
  void set_built() { built_.store(true, std::memory_order_release); }
  bool built() const { return built_.load(std::memory_order_acquire); }
  // Records held (tests, observability).
  std::size_t records(std::string_view entity) const;

  struct Entity;
  // The entity's codes (created when missing); the pointer stays valid while this lives.
  Entity* entity(std::string_view name);
  const Entity* find(std::string_view name) const;
  // `use_filter` false: the record's slot read whatever the filter says (tests: the filter's
  // answers are the slots' answers).
  static Answer check(const Entity* e, std::int64_t id, int a, int b, bool use_filter = true);
  // Whether the index alone says record `id` has neither code (check() then reads no slot).
  static bool filter_rules_out(const Entity* e, std::int64_t id, int a, int b);
  // The index's size in bytes (tests, memory accounting).
  static std::size_t filter_bytes(const Entity* e);
  static void add(Entity& e, std::int64_t id, int code);
  // `after_shard(i)`: called after shard i was read into the new index, no mutex held (tests).
  static void index(Entity& e, const std::function<void(std::size_t)>& after_shard = {});

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entity>, std::less<>> entities_;
  std::atomic<bool> built_{false};
  std::int64_t own_ = 0;
  std::atomic<std::int64_t> covered_{-1};
  mutable std::atomic<std::int64_t> wanted_{-1};
  mutable std::mutex wait_mu_;
  mutable std::condition_variable wait_cv_;
  mutable bool stopped_ = false;
  bool index_wanted_ = false;  // under wait_mu_
};

}  // namespace rapport::storage::sqlite
