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
  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
  std::atomic<std::uint64_t> max_ns_{0};
};

struct RouteLatency {
  LatencyHistogram handler;  // the route's handler alone, on the worker thread
  LatencyHistogram server;   // request received → handler done (includes the worker-pool wait)
  // In-place tries (Lane::kIoThread) that the handler deferred to the worker pool because it
  // would have waited; the pool's run is the one recorded in the histograms.
  std::atomic<std::uint64_t> deferred{0};
};

}  // namespace rapport::http
