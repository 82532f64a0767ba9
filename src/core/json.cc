// RapidJSON helpers: parse with UTF-8 validation and readable error messages.
#include "core/json.h"

#include <rapidjson/error/en.h>

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
}  // namespace

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
