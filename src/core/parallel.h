// Data parallelism for pure per-item work (normalising, building search text, duplicate facts)
// ahead of a single writer: a small process-wide pool of worker threads that live as long as the
// process, so their thread_local caches (phone numbers, pinyin syllables, ICU transliterators)
// stay warm from one call to the next.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

namespace rapport::parallel {

// Calls fn(begin, end) over contiguous chunks covering [0, n), on the pool's threads and the
// calling thread, and returns when every chunk is done. `fn` must be safe to run concurrently on
// disjoint ranges. Below `min_chunk` items per chunk, or with no pool threads, it runs on the
// caller alone. The caller runs every chunk that no pool thread has started (a pool thread busy
// with a Background job or another call's chunk does not hold it up), so a call from inside a
// chunk or a Background job (nested) completes too. The first exception a chunk throws is
// rethrown here (after all chunks finished).
void for_ranges(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn,
                std::size_t min_chunk = 64);

// One job run beside the caller on a pool thread (a pipeline's next stage, e.g. an import's next
// batch prepared while the writer writes this one): wait() returns once it ran, rethrowing what it
// threw. A job no pool thread has started by then (none free, or no pool at all) runs inside
// wait(), on the caller. The destructor waits too (a job's error is then dropped).
class Background {
 public:
  explicit Background(std::function<void()> job);
  ~Background();
  Background(Background&&) noexcept = default;
  Background& operator=(Background&&) = delete;
  void wait();

 private:
  struct State;
  std::shared_ptr<State> st_;
};

// Threads of the pool besides the caller: hardware threads − 1, at most 7; 0 on one core.
// RAPPORT_THREADS=N (the total, caller included) overrides it, e.g. 1 to measure serially.
std::size_t pool_threads();

// Sorts `v` by `before` (not stable): one part per pool thread and the caller sorted at once,
// then the parts merged pairwise. Below 4,096 items a part, on the caller alone.
template <typename T, typename Before>
void sort(std::vector<T>& v, const Before& before) {
  const std::size_t parts =
      std::min<std::size_t>(pool_threads() + 1, std::max<std::size_t>(1, v.size() / 4096));
  auto part_start = [&](std::size_t i) { return v.begin() + v.size() * i / parts; };
  for_ranges(
      parts,
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
          std::sort(part_start(i), part_start(i + 1), before);
      },
      /*min_chunk=*/1);
  for (std::size_t width = 1; width < parts; width *= 2)
    for (std::size_t i = 0; i + width < parts; i += 2 * width)
      std::inplace_merge(part_start(i), part_start(i + width),
                         part_start(std::min(parts, i + 2 * width)), before);
}

}  // namespace rapport::parallel
