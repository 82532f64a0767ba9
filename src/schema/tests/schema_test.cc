// Schema declarations and value validation (R-CUS-1 field types).
#include <gtest/gtest.h>

#include "schema/schema.h"

namespace rapport::schema {
namespace {

const char* kEntity = R"({"name":"thing","plural":"things","title_field":"name","fields":[
  {"name":"name","type":"text","required":true,"max_length":5},
  {"name":"code","type":"text","pattern":"^[A-Z]+$"},
  {"name":"n","type":"integer","min":0,"max":10},
  {"name":"price","type":"money"},
  {"name":"flag","type":"boolean"},
  {"name":"day","type":"date"},
  {"name":"at","type":"datetime"},
  {"name":"color","type":"enum","options":["red",{"value":"blue","label":{"en":"Blue","zh-CN":"蓝"}}]},
  {"name":"colors","type":"multi_enum","options":["red","blue"]},
  {"name":"phones","type":"phone_list"},
  {"name":"emails","type":"email_list"},
  {"name":"addr","type":"address"},
  {"name":"owner","type":"reference","reference":"user"},
  {"name":"extra","type":"json"}]})";

class SchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto e = parse_entity(kEntity, "test");
    ASSERT_TRUE(e.ok()) << e.error().message;
    entity = std::move(e).value();
  }
  // Validates JSON text for a field; returns the normalised JSON or the error code name.
  std::string check(const char* field, const char* json_text, std::string* message = nullptr) {
    json::Document in;
    in.Parse(json_text);
    json::Document doc;
    json::Value out;
    Status st = validate_value(*entity.field(field), in, out, doc.GetAllocator());
    if (!st.ok()) {
      if (message) *message = st.error().message;
      EXPECT_EQ(st.error().field, field);
      return std::string("error:") + errc_name(st.error().code);
    }
    return json::stringify(out);
  }
  Entity entity;
};

TEST_F(SchemaTest, AddsSystemFieldsFirst) {
  ASSERT_GE(entity.fields.size(), 8u);
  EXPECT_EQ(entity.fields[0].name, "id");
  EXPECT_TRUE(entity.field("created_at")->readonly);
  EXPECT_FALSE(entity.field("owner_id")->readonly);
  EXPECT_EQ(entity.field("color")->options[1].label.zh, "蓝");
}

TEST_F(SchemaTest, TextIsTrimmedAndLimitedInCodePoints) {
  EXPECT_EQ(check("name", R"("  ab ")"), R"("ab")");
  EXPECT_EQ(check("name", R"("五个汉字啊")"), R"("五个汉字啊")");  // 5 code points, 15 bytes
  EXPECT_EQ(check("name", R"("六个汉字啊啊")"), "error:validation_failed");
  EXPECT_EQ(check("name", R"("   ")"), "null");
  EXPECT_EQ(check("name", "12"), "error:validation_failed");
  EXPECT_EQ(check("name", R"("a\u0000b")"), "error:validation_failed");  // not cut short at the NUL
}

TEST_F(SchemaTest, PatternMustMatchWholeValue) {
  EXPECT_EQ(check("code", R"("ABC")"), R"("ABC")");
  EXPECT_EQ(check("code", R"("ABc")"), "error:validation_failed");
}

TEST_F(SchemaTest, IntegerRangeAndType) {
  EXPECT_EQ(check("n", "3"), "3");
  EXPECT_EQ(check("n", "11"), "error:validation_failed");
  EXPECT_EQ(check("n", "1.5"), "error:validation_failed");
}

TEST_F(SchemaTest, MoneyNeedsMinorUnitsAndIsoCurrency) {
  EXPECT_EQ(check("price", R"({"amount":1999,"currency":"CNY"})"),
            R"({"amount":1999,"currency":"CNY"})");
  std::string msg;
  EXPECT_EQ(check("price", R"({"amount":19.99,"currency":"CNY"})", &msg),
            "error:validation_failed");
  EXPECT_NE(msg.find("minor units"), std::string::npos);
  EXPECT_EQ(check("price", R"({"amount":1,"currency":"cny"})"), "error:validation_failed");
  EXPECT_EQ(check("price", "100"), "error:validation_failed");
}

TEST_F(SchemaTest, DatesAndDatetimes) {
  EXPECT_EQ(check("day", R"("2024-02-29")"), R"("2024-02-29")");
  EXPECT_EQ(check("day", R"("2023-02-29")"), "error:validation_failed");
  EXPECT_EQ(check("at", R"("2026-11-22T10:00:00+08:00")"), R"("2026-11-22T02:00:00.000Z")");
  EXPECT_EQ(check("at", R"("2026-11-22T10:00:00")"), "error:validation_failed");  // no offset
}

TEST_F(SchemaTest, EnumsAndMultiEnums) {
  EXPECT_EQ(check("color", R"("blue")"), R"("blue")");
  EXPECT_EQ(check("color", R"("green")"), "error:validation_failed");
  EXPECT_EQ(check("colors", R"(["red","red","blue"])"), R"(["red","blue"])");
  EXPECT_EQ(check("colors", R"(["pink"])"), "error:validation_failed");
}

TEST_F(SchemaTest, PhoneAndEmailListsAcceptStringsOrLabelledObjects) {
  EXPECT_EQ(check("phones", R"(["010-6253 1234",{"value":"+86 138 1234 5678","label":"mobile"}])"),
            R"([{"value":"010-6253 1234"},{"value":"+86 138 1234 5678","label":"mobile"}])");
  EXPECT_EQ(check("phones", R"(["call me"])"), "error:validation_failed");
  EXPECT_EQ(check("emails", R"(["a@b.cn"])"), R"([{"value":"a@b.cn"}])");
  EXPECT_EQ(check("emails", R"(["bad"])"), "error:validation_failed");
  EXPECT_EQ(check("emails", R"([{"value":"a@b.cn","kind":"x"}])"), "error:validation_failed");
}

TEST_F(SchemaTest, AddressReferenceJson) {
  EXPECT_EQ(check("addr", R"({"city":"北京","country":"CN"})"),
            R"({"city":"北京","country":"CN"})");
  EXPECT_EQ(check("addr", R"({"planet":"Mars"})"), "error:validation_failed");
  EXPECT_EQ(check("owner", R"("123")"), R"("123")");
  EXPECT_EQ(check("owner", "123"), R"("123")");
  EXPECT_EQ(check("owner", R"("12a")"), "error:validation_failed");
  EXPECT_EQ(check("extra", R"({"any":[1,2]})"), R"({"any":[1,2]})");
}

TEST(SchemaParse, FailingDeclarationsNameTheProblem) {
  auto bad_type =
      parse_entity(R"({"name":"x","title_field":"a","fields":[{"name":"a","type":"blob"}]})", "m");
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.error().message.find("unknown field type \"blob\""), std::string::npos);
  auto no_title = parse_entity(R"({"name":"x","fields":[{"name":"a","type":"text"}]})", "m");
  ASSERT_FALSE(no_title.ok());
  auto dup = parse_entity(
      R"({"name":"x","title_field":"a","fields":[{"name":"a","type":"text"},{"name":"a","type":"text"}]})",
      "m");
  ASSERT_FALSE(dup.ok());
  auto enum_no_options =
      parse_entity(R"({"name":"x","title_field":"a","fields":[{"name":"a","type":"enum"}]})", "m");
  ASSERT_FALSE(enum_no_options.ok());
  auto bad_name = parse_entity(R"({"name":"X-Y","title_field":"a","fields":[]})", "m");
  ASSERT_FALSE(bad_name.ok());
  // Count indexes (Entity::count_indexes) name known fields, at least one.
  auto counted = parse_entity(
      R"({"name":"x","title_field":"a","fields":[{"name":"a","type":"text"}],"count_indexes":[["a"]]})",
      "m");
  ASSERT_TRUE(counted.ok()) << counted.error().message;
  EXPECT_EQ(counted->count_indexes, (std::vector<std::vector<std::string>>{{"a"}}));
  EXPECT_TRUE(counted->indexes.empty());
  auto count_unknown = parse_entity(
      R"({"name":"x","title_field":"a","fields":[{"name":"a","type":"text"}],"count_indexes":[["b"]]})",
      "m");
  ASSERT_FALSE(count_unknown.ok());
  EXPECT_EQ(count_unknown.error().message, "entity x has an index on an unknown field");
  auto count_empty = parse_entity(
      R"({"name":"x","title_field":"a","fields":[{"name":"a","type":"text"}],"count_indexes":[[]]})",
      "m");
  ASSERT_FALSE(count_empty.ok());
  EXPECT_EQ(count_empty.error().message, "entity x has an index of no fields in count_indexes");
  auto count_not_list = parse_entity(
      R"({"name":"x","title_field":"a","fields":[{"name":"a","type":"text"}],"count_indexes":["a"]})",
      "m");
  ASSERT_FALSE(count_not_list.ok());
  EXPECT_EQ(count_not_list.error().message, "entity x has an index of no fields in count_indexes");
}

// An entity "x" with a flag, a kind enum, a note list and a manager the declaration of whose
// required_when is `rule` (JSON text).
Result<Entity> with_rule(const std::string& rule) {
  return parse_entity(
      R"({"name":"x","title_field":"a","fields":[{"name":"a","type":"text"},
      {"name":"flag","type":"boolean"},{"name":"kind","type":"enum","options":["big","small"]},
      {"name":"n","type":"integer"},{"name":"phones","type":"phone_list"},
      {"name":"manager","type":"reference","reference":"user","required_when":)" +
          rule + "}]}",
      "m");
}

TEST(SchemaRequiredWhen, ParsesNormalisesAndIsWrittenToMetadata) {
  auto e = with_rule(R"({"field":"flag","equals":true})");
  ASSERT_TRUE(e.ok()) << e.error().message;
  const Field* m = e->field("manager");
  ASSERT_TRUE(m->required_when.has_value());
  EXPECT_EQ(m->required_when->field, "flag");
  EXPECT_EQ(m->required_when->equals_text, "true");
  EXPECT_FALSE(m->required);
  json::Buffer buf;
  json::Writer w(buf);
  write_field(w, *m);
  EXPECT_NE(std::string(buf.GetString()).find(R"("required_when":{"field":"flag","equals":true})"),
            std::string::npos)
      << buf.GetString();
  // the value as the condition field normalises it: a reference id given as a number, say
  auto ref = parse_entity(
      R"({"name":"x","title_field":"a","fields":[{"name":"a","type":"text"},
      {"name":"b","type":"text","required_when":{"field":"owner_id","equals":7}}]})",
      "m");
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  EXPECT_EQ(ref->field("b")->required_when->equals_text, R"("7")");
}

TEST(SchemaRequiredWhen, ChecksTheRecordAsItWillBeStored) {
  auto e = with_rule(R"({"field":"kind","equals":"big"})");
  ASSERT_TRUE(e.ok()) << e.error().message;
  json::Document rec;
  auto check = [&](const char* text) {
    rec.Parse(text);
    return check_required_when(*e, [&](const Field& f) { return json::member(rec, f.name); });
  };
  EXPECT_TRUE(check(R"({"kind":"small"})").ok());
  EXPECT_TRUE(check(R"({"kind":null})").ok());
  EXPECT_TRUE(check(R"({})").ok());
  EXPECT_TRUE(check(R"({"kind":"big","manager":"5"})").ok());
  for (const char* broken : {R"({"kind":"big"})", R"({"kind":"big","manager":null})"}) {
    Status st = check(broken);
    ASSERT_FALSE(st.ok()) << broken;
    EXPECT_EQ(st.error().code, Errc::kValidation);
    EXPECT_EQ(st.error().field, "manager");
    EXPECT_EQ(st.error().message, R"(manager is required when kind is "big")");
  }
}

TEST(SchemaRequiredWhen, FailingDeclarationsNameTheProblem) {
  auto message = [](const std::string& rule) {
    auto e = with_rule(rule);
    EXPECT_FALSE(e.ok()) << rule;
    return e.ok() ? std::string() : e.error().message;
  };
  EXPECT_EQ(message(R"({"field":"flga","equals":true})"),
            "entity x: field manager is required when flga equals true, but there is no field "
            "flga");
  EXPECT_EQ(message(R"({"field":"flag","equals":"yes"})"),
            "entity x: field manager is required when flag equals \"yes\", which flag cannot "
            "hold: flag must be true or false");
  EXPECT_EQ(message(R"({"field":"kind","equals":"huge"})"),
            "entity x: field manager is required when kind equals \"huge\", which kind cannot "
            "hold: kind has no option \"huge\"");
  EXPECT_EQ(message(R"({"field":"n","equals":1.5})"),
            "entity x: field manager is required when n equals 1.5, which n cannot hold: n must "
            "be an integer");
  EXPECT_EQ(message(R"({"field":"phones","equals":["1"]})"),
            "entity x: field manager is required when phones equals [\"1\"], but phones is a "
            "phone_list field; a condition tests a text, integer, boolean, date, enum or "
            "reference field");
  EXPECT_EQ(message(R"({"field":"manager","equals":"1"})"),
            "entity x: field manager is required when manager equals \"1\", its own value");
  const std::string shape =
      "entity x: field manager: required_when must be {\"field\": \"<field name>\", \"equals\": "
      "<a value that is not null>}";
  EXPECT_EQ(message(R"({"field":"flag"})"), shape);
  EXPECT_EQ(message(R"({"field":"flag","equals":null})"), shape);
  EXPECT_EQ(message(R"({"field":"flag","equals":true,"also":1})"), shape);
  EXPECT_EQ(message(R"("flag")"), shape);
  auto both = parse_entity(
      R"({"name":"x","title_field":"a","fields":[{"name":"a","type":"text"},{"name":"f","type":"boolean"},
      {"name":"b","type":"text","required":true,"required_when":{"field":"f","equals":true}}]})",
      "m");
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error().message,
            "entity x: field b is required already; drop required or required_when");
  EXPECT_EQ(both.error().field, "required_when");
}

TEST(SchemaRegistry, CustomFieldReplacesSnapshotAndRefusesDuplicates) {
  Registry reg;
  reg.add(
      parse_entity(R"({"name":"x","title_field":"a","fields":[{"name":"a","type":"text"}]})", "m")
          .value());
  auto before = reg.get("x");
  Field f;
  f.name = "wechat";
  ASSERT_TRUE(reg.add_custom_field("x", f).ok());
  EXPECT_EQ(before->field("wechat"), nullptr);  // old snapshot unchanged
  ASSERT_NE(reg.get("x")->field("wechat"), nullptr);
  EXPECT_TRUE(reg.get("x")->field("wechat")->custom);
  auto again = reg.add_custom_field("x", f);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::kConflict);
  EXPECT_EQ(reg.by_plural("xs")->name, "x");
}

}  // namespace
}  // namespace rapport::schema
