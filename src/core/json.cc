// RapidJSON helpers: parse with UTF-8 validation and readable error messages.
#include "core/json.h"

#include <rapidjson/error/en.h>

#include <string>

namespace rapport::json {

Result<Document> parse(std::string_view text) {
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
