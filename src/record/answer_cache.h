// Whole answers of reads (list pages) kept while the database is unchanged: each is tagged with
// the change stamp of the read transaction it was computed in (storage::Tx::change_stamp) and
// served only to a read whose transaction has that same stamp, so that any committed write —
// this server's or another process's — retires every kept answer at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace rapport::record {

// Answers by key (the caller builds it from everything the answer depends on), all of one change
// stamp: an answer of a newer stamp drops every older one, an answer of an older stamp is not
// kept. Bounded by bytes and entries; when full, everything is dropped (answers are cheap to
// make again and the set a workload repeats is small). Thread-safe (one mutex; the answer is
// copied out of the cache by the caller, not under it).
class AnswerCache {
 public:
  AnswerCache(std::size_t max_bytes, std::size_t max_entries);
  bool enabled() const { return max_bytes_ > 0; }
  // The answer kept under `key` for `stamp`, or null.
  std::shared_ptr<const std::string> find(std::string_view key, std::uint64_t stamp);
  // Keeps `answer` under `key` for `stamp`. `hold` and `hold2` are kept with it: the objects
  // whose addresses are part of the key (a role, an entity snapshot), so that the addresses are
  // not reused while the answer is kept.
  void put(std::string key, std::uint64_t stamp, std::string answer,
           std::shared_ptr<const void> hold, std::shared_ptr<const void> hold2 = nullptr);
  std::uint64_t hits() const;
  std::size_t bytes() const;

 private:
  struct Kept {
    std::shared_ptr<const std::string> answer;
    std::shared_ptr<const void> hold, hold2;
  };
  std::size_t max_bytes_, max_entries_;
  mutable std::mutex mu_;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, Kept, Hash, std::equal_to<>> kept_;  // guarded by mu_
  std::uint64_t stamp_ = 0;                                            // guarded by mu_
  std::size_t bytes_ = 0;                                              // guarded by mu_
  std::uint64_t hits_ = 0;                                             // guarded by mu_
};

}  // namespace rapport::record
