// Server-side latency per route: a lock-free log-linear histogram (HdrHistogram-style, 16
// sub-buckets per power of two of nanoseconds, so a percentile is within 1/16 ≈ 6% of the true
// value) that worker threads record into with relaxed atomics, and the per-route pair the Router
// keeps: the handler's own time, and the server time from the first byte of the request to the
// handler's end (handler plus the wait for a free worker).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace rapport::http {

class LatencyHistogram {
 public:
  void record(std::chrono::nanoseconds d);
  void reset();

  struct Summary {
    std::uint64_t count = 0;
    // Upper edge of the bucket that holds the percentile (never above the largest value seen).
    double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
  };
  Summary summary() const;

  static constexpr int kSubBits = 4;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = 37 * kSub;  // up to 2^40 ns (about 18 minutes)
  static int bucket_of(std::uint64_t ns);
  static std::uint64_t bucket_upper(int index);  // largest value (ns) that falls into `index`

 private:
  // The count is the buckets' sum (summary()): not kept apart, one locked add less per record.
  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<std::uint64_t> sum_ns_{0};
  std::atomic<std::uint64_t> max_ns_{0};
};

struct RouteLatency {
  LatencyHistogram handler;  // the route's handler alone, on the worker thread
  LatencyHistogram server;   // request received → handler done (includes the worker-pool wait)
  // In-place tries (Lane::kIoThread) that the handler deferred to the worker pool because it
  // would have waited; the pool's run is the one recorded in the histograms.
  std::atomic<std::uint64_t> deferred{0};
  // The share (per mille, a moving average over about 16 tries) of in-place tries that
  // deferred. While more than kMostlyDeferred of them did (a database file mostly out of
  // memory, every reader held by the workers), only one request in kTryEvery is tried in place
  // and the others go to the worker pool at once, without a try that would only cost the I/O
  // thread its time; the tries bring the share down again once they are answered in place.
  // Not reset with the figures.
  static constexpr std::uint32_t kMostlyDeferred = 250;
  static constexpr std::uint32_t kTryEvery = 8;
  std::atomic<std::uint32_t> deferred_permille{0};
  std::atomic<std::uint32_t> tries{0};
  bool try_in_place() {
    return deferred_permille.load(std::memory_order_relaxed) <= kMostlyDeferred ||
           tries.fetch_add(1, std::memory_order_relaxed) % kTryEvery == 0;
  }
  void count_try(bool was_deferred) {  // racing updates may lose one: a moving share
    const auto old = static_cast<std::int64_t>(deferred_permille.load(std::memory_order_relaxed));
    const std::int64_t sample = was_deferred ? 1000 : 0;
    const auto next = static_cast<std::uint32_t>(old + (sample - old) / 16);
    // Mostly unchanged (0 while every try is answered): not written then, so that the I/O
    // threads trying this route do not take the cache line from each other on every request.
    if (next != static_cast<std::uint32_t>(old))
      deferred_permille.store(next, std::memory_order_relaxed);
  }
};

}  // namespace rapport::http
