// Log-linear latency histogram: values below 16 ns have a bucket each; above, every power of
// two [2^e, 2^(e+1)) is split into 16 equal sub-buckets.
#include "http/latency.h"

#include <algorithm>
#include <bit>

namespace rapport::http {

int LatencyHistogram::bucket_of(std::uint64_t ns) {
  if (ns < static_cast<std::uint64_t>(kSub)) return static_cast<int>(ns);
  const int e = std::bit_width(ns) - 1;  // 2^e <= ns, e >= kSubBits
  const int sub = static_cast<int>((ns >> (e - kSubBits)) & (kSub - 1));
  return std::min(kBuckets - 1, (e - kSubBits + 1) * kSub + sub);
}

std::uint64_t LatencyHistogram::bucket_upper(int index) {
  if (index < kSub) return static_cast<std::uint64_t>(index);
  const int e = index / kSub + kSubBits - 1;
  const std::uint64_t sub = static_cast<std::uint64_t>(index % kSub);
  const std::uint64_t lower = (static_cast<std::uint64_t>(kSub) + sub) << (e - kSubBits);
  return lower + (std::uint64_t{1} << (e - kSubBits)) - 1;
}

void LatencyHistogram::record(std::chrono::nanoseconds d) {
  const std::uint64_t ns = d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count());
  counts_[static_cast<std::size_t>(bucket_of(ns))].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  std::uint64_t seen = max_ns_.load(std::memory_order_relaxed);
  while (ns > seen && !max_ns_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
  }
}

void LatencyHistogram::reset() {
  for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  sum_ns_.store(0, std::memory_order_relaxed);
  max_ns_.store(0, std::memory_order_relaxed);
}

LatencyHistogram::Summary LatencyHistogram::summary() const {
  // A snapshot of the buckets; records racing with it may be half-counted, which only matters
  // to the last request or so.
  std::array<std::uint64_t, kBuckets> counts;
  std::uint64_t total = 0;
  for (int i = 0; i < kBuckets; ++i) {
    counts[static_cast<std::size_t>(i)] =
        counts_[static_cast<std::size_t>(i)].load(std::memory_order_relaxed);
    total += counts[static_cast<std::size_t>(i)];
  }
  Summary s;
  s.count = total;
  if (total == 0) return s;
  const std::uint64_t max_ns = max_ns_.load(std::memory_order_relaxed);
  auto ms = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e6; };
  auto percentile = [&](double q) {
    // The smallest bucket whose cumulative count reaches ceil(q * total).
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.999999);
    std::uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts[static_cast<std::size_t>(i)];
      if (seen >= std::max<std::uint64_t>(rank, 1)) return ms(std::min(bucket_upper(i), max_ns));
    }
    return ms(max_ns);
  };
  s.p50_ms = percentile(0.50);
  s.p90_ms = percentile(0.90);
  s.p99_ms = percentile(0.99);
  s.max_ms = ms(max_ns);
  s.mean_ms = ms(sum_ns_.load(std::memory_order_relaxed)) / static_cast<double>(total);
  return s;
}

}  // namespace rapport::http
