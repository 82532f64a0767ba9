// JSON for the whole server: RapidJSON behind a few helpers (parse with UTF-8 validation, write).
// Handlers stream responses with json::Writer; parsed input is a json::Document.
#pragma once

#ifndef RAPIDJSON_HAS_STDSTRING
#define RAPIDJSON_HAS_STDSTRING 1
#endif
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/error.h"

namespace rapport::json {

using Document = rapidjson::Document;
using Value = rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;
using Buffer = rapidjson::StringBuffer;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Parses UTF-8 JSON text; invalid UTF-8 or syntax gives kBadRequest with the byte offset.
Result<Document> parse(std::string_view text);

// A request's body: JSON text holding an object. Every error (syntax, encoding, not an object)
// is kBadRequest naming the field "body".
Result<Document> parse_body(std::string_view text);

// Serialises any value compactly.
std::string stringify(const Value& v);

// Small accessors that tolerate a missing member.
const Value* member(const Value& obj, std::string_view name);
// The texts of the top-level members `names` of the JSON object `object` (each value as
// written: a string with its quotes and escapes, a number, true, an array …) into `out` (one
// per name), in one pass and without building a DOM: for copying a few members of a record's
// text this server wrote. A name the object does not have, or one after the point where the
// text stops being a well-formed object, is nullopt; a member written more than once: the
// first. Names are compared with keys as written (escapes not decoded), so they must need none.
void member_texts(std::string_view object, std::span<const std::string_view> names,
                  std::span<std::optional<std::string_view>> out);
// member_texts for one name.
std::optional<std::string_view> member_text(std::string_view object, std::string_view name);
inline void key(Writer& w, std::string_view k) {
  w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
}
inline Value str(std::string_view s, Allocator& a) {
  return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
}

}  // namespace rapport::json
