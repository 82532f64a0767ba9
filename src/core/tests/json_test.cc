// json::member_text: one member of an object's text without a DOM, as rapidjson would read it.
#include "core/json.h"
#include "core/json_escape.h"

#include <gtest/gtest.h>

#include <string>

namespace rapport::json {
namespace {

// Every member of a record-like object, strings with escaped quotes, braces and brackets in them,
// nested arrays and objects, numbers, booleans and null: each member's text, parsed, is the
// member rapidjson parses from the whole object.
TEST(JsonMemberText, EachMemberIsWhatRapidjsonReads) {
  const std::string text =
      R"({"id":"12","version":3,"name":"A \"quoted\" {brace} [bracket] \\ name","n":-1.5e3,)"
      R"( "ok" : true ,"none":null,"phones":[{"value":"+86 10 1234","label":"o}ff\"ice"},[1,2]],)"
      R"("obj":{"a":{"b":"}"}},"zh":"北京市","last":false})";
  auto doc = parse(text).value();
  int members = 0;
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it, ++members) {
    const std::string name = it->name.GetString();
    auto got = member_text(text, name);
    ASSERT_TRUE(got.has_value()) << name;
    auto value = parse(*got);
    ASSERT_TRUE(value.ok()) << name << ": " << *got;
    EXPECT_EQ(stringify(*value), stringify(it->value)) << name;
  }
  EXPECT_EQ(members, 10);
  EXPECT_EQ(member_text(text, "name").value(), R"("A \"quoted\" {brace} [bracket] \\ name")");
  EXPECT_EQ(member_text(text, "ok").value(), "true");
}

// Strings ending in escaped backslashes or holding escaped quotes end where rapidjson ends them.
TEST(JsonMemberText, BackslashRunsBeforeAQuote) {
  const std::string text = R"({"a":"x\\","b":"\\\"","c":"\"","name":"\\\\"})";
  auto doc = parse(text).value();
  for (const char* k : {"a", "b", "c", "name"}) {
    auto got = member_text(text, k);
    ASSERT_TRUE(got.has_value()) << k;
    EXPECT_EQ(stringify(parse(*got).value()), stringify(doc[k])) << k;
  }
}

// Several names in one pass: each gets its own member, in any order; unknown ones stay empty.
TEST(JsonMemberText, SeveralNamesInOnePass) {
  const std::string text = R"({"id":"7","version":2,"name":"Acme","key_account":true,"tier":null})";
  const std::string_view names[] = {"key_account", "missing", "name", "id", "tier"};
  std::optional<std::string_view> out[5] = {"stale", "stale", "stale", "stale", "stale"};
  member_texts(text, names, out);
  EXPECT_EQ(out[0].value(), "true");
  EXPECT_FALSE(out[1].has_value());
  EXPECT_EQ(out[2].value(), R"("Acme")");
  EXPECT_EQ(out[3].value(), R"("7")");
  EXPECT_EQ(out[4].value(), "null");
}

TEST(JsonMemberText, AbsentMemberIsNullopt) {
  EXPECT_FALSE(member_text(R"({"id":"1","version":1})", "name").has_value());
  EXPECT_FALSE(member_text("{}", "name").has_value());
  EXPECT_FALSE(member_text(" { } ", "name").has_value());
  // A key only inside a nested value or a string is not a member.
  EXPECT_FALSE(member_text(R"({"a":{"name":"x"},"b":"\"name\":1"})", "name").has_value());
}

TEST(JsonMemberText, FailingOnTextThatIsNotAnObject) {
  for (const char* bad : {"", "[1]", "\"name\"", R"({"name")", R"({"name":})", R"({"name":"x)",
                          R"({"a":1 "name":2})", R"({"a":[1,{"b":2}, "name":1})", "{name:1}"})
    EXPECT_FALSE(member_text(bad, "name").has_value()) << bad;
}

// append_string writes what rapidjson's Writer writes for the same string: every byte value
// alone and between others, multi-byte UTF-8, and text without anything to escape.
TEST(JsonAppendString, SameTextAsRapidjsonsWriter) {
  const auto rapid = [](std::string_view s) {
    json::Buffer buf;
    json::Writer w(buf);
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    return std::string(buf.GetString(), buf.GetSize());
  };
  const auto mine = [](std::string_view s) {
    std::string out = "x";  // appended to what is there
    json::append_string(out, s);
    return out.substr(1);
  };
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    EXPECT_EQ(mine(one), rapid(one)) << "byte " << c;
    const std::string between = "a" + one + "b" + one;
    EXPECT_EQ(mine(between), rapid(between)) << "byte " << c;
  }
  for (std::string_view s : {"", "plain", "合肥泰长汽车配件股份有限公司", "say \"hi\"\\ \u00e9\x7f",
                             "line\nbreak\ttab\x01\x1f"})
    EXPECT_EQ(mine(s), rapid(s)) << s;
}

}  // namespace
}  // namespace rapport::json
