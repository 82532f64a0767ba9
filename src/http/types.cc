// Request accessors and query-string decoding (percent-decoding by uriparser, not by hand).
#include "http/types.h"

#include <uriparser/Uri.h>

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "base/utf8.h"
#include "http/internal.h"

namespace rapport::http {
namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// uriparser leaves a bad escape such as "%zz" in place; we refuse it instead, so that a
// client bug surfaces as 400 rather than as a filter on a literal "%zz". %00 is refused too:
// no legitimate path or query needs a NUL, and uriparser's C strings would cut at it.
bool well_formed_escapes(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\0') return false;
    if (s[i] != '%') continue;
    if (i + 2 >= s.size() || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return false;
    if (s[i + 1] == '0' && s[i + 2] == '0') return false;  // NUL would truncate C strings
    i += 2;
  }
  return true;
}

}  // namespace

const std::string* Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

const Result<Headers>& Request::query_params() const {
  if (!parsed_query) parsed_query.emplace(parse_query(query));
  return *parsed_query;
}

std::string_view Request::param(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (key == name) return value;
  }
  return {};
}

Result<Headers> parse_query(std::string_view query) {
  Headers out;
  if (query.empty()) return out;
  if (!well_formed_escapes(query)) {
    return make_error(Errc::kBadRequest, "query string has malformed percent-encoding");
  }
  // The pairs of uriparser's uriDissectQueryMallocExA — split at '&', then at a pair's first
  // '=', each part unescaped with '+' as space — without its list of malloc'ed C strings: a
  // query is parsed on every request that has one (the phone lookup's, twice).
  auto decode = [](std::string_view part) {
    std::string s(part);
    if (s.find_first_of("%+") != std::string::npos) {
      const char* end = uriUnescapeInPlaceExA(s.data(), URI_TRUE, URI_BR_DONT_TOUCH);
      s.resize(static_cast<std::size_t>(end - s.data()));
    }
    return s;
  };
  for (;;) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    std::string key = decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? std::string() : decode(pair.substr(eq + 1));
    if (!key.empty() || !value.empty()) {  // "a=1&&b=2"
      // Every parameter is text: refused here, once, rather than by each handler (a %FF in a
      // search term would otherwise reach the database and the JSON of the answer).
      if (!valid_utf8(key)) {
        return make_error(Errc::kBadRequest, "a query parameter name is not valid UTF-8");
      }
      if (!valid_utf8(value)) {
        return make_error(Errc::kBadRequest, "query parameter '" + key + "' is not valid UTF-8",
                          key);
      }
      out.emplace_back(std::move(key), std::move(value));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

namespace detail {

std::optional<std::string> percent_decode(std::string_view in, bool plus_as_space) {
  if (!well_formed_escapes(in)) return std::nullopt;
  std::string buf(in);
  const char* end =
      uriUnescapeInPlaceExA(buf.data(), plus_as_space ? URI_TRUE : URI_FALSE, URI_BR_DONT_TOUCH);
  buf.resize(static_cast<std::size_t>(end - buf.data()));
  return buf;
}

Response problem(int status, std::string_view title, std::string_view code) {
  Response res;
  res.status = status;
  res.content_type = "application/problem+json";
  res.body = std::string(R"({"type":"https://rapport.dev/problems/)") + std::string(code) +
             R"(","title":")" + std::string(title) + R"(","status":)" + std::to_string(status) +
             R"(,"code":")" + std::string(code) + "\"}";
  return res;
}

std::string access_line(std::string_view request_id, std::string_view method, std::string_view path,
                        int status, std::int64_t micros) {
  std::string line;
  line.reserve(32 + request_id.size() + method.size() + path.size());
  line += "access ";
  line += request_id;
  line += ' ';
  line += method;
  line += ' ';
  line += path;
  line += ' ';
  char digits[24];
  auto put = [&](std::int64_t n) {
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    line.append(digits, end);
  };
  put(status);
  line += ' ';
  if (micros < 0) micros = 0;
  put(micros / 1000);
  const auto frac = static_cast<int>(micros % 1000);
  line += '.';
  line += static_cast<char>('0' + frac / 100);
  line += static_cast<char>('0' + frac / 10 % 10);
  line += static_cast<char>('0' + frac % 10);
  line += "ms";
  return line;
}

}  // namespace detail
}  // namespace rapport::http
