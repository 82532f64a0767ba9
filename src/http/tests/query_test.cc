// parse_query: real percent-decoding, '+' as space, and refusal of malformed escapes; the
// access log line.
#include <gtest/gtest.h>

#include "http/internal.h"
#include "http/types.h"

namespace rapport::http {
namespace {

TEST(ParseQuery, DecodesPercentAndPlus) {
  auto q = parse_query("a=1&b=hello+world&c=%E4%B8%AD%E6%96%87&d=x%2By%26z");
  ASSERT_TRUE(q.ok());
  Headers expected = {{"a", "1"}, {"b", "hello world"}, {"c", "中文"}, {"d", "x+y&z"}};
  EXPECT_EQ(*q, expected);
}

TEST(ParseQuery, KeepsOrderAndRepeats) {
  auto q = parse_query("sort=name&filter=a&filter=b");
  ASSERT_TRUE(q.ok());
  Headers expected = {{"sort", "name"}, {"filter", "a"}, {"filter", "b"}};
  EXPECT_EQ(*q, expected);
}

TEST(ParseQuery, KeyWithoutValueAndEmptyPairs) {
  auto q = parse_query("flag&&x=");
  ASSERT_TRUE(q.ok());
  Headers expected = {{"flag", ""}, {"x", ""}};
  EXPECT_EQ(*q, expected);
}

TEST(ParseQuery, EmptyQueryIsEmptyList) {
  auto q = parse_query("");
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->empty());
}

TEST(ParseQuery, FailingOnMalformedEscapes) {
  EXPECT_FALSE(parse_query("a=%zz").ok());
  EXPECT_FALSE(parse_query("a=%4").ok());
  EXPECT_FALSE(parse_query("a=%").ok());
  EXPECT_FALSE(parse_query("%g1=b").ok());
  EXPECT_FALSE(parse_query("a=%00").ok());
}

TEST(ParseQuery, FailingOnMalformedEscapesSaysSo) {
  auto q = parse_query("a=%zz");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, Errc::kBadRequest);
  EXPECT_EQ(q.error().message, "query string has malformed percent-encoding");
}

TEST(ParseQuery, FailingOnInvalidUtf8NamesTheParameter) {
  for (const char* bad :
       {"q=%FF", "limit=5&q=ab%C3", "q=%C0%AF", "q=%ED%A0%80", "q=%F4%90%80%80"}) {
    auto q = parse_query(bad);
    ASSERT_FALSE(q.ok()) << bad;
    EXPECT_EQ(q.error().code, Errc::kBadRequest) << bad;
    EXPECT_EQ(q.error().field, "q") << bad;
    EXPECT_EQ(q.error().message, "query parameter 'q' is not valid UTF-8") << bad;
  }
  auto name = parse_query("%FF=1");
  ASSERT_FALSE(name.ok());
  EXPECT_EQ(name.error().code, Errc::kBadRequest);
  EXPECT_EQ(name.error().field, "");
  EXPECT_EQ(name.error().message, "a query parameter name is not valid UTF-8");
  // Well-formed multi-byte text is fine.
  auto ok = parse_query("q=%E5%BC%A0%F0%9F%98%80");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)[0].second, "张😀");
}

TEST(PercentDecode, PathKeepsPlus) {
  EXPECT_EQ(detail::percent_decode("/a+b/%41", false), "/a+b/A");
  EXPECT_EQ(detail::percent_decode("a+b", true), "a b");
  EXPECT_FALSE(detail::percent_decode("/x%2", false).has_value());
}

TEST(RequestAccessors, HeaderAndParam) {
  Request req;
  req.headers = {{"content-type", "text/plain"}, {"cookie", "a=1"}, {"cookie", "b=2"}};
  req.params = {{"id", "42"}};
  ASSERT_NE(req.header("cookie"), nullptr);
  EXPECT_EQ(*req.header("cookie"), "a=1");
  EXPECT_EQ(req.header("authorization"), nullptr);
  EXPECT_EQ(req.param("id"), "42");
  EXPECT_EQ(req.param("entity"), "");
}

TEST(AccessLine, MillisecondsWithThreeDecimalsFromMicroseconds) {
  EXPECT_EQ(detail::access_line("req-1", "GET", "/api/v1/accounts/42", 200, 1234),
            "access req-1 GET /api/v1/accounts/42 200 1.234ms");
  EXPECT_EQ(detail::access_line("r", "POST", "/x", 201, 5), "access r POST /x 201 0.005ms");
  EXPECT_EQ(detail::access_line("r", "GET", "/x", 404, 120050), "access r GET /x 404 120.050ms");
  EXPECT_EQ(detail::access_line("r", "GET", "/", 500, 0), "access r GET / 500 0.000ms");
  // A clock that went backwards never prints a negative time.
  EXPECT_EQ(detail::access_line("r", "GET", "/", 200, -3), "access r GET / 200 0.000ms");
}

}  // namespace
}  // namespace rapport::http
