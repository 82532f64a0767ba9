// Term rows built after a bulk load (docs/ARCHITECTURE.md, "Import"): a large import into a
// nearly empty table writes each new record's term list only (Tx::fts_put_lists), and after its
// last batch build_term_rows() inserts the term rows of those lists in key order, part by part.
// Until then search does not find those records through the term index; PendingTerms tells it
// so (the search answer's index_pending). A write beside the build that replaces or removes a
// record's terms (an update, a delete) is noted here by the store, and the build takes the
// record's current list again before its next part.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/error.h"

namespace rapport::storage {

class Store;

// The entities whose records may have a term list without their term rows (a load or build in
// progress in this process, or left by a killed one until start-up builds them), and the
// records whose terms another write replaced or removed meanwhile. Thread-safe.
class PendingTerms {
 public:
  // Marks `entity` pending; false (nothing changed) when it already is (one load at a time).
  bool begin(std::string_view entity);
  void end(std::string_view entity);
  bool pending(std::string_view entity) const;
  // A write replaced or removed the terms of record `id` of `entity` (the store calls it for
  // every such write, before its COMMIT). Cheap when nothing is pending.
  void touched(std::string_view entity, std::int64_t id);
  // The records touched since the last call, forgotten here.
  std::vector<std::int64_t> take_touched(std::string_view entity);

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unordered_set<std::int64_t>, std::less<>> entries_;
  std::atomic<int> count_{0};
};

struct TermBuildOptions {
  // Term rows per write transaction (the writer is held for one part: about a second).
  std::size_t part_rows = 250'000;
  // Term rows held in memory and sorted at a time (a range of the terms' first two bytes).
  std::size_t range_rows = 2'000'000;
  // Records' lists read per write transaction when the build takes its copy of them.
  std::size_t read_records = 50'000;
  // Called after each part's commit (tests: a write between two parts).
  std::function<Status()> after_part;
};

struct TermBuildStats {
  std::size_t records = 0;    // lists read
  std::size_t rows = 0;       // term rows inserted (or already there)
  std::size_t parts = 0;      // write transactions that inserted term rows
  std::size_t refreshed = 0;  // lists read again after a write beside the build
  double longest_part_s = 0;  // the longest write transaction of the build (wall)
  double seconds = 0;
};

// Inserts the term rows of every record of `entity` with id >= from_id from its term list, in
// key order, INSERT OR IGNORE (rows already there stay), in write transactions of at most
// options.part_rows rows. SQLite (its INSERT OR IGNORE); the store's pending_terms() must
// hold `entity` for the whole build, so that writes beside it are noted.
Result<TermBuildStats> build_term_rows(Store& store, std::string_view entity, std::int64_t from_id,
                                       const TermBuildOptions& options = {});

}  // namespace rapport::storage
