// parse_query: real percent-decoding, '+' as space, and refusal of malformed escapes; the
// access log line.
#include <gtest/gtest.h>
#include <uriparser/Uri.h>

#include <memory>
#include <random>

#include "base/utf8.h"
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

// The pairs as uriparser's own dissection gives them (what parse_query used before it split the
// query itself), or nullopt where parse_query must refuse the query.
std::optional<Headers> dissected_by_uriparser(const std::string& query) {
  Headers out;
  if (query.empty()) return out;
  for (std::size_t i = 0; i < query.size(); ++i) {
    if (query[i] == '\0') return std::nullopt;
    if (query[i] != '%') continue;
    auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
    if (i + 2 >= query.size() || !hex(query[i + 1]) || !hex(query[i + 2])) return std::nullopt;
    if (query[i + 1] == '0' && query[i + 2] == '0') return std::nullopt;
    i += 2;
  }
  UriQueryListA* list = nullptr;
  int count = 0;
  if (uriDissectQueryMallocExA(&list, &count, query.data(), query.data() + query.size(), URI_TRUE,
                               URI_BR_DONT_TOUCH) != URI_SUCCESS)
    return std::nullopt;
  std::unique_ptr<UriQueryListA, void (*)(UriQueryListA*)> guard(list, uriFreeQueryListA);
  for (const UriQueryListA* item = list; item != nullptr; item = item->next) {
    std::string key = item->key ? item->key : "";
    std::string value = item->value ? item->value : "";
    if (key.empty() && value.empty()) continue;
    if (!valid_utf8(key) || !valid_utf8(value)) return std::nullopt;
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

TEST(ParseQuery, SplitsAndDecodesExactlyAsUriparsersDissection) {
  std::vector<std::string> queries = {
      "a=b=c",
      "=x",
      "=",
      "&",
      "&&",
      "a&",
      "&a",
      "a=1&",
      "k=%2B%26%3D",
      "a+b=c+d",
      "%3D=%3D",
      "a=%E4%B8%AD&b",
      "x=1;y=2",
      "q=a%20b+c",
      "a==",
      "a=&=b",
      "number=%2B86%2010%206253%201234",
      "%FF=1",
      "a=%C3",
      "a=b#c",
      "a=%0A%0D",
      "+=+",
      "a=1&a=2&a=",
  };
  std::mt19937 rng(7);
  const std::string alphabet = "ab=&+%2BFC3E0D9 ;#\xc3\xa9";
  for (int n = 0; n < 20000; ++n) {
    std::string q;
    for (int len = static_cast<int>(rng() % 12); len > 0; --len)
      q += alphabet[rng() % alphabet.size()];
    queries.push_back(q);
  }
  for (const auto& q : queries) {
    auto expected = dissected_by_uriparser(q);
    auto got = parse_query(q);
    ASSERT_EQ(got.ok(), expected.has_value()) << "query: " << q;
    if (expected) {
      ASSERT_EQ(*got, *expected) << "query: " << q;
    }
  }
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

// A request's query parameters are parse_query's answer, errors included, worked out once: the
// same object is answered again (the route check and the handler share one parse).
TEST(RequestAccessors, QueryParamsAreParseQuerysAnswerParsedOnce) {
  Request req;
  req.query = "filter=%7B%22a%22%3A1%7D&limit=50&q=a+b";
  const Result<Headers>& first = req.query_params();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, *parse_query(req.query));
  EXPECT_EQ(&req.query_params(), &first);
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ((*first)[0].second, "{\"a\":1}");

  Request bad;
  bad.query = "limit=%zz";
  ASSERT_FALSE(bad.query_params().ok());
  EXPECT_EQ(bad.query_params().error().message, parse_query(bad.query).error().message);
  EXPECT_EQ(bad.query_params().error().code, Errc::kBadRequest);

  Request none;
  ASSERT_TRUE(none.query_params().ok());
  EXPECT_TRUE(none.query_params()->empty());
}

}  // namespace
}  // namespace rapport::http
