// parse_query: real percent-decoding, '+' as space, and refusal of malformed escapes.
#include <gtest/gtest.h>

#include "http/internal.h"
#include "http/types.h"

namespace rapport::http {
namespace {

TEST(ParseQuery, DecodesPercentAndPlus) {
  auto q = parse_query("a=1&b=hello+world&c=%E4%B8%AD%E6%96%87&d=x%2By%26z");
  ASSERT_TRUE(q.has_value());
  Headers expected = {{"a", "1"}, {"b", "hello world"}, {"c", "中文"}, {"d", "x+y&z"}};
  EXPECT_EQ(*q, expected);
}

TEST(ParseQuery, KeepsOrderAndRepeats) {
  auto q = parse_query("sort=name&filter=a&filter=b");
  ASSERT_TRUE(q.has_value());
  Headers expected = {{"sort", "name"}, {"filter", "a"}, {"filter", "b"}};
  EXPECT_EQ(*q, expected);
}

TEST(ParseQuery, KeyWithoutValueAndEmptyPairs) {
  auto q = parse_query("flag&&x=");
  ASSERT_TRUE(q.has_value());
  Headers expected = {{"flag", ""}, {"x", ""}};
  EXPECT_EQ(*q, expected);
}

TEST(ParseQuery, EmptyQueryIsEmptyList) {
  auto q = parse_query("");
  ASSERT_TRUE(q.has_value());
  EXPECT_TRUE(q->empty());
}

TEST(ParseQuery, FailingOnMalformedEscapes) {
  EXPECT_FALSE(parse_query("a=%zz").has_value());
  EXPECT_FALSE(parse_query("a=%4").has_value());
  EXPECT_FALSE(parse_query("a=%").has_value());
  EXPECT_FALSE(parse_query("%g1=b").has_value());
  EXPECT_FALSE(parse_query("a=%00").has_value());
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

}  // namespace
}  // namespace rapport::http
