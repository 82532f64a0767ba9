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

}  // namespace
}  // namespace rapport::http
