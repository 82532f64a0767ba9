// RapidJSON helpers: parse with UTF-8 validation and readable error messages.
#include "core/json.h"

#include <rapidjson/error/en.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace rapport::json {

namespace {
// RapidJSON's parser (and Value copying) recurse once per nesting level: hostile input such as
// 100,000 '[' would overflow a worker's stack, so depth is checked before parsing.
constexpr int kMaxDepth = 128;

bool too_deep(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// From `i` at a string's opening quote: the index after its closing quote (the first quote
// not escaped: after an even run of backslashes), or npos.
size_t after_string(std::string_view t, size_t i) {
  const char* const begin = t.data();
  const char* const end = begin + t.size();
  const char* p = begin + i + 1;
  for (;;) {
    const auto* q = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(end - p)));
    if (q == nullptr) return std::string_view::npos;
    const char* b = q;
    while (b > p && b[-1] == '\\') --b;
    if ((q - b) % 2 == 0) return static_cast<size_t>(q - begin) + 1;
    p = q + 1;
  }
}

// From `i` at a value's first character: the index after the value, or npos.
size_t after_value(std::string_view t, size_t i) {
  if (i >= t.size()) return std::string_view::npos;
  if (t[i] == '"') return after_string(t, i);
  if (t[i] == '{' || t[i] == '[') {
    int depth = 0;
    while (i < t.size()) {
      const char c = t[i];
      if (c == '"') {
        i = after_string(t, i);
        if (i == std::string_view::npos) return i;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if ((c == '}' || c == ']') && --depth == 0) return i + 1;
      ++i;
    }
    return std::string_view::npos;
  }
  const size_t start = i;  // a number, true, false or null
  while (i < t.size() && !space(t[i]) && t[i] != ',' && t[i] != '}' && t[i] != ']') ++i;
  return i == start ? std::string_view::npos : i;
}
}  // namespace

void member_texts(std::string_view t, std::span<const std::string_view> names,
                  std::span<std::optional<std::string_view>> out) {
  constexpr size_t npos = std::string_view::npos;
  for (auto& o : out) o.reset();
  size_t left = std::min(names.size(), out.size());  // names not found yet
  size_t i = 0;
  const auto skip = [&] {
    while (i < t.size() && space(t[i])) ++i;
  };
  skip();
  if (i >= t.size() || t[i] != '{') return;
  ++i;
  while (left > 0) {
    skip();
    if (i >= t.size() || t[i] != '"') return;  // (an empty object's '}' too)
    const size_t key_end = after_string(t, i);
    if (key_end == npos) return;
    const std::string_view key = t.substr(i + 1, key_end - i - 2);
    i = key_end;
    skip();
    if (i >= t.size() || t[i] != ':') return;
    ++i;
    skip();
    const size_t value_end = after_value(t, i);
    if (value_end == npos) return;
    for (size_t k = 0; k < names.size() && k < out.size(); ++k)
      if (!out[k] && names[k] == key) {
        out[k] = t.substr(i, value_end - i);
        --left;
      }
    i = value_end;
    skip();
    if (i >= t.size() || t[i] != ',') return;  // '}': the other names are not members
    ++i;
  }
}

std::optional<std::string_view> member_text(std::string_view object, std::string_view name) {
  std::optional<std::string_view> out[1];
  member_texts(object, std::span<const std::string_view>(&name, 1), out);
  return out[0];
}

Result<Document> parse(std::string_view text) {
  if (too_deep(text))
    return make_error(Errc::kBadRequest, "malformed JSON: nested deeper than " +
                                             std::to_string(kMaxDepth) + " levels");
  Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
  if (doc.HasParseError()) {
    return make_error(Errc::kBadRequest, std::string("malformed JSON at byte ") +
                                             std::to_string(doc.GetErrorOffset()) + ": " +
                                             rapidjson::GetParseError_En(doc.GetParseError()));
  }
  return doc;
}

Result<Document> parse_body(std::string_view text) {
  auto doc = parse(text);
  if (!doc.ok()) return make_error(Errc::kBadRequest, std::move(doc).error().message, "body");
  if (!doc->IsObject())
    return make_error(Errc::kBadRequest, "the request body must be a JSON object", "body");
  return doc;
}

std::string stringify(const Value& v) {
  Buffer buf;
  Writer w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

const Value* member(const Value& obj, std::string_view name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(Value(rapidjson::StringRef(name.data(), name.size())));
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

}  // namespace rapport::json
