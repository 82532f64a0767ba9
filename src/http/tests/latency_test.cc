// Server-side latency: the histogram's buckets and percentiles, and the Router recording each
// route's handler and server time (a throwing handler too), listing only routes that answered,
// and resetting.
#include "http/latency.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "http/router.h"

namespace rapport::http {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(LatencyHistogramTest, BucketsAreContiguousAndWithinOneSixteenth) {
  EXPECT_EQ(LatencyHistogram::bucket_of(0), 0);
  EXPECT_EQ(LatencyHistogram::bucket_of(15), 15);
  EXPECT_EQ(LatencyHistogram::bucket_of(16), 16);
  for (std::uint64_t v : {17ULL, 100ULL, 999ULL, 250'000ULL, 1'000'000ULL, 123'456'789ULL}) {
    int b = LatencyHistogram::bucket_of(v);
    std::uint64_t upper = LatencyHistogram::bucket_upper(b);
    std::uint64_t lower = LatencyHistogram::bucket_upper(b - 1) + 1;
    EXPECT_LE(lower, v) << v;
    EXPECT_GE(upper, v) << v;
    EXPECT_LE(static_cast<double>(upper - lower + 1), static_cast<double>(v) / 16 + 1) << v;
  }
  // Values beyond the range land in the last bucket instead of out of bounds.
  EXPECT_EQ(LatencyHistogram::bucket_of(~0ULL), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogramTest, PercentilesMeanAndMax) {
  LatencyHistogram h;
  EXPECT_EQ(h.summary().count, 0u);
  for (int i = 0; i < 98; ++i) h.record(microseconds(100));  // 0.1 ms
  h.record(milliseconds(2));
  h.record(milliseconds(10));
  auto s = h.summary();
  EXPECT_EQ(s.count, 100u);
  EXPECT_NEAR(s.p50_ms, 0.1, 0.1 / 16);
  EXPECT_NEAR(s.p90_ms, 0.1, 0.1 / 16);
  EXPECT_NEAR(s.p99_ms, 2.0, 2.0 / 16);
  EXPECT_DOUBLE_EQ(s.max_ms, 10.0);
  EXPECT_NEAR(s.mean_ms, (98 * 0.1 + 2 + 10) / 100, 1e-9);
  h.reset();
  EXPECT_EQ(h.summary().count, 0u);
  EXPECT_EQ(h.summary().max_ms, 0.0);
}

TEST(LatencyHistogramTest, PercentileNeverAboveTheLargestValue) {
  LatencyHistogram h;
  h.record(nanoseconds(1'000'001));
  auto s = h.summary();
  EXPECT_DOUBLE_EQ(s.p50_ms, 1.000001);
  EXPECT_DOUBLE_EQ(s.p99_ms, 1.000001);
}

TEST(RouterLatencyTest, RecordsHandlerAndServerTimePerRoute) {
  Router router;
  router.add("GET", "/api/v1/{entity}/{id}", [](Request&) { return Response{}; });
  router.add("GET", "/api/v1/{entity}", [](Request&) { return Response{}; });
  router.add("GET", "/boom", [](Request&) -> Response { throw std::runtime_error("boom"); });
  EXPECT_TRUE(router.latency().empty());

  Request req;
  req.method = "GET";
  req.path = "/api/v1/accounts/42";
  // Received 5 ms ago: the server time includes that wait, the handler time does not.
  req.received = std::chrono::steady_clock::now() - milliseconds(5);
  router.dispatch(req);
  Request local;  // not from the network: handler time only
  local.method = "GET";
  local.path = "/api/v1/contacts/7";
  router.dispatch(local);
  Request boom;
  boom.method = "GET";
  boom.path = "/boom";
  EXPECT_EQ(router.dispatch(boom).status, 500);
  Request unknown;  // unmatched: no route to charge
  unknown.method = "GET";
  unknown.path = "/nowhere/at/all/x";
  EXPECT_EQ(router.dispatch(unknown).status, 404);

  auto routes = router.latency();
  ASSERT_EQ(routes.size(), 2u);  // the list route did not answer
  EXPECT_EQ(routes[0].method, "GET");
  EXPECT_EQ(routes[0].pattern, "/api/v1/{entity}/{id}");
  EXPECT_EQ(routes[0].handler.count, 2u);
  EXPECT_EQ(routes[0].server.count, 1u);
  EXPECT_GE(routes[0].server.max_ms, 5.0);
  EXPECT_LT(routes[0].handler.p50_ms, routes[0].server.max_ms);
  EXPECT_EQ(routes[1].pattern, "/boom");
  EXPECT_EQ(routes[1].handler.count, 1u);

  router.reset_latency();
  EXPECT_TRUE(router.latency().empty());
}

}  // namespace
}  // namespace rapport::http
