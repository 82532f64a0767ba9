// Data parallelism for pure per-item work (normalising, building search text, duplicate facts)
// ahead of a single writer: a small process-wide pool of worker threads that live as long as the
// process, so their thread_local caches (phone numbers, pinyin syllables, ICU transliterators)
// stay warm from one call to the next.
#pragma once

#include <cstddef>
#include <functional>

namespace rapport::parallel {

// Calls fn(begin, end) over contiguous chunks covering [0, n), on the pool's threads and the
// calling thread, and returns when every chunk is done. `fn` must be safe to run concurrently on
// disjoint ranges. Below `min_chunk` items per chunk, or with no pool threads, it runs on the
// caller alone, and so does a call from inside a chunk (nested). The first exception a chunk throws
// is rethrown here (after all chunks finished).
void for_ranges(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn,
                std::size_t min_chunk = 64);

// Threads of the pool besides the caller: hardware threads − 1, at most 7; 0 on one core.
// RAPPORT_THREADS=N (the total, caller included) overrides it, e.g. 1 to measure serially.
std::size_t pool_threads();

}  // namespace rapport::parallel
