// AnswerCache: whole read answers kept while the database's change stamp is unchanged.
#include "record/answer_cache.h"

namespace rapport::record {

AnswerCache::AnswerCache(std::size_t max_bytes, std::size_t max_entries)
    : max_bytes_(max_bytes), max_entries_(max_entries) {}

std::shared_ptr<const std::string> AnswerCache::find(std::string_view key, std::uint64_t stamp) {
  if (max_bytes_ == 0) return nullptr;
  std::lock_guard lock(mu_);
  if (stamp != stamp_) return nullptr;
  auto it = kept_.find(key);
  if (it == kept_.end()) return nullptr;
  ++hits_;
  return it->second.answer;
}

void AnswerCache::put(std::string key, std::uint64_t stamp, std::string answer,
                      std::shared_ptr<const void> hold, std::shared_ptr<const void> hold2) {
  const std::size_t size = answer.size() + key.size() + 2 * sizeof(std::string) + 64;
  if (max_bytes_ == 0 || size > max_bytes_) return;
  auto kept = std::make_shared<const std::string>(std::move(answer));
  std::lock_guard lock(mu_);
  if (stamp > stamp_) {  // the database changed: every kept answer is old
    kept_.clear();
    bytes_ = 0;
    stamp_ = stamp;
  }
  if (stamp != stamp_) return;  // an answer of an older snapshot is not kept
  if (auto it = kept_.find(key); it != kept_.end()) return;  // another request kept it first
  if (kept_.size() >= max_entries_ || bytes_ + size > max_bytes_) {
    kept_.clear();
    bytes_ = 0;
  }
  bytes_ += size;
  kept_.emplace(std::move(key), Kept{std::move(kept), std::move(hold), std::move(hold2)});
}

std::uint64_t AnswerCache::hits() const {
  std::lock_guard lock(mu_);
  return hits_;
}

std::size_t AnswerCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace rapport::record
