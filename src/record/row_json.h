// A list page's records written as JSON text straight from the columns of their rows
// (Tx::each_row), without a DOM or rapidjson's writer: each shown field's key is escaped once per
// page, values are appended to one pre-sized string. The text is exactly what write_json and
// write_record give for the same row and the same shown fields (tests/row_json_test.cc compares
// them for every field kind): hidden fields are never written, because only the shown fields'
// columns are read at all.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/json.h"
#include "schema/schema.h"
#include "storage/store.h"

namespace rapport::record {

// Appends `s` as a JSON string (quotes included), escaped as rapidjson's Writer escapes it:
// '"', '\\' and the control characters; other bytes as they are.
void append_json_string(std::string& out, std::string_view s);

// Writes the record of `row` (a select_list row) with rapidjson's writer: the fields flagged in
// `shown`, then deleted_at and merged_into when set. The answers of writes (create, update,
// restore) use it; RecordJson and CachedRecordJson give the same text for list pages and single
// reads (GET by id, phone lookup matches: RecordService::read_one).
void write_record(json::Writer& w, const schema::Entity& e, const std::vector<char>& shown,
                  const std::vector<storage::SqlValue>& row);

// The text of one record with every field, as RecordJson writes each field, kept in RowJsonCache
// so that a list page copies it instead of reading the record's columns and writing them again.
// `text` is every field's `"name":value` in field order, separated by commas: field i is
// text[start[i], start[i + 1] - 1). `tail` is its deleted_at / merged_into members ("" when
// neither is set).
struct CachedRecord {
  std::int64_t version = 0;
  std::string text;
  std::vector<std::uint32_t> start;  // one per field, then text.size() + 1
  std::string tail;
  std::size_t fields() const { return start.empty() ? 0 : start.size() - 1; }
};

class RecordJson {
 public:
  // `shown`: one flag per field of `e` (shown_fields), fixed for the page.
  RecordJson(const schema::Entity& e, const std::vector<char>& shown);
  // Appends the record of `row` (a select_list row): its shown fields, then deleted_at and
  // merged_into when set.
  void append(std::string& out, std::span<const storage::SqlView> row) const;
  // The record of `row` with every field of the entity, for RowJsonCache; `this` must show every
  // field (constructed with `shown` all set).
  CachedRecord whole(std::span<const storage::SqlView> row, std::int64_t version) const;

 private:
  struct Part {
    const schema::Field* field;
    size_t col;
    std::string key;  // `"name":`, escaped
  };
  std::vector<Part> parts_;
  size_t internal_col_;  // deleted_at; merged_into after it
};

// Writes a cached record (CachedRecord) with only the fields a page shows, byte for byte what
// RecordJson with the same `shown` writes from the record's row: each run of consecutive shown
// fields is one copy, the hidden fields' text is never copied.
class CachedRecordJson {
 public:
  explicit CachedRecordJson(const std::vector<char>& shown);
  // `r` must have as many fields as `shown` has flags.
  void append(std::string& out, const CachedRecord& r) const;

 private:
  std::vector<std::pair<std::uint32_t, std::uint32_t>> runs_;  // [first, last] shown fields
};

// Records' JSON text (CachedRecord) by entity and id, with the version it was written from: a
// list page reads only the ids and versions of its rows and copies the text of those whose
// version it holds. Every write of a record raises its version (update, delete, restore, merge,
// bulk upsert), so a changed record is never served from here; a record cached with fewer
// fields than its entity now has (a custom field added since) is not served either. Bounded by
// bytes, least recently used first out; 16 shards with a mutex each. Thread-safe.
//
// Two paths use it, and it keeps them apart (RowJsonCache::Path): list pages, which come back
// to the same few thousand records (a city's newest accounts), and reads by id, which over a
// large table mostly ask for records read once. Each path has its own moving share of misses
// per entity, so a run of missed reads by id never sends list pages to their whole-row read.
// And records a list page put or found are kept apart from those only reads by id put: reads
// by id push out only their own records while list pages' records take at most half the bytes
// (kListShare); past that, list pages' own oldest go first. Either path alone may fill it all.
class RowJsonCache {
 public:
  enum class Path : std::uint8_t { kList, kRead };
  explicit RowJsonCache(std::size_t max_bytes);
  bool enabled() const { return max_bytes_ > 0; }
  // A small number standing for the entity `name` in this cache (once per page).
  std::uint32_t slot(std::string_view name) const;
  // A page (or a read by id) of the entity `slot` found `hits` of its records cached and missed
  // `misses`: kept as a moving share of misses per path (each page a quarter of it; updates
  // racing on it may lose one).
  void count_page(std::uint32_t slot, Path path, std::size_t hits, std::size_t misses);
  // Whether more than half of that entity's records recently asked for on `path` were missed.
  bool mostly_missed(std::uint32_t slot, Path path) const;
  // The record `id` of the entity `slot` when cached at `version` with `fields` fields. Found
  // by a list page, it is kept as a list page's record from then on.
  std::shared_ptr<const CachedRecord> find(std::uint32_t slot, std::int64_t id,
                                           std::int64_t version, std::size_t fields, Path path);
  // Keeps `r` for the record `id`, unless a later version of it is kept already.
  void put(std::uint32_t slot, std::int64_t id, std::shared_ptr<const CachedRecord> r, Path path);
  // Bytes held (text, offsets and bookkeeping), of them by list pages' records, hits and misses
  // of find() so far.
  std::size_t bytes() const;
  std::size_t list_bytes() const;
  std::uint64_t hits() const;
  std::uint64_t misses() const;
  // List pages whose records were read by id and version first and copied from here, and
  // those read whole (mostly_missed on kList) — RecordService::cached_page counts them.
  void count_list_page(bool whole) {
    (whole ? whole_pages_ : narrow_pages_).fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t narrow_pages() const { return narrow_pages_.load(std::memory_order_relaxed); }
  std::uint64_t whole_pages() const { return whole_pages_.load(std::memory_order_relaxed); }

  // The share of each shard's bytes list pages' records keep against reads by id (1 / this).
  static constexpr std::size_t kListShare = 2;

 private:
  struct Key {
    std::uint32_t slot;
    std::int64_t id;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      std::uint64_t h = (static_cast<std::uint64_t>(k.id) ^ (std::uint64_t{k.slot} << 56)) *
                        0x9E3779B97F4A7C15ULL;
      return static_cast<std::size_t>(h ^ (h >> 32));
    }
  };
  struct Node {
    Key key;
    std::int64_t version;  // the record's, here so that a lookup need not read the record
    std::size_t fields;
    std::shared_ptr<const CachedRecord> record;
    std::size_t bytes;
    bool listed;  // in Shard::listed (put or found by a list page), else in Shard::read
  };
  struct Shard {
    mutable std::mutex mu;
    // Most recently used first: records of list pages, and those only reads by id put.
    std::list<Node> listed, read;
    std::unordered_map<Key, std::list<Node>::iterator, KeyHash> index;
    std::size_t bytes = 0, listed_bytes = 0;
    std::uint64_t hits = 0, misses = 0;
  };
  static constexpr std::size_t kShards = 16;
  // `member` summed over the shards (each read under its shard's lock).
  template <typename T>
  T sum(T Shard::*member) const;
  Shard& shard(const Key& k) { return shards_[KeyHash()(k) % kShards]; }
  // Removes the node `it` of `s` (its list, index entry and bytes).
  static void drop(Shard& s, std::list<Node>::iterator it);

  static constexpr std::size_t kMaxSlots = 64;  // entities past these are never "mostly missed"

  std::size_t max_bytes_;
  mutable std::mutex slots_mu_;
  mutable std::vector<std::string> slots_;  // guarded by slots_mu_
  std::atomic<std::uint32_t> miss_permille_[2][kMaxSlots] = {};
  std::atomic<std::uint64_t> narrow_pages_{0}, whole_pages_{0};
  Shard shards_[kShards];
};

}  // namespace rapport::record
