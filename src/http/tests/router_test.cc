// Router: capture binding, literal-over-capture precedence, 404 versus 405, and the 500 that
// replaces a throwing handler.
#include "http/router.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace rapport::http {
namespace {

Response text(std::string body) {
  Response res;
  res.content_type = "text/plain";
  res.body = std::move(body);
  return res;
}

Request make(std::string method, std::string path) {
  Request req;
  req.method = std::move(method);
  req.path = std::move(path);
  return req;
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router.add("GET", "/api/v1/{entity}/{id}", [](Request& req) {
      return text("record " + std::string(req.param("entity")) + " " +
                  std::string(req.param("id")));
    });
    router.add("GET", "/api/v1/accounts/search", [](Request&) { return text("search"); });
    router.add("GET", "/api/v1/{entity}",
               [](Request& req) { return text("list " + std::string(req.param("entity"))); });
    router.add("POST", "/api/v1/{entity}", [](Request&) { return text("create"); });
    router.add("GET", "/api/v1/boom",
               [](Request&) -> Response { throw std::runtime_error("database on fire"); });
  }
  Router router;
};

TEST_F(RouterTest, CapturesFillParams) {
  auto req = make("GET", "/api/v1/contacts/42");
  auto res = router.dispatch(req);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "record contacts 42");
  EXPECT_EQ(req.param("entity"), "contacts");
  EXPECT_EQ(req.param("id"), "42");
}

TEST_F(RouterTest, LiteralSegmentBeatsCaptureWhateverTheOrder) {
  auto req = make("GET", "/api/v1/accounts/search");
  EXPECT_EQ(router.dispatch(req).body, "search");
  auto other = make("GET", "/api/v1/accounts/7");
  EXPECT_EQ(router.dispatch(other).body, "record accounts 7");
}

TEST_F(RouterTest, LiteralPrecedenceIsPositional) {
  Router r;
  r.add("GET", "/{a}/x", [](Request&) { return text("capture-first"); });
  r.add("GET", "/y/{b}", [](Request&) { return text("literal-first"); });
  auto req = make("GET", "/y/x");
  EXPECT_EQ(r.dispatch(req).body, "literal-first");
}

TEST_F(RouterTest, MostSpecificRouteWinsWhateverTheRegistrationOrder) {
  // Routes of a length are kept most specific first; a tie keeps the first registered, and a
  // more specific route of another method does not hide the less specific one of this method.
  Router r;
  r.add("GET", "/{a}/{b}/{c}", [](Request&) { return text("all captures"); });
  r.add("GET", "/{a}/{b}/z", [](Request&) { return text("last literal"); });
  r.add("GET", "/{a}/y/{c}", [](Request&) { return text("middle literal"); });
  r.add("GET", "/{a}/y/{c}", [](Request&) { return text("middle literal, second"); });
  r.add("POST", "/x/y/z", [](Request&) { return text("post"); });
  auto middle = make("GET", "/x/y/z");
  EXPECT_EQ(r.dispatch(middle).body, "middle literal");
  auto last = make("GET", "/x/q/z");
  EXPECT_EQ(r.dispatch(last).body, "last literal");
  auto none = make("GET", "/x/q/q");
  EXPECT_EQ(r.dispatch(none).body, "all captures");
  auto post = make("POST", "/x/y/z");
  EXPECT_EQ(r.dispatch(post).body, "post");
  auto head = make("HEAD", "/x/y/z");
  EXPECT_EQ(r.dispatch(head).body, "middle literal");
}

TEST_F(RouterTest, FailingPathLongerThanAnyRouteIs404) {
  auto req = make("GET", "/api/v1/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t");
  EXPECT_EQ(router.dispatch(req).status, 404);
  auto empty = make("GET", "/");
  EXPECT_EQ(router.dispatch(empty).status, 404);
}

TEST_F(RouterTest, FailingPatternOfMoreThanMaxSegmentsIsRefused) {
  std::string pattern;
  for (std::size_t i = 0; i <= Router::kMaxSegments; ++i) pattern += "/s";
  Router r;
  EXPECT_THROW(r.add("GET", pattern, [](Request&) { return text("x"); }), std::logic_error);
  pattern.resize(pattern.size() - 2);  // exactly kMaxSegments
  r.add("GET", pattern, [](Request&) { return text("longest"); });
  auto req = make("GET", pattern);
  EXPECT_EQ(r.dispatch(req).body, "longest");
}

TEST_F(RouterTest, MethodSelectsRoute) {
  auto req = make("POST", "/api/v1/contacts");
  EXPECT_EQ(router.dispatch(req).body, "create");
}

TEST_F(RouterTest, HeadUsesGetRoute) {
  auto req = make("HEAD", "/api/v1/contacts");
  EXPECT_EQ(router.dispatch(req).body, "list contacts");
}

TEST_F(RouterTest, FailingUnknownPathIs404) {
  auto req = make("GET", "/api/v2/nothing/here/at/all");
  auto res = router.dispatch(req);
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.content_type, "application/problem+json");
  EXPECT_NE(res.body.find(R"("code":"not_found")"), std::string::npos);
}

TEST_F(RouterTest, FailingTrailingSlashDoesNotMatch) {
  auto req = make("GET", "/api/v1/contacts/42/");
  EXPECT_EQ(router.dispatch(req).status, 404);
}

TEST_F(RouterTest, FailingWrongMethodIs405WithAllow) {
  auto req = make("DELETE", "/api/v1/contacts");
  auto res = router.dispatch(req);
  EXPECT_EQ(res.status, 405);
  EXPECT_NE(res.body.find(R"("code":"method_not_allowed")"), std::string::npos);
  std::string allow;
  for (auto& [k, v] : res.headers)
    if (k == "Allow") allow = v;
  EXPECT_EQ(allow, "GET, POST");
}

TEST_F(RouterTest, CustomFallbackSeesMethodNotAllowedFlag) {
  std::vector<bool> seen;
  router.set_fallback([&](Request&, bool method_not_allowed) {
    seen.push_back(method_not_allowed);
    Response res;
    res.status = method_not_allowed ? 405 : 404;
    return res;
  });
  auto a = make("PUT", "/api/v1/contacts");
  auto b = make("GET", "/nope");
  EXPECT_EQ(router.dispatch(a).status, 405);
  EXPECT_EQ(router.dispatch(b).status, 404);
  EXPECT_EQ(seen, (std::vector<bool>{true, false}));
}

TEST_F(RouterTest, FailingHandlerExceptionBecomes500Problem) {
  auto req = make("GET", "/api/v1/boom");
  auto res = router.dispatch(req);
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(res.content_type, "application/problem+json");
  EXPECT_EQ(
      res.body,
      R"({"type":"https://rapport.dev/problems/internal","title":"Internal Server Error","status":500,"code":"internal"})");
}

TEST(RouterLane, InPlaceRunsOnlyQuickReadRoutesAndRecordsOnlyTheirAnswers) {
  Router r;
  int worker_calls = 0, quick_calls = 0;
  r.add("GET", "/api/v1/list", [&](Request&) {
    ++worker_calls;
    return text("list");
  });
  r.add(
      "GET", "/api/v1/items/{id}",
      [&](Request& req) {
        ++quick_calls;
        return req.param("id") == "busy" ? Response::deferred() : text("item");
      },
      Lane::kIoThread);
  // A write can never be tried in place, whatever lane it asks for.
  r.add(
      "POST", "/api/v1/items/{id}", [&](Request&) { return text("written"); }, Lane::kIoThread);

  auto list = make("GET", "/api/v1/list");
  list.in_place = true;
  EXPECT_TRUE(r.dispatch(list).defer);
  EXPECT_EQ(worker_calls, 0);
  // Moved to the I/O lane after it was added (as api/ does): now it runs in place.
  r.set_lane("GET", "/api/v1/list", Lane::kIoThread);
  EXPECT_EQ(r.dispatch(list).body, "list");
  EXPECT_EQ(worker_calls, 1);
  r.set_lane("GET", "/api/v1/list", Lane::kWorker);
  EXPECT_TRUE(r.dispatch(list).defer);
  EXPECT_THROW(r.set_lane("GET", "/api/v1/none", Lane::kIoThread), std::logic_error);

  auto post = make("POST", "/api/v1/items/1");
  post.in_place = true;
  EXPECT_TRUE(r.dispatch(post).defer);

  auto unknown = make("GET", "/api/v1/nothing/here/at/all");
  unknown.in_place = true;
  EXPECT_TRUE(r.dispatch(unknown).defer);

  auto item = make("GET", "/api/v1/items/1");
  item.in_place = true;
  auto answered = r.dispatch(item);
  EXPECT_FALSE(answered.defer);
  EXPECT_EQ(answered.body, "item");
  auto head = make("HEAD", "/api/v1/items/1");  // HEAD by the GET route, in place too
  head.in_place = true;
  EXPECT_FALSE(r.dispatch(head).defer);

  auto busy = make("GET", "/api/v1/items/busy");
  busy.in_place = true;
  EXPECT_TRUE(r.dispatch(busy).defer);
  EXPECT_EQ(quick_calls, 3);

  // Only the two answers count; the deferred attempt will be recorded by its run on a worker.
  auto latency = r.latency();
  ASSERT_EQ(latency.size(), 2u);
  EXPECT_EQ(latency[0].pattern, "/api/v1/list");
  EXPECT_EQ(latency[0].handler.count, 1u);
  EXPECT_EQ(latency[1].pattern, "/api/v1/items/{id}");
  EXPECT_EQ(latency[1].handler.count, 2u);
  // The deferred try is counted as such (the list route's refusals above were not tries: its
  // handler never ran in place), and a reset clears the count.
  EXPECT_EQ(latency[0].deferred, 0u);
  EXPECT_EQ(latency[1].deferred, 1u);
  r.reset_latency();
  EXPECT_TRUE(r.dispatch(busy).defer);
  EXPECT_TRUE(r.dispatch(busy).defer);
  auto answered_again = make("GET", "/api/v1/items/1");
  EXPECT_EQ(r.dispatch(answered_again).body, "item");  // on a worker: not in place
  latency = r.latency();
  ASSERT_EQ(latency.size(), 1u);
  EXPECT_EQ(latency[0].handler.count, 1u);
  EXPECT_EQ(latency[0].deferred, 2u);
}

// While most in-place tries of a route defer (its pages out of memory, its readers busy), only one
// request in RouteLatency::kTryEvery is tried in place; the others go to the worker pool without
// running the handler on the I/O thread. Once the tries are answered in place again, every
// request is tried again.
TEST(RouterLane, AMostlyDeferredRouteIsTriedInPlaceOnlyNowAndThen) {
  Router r;
  bool out_of_memory = true;
  int in_place_calls = 0, pool_calls = 0;
  r.add(
      "GET", "/api/v1/items/{id}",
      [&](Request& req) {
        if (!req.in_place) {
          ++pool_calls;
          return text("item");
        }
        ++in_place_calls;
        return out_of_memory ? Response::deferred() : text("item");
      },
      Lane::kIoThread);
  // Runs one request as the server does: in place, then on the pool when deferred.
  auto serve = [&] {
    auto req = make("GET", "/api/v1/items/1");
    req.in_place = true;
    Response res = r.dispatch(req);
    req.in_place = false;
    if (res.defer) res = r.dispatch(req);
    EXPECT_EQ(res.body, "item");
  };
  for (int i = 0; i < 800; ++i) serve();
  EXPECT_EQ(pool_calls, 800);
  // About 800 / kTryEvery tries after the first few (the share passes a quarter after five).
  EXPECT_GE(in_place_calls, 100);
  EXPECT_LE(in_place_calls, 110);
  EXPECT_EQ(r.latency()[0].deferred, static_cast<std::uint64_t>(in_place_calls));

  out_of_memory = false;
  in_place_calls = pool_calls = 0;
  for (int i = 0; i < 800; ++i) serve();
  // The share falls below a quarter after ~22 answered tries (~176 requests); from then on,
  // every request is answered in place.
  EXPECT_GE(in_place_calls, 600);
  EXPECT_EQ(in_place_calls + pool_calls, 800);
  pool_calls = 0;
  for (int i = 0; i < 100; ++i) serve();
  EXPECT_EQ(pool_calls, 0);
}

// A worker-lane request is matched once: the in-place try that defers it records the route it
// found (Request::route), and the worker pool's run answers from that route, its parameters
// filled from the path, without matching the path again; HEAD keeps the GET route it fell back to.
TEST_F(RouterTest, TheWorkersRunAnswersFromTheRouteTheInPlaceTryMatched) {
  auto req = make("GET", "/api/v1/contacts/42");
  req.in_place = true;
  EXPECT_TRUE(router.dispatch(req).defer);
  ASSERT_NE(req.route, 0u);
  EXPECT_TRUE(req.params.empty());
  req.in_place = false;
  EXPECT_EQ(router.dispatch(req).body, "record contacts 42");
  EXPECT_EQ(req.param("id"), "42");

  auto head = make("HEAD", "/api/v1/contacts");
  head.in_place = true;
  EXPECT_TRUE(router.dispatch(head).defer);
  EXPECT_NE(head.route, 0u);
  EXPECT_NE(head.route, req.route);
  head.in_place = false;
  EXPECT_EQ(router.dispatch(head).body, "list contacts");

  // A path no route matches records nothing: the pool's run answers 404 as before.
  auto none = make("GET", "/api/v2/nothing");
  none.in_place = true;
  EXPECT_TRUE(router.dispatch(none).defer);
  EXPECT_EQ(none.route, 0u);
  none.in_place = false;
  EXPECT_EQ(router.dispatch(none).status, 404);
}

}  // namespace
}  // namespace rapport::http
